//! Shared team state on S3, against moto's S3 (it honours `If-None-Match` and `If-Match`):
//! two working directories on one bucket, the run lease, verbs racing at one sequence number,
//! a runner killed while it holds the lease, a connection cut mid-append, export and import.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::support::{later, moto_url, state, step_field, verdict, wait_exit, Project, Server};
use flow::exit::{OK, REFUSED, WAITING_APPROVAL};

static BUCKETS: AtomicUsize = AtomicUsize::new(0);

/// A new bucket in moto, for one test.
pub fn bucket() -> String {
    let name = format!("flow-state-{}-{}", std::process::id(), BUCKETS.fetch_add(1, Ordering::SeqCst));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let creds = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test");
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("eu-west-1"))
            .endpoint_url(moto_url())
            .credentials_provider(creds)
            .force_path_style(true)
            .build();
        let cfg = aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
            .create_bucket()
            .bucket(&name)
            .create_bucket_configuration(cfg)
            .send()
            .await
            .expect("moto creates the bucket");
    });
    name
}

/// The S3 backend passes the conformance suite sled passes (appends conditional across
/// processes, plan versions, snapshots, cache and audit, durability, the run lease), against
/// moto's S3.
#[test]
fn s3_passes_the_state_conformance_suite() {
    let url = format!("s3://{}/conformance", bucket());
    let clock: Arc<dyn flow::clock::Clock> = Arc::new(flow::clock::Shifted::system());
    let open = || -> Box<dyn flow::state::Backend> {
        let conf = crate::support::moto_conf("eu-west-1");
        Box::new(flow::state::s3::S3::with_config(&url, Some(conf), clock.clone()).expect("the S3 backend"))
    };
    flow::state::conformance::check(&open, "s3");
}

/// A working directory whose state is `s3://BUCKET/team`.
pub fn on(bucket: &str, endpoint: &str) -> Project {
    let p = Project::new();
    p.aws(endpoint).env("FLOW_STATE", &format!("s3://{bucket}/team"));
    p
}

const SPEC: &str = "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n";

fn planned(p: &Project, steps: &str) {
    p.write("specs/drill.md", SPEC);
    p.flow(&["plan", "specs/drill.md"]).expect(OK);
    p.edit_steps("drill", steps);
}

fn events(p: &Project) -> Vec<Value> {
    let r = p.flow(&["log", "--json"]);
    r.expect(OK);
    r.json()["events"].as_array().unwrap().clone()
}

/// Sequence numbers 1..=n, each once.
fn contiguous(evs: &[Value]) {
    let seqs: Vec<u64> = evs.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{seqs:?}");
}

#[test]
fn two_directories_share_one_runbook_on_a_bucket() {
    let server = Server::start();
    let b = bucket();
    let (a, other) = (on(&b, &moto_url()), on(&b, &moto_url()));
    planned(
        &a,
        &format!(
            r#"
            [[steps]]
            id = "gate"
            kind = "approval"
            gate = true
            params = {{ summary = "go on?" }}
            [[steps]]
            id = "health"
            kind = "probe"
            params = {{ url = "{}", attempts = 500, interval_s = 1 }}
            [[steps]]
            id = "drill"
            kind = "command"
            gate = true
            needs = ["gate", "health"]
            covers = ["recovery-1", "recovery-2"]
            params = {{ run = "echo '::metric rto_s=3600'; echo '::metric rpo_s=300'" }}
            "#,
            server.url("/health")
        ),
    );
    // The other directory is another checkout of the same project (at another path): the same
    // spec and workflow file, found relative to it.
    other.write("specs/drill.md", a.read("specs/drill.md"));
    other.write("workflows/drill.toml", a.read("workflows/drill.toml"));
    let mut child = a.spawn(&["run", "--wait"]);
    // The other directory sees the gate waiting, and who holds the run's lease.
    let s = other.wait_until("gate waiting, the lease held", |s| {
        state(s, "gate") == "waiting_approval" && s["lease"].is_string()
    });
    // On shared state the holder is the AWS caller identity, not a typed name.
    assert!(s["lease"].as_str().unwrap().starts_with("arn:aws:sts::123456789012:user/moto@"), "{}", s["lease"]);
    let text = other.flow(&["status"]);
    assert!(text.stdout.contains("lease: `flow run` by arn:aws:sts::123456789012:user/moto@"), "{}", text.stdout);
    other.approve(&["gate", "--as", "ops"]).expect(OK);
    other.wait_until("the gate carried out by the waiting run", |s| state(s, "gate") == "succeeded");
    server.set_healthy(true);
    // The waiting run carries on, then stops at the next gate.
    assert_eq!(wait_exit(&mut child), WAITING_APPROVAL);
    assert_eq!(step_field(&a.status(), "gate", "state"), "succeeded");
    // The lease is given back when the run ends.
    assert!(a.status().get("lease").is_none());
    other.approve(&["drill"]).expect(OK);
    other.flow(&["run"]).expect(OK);
    let s = a.status();
    assert_eq!((verdict(&s, "recovery-1"), verdict(&s, "recovery-2")), ("pass".into(), "pass".into()));
    // Every event says who and from which host.
    let evs = events(&a);
    contiguous(&evs);
    let approved: Vec<&Value> = evs.iter().filter(|e| e["event"] == "approved").collect();
    // The AWS caller is the actor; `--as` the name beside it.
    assert_eq!(
        (approved[0]["actor"].as_str(), approved[0]["as"].as_str()),
        (Some("arn:aws:sts::123456789012:user/moto"), Some("ops"))
    );
    assert!(evs.iter().all(|e| e["host"].as_str().is_some_and(|h| !h.is_empty())), "{evs:?}");
    let log = a.flow(&["log"]);
    assert!(log.stdout.contains("arn:aws:sts::123456789012:user/moto (as ops)@"), "{}", log.stdout);
}

/// A project whose run polls a health probe until the server turns healthy, after a gated
/// side effect that must happen once.
fn polling(b: &str, server: &Server) -> Project {
    let p = on(b, &moto_url());
    planned(
        &p,
        &format!(
            r#"
            [[steps]]
            id = "once"
            kind = "command"
            gate = true
            covers = ["recovery-1", "recovery-2"]
            params = {{ run = "echo once >> side-effect.txt; echo '::metric rto_s=60'; echo '::metric rpo_s=60'" }}
            [[steps]]
            id = "health"
            kind = "probe"
            needs = ["once"]
            params = {{ url = "{}", attempts = 500, interval_s = 1 }}
            "#,
            server.url("/health")
        ),
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["once"]).expect(OK);
    p
}

#[test]
fn one_run_holds_the_lease_the_other_is_told_who() {
    let server = Server::start();
    let b = bucket();
    let p = polling(&b, &server);
    let mut first = p.spawn(&["run", "--wait"]);
    p.wait_until("health polling", |s| state(s, "health") == "waiting" && s["lease"].is_string());
    let second = on(&b, &moto_url()).flow(&["run"]);
    second.expect(REFUSED);
    assert!(
        second
            .stderr
            .contains("another `flow run` is working on runbook `drill`: arn:aws:sts::123456789012:user/moto@")
            && second.stderr.contains("holds its lease until"),
        "{}",
        second.stderr
    );
    server.set_healthy(true);
    assert_eq!(wait_exit(&mut first), OK);
    assert_eq!(p.read("side-effect.txt").lines().count(), 1);
}

#[test]
fn a_runner_killed_holding_the_lease_is_taken_over_after_it_lapses() {
    let server = Server::start();
    let b = bucket();
    let p = polling(&b, &server);
    let mut first = p.spawn(&["run", "--wait"]);
    p.wait_until("health polling", |s| {
        state(s, "health") == "waiting" && step_field(s, "once", "state") == "succeeded"
    });
    first.kill().expect("kill -9");
    first.wait().unwrap();
    // Its lease is still there: nobody else runs until it lapses.
    p.flow(&["run"]).expect(REFUSED);
    // A minute and a half later (the clock moved, not waited for) it has lapsed.
    server.set_healthy(true);
    p.env("FLOW_NOW", &later(90));
    p.flow(&["run"]).expect(OK);
    assert_eq!(p.read("side-effect.txt").lines().count(), 1, "the side effect ran once");
    assert_eq!(state(&p.status(), "health"), "succeeded");
    contiguous(&events(&p));
}

#[test]
fn verbs_racing_at_one_sequence_number_lose_nothing_and_double_nothing() {
    let b = bucket();
    let p = on(&b, &moto_url());
    let gates: String = (1..=6)
        .map(|i| {
            format!("[[steps]]\nid = \"g{i}\"\nkind = \"approval\"\ngate = true\nparams = {{ summary = \"{i}\" }}\n")
        })
        .collect();
    planned(&p, &format!("{gates}[[steps]]\nid = \"drill\"\nkind = \"command\"\ngate = true\ncovers = [\"recovery-1\", \"recovery-2\"]\nparams = {{ run = \"true\" }}\n"));
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let before = events(&p).len();
    // Six people approve at once from six directories: each reads the same next sequence
    // number and races for it.
    let digests: Vec<String> = (1..=6).map(|i| p.digest_of(&[&format!("g{i}")])).collect();
    let children: Vec<_> = (1..=6)
        .map(|i| {
            let d = on(&b, &moto_url());
            let c =
                d.spawn(&["approve", &format!("g{i}"), "--as", &format!("person-{i}"), "--digest", &digests[i - 1]]);
            (d, c)
        })
        .collect();
    for (_, c) in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(OK), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let evs = events(&p);
    contiguous(&evs);
    assert_eq!(evs.len(), before + 6);
    let mut by: Vec<String> =
        evs.iter().filter(|e| e["event"] == "approved").map(|e| e["as"].as_str().unwrap().to_string()).collect();
    by.sort();
    assert_eq!(by, (1..=6).map(|i| format!("person-{i}")).collect::<Vec<_>>());
}

/// A proxy to moto that, once, forwards a journal append and drops the connection before
/// the answer comes back, as a network cut would.
struct Cutter {
    port: u16,
    cut: Arc<AtomicBool>,
}

fn read_head(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0)
}

fn message(s: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let head = read_head(s)?;
    let mut body = vec![0u8; content_length(&head)];
    s.read_exact(&mut body).ok()?;
    Some((head, body))
}

impl Cutter {
    fn start(upstream: &str) -> Cutter {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let up = upstream.trim_start_matches("http://").to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let c = cut.clone();
        std::thread::spawn(move || {
            for client in l.incoming().flatten() {
                let (up, c) = (up.clone(), c.clone());
                std::thread::spawn(move || {
                    let mut client = client;
                    let Ok(mut server) = TcpStream::connect(&up) else { return };
                    while let Some((head, body)) = message(&mut client) {
                        let append = head.starts_with(b"PUT ") && String::from_utf8_lossy(&head).contains("/events/");
                        if server.write_all(&head).and_then(|_| server.write_all(&body)).is_err() {
                            return;
                        }
                        let Some((rhead, rbody)) = message(&mut server) else { return };
                        if append && !c.swap(true, Ordering::SeqCst) {
                            // The append reached S3; its answer never comes back.
                            let _ = client.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        if client.write_all(&rhead).and_then(|_| client.write_all(&rbody)).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Cutter { port, cut }
    }
}

#[test]
fn a_connection_cut_mid_append_appends_once() {
    let b = bucket();
    let cutter = Cutter::start(&moto_url());
    let p = on(&b, &format!("http://127.0.0.1:{}", cutter.port));
    p.write("specs/drill.md", SPEC);
    // The plan's first append is cut: the SDK sends it again, finds the event written, and
    // the plan is recorded once.
    let r = p.flow(&["plan", "specs/drill.md"]);
    assert!(cutter.cut.load(Ordering::SeqCst), "the proxy cut an append");
    r.expect(OK);
    let evs = events(&p);
    contiguous(&evs);
    assert_eq!(evs.iter().filter(|e| e["event"] == "plan_recorded").count(), 1);
}

#[test]
fn export_and_import_keep_the_whole_history() {
    let b = bucket();
    // Made locally, moved to the bucket, and back into another local store.
    let local = Project::new();
    local.aws(&moto_url());
    planned(
        &local,
        r#"
        [[steps]]
        id = "drill"
        kind = "command"
        gate = true
        covers = ["recovery-1", "recovery-2"]
        params = { run = "echo '::metric rto_s=3600'; echo '::metric rpo_s=300'" }
        "#,
    );
    local.flow(&["run"]).expect(WAITING_APPROVAL);
    local.approve(&["drill", "--comment", "looks right"]).expect(OK);
    local.flow(&["run"]).expect(OK);
    let url = format!("s3://{b}/moved");
    let out = local.flow(&["state", "export", "--to", &url, "--json"]);
    out.expect(OK);
    let c = out.json();
    assert_eq!((c["runbook"].as_str(), c["plan_versions"].as_u64()), (Some("drill"), Some(2)));
    // Exporting again would overwrite: refused, nothing copied.
    local.flow(&["state", "export", "--to", &url]).expect(REFUSED);

    // This one names the bucket in flow.toml.
    let there = Project::new();
    there.aws(&moto_url()).env("FLOW_STATE", "").write("flow.toml", format!("[state]\nurl = \"{url}\"\n"));
    let back = Project::new();
    back.aws(&moto_url());
    back.flow(&["state", "import", "--from", &url]).expect(OK);
    let log = |p: &Project| {
        let r = p.flow(&["log", "--json"]);
        r.expect(OK);
        r.json()
    };
    assert_eq!(log(&local), log(&there));
    assert_eq!(log(&local), log(&back));
    assert_eq!(verdict(&back.status(), "recovery-1"), "pass");
}

/// Two writers that read the same journal append at the same sequence number, in process,
/// through the backend itself: one wins, the other is told, re-reads and appends after it.
#[test]
fn two_writers_at_one_sequence_number_one_wins() {
    use flow::domain::event::{Body, Event};
    use flow::state::s3::S3;
    use flow::state::{Backend, Error};

    let b = bucket();
    let conf = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(moto_url())
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        )))
        .build();
    let clock: Arc<dyn flow::clock::Clock> = Arc::new(flow::clock::Shifted::system());
    let url = format!("s3://{b}/race");
    let x = S3::with_config(&url, Some(conf.clone()), clock.clone()).unwrap();
    let y = S3::with_config(&url, Some(conf), clock).unwrap();
    let (mut jx, mut jy) = (x.open().unwrap(), y.open().unwrap());
    let ev = |seq: u64, actor: &str| Event {
        seq,
        at: "2026-12-03T00:00:00Z".into(),
        actor: actor.into(),
        as_name: None,
        host: "h".into(),
        body: Body::RunStarted { pid: seq as u32 },
    };
    // Both read an empty journal: both decide on event 1.
    assert!(jx.events_after("rb", 0).unwrap().is_empty() && jy.events_after("rb", 0).unwrap().is_empty());
    jx.append("rb", &[ev(1, "x"), ev(2, "x")]).unwrap();
    match jy.append("rb", &[ev(1, "y")]) {
        Err(e @ Error::Conflict { expected: 1, found: 3, .. }) => {
            // The loser is told who moved the runbook.
            assert!(e.to_string().contains("event 1 was written by x@h"), "{e}");
        }
        other => panic!("expected a conflict at event 1, got {other:?}"),
    }
    // The loser reads again and appends after the winner.
    let next = jy.events_after("rb", 0).unwrap().last().unwrap().seq + 1;
    jy.append("rb", &[ev(next, "y")]).unwrap();
    let all = jx.events_after("rb", 0).unwrap();
    let got: Vec<(u64, &str)> = all.iter().map(|e| (e.seq, e.actor.as_str())).collect();
    assert_eq!(got, [(1, "x"), (2, "x"), (3, "y")]);
    let tail: Vec<u64> = jx.events_after("rb", 1).unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(tail, [2, 3]);
}
