//! The OpenAI-compatible provider (OpenAI, Ollama, vLLM, llama.cpp server, LM Studio) through
//! async-openai. It asks for structured output with `response_format: json_schema` (strict);
//! a server that refuses it gets a forced tool call whose parameters are the answer's schema, and one
//! that refuses tools gets a plain request for JSON. 429, 5xx and connection failures are retried
//! with backoff; then the error says what the server answered.
//!
//! Schema and plain answers are streamed (server-sent events), so whoever watches sees the
//! tokens arrive while a slow local model writes; a server that refuses to stream is asked
//! again without. The forced tool call is asked for only when the server refused the schema.

use std::sync::Mutex;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{ChatCompletionMessageToolCalls, CreateChatCompletionRequest, FinishReason};
use async_openai::Client;
use async_trait::async_trait;
use serde_json::{json, Value};

use futures_util::StreamExt;

use super::llm::{Answer, Provider, ProviderError, Role, Shape, Turn, Watch, SEED, TEMPERATURE};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Schema,
    Tool,
    Plain,
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
            mode: Mutex::new(Mode::Schema),
            stream: Mutex::new(true),
            completion_tokens: Mutex::new(false),
        }
    }

    fn request(
        &self,
        mode: Mode,
        stream: bool,
        system: &str,
        turns: &[Turn],
        shape: &Shape,
    ) -> Result<CreateChatCompletionRequest, ProviderError> {
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
        match mode {
            Mode::Schema => {
                req["response_format"] = json!({"type": "json_schema", "json_schema": {"name": shape.name, "strict": true, "schema": shape.schema}});
            }
            Mode::Tool => {
                req["tools"] = json!([{"type": "function", "function": {"name": shape.tool, "description": shape.description, "parameters": shape.schema, "strict": true}}]);
                req["tool_choice"] = json!({"type": "function", "function": {"name": shape.tool}});
            }
            Mode::Plain => {}
        }
        serde_json::from_value(req).map_err(|e| ProviderError(format!("building the request: {e}")))
    }
}

/// A 400 that says the server does not take this request shape: try a simpler one.
fn unsupported(e: &OpenAIError) -> bool {
    match e {
        OpenAIError::ApiError(r) if r.status_code.as_u16() == 400 || r.status_code.as_u16() == 422 => {
            let m = r.api_error.message.to_ascii_lowercase();
            [
                "response_format",
                "json_schema",
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
    matches!(e, OpenAIError::ApiError(r) if r.status_code.as_u16() == 400 && r.api_error.message.contains(name))
}

fn retryable(e: &OpenAIError) -> bool {
    match e {
        OpenAIError::ApiError(r) => r.status_code.as_u16() == 429 || r.status_code.is_server_error(),
        OpenAIError::Reqwest(r) => r.is_connect() || r.is_timeout() || r.is_request(),
        _ => false,
    }
}

fn describe(e: &OpenAIError) -> String {
    match e {
        OpenAIError::ApiError(r) => {
            let msg: String = r.api_error.message.chars().take(300).collect();
            format!("HTTP {}: {}", r.status_code.as_u16(), msg.trim())
        }
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
                    let next = if mode == Mode::Schema { Mode::Tool } else { Mode::Plain };
                    tracing::warn!("{} refused {mode:?} ({}); asking with {next:?}", self.base_url, describe(&e));
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
    async fn whole(&self, req: CreateChatCompletionRequest) -> Result<Answer, OpenAIError> {
        let resp = self.client.chat().create(req).await?;
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
    async fn streamed(&self, req: CreateChatCompletionRequest, watch: Watch<'_>) -> Result<Answer, OpenAIError> {
        let mut stream = self.client.chat().create_stream(req).await?;
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
