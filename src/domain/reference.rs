//! References to earlier steps' outputs in params: `${step-id.output}`. A whole-string
//! reference keeps the output's JSON type; an embedded one is spliced into the text. A typed
//! param that may hold one is an [`Input<T>`].

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `${step.output}` in a string param.
pub static REF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{(?P<step>[^.}\s]+)\.(?P<output>[^}\s]+)\}").expect("static pattern"));

/// A reference to another step's output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutputRef {
    pub step: String,
    pub output: String,
}

impl fmt::Display for OutputRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${{{}.{}}}", self.step, self.output)
    }
}

fn captured(c: &regex::Captures) -> OutputRef {
    OutputRef { step: c["step"].into(), output: c["output"].into() }
}

/// Every `${step.output}` in a params tree, with the param path it sits at.
pub fn references(params: &Map<String, Value>) -> Vec<(String, OutputRef)> {
    fn walk(path: String, v: &Value, out: &mut Vec<(String, OutputRef)>) {
        match v {
            Value::String(s) => {
                for c in REF.captures_iter(s) {
                    out.push((path.clone(), captured(&c)));
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

/// Replace references with the outputs `lookup` finds. A string that is exactly one reference
/// takes the output's JSON value; embedded references are spliced as text. Returns the first
/// reference that has no value yet.
pub fn resolve<'a>(
    params: &Map<String, Value>,
    lookup: &dyn Fn(&str, &str) -> Option<&'a Value>,
) -> Result<Map<String, Value>, OutputRef> {
    fn walk<'a>(v: &Value, lookup: &dyn Fn(&str, &str) -> Option<&'a Value>) -> Result<Value, OutputRef> {
        Ok(match v {
            Value::String(s) if s.contains("${") => {
                if let Some(c) = REF.captures(s).filter(|c| c.get(0).is_some_and(|m| m.as_str() == s)) {
                    let r = captured(&c);
                    return lookup(&r.step, &r.output).cloned().ok_or(r);
                }
                let mut missing = None;
                let text = REF.replace_all(s, |c: &regex::Captures| match lookup(&c["step"], &c["output"]) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => {
                        n.as_f64().map(super::requirement::fmt_num).unwrap_or_else(|| n.to_string())
                    }
                    Some(v) => v.to_string(),
                    None => {
                        missing.get_or_insert(captured(c));
                        String::new()
                    }
                });
                if let Some(r) = missing {
                    return Err(r);
                }
                Value::String(text.into_owned())
            }
            Value::Array(a) => Value::Array(a.iter().map(|v| walk(v, lookup)).collect::<Result<_, _>>()?),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| Ok((k.clone(), walk(v, lookup)?))).collect::<Result<_, _>>()?)
            }
            other => other.clone(),
        })
    }
    params.iter().map(|(k, v)| Ok((k.clone(), walk(v, lookup)?))).collect()
}

/// A reference left in a param that should have been resolved before it reached an executor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reference {0} was not resolved")]
pub struct Unresolved(pub String);

/// A typed param that may instead hold a reference to an earlier step's output.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<T> {
    Value(T),
    Ref(String),
}

impl<T> Input<T> {
    /// The literal value; a reference left unresolved is a bug in the caller (params are
    /// resolved before an executor sees them), reported as an error, not a panic.
    pub fn get(&self) -> Result<&T, Unresolved> {
        match self {
            Input::Value(v) => Ok(v),
            Input::Ref(r) => Err(Unresolved(r.clone())),
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
    use std::collections::BTreeMap;

    #[test]
    fn resolve_keeps_types_and_splices_text() {
        let params =
            json!({"count": "${model.instances}", "url": "http://${stack.Dns}/health", "n": 3, "plain": "a $ b"});
        let mut outputs: BTreeMap<&str, Value> = BTreeMap::new();
        outputs.insert("model.instances", json!(6));
        outputs.insert("stack.Dns", json!("lb.example"));
        let key = |s: &str, o: &str| format!("{s}.{o}");
        let lookup = |s: &str, o: &str| outputs.get(key(s, o).as_str());
        let r = resolve(params.as_object().unwrap(), &lookup).unwrap();
        assert_eq!(Value::Object(r), json!({"count": 6, "url": "http://lb.example/health", "n": 3, "plain": "a $ b"}));
        let without = |s: &str, o: &str| if s == "stack" { None } else { outputs.get(key(s, o).as_str()) };
        let missing = resolve(params.as_object().unwrap(), &without).unwrap_err();
        assert_eq!(missing, OutputRef { step: "stack".into(), output: "Dns".into() });
        assert_eq!(missing.to_string(), "${stack.Dns}");
    }

    #[test]
    fn input_accepts_literal_or_reference() {
        let v: Input<f64> = serde_json::from_value(json!(2.5)).unwrap();
        assert_eq!(v, Input::Value(2.5));
        let v: Input<f64> = serde_json::from_value(json!("${a.b}")).unwrap();
        assert_eq!(v, Input::Ref("${a.b}".into()));
        assert_eq!(v.get().unwrap_err().to_string(), "reference ${a.b} was not resolved");
        assert!(serde_json::from_value::<Input<f64>>(json!("fast")).is_err());
    }
}
