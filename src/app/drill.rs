//! `flow drill failover`, `flow drill restore` and `flow drill alarm`: the drills' executors run once, outside a
//! runbook, with the same params (and the same checks) as their steps, like `flow loadtest`.

use serde::Serialize;
use serde_json::{Map, Value};

use super::Env;
use crate::domain::catalogue::StepKind;
use crate::domain::metric;
use crate::error::{Error, Result};
use crate::executor::{Ctx, Outcome};

/// A bound a drill's figure is held to.
#[derive(Debug, Clone, Serialize)]
pub struct Bound {
    pub metric: &'static str,
    pub limit: f64,
    pub measured: Option<f64>,
    pub pass: bool,
}

/// What a drill measured.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub version: u32,
    pub drill: &'static str,
    /// Every bound held (and, for a failover, the service came back).
    pub passed: bool,
    pub bounds: Vec<Bound>,
    pub evidence: Map<String, Value>,
}

/// Run a drill of `kind` with `params`; `bounds` are `(metric, limit)` on its evidence.
pub async fn run(
    env: &Env,
    kind: StepKind,
    params: Map<String, Value>,
    bounds: &[(&'static str, f64)],
) -> Result<DrillReport> {
    kind.check_params(&params).map_err(|e| Error::Usage(format!("drill: {e}")))?;
    let exec = env
        .executors
        .executor(kind)
        .ok_or_else(|| Error::Refused(format!("no `{}` executor in this build", kind.name())))?;
    let ctx = Ctx {
        runbook: "drill".into(),
        step: kind.name().replace('_', "-"),
        context: Default::default(),
        workflow_dir: std::env::current_dir().unwrap_or_default(),
        clock: env.clock.clone(),
        verdicts: vec![],
        covers: vec![],
        progress: env.progress.clone(),
    };
    let token = format!("flow-drill-{}-{}", kind.name(), env.clock.now_ms());
    let evidence = match exec.submit(&ctx, &params, &token).await.map_err(Error::Drill)? {
        Outcome::Done { evidence, .. } => evidence,
        // A restore by AWS Backup waits: a standalone drill asks for it, in a runbook, to be polled.
        Outcome::Wait { note, .. } => {
            return Err(Error::Refused(format!("the drill is waiting ({note}); run long restores as a runbook step")))
        }
    };
    let mut checked: Vec<Bound> = bounds
        .iter()
        .map(|&(m, limit)| {
            let measured = evidence.get(m).and_then(Value::as_f64);
            Bound { metric: m, limit, measured, pass: measured.is_some_and(|v| v <= limit) }
        })
        .collect();
    if kind == StepKind::FailoverDrill {
        let back = evidence.get("recovered").and_then(Value::as_bool).unwrap_or(false);
        checked.push(Bound {
            metric: "recovered",
            limit: 1.0,
            measured: Some(if back { 1.0 } else { 0.0 }),
            pass: back,
        });
    }
    Ok(DrillReport {
        version: 1,
        drill: kind.name(),
        passed: checked.iter().all(|b| b.pass),
        bounds: checked,
        evidence,
    })
}

/// The metrics a drill's bounds name.
pub const DOWNTIME: &str = metric::FAILOVER_DOWNTIME_S;
pub const RTO: &str = metric::RTO_S;
pub const RPO: &str = metric::RPO_S;
pub const NOTIFICATION: &str = metric::NOTIFICATION_DELAY_S;
