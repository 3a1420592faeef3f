//! The plan: a DAG of steps, as written to `workflows/<name>.toml` and kept in the state store.
//!
//! Steps hold their params as raw JSON so that a plan from any planner (or a hand-edited file)
//! reaches the one validator in [`super::validate`], which checks them against the typed params
//! of their kind ([`super::catalogue`]). A string param may reference an earlier step's output
//! as `${step-id.output}`: a whole-string reference keeps the output's type, an embedded one is
//! spliced into the text.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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

    /// Every step `id` depends on, directly or not. Unknown ids and cycles are tolerated (the
    /// validator reports them); the walk stops at what it has seen.
    pub fn ancestors(&self, id: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<&str> =
            self.step(id).map(|s| s.needs.iter().map(String::as_str).collect()).unwrap_or_default();
        while let Some(n) = todo.pop() {
            if out.insert(n.to_string()) {
                if let Some(s) = self.step(n) {
                    todo.extend(s.needs.iter().map(String::as_str));
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
        self.gate
            || super::catalogue::StepKind::parse(&self.kind).is_some_and(super::catalogue::StepKind::requires_gate)
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

/// `${step.output}` in a string param.
pub static REF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{(?P<step>[^.}\s]+)\.(?P<output>[^}\s]+)\}").unwrap());

/// A reference to another step's output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutputRef {
    pub step: String,
    pub output: String,
}

/// Every `${step.output}` in a params tree, with the param path it sits at.
pub fn references(params: &Map<String, Value>) -> Vec<(String, OutputRef)> {
    fn walk(path: String, v: &Value, out: &mut Vec<(String, OutputRef)>) {
        match v {
            Value::String(s) => {
                for c in REF.captures_iter(s) {
                    out.push((path.clone(), OutputRef { step: c["step"].into(), output: c["output"].into() }));
                }
            }
            Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| walk(format!("{path}[{i}]"), v, out)),
            Value::Object(m) => m.iter().for_each(|(k, v)| walk(format!("{path}.{k}"), v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (k, v) in params {
        walk(k.clone(), v, &mut out);
    }
    out
}

/// Replace references with the outputs they name. A string that is exactly one reference
/// takes the output's JSON value; embedded references are spliced as text. Returns the first
/// reference that has no value yet.
pub fn resolve(
    params: &Map<String, Value>,
    outputs: &BTreeMap<String, Map<String, Value>>,
) -> Result<Map<String, Value>, OutputRef> {
    fn lookup<'a>(outputs: &'a BTreeMap<String, Map<String, Value>>, r: &OutputRef) -> Option<&'a Value> {
        outputs.get(&r.step)?.get(&r.output)
    }
    fn walk(v: &Value, outputs: &BTreeMap<String, Map<String, Value>>) -> Result<Value, OutputRef> {
        Ok(match v {
            Value::String(s) => {
                if let Some(c) = REF.captures(s).filter(|c| c.get(0).unwrap().as_str() == s) {
                    let r = OutputRef { step: c["step"].into(), output: c["output"].into() };
                    return lookup(outputs, &r).cloned().ok_or(r);
                }
                let mut missing = None;
                let text = REF.replace_all(s, |c: &regex::Captures| {
                    let r = OutputRef { step: c["step"].into(), output: c["output"].into() };
                    match lookup(outputs, &r) {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Number(n)) => {
                            n.as_f64().map(super::requirement::fmt_num).unwrap_or_else(|| n.to_string())
                        }
                        Some(v) => v.to_string(),
                        None => {
                            missing.get_or_insert(r);
                            String::new()
                        }
                    }
                });
                if let Some(r) = missing {
                    return Err(r);
                }
                Value::String(text.into_owned())
            }
            Value::Array(a) => Value::Array(a.iter().map(|v| walk(v, outputs)).collect::<Result<_, _>>()?),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| Ok((k.clone(), walk(v, outputs)?))).collect::<Result<_, _>>()?)
            }
            other => other.clone(),
        })
    }
    params.iter().map(|(k, v)| Ok((k.clone(), walk(v, outputs)?))).collect()
}

/// A typed param that may instead hold a reference to an earlier step's output.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<T> {
    Value(T),
    Ref(String),
}

impl<T> Input<T> {
    /// The literal value; a reference left unresolved is a bug in the caller (params are
    /// resolved before an executor sees them), reported as an error, not a panic.
    pub fn get(&self) -> Result<&T, String> {
        match self {
            Input::Value(v) => Ok(v),
            Input::Ref(r) => Err(format!("reference {r} was not resolved")),
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Input<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if let Value::String(s) = &v {
            if REF.is_match(s) {
                return Ok(Input::Ref(s.clone()));
            }
        }
        T::deserialize(v).map(Input::Value).map_err(serde::de::Error::custom)
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Input<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Input_{}", T::schema_name()).into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [
                g.subschema_for::<T>(),
                {"type": "string", "pattern": "\\$\\{[^.}]+\\.[^}]+\\}", "description": "an earlier step's output: ${step-id.output}"}
            ]
        })
    }
}

impl<T: Serialize> Serialize for Input<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Input::Value(v) => v.serialize(s),
            Input::Ref(r) => r.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolve_keeps_types_and_splices_text() {
        let params = json!({"count": "${model.instances}", "url": "http://${stack.Dns}/health", "n": 3});
        let mut outputs = BTreeMap::new();
        outputs.insert("model".to_string(), json!({"instances": 6}).as_object().unwrap().clone());
        outputs.insert("stack".to_string(), json!({"Dns": "lb.example"}).as_object().unwrap().clone());
        let r = resolve(params.as_object().unwrap(), &outputs).unwrap();
        assert_eq!(Value::Object(r), json!({"count": 6, "url": "http://lb.example/health", "n": 3}));
        outputs.remove("stack");
        let missing = resolve(params.as_object().unwrap(), &outputs).unwrap_err();
        assert_eq!(missing, OutputRef { step: "stack".into(), output: "Dns".into() });
    }

    #[test]
    fn input_accepts_literal_or_reference() {
        let v: Input<f64> = serde_json::from_value(json!(2.5)).unwrap();
        assert_eq!(v, Input::Value(2.5));
        let v: Input<f64> = serde_json::from_value(json!("${a.b}")).unwrap();
        assert_eq!(v, Input::Ref("${a.b}".into()));
        assert!(serde_json::from_value::<Input<f64>>(json!("fast")).is_err());
    }
}
