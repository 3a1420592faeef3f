//! `probe`: HTTP GET with an expected status and an optional latency bound. A failed try is
//! retried `attempts` times, `interval_s` apart, as a `waiting` step (the engine does not sleep).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{obj, typed, Ctx, Error, Executor, Outcome, Preview, Result};
use crate::domain::catalogue::ProbeParams;

pub struct Probe;

impl Probe {
    async fn attempt(&self, ctx: &Ctx, params: &Map<String, Value>, attempt: u32) -> Result<Outcome> {
        let p: ProbeParams = typed(params)?;
        let url = p.url.get()?.clone();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(p.timeout_ms))
            .build()
            .map_err(|e| Error::Step(format!("HTTP client: {e}")))?;
        let start = Instant::now();
        let result = client.get(&url).send().await;
        let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        let problem = match &result {
            Ok(r) if r.status().as_u16() != p.expect_status => {
                Some(format!("status {} (expected {})", r.status().as_u16(), p.expect_status))
            }
            Ok(_) => match p.max_latency_ms {
                Some(max) if latency_ms > max as f64 => Some(format!("took {latency_ms:.1} ms (bound {max} ms)")),
                _ => None,
            },
            Err(e) if e.is_timeout() => Some(format!("no answer within {} ms", p.timeout_ms)),
            Err(e) if e.is_connect() => Some(format!("cannot connect to {url}")),
            Err(e) => Some(e.to_string()),
        };
        let status = result.as_ref().map(|r| r.status().as_u16()).ok();
        match problem {
            None => {
                let m = obj(
                    json!({"status": status, "latency_ms": (latency_ms * 1000.0).round() / 1000.0, "attempts": attempt}),
                );
                Ok(Outcome::Done { outputs: m.clone(), evidence: m })
            }
            Some(why) if attempt < p.attempts => Ok(Outcome::Wait {
                next_poll_at: ctx.clock.now_ms() + p.interval_s * 1000,
                note: format!("GET {url}: attempt {attempt}/{}: {why}", p.attempts),
                handle: json!({"attempt": attempt}),
            }),
            Some(why) => Err(Error::Step(format!("GET {url}: {why} (attempt {attempt}/{})", p.attempts))),
        }
    }
}

#[async_trait]
impl Executor for Probe {
    async fn preview(&self, _ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview> {
        let p: ProbeParams = typed(params)?;
        let bound = p.max_latency_ms.map(|m| format!(" within {m} ms")).unwrap_or_default();
        Ok(Preview::Approve(format!(
            "GET {} expecting {}{bound}, up to {} attempts {} s apart",
            p.url.get()?,
            p.expect_status,
            p.attempts,
            p.interval_s
        )))
    }

    async fn submit(&self, ctx: &Ctx, params: &Map<String, Value>, _token: &str) -> Result<Outcome> {
        self.attempt(ctx, params, 1).await
    }

    async fn poll(&self, ctx: &Ctx, params: &Map<String, Value>, handle: &Value) -> Result<Outcome> {
        let done = handle.get("attempt").and_then(Value::as_u64).unwrap_or(1) as u32;
        self.attempt(ctx, params, done + 1).await
    }

    async fn reconcile(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Option<Outcome>> {
        // Read-only: asking again is the reconciliation.
        self.submit(ctx, params, token).await.map(Some)
    }
}
