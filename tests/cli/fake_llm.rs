//! A local LLM endpoint on loopback that answers from fixture files, in order: an
//! OpenAI-compatible `POST .../chat/completions` (content, tool call, or an HTTP error) and
//! Bedrock's `POST /model/{id}/converse` (a toolUse block, or an error with its
//! `x-amzn-ErrorType`). Every request is kept so tests can read what flow sent.
//!
//! Two questions reach it: a plan, and the requirements a spec states (its system prompt says
//! "You read requirement documents"). Each has its own queue of answers and its own request
//! list; with no requirements answer queued, the model proposes none.
//!
//! A request that asks to stream (`"stream": true`) gets its content as server-sent events, a
//! few characters a piece, then a usage chunk and `[DONE]`, as llama.cpp's server sends them.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};

/// One canned answer.
#[derive(Clone)]
pub enum Answer {
    /// A chat completion whose message content is the text.
    Content(String),
    /// A chat completion whose message calls the plan tool with these arguments.
    ToolCall(String),
    /// A Converse answer with a toolUse block holding this JSON.
    Converse(Value),
    /// An HTTP error: status, body, and for Bedrock the error type header.
    Error(u16, String, Option<&'static str>),
    /// Content written slowly when streamed: one piece of a few characters per interval.
    Slow(String, std::time::Duration),
    /// Streamed content that the server stopped at its token limit (`finish_reason: length`).
    CutOff(String),
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm").join(name)).unwrap()
}

#[derive(Clone)]
pub struct FakeLlm {
    pub url: String,
    answers: Arc<Mutex<VecDeque<Answer>>>,
    pub requests: Arc<Mutex<Vec<(String, Value)>>>,
    /// The plan requests' bodies as sent, key order kept.
    raw: Arc<Mutex<Vec<String>>>,
    extractions: Arc<Mutex<VecDeque<Answer>>>,
    pub extract_requests: Arc<Mutex<Vec<(String, Value)>>>,
}

impl FakeLlm {
    pub fn start(answers: Vec<Answer>) -> FakeLlm {
        FakeLlm::with_extractions(answers, vec![])
    }

    /// Plans answered from `answers`, requirement questions from `extractions`.
    pub fn with_extractions(answers: Vec<Answer>, extractions: Vec<Answer>) -> FakeLlm {
        let mut fake = FakeLlm {
            url: String::new(),
            answers: Arc::new(Mutex::new(answers.into())),
            requests: Default::default(),
            raw: Default::default(),
            extractions: Arc::new(Mutex::new(extractions.into())),
            extract_requests: Default::default(),
        };
        let f = fake.clone();
        let port = crate::serve::serve(move |req| f.clone().handle(req));
        fake.url = format!("http://127.0.0.1:{port}");
        fake
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn request(&self, i: usize) -> (String, Value) {
        self.requests.lock().unwrap()[i].clone()
    }

    /// The i-th plan request's body as sent.
    pub fn raw(&self, i: usize) -> String {
        self.raw.lock().unwrap()[i].clone()
    }

    pub fn extract_count(&self) -> usize {
        self.extract_requests.lock().unwrap().len()
    }

    async fn handle(self, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let path = req.uri().path().to_string();
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let extraction = json.to_string().contains("You read requirement documents");
        let streamed = json["stream"] == json!(true);
        let bedrock = path.ends_with("/converse");
        let (tool, answer) = if extraction {
            self.extract_requests.lock().unwrap().push((path, json));
            let a = self.extractions.lock().unwrap().pop_front().unwrap_or_else(|| {
                if bedrock {
                    Answer::Converse(json!({"requirements": []}))
                } else {
                    Answer::Content(r#"{"requirements":[]}"#.into())
                }
            });
            ("submit_requirements", Some(a))
        } else {
            self.requests.lock().unwrap().push((path, json));
            self.raw.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
            ("submit_plan", self.answers.lock().unwrap().pop_front())
        };
        let reply = |status: u16, body: Value| {
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::Whole(Full::new(Bytes::from(body.to_string()))))
                .unwrap()
        };
        let completion = |message: Value| {
            json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1764000000, "model": "test-model",
                   "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
        };
        let mut finish = "stop";
        let answer = match answer {
            Some(Answer::Slow(c, _)) if !streamed => Some(Answer::Content(c)),
            Some(Answer::Content(c)) if streamed => Some(Answer::Slow(c, std::time::Duration::ZERO)),
            Some(Answer::CutOff(c)) => {
                finish = "length";
                Some(Answer::Slow(c, std::time::Duration::ZERO))
            }
            a => a,
        };
        Ok(match answer {
            None | Some(Answer::CutOff(_)) => reply(500, json!({"error": {"message": "the fake has no more answers"}})),
            Some(Answer::Content(c)) => reply(200, completion(json!({"role": "assistant", "content": c}))),
            Some(Answer::Slow(c, every)) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(async move {
                    let chunk = |choices: Value, usage: Value| {
                        let c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1764000000,
                                       "model": "test-model", "choices": choices, "usage": usage});
                        Bytes::from(format!("data: {c}\n\n"))
                    };
                    let chars: Vec<char> = c.chars().collect();
                    let pieces: Vec<String> = chars.chunks(4).map(|p| p.iter().collect()).collect();
                    for p in &pieces {
                        if !every.is_zero() {
                            tokio::time::sleep(every).await;
                        }
                        let delta =
                            json!([{"index": 0, "delta": {"role": "assistant", "content": p}, "finish_reason": null}]);
                        if tx.send(chunk(delta, Value::Null)).is_err() {
                            return;
                        }
                    }
                    let usage = json!({"prompt_tokens": 100, "completion_tokens": pieces.len(), "total_tokens": 100 + pieces.len()});
                    let _ = tx.send(chunk(json!([{"index": 0, "delta": {}, "finish_reason": finish}]), Value::Null));
                    let _ = tx.send(chunk(json!([]), usage));
                    let _ = tx.send(Bytes::from("data: [DONE]\n\n"));
                });
                Response::builder()
                    .status(200)
                    .header("content-type", "text/event-stream")
                    .body(Body::Pieces(Pieces(rx)))
                    .unwrap()
            }
            Some(Answer::ToolCall(args)) => reply(
                200,
                completion(json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": tool, "arguments": args}}]})),
            ),
            Some(Answer::Converse(input)) => reply(
                200,
                json!({"output": {"message": {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "tooluse_1", "name": tool, "input": input}}]}},
                    "stopReason": "tool_use", "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                    "metrics": {"latencyMs": 1}}),
            ),
            Some(Answer::Error(status, body, kind)) => {
                let mut r = Response::builder().status(status).header("content-type", "application/json");
                if let Some(k) = kind {
                    r = r.header("x-amzn-errortype", k);
                }
                r.body(Body::Whole(Full::new(Bytes::from(body)))).unwrap()
            }
        })
    }
}

/// A response body written piece by piece, as a server-sent event stream is: each piece sent on
/// the channel goes out when it is sent; the body ends when the sender is dropped.
pub struct Pieces(pub tokio::sync::mpsc::UnboundedReceiver<Bytes>);

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|piece| piece.map(|b| Ok(Frame::data(b))))
    }
}

/// A whole body or one written in pieces.
pub enum Body {
    Whole(Full<Bytes>),
    Pieces(Pieces),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Whole(b) => Pin::new(b).poll_frame(cx),
            Body::Pieces(p) => Pin::new(p).poll_frame(cx),
        }
    }
}
