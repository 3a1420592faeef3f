//! The alarm drill's reading: the alarms to set (by prefix or names), the SNS topics their
//! actions publish to and who subscribes, and what in that would keep a notice from arriving.

use crate::aws::{self, Aws, CLOUDWATCH, SNS};
use crate::domain::catalogue::AlarmDrillParams;
use crate::executor::{Ctx, Error, Result};
use aws_sdk_cloudwatch::types::AlarmType;
use aws_sdk_sns::Client as SnsClient;
use aws_sdk_sqs::Client as SqsClient;
use std::collections::{BTreeMap, BTreeSet};

use super::*;

pub(crate) struct Clients {
    pub(crate) aws: Aws,
}

impl Clients {
    pub(crate) async fn new(ctx: &Ctx, p: &AlarmDrillParams) -> Result<Clients> {
        Ok(Clients { aws: aws::config(p.region.as_deref(), &ctx.context).await? })
    }
    pub(crate) fn cw(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.aws.conf)
    }
    pub(crate) fn sns(&self) -> SnsClient {
        SnsClient::new(&self.aws.conf)
    }
    pub(crate) fn sqs(&self) -> SqsClient {
        SqsClient::new(&self.aws.conf)
    }
}

/// One alarm as the drill reads it.
#[derive(Debug, Clone)]
pub(crate) struct Alarm {
    pub(crate) name: String,
    pub(crate) state: String,
    pub(crate) reason: String,
    pub(crate) updated_ms: Option<u64>,
    pub(crate) enabled: bool,
    pub(crate) topics: Vec<String>,
    /// An anomaly-detection alarm (its threshold is a band, learnt from the metric's history).
    pub(crate) anomaly: bool,
}

/// A topic's subscribers: (confirmed, pending confirmation), each `protocol endpoint`.
pub(crate) type Subscribers = (Vec<String>, Vec<String>);

pub(crate) fn ms_of(t: &aws_smithy_types::DateTime) -> Option<u64> {
    t.to_millis().ok().and_then(|m| u64::try_from(m).ok())
}

pub(crate) async fn alarms(c: &Clients, which: &Which) -> Result<Vec<Alarm>> {
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
pub(crate) async fn to_drill(c: &Clients, which: &Which) -> Result<Vec<Alarm>> {
    let found = alarms(c, which).await?;
    if let (true, Which::Prefix(what)) = (found.is_empty(), which) {
        return Err(Error::Step(format!(
            "no metric alarm with the prefix {what} in {}: nothing to drill",
            c.aws.region
        )));
    }
    Ok(found)
}

pub(crate) async fn subscribers(c: &Clients, topic: &str, ours: Option<&str>) -> Result<Subscribers> {
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
pub(crate) struct Findings {
    pub(crate) no_action: Vec<String>,
    pub(crate) actions_disabled: Vec<String>,
    pub(crate) already_alarm: Vec<String>,
    /// topic -> its alarms, for topics nobody confirmed a subscription to.
    pub(crate) no_subscriber: BTreeMap<String, Vec<String>>,
    pub(crate) subscribers: BTreeMap<String, Subscribers>,
    /// Anomaly-detection alarms with no band yet.
    pub(crate) no_band: Vec<String>,
}

impl Findings {
    /// The alarms that stop the drill, each once (a topic's finding may name several).
    pub(crate) fn blocked(&self) -> BTreeSet<&str> {
        self.no_action
            .iter()
            .chain(&self.actions_disabled)
            .chain(&self.already_alarm)
            .chain(self.no_subscriber.values().flatten())
            .map(String::as_str)
            .collect()
    }

    pub(crate) fn blocking(&self) -> Vec<String> {
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

pub(crate) async fn findings(c: &Clients, alarms: &[Alarm]) -> Result<Findings> {
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
