//! The OpenAI-compatible provider (OpenAI, Ollama, vLLM, llama.cpp server, LM Studio) through
//! async-openai. It asks for structured output with `response_format: json_schema` (strict);
//! a server that refuses it gets a forced tool call whose parameters are the answer's schema, and one
//! that refuses tools gets a plain request for JSON. 429, 5xx and connection failures are retried
//! with backoff; then the error says what the server answered.
//!
//! A server on this machine or the local network (llama.cpp, Ollama, vLLM) is first asked with
//! the typed plan shape ([`super::llm::typed_plan_schema`]), which such servers turn into a
//! grammar; refused, it gets the strict shape, then a tool call, then plain JSON.
//!
//! Schema and plain answers are streamed (server-sent events), so whoever watches sees the
//! tokens arrive while a slow local model writes; a server that refuses to stream is asked
//! again without. The forced tool call is asked for only when the server refused the schema.

use std::sync::Mutex;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, CreateChatCompletionResponse, CreateChatCompletionStreamResponse, FinishReason,
};
use async_openai::Client;
use async_trait::async_trait;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use futures_util::StreamExt;

use super::llm::{schema_text, Answer, Provider, ProviderError, Role, Shape, Turn, Watch, SEED, TEMPERATURE};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Typed,
    Schema,
    Tool,
    Plain,
}

impl Mode {
    /// For people: how the answer's shape was asked for.
    fn name(self) -> &'static str {
        match self {
            Mode::Typed => "a typed JSON schema",
            Mode::Schema => "a JSON schema",
            Mode::Tool => "a tool call",
            Mode::Plain => "plain JSON",
        }
    }
}

pub struct OpenAi {
    client: Client<OpenAIConfig>,
    base_url: String,
    model: String,
    mode: Mutex<Mode>,
    /// Whether to stream answers (until the server refuses).
    stream: Mutex<bool>,
    /// Whether to limit answers with `max_completion_tokens` rather than `max_tokens`.
    completion_tokens: Mutex<bool>,
}

/// Requests async-openai makes before giving up on a retryable error (1 + its 3 retries).
const ATTEMPTS: u32 = 4;

impl OpenAi {
    pub fn new(base_url: &str, api_key: &str, model: &str) -> OpenAi {
        let config = OpenAIConfig::new().with_api_base(base_url).with_api_key(api_key);
        OpenAi {
            client: Client::with_config(config),
            base_url: base_url.into(),
            model: model.into(),
            mode: Mutex::new(if is_local(base_url) { Mode::Typed } else { Mode::Schema }),
            stream: Mutex::new(true),
            completion_tokens: Mutex::new(false),
        }
    }

    /// The request body. Its schema is written with each object's properties in the order of
    /// its `required` list ([`schema_text`]): a server that builds a grammar from it makes the
    /// model write a step's id and kind before the rest.
    fn request(
        &self,
        mode: Mode,
        stream: bool,
        system: &str,
        turns: &[Turn],
        shape: &Shape,
    ) -> Result<Box<RawValue>, ProviderError> {
        let mut messages = vec![json!({"role": "system", "content": system})];
        for t in turns {
            let role = match t.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            messages.push(json!({"role": role, "content": t.text}));
        }
        let mut req = json!({"model": self.model, "messages": messages, "temperature": TEMPERATURE, "seed": SEED});
        // `max_tokens` is what local servers and most hosted ones take; OpenAI's reasoning
        // models take only `max_completion_tokens` (asked for once one refuses).
        let limit = if *self.completion_tokens.lock().unwrap() { "max_completion_tokens" } else { "max_tokens" };
        req[limit] = json!(shape.max_tokens);
        if stream {
            req["stream"] = json!(true);
            req["stream_options"] = json!({"include_usage": true});
        }
        let name = Value::String(shape.name.into());
        let tool = Value::String(shape.tool.into());
        let format = |strict: bool, schema: &Value| {
            format!(
                r#""response_format":{{"type":"json_schema","json_schema":{{"name":{name},"strict":{strict},"schema":{}}}}}"#,
                schema_text(schema)
            )
        };
        let extra = match (mode, &shape.typed) {
            // The typed shape has optional properties, which OpenAI's strict mode refuses.
            (Mode::Typed, Some(typed)) => format(false, typed),
            (Mode::Typed | Mode::Schema, _) => format(true, &shape.schema),
            (Mode::Tool, _) => format!(
                r#""tools":[{{"type":"function","function":{{"name":{tool},"description":{},"parameters":{},"strict":true}}}}],"tool_choice":{{"type":"function","function":{{"name":{tool}}}}}"#,
                Value::String(shape.description.into()),
                schema_text(&shape.schema)
            ),
            (Mode::Plain, _) => String::new(),
        };
        let mut body = req.to_string();
        if !extra.is_empty() {
            body.pop();
            body.push(',');
            body.push_str(&extra);
            body.push('}');
        }
        RawValue::from_string(body).map_err(|e| ProviderError(format!("building the request: {e}")))
    }
}

/// Whether a base URL is on this machine or the local network: a local model server, slow on a
/// CPU, and most likely llama.cpp or Ollama.
pub fn is_local(base_url: &str) -> bool {
    url::Url::parse(base_url).ok().is_some_and(|u| match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".local") || d.ends_with(".internal"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unique_local(),
        None => false,
    })
}

/// The status and message of an error the server answered with. llama.cpp's errors carry a
/// numeric `code`, which async-openai cannot read as its error type: they are read here.
fn server_error(e: &OpenAIError) -> Option<(u16, String)> {
    match e {
        OpenAIError::ApiError(r) => Some((r.status_code.as_u16(), r.api_error.message.clone())),
        OpenAIError::JSONDeserialize(_, content) => {
            let v: Value = serde_json::from_str(content).ok()?;
            let err = v.get("error")?;
            let message = err.get("message").and_then(Value::as_str).or(err.as_str())?.to_string();
            let code = err.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok()).unwrap_or(400);
            Some((code, message))
        }
        _ => None,
    }
}

/// A 400 that says the server does not take this request shape: try a simpler one.
fn unsupported(e: &OpenAIError) -> bool {
    match server_error(e) {
        Some((400 | 422, message)) => {
            let m = message.to_ascii_lowercase();
            [
                "response_format",
                "json_schema",
                "json schema",
                "tool",
                "stream",
                "not supported",
                "unsupported",
                "unknown field",
                "unrecognized",
            ]
            .iter()
            .any(|w| m.contains(w))
        }
        _ => false,
    }
}

/// A 400 that names this parameter.
fn refused_param(e: &OpenAIError, name: &str) -> bool {
    matches!(server_error(e), Some((400, m)) if m.contains(name))
}

fn retryable(e: &OpenAIError) -> bool {
    match e {
        OpenAIError::ApiError(r) => r.status_code.as_u16() == 429 || r.status_code.is_server_error(),
        OpenAIError::Reqwest(r) => r.is_connect() || r.is_timeout() || r.is_request(),
        _ => false,
    }
}

fn describe(e: &OpenAIError) -> String {
    if let Some((status, message)) = server_error(e) {
        let msg: String = message.chars().take(300).collect();
        return format!("HTTP {status}: {}", msg.trim());
    }
    match e {
        OpenAIError::InvalidArgument(m) => m.clone(),
        other => other.to_string(),
    }
}

#[async_trait]
impl Provider for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn settings(&self) -> Value {
        json!({"temperature": TEMPERATURE, "seed": SEED, "base_url": self.base_url})
    }

    fn typed(&self) -> bool {
        *self.mode.lock().unwrap() == Mode::Typed
    }

    async fn complete(
        &self,
        system: &str,
        turns: &[Turn],
        shape: &Shape,
        watch: Watch<'_>,
    ) -> Result<Answer, ProviderError> {
        loop {
            let mode = *self.mode.lock().unwrap();
            // Tool-call arguments arrive in pieces; only schema and plain answers are streamed.
            let stream = *self.stream.lock().unwrap() && mode != Mode::Tool;
            let req = self.request(mode, stream, system, turns, shape)?;
            let result = if stream { self.streamed(req, watch).await } else { self.whole(req).await };
            match result {
                Ok(answer) => return Ok(answer),
                Err(e) if refused_param(&e, "max_tokens") && !*self.completion_tokens.lock().unwrap() => {
                    tracing::warn!(
                        "{} refused max_tokens ({}); asking with max_completion_tokens",
                        self.base_url,
                        describe(&e)
                    );
                    *self.completion_tokens.lock().unwrap() = true;
                }
                Err(e) if unsupported(&e) && stream && describe(&e).to_ascii_lowercase().contains("stream") => {
                    tracing::warn!("{} refused to stream ({}); asking without", self.base_url, describe(&e));
                    *self.stream.lock().unwrap() = false;
                }
                Err(e) if unsupported(&e) && mode != Mode::Plain => {
                    let m = describe(&e).to_ascii_lowercase();
                    let no_schema = (m.contains("response_format") || m.contains("json_schema"))
                        && (m.contains("not supported") || m.contains("unsupported"));
                    let next = match mode {
                        // A grammar it could not build: the strict shape has no patterns or
                        // alternatives. A server without schemas at all: a tool call.
                        Mode::Typed if !no_schema => Mode::Schema,
                        Mode::Typed | Mode::Schema => Mode::Tool,
                        _ => Mode::Plain,
                    };
                    tracing::warn!(
                        "{} refused {} ({}); asking with {}",
                        self.base_url,
                        mode.name(),
                        describe(&e),
                        next.name()
                    );
                    *self.mode.lock().unwrap() = next;
                }
                Err(e) => {
                    let tries = if retryable(&e) { format!(" (after {ATTEMPTS} attempts)") } else { String::new() };
                    return Err(ProviderError(format!(
                        "{} model {}: {}{tries}",
                        self.base_url,
                        self.model,
                        describe(&e)
                    )));
                }
            }
        }
    }
}

impl OpenAi {
    /// One answer in one response: a tool call's arguments, else the message's text.
    async fn whole(&self, req: Box<RawValue>) -> Result<Answer, OpenAIError> {
        let resp: CreateChatCompletionResponse = self.client.chat().create_byot(req).await?;
        let usage = resp.usage;
        let Some(choice) = resp.choices.into_iter().next() else {
            return Err(OpenAIError::InvalidArgument("the model answered with no choice".into()));
        };
        let call = choice.message.tool_calls.unwrap_or_default().into_iter().find_map(|c| match c {
            ChatCompletionMessageToolCalls::Function(f) => Some(f.function.arguments),
            _ => None,
        });
        let text = call
            .or(choice.message.content)
            .ok_or_else(|| OpenAIError::InvalidArgument("the model's answer was empty".into()))?;
        Ok(Answer {
            text,
            tokens_in: usage.as_ref().map(|u| u.prompt_tokens),
            tokens_out: usage.as_ref().map(|u| u.completion_tokens),
            cut_off: choice.finish_reason == Some(FinishReason::Length),
        })
    }

    /// The answer as it is written, piece by piece; `watch` told the pieces so far (a piece is
    /// a token on llama.cpp, Ollama and OpenAI), the server's own counts kept when it sends them.
    async fn streamed(&self, req: Box<RawValue>, watch: Watch<'_>) -> Result<Answer, OpenAIError> {
        let mut stream = self.client.chat().create_stream_byot::<_, CreateChatCompletionStreamResponse>(req).await?;
        let mut answer = Answer::default();
        let mut pieces = 0u32;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if let Some(u) = chunk.usage {
                answer.tokens_in = Some(u.prompt_tokens);
                answer.tokens_out = Some(u.completion_tokens);
            }
            for c in chunk.choices {
                if c.finish_reason == Some(FinishReason::Length) {
                    answer.cut_off = true;
                }
                if let Some(t) = c.delta.content.filter(|t| !t.is_empty()) {
                    answer.text.push_str(&t);
                    pieces += 1;
                    watch(pieces);
                }
            }
        }
        if answer.text.trim().is_empty() {
            return Err(OpenAIError::InvalidArgument("the model's answer was empty".into()));
        }
        Ok(answer)
    }
}
