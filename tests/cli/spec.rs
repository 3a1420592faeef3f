//! `flow spec` and the bad-input contract: each error names file and line, exits 3, writes
//! nothing to the state store.

use crate::support::Project;
use flow::exit::{BAD_SPEC, REFUSED};

#[test]
fn launch_spec_has_eight_measurable_requirements() {
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
            "notification"
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
    // "notify the on-call engineer when an alarm fires": no bound written, the default one.
    assert_eq!(targets[7], ("<=".into(), 300.0, "s".into()));
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
    nothing_stored(p);
}

fn nothing_stored(p: &Project) {
    let s = p.flow(&["status"]);
    s.expect(REFUSED);
    assert!(s.stderr.contains("no runbook yet"), "{}", s.stderr);
}

/// A readable document with a problem: `flow spec` shows it among its diagnostics and exits 0;
/// `flow plan` refuses it (exit 3) naming file and line; nothing reaches the state store.
fn assert_diagnosed(p: &Project, file: &str, shown: &str, refused: &[&str]) {
    let r = p.flow(&["spec", file]);
    r.expect(0);
    assert!(r.stdout.contains("diagnostics:"), "{}", r.stdout);
    assert!(r.stdout.contains(shown), "`flow spec {file}`: expected `{shown}` in:\n{}", r.stdout);
    let j = p.flow(&["spec", file, "--json"]);
    j.expect(0);
    // The same diagnostics in JSON, each with its level and message.
    let diags = j.json()["diagnostics"].as_array().cloned().unwrap_or_default();
    assert!(!diags.is_empty());
    for d in &diags {
        let m = d["message"].as_str().unwrap();
        assert!(r.stdout.contains(m) && d["level"].is_string(), "{d} not in:\n{}", r.stdout);
    }
    let r = p.flow(&["plan", file]);
    r.expect(BAD_SPEC);
    for e in refused {
        assert!(r.stderr.contains(e), "`flow plan {file}`: expected `{e}` in:\n{}", r.stderr);
    }
    nothing_stored(p);
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
    assert_diagnosed(
        &p,
        "specs/prose.md",
        "no requirement found",
        &["error: spec has no requirement", "--> specs/prose.md"],
    );
}

#[test]
fn negative_latency() {
    let p = Project::new();
    p.write("specs/neg.md", "# Perf\n\n- average response under -20 ms\n");
    assert_diagnosed(
        &p,
        "specs/neg.md",
        "line 3: impossible requirement: a latency of -20 ms is impossible",
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
    assert_diagnosed(
        &p,
        "specs/pct.md",
        "line 4: impossible requirement: a success rate of 120 % is impossible",
        &["a success rate of 120 % is impossible", "--> specs/pct.md:4"],
    );
}

#[test]
fn two_targets_for_one_kind() {
    // Not a refusal: a question with both readings; the plan covers what is certain, and the
    // answer settles the rest.
    let p = Project::new();
    p.write("specs/two.md", "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n- RTO of 30 minutes\n");
    let shown = p.flow(&["spec", "specs/two.md"]);
    shown.expect(0);
    assert!(
        shown.stdout.contains(
            "q-5 (line 5): two different targets for rto: <= 7200 s at line 3 and <= 1800 s at line 5: which holds?"
        ) && shown.stdout.contains("1. rto <= 2 h (line 3)")
            && shown.stdout.contains("2. rto <= 30 min (line 5)"),
        "{}",
        shown.stdout
    );
    let plan = p.flow(&["plan", "specs/two.md", "--json"]);
    plan.expect(0);
    let j = plan.json();
    assert_eq!(j["requirements"].as_array().unwrap().len(), 1, "only the RPO is certain: {j}");
    assert_eq!(j["questions"][0]["id"], "q-5", "{j}");
    let st = p.flow(&["status"]).stdout;
    assert!(st.contains("questions (1)") && st.contains("flow answer q-5 -r two --use N"), "{st}");
    assert_eq!(p.flow(&["report", "--check"]).code, flow::exit::FAILED, "an open question is no GO");
    let r = p.flow(&["answer", "q-5", "--use", "3"]);
    assert_eq!(r.code, flow::exit::USAGE, "{}", r.stderr);
    p.flow(&["answer", "q-5", "--use", "2", "--as", "dr-lead", "--comment", "the DR plan is newer"]).expect(0);
    let again = p.flow(&["plan", "specs/two.md", "--json"]);
    again.expect(0);
    let reqs = again.json()["requirements"].as_array().unwrap().clone();
    let rto = reqs.iter().find(|r| r["kind"] == "rto").expect("the RTO, as answered");
    assert_eq!((rto["value"].as_f64(), rto["line"].as_u64()), (Some(1800.0), Some(5)));
    assert!(rto["note"].as_str().unwrap().contains("chosen by"), "{rto}");
    assert!(p.flow(&["log"]).stdout.contains("answered q-5: reading 2: the DR plan is newer"));
    // An edit of the line opens the question again.
    p.write("specs/two.md", "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n- RTO of 45 minutes\n");
    let s = p.flow(&["spec", "specs/two.md", "--json"]).json();
    assert_eq!(s["questions"].as_array().map(Vec::len), Some(1));
}

#[test]
fn headings_tables_and_figures_not_read() {
    let p = Project::new();
    p.write(
        "specs/nfr.md",
        "# Checkout service\n\n## Latency (p99)\n\n- checkout API: under 300 ms\n- search: under 800 ms\n\n## Targets\n\n| Metric | Target | Current |\n|---|---|---|\n| Error rate | ≤ 0.5 % | 1.2 % |\n| Throughput | 1 200 req/s | 800 req/s |\n\n## Notes\n\nMean time to recover is 30 minutes.\nCache hit rate should be 90 %.\n",
    );
    let r = p.flow(&["spec", "specs/nfr.md", "--json"]);
    r.expect(0);
    let v = r.json();
    let got: Vec<(String, String, f64, u64, String)> = v["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().into(),
                r["op"].as_str().unwrap().into(),
                r["value"].as_f64().unwrap(),
                r["line"].as_u64().unwrap(),
                r["scope"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("latency_p99".into(), "<".into(), 300.0, 5, "checkout API".into()),
            ("latency_p99".into(), "<".into(), 800.0, 6, "search".into()),
            // An error-rate cap is a success-rate floor; the Current column is not a target.
            ("success_rate".into(), ">=".into(), 99.5, 12, "".into()),
            ("throughput".into(), ">=".into(), 1200.0, 13, "".into()),
            // A promise whose only figure is a look-alike: kept, as not measurable.
            ("other".into(), "==".into(), 1.0, 18, "".into()),
        ]
    );
    // Nothing silently dropped: the figures that made no requirement, each with its line.
    let unread: Vec<(u64, String)> = v["unread"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["line"].as_u64().unwrap(), u["figure"].as_str().unwrap().into()))
        .collect();
    assert!(unread.contains(&(17, "30 minutes".into())), "{unread:?}");
    assert!(unread.contains(&(18, "90 %".into())), "{unread:?}");
    for u in v["unread"].as_array().unwrap() {
        assert!(u["text"].is_string() && u["why"].is_string(), "{u}");
    }
    let text = p.flow(&["spec", "specs/nfr.md"]);
    text.expect(0);
    assert!(text.stdout.contains("not read as requirements:"), "{}", text.stdout);
    assert!(
        text.stdout.contains("line 17: '30 minutes' not read as a requirement: a mean time to recover"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("line 18: '90 %' not read as a requirement: a cache hit rate"), "{}", text.stdout);
}

#[test]
fn nothing_measurable_plans_with_a_warning() {
    let p = Project::new();
    p.write(
        "specs/vague.md",
        "# Notes\n\n- The UI should feel modern.\n- THE SYSTEM SHALL notify the on-call engineer.\n",
    );
    let r = p.flow(&["plan", "specs/vague.md"]);
    r.expect(0);
    assert!(r.stderr.contains("warning: specs/vague.md: nothing measurable"), "{}", r.stderr);
    let j = p.flow(&["plan", "specs/vague.md", "--json"]);
    j.expect(0);
    let notes = j.json()["notes"].as_array().cloned().unwrap_or_default();
    assert!(notes.iter().any(|n| n.as_str().unwrap().contains("nothing measurable")), "{notes:?}");
}

#[test]
fn availability_is_verified_by_monitoring() {
    let p = Project::new();
    p.write(
        "specs/svc.md",
        "# Svc\n\n- THE SYSTEM SHALL be available 99.9 % of the time.\n- p99 latency under 300 ms\n",
    );
    let s = p.flow(&["spec", "specs/svc.md", "--json"]);
    s.expect(0);
    let r = &s.json()["requirements"][0];
    assert_eq!(
        (r["kind"].as_str(), r["op"].as_str(), r["value"].as_f64()),
        (Some("availability"), Some(">="), Some(99.9))
    );
    p.flow(&["plan", "specs/svc.md"]).expect(0);
    let st = p.flow(&["status", "--json"]);
    st.expect(0);
    let reqs = st.json()["requirements"].as_array().cloned().unwrap();
    let verdicts: Vec<&str> = reqs.iter().map(|r| r["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["monitoring", "unverified"], "{reqs:?}");
    let text = p.flow(&["status"]);
    assert!(text.stdout.contains("verified by monitoring after launch"), "{}", text.stdout);
}
