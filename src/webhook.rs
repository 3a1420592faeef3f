//! The webhook notifier: a notice POSTed as Slack-compatible JSON (`text`, the plain-text
//! fallback every receiver reads; `blocks`, the formatted form Slack shows), with a timeout,
//! tried three times. The URL comes from `FLOW_WEBHOOK_URL` or `[notify] webhook_url` in
//! `flow.toml`. For Slack's incoming webhooks (and most others) the URL is the credential:
//! it is never written anywhere (messages, the journal, reports) but as its scheme and host, or
//! the name given it (`[notify] webhook_name`).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::domain::notify::Notice;
use crate::engine::Notifier;

pub const ATTEMPTS: u32 = 3;
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a webhook cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL (shown as scheme and host only) cannot be a webhook's.
    #[error("webhook URL {url}: {why}")]
    BadUrl { url: String, why: String },
    #[error("HTTP client: {0}")]
    Client(String),
    /// Every attempt failed; the last one's failure.
    #[error("{last} (after {attempts} attempts)")]
    Undelivered { last: String, attempts: u32 },
}

pub struct Webhook {
    url: String,
    /// How it is named wherever people read: a given name, or the URL's scheme and host.
    shown: String,
    client: reqwest::Client,
}

/// A webhook URL as it may be shown: scheme and host only (`https://hooks.slack.com/…`).
pub fn redacted(url: &str) -> String {
    match url.parse::<url::Url>() {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("?")),
        Err(_) => "the webhook (its URL does not parse)".into(),
    }
}

impl Webhook {
    /// `name`: what to call it in messages (default: the URL's scheme and host).
    pub fn new(url: &str, name: Option<&str>) -> Result<Webhook, Error> {
        let bad = |why: String| Error::BadUrl { url: redacted(url), why };
        let parsed: url::Url = url.parse().map_err(|e: url::ParseError| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("expected http:// or https://".into()));
        }
        let client = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| Error::Client(e.to_string()))?;
        let shown = name.map(|n| format!("webhook `{n}`")).unwrap_or_else(|| redacted(url));
        Ok(Webhook { url: url.into(), shown, client })
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
    async fn send(&self, n: &Notice) -> Result<(), crate::engine::Undelivered> {
        let payload = body(n);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let request =
                self.client.post(&self.url).header("content-type", "application/json").body(payload.to_string());
            match request.send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("HTTP {} from {}", r.status().as_u16(), self.shown),
                Err(e) if e.is_timeout() => {
                    last = format!("no answer from {} within {} s", self.shown, TIMEOUT.as_secs())
                }
                Err(e) if e.is_connect() => last = format!("cannot connect to {}", self.shown),
                // reqwest's own text names the URL: left out.
                Err(e) => last = format!("{}: {}", self.shown, crate::aws::chain(&e.without_url())),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(500 * attempt as u64)).await;
            }
        }
        Err(Box::new(Error::Undelivered { last, attempts: ATTEMPTS }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_url_is_never_shown() {
        let url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
        assert_eq!(super::redacted(url), "https://hooks.slack.com/…");
        let e = super::Webhook::new("ftp://hooks.example/services/SECRET", None).err().unwrap().to_string();
        assert!(!e.contains("SECRET"), "{e}");
    }
}
