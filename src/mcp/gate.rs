//! The JSON-RPC gate in front of the server: each line from the client is checked before rmcp
//! sees it. Unparsable JSON gets `-32700`; a batch, a non-object, a `jsonrpc` other than "2.0",
//! a method that is not a string, params that are not an object, or a line longer than
//! [`MAX_LINE`] get `-32600`; a tool call whose arguments do not fit the tool gets
//! `-32602`, naming the tool and the field. Everything else passes unchanged.

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt};

/// The longest request line accepted (bytes).
pub const MAX_LINE: usize = 4 << 20;

fn error(id: Value, code: i64, message: String) -> Vec<u8> {
    let mut v = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
        .unwrap_or_default();
    v.push(b'\n');
    v
}

/// Why a tool call's arguments do not fit its tool.
#[derive(Debug, thiserror::Error)]
enum BadArguments {
    #[error("arguments must be an object")]
    NotObject,
    #[error("{0}")]
    Shape(#[source] serde_json::Error),
}

/// Does this tool call's arguments fit the tool? Why not.
fn arguments(tool: &str, args: &Value) -> Result<(), BadArguments> {
    fn fits<T: serde::de::DeserializeOwned>(args: &Value) -> Result<(), BadArguments> {
        serde_json::from_value::<T>(args.clone()).map(|_| ()).map_err(BadArguments::Shape)
    }
    let args = if args.is_null() { &Value::Object(Default::default()) } else { args };
    if !args.is_object() {
        return Err(BadArguments::NotObject);
    }
    match tool {
        "status" | "run" => fits::<super::RunbookArg>(args),
        "show_step" => fits::<super::StepArg>(args),
        "read_spec" => fits::<super::SpecArg>(args),
        "plan" => fits::<super::PlanArg>(args),
        "journal" => fits::<super::JournalArg>(args),
        "report" | "graph" => fits::<super::FormatArg>(args),
        _ => Ok(()),
    }
}

/// What to do with one line: pass it on, or answer it here.
pub fn check(line: &[u8]) -> Result<(), Vec<u8>> {
    let v: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return Err(error(Value::Null, -32700, format!("parse error: not JSON ({e})"))),
    };
    let Some(o) = v.as_object() else {
        let what = if v.is_array() { "a batch (MCP takes one request a line)" } else { "not a JSON-RPC object" };
        return Err(error(Value::Null, -32600, format!("invalid request: {what}")));
    };
    let id = match o.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        Some(Value::Null) | None => Value::Null,
        Some(_) => return Err(error(Value::Null, -32600, "invalid request: `id` must be a string or a number".into())),
    };
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(error(id, -32600, "invalid request: `jsonrpc` must be \"2.0\"".into()));
    }
    match o.get("method") {
        Some(Value::String(_)) | None => {}
        Some(_) => return Err(error(id, -32600, "invalid request: `method` must be a string".into())),
    }
    if o.get("method").is_none() && !(o.contains_key("result") || o.contains_key("error")) {
        return Err(error(id, -32600, "invalid request: no `method`".into()));
    }
    match o.get("params") {
        Some(Value::Object(_)) | None => {}
        Some(_) => return Err(error(id, -32600, "invalid request: `params` must be an object".into())),
    }
    if o.get("method").and_then(Value::as_str) == Some("tools/call") {
        let p = &o["params"];
        let tool = p.get("name").and_then(Value::as_str).unwrap_or_default();
        if let Err(why) = arguments(tool, p.get("arguments").unwrap_or(&Value::Null)) {
            return Err(error(id, -32602, format!("invalid params for tool `{tool}`: {why}")));
        }
    }
    Ok(())
}

/// Read the client's lines from `input`; pass the good ones to the server, answer the rest.
pub async fn run(
    input: impl AsyncRead + Unpin,
    mut server: impl AsyncWrite + Unpin,
    answers: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut r = tokio::io::BufReader::new(input);
    loop {
        let mut line = Vec::new();
        let mut too_long = false;
        // Read one line, keeping at most MAX_LINE bytes of it.
        loop {
            let buf = match r.fill_buf().await {
                Ok(b) => b,
                Err(_) => return,
            };
            if buf.is_empty() {
                if line.is_empty() {
                    return;
                }
                break;
            }
            let (take, done) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if line.len() + take <= MAX_LINE + 1 {
                line.extend_from_slice(&buf[..take]);
            } else {
                too_long = true;
            }
            r.consume(take);
            if done {
                break;
            }
        }
        if too_long {
            let _ = answers.send(error(
                Value::Null,
                -32600,
                format!("invalid request: a line longer than {} MiB", MAX_LINE >> 20),
            ));
            continue;
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match check(&line) {
            Ok(()) => {
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                if server.write_all(&line).await.is_err() || server.flush().await.is_err() {
                    return;
                }
            }
            Err(answer) => {
                if answers.send(answer).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &str) -> Option<i64> {
        check(line.as_bytes())
            .err()
            .map(|a| serde_json::from_slice::<Value>(&a).unwrap()["error"]["code"].as_i64().unwrap())
    }

    #[test]
    fn what_is_not_a_request_is_answered() {
        assert_eq!(code("{not json"), Some(-32700));
        assert_eq!(code("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]"), Some(-32600));
        assert_eq!(code("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}"), Some(-32600));
        assert_eq!(code("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}"), Some(-32600));
        assert_eq!(code("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[1]}"), Some(-32600));
        assert_eq!(code("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"journal\",\"arguments\":{\"last\":\"ten\"}}}"), Some(-32602));
        assert_eq!(code("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"), None);
        assert_eq!(code("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}"), None);
    }
}
