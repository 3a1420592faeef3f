//! `alarm_drill`: make CloudWatch alarms fire, and measure how long their notifications take to
//! reach someone.
//!
//! The alarms are a name prefix's (a stack's: `<stack>-`) or named ones. Before anything fires,
//! every alarm is read with its actions, and every SNS topic with its subscriptions: an alarm
//! with no SNS action, a topic with no confirmed subscriber, or an alarm already in ALARM (a
//! real one firing, which the drill would hide) fails the drill by name, and nothing is set.
//!
//! The drill: a temporary SQS queue (`flow-alarm-drill-<token>`) subscribed to each topic, each
//! alarm set to ALARM by `SetAlarmState` with a reason naming the runbook, step and token, then
//! the queue read until every alarm's ALARM notification is in or the wait ends. Per alarm, the
//! delay runs from the alarm's `StateUpdatedTimestamp` to the message's SQS `SentTimestamp`
//! (both AWS's clocks). Afterwards, always: each alarm set back to the state it was in, the
//! subscriptions removed, the queue deleted. The figure `notification_delay_s` is the slowest
//! alarm's; a missing notification fails the drill naming the alarm (no figure that could pass).
//!
//! A drill caught by a crash is found by its token: alarms whose state reason carries it are
//! set back, the queue and its subscriptions removed, and the drill fails as interrupted,
//! saying what it cleaned up.

mod inbox;
mod read;

use inbox::*;
use read::*;

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Map, Value};

use super::failover::aws_token;
use super::{obj, typed, Ctx, Error, Executor, Outcome, Preview, Result};
use crate::aws::{Aws, CLOUDWATCH, SNS, SQS};
use crate::clock::rfc3339;
use crate::domain::catalogue::AlarmDrillParams;
use crate::domain::metric;
use crate::domain::requirement::{fmt_num, Kind, DEFAULT_NOTIFICATION_S};

pub struct AlarmDrill;

/// Waited for the notifications beyond the bound, so a late one is measured, not missed.
const WAIT_BEYOND: Duration = Duration::from_secs(60);
/// SetAlarmState's reason text: the drill's marker, found again after a crash.
const REASON: &str = "flow alarm drill";

pub(crate) struct Plan {
    p: AlarmDrillParams,
    which: Which,
    bound: (f64, String),
    wait: Duration,
}

/// Which alarms: every metric alarm whose name starts with a prefix, or named ones.
pub(crate) enum Which {
    Prefix(String),
    Named(Vec<String>),
}

fn plan(ctx: &Ctx, params: &Map<String, Value>) -> Result<Plan> {
    let p: AlarmDrillParams = typed(params)?;
    let bound = match p.max_delay_s {
        Some(b) => (b, "max_delay_s".to_string()),
        // The strictest of the covered requirements'.
        None => ctx
            .covers
            .iter()
            .filter(|r| r.kind == Kind::Notification)
            .min_by(|a, b| a.value.total_cmp(&b.value))
            .map(|r| (r.value, r.id.clone()))
            .unwrap_or((DEFAULT_NOTIFICATION_S, "the default bound".into())),
    };
    let wait = p.wait_s.map(Duration::from_secs).unwrap_or(Duration::from_secs_f64(bound.0) + WAIT_BEYOND);
    let which = match &p.alarm_prefix {
        Some(prefix) => Which::Prefix(prefix.get()?.clone()),
        None => Which::Named(p.alarms.clone().unwrap_or_default()),
    };
    Ok(Plan { p, which, bound, wait })
}

impl AlarmDrill {
    async fn drill(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Outcome> {
        let d = plan(ctx, params)?;
        let c = Clients::new(ctx, &d.p).await?;
        let aws_tok = aws_token(token);
        let alarms = to_drill(&c, &d.which).await?;
        let f = findings(&c, &alarms).await?;
        let blocking = f.blocking();
        if !blocking.is_empty() {
            return Err(Error::Step(format!(
                "the alarm drill set nothing: {} of {} alarms would reach no one or cannot be drilled:\n  {}",
                f.blocked().len(),
                alarms.len(),
                blocking.join("\n  ")
            )));
        }
        let topics: BTreeSet<String> = alarms.iter().flat_map(|a| a.topics.iter().cloned()).collect();
        let name = queue_name(&aws_tok);
        let shown = super::Shown::new(ctx);
        shown.say(&format!("opening {name} on {} topics", topics.len()));
        let q = open_queue(&c, &name, &topics).await?;

        // Fire, collect, and always put everything back.
        let mut fired: Vec<(Alarm, Option<u64>)> = Vec::new();
        let run = async {
            for a in &alarms {
                set_state(&c, &a.name, "ALARM", &reason(ctx, &aws_tok, &a.state)).await?;
                fired.push((a.clone(), None));
            }
            // When each alarm changed state, by CloudWatch's clock.
            let now = self::alarms(&c, &Which::Named(alarms.iter().map(|a| a.name.clone()).collect())).await?;
            for (a, at) in fired.iter_mut() {
                *at = now.iter().find(|n| n.name == a.name).and_then(|n| n.updated_ms);
            }
            let names: BTreeSet<String> = alarms.iter().map(|a| a.name.clone()).collect();
            collect(&c, &q, &names, d.wait, &shown).await
        }
        .await;
        let mut restored = Vec::new();
        let mut cleanup_errors = Vec::new();
        for (a, _) in &fired {
            match set_state(&c, &a.name, &a.state, &format!("{REASON} {aws_tok} ended: set back to {}", a.state)).await
            {
                Ok(()) => restored.push(json!({"alarm": a.name, "to": a.state})),
                Err(e) => cleanup_errors.push(e.to_string()),
            }
        }
        if let Err(e) = close_queue(&c, &q).await {
            cleanup_errors.push(e.to_string());
        }
        drop(shown);
        let got = run?;
        if !cleanup_errors.is_empty() {
            return Err(Error::Step(format!(
                "the alarm drill could not put everything back (see the alarms and the queue {name}): {}",
                cleanup_errors.join("; ")
            )));
        }

        let mut per_alarm = Vec::new();
        let mut missing = Vec::new();
        let mut slowest: Option<f64> = None;
        for (a, at) in &fired {
            match (got.get(&a.name), at) {
                (Some(m), Some(at)) => {
                    let delay = (m.sent_ms.saturating_sub(*at)) as f64 / 1000.0;
                    slowest = Some(slowest.map_or(delay, |s: f64| s.max(delay)));
                    per_alarm.push(json!({
                        "alarm": a.name, "topics": a.topics, "was": a.state,
                        "state_changed_at": rfc3339(*at), "notified_at": rfc3339(m.sent_ms),
                        "delay_s": delay, "subject": m.subject,
                    }));
                }
                (Some(_), None) => missing.push(format!("{} (CloudWatch gave no state-change time)", a.name)),
                (None, _) => missing.push(a.name.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(Error::Step(format!(
                "{} of {} alarms' notifications did not arrive within {} s: {}{}; every alarm was set back and the queue removed",
                missing.len(),
                fired.len(),
                d.wait.as_secs(),
                missing.join(", "),
                if per_alarm.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (delivered: {})",
                        per_alarm
                            .iter()
                            .map(|p| format!("{} in {} s", p["alarm"].as_str().unwrap_or_default(), fmt_num(p["delay_s"].as_f64().unwrap_or(0.0))))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            )));
        }
        let slowest = slowest.unwrap_or(0.0);
        let evidence = obj(json!({
            metric::NOTIFICATION_DELAY_S: slowest,
            "max_delay_s": d.bound.0,
            "max_delay_from": d.bound.1,
            "alarms": per_alarm,
            "restored": restored,
            "queue": name,
            "topics": topics,
            "subscribers": f.subscribers.iter().map(|(t, s)| (t.clone(), json!({"confirmed": s.0, "pending": s.1}))).collect::<Map<String, Value>>(),
            "findings": findings_text(&f),
            "measured": "from each alarm's StateUpdatedTimestamp (CloudWatch) to its message's SentTimestamp (SQS)",
        }));
        let outputs = obj(json!({metric::NOTIFICATION_DELAY_S: slowest}));
        Ok(Outcome::Done { outputs, evidence })
    }
}

#[async_trait]
impl Executor for AlarmDrill {
    async fn preview(&self, ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview> {
        let d = plan(ctx, params)?;
        let c = Clients::new(ctx, &d.p).await?;
        let alarms = to_drill(&c, &d.which).await?;
        let f = findings(&c, &alarms).await?;
        let mut a = format!(
            "set {} CloudWatch alarms in {} to ALARM, one after another, and wait up to {} s for each one's notification on a temporary SQS queue subscribed to their topics; then set each back and remove the queue:\n",
            alarms.len(),
            c.aws.region,
            d.wait.as_secs()
        );
        for al in &alarms {
            a.push_str(&format!(
                "  {} ({}{}) -> {}\n",
                al.name,
                al.state,
                if al.anomaly { ", anomaly detection" } else { "" },
                if al.topics.is_empty() { "no SNS action".to_string() } else { al.topics.join(", ") }
            ));
        }
        for (t, (confirmed, pending)) in &f.subscribers {
            a.push_str(&format!(
                "  topic {t}: {} confirmed subscriber{}{}{}\n",
                confirmed.len(),
                if confirmed.len() == 1 { "" } else { "s" },
                if confirmed.is_empty() { String::new() } else { format!(" ({})", confirmed.join(", ")) },
                if pending.is_empty() {
                    String::new()
                } else {
                    format!("; pending confirmation: {}", pending.join(", "))
                }
            ));
        }
        a.push_str(&format!("  notification bound: {} s (from {})\n", fmt_num(d.bound.0), d.bound.1));
        let found = findings_text(&f);
        if !found.is_empty() {
            a.push_str("findings (the drill fails on the first four kinds before setting anything):\n");
            for x in found {
                a.push_str(&format!("  {x}\n"));
            }
        }
        Ok(Preview::Approve(a))
    }

    async fn submit(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Outcome> {
        self.drill(ctx, params, token).await
    }

    async fn reconcile(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Option<Outcome>> {
        let d = plan(ctx, params)?;
        let c = Clients::new(ctx, &d.p).await?;
        let aws_tok = aws_token(token);
        let name = queue_name(&aws_tok);
        let mut cleaned = Vec::new();
        for a in alarms(&c, &d.which).await? {
            if a.reason.starts_with(&format!("{REASON} {aws_tok}:")) && a.state == "ALARM" {
                let to = was_in(&a.reason);
                set_state(&c, &a.name, &to, &format!("{REASON} {aws_tok} interrupted: set back to {to}")).await?;
                cleaned.push(format!("alarm {} set back to {to}", a.name));
            }
        }
        match c.sqs().get_queue_url().queue_name(&name).send().await {
            Ok(out) => {
                let url = out.queue_url().unwrap_or_default().to_string();
                let attrs = c
                    .sqs()
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(QueueAttributeName::QueueArn)
                    .send()
                    .await
                    .map_err(|e| c.aws.error(SQS, format!("GetQueueAttributes {name}"), &e))?;
                let arn =
                    attrs.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().unwrap_or_default();
                let mut subscriptions = Vec::new();
                let mut next: Option<String> = None;
                loop {
                    let out = c
                        .sns()
                        .list_subscriptions()
                        .set_next_token(next.clone())
                        .send()
                        .await
                        .map_err(|e| c.aws.error(SNS, "ListSubscriptions", &e))?;
                    subscriptions.extend(
                        out.subscriptions()
                            .iter()
                            .filter(|s| s.endpoint() == Some(arn.as_str()))
                            .filter_map(|s| s.subscription_arn().map(str::to_string)),
                    );
                    next = out.next_token().map(str::to_string);
                    if next.is_none() {
                        break;
                    }
                }
                let n = subscriptions.len();
                close_queue(&c, &Queue { url, arn, subscriptions }).await?;
                cleaned.push(format!("queue {name} removed, with {n} subscription{}", if n == 1 { "" } else { "s" }));
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist()) => {}
            Err(e) => return Err(c.aws.error(SQS, format!("GetQueueUrl {name}"), &e).into()),
        }
        if cleaned.is_empty() {
            // Nothing of it was found: it never started, and runs now, once.
            return self.drill(ctx, params, token).await.map(Some);
        }
        Err(Error::Step(format!(
            "the alarm drill was interrupted and cleaned up after: {}; its measurement is incomplete, so it is no evidence. `flow retry {}` runs a new drill (to be approved again)",
            cleaned.join("; "),
            ctx.step
        )))
    }
}

/// What the alarms under `prefix` did from `from_ms` to `to_ms` (Unix ms, AWS's clock): one
/// entry per alarm that went to ALARM, with when (seconds after `from_ms`) and when it came back
/// to OK; and the names of those that stayed quiet.
pub(crate) async fn history(aws: &Aws, prefix: &str, from_ms: u64, to_ms: u64) -> Result<(Vec<Value>, Vec<String>)> {
    use aws_sdk_cloudwatch::types::{HistoryItemType, ScanBy};
    let c = Clients { aws: aws.clone() };
    let (mut fired, mut quiet) = (Vec::new(), Vec::new());
    for a in alarms(&c, &Which::Prefix(prefix.to_string())).await? {
        let mut changes: Vec<(u64, String)> = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = c
                .cw()
                .describe_alarm_history()
                .alarm_name(&a.name)
                .history_item_type(HistoryItemType::StateUpdate)
                .start_date(aws_smithy_types::DateTime::from_millis(from_ms as i64))
                .end_date(aws_smithy_types::DateTime::from_millis(to_ms as i64))
                .scan_by(ScanBy::TimestampAscending)
                .set_next_token(next.clone())
                .send()
                .await
                .map_err(|e| c.aws.error(CLOUDWATCH, format!("DescribeAlarmHistory {}", a.name), &e))?;
            for h in out.alarm_history_items() {
                let at = h.timestamp().and_then(ms_of).unwrap_or(0);
                let data: Value = serde_json::from_str(h.history_data().unwrap_or_default()).unwrap_or(Value::Null);
                let to = data.pointer("/newState/stateValue").and_then(Value::as_str).unwrap_or_default();
                if (from_ms..=to_ms).contains(&at) && !to.is_empty() {
                    changes.push((at, to.to_string()));
                }
            }
            next = out.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        changes.sort();
        let secs = |ms: u64| ms.saturating_sub(from_ms) as f64 / 1000.0;
        match changes.iter().position(|(_, to)| to == "ALARM") {
            Some(i) => {
                let ok = changes[i..].iter().find(|(_, to)| to == "OK").map(|(at, _)| secs(*at));
                fired.push(json!({"alarm": a.name, "fired_at_s": secs(changes[i].0), "ok_at_s": ok}));
            }
            None => quiet.push(a.name),
        }
    }
    Ok((fired, quiet))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_says_what_to_set_back() {
        assert_eq!(
            was_in(
                "flow alarm drill flow-ab: runbook r step s tests this alarm's notification (was INSUFFICIENT_DATA)"
            ),
            "INSUFFICIENT_DATA"
        );
        assert_eq!(was_in("flow alarm drill flow-ab: runbook r step s tests this alarm's notification (was OK)"), "OK");
        // Anything else sets it back to OK, never to ALARM.
        assert_eq!(was_in("flow alarm drill flow-ab: (was ALARM)"), "OK");
        assert_eq!(was_in("Threshold Crossed"), "OK");
        assert_eq!(queue_name("flow-0123abcd"), "flow-alarm-drill-0123abcd");
    }
}
