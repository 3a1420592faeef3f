//! Notices: what people are told as a runbook moves, and when. A gate starts waiting (what it
//! will do, and the exact command that approves it), a step fails, a long wait is scheduled (a
//! quota request, a restore: run flow again then), the runbook completes (with the go/no-go
//! answer). Each has a key, so it is sent at most once: the engine journals the intent under
//! the key before sending, and the projection remembers the keys. Pure.

use serde::{Deserialize, Serialize};

use super::event::{Body, Event};
use super::plan::Plan;
use super::runbook::RunbookView;
use super::verdict;

/// A wait this long or longer is worth telling people about (shorter ones are retries).
pub const LONG_WAIT_MS: u64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Once per key.
    pub key: String,
    /// `gate_waiting`, `step_failed`, `long_wait`, `completed`.
    pub kind: String,
    pub runbook: String,
    pub step: Option<String>,
    /// One line.
    pub title: String,
    /// The rest, plain text.
    pub text: String,
}

fn when(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}

/// The notice a just-recorded event calls for, if any.
pub fn about(e: &Event, plan: &Plan) -> Option<Notice> {
    let rb = plan.runbook.as_str();
    let kind_of = |s: &str| plan.step(s).map(|st| st.kind.clone()).unwrap_or_default();
    let notice = |kind: &str, step: &str, title: String, text: String| Notice {
        key: format!("{kind}:{step}:{}", e.seq),
        kind: kind.into(),
        runbook: rb.into(),
        step: Some(step.into()),
        title,
        text,
    };
    match &e.body {
        Body::PreviewRecorded { step, artifact, .. } => Some(notice(
            "gate_waiting",
            step,
            format!("{rb}: `{step}` waits for approval"),
            format!(
                "{step} ({}) will:\n{}\nTo approve it: flow approve {step} --runbook {rb}\nTo reject it: flow reject {step} --reason ... --runbook {rb}",
                kind_of(step),
                artifact.trim_end()
            ),
        )),
        Body::Failed { step, error, interrupted } => Some(notice(
            "step_failed",
            step,
            format!("{rb}: `{step}` {}", if *interrupted { "was interrupted" } else { "failed" }),
            format!("{error}\nAfter a look: flow retry {step} --runbook {rb}, or flow skip {step} --reason ... --runbook {rb}"),
        )),
        Body::WaitScheduled { step, next_poll_at, note, .. } => {
            let at = humantime::parse_rfc3339_weak(&e.at).ok()?;
            let now = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64;
            (next_poll_at.saturating_sub(now) >= LONG_WAIT_MS).then(|| {
                notice(
                    "long_wait",
                    step,
                    format!("{rb}: `{step}` waits until {}", when(*next_poll_at)),
                    format!("{note}\nflow run --runbook {rb} picks it up after {} (by hand, cron or CI)", when(*next_poll_at)),
                )
            })
        }
        _ => None,
    }
}

/// The notice of a runbook done: the go/no-go answer on its evidence.
pub fn completed(plan: &Plan, view: &RunbookView) -> Notice {
    let verdicts = verdict::verdicts(plan, view);
    let d = verdict::decision(plan, view, &verdicts);
    let mut text = format!("{}\n", d.headline);
    for v in &verdicts {
        text.push_str(&format!("{} {} {} {}\n", v.verdict, v.id, v.kind, v.target));
    }
    if !d.failing.is_empty() {
        text.push_str(&format!("failing: {}\n", d.failing.join(", ")));
    }
    if !d.unverified.is_empty() {
        text.push_str(&format!("unverified: {}\n", d.unverified.join(", ")));
    }
    text.push_str(&format!("The report: flow report --runbook {} -o report.html", plan.runbook));
    Notice {
        key: format!("completed:v{}", view.version),
        kind: "completed".into(),
        runbook: plan.runbook.clone(),
        step: None,
        title: format!("{}: every step is done: {}", plan.runbook, d.word),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(seq: u64, at: &str, body: Body) -> Event {
        Event { seq, at: at.into(), actor: "t".into(), as_name: None, host: String::new(), body }
    }

    #[test]
    fn which_events_are_told_and_how() {
        let spec = crate::domain::spec::parse("r.md", "- RTO 2 hours\n").unwrap();
        let plan = crate::planner::builtin::plan("r", "r.md", &spec, None);
        let gate = ev(
            4,
            "2026-12-02T10:00:00Z",
            Body::PreviewRecorded {
                step: "restore-drill".into(),
                artifact: "restore X\n".into(),
                artifact_digest: "a".into(),
                params_digest: "p".into(),
            },
        );
        let n = about(&gate, &plan).unwrap();
        assert_eq!((n.key.as_str(), n.kind.as_str()), ("gate_waiting:restore-drill:4", "gate_waiting"));
        assert!(
            n.text.contains("restore X") && n.text.contains("flow approve restore-drill --runbook r"),
            "{}",
            n.text
        );
        let short = ev(
            5,
            "2026-12-02T10:00:00Z",
            Body::WaitScheduled {
                step: "s".into(),
                next_poll_at: 1796205660000,
                note: "n".into(),
                handle: json!(null),
            },
        );
        assert_eq!(about(&short, &plan), None, "a one-minute retry is not news");
        let long = ev(
            6,
            "2026-12-02T10:00:00Z",
            Body::WaitScheduled {
                step: "s".into(),
                next_poll_at: 1796205600000 + 3_600_000,
                note: "quota request".into(),
                handle: json!(null),
            },
        );
        assert!(about(&long, &plan).unwrap().title.contains("waits until 2026-12-02T11:00:00Z"));
        assert_eq!(about(&ev(7, "t", Body::RunStarted { pid: 1 }), &plan), None);
        let done = completed(&plan, &RunbookView::default());
        assert_eq!(done.key, "completed:v0");
        assert!(done.title.ends_with("NO-GO") && done.text.contains("unverified: req-1"), "{done:?}");
    }
}
