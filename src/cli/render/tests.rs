//! Renderers from constructed values: cut text, and snapshots of `flow status` and `flow assess`.

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

use crate::app::status::{Status, StepStatus};
use crate::domain::lifecycle::State;

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
