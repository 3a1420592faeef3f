//! Evidence that cannot pass falsely: a dead endpoint is not throughput, a restore probe that
//! already answers measures nothing, a re-plan does not drop evidence without asking, the
//! report's first line is the decision, impossible load settings are refused, a slow answer is
//! not an outage, missing AWS credentials are named.

use serde_json::Value;

use crate::support::{step_field, Project, Server};
use flow::exit::{FAILED, OK, REFUSED, USAGE, WAITING_APPROVAL};

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_dead_endpoint_is_not_throughput() {
    let p = Project::new();
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let r = p.flow(&["loadtest", &url, "--rate", "200", "--duration", "1s", "--json"]);
    assert_eq!(r.code, FAILED, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["throughput_rps"], 0.0, "refused connections are errors, not answers: {j}");
    assert!(j["achieved_rate"].as_f64().unwrap() > 100.0, "it did send: {j}");
    assert!(j["unanswered"].as_str().unwrap().contains("no request got a successful answer"), "{j}");
    let text = p.flow(&["loadtest", &url, "--rate", "200", "--duration", "1s"]);
    assert_eq!(text.code, FAILED);
    assert!(
        text.stdout.starts_with("throughput 0.0 req/s (successful answers)  success 0.000 %")
            && text.stdout.contains("NO ANSWER  no request got a successful answer"),
        "{}",
        text.stdout
    );

    // As the builtin plan's baseline: the step fails, and nothing is sized from it.
    p.write("specs/web.md", format!("---\nendpoint: {url}\n---\n# Web\n\n- handle 2,500 requests per second\n"));
    p.flow(&["plan", "specs/web.md"]).expect(OK);
    let wf = p.read("workflows/web.toml").replace("duration_s = 60\n", "duration_s = 1\n");
    p.write("workflows/web.toml", wf);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["baseline-load"]).expect(OK);
    let r = p.flow(&["run"]);
    assert_eq!(r.code, FAILED, "{}", r.stdout);
    assert!(r.stdout.contains("next: `flow retry baseline-load`"), "{}", r.stdout);
    let s = p.status();
    let err = step_field(&s, "baseline-load", "error");
    assert!(err.contains("the load test is not evidence: no request got a successful answer"), "{err}");
    assert_eq!(step_field(&s, "capacity-model", "state"), "pending", "nothing sized from a dead endpoint");
    assert_eq!(step_field(&s, "capacity-model", "outputs"), "{}");
}

#[test]
fn impossible_load_settings_are_refused() {
    let p = Project::new();
    for rate in ["inf", "NaN", "1e308", "1e12", "-5"] {
        let r = p.flow(&["loadtest", "http://127.0.0.1:9/", &format!("--rate={rate}"), "--duration", "1s"]);
        assert_eq!(r.code, USAGE, "--rate {rate}: {}", r.stderr);
        assert!(r.stderr.contains("the rate"), "--rate {rate}: {}", r.stderr);
    }
    // In a workflow, TOML's nan and inf are refused by name, not read as "no rate".
    p.write("specs/w.md", "# W\n\n- handle 100 requests per second\n");
    p.flow(&["plan", "specs/w.md"]).expect(OK);
    let rate = regex::Regex::new(r"(?m)^rate = .*$").unwrap();
    for bad in ["nan", "inf"] {
        let wf = rate.replace(&p.read("workflows/w.toml"), format!("rate = {bad}")).into_owned();
        p.write("workflows/w.toml", wf);
        let r = p.flow(&["run"]);
        assert_eq!(r.code, flow::exit::BAD_PLAN, "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!("(peak-load).params.rate = {bad} is not a number flow can use")),
            "{}",
            r.stderr
        );
    }
    let wf = rate.replace(&p.read("workflows/w.toml"), "rate = 1e12").into_owned();
    p.write("workflows/w.toml", wf);
    let r = p.flow(&["run"]);
    assert_eq!(r.code, flow::exit::BAD_PLAN, "{}", r.stderr);
    assert!(r.stderr.contains("more than the load generator can schedule"), "{}", r.stderr);
}

#[test]
fn a_restore_probe_that_already_answers_measures_nothing() {
    let server = Server::start();
    let p = Project::new();
    let url = server.url("/ok");
    let r = p.flow(&["drill", "restore", "--restore", "sleep 0.2", "--probe", &url, "--timeout", "5s"]);
    assert_eq!(r.code, FAILED, "{}", r.stdout);
    assert!(
        r.stderr.contains("already answers (200) before the restore has started")
            && r.stderr.contains("allow_probe_up_before"),
        "{}",
        r.stderr
    );
    // Said to be intended: it runs, and records when the first answer came.
    let ok = p.flow(&[
        "drill",
        "restore",
        "--restore",
        "sleep 0.2",
        "--probe",
        &url,
        "--timeout",
        "5s",
        "--allow-probe-up-before",
        "--json",
    ]);
    assert_eq!(ok.code, OK, "{}", ok.stderr);
    let e = &ok.json()["evidence"];
    assert_eq!(e["probe_before_restore"]["up"], true, "{e}");
    assert!(e["first_answer_at"].as_str().is_some() && e["first_answer_ms"].as_u64().is_some(), "{e}");
}

fn approve_all(p: &Project, except: &[&str]) {
    let s = p.status();
    for st in s["steps"].as_array().unwrap() {
        let id = st["id"].as_str().unwrap();
        if st["state"] == "waiting_approval" && !except.contains(&id) {
            p.approve(&[id, "--as", "ana"]).expect(OK);
        }
    }
}

/// A restore-only runbook, run to its go/no-go gate with passing evidence.
fn restore_runbook(p: &Project, server: &Server) {
    let up = p.path("up.flag").display().to_string();
    p.write("specs/dr.md", "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n");
    p.flow(&["plan", "specs/dr.md"]).expect(OK);
    p.edit_steps(
        "dr",
        &format!(
            r#"
            [[steps]]
            id = "restore"
            kind = "restore_drill"
            gate = true
            covers = ["recovery-1", "recovery-2"]
            params = {{ restore = "sleep 0.2; touch {up}", probe = "{probe}", worst_rpo_s = 300 }}
            [[steps]]
            id = "go-no-go"
            kind = "approval"
            gate = true
            needs = ["restore"]
            params = {{ summary = "launch?" }}
            "#,
            probe = server.url(&format!("/if?path={up}")),
        ),
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    approve_all(p, &["go-no-go"]);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    assert_eq!(p.state_of("go-no-go"), "waiting_approval");
}

#[test]
fn the_first_line_of_the_report_is_the_decision() {
    let server = Server::start();
    let p = Project::new();
    restore_runbook(&p, &server);
    let check = |code: i32, starts: &str| {
        let r = p.flow(&["report", "--check"]);
        assert_eq!(r.code, code, "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.starts_with(starts), "{}", r.stdout);
        r.stdout
    };
    // The evidence supports GO, but no person has decided.
    let before = check(
        WAITING_APPROVAL,
        "UNDECIDED: the evidence supports GO: every measurable requirement passes on measured evidence; no person has decided yet",
    );
    assert!(before.contains("`flow approve go-no-go`"), "{before}");
    p.flow(&["report", "-o", "before.md", "--format", "md"]).expect(OK);
    assert!(p
        .read("before.md")
        .starts_with("# Launch decision: dr\n\n**UNDECIDED**\n\n- Evidence: supports GO\n- Decision: not decided yet"));

    // A person says no: NO-GO whatever the evidence.
    p.flow(&["reject", "go-no-go", "--as", "bob", "--reason", "wrong database: do not launch"]).expect(OK);
    let no = check(FAILED, "NO-GO: the evidence supports GO");
    assert!(no.contains("(as bob) at ") && no.contains("\"wrong database: do not launch\""), "{no}");
    let j = p.flow(&["report", "--json"]).json();
    assert_eq!((j["decision"]["go"].as_bool(), j["decision"]["evidence_go"].as_bool()), (Some(false), Some(true)));
    assert_eq!(j["decision"]["decided"]["by"], format!("{} (as bob)", crate::support::me()));

    // Retried and approved: GO, with who and the comment on the first line.
    p.flow(&["retry", "go-no-go"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["go-no-go", "--as", "alice", "--comment", "ship it"]).expect(OK);
    p.flow(&["run"]).expect(OK);
    let go = check(OK, "GO: the evidence supports GO");
    assert!(go.contains("(as alice) at ") && go.contains("\"ship it\""), "{go}");
    p.flow(&["report", "-o", "after.html"]).expect(OK);
    let html = p.read("after.html");
    assert!(
        html.contains("Decision: GO, approved by ") && html.contains("(as alice)"),
        "the decision on the first screen"
    );
}

#[test]
fn an_unverified_requirement_says_why_and_a_skipped_failure_is_named() {
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
        params = { run = "echo 'backup vault empty' >&2; exit 3" }
        "#,
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["restore"]).expect(OK);
    p.flow(&["run"]).expect(FAILED);
    let s = p.status();
    let why = s["requirements"][0]["why"].as_str().unwrap();
    assert_eq!(why, "step `restore` failed: command exited with 3 (expected 0): backup vault empty");
    p.flow(&["skip", "restore", "--as", "ana", "--reason", "no backups before launch"]).expect(OK);
    let r = p.flow(&["report", "--check"]);
    assert_eq!(r.code, FAILED);
    let j = p.flow(&["report", "--json"]).json();
    assert_eq!(
        j["requirements"][0]["why"],
        format!("step `restore` was skipped by {}: no backups before launch", crate::support::me()),
        "{}",
        j["requirements"][0]
    );
    assert_eq!(j["decision"]["skipped_failures"][0]["step"], "restore");
    p.flow(&["report", "-o", "r.md", "--format", "md"]).expect(OK);
    assert!(
        p.read("r.md").contains("- **Failed, then skipped**: `restore` (command exited with 3"),
        "{}",
        p.read("r.md")
    );
}

#[test]
fn replanning_the_same_spec_changes_nothing() {
    let p = Project::new();
    p.write("specs/dr.md", "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n");
    p.flow(&["plan", "specs/dr.md"]).expect(OK);
    let first = p.read("workflows/dr.toml");
    let again = p.flow(&["plan", "specs/dr.md"]);
    again.expect(OK);
    assert!(again.stdout.contains("plan unchanged (version 1); workflows/dr.toml left as it is"), "{}", again.stdout);
    assert_eq!(p.read("workflows/dr.toml"), first);

    // A person's edit, recorded by `flow run`: the planner's unchanged answer leaves it be.
    let edited = first.replace(
        "iam_role_arn = \"${changeset-backup.RestoreRoleArn}\"\n",
        "iam_role_arn = \"${changeset-backup.RestoreRoleArn}\"\ntimeout_s = 600\n",
    );
    assert_ne!(edited, first, "the edit changes something");
    p.write("workflows/dr.toml", &edited);
    let _ = p.flow(&["run"]);
    let v = p.status()["version"].clone();
    assert_eq!(v, 2, "the edit is version 2");
    let r = p.flow(&["plan", "specs/dr.md"]);
    r.expect(OK);
    assert!(r.stdout.contains("the planner's plan is unchanged; version 2, the edit of"), "{}", r.stdout);
    assert_eq!(p.read("workflows/dr.toml"), edited, "the edit is left alone");
    assert_eq!(p.status()["version"], 2);
    let log = p.flow(&["log"]).stdout;
    assert_eq!(log.matches("plan version").count(), 2, "{log}");
}

#[test]
fn a_replan_that_would_lose_evidence_needs_force() {
    let server = Server::start();
    let p = Project::new();
    restore_runbook(&p, &server);
    p.approve(&["go-no-go", "--as", "lead"]).expect(OK);
    p.flow(&["run"]).expect(OK);
    let evidence = p.flow(&["report", "--check"]);
    assert_eq!(evidence.code, OK, "{}", evidence.stdout);

    // The spec changes (a looser RTO): planning it again would replace the edited steps, and
    // with them their evidence and the decision: refused, listing the loss.
    p.write("specs/dr.md", "# Recovery\n\n- RTO 3 hours\n- RPO 10 minutes\n");
    let r = p.flow(&["plan", "specs/dr.md"]);
    assert_eq!(r.code, REFUSED, "{}", r.stdout);
    for lost in [
        "would discard what runbook `dr` holds; nothing was recorded or written",
        &format!("go-no-go (changed): succeeded; approved by {} at ", crate::support::me()),
        "restore (removed): succeeded: RPO 5 min, RTO",
        "recovery-1 rto (now pass)",
        "recovery-2 rpo (now pass)",
        "the edit of the workflow file recorded as version 2",
        "restore: added by the edit",
        "`flow plan specs/dr.md --force` records the new version anyway",
    ] {
        assert!(r.stderr.contains(lost), "`{lost}` in:\n{}", r.stderr);
    }
    assert_eq!(p.status()["version"], 2);
    assert_eq!(p.flow(&["report", "--check"]).code, OK, "nothing was lost");
    assert!(p.read("workflows/dr.toml").contains("id = \"restore\""), "the file was not touched");
    let log = p.flow(&["log"]).stdout;
    assert_eq!(log.matches("plan version").count(), 2);

    // Through MCP: refused with the same list (an assistant cannot force it).
    let mcp = crate::mcp::call_tool(&p, "plan", serde_json::json!({"spec": "specs/dr.md"}));
    assert!(mcp.0, "a tool error");
    assert!(
        mcp.1.contains("would discard what runbook `dr` holds") && mcp.1.contains("go-no-go (changed)"),
        "{}",
        mcp.1
    );

    // With --force: recorded, and what was lost is said.
    let f = p.flow(&["plan", "specs/dr.md", "--force"]);
    f.expect(OK);
    assert!(f.stdout.contains("discarded (--force):") && f.stdout.contains("go-no-go (changed)"), "{}", f.stdout);
    assert_eq!(p.status()["version"], 3);
    assert_eq!(p.flow(&["report", "--check"]).code, FAILED);
}

/// A go/no-go gate downstream of a changed step is shown again: its old preview (with the old
/// verdicts) cannot be approved.
#[test]
fn a_gate_after_a_changed_step_is_previewed_again() {
    let server = Server::start();
    let p = Project::new();
    restore_runbook(&p, &server);
    let old = p.digest_of(&["go-no-go"]);
    // The restore step is edited (a person lowers the probe interval): it starts over.
    let wf = p.read("workflows/dr.toml").replace("worst_rpo_s = 300", "worst_rpo_s = 300\nprobe_interval_ms = 50");
    p.write("workflows/dr.toml", wf);
    let _ = p.flow(&["run"]);
    let s = p.status();
    assert_ne!(step_field(&s, "go-no-go", "state"), "waiting_approval", "{s}");
    let r = p.flow(&["approve", "go-no-go", "--digest", &old]);
    assert_eq!(r.code, REFUSED, "{}", r.stderr);
    assert!(r.stderr.contains("step `go-no-go` is not waiting for approval"), "{}", r.stderr);
    assert!(
        step_field(&s, "go-no-go", "approval_void").contains("a step it depends on changed in plan version 3"),
        "{s}"
    );
}

#[test]
fn missing_aws_credentials_are_named() {
    let p = Project::new();
    p.aws("http://127.0.0.1:9");
    p.write("specs/q.md", "# Q\n\n- handle 2,500 requests per second\n");
    p.flow(&["plan", "specs/q.md"]).expect(OK);
    p.edit_steps(
        "q",
        r#"
        [[steps]]
        id = "quota"
        kind = "quota"
        gate = true
        params = { service_code = "ec2", quota_code = "L-1216C47A", required = 10, region = "eu-west-1" }
        [[steps]]
        id = "load"
        kind = "loadtest"
        gate = true
        covers = ["q-1"]
        needs = ["quota"]
        params = { url = "http://127.0.0.1:9/", rate = 10, duration_s = 1 }
        "#,
    );
    let r: Value = {
        let out = p
            .cmd(&["run", "--json"])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(FAILED), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let failed = r["events"].as_array().unwrap().iter().find(|e| e["event"] == "failed").unwrap();
    let err = failed["error"].as_str().unwrap();
    assert!(
        err.contains("no AWS credentials") && err.contains("AWS_ACCESS_KEY_ID") && err.contains("AWS_PROFILE"),
        "{err}"
    );
    assert!(!err.contains("other:") && !err.contains("no answer from"), "{err}");
}

/// A load test whose success rate is short of the success target it covers does not pass its
/// throughput and latency figures on as evidence; one covering no success target (a baseline)
/// fails below the documented floor.
#[test]
fn a_load_test_of_a_failing_service_is_not_evidence() {
    let server = Server::start();
    let p = Project::new();
    p.write("specs/web.md", "# Web\n\n- handle 20 requests per second\n- at least 99.5 % of requests successful\n");
    p.flow(&["plan", "specs/web.md"]).expect(OK);
    p.edit_steps(
        "web",
        &format!(
            r#"
            [[steps]]
            id = "baseline"
            kind = "loadtest"
            gate = true
            params = {{ url = "{flaky}", rate = 20, duration_s = 1 }}
            [[steps]]
            id = "peak"
            kind = "loadtest"
            gate = true
            covers = ["web-1", "web-2"]
            params = {{ url = "{flaky}", rate = 20, duration_s = 1 }}
            "#,
            flaky = server.url("/flaky"),
        ),
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let will = step_field(&p.status(), "baseline", "will");
    assert!(will.contains("fails below a success rate of 99 %"), "{will}");
    approve_all(&p, &[]);
    // One at a time: the server fails every tenth request it gets, from either.
    p.flow(&["run", "--jobs", "1"]).expect(FAILED);
    let s = p.status();
    let base = step_field(&s, "baseline", "error");
    let pct = regex::Regex::new(r"the success rate was \d+(\.\d+)? %").unwrap();
    assert!(pct.is_match(&base) && base.contains(", below the 99 % a load test needs"), "{base}");
    let peak = step_field(&s, "peak", "error");
    assert!(pct.is_match(&peak) && peak.contains(", short of the >= 99.5 % target of web-2"), "{peak}");
    let why = s["requirements"][0]["why"].as_str().unwrap();
    assert!(why.starts_with("step `peak` failed: the success rate was "), "{why}");
}
