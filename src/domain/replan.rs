//! What a new plan version would cost: re-planning (or an edit of the workflow file) starts
//! changed and removed steps over and shows gates downstream of them again. Before `flow plan`
//! records a version that throws away evidence, approvals or a person's edit, it says exactly
//! what would be lost ([`Loss`]) and needs `--force`. Pure.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::catalogue::StepKind;
use super::event::{Body, Event};
use super::human;
use super::lifecycle::{Phase, StepView};
use super::plan::{diff, Plan, PlanDiff, Step};
use super::runbook::RunbookView;
use super::verdict;

/// Steps downstream of `changed` (in `new`) whose preview or decision would no longer hold: a
/// gate waiting for approval or approved, or a decision (an `approval` step) already taken.
pub fn reopened(new: &Plan, view: &RunbookView, d: &PlanDiff) -> Vec<String> {
    let mut dependants: HashMap<&str, Vec<&str>> = HashMap::new();
    for s in &new.steps {
        for n in &s.needs {
            dependants.entry(n.as_str()).or_default().push(s.id.as_str());
        }
    }
    let touched: BTreeSet<&str> = d.changed.iter().chain(&d.removed).map(String::as_str).collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> = touched.iter().copied().collect();
    while let Some(id) = todo.pop() {
        for &next in dependants.get(id).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(next) {
                todo.push(next);
            }
        }
    }
    new.steps
        .iter()
        .filter(|s| seen.contains(s.id.as_str()) && !touched.contains(s.id.as_str()))
        .filter(|s| {
            let v = view.step(&s.id);
            let decision = StepKind::parse(&s.kind).is_some_and(StepKind::is_decision);
            matches!(v.phase, Phase::AwaitingApproval | Phase::Approved) || (decision && v.phase == Phase::Succeeded)
        })
        .map(|s| s.id.clone())
        .collect()
}

/// A step that would start over, and what it holds now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LostStep {
    pub id: String,
    /// `changed`, `removed`, or `reopened` (a gate downstream of a changed step).
    pub how: String,
    /// What is recorded for it now, in words.
    pub holds: String,
}

/// A requirement whose verdict would become unverified.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LostVerdict {
    pub id: String,
    pub kind: String,
    pub verdict: String,
}

/// A person's edit of the workflow file that the planner's plan would replace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LostEdit {
    /// The version the edit was recorded as (`None`: not recorded yet, only in the file).
    pub version: Option<u32>,
    /// One line per difference: `peak-load: params.duration_s 5 (the edit) -> 600 (the planner)`.
    pub changes: Vec<String>,
}

/// What recording a new plan version would throw away.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Loss {
    pub steps: Vec<LostStep>,
    pub verdicts: Vec<LostVerdict>,
    pub edit: Option<LostEdit>,
}

impl Loss {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.verdicts.is_empty() && self.edit.is_none()
    }

    /// For people: one line a loss, under headings.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if !self.steps.is_empty() {
            out.push_str("  steps that start over, with what they hold now:\n");
            for s in &self.steps {
                out.push_str(&format!("    {} ({}): {}\n", s.id, s.how, s.holds));
            }
        }
        if !self.verdicts.is_empty() {
            out.push_str("  verdicts that become unverified:\n");
            for v in &self.verdicts {
                out.push_str(&format!("    {} {} (now {})\n", v.id, v.kind, v.verdict));
            }
        }
        if let Some(e) = &self.edit {
            match e.version {
                Some(v) => out.push_str(&format!("  the edit of the workflow file recorded as version {v}:\n")),
                None => out.push_str("  the edit of the workflow file not yet recorded by `flow run`:\n"),
            }
            for c in &e.changes {
                out.push_str(&format!("    {c}\n"));
            }
        }
        out
    }
}

/// What a step holds, in words: `succeeded: throughput 2,625 req/s, success rate 100 %`,
/// `approved by ana at ...`, `waiting: quota request ...`.
fn holds(v: &StepView) -> String {
    let mut parts = Vec::new();
    match v.phase {
        Phase::Succeeded => {
            let figures: Vec<String> = v
                .outputs
                .iter()
                .filter_map(|(k, val)| {
                    val.as_f64().map(|x| format!("{} {}", human::metric_name(k), human::metric(k, x)))
                })
                .take(3)
                .collect();
            parts.push(if figures.is_empty() {
                "succeeded".to_string()
            } else {
                format!("succeeded: {}", figures.join(", "))
            });
        }
        Phase::Waiting => {
            parts.push(format!("waiting on {}", v.note.clone().unwrap_or_else(|| "something external".into())))
        }
        Phase::Skipped | Phase::Rejected => parts.push(v.reason.clone().unwrap_or_default()),
        Phase::AwaitingApproval => parts.push("waiting for approval".into()),
        Phase::Failed => parts.push("failed".into()),
        _ => {}
    }
    if let Some(a) = &v.approval {
        parts.push(format!("approved by {} at {}", a.by, a.at));
    }
    parts.join("; ")
}

/// The differences between two versions of a step, one line each (`params.duration_s 5 -> 600`).
pub fn step_changes(id: &str, from: &Step, to: &Step, from_is: &str, to_is: &str) -> Vec<String> {
    let a = serde_json::to_value(from).unwrap_or_default();
    let b = serde_json::to_value(to).unwrap_or_default();
    let mut out = Vec::new();
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<(String, String, String)>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    let null = serde_json::Value::Null;
                    walk(&p, x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), out);
                }
            }
            _ if a != b => out.push((path.to_string(), a.to_string(), b.to_string())),
            _ => {}
        }
    }
    let mut diffs = Vec::new();
    walk("", &a, &b, &mut diffs);
    for (path, x, y) in diffs.into_iter().filter(|(p, ..)| p != "description") {
        out.push(format!("{id}: {path} {x} ({from_is}) -> {y} ({to_is})"));
    }
    out
}

/// What recording `new` over `current` (the runbook's view `view`) would lose. `edit` is the
/// person's edit `new` would replace: the edited plan and the planner's plan it was made from
/// (or `None` when the current version is the planner's own and the file holds no edit).
pub fn loss(current: &Plan, view: &RunbookView, new: &Plan, edit: Option<(&Plan, &Plan, Option<u32>)>) -> Loss {
    let d = diff(current, new);
    let mut steps = Vec::new();
    for (ids, how) in [(&d.changed, "changed"), (&d.removed, "removed")] {
        for id in ids {
            let v = view.step(id);
            if v.holds_something() {
                steps.push(LostStep { id: id.clone(), how: how.into(), holds: holds(v) });
            }
        }
    }
    let reopened = reopened(new, view, &d);
    for id in &reopened {
        let v = view.step(id);
        if v.holds_something() {
            steps.push(LostStep {
                id: id.clone(),
                how: "reopened: a step it depends on changed".into(),
                holds: holds(v),
            });
        }
    }
    // The verdicts as they are, and as they would be once the new version is recorded.
    let before = verdict::verdicts(current, view);
    let mut after_view = view.clone();
    after_view.apply(&Event {
        seq: view.next_seq(),
        at: String::new(),
        actor: String::new(),
        as_name: None,
        host: String::new(),
        body: Body::PlanRecorded {
            version: view.version + 1,
            digest: new.digest(),
            planner: new.planner.clone(),
            source: String::new(),
            added: d.added.clone(),
            removed: d.removed.clone(),
            changed: d.changed.clone(),
            reopened,
        },
    });
    let after = verdict::verdicts(new, &after_view);
    let verdicts = before
        .iter()
        .filter(|b| matches!(b.verdict.as_str(), "pass" | "fail"))
        .filter(|b| after.iter().find(|a| a.id == b.id).is_none_or(|a| a.verdict == "unverified"))
        .map(|b| LostVerdict { id: b.id.clone(), kind: b.kind.clone(), verdict: b.verdict.clone() })
        .collect();
    let edit = edit.and_then(|(edited, planned, version)| {
        let mut changes = Vec::new();
        let (e_ix, p_ix) = (edited.index(), planned.index());
        for s in &edited.steps {
            match p_ix.get(s.id.as_str()).map(|&i| &planned.steps[i]) {
                None => changes.push(format!("{}: added by the edit", s.id)),
                Some(p) => changes.extend(step_changes(&s.id, s, p, "the edit", "the planner")),
            }
        }
        for s in planned.steps.iter().filter(|s| !e_ix.contains_key(s.id.as_str())) {
            changes.push(format!("{}: removed by the edit", s.id));
        }
        (!changes.is_empty()).then_some(LostEdit { version, changes })
    });
    Loss { steps, verdicts, edit }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn step(id: &str, kind: &str, needs: &[&str], gate: bool, params: serde_json::Value) -> Step {
        Step {
            id: id.into(),
            kind: kind.into(),
            description: String::new(),
            needs: needs.iter().map(|s| s.to_string()).collect(),
            covers: vec![],
            gate,
            params: params.as_object().cloned().unwrap_or_default(),
        }
    }

    fn ev(seq: u64, body: Body) -> Event {
        Event { seq, at: "t".into(), actor: "ana".into(), as_name: None, host: String::new(), body }
    }

    #[test]
    fn a_changed_step_reopens_the_gates_and_decisions_after_it() {
        let old = Plan::of(
            "rb",
            vec![
                step("load", "command", &[], true, json!({"run": "a"})),
                step("deploy", "command", &["load"], true, json!({"run": "d"})),
                step("go", "approval", &["deploy"], true, json!({"summary": "go?"})),
                step("other", "command", &[], true, json!({"run": "o"})),
            ],
            vec![],
        );
        let mut new = old.clone();
        new.steps[0].params.insert("run".into(), json!("b"));
        let events = [
            ev(
                1,
                Body::Succeeded {
                    step: "load".into(),
                    outputs: Map::from_iter([("throughput_rps".into(), json!(2625.0))]),
                    evidence: Map::new(),
                },
            ),
            ev(
                2,
                Body::PreviewRecorded {
                    step: "deploy".into(),
                    artifact: "x".into(),
                    artifact_digest: "a".into(),
                    params_digest: "p".into(),
                },
            ),
            ev(3, Body::Succeeded { step: "go".into(), outputs: Map::new(), evidence: Map::new() }),
            ev(
                4,
                Body::PreviewRecorded {
                    step: "other".into(),
                    artifact: "x".into(),
                    artifact_digest: "a".into(),
                    params_digest: "p".into(),
                },
            ),
        ];
        let view = RunbookView::from_events(&events);
        let d = diff(&old, &new);
        assert_eq!(reopened(&new, &view, &d), ["deploy", "go"]);
        let l = loss(&old, &view, &new, None);
        let ids: Vec<(&str, &str)> = l.steps.iter().map(|s| (s.id.as_str(), s.how.as_str())).collect();
        assert_eq!(ids, [("load", "changed"), ("go", "reopened: a step it depends on changed")]);
        assert_eq!(l.steps[0].holds, "succeeded: throughput 2,625 req/s");
        assert!(!l.is_empty());
        // The same plan again loses nothing.
        assert!(loss(&old, &view, &old, None).is_empty());
    }

    #[test]
    fn an_edit_is_named_field_by_field() {
        let planned = Plan::of("rb", vec![step("load", "loadtest", &[], true, json!({"duration_s": 600}))], vec![]);
        let mut edited = planned.clone();
        edited.steps[0].params.insert("duration_s".into(), json!(5));
        let l = loss(&edited, &RunbookView::default(), &planned, Some((&edited, &planned, Some(2))));
        assert_eq!(
            l.edit,
            Some(LostEdit {
                version: Some(2),
                changes: vec!["load: params.duration_s 5 (the edit) -> 600 (the planner)".into()]
            })
        );
    }
}
