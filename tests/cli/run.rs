//! `flow run` and the operator verbs, end to end with real processes: gates, kill -9 at the
//! worst moments, approvals while another process runs `--wait`, approvals voided by edits.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{state, step_field, verdict, wait_exit, Project, Server};
use flow::exit::{FAILED, OK, REFUSED, WAITING_APPROVAL};

/// A project with a planned two-requirement spec (RTO, RPO) whose steps the test then writes.
fn recovery_project(steps: &str) -> Project {
    let p = Project::new();
    p.write("specs/drill.md", "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n");
    p.flow(&["plan", "specs/drill.md"]).expect(OK);
    p.edit_steps("drill", steps);
    p
}

fn kill_when(p: &Project, child: &mut std::process::Child, what: &str, pred: impl Fn(&serde_json::Value) -> bool) {
    p.wait_until(what, pred);
    child.kill().expect("kill -9");
    child.wait().unwrap();
}

#[test]
fn gate_approve_kill_resume_side_effect_once() {
    let server = Server::start();
    let p = recovery_project(&format!(
        r#"
        [[steps]]
        id = "append"
        kind = "command"
        gate = true
        params = {{ run = "echo once >> side-effect.txt" }}
        [[steps]]
        id = "slow-check"
        kind = "probe"
        needs = ["append"]
        params = {{ url = "{}", timeout_ms = 20000 }}
        [[steps]]
        id = "restore"
        kind = "command"
        gate = true
        needs = ["slow-check"]
        covers = ["recovery-1", "recovery-2"]
        params = {{ run = "echo '::metric rto_s=3600'; echo '::metric rpo_s=300'" }}
        [[steps]]
        id = "go"
        kind = "approval"
        gate = true
        needs = ["restore"]
        params = {{ summary = "launch?" }}
        "#,
        server.url("/slow?ms=3000")
    ));

    // The first run records the edited workflow and stops at the first gate.
    let r = p.flow(&["run"]);
    r.expect(WAITING_APPROVAL);
    let digest = p.digest_of(&["append"]);
    assert!(
        r.stdout.contains(&format!("append: review with `flow status`, then `flow approve append --digest {digest}`")),
        "{}",
        r.stdout
    );
    let s = p.status();
    assert_eq!(step_field(&s, "append", "state"), "waiting_approval");
    assert!(step_field(&s, "append", "will").contains("$ echo once >> side-effect.txt"));
    assert!(!p.path("side-effect.txt").exists(), "nothing runs before its gate");

    p.approve(&["append", "--as", "ana", "--comment", "looks right"]).expect(OK);

    // Run, and kill -9 while the (read-only) probe is in flight.
    let mut child = p.spawn(&["run"]);
    kill_when(&p, &mut child, "slow-check running", |s| state(s, "slow-check") == "running");
    assert_eq!(p.read("side-effect.txt"), "once\n");
    assert_eq!(p.state_of("append"), "succeeded");

    // Resume: the probe runs again, the command does not.
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let s = p.status();
    assert_eq!(step_field(&s, "slow-check", "state"), "succeeded");
    assert_eq!(step_field(&s, "restore", "state"), "waiting_approval");
    assert_eq!(p.read("side-effect.txt"), "once\n");

    p.approve(&["restore"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let s = p.status();
    assert_eq!((verdict(&s, "recovery-1"), verdict(&s, "recovery-2")), ("pass".into(), "pass".into()));
    let will = step_field(&s, "go", "will");
    assert!(will.contains("decide: launch?") && will.contains("pass") && will.contains("RTO 1 h (restore)"), "{will}");

    p.approve(&["go", "--as", "lead"]).expect(OK);
    let r = p.flow(&["run"]);
    r.expect(OK);
    assert!(r.stdout.contains("done"), "{}", r.stdout);
    assert_eq!(p.read("side-effect.txt"), "once\n", "the side effect happened exactly once");

    let log = p.flow(&["log", "--json"]).json();
    let approvals: Vec<(String, String)> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "approved")
        .map(|e| (e["step"].as_str().unwrap().into(), e["as"].as_str().unwrap_or("").into()))
        .collect();
    assert_eq!(
        approvals,
        [("append".into(), "ana".into()), ("restore".into(), "".into()), ("go".into(), "lead".into())]
    );
    let human = p.flow(&["log"]).stdout;
    assert!(
        human.contains("append: approved by ") && human.contains("(as ana)") && human.contains(": looks right"),
        "{human}"
    );
}

#[test]
fn a_command_caught_mid_flight_is_handed_to_a_person() {
    let p = recovery_project(
        r#"
        [[steps]]
        id = "slow"
        kind = "command"
        gate = true
        covers = ["recovery-1", "recovery-2"]
        params = { run = "echo start >> slow.txt; sleep 2; echo '::metric rto_s=10'; echo '::metric rpo_s=0'" }
        "#,
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["slow"]).expect(OK);
    let mut child = p.spawn(&["run"]);
    kill_when(&p, &mut child, "slow running", |s| state(s, "slow") == "running" && p.path("slow.txt").exists());

    let r = p.flow(&["run"]);
    r.expect(FAILED);
    let s = p.status();
    assert_eq!(step_field(&s, "slow", "state"), "failed");
    assert_eq!(step_field(&s, "slow", "interrupted"), "true");
    assert!(step_field(&s, "slow", "error").contains("cannot tell whether it happened"));
    assert!(r.stdout.contains("flow retry slow"), "{}", r.stdout);
    assert_eq!(p.read("slow.txt").lines().count(), 1, "never silently re-run");

    p.flow(&["retry", "slow"]).expect(OK);
    p.flow(&["run"]).expect(OK);
    assert_eq!(p.read("slow.txt").lines().count(), 2);
    assert_eq!(verdict(&p.status(), "recovery-1"), "pass");
}

#[test]
fn approve_while_another_process_runs_wait() {
    let server = Server::start();
    let p = recovery_project(&format!(
        r#"
        [[steps]]
        id = "gate"
        kind = "approval"
        gate = true
        params = {{ summary = "go on?" }}
        [[steps]]
        id = "health"
        kind = "probe"
        params = {{ url = "{}", attempts = 200, interval_s = 1 }}
        [[steps]]
        id = "drill"
        kind = "command"
        gate = true
        needs = ["gate", "health"]
        covers = ["recovery-1", "recovery-2"]
        params = {{ run = "echo '::metric rto_s=9000'; echo '::metric rpo_s=60'" }}
        "#,
        server.url("/health")
    ));
    let mut child = p.spawn(&["run", "--wait"]);
    p.wait_until("gate waiting and health polling", |s| {
        state(s, "gate") == "waiting_approval" && state(s, "health") == "waiting"
    });
    let r = p.approve(&["gate", "--as", "ops"]);
    r.expect(OK);
    assert!(child.try_wait().unwrap().is_none(), "run --wait is still polling");
    p.wait_until("gate carried out by the waiting run", |s| state(s, "gate") == "succeeded");
    server.set_healthy(true);
    // Health done, drill reaches its gate: --wait stops, blocked on a person.
    assert_eq!(wait_exit(&mut child), WAITING_APPROVAL);
    let s = p.status();
    assert_eq!(step_field(&s, "health", "state"), "succeeded");
    assert!(step_field(&s, "gate", "approval").contains("\"as_name\":\"ops\""), "{s}");
    p.approve(&["drill"]).expect(OK);
    // Every step succeeds; a requirement can still fail on its evidence.
    p.flow(&["run"]).expect(OK);
    let s = p.status();
    // 9000 s misses the 2 h RTO: the verdict says so, from the evidence.
    assert_eq!((verdict(&s, "recovery-1"), verdict(&s, "recovery-2")), ("fail".into(), "pass".into()));
}

#[test]
fn editing_a_step_voids_its_approval_and_keeps_the_rest() {
    let p = recovery_project(
        r#"
        [[steps]]
        id = "a"
        kind = "command"
        gate = true
        params = { run = "echo a >> a.txt" }
        [[steps]]
        id = "b"
        kind = "command"
        gate = true
        needs = ["a"]
        covers = ["recovery-1", "recovery-2"]
        params = { run = "echo '::metric rto_s=1'; echo '::metric rpo_s=1'" }
        "#,
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["a"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["b"]).expect(OK);
    let evidence_before = step_field(&p.status(), "a", "evidence");

    // A person edits b in the workflow file before the next run.
    let wf = p.read("workflows/drill.toml").replace("rto_s=1'", "rto_s=2'");
    p.write("workflows/drill.toml", wf);
    let s = p.status();
    assert!(step_field(&s, "b", "approval_void").contains("the workflow file edits this step"), "{s}");
    assert_eq!(s["workflow_edited"]["changed"], serde_json::json!(["b"]));

    let r = p.flow(&["run"]);
    r.expect(WAITING_APPROVAL);
    assert!(r.stderr.contains("from workflow edit): ~b"), "{}", r.stderr);
    let s = p.status();
    assert_eq!(step_field(&s, "b", "state"), "waiting_approval");
    assert_eq!(step_field(&s, "b", "approval_void"), "step definition changed in plan version 3");
    assert_eq!(step_field(&s, "a", "state"), "succeeded");
    assert_eq!(step_field(&s, "a", "evidence"), evidence_before);
    assert_eq!(p.read("a.txt"), "a\n");
}

#[test]
fn an_approval_binds_to_the_evidence_it_showed() {
    let p = recovery_project(
        r#"
        [[steps]]
        id = "measure"
        kind = "command"
        gate = true
        covers = ["recovery-1", "recovery-2"]
        params = { run = "echo '::metric rto_s=60'; echo '::metric rpo_s=60'" }
        [[steps]]
        id = "go"
        kind = "approval"
        gate = true
        params = { summary = "ship it?" }
        "#,
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    assert!(step_field(&p.status(), "go", "will").contains("unverified"));
    p.approve(&["measure"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    // The go/no-go preview still shows the old verdicts; approving that is approving stale evidence.
    p.approve(&["go"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let s = p.status();
    assert_eq!(step_field(&s, "go", "state"), "waiting_approval");
    assert_eq!(step_field(&s, "go", "approval_void"), "what the step would do changed since it was approved");
    assert!(step_field(&s, "go", "will").contains("pass"));
    p.approve(&["go"]).expect(OK);
    p.flow(&["run"]).expect(OK);
}

#[test]
fn operator_verbs_refuse_what_does_not_apply() {
    let p = recovery_project(
        r#"
        [[steps]]
        id = "a"
        kind = "command"
        gate = true
        params = { run = "echo a >> a.txt" }
        [[steps]]
        id = "b"
        kind = "command"
        gate = true
        needs = ["a"]
        covers = ["recovery-1", "recovery-2"]
        params = { run = "true" }
        "#,
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let r = p.approve(&["nope"]);
    r.expect(REFUSED);
    assert!(r.stderr.contains("error: no step `nope` in runbook `drill`; waiting for approval: a"), "{}", r.stderr);
    let r = p.approve(&["b"]);
    r.expect(REFUSED);
    assert!(
        r.stderr.contains("step `b` is not waiting for approval (it is pending); waiting for approval: a"),
        "{}",
        r.stderr
    );
    let r = p.flow(&["retry", "a"]);
    r.expect(REFUSED);
    assert!(
        r.stderr.contains("step `a` has not failed (it is waiting_approval); no step has failed or been rejected"),
        "{}",
        r.stderr
    );
    let r = p.flow(&["reject", "a"]);
    r.expect(2);
    assert!(r.stderr.contains("--reason"), "{}", r.stderr);

    p.flow(&["reject", "a", "--reason", "wrong target"]).expect(OK);
    let r = p.flow(&["run"]);
    r.expect(FAILED);
    assert!(r.stdout.contains(&format!("a: rejected by {}: wrong target", crate::support::me())), "{}", r.stdout);
    assert!(!p.path("a.txt").exists());
    let r = p.flow(&["retry", "b"]);
    r.expect(REFUSED);
    assert!(r.stderr.contains("; failed or rejected: a\n"), "{}", r.stderr);
    p.flow(&["retry", "a"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    assert_eq!(p.state_of("a"), "waiting_approval");

    p.flow(&["skip", "a", "--reason", "done by hand"]).expect(OK);
    let r = p.flow(&["skip", "a", "--reason", "again"]);
    r.expect(REFUSED);
    assert!(r.stderr.contains("step `a` is already skipped"), "{}", r.stderr);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    assert_eq!(p.state_of("b"), "waiting_approval");
    assert!(!p.path("a.txt").exists());
    let log = p.flow(&["log"]).stdout;
    let me = crate::support::me();
    for expected in [
        format!("a: rejected by {me}: wrong target"),
        format!("a: retry requested by {me}"),
        format!("a: skipped by {me}: done by hand"),
    ] {
        assert!(log.contains(&expected), "{expected} in\n{log}");
    }
}

#[test]
fn a_busy_store_and_a_second_run_are_clear_errors() {
    let server = Server::start();
    let p = recovery_project(&format!(
        r#"
        [[steps]]
        id = "health"
        kind = "probe"
        params = {{ url = "{}", attempts = 100, interval_s = 1 }}
        [[steps]]
        id = "drill"
        kind = "command"
        gate = true
        needs = ["health"]
        covers = ["recovery-1", "recovery-2"]
        params = {{ run = "true" }}
        "#,
        server.url("/health")
    ));
    let mut child = p.spawn(&["run", "--wait"]);
    p.wait_until("health polling", |s| state(s, "health") == "waiting");
    let r = p.flow(&["run"]);
    r.expect(REFUSED);
    assert!(r.stderr.contains("another `flow run` is working on runbook `drill`"), "{}", r.stderr);
    child.kill().unwrap();
    child.wait().unwrap();

    // Another process holding the store: a clear error after the configured wait.
    let db = sled::open(p.path("state")).unwrap();
    let r = p.cmd(&["status"]).env("FLOW_LOCK_TIMEOUT_MS", "200").output().unwrap();
    assert_eq!(r.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&r.stderr).contains("is busy (another flow process holds it)"));
    drop(db);
}

/// The shipped launch runbook, with AWS played by the fakes: it stops at its first gates (the
/// baseline load test, the backup stack's change set); nothing is blocked, nothing verified yet.
#[test]
fn the_launch_runbook_stops_at_its_first_gates() {
    let aws = crate::fake_aws::FakeAws::start();
    let p = Project::new();
    p.with_launch_spec();
    let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/templates");
    p.write("workflows/templates/backup.yaml", std::fs::read(templates.join("backup.yaml")).unwrap());
    p.aws(&aws.url);
    p.flow(&["plan", "specs/launch.md"]).expect(OK);
    let r = p.flow(&["run"]);
    r.expect(WAITING_APPROVAL);
    let s = p.status();
    assert_eq!(step_field(&s, "baseline-load", "state"), "waiting_approval");
    assert_eq!(step_field(&s, "changeset-backup", "state"), "waiting_approval");
    assert!(step_field(&s, "changeset-backup", "will")
        .contains("ProtectedResourceArn = arn:aws:rds:eu-west-1:123456789012:db:orders-db"));
    assert_eq!(step_field(&s, "restore-drill", "state"), "pending");
    assert_eq!(step_field(&s, "capacity-model", "state"), "pending");
    assert!(s["requirements"].as_array().unwrap().iter().all(|r| r["verdict"] == "unverified"));
    assert_eq!(
        p.flow(&["log", "--json"]).json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "blocked")
            .count(),
        0
    );
}

/// kill -9 at arbitrary moments, many times: no approval is lost, no finished side effect is
/// repeated, and the runbook still finishes.
#[test]
fn kill_at_random_moments() {
    let steps: String = (1..=6)
        .map(|i| {
            format!(
                r#"
                [[steps]]
                id = "s{i}"
                kind = "command"
                gate = true
                needs = [{needs}]
                {covers}
                params = {{ run = "sleep 0.02; echo s{i} >> effects.txt; sleep 0.02; echo '::metric rto_s=5'; echo '::metric rpo_s=5'" }}
                "#,
                needs = if i == 1 { String::new() } else { format!("\"s{}\"", i - 1) },
                covers = if i == 6 { "covers = [\"recovery-1\", \"recovery-2\"]" } else { "" },
            )
        })
        .collect();
    let p = recovery_project(&steps);
    let mut seed: u64 = 0x5eed;
    let mut approvals = 0usize;
    let mut retries = std::collections::BTreeMap::<String, usize>::new();
    // Approve what waits and retry what a kill interrupted (a person's decision, counted).
    let tend = |p: &Project, approvals: &mut usize, retries: &mut std::collections::BTreeMap<String, usize>| {
        for st in p.status()["steps"].as_array().unwrap() {
            let id = st["id"].as_str().unwrap().to_string();
            match st["state"].as_str().unwrap() {
                "waiting_approval" => {
                    p.approve(&[&id]).expect(OK);
                    *approvals += 1;
                }
                "failed" => {
                    assert_eq!(st["interrupted"], true, "{st}");
                    p.flow(&["retry", &id]).expect(OK);
                    *retries.entry(id).or_default() += 1;
                }
                _ => {}
            }
        }
    };
    for _ in 0..60 {
        let mut child = p.spawn(&["run"]);
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis((seed >> 33) % 70));
        let _ = child.kill();
        let code = child.wait().unwrap().code();
        tend(&p, &mut approvals, &mut retries);
        if code == Some(OK) {
            break;
        }
    }
    // Finish without interruption.
    for _ in 0..20 {
        let r = p.flow(&["run"]);
        if r.code == OK {
            break;
        }
        assert!([WAITING_APPROVAL, FAILED].contains(&r.code), "{}", r.stderr);
        tend(&p, &mut approvals, &mut retries);
    }
    assert_eq!(p.flow(&["run"]).code, OK, "the runbook finished");
    let log = p.flow(&["log", "--json"]).json();
    let recorded = log["events"].as_array().unwrap().iter().filter(|e| e["event"] == "approved").count();
    assert_eq!(recorded, approvals, "every approval given is in the journal");
    let effects = p.read("effects.txt");
    eprintln!("kill test: {approvals} approvals, retries after interruption: {retries:?}");
    for i in 1..=6 {
        let id = format!("s{i}");
        let n = effects.lines().filter(|l| *l == id).count();
        let allowed = 1 + retries.get(&id).copied().unwrap_or(0);
        assert!(n >= 1 && n <= allowed, "{id} ran {n} times with {allowed} allowed\n{effects}");
    }
}

#[test]
fn an_approval_binds_to_resolved_params() {
    let p = recovery_project(
        r#"
        [[steps]]
        id = "m"
        kind = "command"
        gate = true
        params = { run = "echo '::metric n=1'" }
        [[steps]]
        id = "x"
        kind = "command"
        gate = true
        needs = ["m"]
        covers = ["recovery-1", "recovery-2"]
        params = { run = "echo 'n was ${m.n}' >> x.txt; echo '::metric rto_s=1'; echo '::metric rpo_s=1'" }
        "#,
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["m"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    assert!(step_field(&p.status(), "x", "will").contains("echo 'n was 1'"));
    p.approve(&["x"]).expect(OK);
    // m is edited before x runs: m must run again, and x's input changes with it.
    let wf = p.read("workflows/drill.toml").replace("metric n=1", "metric n=2");
    p.write("workflows/drill.toml", wf);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    assert_eq!(p.state_of("m"), "waiting_approval");
    // x is downstream of the edited step: its approval is void and it is shown again.
    assert_eq!(p.state_of("x"), "pending", "reopened, waiting for m");
    p.approve(&["m"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let s = p.status();
    assert_eq!(step_field(&s, "x", "state"), "waiting_approval");
    assert_eq!(
        step_field(&s, "x", "approval_void"),
        "a step it depends on changed in plan version 3: what it shows is shown again"
    );
    assert!(step_field(&s, "x", "will").contains("echo 'n was 2'"));
    assert!(!p.path("x.txt").exists(), "x never ran on the approval of other params");
    p.approve(&["x"]).expect(OK);
    p.flow(&["run"]).expect(OK);
    assert_eq!(p.read("x.txt"), "n was 2\n");
}

#[test]
fn capacity_model_feeds_the_address_check() {
    let p = recovery_project(
        r#"
        [[steps]]
        id = "capacity-model"
        kind = "capacity_model"
        params = { target_rps = 2500, per_instance_rps = 400, azs = 3, headroom_pct = 25, vcpus_per_instance = 2 }
        [[steps]]
        id = "ip-wide"
        kind = "ip_capacity"
        needs = ["capacity-model"]
        params = { vpc_cidr = "10.0.0.0/16", subnet_prefix = 24, azs = 3, instances = "${capacity-model.max_instances}" }
        [[steps]]
        id = "ip-narrow"
        kind = "ip_capacity"
        needs = ["capacity-model"]
        params = { vpc_cidr = "10.0.0.0/24", subnet_prefix = 28, azs = 3, instances = "${capacity-model.max_instances}" }
        [[steps]]
        id = "drill"
        kind = "command"
        gate = true
        covers = ["recovery-1", "recovery-2"]
        params = { run = "true" }
        "#,
    );
    p.flow(&["run"]).expect(FAILED);
    let s = p.status();
    let outputs: serde_json::Value = serde_json::from_str(&step_field(&s, "capacity-model", "outputs")).unwrap();
    // 2,500 req/s + 25 % over the 2 AZs left after a loss, 400 req/s each: 4 per AZ, 12, at most 24.
    assert_eq!(
        (outputs["instances_per_az"].as_u64(), outputs["instances_total"].as_u64(), outputs["vcpus"].as_u64()),
        (Some(4), Some(12), Some(48))
    );
    assert_eq!(step_field(&s, "ip-wide", "state"), "succeeded");
    assert_eq!(step_field(&s, "ip-narrow", "state"), "failed");
    assert!(
        step_field(&s, "ip-narrow", "error").contains("a /28 subnet has 16 addresses but 26 are needed per AZ"),
        "{s}"
    );
    assert_eq!(step_field(&s, "drill", "state"), "waiting_approval");
}

#[test]
fn a_probe_that_cannot_connect_fails_with_the_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let p = recovery_project(&format!(
        r#"
        [[steps]]
        id = "probe"
        kind = "probe"
        params = {{ url = "http://127.0.0.1:{port}/", attempts = 1 }}
        [[steps]]
        id = "drill"
        kind = "command"
        gate = true
        needs = ["probe"]
        covers = ["recovery-1", "recovery-2"]
        params = {{ run = "true" }}
        "#
    ));
    let r = p.flow(&["run"]);
    r.expect(FAILED);
    assert!(
        r.stdout.contains(&format!(
            "probe: GET http://127.0.0.1:{port}/: cannot connect to http://127.0.0.1:{port}/ (attempt 1/1)"
        )),
        "{}",
        r.stdout
    );
    assert_eq!(p.state_of("drill"), "pending");
}

/// A runbook of many cheap steps keeps `flow run` busy; a person's `flow approve` and
/// `flow status` meanwhile get the store at once (the engine hands it over when another
/// process queues for it), and the same run carries the approval out.
#[test]
fn a_busy_run_hands_the_store_to_a_waiting_command() {
    let chain: String = (0..4000)
        .map(|i| {
            let needs = if i == 0 { String::new() } else { format!("\"c{}\"", i - 1) };
            format!(
                "[[steps]]\nid = \"c{i}\"\nkind = \"capacity_model\"\nneeds = [{needs}]\n\
                 params = {{ target_rps = 2500, per_instance_rps = 400, azs = 3, headroom_pct = 25, vcpus_per_instance = 2 }}\n"
            )
        })
        .collect();
    let steps = format!(
        "{chain}\n[[steps]]\nid = \"gate\"\nkind = \"approval\"\ngate = true\nparams = {{ summary = \"go on?\" }}\n\
         [[steps]]\nid = \"drill\"\nkind = \"command\"\ngate = true\nneeds = [\"gate\", \"c3999\"]\n\
         covers = [\"recovery-1\", \"recovery-2\"]\nparams = {{ run = \"true\" }}\n"
    );
    let p = recovery_project(&steps);
    // Its thousands of event lines go nowhere: an unread pipe would stall it.
    let mut child = p.cmd(&["run"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    p.wait_until("the gate waiting while the chain runs", |s| state(s, "gate") == "waiting_approval");
    let digest = p.digest_of(&["gate"]);
    let started = Instant::now();
    let r = p
        .cmd(&["approve", "gate", "--as", "ops", "--digest", &digest])
        .env("FLOW_LOCK_TIMEOUT_MS", "5000")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(OK), "{}", String::from_utf8_lossy(&r.stderr));
    let waited = started.elapsed();
    assert!(child.try_wait().unwrap().is_none(), "the run was still busy when the approval landed");
    assert_eq!(wait_exit(&mut child), WAITING_APPROVAL, "it went on to the drill's gate");
    let s = p.status();
    assert_eq!(step_field(&s, "gate", "state"), "succeeded", "the same run carried the approval out");
    assert_eq!(step_field(&s, "c3999", "state"), "succeeded");
    assert_eq!(step_field(&s, "drill", "state"), "waiting_approval");
    eprintln!("approve waited {waited:?} for the busy run");
}

#[test]
fn a_load_test_whose_warm_up_fills_its_duration_is_refused() {
    let p = recovery_project(
        r#"
        [[steps]]
        id = "load"
        kind = "loadtest"
        gate = true
        params = { url = "http://127.0.0.1:9/", duration_s = 5, warmup_s = 5 }
        [[steps]]
        id = "drill"
        kind = "command"
        gate = true
        covers = ["recovery-1", "recovery-2"]
        params = { run = "true" }
        "#,
    );
    let r = p.flow(&["run"]);
    r.expect(flow::exit::BAD_PLAN);
    assert!(
        r.stderr.contains(
            "step `load`: params invalid for kind `loadtest`: `warmup_s` (5) must be shorter than `duration_s` (5)"
        ),
        "{}",
        r.stderr
    );
}
