//! The operator verbs' rules: [`approve`], [`reject`], [`retry`], [`skip`] -> an event or a
//! [`Refusal`].

use crate::domain::catalogue::StepKind;
use crate::domain::event::Body;
use crate::domain::plan::Step;
use crate::domain::policy::Policy;

use super::*;

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
    #[error(transparent)]
    NotAllowed(#[from] crate::domain::policy::NotAllowed),
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
    policy.allowed(def, &who.id)?;
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
