//! The plan's JSON schemas: strict, and typed (one alternative per kind and way, for
//! grammar-constrained servers), written with properties in writing order.

use crate::domain::catalogue::{StepKind, Way, MAX_RATE};
use crate::domain::requirement::{Kind as ReqKind, Op, Requirement};
use serde_json::{json, Value};

use super::*;

/// The answer's shape, for response_format json_schema (strict), a forced tool's input schema,
/// or Bedrock's tool spec. Params travel as a JSON-encoded string so that the outer schema stays
/// within what strict mode accepts; each kind's params are listed in the prompt.
pub fn plan_schema() -> Value {
    let kinds: Vec<&str> = StepKind::all().map(|k| k.name()).collect();
    json!({
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "description": "slug: lowercase letters, digits, -"},
                        "kind": {"type": "string", "enum": kinds},
                        "description": {"type": "string"},
                        "needs": {"type": "array", "items": {"type": "string"}},
                        "covers": {"type": "array", "items": {"type": "string"}},
                        "gate": {"type": "boolean"},
                        "params_json": {"type": "string", "description": "the params, a JSON object encoded as a string"}
                    },
                    "required": ["id", "kind", "description", "needs", "covers", "gate", "params_json"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["steps"],
        "additionalProperties": false
    })
}

/// The plan's shape for a server that turns the schema into a grammar the answer must follow
/// (llama.cpp's `llama-server`, Ollama): each step is one of a set of objects, one per kind,
/// with `kind` fixed, `params` that kind's own params schema (objects, not a string to encode),
/// `gate` fixed to true for a gated kind and `covers` limited to the spec's requirements that
/// kind can verify. Whatever a small model writes then has params of the right types, no
/// invented requirement id and no ungated side effect; what is left to validate is the DAG.
/// Not for OpenAI's strict mode, which wants every property required.
pub fn typed_plan_schema(reqs: &[Requirement]) -> Value {
    let mut steps: Vec<Value> = Vec::new();
    // A load test that covers a throughput floor sends at least that rate (the validator's
    // rule, here in the grammar): one alternative covers it with such a rate, one does not.
    let floor = reqs
        .iter()
        .filter(|r| r.kind == ReqKind::Throughput && matches!(r.op, Op::Ge | Op::Gt))
        .map(|r| r.value)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    for k in StepKind::all() {
        let ids: Vec<&str> = reqs
            .iter()
            .filter(|r| r.kind.is_measurable() && !k.is_decision() && k.verifies(&r.kind))
            .map(|r| r.id.as_str())
            .collect();
        let mut params = k.params_schema();
        grammar_safe(&mut params);
        let variants = match (k, floor) {
            (StepKind::Loadtest, Some(floor)) => {
                let rest: Vec<&str> = ids
                    .iter()
                    .copied()
                    .filter(|id| reqs.iter().any(|r| r.id == *id && r.kind != ReqKind::Throughput))
                    .collect();
                let mut held = params.clone();
                held["properties"]["rate"] = json!({"anyOf": [
                    // A bound on both sides: llama.cpp ignores a lone minimum.
                    {"type": "integer", "minimum": floor.ceil() as u64, "maximum": MAX_RATE as u64},
                    {"type": "string", "pattern": REF_PATTERN}
                ]});
                vec![(ids, held), (rest, params)]
            }
            _ => vec![(ids, params)],
        };
        let gate = if k.requires_gate() { json!({"const": true}) } else { json!({"type": "boolean"}) };
        for (ids, params) in variants {
            let covers = if ids.is_empty() {
                json!({"type": "array", "items": {"type": "string"}, "maxItems": 0})
            } else {
                json!({"type": "array", "items": {"enum": ids}, "maxItems": ids.len()})
            };
            for params in ways(&params, k.def().ways) {
                steps.push(json!({
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
                        "kind": {"const": k.name()},
                        "description": {"type": "string"},
                        "needs": {"type": "array", "items": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"}, "maxItems": MAX_STEPS},
                        "covers": covers,
                        "gate": gate,
                        "params": params
                    },
                    // The order the grammar makes the model write them in: what it covers before
                    // its params, and what it waits on last (asked early, small models list
                    // requirements there).
                    "required": ["id", "kind", "description", "covers", "gate", "params", "needs"],
                    "additionalProperties": false
                }));
            }
        }
    }
    json!({
        "type": "object",
        "properties": {"steps": {"type": "array", "items": {"anyOf": steps}, "minItems": 1, "maxItems": MAX_STEPS}},
        "required": ["steps"],
        "additionalProperties": false
    })
}

/// A kind's params schema once per way it can be taken: each with that way's params (its
/// required ones required) and without every other way's. One schema for a kind without ways.
pub(crate) fn ways(params: &Value, ways: &[Way]) -> Vec<Value> {
    if ways.is_empty() {
        return vec![params.clone()];
    }
    ways.iter()
        .map(|way| {
            let mut p = params.clone();
            if let Some(props) = p["properties"].as_object_mut() {
                for other in ways.iter().filter(|o| !std::ptr::eq(*o, way)) {
                    for name in other.required.iter().chain(other.optional) {
                        props.remove(*name);
                    }
                }
            }
            let mut required: Vec<Value> = p["required"].as_array().cloned().unwrap_or_default();
            required.extend(way.required.iter().map(|r| json!(r)));
            p["required"] = Value::Array(required);
            p
        })
        .collect()
}

/// A schema as JSON text, each object's properties in the order its `required` list gives them
/// (the others after, by name). A server that builds a grammar from the schema makes the model
/// write properties in this order: a step's `id` and `kind` first, so what follows is chosen
/// knowing the kind. (`serde_json` keeps keys by name, which would put `covers` first.)
pub fn schema_text(schema: &Value) -> String {
    let mut out = String::new();
    write_ordered(schema, &[], &mut out);
    out
}

pub(crate) fn write_ordered(v: &Value, order: &[&str], out: &mut String) {
    match v {
        Value::Object(m) => {
            let rank = |k: &str| order.iter().position(|o| *o == k).unwrap_or(order.len());
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by_key(|k| rank(k));
            let required: Vec<&str> = m
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.to_string()).to_string());
                out.push(':');
                // Only a `properties` map is ordered: its keys are property names.
                let inner: &[&str] = if *k == "properties" { &required } else { &[] };
                write_ordered(&m[k.as_str()], inner, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_ordered(x, &[], out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `${step-id.output}` as a grammar takes it.
pub(crate) const REF_PATTERN: &str = "^[$][{][a-z0-9-]+[.][A-Za-z0-9_-]+[}]$";

/// A grammar's regular expressions are anchored and know no escapes beyond the basic ones: the
/// `${step.output}` pattern is given in character classes, and the metadata a grammar does not
/// use is dropped (titles, formats such as `uint32`).
pub(crate) fn grammar_safe(schema: &mut Value) {
    // `true` (anything) is a schema in JSON Schema, not in llama.cpp: the same as `{}`.
    if *schema == Value::Bool(true) {
        *schema = json!({});
    }
    let Value::Object(m) = schema else { return };
    if m.contains_key("pattern") {
        m.insert("pattern".into(), json!("^[$][{][a-z0-9-]+[.][A-Za-z0-9_-]+[}]$"));
    }
    m.remove("title");
    if m.get("type").and_then(Value::as_str) != Some("string") {
        m.remove("format");
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        props.values_mut().for_each(grammar_safe);
    }
    if let Some(sub) = m.get_mut("items") {
        grammar_safe(sub);
    }
    if let Some(sub @ Value::Object(_)) = m.get_mut("additionalProperties") {
        grammar_safe(sub);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(alts)) = m.get_mut(key) {
            alts.iter_mut().for_each(grammar_safe);
        }
    }
}
