//! Renderers from constructed values: cut text, and snapshots of `flow plan`, `flow run`'s
//! lines, `flow status` and `flow assess`.

use crate::app::status::{Status, StepStatus};
use crate::domain::lifecycle::State;

#[test]
fn a_cut_text_says_so() {
    assert_eq!(super::clip("short", 70), "short");
    let long = "WHEN launch traffic arrives THE SYSTEM SHALL handle 2,500 connections per second";
    let cut = super::clip(long, 70);
    assert_eq!(cut.chars().count(), 70);
    assert!(cut.ends_with("connections…"), "{cut}");
    // Characters, not bytes: no panic inside a multi-byte one.
    assert_eq!(super::clip(&"é".repeat(80), 10), format!("{}…", "é".repeat(9)));
}

fn step(id: &str, kind: &str, state: State) -> StepStatus {
    StepStatus {
        id: id.into(),
        kind: kind.into(),
        state,
        gate: true,
        needs: vec![],
        covers: vec![],
        attempt: 1,
        will: None,
        artifact_digest: None,
        approval: None,
        approvals: vec![],
        missing: vec![],
        author: None,
        approval_void: None,
        next_poll_at: None,
        note: None,
        error: None,
        interrupted: false,
        blocked: None,
        reason: None,
        outputs: Default::default(),
        evidence: Default::default(),
        updated_at: None,
        flag: None,
    }
}

/// `flow status` from constructed values: a gate waiting with what it will do, a failed
/// step with its error, a succeeded one, one not run, and the requirements' verdicts.
#[test]
fn status_from_constructed_values() {
    use crate::domain::event::{Body, Event};
    let spec = crate::domain::spec::parse("r.md", "# Launch\n\n- RTO 2 hours\n- p99 latency under 1 s\n").unwrap();
    let mut plan = crate::planner::builtin::plan("r", "r.md", &spec, None);
    plan.steps.retain(|s| ["restore_drill", "loadtest", "changeset", "approval"].contains(&s.kind.as_str()));
    let evidence = serde_json::json!({"rto_s": 3600.0}).as_object().unwrap().clone();
    let done = Event {
        seq: 1,
        at: "2026-12-06T00:00:00Z".into(),
        actor: "ana".into(),
        as_name: None,
        host: String::new(),
        body: Body::Succeeded { step: "restore-drill".into(), outputs: evidence.clone(), evidence: evidence.clone() },
    };
    let fail = Event {
        seq: 2,
        body: Body::Failed {
            step: "load-test".into(),
            error: "the load test is not evidence: no successful answer".into(),
            interrupted: false,
        },
        ..done.clone()
    };
    let view = crate::domain::runbook::RunbookView::from_events(&[done, fail]);
    let mut gate = step("changeset-backup", "changeset", State::WaitingApproval);
    gate.will = Some(
        "CREATE change set flow-backup on stack app-backup (eu-west-1):\n  Add  Vault  AWS::Backup::BackupVault".into(),
    );
    gate.artifact_digest = Some("sha256:0123456789abcdef0123".into());
    let mut failed = step("load-test", "loadtest", State::Failed);
    failed.error = Some("the load test is not evidence: no successful answer".into());
    failed.covers = vec!["launch-2".into()];
    let mut drill = step("restore-drill", "restore_drill", State::Succeeded);
    drill.needs = vec!["changeset-backup".into()];
    drill.covers = vec!["launch-1".into()];
    drill.evidence = evidence;
    let mut go = step("go-no-go", "approval", State::Pending);
    go.needs = vec!["load-test".into(), "restore-drill".into()];
    let st = Status {
        runbook: "r".into(),
        version: 2,
        workflow: "workflows/r.toml".into(),
        workflow_edited: None,
        workflow_invalid: None,
        steps: vec![failed, gate, drill, go],
        requirements: crate::domain::verdict::verdicts(&plan, &view),
        lease: None,
        you: "ana".into(),
        policy: vec![],
        spec: "r.md".into(),
        questions: vec![],
    };
    insta::assert_snapshot!("status-constructed", super::status(&st));
}

/// `flow assess` from the launch scenario's starting point, constructed: one instance in a
/// small VPC, one NAT gateway for two AZs.
#[test]
fn assessment_from_constructed_values() {
    use crate::domain::assess::{findings, scenario, Needs};
    let setup = scenario();
    let needs = Needs { subnets: 6, prefix: 24, fleet_max: None };
    let judged = findings(&setup, &needs)
        .into_iter()
        .map(|f| crate::app::assess::Judged { finding: f, requirements: vec!["launch-4".into()] })
        .collect();
    let a = crate::app::assess::Assessment { version: 1, setup, findings: judged };
    insta::assert_snapshot!("assessment-constructed", super::assessment(&a));
}

/// `flow plan` from a constructed version record over the builtin plan of a small spec: a
/// second version with its changes, a question still open, and the steps in dependency order
/// with their gates and what they cover.
#[test]
fn plan_from_constructed_values() {
    let text = "# Launch\n\n- handle 2,500 connections per second\n- RTO 2 hours\n- RTO 3 hours\n";
    let spec = crate::domain::spec::parse("r.md", text).unwrap();
    let plan = crate::planner::builtin::plan("r", "r.md", &spec, None);
    let diff = crate::domain::plan::PlanDiff {
        added: vec!["quota-eips".into()],
        removed: vec![],
        changed: vec!["peak-load".into()],
    };
    let rec = crate::app::Recorded { version: 2, diff: Some(diff), unchanged: false, event: None };
    let planned = crate::app::plan::Planned::new(plan, &rec, "workflows/r.toml".into());
    insta::assert_snapshot!("plan-constructed", super::plan(&planned));
}

/// `flow run`'s event lines and its closing words, from constructed events: a preview, an
/// approval, a submit that waits, a success, a failure, a notice not delivered, the end.
#[test]
fn run_lines_from_constructed_values() {
    use crate::app::run::{RunReport, StepAfter};
    use crate::domain::event::{Body, Event};
    use crate::engine::RunOutcome;
    use serde_json::json;
    let at = |seq: u64, body: Body| Event {
        seq,
        at: format!("2026-12-06T00:00:{seq:02}Z"),
        actor: "arn:aws:iam::1:user/ana".into(),
        as_name: Some("ana".into()),
        host: String::new(),
        body,
    };
    let step = |s: &str| s.to_string();
    let outputs = json!({"throughput_rps": 2631.5, "latency_avg_ms": 41.2}).as_object().unwrap().clone();
    let events = vec![
        at(1, Body::RunStarted { pid: 4242 }),
        at(2, Body::PreviewStarted { step: step("changeset-network"), attempt: 1 }),
        at(
            3,
            Body::PreviewRecorded {
                step: step("changeset-network"),
                artifact: "CREATE change set".into(),
                artifact_digest: "sha256:0123456789abcdef".into(),
                params_digest: "sha256:fedcba".into(),
            },
        ),
        at(
            4,
            Body::Approved {
                step: step("changeset-network"),
                by: "arn:aws:iam::1:user/bo".into(),
                as_name: Some("bo".into()),
                comment: Some("one NAT per AZ, as reviewed".into()),
                artifact_digest: "sha256:0123456789abcdef".into(),
                params_digest: "sha256:fedcba".into(),
                shown: None,
                complete: false,
                missing: vec!["one more approver".into()],
            },
        ),
        at(
            5,
            Body::SubmitStarted {
                step: step("quota-ec2-vcpus"),
                attempt: 1,
                token: "flow-r-quota-1".into(),
                params_digest: "sha256:aa".into(),
            },
        ),
        at(
            6,
            Body::WaitScheduled {
                step: step("quota-ec2-vcpus"),
                next_poll_at: 1_796_518_800_000,
                note: "increase request CASE_OPENED".into(),
                handle: json!({}),
            },
        ),
        at(7, Body::Succeeded { step: step("peak-load"), outputs: outputs.clone(), evidence: outputs }),
        at(
            8,
            Body::Failed { step: step("restore-drill"), error: "the probe never answered".into(), interrupted: false },
        ),
        at(9, Body::Notified { key: "failed:restore-drill".into(), ok: false, error: Some("HTTP 500".into()) }),
        at(10, Body::RunFinished { outcome: "failed".into() }),
    ];
    let lines: Vec<String> = events.iter().map(super::event).collect();
    let after = |id: &str, state: State, why: Option<&str>| StepAfter {
        id: id.into(),
        state,
        why: why.map(str::to_string),
        blocked: None,
        digest: None,
    };
    let failed = RunReport {
        runbook: "r".into(),
        version: 2,
        outcome: RunOutcome::Failed,
        edited: None,
        next_poll_at: None,
        events: events.clone(),
        steps: vec![after("restore-drill", State::Failed, Some("the probe never answered"))],
    };
    let waiting = RunReport {
        outcome: RunOutcome::WaitingApproval,
        steps: vec![StepAfter {
            digest: Some("sha256:0123456789abcdef".into()),
            ..after("changeset-network", State::WaitingApproval, None)
        }],
        ..failed.clone()
    };
    let shown = format!("{}\n\n{}\n{}", lines.join("\n"), super::run(&failed), super::run(&waiting));
    insta::assert_snapshot!("run-lines-constructed", shown);
}
