//! Notifications end to end: `flow run` tells a local HTTP server that records the calls when a
//! gate starts waiting and when the runbook completes, once each, in Slack-compatible JSON; a
//! webhook that fails is retried, journaled, and never changes the run's outcome.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::support::Project;
use flow::exit::{OK, WAITING_APPROVAL};

/// A webhook receiver on loopback answering `status`; the bodies it got.
fn receiver(status: u16) -> (String, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let g = got.clone();
    let port = crate::serve::serve(move |req: hyper::Request<hyper::body::Incoming>| {
        let g = g.clone();
        async move {
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            g.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            Ok(hyper::Response::builder().status(status).body(Full::new(Bytes::from_static(b"ok"))).unwrap())
        }
    });
    (format!("http://127.0.0.1:{port}/hook"), got)
}

fn project(hook: &str) -> Project {
    let p = Project::new();
    p.write("specs/dr.md", "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n");
    p.flow(&["plan", "specs/dr.md"]).expect(OK);
    p.edit_steps(
        "dr",
        r#"
        [[steps]]
        id = "restore"
        kind = "command"
        gate = true
        covers = ["recovery-1", "recovery-2"]
        params = { run = "echo '::metric rto_s=60'; echo '::metric rpo_s=60'" }
        "#,
    );
    p.env("FLOW_WEBHOOK_URL", hook);
    p
}

#[test]
fn a_gate_and_the_decision_are_told_once() {
    let (hook, got) = receiver(200);
    let p = project(&hook);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    {
        let calls = got.lock().unwrap();
        assert_eq!(calls.len(), 1, "told once, not at every run: {calls:?}");
        let text = calls[0]["text"].as_str().unwrap();
        assert!(text.starts_with("dr: `restore` waits for approval"), "{text}");
        assert!(
            text.contains("$ echo '::metric rto_s=60'") && text.contains("flow approve restore --runbook dr"),
            "{text}"
        );
        assert_eq!(calls[0]["blocks"][0]["type"], "header", "Slack blocks beside the plain text");
        assert_eq!(calls[0]["flow"]["kind"], "gate_waiting");
    }
    p.approve(&["restore"]).expect(OK);
    p.flow(&["run"]).expect(OK);
    p.flow(&["run"]).expect(OK);
    let calls = got.lock().unwrap();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let done = calls[1]["text"].as_str().unwrap();
    assert!(done.starts_with("dr: every step is done: GO") && done.contains("pass recovery-1 rto <= 2 h"), "{done}");
    let log = p.flow(&["log"]).stdout;
    assert!(
        log.contains("notify (gate_waiting): dr: `restore` waits for approval")
            && log.contains("notified: completed:v2"),
        "{log}"
    );
}

#[test]
fn a_failing_webhook_is_retried_journaled_and_harmless() {
    let (hook, got) = receiver(500);
    let p = project(&hook);
    let r = p.flow(&["run"]);
    r.expect(WAITING_APPROVAL);
    assert_eq!(got.lock().unwrap().len(), 3, "three attempts");
    let events = p.flow(&["log", "--json"]).json()["events"].as_array().unwrap().clone();
    let notified = events.iter().find(|e| e["event"] == "notified").unwrap();
    assert_eq!(notified["ok"], false);
    // The URL is the credential: only its scheme and host are ever written.
    assert_eq!(notified["error"], "HTTP 500 from http://127.0.0.1/… (after 3 attempts)");
    assert!(r.stderr.contains("not delivered"), "{}", r.stderr);
    let path = hook.split_once("127.0.0.1").unwrap().1.to_string();
    let mut seen = vec![r.stdout.clone(), r.stderr.clone(), p.flow(&["log"]).stdout, p.flow(&["log", "--json"]).stdout];
    for format in ["json", "md", "html", "junit"] {
        seen.push(p.flow(&["report", "--format", format, "-o", "-"]).stdout);
    }
    for text in seen {
        assert!(!text.contains(&path), "the webhook's path in: {text}");
    }
    // Not sent again at the next run: at most once.
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    assert_eq!(got.lock().unwrap().len(), 3);
}
