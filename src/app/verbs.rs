//! The operator verbs: approve, reject, retry, skip. Each opens the store, asks the lifecycle
//! whether the verb applies to the step as it stands, appends one event, closes.

use super::{load, params_digest_now, pick_runbook, Env, Loaded};
use crate::domain::event::{Body, Event};
use crate::domain::lifecycle::{self, Phase, Refusal, Seen};
use crate::domain::plan::Step;
use crate::error::{Error, Result};

fn step_list(l: &Loaded, phase: Phase) -> String {
    let ids: Vec<&str> =
        l.plan.steps.iter().filter(|s| l.view.step(&s.id).phase == phase).map(|s| s.id.as_str()).collect();
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

fn find_step<'a>(l: &'a Loaded, step: &str, what_applies: &str) -> Result<&'a Step> {
    l.plan
        .step(step)
        .ok_or_else(|| Error::Refused(format!("no step `{step}` in runbook `{}`; {what_applies}", l.meta.name)))
}

/// A refusal, with what the verb would apply to.
fn refused(r: Refusal, what_applies: &str) -> Error {
    match r {
        Refusal::NotWaitingForApproval { .. } | Refusal::NotWaitingForDecision { .. } | Refusal::NotFailed { .. } => {
            Error::Refused(format!("{r}; {what_applies}"))
        }
        other => other.into(),
    }
}

/// Times a verb reads, decides and appends again when another writer appended first (on a
/// shared store, where nothing holds other writers off).
const CONFLICT_RETRIES: usize = 8;

/// Load the runbook, check the verb with `check`, append what it returns as `by`. When another
/// process appended first, the runbook is read again and the verb decided again on what it
/// holds now.
fn act(
    env: &Env,
    runbook: Option<&str>,
    step: &str,
    what_applies: impl Fn(&Loaded) -> String,
    check: impl Fn(&Loaded, &Step) -> Result<Body, Refusal>,
) -> Result<Event> {
    let mut tries = 0;
    loop {
        let mut j = env.open()?;
        let l = load(j.as_ref(), pick_runbook(j.as_ref(), runbook)?)?;
        let applies = what_applies(&l);
        let s = find_step(&l, step, &applies)?;
        let body = check(&l, s).map_err(|r| refused(r, &applies))?;
        // A policy that changed since it was last journaled is journaled with the verb it applied to.
        let bodies: Vec<Body> = env.policy_change(&l.view).into_iter().chain([body]).collect();
        match env.append(j.as_mut(), &l.meta.name, l.view.next_seq(), bodies) {
            Ok(mut events) => return events.pop().ok_or_else(|| Error::Refused("nothing was recorded".into())),
            Err(Error::Journal(crate::state::Error::Conflict { .. })) if tries < CONFLICT_RETRIES => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

fn waiting(l: &Loaded) -> String {
    format!("waiting for approval: {}", step_list(l, Phase::AwaitingApproval))
}

/// `flow approve`: records who, when, the comment, the digests of what was shown, and how the
/// person saw it; refused when the preview recorded now is not the one they saw.
pub fn approve(env: &Env, runbook: Option<&str>, step: &str, comment: Option<String>, seen: &Seen) -> Result<Event> {
    let who = env.who();
    act(env, runbook, step, waiting, |l, s| {
        let now = params_digest_now(&l.plan, &l.view, step);
        lifecycle::approve(
            s,
            l.view.step(step),
            l.view.state(s),
            now.as_deref(),
            &who,
            comment.clone(),
            seen,
            &env.policy,
        )
    })
}

/// `flow answer`: settle one of the plan's open questions, once: the reading chosen (1-based) or
/// none of them. Recorded with who and when; `flow plan` then plans with it.
pub fn answer(
    env: &Env,
    runbook: Option<&str>,
    question: &str,
    choice: Option<usize>,
    comment: Option<String>,
) -> Result<(Event, crate::domain::spec::Question)> {
    let mut tries = 0;
    loop {
        let mut j = env.open()?;
        let l = load(j.as_ref(), pick_runbook(j.as_ref(), runbook)?)?;
        let open: Vec<&str> = l.plan.questions.iter().map(|q| q.id.as_str()).collect();
        let Some(q) = l.plan.questions.iter().find(|q| q.id == question) else {
            return Err(Error::Refused(format!(
                "no open question `{question}` in runbook `{}`; open questions: {}",
                l.meta.name,
                if open.is_empty() { "none".into() } else { open.join(", ") }
            )));
        };
        if let Some(n) = choice.filter(|n| *n == 0 || *n > q.readings.len()) {
            return Err(Error::Usage(format!(
                "question `{question}` has readings 1 to {}; {n} is not one (or --none: none of them)",
                q.readings.len()
            )));
        }
        let body =
            Body::QuestionAnswered { question: q.id.clone(), key: q.key.clone(), choice, comment: comment.clone() };
        match env.append(j.as_mut(), &l.meta.name, l.view.next_seq(), vec![body]) {
            Ok(mut events) => {
                let e = events.pop().ok_or_else(|| Error::Refused("nothing was recorded".into()))?;
                return Ok((e, q.clone()));
            }
            Err(Error::Journal(crate::state::Error::Conflict { .. })) if tries < CONFLICT_RETRIES => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// What a step waiting for approval shows now: its artifact and the artifact's digest.
pub fn preview(env: &Env, runbook: Option<&str>, step: &str) -> Result<(String, String)> {
    let j = env.open()?;
    let l = load(j.as_ref(), pick_runbook(j.as_ref(), runbook)?)?;
    let s = find_step(&l, step, &waiting(&l))?;
    let v = l.view.step(step);
    match (&v.artifact, &v.artifact_digest, &v.approval) {
        (Some(a), Some(d), _) if v.phase == Phase::AwaitingApproval => Ok((a.clone(), d.clone())),
        (_, _, Some(a)) if v.phase == Phase::Approved => Err(refused(
            Refusal::AlreadyApproved { step: step.into(), by: a.by.clone(), at: a.at.clone() },
            &waiting(&l),
        )),
        _ => Err(refused(Refusal::NotWaitingForApproval { step: step.into(), state: l.view.state(s) }, &waiting(&l))),
    }
}

/// `flow reject`.
pub fn reject(env: &Env, runbook: Option<&str>, step: &str, reason: &str) -> Result<Event> {
    let who = env.who();
    act(env, runbook, step, waiting, |l, s| lifecycle::reject(step, l.view.step(step), l.view.state(s), &who, reason))
}

/// `flow retry`.
pub fn retry(env: &Env, runbook: Option<&str>, step: &str) -> Result<Event> {
    let by = env.actor.as_str();
    let failed = |l: &Loaded| {
        let ids: Vec<&str> = l
            .plan
            .steps
            .iter()
            .filter(|s| matches!(l.view.step(&s.id).phase, Phase::Failed | Phase::Rejected))
            .map(|s| s.id.as_str())
            .collect();
        if ids.is_empty() {
            "no step has failed or been rejected".to_string()
        } else {
            format!("failed or rejected: {}", ids.join(", "))
        }
    };
    act(env, runbook, step, failed, |l, s| {
        let kind = crate::domain::catalogue::StepKind::parse(&s.kind);
        lifecycle::retry(step, kind, l.view.step(step), l.view.state(s), by)
    })
}

/// `flow skip`.
pub fn skip(env: &Env, runbook: Option<&str>, step: &str, reason: &str) -> Result<Event> {
    let by = env.actor.as_str();
    let see = |_: &Loaded| "see `flow status` for the steps".to_string();
    act(env, runbook, step, see, |l, s| lifecycle::skip(step, l.view.step(step), l.view.state(s), by, reason))
}
