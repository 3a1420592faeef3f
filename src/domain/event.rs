//! Journal events: the vocabulary of a runbook's history. Every transition, approval, retry and
//! skip is one [`Event`]; the current state is their fold ([`super::lifecycle::apply`] per step,
//! [`super::runbook::RunbookView`] for the whole runbook). Pure data.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub at: String,
    /// Who: the AWS caller identity on shared state (from STS), the OS user locally; never
    /// only what a flag says.
    pub actor: String,
    /// The display name the person gave (`--as`), shown next to the identity.
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub as_name: Option<String>,
    /// The machine it was written from (empty in journals written before hosts were kept).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(flatten)]
    pub body: Body,
}

/// An identity with the display name its holder gave: `arn:...:user/alice (as Alice)`.
pub fn shown_as(by: &str, as_name: Option<&str>) -> String {
    match as_name {
        Some(n) if n != by => format!("{by} (as {n})"),
        _ => by.to_string(),
    }
}

impl Event {
    /// Who wrote it, and from which machine when it is known: `alice@build-7`, or with a
    /// display name `arn:...:user/alice (as Alice)@build-7`.
    pub fn who(&self) -> String {
        let who = shown_as(&self.actor, self.as_name.as_deref());
        if self.host.is_empty() {
            who
        } else {
            format!("{who}@{}", self.host)
        }
    }
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
        /// Steps downstream of a changed one whose preview or decision no longer holds: a
        /// gate waiting or approved, a decision taken. They are shown again for approval.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reopened: Vec<String>,
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
    /// One person's approval of what was shown. With an approval policy asking for more than
    /// one, it may be partial (`complete: false`): the step keeps waiting for `missing`.
    Approved {
        step: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        as_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        artifact_digest: String,
        params_digest: String,
        /// How the person saw what they approved: the digest they gave (`--digest`), or
        /// `confirmed` when the artifact was printed on their terminal and they said yes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shown: Option<String>,
        #[serde(default = "yes", skip_serializing_if = "is_yes")]
        complete: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        missing: Vec<String>,
    },
    /// An approved step falls short of the approval policy now in force (made stricter since):
    /// it waits for what is missing before its effect.
    ApprovalIncomplete {
        step: String,
        missing: Vec<String>,
    },
    /// A person settled a question the spec left open (`flow answer`): the reading chosen
    /// (1-based), or none of them. Kept under the question's key, so it holds across re-plans
    /// while the lines it is about are unchanged.
    QuestionAnswered {
        question: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        choice: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// The approval policy in force changed (`flow.toml`).
    PolicyRecorded {
        digest: String,
        policy: Value,
    },
    ApprovalVoided {
        step: String,
        reason: String,
    },
    Rejected {
        step: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        as_name: Option<String>,
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
        /// Does the step's approval carry over? Not for a kind whose approval covers one run
        /// (a drill): the next run is shown and approved again.
        #[serde(default = "yes", skip_serializing_if = "is_yes")]
        keep_approval: bool,
    },
    /// Intent: a notice is about to be sent, once (see [`super::notify`]).
    NotifyStarted {
        key: String,
        kind: String,
        title: String,
    },
    /// How sending it went.
    Notified {
        key: String,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// An effect finished after its step had moved on (rejected, skipped, or changed by a new
    /// plan version while it ran): its result is kept here for the audit and not applied.
    OutcomeDiscarded {
        step: String,
        effect: String,
        reason: String,
        result: String,
    },
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

impl Body {
    pub fn step(&self) -> Option<&str> {
        use Body::*;
        match self {
            PreviewStarted { step, .. }
            | PreviewRecorded { step, .. }
            | Approved { step, .. }
            | ApprovalIncomplete { step, .. }
            | ApprovalVoided { step, .. }
            | Rejected { step, .. }
            | SubmitStarted { step, .. }
            | WaitScheduled { step, .. }
            | Succeeded { step, .. }
            | Failed { step, .. }
            | Blocked { step, .. }
            | Skipped { step, .. }
            | RetryRequested { step, .. }
            | OutcomeDiscarded { step, .. } => Some(step),
            PlanRecorded { .. }
            | PolicyRecorded { .. }
            | QuestionAnswered { .. }
            | RunStarted { .. }
            | RunFinished { .. }
            | NotifyStarted { .. }
            | Notified { .. } => None,
        }
    }

    /// The event's name in the journal (`plan_recorded`, `approved` ...).
    pub fn name(&self) -> &'static str {
        use Body::*;
        match self {
            PlanRecorded { .. } => "plan_recorded",
            RunStarted { .. } => "run_started",
            RunFinished { .. } => "run_finished",
            PreviewStarted { .. } => "preview_started",
            PreviewRecorded { .. } => "preview_recorded",
            Approved { .. } => "approved",
            ApprovalIncomplete { .. } => "approval_incomplete",
            PolicyRecorded { .. } => "policy_recorded",
            QuestionAnswered { .. } => "question_answered",
            ApprovalVoided { .. } => "approval_voided",
            Rejected { .. } => "rejected",
            SubmitStarted { .. } => "submit_started",
            WaitScheduled { .. } => "wait_scheduled",
            Succeeded { .. } => "succeeded",
            Failed { .. } => "failed",
            Blocked { .. } => "blocked",
            Skipped { .. } => "skipped",
            RetryRequested { .. } => "retry_requested",
            OutcomeDiscarded { .. } => "outcome_discarded",
            NotifyStarted { .. } => "notify_started",
            Notified { .. } => "notified",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_their_name_as_tag() {
        let bodies = [
            Body::Skipped { step: "s".into(), by: "ana".into(), reason: "done by hand".into() },
            Body::RunStarted { pid: 7 },
            Body::OutcomeDiscarded {
                step: "s".into(),
                effect: "submit".into(),
                reason: "r".into(),
                result: "x".into(),
            },
        ];
        for body in bodies {
            let e = Event { seq: 7, at: "t".into(), actor: "test".into(), as_name: None, host: String::new(), body };
            let j = serde_json::to_value(&e).unwrap();
            assert_eq!(j["event"], e.body.name());
            assert_eq!(serde_json::from_value::<Event>(j).unwrap(), e);
        }
    }
}
