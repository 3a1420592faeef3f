//! CloudWatch alarms for what moto lacks, over the real rpc-v2-cbor wire protocol (POST
//! `/service/GraniteServiceVersion20100801/operation/<Op>`, CBOR bodies) the AWS SDK for Rust
//! speaks to CloudWatch, and moto does not. DescribeAlarms (by names or prefix), SetAlarmState
//! and DescribeAlarmHistory. SetAlarmState does what moto's does not: on a change of state, the
//! alarm's actions run, so an SNS topic's action is published (Query `Publish`, the alarm's
//! JSON message) to the SNS endpoint the test gives (moto's), which delivers it to the topic's
//! SQS subscribers. An alarm can watch dimensions (for `flow assess`); it can be made slow (its state-change time is set that long before
//! the publish, as a late delivery would look) or mute (its actions never run).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use minicbor::data::{Tag, Type};
use serde_json::{json, Value};

pub const PATH: &str = "/service/GraniteServiceVersion20100801/operation/";

#[derive(Clone, Default)]
pub struct Alarm {
    pub name: String,
    pub state: String,
    pub reason: String,
    /// Unix ms.
    pub updated_ms: u64,
    pub actions: Vec<String>,
    pub ok_actions: Vec<String>,
    pub anomaly: bool,
    /// Its state-change time is put this long before the notification is published.
    pub slow_s: f64,
    /// Its actions never run.
    pub mute: bool,
    /// (name, value): what it watches (`InstanceId`, `LoadBalancer`).
    pub dimensions: Vec<(String, String)>,
}

#[derive(Default)]
pub struct Alarms {
    pub alarms: BTreeMap<String, Alarm>,
    /// (alarm, unix ms, summary, old state, new state)
    pub history: Vec<(String, u64, String, String, String)>,
    /// Where SNS `Publish` goes (moto).
    pub sns_url: Option<String>,
    pub set_calls: usize,
}

impl Alarms {
    pub fn add(&mut self, name: &str, topics: &[&str]) {
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        self.alarms.insert(
            name.into(),
            Alarm {
                name: name.into(),
                state: "OK".into(),
                reason: "Threshold Crossed: no datapoints were breaching".into(),
                updated_ms: now_ms() - 3_600_000,
                actions: topics.clone(),
                ok_actions: topics,
                ..Alarm::default()
            },
        );
    }
}

impl Alarms {
    /// The alarm changes state by itself (its metric crossed the threshold): recorded in its
    /// history, no action run.
    pub fn crossed(&mut self, name: &str, to: &str) {
        if let Some(a) = self.alarms.get_mut(name) {
            let old = std::mem::replace(&mut a.state, to.to_string());
            a.updated_ms = now_ms();
            a.reason = "Threshold Crossed".into();
            self.history.push((name.into(), now_ms(), format!("Alarm updated from {old} to {to}"), old, to.into()));
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

// ---- CBOR <-> JSON values (what the SDK's shapes need: maps, lists, text, numbers, times) ----

/// Read the items of a map or array of `n` entries (`None`: indefinite, up to its break).
fn each(
    d: &mut minicbor::Decoder,
    n: Option<u64>,
    mut item: impl FnMut(&mut minicbor::Decoder) -> Result<(), minicbor::decode::Error>,
) -> Result<(), minicbor::decode::Error> {
    let mut i = 0;
    loop {
        if n.is_some_and(|n| i >= n) {
            return Ok(());
        }
        if n.is_none() && d.datatype()? == Type::Break {
            d.skip()?;
            return Ok(());
        }
        item(d)?;
        i += 1;
    }
}

fn read(d: &mut minicbor::Decoder) -> Result<Value, minicbor::decode::Error> {
    Ok(match d.datatype()? {
        Type::Map | Type::MapIndef => {
            let n = d.map()?;
            let mut m = serde_json::Map::new();
            each(d, n, |d| {
                let k = d.str()?.to_string();
                m.insert(k, read(d)?);
                Ok(())
            })?;
            Value::Object(m)
        }
        Type::Array | Type::ArrayIndef => {
            let n = d.array()?;
            let mut v = Vec::new();
            each(d, n, |d| {
                v.push(read(d)?);
                Ok(())
            })?;
            Value::Array(v)
        }
        Type::String | Type::StringIndef => json!(d.str()?),
        Type::Bool => json!(d.bool()?),
        Type::Null | Type::Undefined => {
            d.skip()?;
            Value::Null
        }
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => json!(d.u64()?),
        Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int => json!(d.i64()?),
        Type::F16 | Type::F32 | Type::F64 => json!(d.f64()?),
        Type::Tag => {
            d.tag()?;
            read(d)?
        }
        _ => {
            d.skip()?;
            Value::Null
        }
    })
}

/// A JSON value as CBOR; a key ending in `Timestamp` holds Unix seconds and goes as a tag-1 time.
fn write(e: &mut minicbor::Encoder<Vec<u8>>, key: &str, v: &Value) {
    match v {
        Value::Object(m) => {
            e.map(m.len() as u64).unwrap();
            for (k, v) in m {
                e.str(k).unwrap();
                write(e, k, v);
            }
        }
        Value::Array(a) => {
            e.array(a.len() as u64).unwrap();
            for x in a {
                write(e, key, x);
            }
        }
        Value::String(s) => {
            e.str(s).unwrap();
        }
        Value::Bool(b) => {
            e.bool(*b).unwrap();
        }
        Value::Number(n) if key.ends_with("Timestamp") => {
            e.tag(Tag::new(1)).unwrap().f64(n.as_f64().unwrap_or(0.0)).unwrap();
        }
        Value::Number(n) => {
            match n.as_u64() {
                Some(u) => e.u64(u).unwrap(),
                None => e.f64(n.as_f64().unwrap_or(0.0)).unwrap(),
            };
        }
        Value::Null => {
            e.null().unwrap();
        }
    }
}

fn cbor(status: u16, v: &Value) -> Response<Full<Bytes>> {
    let mut e = minicbor::Encoder::new(Vec::new());
    write(&mut e, "", v);
    Response::builder()
        .status(status)
        .header("content-type", "application/cbor")
        .header("smithy-protocol", "rpc-v2-cbor")
        .body(Full::new(Bytes::from(e.into_writer())))
        .unwrap()
}

fn error(code: &str, message: &str) -> Response<Full<Bytes>> {
    cbor(400, &json!({"__type": format!("com.amazonaws.cloudwatch#{code}"), "message": message}))
}

fn alarm_json(a: &Alarm) -> Value {
    let mut v = json!({
        "AlarmName": a.name,
        "AlarmArn": format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{}", a.name),
        "StateValue": a.state,
        "StateReason": a.reason,
        "StateUpdatedTimestamp": a.updated_ms as f64 / 1000.0,
        "ActionsEnabled": true,
        "AlarmActions": a.actions,
        "OKActions": a.ok_actions,
        "EvaluationPeriods": 3,
        "ComparisonOperator": "GreaterThanThreshold",
    });
    if a.anomaly {
        v["ThresholdMetricId"] = json!("band");
        v["ComparisonOperator"] = json!("LessThanLowerOrGreaterThanUpperThreshold");
    } else {
        v["Dimensions"] = a.dimensions.iter().map(|(n, v)| json!({"Name": n, "Value": v})).collect();
        v["MetricName"] = json!("TargetResponseTime");
        v["Namespace"] = json!("AWS/ApplicationELB");
        v["Threshold"] = json!(0.25);
    }
    v
}

/// Answer one CloudWatch call; `None` when the path is not CloudWatch's.
pub async fn handle(path: &str, body: &[u8], st: &std::sync::Mutex<Alarms>) -> Option<Response<Full<Bytes>>> {
    let op = path.strip_prefix(PATH)?;
    let input = read(&mut minicbor::Decoder::new(body)).unwrap_or(json!({}));
    let text = |k: &str| input.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    Some(match op {
        "DescribeAlarms" => {
            let s = st.lock().unwrap();
            let names: Vec<String> = input
                .get("AlarmNames")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let prefix = text("AlarmNamePrefix");
            let found: Vec<Value> = s
                .alarms
                .values()
                .filter(|a| if names.is_empty() { a.name.starts_with(&prefix) } else { names.contains(&a.name) })
                .map(alarm_json)
                .collect();
            cbor(200, &json!({"MetricAlarms": found, "CompositeAlarms": []}))
        }
        "SetAlarmState" => {
            let (name, to, why) = (text("AlarmName"), text("StateValue"), text("StateReason"));
            let publish = {
                let mut s = st.lock().unwrap();
                s.set_calls += 1;
                let sns = s.sns_url.clone();
                let Some(a) = s.alarms.get_mut(&name) else {
                    return Some(error("ResourceNotFound", &format!("Alarm {name} not found")));
                };
                let old = std::mem::replace(&mut a.state, to.clone());
                a.reason = why.clone();
                let changed = old != to;
                if changed {
                    a.updated_ms = now_ms() - (a.slow_s * 1000.0) as u64;
                }
                let actions = match to.as_str() {
                    "ALARM" => a.actions.clone(),
                    "OK" => a.ok_actions.clone(),
                    _ => vec![],
                };
                let at = a.updated_ms;
                let mute = a.mute;
                s.history.push((
                    name.clone(),
                    now_ms(),
                    format!("Alarm updated from {old} to {to}"),
                    old.clone(),
                    to.clone(),
                ));
                (changed && !mute).then_some((sns, actions, old, at))
            };
            if let Some((Some(sns), actions, old, at)) = publish {
                for topic in actions.iter().filter(|t| t.starts_with("arn:aws:sns:")) {
                    let message = json!({
                        "AlarmName": name, "NewStateValue": to, "OldStateValue": old, "NewStateReason": why,
                        "StateChangeTime": at, "Region": "EU (Ireland)",
                    });
                    let region = topic.split(':').nth(3).unwrap_or("eu-west-1");
                    let form: String = form_urlencoded::Serializer::new(String::new())
                        .append_pair("Action", "Publish")
                        .append_pair("Version", "2010-03-31")
                        .append_pair("TopicArn", topic)
                        .append_pair("Subject", &format!("{to}: \"{name}\" in EU (Ireland)"))
                        .append_pair("Message", &message.to_string())
                        .finish();
                    // The region moto files the topic under comes from the credential scope.
                    let auth = format!(
                        "AWS4-HMAC-SHA256 Credential=test/20260101/{region}/sns/aws4_request, SignedHeaders=host, Signature=0"
                    );
                    let _ = reqwest::Client::new()
                        .post(&sns)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("authorization", auth)
                        .body(form)
                        .send()
                        .await;
                }
            }
            cbor(200, &json!({}))
        }
        "DescribeAlarmHistory" => {
            let s = st.lock().unwrap();
            let name = text("AlarmName");
            let items: Vec<Value> = s
                .history
                .iter()
                .filter(|h| name.is_empty() || h.0 == name)
                .map(|(n, at, summary, old, new)| {
                    json!({
                        "AlarmName": n, "AlarmType": "MetricAlarm", "Timestamp": *at as f64 / 1000.0,
                        "HistoryItemType": "StateUpdate", "HistorySummary": summary,
                        "HistoryData": json!({"oldState": {"stateValue": old}, "newState": {"stateValue": new}}).to_string(),
                    })
                })
                .collect();
            cbor(200, &json!({"AlarmHistoryItems": items}))
        }
        other => error("InvalidAction", &format!("the test's CloudWatch does not serve {other}")),
    })
}
