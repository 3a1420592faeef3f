//! Journal events and plan diffs in one line each, for people: `flow log`, `flow run`'s
//! progress, the report's journal appendix.

use crate::clock::rfc3339;
use crate::domain::digest;
use crate::domain::event::{Body, Event};
use crate::domain::lifecycle::shown_as;
use crate::domain::plan::PlanDiff;

pub fn diff(d: &PlanDiff) -> String {
    let part = |sign: &str, v: &[String]| {
        if v.is_empty() {
            None
        } else {
            Some(format!("{sign}{}", v.join(&format!(" {sign}"))))
        }
    };
    let parts: Vec<String> =
        [part("+", &d.added), part("-", &d.removed), part("~", &d.changed)].into_iter().flatten().collect();
    if parts.is_empty() {
        "no step changed".into()
    } else {
        parts.join(" ")
    }
}

/// One journal line: `#12 2026-11-25T10:00:00Z ana approved changeset-network ...`.
pub fn event(e: &Event) -> String {
    let what = match &e.body {
        Body::PlanRecorded { version, planner, source, added, removed, changed, .. } => format!(
            "plan version {version} ({planner}, from {source}): {}",
            diff(&PlanDiff { added: added.clone(), removed: removed.clone(), changed: changed.clone() })
        ),
        Body::RunStarted { pid } => format!("run started (pid {pid})"),
        Body::RunFinished { outcome } => format!(
            "run finished: {}",
            match outcome.as_str() {
                "waitingapproval" => "waiting for approval",
                "waiting" => "waiting (a step is polled again later)",
                "unsupported" => "a step of a kind this build cannot run",
                other => other,
            }
        ),
        Body::PreviewStarted { attempt, .. } => format!("preview (attempt {attempt})"),
        Body::PreviewRecorded { artifact_digest, .. } => {
            format!("waiting for approval ({})", digest::short(artifact_digest))
        }
        Body::Approved { by, as_name, comment, artifact_digest, complete, missing, .. } => format!(
            "approved by {} ({}){}{}",
            shown_as(by, as_name.as_deref()),
            digest::short(artifact_digest),
            comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default(),
            if *complete { String::new() } else { format!(" (partial: still needs {})", missing.join("; ")) }
        ),
        Body::ApprovalIncomplete { missing, .. } => {
            format!("waits again: the approval policy in force needs {}", missing.join("; "))
        }
        Body::QuestionAnswered { question, choice, comment, .. } => format!(
            "answered {question}: {}{}",
            choice.map(|n| format!("reading {n}")).unwrap_or_else(|| "none of the readings: not a target".into()),
            comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
        ),
        Body::PolicyRecorded { digest, policy } => {
            let rules = policy.get("approval").and_then(|r| r.as_array()).map(Vec::len).unwrap_or(0);
            format!(
                "approval policy in force: {rules} rule{} ({})",
                if rules == 1 { "" } else { "s" },
                digest::short(digest)
            )
        }
        Body::ApprovalVoided { reason, .. } => format!("approval void: {reason}"),
        Body::Rejected { by, as_name, reason, .. } => {
            format!("rejected by {}: {reason}", shown_as(by, as_name.as_deref()))
        }
        Body::SubmitStarted { attempt, token, .. } => format!("started (attempt {attempt}, token {token})"),
        Body::WaitScheduled { next_poll_at, note, .. } => format!("waiting until {}: {note}", rfc3339(*next_poll_at)),
        Body::Succeeded { outputs, .. } => {
            let o: Vec<String> = outputs.iter().take(6).map(|(k, v)| format!("{k}={v}")).collect();
            format!("succeeded {}", o.join(" "))
        }
        Body::Failed { error, interrupted, .. } => {
            format!("{}: {error}", if *interrupted { "interrupted" } else { "failed" })
        }
        Body::Blocked { reason, .. } => format!("blocked: {reason}"),
        Body::Skipped { by, reason, .. } => format!("skipped by {by}: {reason}"),
        Body::RetryRequested { by, keep_approval, .. } => {
            format!("retry requested by {by}{}", if *keep_approval { "" } else { " (to be approved again)" })
        }
        Body::NotifyStarted { kind, title, .. } => format!("notify ({kind}): {title}"),
        Body::Notified { key, ok: true, .. } => format!("notified: {key}"),
        Body::Notified { key, error, .. } => {
            format!("notice {key} not delivered: {}", error.clone().unwrap_or_default())
        }
        Body::OutcomeDiscarded { effect, reason, result, .. } => {
            format!("{effect} result not applied ({result}): {reason}")
        }
    };
    let who = e.who();
    match e.body.step() {
        Some(s) => format!("#{:<4} {} {who:<10} {s}: {what}", e.seq, e.at),
        None => format!("#{:<4} {} {who:<10} {what}", e.seq, e.at),
    }
}
