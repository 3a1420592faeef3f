//! `flow run` and the operator verbs, end to end with real processes: gates, kill -9 at the
//! worst moments, approvals while another process runs `--wait`, approvals voided by edits.

use std::time::{Duration, Instant};

use crate::support::{state, step_field, verdict, Project, Server};

const OK: i32 = 0;
const FAILED: i32 = 1;
const REFUSED: i32 = 5;
const WAITING_APPROVAL: i32 = 10;
const UNSUPPORTED: i32 = 12;

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

fn wait_exit(child: &mut std::process::Child) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(start.elapsed() < Duration::from_secs(60), "flow run --wait did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
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
    assert!(r.stdout.contains("append: review with `flow status`, then `flow approve append`"), "{}", r.stdout);
    let s = p.status();
    assert_eq!(step_field(&s, "append", "state"), "waiting_approval");
    assert!(step_field(&s, "append", "will").contains("$ echo once >> side-effect.txt"));
    assert!(!p.path("side-effect.txt").exists(), "nothing runs before its gate");

    p.flow(&["approve", "append", "--as", "ana", "--comment", "looks right"]).expect(OK);

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

    p.flow(&["approve", "restore"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let s = p.status();
    assert_eq!((verdict(&s, "recovery-1"), verdict(&s, "recovery-2")), ("pass".into(), "pass".into()));
    let will = step_field(&s, "go", "will");
    assert!(will.contains("decide: launch?") && will.contains("pass") && will.contains("rto_s = 3600 (restore)"), "{will}");

    p.flow(&["approve", "go", "--as", "lead"]).expect(OK);
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
        .map(|e| (e["step"].as_str().unwrap().into(), e["by"].as_str().unwrap().into()))
        .collect();
    assert_eq!(approvals, [("append".into(), "ana".into()), ("restore".into(), "tester".into()), ("go".into(), "lead".into())]);
    let human = p.flow(&["log"]).stdout;
    assert!(human.contains("append: approved by ana") && human.contains(": looks right"), "{human}");
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
    p.flow(&["approve", "slow"]).expect(OK);
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
    let r = p.flow(&["approve", "gate", "--as", "ops"]);
    r.expect(OK);
    assert!(child.try_wait().unwrap().is_none(), "run --wait is still polling");
    p.wait_until("gate carried out by the waiting run", |s| state(s, "gate") == "succeeded");
    server.set_healthy(true);
    // Health done, drill reaches its gate: --wait stops, blocked on a person.
    assert_eq!(wait_exit(&mut child), WAITING_APPROVAL);
    let s = p.status();
    assert_eq!(step_field(&s, "health", "state"), "succeeded");
    assert!(step_field(&s, "gate", "approval").contains("\"by\":\"ops\""));
    p.flow(&["approve", "drill"]).expect(OK);
    // Every step succeeds; a requirement can still fail on its evidence.
    p.flow(&["run"]).expect(OK);
    let s = p.status();
    // 9000 s misses the 2 h RTO: the verdict says so, from the evidence.
    assert_eq!((verdict(&s, "recovery-1"), verdict(&s, "recovery-2")), ("fail".into(), "pass".into()));
}
