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

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use aws_sdk_sns::Client as SnsClient;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client as SqsClient;
use serde_json::{json, Map, Value};

use super::failover::aws_token;
use super::{obj, typed, Ctx, Error, Executor, Outcome, Preview, Result};
use crate::aws::{self, Aws, CLOUDWATCH, SNS, SQS};
use crate::clock::rfc3339;
use crate::domain::catalogue::AlarmDrillParams;
use crate::domain::metric;
use crate::domain::requirement::{fmt_num, Kind, DEFAULT_NOTIFICATION_S};

pub struct AlarmDrill;

/// Waited for the notifications beyond the bound, so a late one is measured, not missed.
const WAIT_BEYOND: Duration = Duration::from_secs(60);
/// SetAlarmState's reason text: the drill's marker, found again after a crash.
const REASON: &str = "flow alarm drill";

struct Plan {
    p: AlarmDrillParams,
    which: Which,
    bound: (f64, String),
    wait: Duration,
}

/// Which alarms: every metric alarm whose name starts with a prefix, or named ones.
enum Which {
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

struct Clients {
    aws: Aws,
}

impl Clients {
    async fn new(ctx: &Ctx, p: &AlarmDrillParams) -> Result<Clients> {
        Ok(Clients { aws: aws::config(p.region.as_deref(), &ctx.context).await? })
    }
    fn cw(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.aws.conf)
    }
    fn sns(&self) -> SnsClient {
        SnsClient::new(&self.aws.conf)
    }
    fn sqs(&self) -> SqsClient {
        SqsClient::new(&self.aws.conf)
    }
}

/// One alarm as the drill reads it.
#[derive(Debug, Clone)]
struct Alarm {
    name: String,
    state: String,
    reason: String,
    updated_ms: Option<u64>,
    enabled: bool,
    topics: Vec<String>,
    /// An anomaly-detection alarm (its threshold is a band, learnt from the metric's history).
    anomaly: bool,
}

/// A topic's subscribers: (confirmed, pending confirmation), each `protocol endpoint`.
type Subscribers = (Vec<String>, Vec<String>);

fn ms_of(t: &aws_smithy_types::DateTime) -> Option<u64> {
    t.to_millis().ok().and_then(|m| u64::try_from(m).ok())
}

async fn alarms(c: &Clients, which: &Which) -> Result<Vec<Alarm>> {
    let (what, names) = match which {
        Which::Prefix(pre) => (format!("prefix {pre}"), &[][..]),
        Which::Named(names) => (names.join(", "), &names[..]),
    };
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut req = c.cw().describe_alarms().alarm_types(AlarmType::MetricAlarm).set_next_token(next.clone());
        match which {
            Which::Prefix(pre) => req = req.alarm_name_prefix(pre),
            Which::Named(names) => {
                for n in names {
                    req = req.alarm_names(n);
                }
            }
        }
        let out = req.send().await.map_err(|e| c.aws.error(CLOUDWATCH, format!("DescribeAlarms {what}"), &e))?;
        for a in out.metric_alarms() {
            found.push(Alarm {
                name: a.alarm_name().unwrap_or_default().to_string(),
                state: a.state_value().map(|s| s.as_str().to_string()).unwrap_or_default(),
                reason: a.state_reason().unwrap_or_default().to_string(),
                updated_ms: a.state_updated_timestamp().and_then(ms_of),
                enabled: a.actions_enabled().unwrap_or(true),
                topics: a.alarm_actions().iter().filter(|x| x.starts_with("arn:aws:sns:")).cloned().collect(),
                anomaly: a.threshold_metric_id().is_some(),
            });
        }
        next = out.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    let missing: Vec<&String> = names.iter().filter(|n| !found.iter().any(|a| &a.name == *n)).collect();
    if !missing.is_empty() {
        return Err(Error::Step(format!(
            "no metric alarm named {} in {}",
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            c.aws.region
        )));
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The alarms to drill: at least one (named alarms that are missing are an error already).
async fn to_drill(c: &Clients, which: &Which) -> Result<Vec<Alarm>> {
    let found = alarms(c, which).await?;
    if let (true, Which::Prefix(what)) = (found.is_empty(), which) {
        return Err(Error::Step(format!(
            "no metric alarm with the prefix {what} in {}: nothing to drill",
            c.aws.region
        )));
    }
    Ok(found)
}

async fn subscribers(c: &Clients, topic: &str, ours: Option<&str>) -> Result<Subscribers> {
    let (mut confirmed, mut pending) = (Vec::new(), Vec::new());
    let mut next: Option<String> = None;
    loop {
        let out = c
            .sns()
            .list_subscriptions_by_topic()
            .topic_arn(topic)
            .set_next_token(next.clone())
            .send()
            .await
            .map_err(|e| c.aws.error(SNS, format!("ListSubscriptionsByTopic {topic}"), &e))?;
        for s in out.subscriptions() {
            let endpoint = s.endpoint().unwrap_or_default();
            if ours.is_some_and(|q| q == endpoint) {
                continue;
            }
            let who = format!("{} {endpoint}", s.protocol().unwrap_or_default());
            match s.subscription_arn() {
                Some(a) if a.starts_with("arn:") => confirmed.push(who),
                _ => pending.push(who),
            }
        }
        next = out.next_token().map(str::to_string);
        if next.is_none() {
            return Ok((confirmed, pending));
        }
    }
}

/// What keeps an alarm from reaching anyone, found before anything fires.
struct Findings {
    no_action: Vec<String>,
    actions_disabled: Vec<String>,
    already_alarm: Vec<String>,
    /// topic -> its alarms, for topics nobody confirmed a subscription to.
    no_subscriber: BTreeMap<String, Vec<String>>,
    subscribers: BTreeMap<String, Subscribers>,
    /// Anomaly-detection alarms with no band yet.
    no_band: Vec<String>,
}

impl Findings {
    /// The alarms that stop the drill, each once (a topic's finding may name several).
    fn blocked(&self) -> BTreeSet<&str> {
        self.no_action
            .iter()
            .chain(&self.actions_disabled)
            .chain(&self.already_alarm)
            .chain(self.no_subscriber.values().flatten())
            .map(String::as_str)
            .collect()
    }

    fn blocking(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.no_action {
            out.push(format!("alarm {a} has no SNS action: it notifies no one"));
        }
        for a in &self.actions_disabled {
            out.push(format!("alarm {a} has its actions disabled: it notifies no one"));
        }
        for (t, alarms) in &self.no_subscriber {
            let pending = self.subscribers.get(t).map(|s| s.1.len()).unwrap_or(0);
            out.push(format!(
                "topic {t} (alarm {}) has no confirmed subscriber{}: its notifications reach no one",
                alarms.join(", "),
                if pending > 0 { format!("; {pending} pending confirmation") } else { String::new() }
            ));
        }
        for a in &self.already_alarm {
            out.push(format!(
                "alarm {a} is in ALARM now: a real alarm is firing, and a drill would hide it; run the drill when it is OK"
            ));
        }
        out
    }
}

async fn findings(c: &Clients, alarms: &[Alarm]) -> Result<Findings> {
    let mut f = Findings {
        no_action: Vec::new(),
        actions_disabled: Vec::new(),
        already_alarm: Vec::new(),
        no_subscriber: BTreeMap::new(),
        subscribers: BTreeMap::new(),
        no_band: Vec::new(),
    };
    for a in alarms {
        if a.topics.is_empty() {
            f.no_action.push(a.name.clone());
        } else if !a.enabled {
            f.actions_disabled.push(a.name.clone());
        }
        if a.state == "ALARM" {
            f.already_alarm.push(a.name.clone());
        }
        if a.anomaly && a.state == "INSUFFICIENT_DATA" {
            f.no_band.push(a.name.clone());
        }
        for t in &a.topics {
            if !f.subscribers.contains_key(t) {
                let s = subscribers(c, t, None).await?;
                f.subscribers.insert(t.clone(), s);
            }
            if f.subscribers[t].0.is_empty() {
                f.no_subscriber.entry(t.clone()).or_default().push(a.name.clone());
            }
        }
    }
    Ok(f)
}

fn queue_name(aws_tok: &str) -> String {
    format!("flow-alarm-drill-{}", aws_tok.trim_start_matches("flow-"))
}

fn reason(ctx: &Ctx, aws_tok: &str, was: &str) -> String {
    format!("{REASON} {aws_tok}: runbook {} step {} tests this alarm's notification (was {was})", ctx.runbook, ctx.step)
}

/// The state a drill's reason says the alarm was in before it.
fn was_in(reason: &str) -> String {
    reason
        .rsplit_once("(was ")
        .and_then(|(_, w)| w.strip_suffix(')'))
        .filter(|w| matches!(*w, "OK" | "INSUFFICIENT_DATA"))
        .unwrap_or("OK")
        .to_string()
}

/// The drill's temporary queue: created, allowed to receive from the topics, subscribed.
struct Queue {
    url: String,
    arn: String,
    subscriptions: Vec<String>,
}

async fn open_queue(c: &Clients, name: &str, topics: &BTreeSet<String>) -> Result<Queue> {
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

async fn close_queue(c: &Clients, q: &Queue) -> Result<()> {
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

async fn set_state(c: &Clients, alarm: &str, to: &str, why: &str) -> Result<()> {
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
struct Delivered {
    subject: String,
    sent_ms: u64,
}

/// Read the queue until each alarm's ALARM notification is in, or the wait ends.
async fn collect(
    c: &Clients,
    q: &Queue,
    alarms: &BTreeSet<String>,
    wait: Duration,
    shown: &super::Shown,
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

fn findings_text(f: &Findings) -> Vec<String> {
    let mut out = f.blocking();
    for a in &f.no_band {
        out.push(format!(
            "alarm {a} detects anomalies and has no band yet (INSUFFICIENT_DATA): its metric has too little history for a model (CloudWatch needs up to two weeks)"
        ));
    }
    out
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
