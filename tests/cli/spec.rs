//! `flow spec` and the bad-input contract: each error names file and line, exits 3, writes
//! nothing to the state store.

use crate::support::Project;
use flow::exit::{BAD_SPEC, REFUSED};

#[test]
fn launch_spec_has_seven_measurable_requirements() {
    let p = Project::new();
    p.with_launch_spec();
    let r = p.flow(&["spec", "specs/launch.md", "--json"]);
    r.expect(0);
    let v = r.json();
    let reqs = v["requirements"].as_array().unwrap();
    let kinds: Vec<&str> = reqs.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "throughput",
            "latency_avg",
            "success_rate",
            "az_failure_tolerance",
            "failover_downtime",
            "rto",
            "rpo",
            "other"
        ]
    );
    let targets: Vec<(String, f64, String)> = reqs
        .iter()
        .map(|r| (r["op"].as_str().unwrap().into(), r["value"].as_f64().unwrap(), r["unit"].as_str().unwrap().into()))
        .collect();
    assert_eq!(targets[0], (">=".into(), 2500.0, "req/s".into()));
    assert_eq!(targets[1], ("<".into(), 250.0, "ms".into()));
    assert_eq!(targets[2], (">=".into(), 99.5, "%".into()));
    assert_eq!(targets[4], ("<=".into(), 60.0, "s".into()));
    assert_eq!(targets[5], ("<=".into(), 7200.0, "s".into()));
    assert_eq!(targets[6], ("<=".into(), 600.0, "s".into()));
    for r in reqs {
        for key in ["id", "kind", "op", "value", "unit", "line", "text"] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
    }
    // Every line number points at the sentence it came from.
    let text = p.read("specs/launch.md");
    let lines: Vec<&str> = text.lines().collect();
    for r in reqs {
        let line = lines[r["line"].as_u64().unwrap() as usize - 1];
        assert!(
            r["text"]
                .as_str()
                .unwrap()
                .starts_with(line.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')),
            "{line} vs {r}"
        );
    }
    assert_eq!(v["context"]["region"], "eu-west-1");
    assert_eq!(v["context"]["stack"], "orders-app");
}

#[test]
fn prose_bullets_tables_and_other() {
    let p = Project::new();
    p.write(
        "specs/web.md",
        "# Web\n\nThe service must handle 150,000 requests per minute.\n\n- error rate at most 0.1 %\n- The UI should feel modern.\n\n| ID | What | Target |\n|---|---|---|\n| L-9 | p99 latency | below 1.5 seconds |\n",
    );
    let r = p.flow(&["spec", "specs/web.md", "--json"]);
    r.expect(0);
    let v = r.json();
    let got: Vec<(String, String, f64, u64)> = v["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().into(),
                r["kind"].as_str().unwrap().into(),
                r["value"].as_f64().unwrap(),
                r["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("web-1".into(), "throughput".into(), 2500.0, 3),
            ("web-2".into(), "success_rate".into(), 99.9, 5),
            ("web-3".into(), "other".into(), 1.0, 6),
            ("L-9".into(), "latency_p99".into(), 1500.0, 10),
        ]
    );
    let human = p.flow(&["spec", "specs/web.md"]);
    assert!(human.stdout.contains("not measurable"), "{}", human.stdout);
}

fn assert_bad(p: &Project, file: &str, expected: &[&str]) {
    for verb in ["spec", "plan"] {
        let r = p.flow(&[verb, file]);
        r.expect(BAD_SPEC);
        for e in expected {
            assert!(r.stderr.contains(e), "`flow {verb} {file}`: expected `{e}` in:\n{}", r.stderr);
        }
    }
    // Nothing reached the state store.
    let s = p.flow(&["status"]);
    s.expect(REFUSED);
    assert!(s.stderr.contains("no runbook yet"), "{}", s.stderr);
}

#[test]
fn missing_file() {
    let p = Project::new();
    assert_bad(&p, "specs/nope.md", &["error: cannot read spec specs/nope.md: no such file"]);
}

#[test]
fn empty_file() {
    let p = Project::new();
    p.write("specs/empty.md", "\n  \n");
    assert_bad(&p, "specs/empty.md", &["error: spec is empty", "--> specs/empty.md"]);
}

#[test]
fn not_utf8() {
    let p = Project::new();
    p.write("specs/bin.md", b"# Spec\n\n- RTO \xff\xfe 2 hours\n".as_slice());
    assert_bad(&p, "specs/bin.md", &["error: spec is not UTF-8 text", "--> specs/bin.md:3"]);
}

#[test]
fn no_requirement() {
    let p = Project::new();
    p.write("specs/prose.md", "# Notes\n\nThis page describes the app.\n");
    assert_bad(&p, "specs/prose.md", &["error: spec has no requirement", "--> specs/prose.md"]);
}

#[test]
fn negative_latency() {
    let p = Project::new();
    p.write("specs/neg.md", "# Perf\n\n- average response under -20 ms\n");
    assert_bad(
        &p,
        "specs/neg.md",
        &[
            "impossible requirement: a latency of -20 ms is impossible",
            "--> specs/neg.md:3",
            "3 | - average response under -20 ms",
        ],
    );
}

#[test]
fn rate_over_100_percent() {
    let p = Project::new();
    p.write("specs/pct.md", "# Perf\n\n\n- at least 120 % of requests successful\n");
    assert_bad(&p, "specs/pct.md", &["a success rate of 120 % is impossible", "--> specs/pct.md:4"]);
}

#[test]
fn two_targets_for_one_kind() {
    let p = Project::new();
    p.write("specs/two.md", "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n- RTO of 30 minutes\n");
    assert_bad(
        &p,
        "specs/two.md",
        &[
            "two different targets for rto: <= 1800 s (recovery-3) here, but <= 7200 s (recovery-1) at line 3",
            "--> specs/two.md:5",
        ],
    );
}
