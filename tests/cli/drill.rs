//! The resilience drills, standalone (`flow drill`) and as steps, against the test server on
//! loopback made to fail on cue: by a command (a file the server looks at), by the fake FIS or
//! zonal shift (their fault hook), or restored by the fake AWS Backup (its restore hook). FIS
//! also runs against moto, through the real SDK.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake_aws::FakeAws;
use crate::fake_drills::{FisTemplate, RecoveryPoint};
use crate::support::{later, moto_url, state, step_field, verdict, Noise, Project, Server};
use flow::exit::{FAILED, OK, WAITING, WAITING_APPROVAL};

/// A fault hook that makes `path` exist while the fault is on (the server's `/unless` is down).
fn file_hook(path: std::path::PathBuf) -> crate::fake_drills::Hook {
    Arc::new(move |on| {
        if on {
            std::fs::write(&path, "").unwrap()
        } else {
            let _ = std::fs::remove_file(&path);
        }
    })
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"))
}

fn drill(p: &Project, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["drill"];
    a.extend_from_slice(args);
    a.push("--json");
    let r = p.flow(&a);
    assert!(!r.stdout.is_empty(), "no report (exit {}): {}", r.code, r.stderr);
    (r.code, r.json())
}

/// The command takes the service down for exactly 2 s: the drill measures 2 s, within one
/// probe interval.
#[test]
fn a_known_outage_is_measured_within_one_probe_interval() {
    let noise = Noise::start();
    let server = Server::start();
    let p = Project::new();
    let flag = p.path("down.flag").display().to_string();
    let url = server.url(&format!("/unless?path={flag}"));
    let inject = format!("touch {flag}; sleep 2; rm {flag}");
    let (code, r) = drill(
        &p,
        &["failover", &url, "--inject", &inject, "--duration", "3s", "--max-downtime", "10s", "--rate", "50"],
    );
    assert_eq!(code, OK, "{r}");
    let e = &r["evidence"];
    // Background load saw the outage too: about 2 s of its 5 s answered 503.
    let load = f(&e["load"], "success_rate_pct");
    assert!((40.0..80.0).contains(&load), "background load success {load} %: {}", e["load"]);
    let downtime = f(e, "downtime_s");
    // One probe interval, plus how late this machine woke a sleeping thread meanwhile (the
    // fault's own `sleep 2` ends that much late on a busy machine).
    let slack = 2.0 * noise.stop().1 / 1000.0;
    assert!((downtime - 2.0).abs() <= 0.1 + 0.02 + slack, "measured {downtime} s for a 2 s outage\n{}", e["timeline"]);
    assert_eq!(e["recovered"], true);
    assert_eq!(e["az_failure_tolerated"], true);
    assert_eq!(e["outages"].as_array().unwrap().len(), 1, "{e}");
    let changes: Vec<bool> = e["timeline"].as_array().unwrap().iter().map(|c| c["up"].as_bool().unwrap()).collect();
    assert_eq!(changes, [true, false, true], "compressed to its changes of state");
    assert!((f(e, "time_to_recover_s") - 2.0).abs() <= 0.15 + slack, "{e}");
    assert_eq!(r["passed"], true);
}

#[test]
fn an_outage_over_the_bound_fails_the_drill() {
    let server = Server::start();
    let p = Project::new();
    let flag = p.path("down.flag").display().to_string();
    let url = server.url(&format!("/unless?path={flag}"));
    let inject = format!("touch {flag}; sleep 1.5; rm {flag}");
    let (code, r) = drill(&p, &["failover", &url, "--inject", &inject, "--duration", "2s", "--max-downtime", "1s"]);
    assert_eq!(code, FAILED, "{r}");
    assert_eq!(r["passed"], false);
    let downtime = r["bounds"].as_array().unwrap().iter().find(|b| b["metric"] == "failover_downtime_s").unwrap();
    assert_eq!(downtime["pass"], false, "{r}");
    assert_eq!(r["evidence"]["az_failure_tolerated"], false, "recovered, but not within the bound");
    assert_eq!(r["evidence"]["recovered"], true);
    // Text for a person says the same.
    let text = p.flow(&["drill", "failover", &url, "--inject", &inject, "--duration", "2s", "--max-downtime", "1s"]);
    assert_eq!(text.code, FAILED);
    assert!(
        text.stdout.contains("bound      failover downtime <= 1 s:") && text.stdout.contains("(FAIL)"),
        "{}",
        text.stdout
    );
    // The end summary, figures masked (a busy machine may split the outage: one line each,
    // alike once masked).
    let mut lines: Vec<String> = crate::support::figures_masked(&text.stdout).lines().map(str::to_string).collect();
    lines.dedup();
    insta::assert_snapshot!("drill-failover-end-summary", lines.join("\n"));
}

/// A hung service (no answer at all) counts as down once a probe's timeout (1 s by default)
/// passes, and stays down until the first answer arrives when it resumes: 3 s of hanging
/// measure 3 s, though the probes of its last second are answered (late) when it resumes.
/// A shorter hang than the probe timeout is a slow answer, not an outage, unless the person
/// says so with a shorter `--probe-timeout`.
#[test]
fn a_hung_service_counts_as_down() {
    let noise = Noise::start();
    let server = Server::start();
    let p = Project::new();
    let flag = p.path("stall.flag").display().to_string();
    let url = server.url(&format!("/stall-if?path={flag}"));
    let inject = format!("touch {flag}; sleep 3; rm {flag}");
    let (code, r) = drill(&p, &["failover", &url, "--inject", &inject, "--duration", "4s"]);
    assert_eq!(code, OK, "{r}");
    let e = &r["evidence"];
    let slack = 2.0 * noise.stop().1 / 1000.0;
    assert!((f(e, "downtime_s") - 3.0).abs() <= 0.15 + slack, "{e}");
    assert!(e["timeline"].as_array().unwrap().iter().any(|c| c["detail"] == "timeout"), "{e}");
    // Half a second of hanging is a slow answer with the default timeout ...
    let inject = format!("touch {flag}; sleep 0.5; rm {flag}");
    let (code, r) = drill(&p, &["failover", &url, "--inject", &inject, "--duration", "2s"]);
    assert_eq!(code, OK, "{r}");
    assert_eq!(f(&r["evidence"], "downtime_s"), 0.0, "{r}");
    // ... and an outage when the person says answers must come within 80 ms.
    let (code, r) = drill(&p, &["failover", &url, "--inject", &inject, "--duration", "2s", "--probe-timeout", "80ms"]);
    assert_eq!(code, OK, "{r}");
    assert!((f(&r["evidence"], "downtime_s") - 0.5).abs() <= 0.12 + slack, "{r}");
}

#[test]
fn a_service_down_before_the_fault_is_left_alone() {
    let server = Server::start();
    let p = Project::new();
    let url = server.url("/health");
    let marker = p.path("injected").display().to_string();
    let r = p.flow(&["drill", "failover", &url, "--inject", &format!("touch {marker}"), "--duration", "1s"]);
    assert_eq!(r.code, FAILED);
    assert!(
        r.stderr.contains("was not answering before the fault") && r.stderr.contains("nothing was injected"),
        "{}",
        r.stderr
    );
    assert!(!p.path("injected").exists(), "the fault never ran");
    let bad = p.flow(&["drill", "failover", &url, "--inject", "true", "--interval", "100ms", "--probe-timeout", "0s"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("`probe_timeout_ms` must be at least 1"), "{}", bad.stderr);
}

/// The restore command takes 1.5 s before the copy answers: RTO within 0.3 s of that; RPO
/// the worse of the restore point's age and the configured worst case; cleanup runs after.
#[test]
fn a_restore_of_known_duration_gives_its_rto() {
    let noise = Noise::start();
    let server = Server::start();
    let p = Project::new();
    let flag = p.path("restored.flag").display().to_string();
    let point = humantime::format_rfc3339_seconds(std::time::SystemTime::now() - Duration::from_secs(120)).to_string();
    let restore = format!("sleep 1.5; echo ::restore-point {point}; touch {flag}");
    let probe = server.url(&format!("/if?path={flag}"));
    let cleanup = format!("rm {flag}");
    let args = [
        "restore",
        "--restore",
        &restore,
        "--probe",
        &probe,
        "--worst-rpo",
        "5m",
        "--cleanup",
        &cleanup,
        "--max-rto",
        "2h",
        "--max-rpo",
        "10m",
    ];
    let (code, r) = drill(&p, &args);
    assert_eq!(code, OK, "{r}");
    let e = &r["evidence"];
    assert!((f(e, "rto_s") - 1.5).abs() <= 0.3 + 2.0 * noise.stop().1 / 1000.0, "{e}");
    assert!((f(e, "rpo_measured_s") - 120.0).abs() <= 2.0, "{e}");
    // The end summary a person reads, figures masked.
    let text = p.flow(&[&["drill"][..], &args].concat());
    text.expect(OK);
    insta::assert_snapshot!("drill-restore-end-summary", crate::support::figures_masked(&text.stdout));
    assert_eq!(f(e, "rpo_worst_case_s"), 300.0);
    assert_eq!(f(e, "rpo_s"), 300.0, "the worse of the two");
    assert_eq!(e["cleanup"]["exit_code"], 0);
    assert!(!p.path("restored.flag").exists(), "cleanup ran after the measurement");
    let r = p.flow(&["drill", "restore", "--restore", "sleep 0.2; echo no backup >&2; exit 3", "--probe", &probe]);
    assert_eq!(r.code, FAILED, "{}", r.stderr);
    assert!(
        r.stderr.contains("the restore command exited with 3 before") && r.stderr.contains(": no backup"),
        "{}",
        r.stderr
    );
}

/// Both drills as steps of a runbook: bounds from the requirements they cover, verdicts from
/// their evidence.
#[test]
fn drills_as_steps_give_the_four_verdicts() {
    let noise = Noise::start();
    let server = Server::start();
    let p = Project::new();
    p.write(
        "specs/res.md",
        "# Resilience\n\n- THE SYSTEM SHALL survive the loss of one Availability Zone.\n- THE SYSTEM SHALL recover with at most 1 minute of downtime.\n- RTO 2 hours\n- RPO 10 minutes\n",
    );
    p.flow(&["plan", "specs/res.md"]).expect(OK);
    let down = p.path("down.flag").display().to_string();
    let up = p.path("up.flag").display().to_string();
    p.edit_steps(
        "res",
        &format!(
            r#"
            [[steps]]
            id = "az"
            kind = "failover_drill"
            gate = true
            covers = ["resilience-1", "resilience-2"]
            params = {{ endpoint = "{}", inject = "touch {down}; sleep 1; rm {down}", duration_s = 2 }}
            [[steps]]
            id = "restore"
            kind = "restore_drill"
            gate = true
            covers = ["resilience-3", "resilience-4"]
            params = {{ restore = "sleep 0.5; touch {up}", probe = "{}", worst_rpo_s = 300 }}
            "#,
            server.url(&format!("/unless?path={down}")),
            server.url(&format!("/if?path={up}")),
        ),
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let will = step_field(&p.status(), "az", "will");
    assert!(
        will.contains(&format!("$ touch {down}")) && will.contains("downtime bound: 60 s (from resilience-2)"),
        "{will}"
    );
    let will = step_field(&p.status(), "restore", "will");
    assert!(will.contains("restore by running") && will.contains("the scratch copy is left in place"), "{will}");
    p.approve(&["az"]).expect(OK);
    p.approve(&["restore"]).expect(OK);
    p.flow(&["run"]).expect(OK);
    let s = p.status();
    for req in ["resilience-1", "resilience-2", "resilience-3", "resilience-4"] {
        assert_eq!(verdict(&s, req), "pass", "{req}: {s}");
    }
    let ev: Value = serde_json::from_str(&step_field(&s, "az", "evidence")).unwrap();
    assert!((f(&ev, "failover_downtime_s") - 1.0).abs() <= 0.12 + 2.0 * noise.stop().1 / 1000.0, "{ev}");
    assert_eq!(ev["max_downtime_from"], "resilience-2");
}

/// kill -9 while a command drill's fault is under way: the next run does not inject it again;
/// the step is handed to a person, and a retry asks for a new approval.
#[test]
fn a_drill_killed_mid_fault_is_not_injected_again() {
    let server = Server::start();
    let p = Project::new();
    p.write("specs/res.md", "# Resilience\n\n- THE SYSTEM SHALL recover with at most 1 minute of downtime.\n");
    p.flow(&["plan", "specs/res.md"]).expect(OK);
    let log = p.path("inject.log").display().to_string();
    p.edit_steps(
        "res",
        &format!(
            r#"
            [[steps]]
            id = "az"
            kind = "failover_drill"
            gate = true
            covers = ["resilience-1"]
            params = {{ endpoint = "{}", inject = "echo injected >> {log}; sleep 3", duration_s = 1 }}
            "#,
            server.url("/ok")
        ),
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["az"]).expect(OK);
    let mut child = p.spawn(&["run"]);
    p.wait_until("the fault injected", |s| state(s, "az") == "running" && p.path("inject.log").exists());
    child.kill().unwrap();
    child.wait().unwrap();
    p.flow(&["run"]).expect(FAILED);
    let s = p.status();
    assert_eq!((step_field(&s, "az", "state"), step_field(&s, "az", "interrupted")), ("failed".into(), "true".into()));
    assert_eq!(p.read("inject.log").lines().count(), 1, "injected once");
    p.flow(&["retry", "az"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let s = p.status();
    assert_eq!(step_field(&s, "az", "state"), "waiting_approval", "a new run of the drill is approved again");
    assert!(step_field(&s, "az", "approval_void").contains("covers one run"), "{s}");
    assert_eq!(p.read("inject.log").lines().count(), 1);
    let human = p.flow(&["log"]).stdout;
    assert!(
        human.contains(&format!("az: retry requested by {} (to be approved again)", crate::support::me())),
        "{human}"
    );
}

fn fis_project(server: &Server, template: &str, duration_s: u64) -> Project {
    let p = Project::new();
    p.write(
        "specs/az.md",
        "---\nregion: eu-west-1\n---\n# Resilience\n\n- THE SYSTEM SHALL survive the loss of one Availability Zone.\n- THE SYSTEM SHALL recover with at most 1 minute of downtime.\n",
    );
    p.flow(&["plan", "specs/az.md"]).expect(OK);
    p.edit_steps(
        "az",
        &format!(
            r#"
            [[steps]]
            id = "az"
            kind = "failover_drill"
            gate = true
            covers = ["resilience-1", "resilience-2"]
            params = {{ endpoint = "{}", fis_template = "{template}", duration_s = {duration_s}, probe_interval_ms = 100 }}
            "#,
            server.url("/ok")
        ),
    );
    p
}

/// FIS through the real SDK against moto: the preview shows the template and the targets a
/// dry run (`skip-all`) resolved; the approved drill starts the experiment once, with the token.
#[test]
fn an_fis_drill_against_moto() {
    use aws_sdk_fis::types::{
        CreateExperimentTemplateActionInput, CreateExperimentTemplateStopConditionInput,
        CreateExperimentTemplateTargetInput,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let moto = moto_url();
    let fis = rt.block_on(async {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&moto)
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_fis::config::Credentials::new("testing", "testing", None, None, "test"))
            .load()
            .await;
        aws_sdk_fis::Client::new(&conf)
    });
    let template = rt.block_on(async {
        fis.create_experiment_template()
            .client_token(format!("t-{}", std::process::id()))
            .description("AZ power interruption")
            .role_arn("arn:aws:iam::123456789012:role/fis")
            .targets(
                "Instances",
                CreateExperimentTemplateTargetInput::builder()
                    .resource_type("aws:ec2:instance")
                    .resource_arns("arn:aws:ec2:eu-west-1:123456789012:instance/i-0aaa")
                    .resource_arns("arn:aws:ec2:eu-west-1:123456789012:instance/i-0bbb")
                    .selection_mode("ALL")
                    .build()
                    .unwrap(),
            )
            .actions(
                "stop-instances",
                CreateExperimentTemplateActionInput::builder()
                    .action_id("aws:ec2:stop-instances")
                    .parameters("startInstancesAfterDuration", "PT1M")
                    .targets("Instances", "Instances")
                    .build()
                    .unwrap(),
            )
            .stop_conditions(
                CreateExperimentTemplateStopConditionInput::builder()
                    .source("aws:cloudwatch:alarm")
                    .value("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:errors")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .experiment_template
            .unwrap()
            .id
            .unwrap()
    });
    let server = Server::start();
    let p = fis_project(&server, &template, 1);
    p.aws(&moto);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let will = step_field(&p.status(), "az", "will");
    for expected in [
        format!("run the AWS FIS experiment template {template} in eu-west-1"),
        "action stop-instances: aws:ec2:stop-instances startInstancesAfterDuration=PT1M".to_string(),
        "stop conditions: aws:cloudwatch:alarm arn:aws:cloudwatch:eu-west-1:123456789012:alarm:errors".to_string(),
        "resolved targets now (2):".to_string(),
        "Instances aws:ec2:instance arn:aws:ec2:eu-west-1:123456789012:instance/i-0aaa".to_string(),
    ] {
        assert!(will.contains(&expected), "`{expected}` in\n{will}");
    }
    p.approve(&["az"]).expect(OK);
    p.flow(&["run"]).expect(OK);
    let s = p.status();
    assert_eq!((verdict(&s, "resilience-1"), verdict(&s, "resilience-2")), ("pass".into(), "pass".into()));
    let ev: Value = serde_json::from_str(&step_field(&s, "az", "evidence")).unwrap();
    let experiment = ev["fault"]["experiment"].as_str().unwrap().to_string();
    let runs = rt.block_on(async { fis.list_experiments().experiment_template_id(&template).send().await.unwrap() });
    let acted: Vec<_> = runs
        .experiments()
        .iter()
        .filter(|e| e.experiment_options().and_then(|o| o.actions_mode()).map(|m| m.as_str()) == Some("run-all"))
        .collect();
    assert_eq!(acted.len(), 1, "one experiment acted, the others were dry runs");
    assert_eq!(acted[0].id(), Some(experiment.as_str()));
    assert!(acted[0].tags().and_then(|t| t.get("flow-token")).is_some_and(|t| t.starts_with("flow-")));
}

/// The fake FIS really impairs the service for the experiment's duration; kill -9 mid-drill,
/// and the next run finds the experiment by its token, stops it, and does not start another.
#[test]
fn an_fis_drill_measures_the_outage_and_survives_a_kill() {
    let mut noise = Some(Noise::start());
    let server = Server::start();
    let aws = FakeAws::start();
    let p0 = Project::new();
    let flag = p0.path("down.flag");
    let f2 = flag.clone();
    aws.with(|s| {
        s.drills.templates.push(FisTemplate {
            id: "EXT1".into(),
            duration: Duration::from_millis(1500),
            targets: vec![],
        });
        s.drills.templates.push(FisTemplate { id: "EXT2".into(), duration: Duration::from_secs(60), targets: vec![] });
        s.drills.fault = Some(file_hook(f2));
        s.cloudwatch.lock().unwrap().add("errors", &[]);
    });
    let url = server.url(&format!("/unless?path={}", flag.display()));
    let p = Project::new();
    p.write(
        "specs/az.md",
        "---\nregion: eu-west-1\n---\n# Resilience\n\n- THE SYSTEM SHALL recover with at most 1 minute of downtime.\n",
    );
    p.flow(&["plan", "specs/az.md"]).expect(OK);
    p.aws(&aws.url);
    for template in ["EXT1", "EXT2"] {
        p.edit_steps(
            "az",
            &format!(
                r#"
                [[steps]]
                id = "az"
                kind = "failover_drill"
                gate = true
                covers = ["resilience-1"]
                params = {{ endpoint = "{url}", fis_template = "{template}", duration_s = 1, alarm_prefix = "orders-alarms-" }}
                "#
            ),
        );
        p.flow(&["run"]).expect(WAITING_APPROVAL);
        p.approve(&["az"]).expect(OK);
        if template == "EXT1" {
            p.flow(&["run"]).expect(OK);
            let ev: Value = serde_json::from_str(&step_field(&p.status(), "az", "evidence")).unwrap();
            let slack = 2.0 * noise.take().map(|n| n.stop().1).unwrap_or(0.0) / 1000.0;
            assert!((f(&ev, "failover_downtime_s") - 1.5).abs() <= 0.15 + slack, "the 1.5 s experiment: {ev}");
            assert_eq!(aws.with(|s| s.drills.run_all_starts()), 1);
            // The stop condition's alarm stayed OK through the outage: it could not have
            // stopped the experiment, and the evidence says so.
            let findings: Vec<&str> =
                ev["alarms"]["findings"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
            assert_eq!(findings.len(), 2, "{ev}");
            assert_eq!(
                findings[0],
                "the experiment's stop condition, alarm errors, never fired during the drill: it could not have stopped it"
            );
            assert!(
                findings[1].starts_with("the service was down ") && findings[1].ends_with(" s and no alarm fired"),
                "{ev}"
            );
            assert_eq!(ev["alarms"]["quiet"], serde_json::json!(["errors"]), "{ev}");
            continue;
        }
        let mut child = p.spawn(&["run"]);
        let start = Instant::now();
        while aws.with(|s| s.drills.run_all_starts()) < 2 {
            assert!(start.elapsed() < Duration::from_secs(30), "the experiment did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(flag.exists(), "the fault is on");
        let r = p.flow(&["run"]);
        r.expect(FAILED);
        assert!(r.stdout.contains("FIS experiment EXP") && r.stdout.contains("is now stopped"), "{}", r.stdout);
        assert_eq!(aws.with(|s| s.drills.run_all_starts()), 2, "not started a second time");
        assert!(!flag.exists(), "stopping the experiment ended the fault");
    }
}

/// An ARC zonal shift: started, watched, cancelled at the end of the window; the fake's shift
/// takes the service down while it is active.
#[test]
fn a_zonal_shift_drill() {
    let noise = Noise::start();
    let server = Server::start();
    let aws = FakeAws::start();
    let p = Project::new();
    let flag = p.path("down.flag");
    let f2 = flag.clone();
    let lb = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/orders/1";
    aws.with(|s| {
        s.drills.resources.push((
            lb.into(),
            "orders".into(),
            vec!["euw1-az1".into(), "euw1-az2".into(), "euw1-az3".into()],
        ));
        // The error-rate alarm fires with the outage and clears after it; the latency one
        // stays quiet.
        let cw = s.cloudwatch.clone();
        cw.lock().unwrap().add("orders-alarms-ErrorRate", &[]);
        cw.lock().unwrap().add("orders-alarms-Latency", &[]);
        let file = file_hook(f2);
        s.drills.fault = Some(Arc::new(move |on| {
            file(on);
            cw.lock().unwrap().crossed("orders-alarms-ErrorRate", if on { "ALARM" } else { "OK" });
        }));
    });
    p.write(
        "specs/az.md",
        "---\nregion: eu-west-1\n---\n# Resilience\n\n- THE SYSTEM SHALL recover with at most 1 minute of downtime.\n",
    );
    p.flow(&["plan", "specs/az.md"]).expect(OK);
    p.aws(&aws.url);
    p.edit_steps(
        "az",
        &format!(
            r#"
            [[steps]]
            id = "az"
            kind = "failover_drill"
            gate = true
            covers = ["resilience-1"]
            params = {{ endpoint = "{}", zonal_shift_resource = "{lb}", away_from = "euw1-az1", duration_s = 1, alarm_prefix = "orders-alarms-" }}
            "#,
            server.url(&format!("/unless?path={}", flag.display()))
        ),
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let will = step_field(&p.status(), "az", "will");
    assert!(will.contains("away from euw1-az1 with an ARC zonal shift") && will.contains("euw1-az2=1"), "{will}");
    p.approve(&["az"]).expect(OK);
    p.flow(&["run"]).expect(OK);
    let ev: Value = serde_json::from_str(&step_field(&p.status(), "az", "evidence")).unwrap();
    assert!(
        (f(&ev, "downtime_s") - 1.0).abs() <= 0.2 + 2.0 * noise.stop().1 / 1000.0,
        "the shift lasts the 1 s window: {ev}"
    );
    assert_eq!(ev["recovered"], true);
    let shifts =
        aws.with(|s| s.drills.shifts.iter().map(|x| (x.away_from.clone(), x.status.clone())).collect::<Vec<_>>());
    assert_eq!(shifts, [("euw1-az1".to_string(), "CANCELED".to_string())]);
    // The alarms during the drill: which fired, when, and back to OK; on the report's timeline.
    let alarms = &ev["alarms"];
    assert_eq!(alarms["fired"].as_array().map(Vec::len), Some(1), "{alarms}");
    assert_eq!(alarms["fired"][0]["alarm"], "orders-alarms-ErrorRate");
    let (fired, ok) = (f(&alarms["fired"][0], "fired_at_s"), f(&alarms["fired"][0], "ok_at_s"));
    assert!((0.0..1.0).contains(&fired) && ok > fired, "{alarms}");
    assert_eq!(alarms["quiet"], serde_json::json!(["orders-alarms-Latency"]));
    assert_eq!(alarms["findings"], serde_json::json!([]));
    let md = p.flow(&["report", "--format", "md", "-o", "-"]).stdout;
    assert!(md.contains("| alarm | fired (s after the fault) | back to OK (s after the fault) |\n|---|---|---|\n| orders-alarms-ErrorRate | "), "{md}");
}

/// AWS Backup: the newest recovery point restored with the step's token, waited for across
/// `flow run`s, probed once complete; RPO the worse of its age and the plan's best rule.
#[test]
fn a_backup_restore_drill_waits_and_measures() {
    let server = Server::start();
    let aws = FakeAws::start();
    let p = Project::new();
    let flag = p.path("restored.flag");
    let f2 = flag.clone();
    let db = "arn:aws:rds:eu-west-1:123456789012:db:orders";
    aws.with(|s| {
        let now = std::time::SystemTime::now();
        for (n, age) in [(1, 7200), (2, 240)] {
            s.drills.recovery_points.push(RecoveryPoint {
                arn: format!("arn:aws:backup:eu-west-1:123456789012:recovery-point:rp-{n}"),
                resource: db.into(),
                vault: "orders-vault".into(),
                created: now - Duration::from_secs(age),
            });
        }
        s.drills.plans.push((
            "plan-1".into(),
            vec![
                ("hourly".into(), "cron(0 * ? * * *)".into(), 60, false),
                ("pitr".into(), "cron(0 5 ? * * *)".into(), 60, true),
            ],
        ));
        s.drills.restore_takes = Duration::from_secs(7);
        s.drills.restored = Some(Arc::new(move |_| std::fs::write(&f2, "").unwrap()));
    });
    p.write(
        "specs/dr.md",
        format!("---\nregion: eu-west-1\nbackup_resource: {db}\n---\n# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n"),
    );
    p.flow(&["plan", "specs/dr.md"]).expect(OK);
    p.aws(&aws.url);
    p.edit_steps(
        "dr",
        &format!(
            r#"
            [[steps]]
            id = "restore"
            kind = "restore_drill"
            gate = true
            covers = ["recovery-1", "recovery-2"]
            params = {{ backup_vault = "orders-vault", backup_plan_id = "plan-1", iam_role_arn = "arn:aws:iam::123456789012:role/backup", restore_metadata = {{ DBInstanceIdentifier = "orders-drill" }}, probe = "{}", cleanup = "echo deleting $FLOW_RESTORED_ARN" }}
            "#,
            server.url(&format!("/if?path={}", flag.display()))
        ),
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let will = step_field(&p.status(), "restore", "will");
    for expected in [
        "recovery point: arn:aws:backup:eu-west-1:123456789012:recovery-point:rp-2",
        "of: arn:aws:rds:eu-west-1:123456789012:db:orders (vault orders-vault)",
        "into: DBInstanceIdentifier=orders-drill",
        "worst-case RPO: 300 s (plan plan-1 rule pitr: continuous backup)",
        "$ echo deleting $FLOW_RESTORED_ARN",
    ] {
        assert!(will.contains(expected), "`{expected}` in\n{will}");
    }
    p.approve(&["restore"]).expect(OK);
    // The restore takes longer than the run looks: the step waits, flow exits 11.
    p.flow(&["run"]).expect(WAITING);
    assert_eq!(p.state_of("restore"), "waiting");
    // A day later (the clock moved, not waited for), the job has long completed.
    std::thread::sleep(Duration::from_secs(3));
    p.env("FLOW_NOW", &later(86400));
    p.flow(&["run"]).expect(OK);
    let s = p.status();
    assert_eq!((verdict(&s, "recovery-1"), verdict(&s, "recovery-2")), ("pass".into(), "pass".into()), "{s}");
    let ev: Value = serde_json::from_str(&step_field(&s, "restore", "evidence")).unwrap();
    assert!((f(&ev, "rto_restore_s") - 7.0).abs() <= 0.5, "{ev}");
    assert_eq!(f(&ev, "rpo_s"), 300.0, "{ev}");
    assert!((f(&ev, "rpo_measured_s") - 240.0).abs() <= 5.0, "{ev}");
    assert!(
        ev["cleanup"]["stdout"]
            .as_str()
            .unwrap()
            .contains("deleting arn:aws:rds:eu-west-1:123456789012:db:restored-job-1"),
        "{ev}"
    );
    assert_eq!(aws.with(|s| s.drills.jobs.len()), 1, "one restore job");
}
