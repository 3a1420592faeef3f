//! `flow status`: each step with its state, gates waiting with what they will do, void
//! approvals and why, requirements with their verdicts and the evidence behind them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{llm_flag, load, params_digest_now, pending_edit, pick_runbook, Env};
use crate::clock::rfc3339;
use crate::domain::lifecycle::{self, Approval, Phase, State};
use crate::domain::plan::PlanDiff;
use crate::domain::verdict::{self, Verdict};
use crate::error::Result;

/// One step, as `flow status --json` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStatus {
    pub id: String,
    pub kind: String,
    pub state: State,
    pub gate: bool,
    pub needs: Vec<String>,
    pub covers: Vec<String>,
    pub attempt: u32,
    /// What a step waiting for approval will do (the artifact to approve).
    pub will: Option<String>,
    pub artifact_digest: Option<String>,
    pub approval: Option<Approval>,
    /// Approvals of what it shows now (more than one when the policy asks for more).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
    /// What the approval policy in force still needs before it may go on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Who recorded the plan version that added or last changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub approval_void: Option<String>,
    /// RFC 3339.
    pub next_poll_at: Option<String>,
    pub note: Option<String>,
    pub error: Option<String>,
    pub interrupted: bool,
    pub blocked: Option<String>,
    pub reason: Option<String>,
    pub outputs: Map<String, Value>,
    pub evidence: Map<String, Value>,
    pub updated_at: Option<String>,
    pub flag: Option<String>,
}

/// A runbook's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub runbook: String,
    pub version: u32,
    pub workflow: PathBuf,
    /// Edits of the workflow file that `flow run` will validate and record.
    pub workflow_edited: Option<PlanDiff>,
    /// Why `flow run` would refuse the workflow file as it stands (a parse error, a broken rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_invalid: Option<String>,
    pub steps: Vec<StepStatus>,
    pub requirements: Vec<Verdict>,
    /// On shared state: the `flow run` holding the runbook's lease, and until when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
    /// Who this command acts as (the identity the backend vouches for, and the `--as` name).
    pub you: String,
    /// The approval policy in force (`flow.toml`), one line a rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<String>,
    /// The spec this runbook was planned from.
    pub spec: String,
    /// What the spec leaves open until a person answers (`flow answer`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<crate::domain::spec::Question>,
}

impl Status {
    pub fn step(&self, id: &str) -> Option<&StepStatus> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The steps in a state.
    pub fn in_state(&self, state: State) -> impl Iterator<Item = &StepStatus> {
        self.steps.iter().filter(move |s| s.state == state)
    }
}

pub fn status(env: &Env, runbook: Option<&str>) -> Result<Status> {
    let j = env.open()?;
    let l = load(j.as_ref(), pick_runbook(j.as_ref(), runbook)?)?;
    drop(j);
    let edited = pending_edit(&l);
    let requirements = verdict::verdicts(&l.plan, &l.view);
    let steps = l
        .plan
        .steps
        .iter()
        .map(|s| {
            let v = l.view.step(&s.id);
            let now = if v.phase == Phase::Approved { params_digest_now(&l.plan, &l.view, &s.id) } else { None };
            let edit_pending = edited.as_ref().is_some_and(|d| d.changed.contains(&s.id));
            StepStatus {
                id: s.id.clone(),
                kind: s.kind.clone(),
                state: l.view.state(s),
                gate: s.gated(),
                needs: s.needs.clone(),
                covers: s.covers.clone(),
                attempt: v.attempt,
                will: if v.phase == Phase::AwaitingApproval { v.artifact.clone() } else { None },
                artifact_digest: v.artifact_digest.clone(),
                approval: v.approval.clone(),
                approvals: v.approvals.clone(),
                missing: match v.phase {
                    Phase::AwaitingApproval if !v.approvals.is_empty() => {
                        env.policy.missing(s, &v.approvals, v.author.as_deref())
                    }
                    _ => v.missing.clone(),
                },
                author: v.author.clone(),
                approval_void: lifecycle::void_reason(v, now.as_deref(), edit_pending),
                next_poll_at: v.next_poll_at.map(rfc3339),
                note: v.note.clone(),
                error: v.error.clone(),
                interrupted: v.interrupted,
                blocked: v.blocked.clone(),
                reason: v.reason.clone(),
                outputs: v.outputs.clone(),
                evidence: v.evidence.clone(),
                updated_at: v.updated_at.clone(),
                flag: llm_flag(&l.plan, s).map(str::to_string),
            }
        })
        .collect();
    Ok(Status {
        runbook: l.meta.name.clone(),
        version: l.view.version,
        workflow: l.meta.workflow.clone(),
        workflow_edited: edited,
        workflow_invalid: crate::app::workflow_problem(&l),
        steps,
        requirements,
        lease: env.backend.run_holder(&l.meta.name)?,
        you: crate::domain::lifecycle::shown_as(&env.actor, env.display.as_deref()),
        policy: env.policy.rules.iter().map(|r| r.describe()).collect(),
        spec: l.meta.spec.clone(),
        questions: l.plan.questions.clone(),
    })
}
