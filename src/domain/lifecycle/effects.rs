//! What the engine does for a step and what it records: [`decide`] (the next [`Effect`]) and
//! [`settle`] (an effect's [`Finished`] result into events).

use crate::domain::catalogue::StepKind;
use crate::domain::digest;
use crate::domain::event::Body;
use crate::domain::plan::Step;
use crate::domain::policy::Policy;
use crate::domain::reference::OutputRef;
use serde_json::{Map, Value};

use super::*;

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
pub(crate) enum Action {
    Preview,
    Verify,
    Submit,
    Poll,
    Reconcile,
}

pub(crate) fn next_action(s: &Situation) -> Option<Action> {
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
pub(crate) fn still_current(v: &StepView, started: &Start) -> bool {
    match started.effect {
        Effect::Preview => v.phase == Phase::Previewing && v.attempt == started.attempt,
        Effect::Verify => v.phase == Phase::Approved,
        Effect::Submit { .. } | Effect::Reconcile { .. } => {
            v.phase == Phase::Submitting && v.attempt == started.attempt
        }
        Effect::Poll { .. } => v.phase == Phase::Waiting,
    }
}

pub(crate) fn outcome(step: &str, o: Outcome) -> Body {
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

pub(crate) fn describe(f: &Finished) -> String {
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
