//! The projection of a runbook's journal: the current plan version and every step's view. It
//! is built incrementally, one event at a time ([`RunbookView::apply`]), so a reader that kept
//! a view (the engine), or a snapshot of one (the state store), only folds the events after it.
//! Pure: no clock, no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::event::{Body, Event};
use super::lifecycle::{self, Phase, State, StepView};
use super::plan::Step;

/// Bump when [`RunbookView`] or the fold changes shape: older snapshots are then ignored and
/// the view is folded again from the events.
pub const PROJECTION_VERSION: u32 = 3;

/// The projection of a whole journal, up to `last_seq`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunbookView {
    pub version: u32,
    pub plan_digest: String,
    /// The last version a planner made (`flow plan`), as opposed to an edit of the workflow
    /// file: a re-plan that gives the same answer keeps the person's edit.
    #[serde(default)]
    pub planned_version: u32,
    /// Where the current version came from: `plan` or `workflow edit`.
    #[serde(default)]
    pub source: String,
    pub steps: BTreeMap<String, StepView>,
    pub last_seq: u64,
    /// The keys of the notices already sent (or being sent): each is sent once.
    #[serde(default)]
    pub notified: BTreeSet<String>,
    /// The digest of the approval policy last journaled (empty: none yet).
    #[serde(default)]
    pub policy_digest: String,
    /// What people answered to the spec's questions, by question key.
    #[serde(default)]
    pub answers: BTreeMap<String, super::spec::Answer>,
}

/// The source of a plan version a planner made (`flow plan`).
pub const PLANNED: &str = "plan";
/// The source of a version recorded from an edit of the workflow file.
pub const EDITED: &str = "workflow edit";

static FRESH: LazyLock<StepView> = LazyLock::new(StepView::default);

impl RunbookView {
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut v = RunbookView::default();
        for e in events {
            v.apply(e);
        }
        v
    }

    /// A step's view (a fresh one for a step the journal has not mentioned yet).
    pub fn step(&self, id: &str) -> &StepView {
        self.steps.get(id).unwrap_or(&FRESH)
    }

    /// The next sequence number the journal will take.
    pub fn next_seq(&self) -> u64 {
        self.last_seq + 1
    }

    /// Fold one event. Returns the step it changed, if any.
    pub fn apply<'e>(&mut self, e: &'e Event) -> Option<&'e str> {
        self.last_seq = e.seq;
        if let Body::PlanRecorded { version, digest, added, changed, removed, reopened, source, .. } = &e.body {
            self.version = *version;
            self.plan_digest = digest.clone();
            self.source = source.clone();
            if source == PLANNED {
                self.planned_version = *version;
            }
            for id in removed {
                self.steps.remove(id);
            }
            for id in changed {
                if let Some(old) = self.steps.get_mut(id) {
                    *old = old.restarted(*version);
                }
            }
            // Whoever recorded the version that added or changed a step is its author.
            for id in added.iter().chain(changed) {
                self.steps.entry(id.clone()).or_default().author = Some(e.actor.clone());
            }
            for id in reopened {
                if let Some(old) = self.steps.get_mut(id) {
                    *old = old.reopened(*version);
                }
            }
            return None;
        }
        if let Body::NotifyStarted { key, .. } = &e.body {
            self.notified.insert(key.clone());
            return None;
        }
        if let Body::PolicyRecorded { digest, .. } = &e.body {
            self.policy_digest = digest.clone();
            return None;
        }
        if let Body::QuestionAnswered { key, choice, .. } = &e.body {
            let by = super::lifecycle::shown_as(&e.actor, e.as_name.as_deref());
            self.answers.insert(key.clone(), super::spec::Answer { choice: *choice, by, at: e.at.clone() });
            return None;
        }
        let id = e.body.step()?;
        let s = self.steps.entry(id.to_string()).or_default();
        lifecycle::apply(s, &e.body, &e.at);
        Some(id)
    }

    /// An output a succeeded step recorded, for resolving references.
    pub fn output(&self, step: &str, output: &str) -> Option<&Value> {
        self.steps.get(step).filter(|s| s.phase == Phase::Succeeded).and_then(|s| s.outputs.get(output))
    }

    pub fn needs_done(&self, step: &Step) -> bool {
        step.needs.iter().all(|n| self.steps.get(n).is_some_and(|s| s.phase.satisfies_needs()))
    }

    /// The state name of the JSON contract.
    pub fn state(&self, step: &Step) -> State {
        lifecycle::state(self.step(&step.id), self.needs_done(step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn ev(seq: u64, body: Body) -> Event {
        Event { seq, at: format!("t{seq}"), actor: "test".into(), as_name: None, host: String::new(), body }
    }

    fn recorded(version: u32, added: &[&str], changed: &[&str], removed: &[&str]) -> Body {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect();
        Body::PlanRecorded {
            version,
            digest: format!("d{version}"),
            planner: "b".into(),
            source: "plan".into(),
            added: v(added),
            removed: v(removed),
            changed: v(changed),
            reopened: vec![],
        }
    }

    #[test]
    fn a_changed_step_loses_its_state_and_approval() {
        let events = [
            ev(1, recorded(1, &["s", "t", "u"], &[], &[])),
            ev(
                2,
                Body::Approved {
                    step: "s".into(),
                    by: "a".into(),
                    comment: None,
                    artifact_digest: "a".into(),
                    params_digest: "p".into(),
                    shown: None,
                    as_name: None,
                    complete: true,
                    missing: vec![],
                },
            ),
            ev(3, Body::Succeeded { step: "t".into(), outputs: Map::new(), evidence: Map::new() }),
            ev(4, Body::Succeeded { step: "u".into(), outputs: Map::new(), evidence: Map::new() }),
            ev(5, recorded(2, &[], &["s"], &["u"])),
        ];
        let v = RunbookView::from_events(&events);
        assert_eq!((v.version, v.last_seq), (2, 5));
        assert_eq!(v.step("s").phase, Phase::Idle);
        assert!(v.step("s").approval.is_none());
        assert_eq!(v.step("s").void_reason.as_deref(), Some("step definition changed in plan version 2"));
        assert_eq!(v.step("t").phase, Phase::Succeeded);
        assert!(!v.steps.contains_key("u"));
    }

    #[test]
    fn folding_in_parts_gives_the_same_view_and_survives_a_snapshot() {
        let events: Vec<Event> = (1..=40)
            .map(|i| match i {
                1 => ev(1, recorded(1, &["a", "b"], &[], &[])),
                i if i % 2 == 0 => ev(i, Body::PreviewStarted { step: "a".into(), attempt: i as u32 }),
                i => ev(i, Body::Blocked { step: "b".into(), reason: format!("r{i}") }),
            })
            .collect();
        let whole = RunbookView::from_events(&events);
        let mut part = RunbookView::from_events(&events[..17]);
        let json = serde_json::to_string(&part).unwrap();
        part = serde_json::from_str(&json).unwrap();
        for e in &events[17..] {
            part.apply(e);
        }
        assert_eq!(part, whole);
        assert_eq!(whole.next_seq(), 41);
    }
}
