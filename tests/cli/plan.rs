//! `flow plan`: the launch plan, its JSON contract, re-planning with a diff, and edited
//! workflow files going through the same validator.

use crate::support::{step_field, Project};
use flow::exit::BAD_PLAN;

#[test]
fn launch_plan_covers_all_eight_and_status_lists_them_unverified() {
    let p = Project::new();
    p.with_launch_spec();
    let r = p.flow(&["plan", "specs/launch.md", "--json"]);
    r.expect(0);
    let v = r.json();
    assert_eq!((v["runbook"].as_str(), v["version"].as_u64()), (Some("launch"), Some(1)));
    let steps = v["steps"].as_array().unwrap();
    let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    for k in [
        "loadtest",
        "capacity_model",
        "quota",
        "ip_capacity",
        "changeset",
        "failover_drill",
        "restore_drill",
        "alarm_drill",
        "approval",
    ] {
        assert!(kinds.contains(&k), "no {k} step in {kinds:?}");
    }
    // Every measurable requirement is covered by a step that can verify it.
    let covered: Vec<String> = steps
        .iter()
        .flat_map(|s| s["covers"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()))
        .collect();
    let measurable: Vec<String> = v["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] != "other")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(measurable.len(), 8);
    for id in &measurable {
        assert!(covered.contains(id), "{id} not covered");
    }
    // Side-effecting steps are gated; the capacity model feeds the quota and compute steps.
    for s in steps {
        if ["loadtest", "quota", "changeset", "failover_drill", "restore_drill", "alarm_drill", "approval"]
            .contains(&s["kind"].as_str().unwrap())
        {
            assert_eq!(s["gate"], true, "{s}");
        }
    }
    let by_id = |id: &str| steps.iter().find(|s| s["id"] == id).unwrap().clone();
    assert_eq!(by_id("quota-ec2-vcpus")["params"]["required"], "${capacity-model.vcpus}");
    assert_eq!(
        by_id("changeset-compute")["params"]["parameters"]["DesiredCapacity"],
        "${capacity-model.instances_total}"
    );
    assert_eq!(by_id("peak-load")["params"]["url"], "${changeset-compute.EndpointURL}");
    assert_eq!(by_id("capacity-model")["params"]["per_instance_rps"], "${baseline-load.throughput_rps}");
    assert!(p.path("workflows/launch.toml").exists());

    let status = p.status();
    let verdicts: Vec<(String, String)> = status["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["verdict"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(verdicts.len(), 8);
    assert!(verdicts.iter().all(|(_, v)| v == "unverified"), "{verdicts:?}");
    assert_eq!(step_field(&status, "baseline-load", "state"), "ready");
    assert_eq!(step_field(&status, "capacity-model", "state"), "pending");
}

#[test]
fn replanning_a_changed_spec_prints_a_diff() {
    let p = Project::new();
    p.write("specs/svc.md", "# Recovery\n\n- RTO 2 hours\n");
    p.flow(&["plan", "specs/svc.md"]).expect(0);
    let again = p.flow(&["plan", "specs/svc.md"]);
    again.expect(0);
    assert!(again.stdout.contains("plan unchanged (version 1)"), "{}", again.stdout);

    p.write(
        "specs/svc.md",
        "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n\n## Speed\n\n- average response under 100 ms\n",
    );
    let r = p.flow(&["plan", "specs/svc.md", "--json"]);
    r.expect(0);
    let v = r.json();
    assert_eq!(v["version"], 2);
    assert_eq!(v["diff"]["added"], serde_json::json!(["load-test"]));
    assert_eq!(v["diff"]["changed"], serde_json::json!(["restore-drill", "go-no-go"]));
    assert_eq!(v["diff"]["removed"], serde_json::json!([]));
    let human = p.flow(&["log"]);
    assert!(
        human.stdout.contains("plan version 2 (builtin, from plan): +load-test ~restore-drill ~go-no-go"),
        "{}",
        human.stdout
    );
}

#[test]
fn an_invalid_edit_is_refused_and_changes_nothing() {
    let p = Project::new();
    p.write("specs/svc.md", "# Recovery\n\n- RTO 2 hours\n");
    p.flow(&["plan", "specs/svc.md"]).expect(0);
    let before = p.flow(&["log", "--json"]).json()["events"].as_array().unwrap().len();
    p.edit_steps(
        "svc",
        r#"
        [[steps]]
        id = "a"
        kind = "command"
        needs = ["b"]
        covers = ["recovery-1"]
        params = { run = "true" }
        [[steps]]
        id = "b"
        kind = "command"
        gate = true
        needs = ["a"]
        params = { run = "true" }
        [[steps]]
        id = "c"
        kind = "warp_drive"
        gate = true
        [[steps]]
        id = "d"
        kind = "probe"
        params = { url = "${b.status}" }
        "#,
    );
    let r = p.flow(&["run"]);
    r.expect(BAD_PLAN);
    for expected in [
        "invalid plan",
        "step `a`: kind `command` has a side effect and must be gated (gate = true)",
        "step `c`: unknown kind `warp_drive`",
        "step `d`: param `url` references `b`, which is not among its needs",
        "the needs form a cycle: a -> b -> a",
    ] {
        assert!(r.stderr.contains(expected), "expected `{expected}` in:\n{}", r.stderr);
    }
    let after = p.flow(&["log", "--json"]).json()["events"].as_array().unwrap().len();
    assert_eq!(before, after, "an invalid workflow must not touch the journal");
    // `flow status` is not silent about it: it says what `flow run` will refuse, and why.
    let status = p.flow(&["status"]);
    status.expect(0);
    assert!(
        status.stdout.contains("warning: `flow run` will refuse the workflow file until it is fixed")
            && status.stdout.contains("step `c`: unknown kind `warp_drive`")
            && status.stdout.contains("next: fix "),
        "{}",
        status.stdout
    );

    p.write("workflows/svc.toml", "runbook = \"svc\"\n[[steps]\nid = 1\n");
    let r = p.flow(&["run"]);
    r.expect(BAD_PLAN);
    assert!(
        r.stderr.contains("workflow") && r.stderr.contains("svc.toml") && r.stderr.contains("line 2"),
        "{}",
        r.stderr
    );
}
