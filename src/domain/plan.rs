//! The plan: a DAG of steps, as written to `workflows/<name>.toml` and kept in the state store,
//! and the difference between two versions of it.
//!
//! Steps hold their params as raw JSON so that a plan from any planner (or a hand-edited file)
//! reaches the one validator in [`super::validate`], which checks them against the typed params
//! of their kind ([`super::catalogue`]). A string param may reference an earlier step's output
//! as `${step-id.output}` ([`super::reference`]).

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::catalogue::StepKind;
use super::requirement::Requirement;
use super::spec::Context;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub runbook: String,
    /// The spec this plan was made from.
    #[serde(default)]
    pub spec: String,
    #[serde(default = "builtin")]
    pub planner: String,
    /// Set by LLM planners: who answered, and the cache key of the question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_by: Option<PlannedBy>,
    #[serde(default)]
    pub context: Context,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub requirements: Vec<Requirement>,
    /// What the spec leaves open until a person answers (`flow answer`): no step covers these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<super::spec::Question>,
}

fn builtin() -> String {
    "builtin".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedBy {
    pub provider: String,
    pub model: String,
    pub cache_key: String,
    pub prompt_version: String,
    /// Answers it took (1 = no repair).
    pub rounds: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub needs: Vec<String>,
    #[serde(default)]
    pub covers: Vec<String>,
    #[serde(default)]
    pub gate: bool,
    #[serde(default)]
    pub params: Map<String, Value>,
}

impl Plan {
    /// A plan of these steps for these requirements, by the `test` planner, with no context.
    pub fn of(runbook: &str, steps: Vec<Step>, requirements: Vec<Requirement>) -> Plan {
        Plan {
            runbook: runbook.into(),
            spec: String::new(),
            planner: "test".into(),
            planned_by: None,
            context: Default::default(),
            steps,
            requirements,
            questions: Vec::new(),
        }
    }

    /// Was this plan drafted by a model (whose `command` steps deserve a second look)?
    pub fn by_llm(&self) -> bool {
        self.planned_by.is_some()
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn requirement(&self, id: &str) -> Option<&Requirement> {
        self.requirements.iter().find(|r| r.id == id)
    }

    /// Each step's position by id (the first, for a duplicated id): lookups in O(1) for
    /// callers that walk the whole plan.
    pub fn index(&self) -> HashMap<&str, usize> {
        let mut ix = HashMap::with_capacity(self.steps.len());
        for (i, s) in self.steps.iter().enumerate() {
            ix.entry(s.id.as_str()).or_insert(i);
        }
        ix
    }

    /// Every step `id` depends on, directly or not. Unknown ids and cycles are tolerated (the
    /// validator reports them); the walk stops at what it has seen.
    pub fn ancestors<'a>(&'a self, index: &HashMap<&str, usize>, id: &str) -> BTreeSet<&'a str> {
        let mut out = BTreeSet::new();
        let needs = |id: &str| index.get(id).map(|&i| self.steps[i].needs.iter().map(String::as_str));
        let mut todo: Vec<&'a str> = needs(id).map(Iterator::collect).unwrap_or_default();
        while let Some(n) = todo.pop() {
            if out.insert(n) {
                if let Some(more) = needs(n) {
                    todo.extend(more);
                }
            }
        }
        out
    }

    /// Canonical digest of the whole plan.
    pub fn digest(&self) -> String {
        super::digest::of_json(&serde_json::to_value(self).unwrap_or(Value::Null))
    }
}

impl Step {
    /// Does a person approve this step before its effect? When the plan says so, and always
    /// for a kind that requires it, whatever the plan says.
    pub fn gated(&self) -> bool {
        self.gate || StepKind::parse(&self.kind).is_some_and(StepKind::requires_gate)
    }

    /// Digest of what the step does (not its description): a change voids its approval.
    pub fn definition_digest(&self) -> String {
        let v = serde_json::json!({
            "kind": self.kind, "needs": self.needs, "covers": self.covers,
            "gate": self.gate, "params": self.params,
        });
        super::digest::of_json(&v)
    }
}

/// Plan changes between two versions, by step id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl PlanDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

pub fn diff(old: &Plan, new: &Plan) -> PlanDiff {
    let mut d = PlanDiff::default();
    let (old_ix, new_ix) = (old.index(), new.index());
    for s in &new.steps {
        match old_ix.get(s.id.as_str()).map(|&i| &old.steps[i]) {
            None => d.added.push(s.id.clone()),
            Some(o) if o.definition_digest() != s.definition_digest() => d.changed.push(s.id.clone()),
            _ => {}
        }
    }
    d.removed = old.steps.iter().filter(|s| !new_ix.contains_key(s.id.as_str())).map(|s| s.id.clone()).collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(id: &str, needs: &[&str], run: &str) -> Step {
        Step {
            id: id.into(),
            kind: "command".into(),
            description: format!("about {id}"),
            needs: needs.iter().map(|s| s.to_string()).collect(),
            covers: vec![],
            gate: true,
            params: json!({"run": run}).as_object().unwrap().clone(),
        }
    }

    fn plan(steps: Vec<Step>) -> Plan {
        Plan::of("t", steps, vec![])
    }

    #[test]
    fn ancestors_are_transitive_and_survive_cycles() {
        let p = plan(vec![step("a", &["c"], "x"), step("b", &["a"], "x"), step("c", &["b", "ghost"], "x")]);
        let ix = p.index();
        assert_eq!(p.ancestors(&ix, "b").into_iter().collect::<Vec<_>>(), ["a", "b", "c", "ghost"]);
    }

    #[test]
    fn diff_by_definition_not_description() {
        let old = plan(vec![step("a", &[], "x"), step("b", &[], "y"), step("c", &[], "z")]);
        let mut new = plan(vec![step("a", &[], "x"), step("b", &[], "y2"), step("d", &[], "w")]);
        new.steps[0].description = "reworded".into();
        let d = diff(&old, &new);
        assert_eq!(
            (d.added, d.removed, d.changed),
            (vec!["d".to_string()], vec!["c".to_string()], vec!["b".to_string()])
        );
    }
}
