//! The journal and its projection. A runbook's state is nothing but its events folded by
//! [`apply`], the step state machine; the engine and the operator verbs append events and read
//! the projection back. Pure: no clock, no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::catalogue::StepKind;
use super::plan::{Plan, Step};

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub at: String,
    pub actor: String,
    #[serde(flatten)]
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Body {
    /// A plan version became current. `changed` and `removed` steps lose state and approvals.
    PlanRecorded {
        version: u32,
        digest: String,
        planner: String,
        source: String,
        added: Vec<String>,
        removed: Vec<String>,
        changed: Vec<String>,
    },
    RunStarted {
        pid: u32,
    },
    RunFinished {
        outcome: String,
    },
    /// Intent: the step's preview (read-only) is about to run.
    PreviewStarted {
        step: String,
        attempt: u32,
    },
    /// What a gated step will do, shown to the approver.
    PreviewRecorded {
        step: String,
        artifact: String,
        artifact_digest: String,
        params_digest: String,
    },
    Approved {
        step: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        artifact_digest: String,
        params_digest: String,
    },
    ApprovalVoided {
        step: String,
        reason: String,
    },
    Rejected {
        step: String,
        by: String,
        reason: String,
    },
    /// Intent: the step's effect is about to be carried out, idempotent by `token`.
    SubmitStarted {
        step: String,
        attempt: u32,
        token: String,
        params_digest: String,
    },
    /// Something external that takes time: poll again at `next_poll_at` (Unix ms).
    WaitScheduled {
        step: String,
        next_poll_at: u64,
        note: String,
        handle: Value,
    },
    Succeeded {
        step: String,
        outputs: Map<String, Value>,
        evidence: Map<String, Value>,
    },
    Failed {
        step: String,
        error: String,
        /// Caught mid-flight by a crash with a side effect that may or may not have happened.
        #[serde(default)]
        interrupted: bool,
    },
    /// The engine cannot run the step (for example: its executor is not built).
    Blocked {
        step: String,
        reason: String,
    },
    Skipped {
        step: String,
        by: String,
        reason: String,
    },
    RetryRequested {
        step: String,
        by: String,
    },
}

impl Body {
    pub fn step(&self) -> Option<&str> {
        use Body::*;
        match self {
            PreviewStarted { step, .. }
            | PreviewRecorded { step, .. }
            | Approved { step, .. }
            | ApprovalVoided { step, .. }
            | Rejected { step, .. }
            | SubmitStarted { step, .. }
            | WaitScheduled { step, .. }
            | Succeeded { step, .. }
            | Failed { step, .. }
            | Blocked { step, .. }
            | Skipped { step, .. }
            | RetryRequested { step, .. } => Some(step),
            PlanRecorded { .. } | RunStarted { .. } | RunFinished { .. } => None,
        }
    }

    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("event").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    pub by: String,
    pub at: String,
    pub comment: Option<String>,
    pub artifact_digest: String,
    pub params_digest: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Idle,
    Previewing,
    AwaitingApproval,
    Approved,
    Submitting,
    Waiting,
    Succeeded,
    Failed,
    Skipped,
    Rejected,
}

impl Phase {
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Skipped | Phase::Rejected)
    }
    /// Does a step in this phase let the steps that need it go on?
    pub fn satisfies_needs(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Skipped)
    }
}

/// What the journal says about one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepView {
    pub phase: Phase,
    pub attempt: u32,
    pub artifact: Option<String>,
    pub artifact_digest: Option<String>,
    pub params_digest: Option<String>,
    pub approval: Option<Approval>,
    /// Why the last approval no longer applies.
    pub void_reason: Option<String>,
    pub token: Option<String>,
    /// The attempt whose effect was last started.
    pub submitted_attempt: Option<u32>,
    pub handle: Option<Value>,
    pub next_poll_at: Option<u64>,
    pub note: Option<String>,
    pub outputs: Map<String, Value>,
    pub evidence: Map<String, Value>,
    pub error: Option<String>,
    pub interrupted: bool,
    pub blocked: Option<String>,
    /// Skip or reject reason, with who.
    pub reason: Option<String>,
    pub updated_at: Option<String>,
}

impl Default for StepView {
    fn default() -> Self {
        StepView {
            phase: Phase::Idle,
            attempt: 0,
            artifact: None,
            artifact_digest: None,
            params_digest: None,
            approval: None,
            void_reason: None,
            token: None,
            submitted_attempt: None,
            handle: None,
            next_poll_at: None,
            note: None,
            outputs: Map::new(),
            evidence: Map::new(),
            error: None,
            interrupted: false,
            blocked: None,
            reason: None,
            updated_at: None,
        }
    }
}

/// The projection of a whole journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunbookView {
    pub version: u32,
    pub plan_digest: String,
    pub steps: BTreeMap<String, StepView>,
    pub last_seq: u64,
}

impl RunbookView {
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut v = RunbookView::default();
        for e in events {
            v.apply(e);
        }
        v
    }

    pub fn step(&self, id: &str) -> StepView {
        self.steps.get(id).cloned().unwrap_or_default()
    }

    pub fn apply(&mut self, e: &Event) {
        self.last_seq = e.seq;
        if let Body::PlanRecorded { version, digest, changed, removed, .. } = &e.body {
            self.version = *version;
            self.plan_digest = digest.clone();
            for id in removed {
                self.steps.remove(id);
            }
            for id in changed {
                if let Some(old) = self.steps.remove(id) {
                    let mut fresh = StepView { attempt: old.attempt, ..StepView::default() };
                    if old.approval.is_some() || old.phase != Phase::Idle {
                        fresh.void_reason = Some(format!("step definition changed in plan version {version}"));
                    }
                    self.steps.insert(id.clone(), fresh);
                }
            }
            return;
        }
        if let Some(id) = e.body.step() {
            let s = self.steps.entry(id.to_string()).or_default();
            apply(s, &e.body, &e.at);
        }
    }

    /// Outputs of every succeeded step, for resolving references.
    pub fn outputs(&self) -> BTreeMap<String, Map<String, Value>> {
        self.steps
            .iter()
            .filter(|(_, s)| s.phase == Phase::Succeeded)
            .map(|(id, s)| (id.clone(), s.outputs.clone()))
            .collect()
    }

    pub fn needs_done(&self, step: &Step) -> bool {
        step.needs.iter().all(|n| self.steps.get(n).is_some_and(|s| s.phase.satisfies_needs()))
    }

    /// The state name of the JSON contract.
    pub fn state_name(&self, step: &Step) -> &'static str {
        let s = self.step(&step.id);
        match s.phase {
            Phase::Idle if self.needs_done(step) => "ready",
            Phase::Idle => "pending",
            Phase::Previewing | Phase::Submitting => "running",
            Phase::AwaitingApproval => "waiting_approval",
            Phase::Approved => "ready",
            Phase::Waiting => "waiting",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Skipped => "skipped",
            Phase::Rejected => "rejected",
        }
    }
}

/// The step state machine: fold one event into a step's view.
pub fn apply(s: &mut StepView, body: &Body, at: &str) {
    s.updated_at = Some(at.to_string());
    match body {
        Body::PreviewStarted { attempt, .. } => {
            s.phase = Phase::Previewing;
            s.attempt = *attempt;
            s.blocked = None;
            s.error = None;
        }
        Body::PreviewRecorded { artifact, artifact_digest, params_digest, .. } => {
            s.phase = Phase::AwaitingApproval;
            s.artifact = Some(artifact.clone());
            s.artifact_digest = Some(artifact_digest.clone());
            s.params_digest = Some(params_digest.clone());
        }
        Body::Approved { by, comment, artifact_digest, params_digest, .. } => {
            s.phase = Phase::Approved;
            s.void_reason = None;
            s.approval = Some(Approval {
                by: by.clone(),
                at: at.to_string(),
                comment: comment.clone(),
                artifact_digest: artifact_digest.clone(),
                params_digest: params_digest.clone(),
            });
        }
        Body::ApprovalVoided { reason, .. } => {
            s.approval = None;
            s.void_reason = Some(reason.clone());
            if matches!(s.phase, Phase::Approved | Phase::AwaitingApproval) {
                s.phase = Phase::Idle;
            }
        }
        Body::Rejected { by, reason, .. } => {
            s.phase = Phase::Rejected;
            s.reason = Some(format!("rejected by {by}: {reason}"));
        }
        Body::SubmitStarted { attempt, token, params_digest, .. } => {
            s.phase = Phase::Submitting;
            s.attempt = *attempt;
            s.token = Some(token.clone());
            s.submitted_attempt = Some(*attempt);
            s.params_digest = Some(params_digest.clone());
            s.blocked = None;
            s.error = None;
        }
        Body::WaitScheduled { next_poll_at, note, handle, .. } => {
            s.phase = Phase::Waiting;
            s.next_poll_at = Some(*next_poll_at);
            s.note = Some(note.clone());
            s.handle = Some(handle.clone());
        }
        Body::Succeeded { outputs, evidence, .. } => {
            s.phase = Phase::Succeeded;
            s.outputs = outputs.clone();
            s.evidence = evidence.clone();
            s.next_poll_at = None;
        }
        Body::Failed { error, interrupted, .. } => {
            s.phase = Phase::Failed;
            s.error = Some(error.clone());
            s.interrupted = *interrupted;
            s.next_poll_at = None;
        }
        Body::Blocked { reason, .. } => s.blocked = Some(reason.clone()),
        Body::Skipped { by, reason, .. } => {
            s.phase = Phase::Skipped;
            s.reason = Some(format!("skipped by {by}: {reason}"));
        }
        Body::RetryRequested { .. } => {
            // The approval stays (digests are checked again before the effect); the outcome goes.
            s.phase = if s.approval.is_some() { Phase::Approved } else { Phase::Idle };
            s.error = None;
            s.interrupted = false;
            s.reason = None;
            s.next_poll_at = None;
            s.handle = None;
        }
        Body::PlanRecorded { .. } | Body::RunStarted { .. } | Body::RunFinished { .. } => {}
    }
}

/// What the engine should do next with a step that is not in flight in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Gated step: compute and record the artifact to approve.
    Preview,
    /// Approved step: check params and artifact still match the approval, then submit.
    Verify,
    /// Carry out the step (ungated, or verified).
    Submit,
    /// Ask an external process how it is going.
    Poll,
    /// Found mid-submit after a crash: look the effect up before anything is sent again.
    Reconcile,
}

pub fn next_action(step: &Step, kind: StepKind, s: &StepView, needs_done: bool, now_ms: u64) -> Option<Action> {
    let gated = step.gated();
    match s.phase {
        Phase::Idle if needs_done => Some(if gated { Action::Preview } else { Action::Submit }),
        // A preview is read-only: one cut short by a crash is simply run again.
        Phase::Previewing => Some(Action::Preview),
        // An upstream step reset by a plan change must finish again first.
        Phase::Approved if needs_done => Some(Action::Verify),
        Phase::Submitting if kind.side_effect() => Some(Action::Reconcile),
        Phase::Submitting => Some(Action::Submit),
        Phase::Waiting if s.next_poll_at.is_some_and(|t| t <= now_ms) => Some(Action::Poll),
        _ => None,
    }
}

/// Idempotency token for a step's effect: runbook, step, params and attempt.
pub fn token(runbook: &str, step: &str, params_digest: &str, attempt: u32) -> String {
    format!("flow-{runbook}-{step}-{}-{attempt}", super::digest::short(params_digest))
}

/// Plan changes between two versions, by step id.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlanDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl PlanDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

pub fn diff(old: &Plan, new: &Plan) -> PlanDiff {
    let mut d = PlanDiff::default();
    for s in &new.steps {
        match old.step(&s.id) {
            None => d.added.push(s.id.clone()),
            Some(o) if o.definition_digest() != s.definition_digest() => d.changed.push(s.id.clone()),
            _ => {}
        }
    }
    d.removed = old.steps.iter().filter(|s| new.step(&s.id).is_none()).map(|s| s.id.clone()).collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(seq: u64, body: Body) -> Event {
        Event { seq, at: format!("t{seq}"), actor: "test".into(), body }
    }

    fn step(gate: bool) -> Step {
        Step {
            id: "s".into(),
            kind: "command".into(),
            description: String::new(),
            needs: vec![],
            covers: vec![],
            gate,
            params: Map::new(),
        }
    }

    #[test]
    fn gated_step_life() {
        let st = step(true);
        let mut v = StepView::default();
        assert_eq!(next_action(&st, StepKind::Command, &v, true, 0), Some(Action::Preview));
        assert_eq!(next_action(&st, StepKind::Command, &v, false, 0), None);
        let script = [
            (Body::PreviewStarted { step: "s".into(), attempt: 1 }, Phase::Previewing, Some(Action::Preview)),
            (
                Body::PreviewRecorded {
                    step: "s".into(),
                    artifact: "run x".into(),
                    artifact_digest: "a".into(),
                    params_digest: "p".into(),
                },
                Phase::AwaitingApproval,
                None,
            ),
            (
                Body::Approved {
                    step: "s".into(),
                    by: "ana".into(),
                    comment: None,
                    artifact_digest: "a".into(),
                    params_digest: "p".into(),
                },
                Phase::Approved,
                Some(Action::Verify),
            ),
            (
                Body::SubmitStarted { step: "s".into(), attempt: 1, token: "t".into(), params_digest: "p".into() },
                Phase::Submitting,
                Some(Action::Reconcile),
            ),
            (
                Body::WaitScheduled { step: "s".into(), next_poll_at: 50, note: "n".into(), handle: json!({}) },
                Phase::Waiting,
                None,
            ),
            (Body::Succeeded { step: "s".into(), outputs: Map::new(), evidence: Map::new() }, Phase::Succeeded, None),
        ];
        for (body, phase, action) in script {
            apply(&mut v, &body, "t");
            assert_eq!(v.phase, phase, "{body:?}");
            assert_eq!(next_action(&st, StepKind::Command, &v, true, 10), action, "{body:?}");
        }
        assert_eq!(v.approval.as_ref().unwrap().by, "ana");
    }

    #[test]
    fn an_approved_step_waits_for_its_needs() {
        let st = step(true);
        let mut v = StepView::default();
        apply(
            &mut v,
            &Body::Approved {
                step: "s".into(),
                by: "a".into(),
                comment: None,
                artifact_digest: "a".into(),
                params_digest: "p".into(),
            },
            "t",
        );
        assert_eq!(next_action(&st, StepKind::Command, &v, false, 0), None);
        assert_eq!(next_action(&st, StepKind::Command, &v, true, 0), Some(Action::Verify));
    }

    #[test]
    fn waiting_polls_when_due_and_read_only_submit_restarts() {
        let st = step(false);
        let mut v = StepView::default();
        apply(
            &mut v,
            &Body::WaitScheduled { step: "s".into(), next_poll_at: 50, note: String::new(), handle: json!(1) },
            "t",
        );
        assert_eq!(next_action(&st, StepKind::Probe, &v, true, 49), None);
        assert_eq!(next_action(&st, StepKind::Probe, &v, true, 50), Some(Action::Poll));
        apply(
            &mut v,
            &Body::SubmitStarted { step: "s".into(), attempt: 1, token: "t".into(), params_digest: "p".into() },
            "t",
        );
        assert_eq!(next_action(&st, StepKind::Probe, &v, true, 0), Some(Action::Submit));
    }

    #[test]
    fn retry_keeps_approval_and_void_drops_it() {
        let mut v = StepView::default();
        apply(
            &mut v,
            &Body::Approved {
                step: "s".into(),
                by: "a".into(),
                comment: None,
                artifact_digest: "a".into(),
                params_digest: "p".into(),
            },
            "t",
        );
        apply(&mut v, &Body::Failed { step: "s".into(), error: "boom".into(), interrupted: true }, "t");
        apply(&mut v, &Body::RetryRequested { step: "s".into(), by: "a".into() }, "t");
        assert_eq!((v.phase, v.interrupted, v.error.clone()), (Phase::Approved, false, None));
        apply(&mut v, &Body::ApprovalVoided { step: "s".into(), reason: "artifact changed".into() }, "t");
        assert_eq!(
            (v.phase, v.approval.is_none(), v.void_reason.as_deref()),
            (Phase::Idle, true, Some("artifact changed"))
        );
    }

    #[test]
    fn a_changed_step_loses_its_state_and_approval() {
        let events = [
            ev(
                1,
                Body::PlanRecorded {
                    version: 1,
                    digest: "d1".into(),
                    planner: "b".into(),
                    source: "plan".into(),
                    added: vec!["s".into(), "t".into()],
                    removed: vec![],
                    changed: vec![],
                },
            ),
            ev(
                2,
                Body::Approved {
                    step: "s".into(),
                    by: "a".into(),
                    comment: None,
                    artifact_digest: "a".into(),
                    params_digest: "p".into(),
                },
            ),
            ev(3, Body::Succeeded { step: "t".into(), outputs: Map::new(), evidence: Map::new() }),
            ev(
                4,
                Body::PlanRecorded {
                    version: 2,
                    digest: "d2".into(),
                    planner: "b".into(),
                    source: "plan".into(),
                    added: vec![],
                    removed: vec![],
                    changed: vec!["s".into()],
                },
            ),
        ];
        let v = RunbookView::from_events(&events);
        assert_eq!(v.version, 2);
        assert_eq!(v.step("s").phase, Phase::Idle);
        assert!(v.step("s").approval.is_none());
        assert_eq!(v.step("s").void_reason.as_deref(), Some("step definition changed in plan version 2"));
        assert_eq!(v.step("t").phase, Phase::Succeeded);
    }

    #[test]
    fn events_serialize_with_a_tag() {
        let e = ev(7, Body::Skipped { step: "s".into(), by: "ana".into(), reason: "done by hand".into() });
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["event"], "skipped");
        assert_eq!(serde_json::from_value::<Event>(j).unwrap(), e);
    }
}
