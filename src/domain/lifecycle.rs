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

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::catalogue::StepKind;
use super::digest;
use super::event::Body;
use super::plan::Step;
use super::policy::Policy;
use super::reference::OutputRef;

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

/// What an effect settles with when it went well.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done {
        outputs: Map<String, Value>,
        evidence: Map<String, Value>,
    },
    /// Come back at `next_poll_at` (Unix ms) with `handle`.
    Wait {
        next_poll_at: u64,
        note: String,
        handle: Value,
    },
}

/// What a preview found.
#[derive(Debug, Clone, PartialEq)]
pub enum Preview {
    /// The artifact a person approves before the effect.
    Approve(String),
    /// Nothing to do (the quota is already enough, the change set has no changes): the step
    /// ends with this outcome, no gate.
    Nothing(Outcome),
}

/// The work the engine carries out for a step, through its kind's executor.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Compute the artifact to approve (read-only).
    Preview,
    /// Preview again before an approved effect, to compare with what was approved.
    Verify,
    /// Carry out the step, idempotent by `token`.
    Submit { token: String },
    /// Ask something external how it is going.
    Poll { handle: Value },
    /// Found mid-submit after a crash: look the effect up before anything is sent again.
    Reconcile { token: String },
}

impl Effect {
    pub fn name(&self) -> &'static str {
        match self {
            Effect::Preview => "preview",
            Effect::Verify => "verify",
            Effect::Submit { .. } => "submit",
            Effect::Poll { .. } => "poll",
            Effect::Reconcile { .. } => "reconcile",
        }
    }
}

/// Why an effect failed, as the journal will record it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

impl From<&str> for Failure {
    fn from(s: &str) -> Self {
        Failure(s.into())
    }
}

/// An effect's result as the engine hands it back.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// A preview or a verify.
    Previewed(Result<Preview, Failure>),
    /// A submit or a poll.
    Submitted(Result<Outcome, Failure>),
    /// `None`: the executor cannot tell whether the effect happened.
    Reconciled(Result<Option<Outcome>, Failure>),
    /// The executor cannot tell whether the effect happened, and says what it found (a command
    /// from the run that was killed, still running, waited for or stopped).
    Interrupted(String),
}

/// A step's params resolved against the outputs recorded so far, and their digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub params: Map<String, Value>,
    pub digest: String,
}

impl Resolved {
    pub fn new(params: Map<String, Value>) -> Resolved {
        let digest = digest::of_json(&Value::Object(params.clone()));
        Resolved { params, digest }
    }
}

/// An effect to start, with the params it runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub effect: Effect,
    /// The attempt the effect belongs to (a settled result must still match it).
    pub attempt: u32,
    pub params: Resolved,
}

/// What the lifecycle asks of the engine: events to record (in order, before the effect
/// starts), and the effect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub record: Vec<Body>,
    pub start: Option<Start>,
    /// The step would run, but this build has no executor for its kind.
    pub unsupported: bool,
}

impl Decision {
    fn record(body: Body) -> Decision {
        Decision { record: vec![body], ..Decision::default() }
    }
}

/// What the engine knows about a step that is not in flight.
pub struct Situation<'a> {
    pub runbook: &'a str,
    pub step: &'a Step,
    pub kind: StepKind,
    pub view: &'a StepView,
    pub needs_done: bool,
    /// Is an executor for the kind built in?
    pub executor: bool,
    pub now_ms: u64,
    /// The approval policy in force: an approved step short of it goes back to waiting.
    pub policy: &'a Policy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Preview,
    Verify,
    Submit,
    Poll,
    Reconcile,
}

fn next_action(s: &Situation) -> Option<Action> {
    let v = s.view;
    match v.phase {
        Phase::Idle if s.needs_done => Some(if s.step.gated() { Action::Preview } else { Action::Submit }),
        // A preview is read-only: one cut short by a crash is simply run again.
        Phase::Previewing => Some(Action::Preview),
        // An upstream step reset by a plan change must finish again first.
        Phase::Approved if s.needs_done => Some(Action::Verify),
        Phase::Submitting if s.kind.side_effect() => Some(Action::Reconcile),
        Phase::Submitting => Some(Action::Submit),
        Phase::Waiting if v.next_poll_at.is_some_and(|t| t <= s.now_ms) => Some(Action::Poll),
        _ => None,
    }
}

/// The message of a step that cannot start for want of an executor.
pub fn unsupported_reason(kind: StepKind) -> String {
    format!("the `{}` executor is not built into this version of flow", kind.name())
}

/// What to do with a step that is not in flight. `resolve` gives its params against the outputs
/// recorded so far (only called when the step would run).
pub fn decide(s: &Situation, resolve: impl FnOnce() -> Result<Resolved, OutputRef>) -> Decision {
    let Some(action) = next_action(s) else { return Decision::default() };
    let (v, id) = (s.view, s.step.id.as_str());
    if action == Action::Verify {
        // Approved under a looser policy than the one in force now: wait for what it lacks.
        let approvals: Vec<Approval> =
            if v.approvals.is_empty() { v.approval.iter().cloned().collect() } else { v.approvals.clone() };
        let missing = s.policy.missing(s.step, &approvals, v.author.as_deref());
        if !missing.is_empty() {
            return Decision::record(Body::ApprovalIncomplete { step: id.into(), missing });
        }
    }
    if !s.executor {
        let reason = unsupported_reason(s.kind);
        let record = if v.blocked.as_deref() == Some(reason.as_str()) {
            vec![]
        } else {
            vec![Body::Blocked { step: id.into(), reason }]
        };
        return Decision { record, start: None, unsupported: true };
    }
    let params = match resolve() {
        Ok(p) => p,
        Err(r) => {
            let error = format!(
                "param references ${{{}.{}}}, but step `{}` recorded no output `{}`",
                r.step, r.output, r.step, r.output
            );
            return Decision::record(Body::Failed { step: id.into(), error, interrupted: false });
        }
    };
    let mut record = Vec::new();
    let mut action = action;
    if action == Action::Verify && v.approval.as_ref().map(|a| a.params_digest.as_str()) != Some(params.digest.as_str())
    {
        record.push(Body::ApprovalVoided { step: id.into(), reason: VOID_PARAMS.into() });
        action = Action::Preview;
    }
    let (effect, attempt) = match action {
        Action::Preview => {
            let attempt = if v.phase == Phase::Previewing { v.attempt.max(1) } else { v.attempt + 1 };
            record.push(Body::PreviewStarted { step: id.into(), attempt });
            (Effect::Preview, attempt)
        }
        Action::Verify => (Effect::Verify, v.attempt),
        Action::Submit => {
            let attempt = if v.phase == Phase::Submitting { v.attempt.max(1) } else { v.attempt + 1 };
            let token = token(s.runbook, id, &params.digest, attempt);
            record.push(Body::SubmitStarted {
                step: id.into(),
                attempt,
                token: token.clone(),
                params_digest: params.digest.clone(),
            });
            (Effect::Submit { token }, attempt)
        }
        Action::Poll => (Effect::Poll { handle: v.handle.clone().unwrap_or(Value::Null) }, v.attempt),
        Action::Reconcile => (Effect::Reconcile { token: v.token.clone().unwrap_or_default() }, v.attempt),
    };
    Decision { record, start: Some(Start { effect, attempt, params }), unsupported: false }
}

/// Is the step still where it was when `started` began? A result that arrives after the
/// step moved on (rejected or skipped meanwhile, or reset by a new plan version) is not applied.
fn still_current(v: &StepView, started: &Start) -> bool {
    match started.effect {
        Effect::Preview => v.phase == Phase::Previewing && v.attempt == started.attempt,
        Effect::Verify => v.phase == Phase::Approved,
        Effect::Submit { .. } | Effect::Reconcile { .. } => {
            v.phase == Phase::Submitting && v.attempt == started.attempt
        }
        Effect::Poll { .. } => v.phase == Phase::Waiting,
    }
}

fn outcome(step: &str, o: Outcome) -> Body {
    match o {
        Outcome::Done { outputs, evidence } => Body::Succeeded { step: step.into(), outputs, evidence },
        Outcome::Wait { next_poll_at, note, handle } => {
            Body::WaitScheduled { step: step.into(), next_poll_at, note, handle }
        }
    }
}

/// The message of a side effect caught mid-flight that its executor cannot look up.
pub fn interrupted_message(step: &str) -> String {
    format!(
        "flow stopped while this step's side effect was under way and cannot tell whether it happened; \
         check, then `flow retry {step}` to run it again or `flow skip {step} --reason ...` if it is done"
    )
}

fn describe(f: &Finished) -> String {
    match f {
        Finished::Previewed(Ok(Preview::Approve(_))) => "a preview to approve".into(),
        Finished::Previewed(Ok(Preview::Nothing(o)))
        | Finished::Submitted(Ok(o))
        | Finished::Reconciled(Ok(Some(o))) => match o {
            Outcome::Done { .. } => "done".into(),
            Outcome::Wait { note, .. } => format!("waiting: {note}"),
        },
        Finished::Reconciled(Ok(None)) | Finished::Interrupted(_) => "cannot tell whether it happened".into(),
        Finished::Previewed(Err(e)) | Finished::Submitted(Err(e)) | Finished::Reconciled(Err(e)) => {
            format!("failed: {e}")
        }
    }
}

/// What to record for an effect's result, given the step's view now.
pub fn settle(runbook: &str, step: &str, v: &StepView, started: &Start, finished: Finished) -> Decision {
    if !still_current(v, started) {
        return Decision::record(Body::OutcomeDiscarded {
            step: step.into(),
            effect: started.effect.name().into(),
            reason: format!("the step moved on while its {} ran (it is now {})", started.effect.name(), v.phase.name()),
            result: describe(&finished),
        });
    }
    let params_digest = started.params.digest.clone();
    match finished {
        // Nothing to do: the step ends here, no gate needed.
        Finished::Previewed(Ok(Preview::Nothing(o))) => Decision::record(outcome(step, o)),
        Finished::Previewed(Err(e)) => Decision::record(Body::Failed {
            step: step.into(),
            error: format!("preview failed: {e}"),
            interrupted: false,
        }),
        Finished::Previewed(Ok(Preview::Approve(artifact))) => {
            let artifact_digest = digest::of_bytes(artifact.as_bytes());
            let shown = Body::PreviewRecorded {
                step: step.into(),
                artifact,
                artifact_digest: artifact_digest.clone(),
                params_digest: params_digest.clone(),
            };
            if started.effect == Effect::Preview {
                return Decision::record(shown);
            }
            // A verify: the approval holds only for what it saw.
            if v.approval.as_ref().map(|a| &a.artifact_digest) != Some(&artifact_digest) {
                let void = Body::ApprovalVoided { step: step.into(), reason: VOID_ARTIFACT.into() };
                return Decision { record: vec![void, shown], ..Decision::default() };
            }
            // Verified: record the intent, then carry out the effect.
            let attempt = if v.submitted_attempt == Some(v.attempt) { v.attempt + 1 } else { v.attempt.max(1) };
            let token = token(runbook, step, &params_digest, attempt);
            Decision {
                record: vec![Body::SubmitStarted {
                    step: step.into(),
                    attempt,
                    token: token.clone(),
                    params_digest: params_digest.clone(),
                }],
                start: Some(Start { effect: Effect::Submit { token }, attempt, params: started.params.clone() }),
                unsupported: false,
            }
        }
        Finished::Submitted(Ok(o)) | Finished::Reconciled(Ok(Some(o))) => Decision::record(outcome(step, o)),
        Finished::Submitted(Err(error)) | Finished::Reconciled(Err(error)) => {
            Decision::record(Body::Failed { step: step.into(), error: error.0, interrupted: false })
        }
        Finished::Reconciled(Ok(None)) => {
            Decision::record(Body::Failed { step: step.into(), error: interrupted_message(step), interrupted: true })
        }
        Finished::Interrupted(found) => Decision::record(Body::Failed {
            step: step.into(),
            error: format!("{}; {found}", interrupted_message(step)),
            interrupted: true,
        }),
    }
}

/// Why an operator verb does not apply to a step. The app layer adds what would apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("step `{step}` is not waiting for approval (it is {state})")]
    NotWaitingForApproval { step: String, state: State },
    #[error("step `{step}` is already approved by {by} at {at}; `flow run` carries it out")]
    AlreadyApproved { step: String, by: String, at: String },
    /// This identity approved this artifact already: a second approval does not count twice.
    #[error(
        "{by} approved `{step}` already (at {at}); an approval counts once per person: the policy needs someone else"
    )]
    AlreadyApprovedBy { step: String, by: String, at: String },
    /// The approval policy does not let this identity approve this step.
    #[error("{why}")]
    NotAllowed { step: String, why: String },
    /// The preview recorded now is not the one whose digest the person gave.
    #[error(
        "step `{step}`: the preview recorded now ({now}) is not the one you reviewed ({given}); nothing was approved. \
                 Read it with `flow status`, then `flow approve {step} --digest {now}`"
    )]
    NotWhatWasShown { step: String, given: String, now: String },
    #[error(
        "step `{step}`: `{given}` is not a digest: give at least {} hex digits of the one `flow status` shows",
        DIGEST_MIN
    )]
    BadDigest { step: String, given: String },
    #[error("step `{step}` has no recorded preview to approve")]
    NoPreview { step: String },
    #[error("step `{step}`: its params changed since the preview was shown; run `flow run` to preview it again")]
    ParamsChanged { step: String },
    #[error("step `{step}` is not waiting for a decision (it is {state})")]
    NotWaitingForDecision { step: String, state: State },
    #[error("step `{step}` has not failed (it is {state})")]
    NotFailed { step: String, state: State },
    #[error("step `{step}` is already {state}")]
    AlreadyDone { step: String, state: State },
    #[error("step `{step}` is running; let `flow run` finish it (after a crash, `flow run` reconciles it first)")]
    Running { step: String },
}

/// How the person approving saw what they approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// They give the digest of the preview they read (`flow approve STEP --digest D`): the
    /// recorded preview must still be that one.
    Digest(String),
    /// The preview of this digest was printed on their terminal just now and they said yes.
    Confirmed(String),
}

/// The fewest leading hex digits of a digest that `--digest` accepts.
pub const DIGEST_MIN: usize = 8;

/// `flow approve`: only what was shown, and only while the params it was shown with still hold.
/// Who approves: their identity and the display name they gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub id: String,
    pub as_name: Option<String>,
}

impl Who {
    pub fn new(id: &str, as_name: Option<&str>) -> Who {
        Who { id: id.into(), as_name: as_name.map(str::to_string) }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn approve(
    step: &Step,
    v: &StepView,
    state: State,
    params_digest_now: Option<&str>,
    who: &Who,
    comment: Option<String>,
    seen: &Seen,
    policy: &Policy,
) -> Result<Body, Refusal> {
    let (def, step) = (step, step.id.as_str());
    if v.phase == Phase::Approved {
        if let Some(a) = &v.approval {
            return Err(Refusal::AlreadyApproved { step: step.into(), by: a.by.clone(), at: a.at.clone() });
        }
    }
    if v.phase != Phase::AwaitingApproval {
        return Err(Refusal::NotWaitingForApproval { step: step.into(), state });
    }
    let (Some(artifact_digest), Some(params_digest)) = (v.artifact_digest.clone(), v.params_digest.clone()) else {
        return Err(Refusal::NoPreview { step: step.into() });
    };
    if params_digest_now != Some(params_digest.as_str()) {
        return Err(Refusal::ParamsChanged { step: step.into() });
    }
    let (Seen::Digest(d) | Seen::Confirmed(d)) = seen;
    let shown = {
        {
            let d = d.trim().trim_start_matches("sha256:").to_ascii_lowercase();
            if d.len() < DIGEST_MIN || !d.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(Refusal::BadDigest { step: step.into(), given: d });
            }
            if !artifact_digest.strip_prefix("sha256:").unwrap_or(&artifact_digest).starts_with(&d) {
                return Err(Refusal::NotWhatWasShown {
                    step: step.into(),
                    given: d,
                    now: super::digest::short(&artifact_digest).to_string(),
                });
            }
            match seen {
                Seen::Digest(_) => d,
                Seen::Confirmed(_) => format!("{d}, shown on a terminal and confirmed"),
            }
        }
    };
    policy.allowed(def, &who.id).map_err(|why| Refusal::NotAllowed { step: step.into(), why })?;
    if let Some(a) = v.approvals.iter().find(|a| a.by == who.id && a.artifact_digest == artifact_digest) {
        return Err(Refusal::AlreadyApprovedBy { step: step.into(), by: who.id.clone(), at: a.at.clone() });
    }
    let mut all: Vec<Approval> = v.approvals.iter().filter(|a| a.artifact_digest == artifact_digest).cloned().collect();
    all.push(Approval {
        by: who.id.clone(),
        as_name: who.as_name.clone(),
        at: String::new(),
        comment: comment.clone(),
        artifact_digest: artifact_digest.clone(),
        params_digest: params_digest.clone(),
    });
    let missing = policy.missing(def, &all, v.author.as_deref());
    Ok(Body::Approved {
        step: step.into(),
        by: who.id.clone(),
        as_name: who.as_name.clone(),
        comment,
        artifact_digest,
        params_digest,
        shown: Some(shown),
        complete: missing.is_empty(),
        missing,
    })
}

/// `flow reject`: a step waiting for approval, or approved and not yet carried out.
pub fn reject(step: &str, v: &StepView, state: State, who: &Who, reason: &str) -> Result<Body, Refusal> {
    if !matches!(v.phase, Phase::AwaitingApproval | Phase::Approved) {
        return Err(Refusal::NotWaitingForDecision { step: step.into(), state });
    }
    Ok(Body::Rejected { step: step.into(), by: who.id.clone(), as_name: who.as_name.clone(), reason: reason.into() })
}

/// `flow retry`: a failed or rejected step runs again; its approval carries over unless its
/// kind's approval covers one run.
pub fn retry(step: &str, kind: Option<StepKind>, v: &StepView, state: State, by: &str) -> Result<Body, Refusal> {
    if !matches!(v.phase, Phase::Failed | Phase::Rejected) {
        return Err(Refusal::NotFailed { step: step.into(), state });
    }
    let keep_approval = !kind.is_some_and(StepKind::approval_per_run);
    Ok(Body::RetryRequested { step: step.into(), by: by.into(), keep_approval })
}

/// `flow skip`: anything not done and not in flight.
pub fn skip(step: &str, v: &StepView, state: State, by: &str, reason: &str) -> Result<Body, Refusal> {
    if matches!(v.phase, Phase::Succeeded | Phase::Skipped) {
        return Err(Refusal::AlreadyDone { step: step.into(), state });
    }
    if matches!(v.phase, Phase::Previewing | Phase::Submitting) {
        return Err(Refusal::Running { step: step.into() });
    }
    Ok(Body::Skipped { step: step.into(), by: by.into(), reason: reason.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(kind: &str, gate: bool) -> Step {
        Step {
            id: "s".into(),
            kind: kind.into(),
            description: String::new(),
            needs: vec![],
            covers: vec![],
            gate,
            params: Map::new(),
        }
    }

    fn step_s() -> Step {
        step("command", true)
    }

    fn ana() -> Who {
        Who::new("ana", None)
    }

    fn params(d: &str) -> Resolved {
        Resolved { params: Map::new(), digest: d.into() }
    }

    struct Case {
        kind: StepKind,
        step: Step,
        view: StepView,
        needs_done: bool,
        executor: bool,
        now: u64,
    }

    impl Case {
        fn new(kind: StepKind, gate: bool) -> Case {
            Case {
                kind,
                step: step(kind.name(), gate),
                view: StepView::default(),
                needs_done: true,
                executor: true,
                now: 10,
            }
        }
        fn with(mut self, bodies: &[Body]) -> Case {
            for b in bodies {
                apply(&mut self.view, b, "t");
            }
            self
        }
        fn decide(&self, digest: &str) -> Decision {
            let s = Situation {
                runbook: "rb",
                step: &self.step,
                kind: self.kind,
                view: &self.view,
                needs_done: self.needs_done,
                executor: self.executor,
                now_ms: self.now,
                policy: &Policy::default(),
            };
            decide(&s, || Ok(params(digest)))
        }
    }

    fn approved(a: &str, p: &str) -> Body {
        Body::Approved {
            step: "s".into(),
            by: "ana".into(),
            comment: None,
            artifact_digest: a.into(),
            params_digest: p.into(),
            shown: None,
            as_name: None,
            complete: true,
            missing: vec![],
        }
    }
    fn previewed(artifact: &str, p: &str) -> Body {
        Body::PreviewRecorded {
            step: "s".into(),
            artifact: artifact.into(),
            artifact_digest: digest::of_bytes(artifact.as_bytes()),
            params_digest: p.into(),
        }
    }
    fn submitted(attempt: u32, p: &str) -> Body {
        Body::SubmitStarted { step: "s".into(), attempt, token: token("rb", "s", p, attempt), params_digest: p.into() }
    }
    fn done() -> Outcome {
        Outcome::Done { outputs: Map::new(), evidence: Map::new() }
    }

    /// decide: (case, params digest now) -> (events recorded, effect).
    #[test]
    fn decide_table() {
        let a = digest::of_bytes(b"run x");
        let cases: Vec<(&str, Case, Vec<&str>, Option<Effect>)> = vec![
            ("gated idle previews", Case::new(StepKind::Command, true), vec!["preview_started"], Some(Effect::Preview)),
            (
                "ungated idle submits with the first token",
                Case::new(StepKind::CapacityModel, false),
                vec!["submit_started"],
                Some(Effect::Submit { token: token("rb", "s", "p", 1) }),
            ),
            (
                "needs not done: nothing",
                {
                    let mut c = Case::new(StepKind::Command, true);
                    c.needs_done = false;
                    c
                },
                vec![],
                None,
            ),
            (
                "a preview cut short runs again, same attempt",
                Case::new(StepKind::Command, true).with(&[Body::PreviewStarted { step: "s".into(), attempt: 3 }]),
                vec!["preview_started"],
                Some(Effect::Preview),
            ),
            (
                "awaiting approval: nothing",
                Case::new(StepKind::Command, true).with(&[previewed("run x", "p")]),
                vec![],
                None,
            ),
            (
                "approved with the same params verifies",
                Case::new(StepKind::Command, true).with(&[previewed("run x", "p"), approved(&a, "p")]),
                vec![],
                Some(Effect::Verify),
            ),
            (
                "approved with other params: void, preview again",
                Case::new(StepKind::Command, true).with(&[previewed("run x", "old"), approved(&a, "old")]),
                vec!["approval_voided", "preview_started"],
                Some(Effect::Preview),
            ),
            (
                "approved, needs reset by a plan change: wait for them",
                {
                    let mut c = Case::new(StepKind::Command, true).with(&[approved(&a, "p")]);
                    c.needs_done = false;
                    c
                },
                vec![],
                None,
            ),
            (
                "side effect caught submitting: reconcile by its token",
                Case::new(StepKind::Command, true).with(&[submitted(2, "p")]),
                vec![],
                Some(Effect::Reconcile { token: token("rb", "s", "p", 2) }),
            ),
            (
                "read-only kind caught submitting: submit again, same token",
                Case::new(StepKind::Probe, false).with(&[submitted(2, "p")]),
                vec!["submit_started"],
                Some(Effect::Submit { token: token("rb", "s", "p", 2) }),
            ),
            (
                "waiting, not due",
                Case::new(StepKind::Probe, false).with(&[Body::WaitScheduled {
                    step: "s".into(),
                    next_poll_at: 11,
                    note: String::new(),
                    handle: json!(1),
                }]),
                vec![],
                None,
            ),
            (
                "waiting, due: poll with the handle",
                Case::new(StepKind::Probe, false).with(&[Body::WaitScheduled {
                    step: "s".into(),
                    next_poll_at: 10,
                    note: String::new(),
                    handle: json!(1),
                }]),
                vec![],
                Some(Effect::Poll { handle: json!(1) }),
            ),
            (
                "done: nothing",
                Case::new(StepKind::Probe, false).with(&[Body::Succeeded {
                    step: "s".into(),
                    outputs: Map::new(),
                    evidence: Map::new(),
                }]),
                vec![],
                None,
            ),
            (
                "failed: nothing until a retry",
                Case::new(StepKind::Probe, false).with(&[Body::Failed {
                    step: "s".into(),
                    error: "x".into(),
                    interrupted: false,
                }]),
                vec![],
                None,
            ),
            (
                "retried with its approval: verify again",
                Case::new(StepKind::Command, true).with(&[
                    previewed("run x", "p"),
                    approved(&a, "p"),
                    submitted(1, "p"),
                    Body::Failed { step: "s".into(), error: "x".into(), interrupted: true },
                    Body::RetryRequested { step: "s".into(), by: "ana".into(), keep_approval: true },
                ]),
                vec![],
                Some(Effect::Verify),
            ),
            (
                "skipped: nothing",
                Case::new(StepKind::Command, true).with(&[Body::Skipped {
                    step: "s".into(),
                    by: "a".into(),
                    reason: "r".into(),
                }]),
                vec![],
                None,
            ),
        ];
        for (what, case, events, effect) in cases {
            let d = case.decide("p");
            let names: Vec<&str> = d.record.iter().map(Body::name).collect();
            assert_eq!(names, events, "{what}");
            assert_eq!(d.start.map(|s| s.effect), effect, "{what}");
        }
    }

    #[test]
    fn attempts_count_up_and_tokens_follow_them() {
        let c = Case::new(StepKind::CapacityModel, false).with(&[
            submitted(1, "p"),
            Body::Failed { step: "s".into(), error: "x".into(), interrupted: false },
            Body::RetryRequested { step: "s".into(), by: "a".into(), keep_approval: true },
        ]);
        let d = c.decide("p");
        assert_eq!(d.start.as_ref().map(|s| s.attempt), Some(2));
        assert_eq!(d.record, vec![submitted(2, "p")]);
    }

    #[test]
    fn without_an_executor_a_step_is_blocked_once() {
        let mut c = Case::new(StepKind::FailoverDrill, true);
        c.executor = false;
        let d = c.decide("p");
        assert!(d.unsupported && d.start.is_none());
        assert_eq!(
            d.record,
            vec![Body::Blocked { step: "s".into(), reason: unsupported_reason(StepKind::FailoverDrill) }]
        );
        let c = c.with(&d.record);
        let again = c.decide("p");
        assert!(again.unsupported && again.record.is_empty(), "not recorded twice");
    }

    #[test]
    fn a_reference_without_a_value_fails_the_step() {
        let c = Case::new(StepKind::Probe, false);
        let s = Situation {
            runbook: "rb",
            step: &c.step,
            kind: c.kind,
            view: &c.view,
            needs_done: true,
            executor: true,
            now_ms: 0,
            policy: &Policy::default(),
        };
        let d = decide(&s, || Err(OutputRef { step: "m".into(), output: "n".into() }));
        assert_eq!(
            d.record,
            vec![Body::Failed {
                step: "s".into(),
                error: "param references ${m.n}, but step `m` recorded no output `n`".into(),
                interrupted: false
            }]
        );
        assert!(d.start.is_none());
    }

    fn start(effect: Effect, attempt: u32) -> Start {
        Start { effect, attempt, params: params("p") }
    }

    /// settle: (view, effect started, result) -> (events recorded, next effect).
    #[test]
    fn settle_table() {
        let preview = |v: &StepView, f| settle("rb", "s", v, &start(Effect::Preview, 1), f);
        let previewing =
            Case::new(StepKind::Command, true).with(&[Body::PreviewStarted { step: "s".into(), attempt: 1 }]).view;
        let d = preview(&previewing, Finished::Previewed(Ok(Preview::Approve("run x".into()))));
        assert_eq!(d.record, vec![previewed("run x", "p")]);
        let d = preview(&previewing, Finished::Previewed(Ok(Preview::Nothing(done()))));
        assert_eq!(d.record[0].name(), "succeeded");
        let d = preview(&previewing, Finished::Previewed(Err("AccessDenied".into())));
        assert_eq!(
            d.record,
            vec![Body::Failed { step: "s".into(), error: "preview failed: AccessDenied".into(), interrupted: false }]
        );

        // Verify: the same artifact goes on to submit; another one voids the approval.
        let a = digest::of_bytes(b"run x");
        let approved_view = Case::new(StepKind::Command, true).with(&[previewed("run x", "p"), approved(&a, "p")]).view;
        let verify = |f| settle("rb", "s", &approved_view, &start(Effect::Verify, 1), f);
        let d = verify(Finished::Previewed(Ok(Preview::Approve("run x".into()))));
        assert_eq!(d.record, vec![submitted(1, "p")]);
        assert_eq!(d.start.map(|s| s.effect), Some(Effect::Submit { token: token("rb", "s", "p", 1) }));
        let d = verify(Finished::Previewed(Ok(Preview::Approve("run y".into()))));
        let names: Vec<&str> = d.record.iter().map(Body::name).collect();
        assert_eq!(names, ["approval_voided", "preview_recorded"]);
        assert_eq!(d.record[0], Body::ApprovalVoided { step: "s".into(), reason: VOID_ARTIFACT.into() });
        assert!(d.start.is_none());

        // Verify after a retry of a submitted attempt: a new attempt, a new token.
        let retried = Case::new(StepKind::Command, true)
            .with(&[
                previewed("run x", "p"),
                approved(&a, "p"),
                submitted(1, "p"),
                Body::Failed { step: "s".into(), error: "x".into(), interrupted: false },
                Body::RetryRequested { step: "s".into(), by: "a".into(), keep_approval: true },
            ])
            .view;
        let d = settle(
            "rb",
            "s",
            &retried,
            &start(Effect::Verify, 1),
            Finished::Previewed(Ok(Preview::Approve("run x".into()))),
        );
        assert_eq!(d.record, vec![submitted(2, "p")]);

        // Submit and reconcile.
        let submitting = Case::new(StepKind::Command, true).with(&[submitted(1, "p")]).view;
        let sub = |effect: Effect, f| settle("rb", "s", &submitting, &start(effect, 1), f);
        let tok = || Effect::Submit { token: "t".into() };
        assert_eq!(sub(tok(), Finished::Submitted(Ok(done()))).record[0].name(), "succeeded");
        let wait = Outcome::Wait { next_poll_at: 99, note: "n".into(), handle: json!({"id": 1}) };
        assert_eq!(
            sub(tok(), Finished::Submitted(Ok(wait))).record,
            vec![Body::WaitScheduled {
                step: "s".into(),
                next_poll_at: 99,
                note: "n".into(),
                handle: json!({"id": 1})
            }]
        );
        assert_eq!(
            sub(tok(), Finished::Submitted(Err("boom".into()))).record,
            vec![Body::Failed { step: "s".into(), error: "boom".into(), interrupted: false }]
        );
        let rec = || Effect::Reconcile { token: "t".into() };
        assert_eq!(sub(rec(), Finished::Reconciled(Ok(Some(done())))).record[0].name(), "succeeded");
        assert_eq!(
            sub(rec(), Finished::Reconciled(Ok(None))).record,
            vec![Body::Failed { step: "s".into(), error: interrupted_message("s"), interrupted: true }]
        );
    }

    #[test]
    fn a_result_for_a_step_that_moved_on_is_kept_aside() {
        let a = digest::of_bytes(b"run x");
        // Rejected while its verify ran: no submit.
        let rejected = Case::new(StepKind::Command, true)
            .with(&[
                previewed("run x", "p"),
                approved(&a, "p"),
                Body::Rejected { step: "s".into(), by: "b".into(), as_name: None, reason: "no".into() },
            ])
            .view;
        let d = settle(
            "rb",
            "s",
            &rejected,
            &start(Effect::Verify, 1),
            Finished::Previewed(Ok(Preview::Approve("run x".into()))),
        );
        assert!(d.start.is_none());
        assert_eq!(d.record.iter().map(Body::name).collect::<Vec<_>>(), ["outcome_discarded"]);
        // Reset by a plan change while it was submitting: the old attempt's outcome is not its.
        let reset = Case::new(StepKind::Command, true).with(&[submitted(1, "p")]).view.restarted(2);
        let d =
            settle("rb", "s", &reset, &start(Effect::Submit { token: "t".into() }, 1), Finished::Submitted(Ok(done())));
        match &d.record[..] {
            [Body::OutcomeDiscarded { effect, result, .. }] => {
                assert_eq!((effect.as_str(), result.as_str()), ("submit", "done"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn verbs_apply_only_where_they_mean_something() {
        let a = digest::of_bytes(b"run x");
        let waiting = Case::new(StepKind::Command, true).with(&[previewed("run x", "p")]).view;
        let seen = Seen::Digest(digest::short(&a).to_string());
        let mut want = approved(&a, "p");
        if let Body::Approved { shown, .. } = &mut want {
            *shown = Some(digest::short(&a).to_string());
        }
        assert_eq!(
            approve(&step_s(), &waiting, State::WaitingApproval, Some("p"), &ana(), None, &seen, &Policy::default()),
            Ok(want)
        );
        // A digest other than the one recorded: what was read is not what would be approved.
        let other = Seen::Digest("0123456789ab".into());
        assert!(matches!(
            approve(&step_s(), &waiting, State::WaitingApproval, Some("p"), &ana(), None, &other, &Policy::default()),
            Err(Refusal::NotWhatWasShown { .. })
        ));
        assert!(matches!(
            approve(
                &step_s(),
                &waiting,
                State::WaitingApproval,
                Some("p"),
                &ana(),
                None,
                &Seen::Digest("ab".into()),
                &Policy::default()
            ),
            Err(Refusal::BadDigest { .. })
        ));
        assert_eq!(
            approve(
                &step_s(),
                &waiting,
                State::WaitingApproval,
                Some("q"),
                &ana(),
                None,
                &Seen::Confirmed(a.clone()),
                &Policy::default()
            )
            .unwrap_err()
            .to_string(),
            "step `s`: its params changed since the preview was shown; run `flow run` to preview it again"
        );
        let idle = StepView::default();
        assert_eq!(
            approve(
                &step_s(),
                &idle,
                State::Pending,
                None,
                &ana(),
                None,
                &Seen::Confirmed(a.clone()),
                &Policy::default()
            )
            .unwrap_err()
            .to_string(),
            "step `s` is not waiting for approval (it is pending)"
        );
        assert!(reject("s", &waiting, State::WaitingApproval, &Who::new("b", None), "no").is_ok());
        assert_eq!(
            retry("s", None, &waiting, State::WaitingApproval, "b").unwrap_err().to_string(),
            "step `s` has not failed (it is waiting_approval)"
        );
        let running = Case::new(StepKind::Command, true).with(&[submitted(1, "p")]).view;
        assert!(matches!(skip("s", &running, State::Running, "b", "r"), Err(Refusal::Running { .. })));
        let skipped = Case::new(StepKind::Command, true)
            .with(&[Body::Skipped { step: "s".into(), by: "b".into(), reason: "r".into() }])
            .view;
        assert_eq!(
            skip("s", &skipped, State::Skipped, "b", "r").unwrap_err().to_string(),
            "step `s` is already skipped"
        );
    }

    #[test]
    fn a_rejection_is_final_for_what_was_shown() {
        let a = digest::of_bytes(b"run x");
        // alice approves, bob rejects: the later no voids the earlier yes.
        let c = Case::new(StepKind::Command, true).with(&[
            previewed("run x", "p"),
            approved(&a, "p"),
            Body::Rejected { step: "s".into(), by: "bob".into(), as_name: None, reason: "wrong database".into() },
        ]);
        assert_eq!((c.view.phase, c.view.approval.is_none()), (Phase::Rejected, true));
        assert_eq!(c.view.void_reason.as_deref(), Some("rejected by bob"));
        // A retry starts over from the preview and needs a new approval.
        let again = retry("s", Some(StepKind::Command), &c.view, State::Rejected, "carl").unwrap();
        let c = c.with(&[again]);
        assert_eq!(c.view.phase, Phase::Idle);
        assert_eq!(c.decide("p").start.map(|s| s.effect), Some(Effect::Preview));
    }

    #[test]
    fn an_approval_short_of_the_policy_is_partial() {
        let policy: Policy = toml::from_str("[[approval]]\nkinds = [\"command\"]\nmin_approvers = 2\n").unwrap();
        let a = digest::of_bytes(b"run x");
        let seen = Seen::Digest(digest::short(&a).to_string());
        let mut c = Case::new(StepKind::Command, true).with(&[previewed("run x", "p")]);
        let first =
            approve(&step_s(), &c.view, State::WaitingApproval, Some("p"), &ana(), None, &seen, &policy).unwrap();
        assert!(
            matches!(&first, Body::Approved { complete: false, missing, .. } if missing == &["1 more approver (1 of 2)"])
        );
        c = c.with(&[first]);
        assert_eq!((c.view.phase, c.view.approvals.len()), (Phase::AwaitingApproval, 1));
        // The same person again does not count twice.
        assert!(matches!(
            approve(&step_s(), &c.view, State::WaitingApproval, Some("p"), &ana(), None, &seen, &policy),
            Err(Refusal::AlreadyApprovedBy { .. })
        ));
        let second = approve(
            &step_s(),
            &c.view,
            State::WaitingApproval,
            Some("p"),
            &Who::new("bob", None),
            None,
            &seen,
            &policy,
        )
        .unwrap();
        c = c.with(&[second]);
        assert_eq!(c.view.phase, Phase::Approved);
        // Approved under one approver, a policy asking for two now holds it back before its effect.
        let one = Case::new(StepKind::Command, true).with(&[previewed("run x", "p"), approved(&a, "p")]);
        let s = Situation {
            runbook: "rb",
            step: &one.step,
            kind: one.kind,
            view: &one.view,
            needs_done: true,
            executor: true,
            now_ms: 0,
            policy: &policy,
        };
        let d = decide(&s, || Ok(params("p")));
        assert_eq!(
            d.record,
            vec![Body::ApprovalIncomplete { step: "s".into(), missing: vec!["1 more approver (1 of 2)".into()] }]
        );
        assert!(d.start.is_none());
        let back = one.with(&d.record);
        assert_eq!(back.view.phase, Phase::AwaitingApproval);
    }

    #[test]
    fn a_retried_drill_is_approved_again() {
        let a = digest::of_bytes(b"run x");
        let failed = Case::new(StepKind::FailoverDrill, true)
            .with(&[
                previewed("run x", "p"),
                approved(&a, "p"),
                submitted(1, "p"),
                Body::Failed { step: "s".into(), error: "x".into(), interrupted: true },
            ])
            .view;
        let again = retry("s", Some(StepKind::FailoverDrill), &failed, State::Failed, "ana").unwrap();
        let mut v = failed.clone();
        apply(&mut v, &again, "t");
        assert_eq!((v.phase, v.approval.is_none(), v.void_reason.as_deref()), (Phase::Idle, true, Some(VOID_ONE_RUN)));
        let kept = retry("s", Some(StepKind::Command), &failed, State::Failed, "ana").unwrap();
        let mut v = failed;
        apply(&mut v, &kept, "t");
        assert_eq!(v.phase, Phase::Approved, "a command's approval stays bound to its digests");
    }

    #[test]
    fn status_says_why_an_approval_is_void() {
        let a = digest::of_bytes(b"run x");
        let v = Case::new(StepKind::Command, true).with(&[previewed("run x", "p"), approved(&a, "p")]).view;
        assert_eq!(void_reason(&v, Some("p"), false), None);
        assert_eq!(void_reason(&v, Some("q"), false).as_deref(), Some(VOID_PARAMS));
        assert_eq!(void_reason(&v, Some("p"), true).as_deref(), Some(VOID_EDIT_PENDING));
        let restarted = v.restarted(3);
        assert_eq!(void_reason(&restarted, None, false).as_deref(), Some("step definition changed in plan version 3"));
        assert_eq!(state(&restarted, false), State::Pending);
        assert_eq!(state(&v, true), State::Ready);
    }
}
