//! `approval`: a pure gate. The artifact is what the person decides on, including the
//! requirements' verdicts at that moment, so the approval binds to the evidence it saw.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{obj, typed, Ctx, Executor, Outcome, Preview, Result};
use crate::domain::catalogue::ApprovalParams;

pub struct Approval;

#[async_trait]
impl Executor for Approval {
    async fn preview(&self, ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview> {
        let p: ApprovalParams = typed(params)?;
        let mut a = format!("decide: {}\n", p.summary);
        for c in &p.checklist {
            a.push_str(&format!("  [ ] {c}\n"));
        }
        if !ctx.verdicts.is_empty() {
            a.push_str("requirements:\n");
            for v in &ctx.verdicts {
                let ev: Vec<String> = v.evidence.iter().map(|m| m.describe()).collect();
                a.push_str(&format!(
                    "  {:<10} {:<22} {:<18} {}{}\n",
                    v.verdict,
                    v.id,
                    v.kind,
                    v.target,
                    if ev.is_empty() { String::new() } else { format!("  [{}]", ev.join("; ")) }
                ));
            }
        }
        Ok(Preview::Approve(a))
    }

    async fn submit(&self, _ctx: &Ctx, _params: &Map<String, Value>, _token: &str) -> Result<Outcome> {
        Ok(Outcome::Done { outputs: Map::new(), evidence: obj(json!({"decision": "approved"})) })
    }

    async fn reconcile(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Option<Outcome>> {
        // Nothing outside changes: finishing again is harmless.
        self.submit(ctx, params, token).await.map(Some)
    }
}
