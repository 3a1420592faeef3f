//! The alarm drill's inbox: an SQS queue of its own subscribed to the alarms' topics, the
//! alarms set and set back, the notices collected with their delays.

use crate::aws::{CLOUDWATCH, SNS, SQS};
use crate::executor::{Ctx, Error, Result};
use aws_sdk_cloudwatch::types::StateValue;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::*;

pub(crate) fn queue_name(aws_tok: &str) -> String {
    format!("flow-alarm-drill-{}", aws_tok.trim_start_matches("flow-"))
}

pub(crate) fn reason(ctx: &Ctx, aws_tok: &str, was: &str) -> String {
    format!("{REASON} {aws_tok}: runbook {} step {} tests this alarm's notification (was {was})", ctx.runbook, ctx.step)
}

/// The state a drill's reason says the alarm was in before it.
pub(crate) fn was_in(reason: &str) -> String {
    reason
        .rsplit_once("(was ")
        .and_then(|(_, w)| w.strip_suffix(')'))
        .filter(|w| matches!(*w, "OK" | "INSUFFICIENT_DATA"))
        .unwrap_or("OK")
        .to_string()
}

/// The drill's temporary queue: created, allowed to receive from the topics, subscribed.
pub(crate) struct Queue {
    pub(crate) url: String,
    pub(crate) arn: String,
    pub(crate) subscriptions: Vec<String>,
}

pub(crate) async fn open_queue(c: &Clients, name: &str, topics: &BTreeSet<String>) -> Result<Queue> {
    let sqs = c.sqs();
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "3600")
        .send()
        .await
        .map_err(|e| c.aws.error(SQS, format!("CreateQueue {name}"), &e))?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let mut q = Queue { url, arn: String::new(), subscriptions: Vec::new() };
    let opened = async {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&q.url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| c.aws.error(SQS, format!("GetQueueAttributes {name}"), &e))?;
        q.arn = attrs.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().unwrap_or_default();
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": q.arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topics.iter().collect::<Vec<_>>()}},
            }],
        });
        sqs.set_queue_attributes()
            .queue_url(&q.url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .map_err(|e| c.aws.error(SQS, format!("SetQueueAttributes {name} (policy)"), &e))?;
        for t in topics {
            let s = c
                .sns()
                .subscribe()
                .topic_arn(t)
                .protocol("sqs")
                .endpoint(&q.arn)
                .return_subscription_arn(true)
                .send()
                .await
                .map_err(|e| c.aws.error(SNS, format!("Subscribe {t} -> {name}"), &e))?;
            q.subscriptions.push(s.subscription_arn().unwrap_or_default().to_string());
        }
        Ok::<(), Error>(())
    }
    .await;
    match opened {
        Ok(()) => Ok(q),
        Err(e) => {
            let left = close_queue(c, &q).await;
            Err(match left {
                Ok(()) => e,
                Err(l) => Error::Step(format!("{e}; and cleaning up: {l}")),
            })
        }
    }
}

pub(crate) async fn close_queue(c: &Clients, q: &Queue) -> Result<()> {
    let mut errors = Vec::new();
    for s in &q.subscriptions {
        if let Err(e) = c.sns().unsubscribe().subscription_arn(s).send().await {
            errors.push(c.aws.error(SNS, format!("Unsubscribe {s}"), &e).to_string());
        }
    }
    if let Err(e) = c.sqs().delete_queue().queue_url(&q.url).send().await {
        errors.push(c.aws.error(SQS, format!("DeleteQueue {}", q.url), &e).to_string());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Step(errors.join("; ")))
    }
}

pub(crate) async fn set_state(c: &Clients, alarm: &str, to: &str, why: &str) -> Result<()> {
    c.cw()
        .set_alarm_state()
        .alarm_name(alarm)
        .state_value(StateValue::from(to))
        .state_reason(why)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| c.aws.error(CLOUDWATCH, format!("SetAlarmState {alarm} {to}"), &e).into())
}

/// A notification as it reached the queue.
pub(crate) struct Delivered {
    pub(crate) subject: String,
    pub(crate) sent_ms: u64,
}

/// Read the queue until each alarm's ALARM notification is in, or the wait ends.
pub(crate) async fn collect(
    c: &Clients,
    q: &Queue,
    alarms: &BTreeSet<String>,
    wait: Duration,
    shown: &crate::executor::Shown,
) -> Result<BTreeMap<String, Delivered>> {
    let mut got: BTreeMap<String, Delivered> = BTreeMap::new();
    let started = Instant::now();
    while got.len() < alarms.len() && started.elapsed() < wait {
        let left = wait.saturating_sub(started.elapsed()).as_secs().clamp(1, 5) as i32;
        shown.say(&format!(
            "{} of {} notifications in after {} s (waiting up to {} s)",
            got.len(),
            alarms.len(),
            started.elapsed().as_secs(),
            wait.as_secs()
        ));
        let out = c
            .sqs()
            .receive_message()
            .queue_url(&q.url)
            .max_number_of_messages(10)
            .wait_time_seconds(left)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| c.aws.error(SQS, format!("ReceiveMessage {}", q.url), &e))?;
        for m in out.messages() {
            let sent_ms = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                .and_then(|t| t.parse::<u64>().ok());
            let body: Value = serde_json::from_str(m.body().unwrap_or_default()).unwrap_or(Value::Null);
            let inner: Value = body
                .get("Message")
                .and_then(Value::as_str)
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(Value::Null);
            let name = inner.get("AlarmName").and_then(Value::as_str).unwrap_or_default();
            let state = inner.get("NewStateValue").and_then(Value::as_str).unwrap_or_default();
            if state == "ALARM" && alarms.contains(name) && !got.contains_key(name) {
                if let Some(sent_ms) = sent_ms {
                    let subject = body.get("Subject").and_then(Value::as_str).unwrap_or_default().to_string();
                    got.insert(name.to_string(), Delivered { subject, sent_ms });
                }
            }
            if let Some(h) = m.receipt_handle() {
                let _ = c.sqs().delete_message().queue_url(&q.url).receipt_handle(h).send().await;
            }
        }
    }
    Ok(got)
}

pub(crate) fn findings_text(f: &Findings) -> Vec<String> {
    let mut out = f.blocking();
    for a in &f.no_band {
        out.push(format!(
            "alarm {a} detects anomalies and has no band yet (INSUFFICIENT_DATA): its metric has too little history for a model (CloudWatch needs up to two weeks)"
        ));
    }
    out
}
