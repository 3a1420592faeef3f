//! The step lifecycle: every rule about a step's life, in one place. Pure: no clock, no I/O.
//!
//! - [`apply`] folds one journal event into a step's [`StepView`] (the state machine);
//! - [`decide`] says, for a step not in flight, what to record and which [`Effect`] to carry
//!   out: preview, verify, submit (with its idempotency token), poll, reconcile;
//! - [`settle`] turns an effect's result into what to record, and sometimes a next effect (a
//!   verified approval goes on to submit);
//! - [`approve`], [`reject`], [`retry`], [`skip`]: when the operator verbs apply;
//! - [`state`] and [`void_reason`]: what `flow status` shows.
//!
//! ```text
//! idle --preview_started--> previewing --preview_recorded--> awaiting_approval --approved--> approved
//!   \                                                          |  rejected                     |
//!    \--(ungated) submit_started--> submitting <-- submit_started (verified: digests match) --/
//!                                      |  wait_scheduled --> waiting --(poll)--> ...
//!                                      |  succeeded / failed
//! approval_voided: back to idle (re-preview)     retry_requested: failed/rejected -> approved or idle
//! plan_recorded{changed}: the step starts over   skipped: counts as done for its dependants
//! ```
//!
//! Approvals bind to two digests: the resolved params and the artifact that was shown. Before
//! an approved step's effect, the params are resolved again ([`decide`] voids the approval when
//! their digest differs) and the step is previewed again ([`settle`] voids it when the
//! artifact's digest differs). After a crash, a step found `previewing` is previewed again; one
//! found `submitting` is submitted again when its kind has no side effect, and reconciled
//! otherwise: the executor looks the effect up by its token, or says it cannot tell, and the
//! step fails as *interrupted* for a person to decide.

mod effects;
#[cfg(test)]
mod tests;
mod verbs;

pub use effects::*;
pub use verbs::*;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::digest;
use super::event::Body;

/// Why an approval no longer applies: the params resolved before the effect differ.
pub const VOID_PARAMS: &str = "its params changed since it was approved (an earlier step's output differs)";
/// Why an approval no longer applies: a fresh preview shows something else.
pub const VOID_ARTIFACT: &str = "what the step would do changed since it was approved";
/// Why a retried drill asks for a new approval.
pub const VOID_ONE_RUN: &str = "an approval of this kind covers one run; the retry is shown for a new approval";
/// Shown by `flow status` before `flow run` records an edited workflow file.
pub const VOID_EDIT_PENDING: &str =
    "the workflow file edits this step; its approval will be void at the next `flow run`";

/// Why a step changed by a new plan version lost its approval and state.
pub fn void_plan_changed(version: u32) -> String {
    format!("step definition changed in plan version {version}")
}

/// Why a gate downstream of a changed step is shown again.
pub fn void_upstream_changed(version: u32) -> String {
    format!("a step it depends on changed in plan version {version}: what it shows is shown again")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The approver's identity: the AWS caller on shared state, the OS user locally.
    pub by: String,
    /// The display name they gave (`--as`), shown next to the identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_name: Option<String>,
    pub at: String,
    pub comment: Option<String>,
    pub artifact_digest: String,
    pub params_digest: String,
}

/// A person's no: who, when, why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_name: Option<String>,
    pub at: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// For people: `awaiting approval`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Previewing => "previewing",
            Phase::AwaitingApproval => "awaiting approval",
            Phase::Approved => "approved",
            Phase::Submitting => "submitting",
            Phase::Waiting => "waiting",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Skipped => "skipped",
            Phase::Rejected => "rejected",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Skipped | Phase::Rejected)
    }
    /// Does a step in this phase let the steps that need it go on?
    pub fn satisfies_needs(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Skipped)
    }
}

/// What the journal says about one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    pub phase: Phase,
    pub attempt: u32,
    pub artifact: Option<String>,
    pub artifact_digest: Option<String>,
    pub params_digest: Option<String>,
    /// The approval that let the step go on (the one that completed its policy).
    pub approval: Option<Approval>,
    /// Every approval of the artifact shown now, by distinct identities (one, unless the
    /// approval policy asks for more).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
    /// Who recorded the plan version that added or last changed the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// What the approval policy still needs before the step may go on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
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
    /// The last rejection, while the step stays rejected.
    #[serde(default)]
    pub rejection: Option<Rejection>,
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
            approvals: vec![],
            author: None,
            missing: vec![],
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
            rejection: None,
            updated_at: None,
        }
    }
}

impl StepView {
    /// The fresh view of a step whose definition changed in plan `version`: it keeps its
    /// attempt count (tokens stay unique) and says why an approval it had is gone.
    pub fn restarted(&self, version: u32) -> StepView {
        let mut fresh = StepView { attempt: self.attempt, author: self.author.clone(), ..StepView::default() };
        if self.approval.is_some() || self.phase != Phase::Idle {
            fresh.void_reason = Some(void_plan_changed(version));
        }
        fresh
    }

    /// A gate or a decision downstream of a step changed in plan `version`: what it showed,
    /// and any approval of it, no longer hold; it starts over from its preview.
    pub fn reopened(&self, version: u32) -> StepView {
        StepView {
            attempt: self.attempt,
            author: self.author.clone(),
            void_reason: Some(void_upstream_changed(version)),
            ..StepView::default()
        }
    }

    /// Has a person's decision or the world's answer been recorded here (evidence, an
    /// approval, a rejection or skip, an external wait under way)? Such a step loses
    /// something when a new plan version starts it over.
    pub fn holds_something(&self) -> bool {
        self.approval.is_some()
            || matches!(self.phase, Phase::Succeeded | Phase::Skipped | Phase::Rejected | Phase::Waiting)
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
            // Partial approvals hold only for the artifact they saw.
            s.approvals.retain(|a| &a.artifact_digest == artifact_digest && &a.params_digest == params_digest);
            s.artifact = Some(artifact.clone());
            s.artifact_digest = Some(artifact_digest.clone());
            s.params_digest = Some(params_digest.clone());
        }
        Body::Approved { by, as_name, comment, artifact_digest, params_digest, complete, missing, .. } => {
            let a = Approval {
                by: by.clone(),
                as_name: as_name.clone(),
                at: at.to_string(),
                comment: comment.clone(),
                artifact_digest: artifact_digest.clone(),
                params_digest: params_digest.clone(),
            };
            s.approvals.retain(|x| &x.artifact_digest == artifact_digest && x.by != *by);
            s.approvals.push(a.clone());
            s.void_reason = None;
            s.missing = missing.clone();
            if *complete {
                s.phase = Phase::Approved;
                s.approval = Some(a);
            }
        }
        Body::ApprovalIncomplete { missing, .. } => {
            // A stricter policy than the one it was approved under: it waits for what is missing.
            s.phase = Phase::AwaitingApproval;
            s.approval = None;
            s.missing = missing.clone();
        }
        Body::ApprovalVoided { reason, .. } => {
            s.approval = None;
            s.approvals.clear();
            s.missing.clear();
            s.void_reason = Some(reason.clone());
            if matches!(s.phase, Phase::Approved | Phase::AwaitingApproval) {
                s.phase = Phase::Idle;
            }
        }
        Body::Rejected { by, as_name, reason, .. } => {
            // A later no is final for what was shown: earlier approvals of it are void.
            s.phase = Phase::Rejected;
            s.reason = Some(format!("rejected by {}: {reason}", shown_as(by, as_name.as_deref())));
            s.rejection = Some(Rejection {
                by: by.clone(),
                as_name: as_name.clone(),
                at: at.to_string(),
                reason: reason.clone(),
            });
            if s.approval.take().is_some() || !s.approvals.is_empty() {
                s.void_reason = Some(format!("rejected by {}", shown_as(by, as_name.as_deref())));
            }
            s.approvals.clear();
            s.missing.clear();
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
        Body::RetryRequested { keep_approval, .. } => {
            // The approval stays (digests are checked again before the effect), unless it
            // covered one run only; the outcome goes.
            if !keep_approval && s.approval.take().is_some() {
                s.void_reason = Some(VOID_ONE_RUN.into());
            }
            s.phase = if s.approval.is_some() { Phase::Approved } else { Phase::Idle };
            s.error = None;
            s.interrupted = false;
            s.reason = None;
            s.rejection = None;
            s.next_poll_at = None;
            s.handle = None;
        }
        Body::OutcomeDiscarded { .. }
        | Body::PolicyRecorded { .. }
        | Body::QuestionAnswered { .. }
        | Body::NotifyStarted { .. }
        | Body::Notified { .. }
        | Body::PlanRecorded { .. }
        | Body::RunStarted { .. }
        | Body::RunFinished { .. } => {}
    }
}

pub use super::event::shown_as;

/// A step's state as the JSON contract names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Ready,
    Running,
    WaitingApproval,
    Waiting,
    Succeeded,
    Failed,
    Skipped,
    Rejected,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Ready => "ready",
            State::Running => "running",
            State::WaitingApproval => "waiting_approval",
            State::Waiting => "waiting",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Skipped => "skipped",
            State::Rejected => "rejected",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// idle is `pending` or `ready` by its needs; previewing and submitting are `running`; an
/// approved step is `ready`.
pub fn state(s: &StepView, needs_done: bool) -> State {
    match s.phase {
        Phase::Idle if needs_done => State::Ready,
        Phase::Idle => State::Pending,
        Phase::Previewing | Phase::Submitting => State::Running,
        Phase::AwaitingApproval => State::WaitingApproval,
        Phase::Approved => State::Ready,
        Phase::Waiting => State::Waiting,
        Phase::Succeeded => State::Succeeded,
        Phase::Failed => State::Failed,
        Phase::Skipped => State::Skipped,
        Phase::Rejected => State::Rejected,
    }
}

/// Why `flow status` shows a step's approval as void: an edit of the workflow file not yet
/// recorded, params that resolve differently now, or what the journal says.
pub fn void_reason(s: &StepView, params_digest_now: Option<&str>, edit_pending: bool) -> Option<String> {
    if edit_pending && s.approval.is_some() {
        return Some(VOID_EDIT_PENDING.into());
    }
    if s.phase == Phase::Approved && s.approval.as_ref().map(|a| a.params_digest.as_str()) != params_digest_now {
        return Some(VOID_PARAMS.into());
    }
    s.void_reason.clone()
}

/// Idempotency token for a step's effect: runbook, step, params and attempt.
pub fn token(runbook: &str, step: &str, params_digest: &str, attempt: u32) -> String {
    format!("flow-{runbook}-{step}-{}-{attempt}", digest::short(params_digest))
}
