//! The webhook notifier: a notice POSTed as Slack-compatible JSON (`text`, the plain-text
//! fallback every receiver reads; `blocks`, the formatted form Slack shows), with a timeout,
//! tried three times. The URL comes from `FLOW_WEBHOOK_URL` or `[notify] webhook_url` in
//! `flow.toml`.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::domain::notify::Notice;
use crate::engine::Notifier;

pub const ATTEMPTS: u32 = 3;
pub const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Webhook {
    url: String,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(url: &str) -> Result<Webhook, String> {
        let parsed: url::Url = url.parse().map_err(|e| format!("webhook URL `{url}`: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("webhook URL `{url}`: expected http:// or https://"));
        }
        let client = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Webhook { url: url.into(), client })
    }
}

/// The JSON a notice is sent as.
pub fn body(n: &Notice) -> Value {
    let fence = |t: &str| format!("```{}```", t.replace("```", "'''"));
    json!({
        "text": format!("{}\n{}", n.title, n.text),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": n.title.chars().take(150).collect::<String>()}},
            {"type": "section", "text": {"type": "mrkdwn", "text": fence(&n.text.chars().take(2900).collect::<String>())}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("flow · runbook {} · {}", n.runbook, n.kind)}]},
        ],
        "flow": {"key": n.key, "kind": n.kind, "runbook": n.runbook, "step": n.step},
    })
}

#[async_trait]
impl Notifier for Webhook {
    async fn send(&self, n: &Notice) -> Result<(), String> {
        let payload = body(n);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let request =
                self.client.post(&self.url).header("content-type", "application/json").body(payload.to_string());
            match request.send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("HTTP {} from {}", r.status().as_u16(), self.url),
                Err(e) if e.is_timeout() => {
                    last = format!("no answer from {} within {} s", self.url, TIMEOUT.as_secs())
                }
                Err(e) if e.is_connect() => last = format!("cannot connect to {}", self.url),
                Err(e) => last = format!("{}: {e}", self.url),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(500 * attempt as u64)).await;
            }
        }
        Err(format!("{last} (after {ATTEMPTS} attempts)"))
    }
}
