//! The alarm drill: CloudWatch alarms set to ALARM, their notifications measured where people
//! receive them. SNS and SQS are moto's (a topic, a person's subscription standing in as an SQS
//! queue, the drill's own queue); CloudWatch is `fake_cloudwatch` (moto speaks no rpc-v2-cbor
//! and runs no alarm actions), which publishes each alarm's action to moto's SNS.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::fake_aws::FakeAws;
use crate::support::{block, moto_conf, moto_url, step_field, Project};
use flow::exit::{FAILED, OK, WAITING_APPROVAL};

static N: AtomicUsize = AtomicUsize::new(0);

/// A topic in moto; with `inbox`, a queue subscribed to it (the on-call's pager): its URL.
fn topic(name: &str, inbox: bool) -> (String, Option<String>) {
    block(async {
        let c = moto_conf("eu-west-1");
        let (sns, sqs) = (aws_sdk_sns::Client::new(&c), aws_sdk_sqs::Client::new(&c));
        let arn = sns.create_topic().name(name).send().await.unwrap().topic_arn().unwrap().to_string();
        if !inbox {
            return (arn, None);
        }
        let url = sqs
            .create_queue()
            .queue_name(format!("{name}-inbox"))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        let q = attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
        sns.subscribe().topic_arn(&arn).protocol("sqs").endpoint(q).send().await.unwrap();
        (arn, Some(url))
    })
}

/// The ALARM notifications a queue holds: the alarm names.
fn received(url: &str) -> Vec<String> {
    block(async {
        let sqs = aws_sdk_sqs::Client::new(&moto_conf("eu-west-1"));
        let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        let mut names: Vec<String> = out
            .messages()
            .iter()
            .filter_map(|m| {
                let body: serde_json::Value = serde_json::from_str(m.body()?).ok()?;
                let inner: serde_json::Value = serde_json::from_str(body["Message"].as_str()?).ok()?;
                (inner["NewStateValue"] == "ALARM").then(|| inner["AlarmName"].as_str().unwrap_or_default().to_string())
            })
            .collect();
        names.sort();
        names
    })
}

/// The queues subscribed to a topic (the drill's own is named `flow-alarm-drill-...`).
fn subscribed(topic: &str) -> Vec<String> {
    block(async {
        let sns = aws_sdk_sns::Client::new(&moto_conf("eu-west-1"));
        let out = sns.list_subscriptions_by_topic().topic_arn(topic).send().await.unwrap();
        let mut q: Vec<String> = out
            .subscriptions()
            .iter()
            .map(|s| s.endpoint().unwrap_or_default().rsplit(':').next().unwrap_or_default().to_string())
            .collect();
        q.sort();
        q
    })
}

fn drill_queue_open(s: &Setup) -> bool {
    subscribed(&s.topic).iter().any(|q| q.starts_with("flow-alarm-drill-"))
}

struct Setup {
    aws: FakeAws,
    prefix: String,
    topic: String,
    inbox: Option<String>,
}

/// Two alarms under a fresh prefix, on a topic with (or without) a subscriber.
fn setup(p: &Project, subscribed: bool) -> Setup {
    let n = format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    let prefix = format!("launch{n}-alarms-");
    let (topic, inbox) = self::topic(&format!("launch{n}-AlarmTopic"), subscribed);
    let aws = FakeAws::start();
    aws.with(|s| {
        let mut cw = s.cloudwatch.lock().unwrap();
        cw.sns_url = Some(moto_url());
        cw.add(&format!("{prefix}ErrorRateAlarm-A1"), &[&topic]);
        cw.add(&format!("{prefix}LatencyAlarm-B2"), &[&topic]);
    });
    p.aws(&moto_url());
    p.env("AWS_ENDPOINT_URL_CLOUDWATCH", &aws.url);
    Setup { aws, prefix, topic, inbox }
}

fn states(s: &Setup) -> Vec<(String, String)> {
    s.aws.with(|st| st.cloudwatch.lock().unwrap().alarms.values().map(|a| (a.name.clone(), a.state.clone())).collect())
}

fn spec(p: &Project, s: &Setup, line: &str) {
    p.write(
        "specs/oncall.md",
        format!("---\nregion: eu-west-1\nalarm_prefix: {}\n---\n# On-call\n\n- {line}\n", s.prefix),
    );
    p.flow(&["plan", "specs/oncall.md"]).expect(OK);
}

/// The notification requirement planned, gated, drilled for real and passed; the alarms end as
/// they were, the drill's queue is gone, and the on-call's own subscription got each message.
#[test]
fn an_alarm_drill_measures_each_notification_and_puts_everything_back() {
    let p = Project::new();
    let s = setup(&p, true);
    // A third alarm detects anomalies and has no band yet: named, drilled, set back as it was.
    let anomaly = format!("{}RequestAnomalyAlarm-C3", s.prefix);
    s.aws.with(|st| {
        let mut cw = st.cloudwatch.lock().unwrap();
        cw.add(&anomaly, &[&s.topic]);
        let a = cw.alarms.get_mut(&anomaly).unwrap();
        (a.anomaly, a.state) = (true, "INSUFFICIENT_DATA".into());
    });
    spec(&p, &s, "WHEN an alarm fires THE SYSTEM SHALL notify the on-call engineer within 5 minutes.");
    let spec = p.flow(&["spec", "specs/oncall.md", "--json"]).json();
    assert_eq!(
        (spec["requirements"][0]["kind"].as_str(), spec["requirements"][0]["value"].as_f64()),
        (Some("notification"), Some(300.0))
    );

    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let status = p.flow(&["status"]).stdout;
    for shown in [
        format!("{}ErrorRateAlarm-A1 (OK) -> {}", s.prefix, s.topic),
        format!("topic {}: 1 confirmed subscriber (sqs ", s.topic),
        "notification bound: 300 s (from on-call-1)".to_string(),
        format!("{anomaly} (INSUFFICIENT_DATA, anomaly detection) -> {}", s.topic),
        format!("alarm {anomaly} detects anomalies and has no band yet (INSUFFICIENT_DATA)"),
    ] {
        assert!(status.contains(&shown), "`{shown}` in\n{status}");
    }
    assert_eq!(s.aws.with(|st| st.cloudwatch.lock().unwrap().set_calls), 0, "nothing fires before the approval");

    p.approve(&["alarm-drill"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let st = p.status();
    assert_eq!(step_field(&st, "alarm-drill", "state"), "succeeded", "{st}");
    let r = &st["requirements"][0];
    assert_eq!(r["verdict"], "pass", "{r}");

    let events = p.flow(&["log", "--json"]).json()["events"].as_array().unwrap().clone();
    let done = events
        .into_iter()
        .find(|e| e["event"] == "succeeded" && e["step"] == "alarm-drill")
        .expect("the drill's evidence is journaled");
    let ev = &done["evidence"];
    let alarms = ev["alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 3, "{ev}");
    for a in alarms {
        assert!(a["subject"].as_str().unwrap().starts_with("ALARM: \""), "{a}");
        assert!(a["delay_s"].as_f64().unwrap() >= 0.0, "{a}");
    }
    assert!(ev["notification_delay_s"].as_f64().unwrap() < 300.0, "{ev}");
    assert_eq!(ev["restored"].as_array().unwrap().len(), 3, "{ev}");

    assert_eq!(
        states(&s).into_iter().map(|(_, st)| st).collect::<Vec<_>>(),
        ["OK", "OK", "INSUFFICIENT_DATA"],
        "each alarm set back to the state it was in"
    );
    // The report shows each alarm's delay.
    let md = p.flow(&["report", "--format", "md", "-o", "-"]).stdout;
    assert!(md.contains("| alarm | notified in (s) | subject |"), "{md}");
    assert!(md.contains(&format!("| {}LatencyAlarm-B2 | ", s.prefix)), "{md}");

    assert_eq!(subscribed(&s.topic).len(), 1, "only the on-call's subscription is left: {:?}", subscribed(&s.topic));
    assert!(!drill_queue_open(&s));
    let mut want =
        vec![format!("{}ErrorRateAlarm-A1", s.prefix), format!("{}LatencyAlarm-B2", s.prefix), anomaly.clone()];
    want.sort();
    assert_eq!(received(s.inbox.as_ref().unwrap()), want, "the on-call's subscription got each alarm");
}

/// A topic nobody subscribed to: the preview says so, the drill fails naming the alarm and the
/// topic, and no alarm was touched.
#[test]
fn an_alarm_that_reaches_no_one_fails_the_drill_by_name() {
    let p = Project::new();
    let s = setup(&p, false);
    spec(&p, &s, "THE SYSTEM SHALL notify the on-call engineer when an alarm fires.");
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let status = p.flow(&["status"]).stdout;
    assert!(status.contains(&format!("topic {}: 0 confirmed subscribers", s.topic)), "{status}");
    assert!(status.contains("has no confirmed subscriber: its notifications reach no one"), "{status}");
    p.approve(&["alarm-drill"]).expect(OK);
    let r = p.flow(&["run"]);
    r.expect(FAILED);
    let st = p.status();
    let error = step_field(&st, "alarm-drill", "error");
    assert!(
        error.contains(&format!(
            "topic {} (alarm {}ErrorRateAlarm-A1, {}LatencyAlarm-B2) has no confirmed subscriber",
            s.topic, s.prefix, s.prefix
        )),
        "{error}"
    );
    // One topic, both its alarms: each alarm counted once.
    assert!(error.contains("the alarm drill set nothing: 2 of 2 alarms would reach no one"), "{error}");
    assert_eq!(st["requirements"][0]["verdict"], "unverified");
    assert_eq!(s.aws.with(|st| st.cloudwatch.lock().unwrap().set_calls), 0, "nothing was set");
}

/// `flow drill alarm`: a slow delivery is measured and fails its bound; a notification that
/// never comes fails the drill naming the alarm; both leave every alarm OK and no queue.
#[test]
fn flow_drill_alarm_fails_a_slow_or_missing_notification() {
    let p = Project::new();
    let s = setup(&p, true);
    let slow = format!("{}LatencyAlarm-B2", s.prefix);
    s.aws.with(|st| st.cloudwatch.lock().unwrap().alarms.get_mut(&slow).unwrap().slow_s = 400.0);
    let r = p.flow(&["drill", "alarm", "--prefix", &s.prefix, "--max-delay", "5m", "--json"]);
    r.expect(FAILED);
    let j = r.json();
    let delay = j["evidence"]["notification_delay_s"].as_f64().unwrap();
    assert!((400.0..430.0).contains(&delay), "{j}");
    assert_eq!((j["bounds"][0]["limit"].as_f64(), j["bounds"][0]["pass"].as_bool()), (Some(300.0), Some(false)), "{j}");
    let text = p.flow(&["drill", "alarm", "--prefix", &s.prefix, "--max-delay", "10m"]);
    text.expect(OK);
    assert!(text.stdout.contains(&format!("alarm      {slow}: notified in 4")), "{}", text.stdout);
    assert!(text.stdout.contains("bound      notification delay <= 10 min: 6 min 4"), "{}", text.stdout);
    insta::assert_snapshot!(
        "drill-alarm-end-summary",
        crate::support::figures_masked(
            &regex::Regex::new(r"flow-alarm-drill-[0-9a-f]+")
                .unwrap()
                .replace(&text.stdout.replace(&s.prefix, "[prefix]-"), "flow-alarm-drill-[token]")
        )
    );

    let mute = format!("{}ErrorRateAlarm-A1", s.prefix);
    s.aws.with(|st| st.cloudwatch.lock().unwrap().alarms.get_mut(&mute).unwrap().mute = true);
    let r = p.flow(&["drill", "alarm", "--alarm", &mute, "--wait", "1s"]);
    assert_eq!(r.code, FAILED, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("1 of 1 alarms' notifications did not arrive within 1 s: {mute}")),
        "{}",
        r.stderr
    );
    assert!(states(&s).iter().all(|(_, st)| st == "OK"), "{:?}", states(&s));
    assert!(!drill_queue_open(&s), "{:?}", subscribed(&s.topic));
}

/// Killed mid-drill with the alarms in ALARM and the queue open: the next run finds both by
/// the drill's token, sets the alarms back, removes the queue, and the journal says so.
#[test]
fn an_alarm_drill_killed_mid_way_is_cleaned_up_and_said() {
    let p = Project::new();
    let s = setup(&p, true);
    let mute = format!("{}ErrorRateAlarm-A1", s.prefix);
    // One notification never comes: the drill waits for it.
    s.aws.with(|st| st.cloudwatch.lock().unwrap().alarms.get_mut(&mute).unwrap().mute = true);
    spec(&p, &s, "THE SYSTEM SHALL notify the on-call engineer when an alarm fires.");
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["alarm-drill"]).expect(OK);
    let mut child = p.spawn(&["run"]);
    let start = std::time::Instant::now();
    while states(&s).iter().filter(|(_, st)| st == "ALARM").count() < 2 {
        assert!(start.elapsed().as_secs() < 60, "the drill never set the alarms: {:?}", states(&s));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(drill_queue_open(&s), "the queue is open at the kill: {:?}", subscribed(&s.topic));

    let r = p.flow(&["run"]);
    r.expect(FAILED);
    assert!(states(&s).iter().all(|(_, st)| st == "OK"), "{:?}", states(&s));
    let st = p.status();
    let error = step_field(&st, "alarm-drill", "error");
    assert!(error.contains("the alarm drill was interrupted and cleaned up after:"), "{error}");
    assert!(error.contains(&format!("alarm {mute} set back to OK")), "{error}");
    assert!(error.contains("removed, with 1 subscription;"), "{error}");
    assert!(!drill_queue_open(&s), "{:?}", subscribed(&s.topic));
    let log = p.flow(&["log"]).stdout;
    assert!(log.contains("interrupted and cleaned up after"), "{log}");
}
