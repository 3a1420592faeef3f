//! `flow report` and `flow graph` on a runbook that really ran: a load test, both drills and a
//! command, against the test server. The HTML is loaded in headless Chromium (Debian's, which
//! scripts/test installs) through the DevTools protocol (`tests/browser/check.py`): no console
//! error, no network request, every requirement and the decision in the rendered page, charts
//! drawn; the screenshot stays in `target/report-test.png` for a person to look at.

use std::path::Path;

use crate::support::{later, Project, Server};
use flow::exit::{OK, WAITING_APPROVAL};

/// A runbook whose seven launch requirements have evidence; the throughput target is out of
/// reach of a 1 s test at 40 req/s, so the decision is NO-GO with 1.1 failing.
fn ran(server: &Server) -> Project {
    let p = Project::new();
    p.write(
        "specs/rel.md",
        "# Release\n\n- handle 2,500 requests per second\n- average response under 250 ms\n- at least 99 % of requests successful\n\
         - THE SYSTEM SHALL survive the loss of one Availability Zone.\n- THE SYSTEM SHALL recover with at most 1 minute of downtime.\n\
         - RTO 2 hours\n- RPO 10 minutes\n- The team shall rehearse the launch.\n",
    );
    p.flow(&["plan", "specs/rel.md"]).expect(OK);
    let down = p.path("down.flag").display().to_string();
    let up = p.path("up.flag").display().to_string();
    p.edit_steps(
        "rel",
        &format!(
            r#"
            [[steps]]
            id = "load"
            kind = "loadtest"
            gate = true
            covers = ["release-1", "release-2", "release-3"]
            params = {{ url = "{ok}", rate = 40, duration_s = 2 }}
            [[steps]]
            id = "az"
            kind = "failover_drill"
            gate = true
            needs = ["load"]
            covers = ["release-4", "release-5"]
            params = {{ endpoint = "{unless}", inject = "touch {down}; sleep 0.5; rm {down}", duration_s = 1 }}
            [[steps]]
            id = "restore"
            kind = "restore_drill"
            gate = true
            covers = ["release-6", "release-7"]
            params = {{ restore = "sleep 0.3; touch {up}", probe = "{if_up}", worst_rpo_s = 300 }}
            [[steps]]
            id = "go"
            kind = "approval"
            gate = true
            needs = ["az", "restore"]
            params = {{ summary = "launch?" }}
            "#,
            ok = server.url("/ok"),
            unless = server.url(&format!("/unless?path={down}")),
            if_up = server.url(&format!("/if?path={up}")),
        ),
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    for step in ["load", "restore"] {
        p.approve(&[step, "--as", "ana", "--comment", "measured in the test"]).expect(OK);
    }
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["az", "--as", "ana"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p
}

#[test]
fn the_report_in_four_formats_and_a_real_browser() {
    let server = Server::start();
    let p = ran(&server);

    let j = p.flow(&["report", "--format", "json"]);
    j.expect(OK);
    let r = j.json();
    assert_eq!(r["version"], 1);
    assert_eq!(r["decision"]["word"], "NO-GO", "{}", r["decision"]);
    assert_eq!(r["decision"]["failing"], serde_json::json!(["release-1"]));
    assert_eq!(r["decision"]["by_hand"], serde_json::json!(["release-8"]));
    let load = r["steps"].as_array().unwrap().iter().find(|s| s["id"] == "load").unwrap();
    assert!(load["load"]["series"].as_array().unwrap().len() >= 2, "{load}");
    assert!(load["load"]["series"][0]["p99_ms"].as_f64().unwrap() > 0.0, "per-second percentiles");

    // JUnit: one case per requirement, the failing one with target and measure.
    let x = p.flow(&["report", "--format", "junit"]);
    x.expect(OK);
    assert_eq!(x.stdout.matches("<testcase ").count(), 8);
    assert!(x.stdout.contains("tests=\"8\" failures=\"1\" skipped=\"1\""), "{}", x.stdout);
    // Passing cases carry their figures too, as properties and in system-out.
    assert_eq!(x.stdout.matches("<property name=\"target\"").count(), 8, "{}", x.stdout);
    assert!(x.stdout.contains("<system-out>pass: target"), "{}", x.stdout);
    assert!(
        x.stdout.contains(
            "<failure message=\"target &gt;= 2,500 req/s (specs/rel.md:3), measured throughput 40 req/s (load)"
        ),
        "{}",
        x.stdout
    );

    // Markdown: tables, the graph, charts as files beside it.
    p.flow(&["report", "--format", "md", "-o", "out/report.md"]).expect(OK);
    let md = p.read("out/report.md");
    assert!(
        md.contains("**NO-GO**\n\n- Evidence: does not support GO; failing: release-1\n- Decision: not decided yet")
            && md.contains("```mermaid\nflowchart TD"),
        "{md}"
    );
    for chart in ["load-latency", "load-throughput", "load-distribution", "az-probes", "restore-restore"] {
        let name = format!("report-{chart}.svg");
        assert!(md.contains(&format!("]({name})")), "{name} linked");
        let svg = p.read(&format!("out/{name}"));
        assert!(svg.starts_with("<svg") && (svg.contains("<polyline") || svg.contains("<rect")), "{name}");
    }

    // HTML, self-contained, in a real browser. Without -o it goes to a file named after the
    // runbook, not to the terminal; `-o -` prints it. A fixed clock: the report names the
    // time it was made, and two runs may straddle a second.
    p.env("FLOW_NOW", &later(60));
    let written = p.flow(&["report"]);
    written.expect(OK);
    assert!(written.stdout.is_empty(), "{}", written.stdout);
    assert!(
        written.stderr.starts_with("rel-report.html: NO-GO") && written.stderr.contains("5 charts inline"),
        "{}",
        written.stderr
    );
    let html = p.read("rel-report.html");
    let printed = p.flow(&["report", "-o", "-"]);
    assert_eq!(printed.stdout, html);
    for fetched in ["<script", " src=", "<link", "@import", "url("] {
        assert!(!html.contains(fetched), "`{fetched}` in the report: nothing is fetched or run");
    }
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/report-test.png");
    let seen = crate::support::browse(&p.path("rel-report.html"), &shot);
    assert_eq!(seen["errors"], serde_json::json!([]), "console errors");
    assert_eq!(seen["requests"], serde_json::json!([]), "network requests");
    let dom = &seen["dom"];
    let text = dom["text"].as_str().unwrap();
    assert!(text.contains("NO-GO"), "{text}");
    for n in 1..=8 {
        assert!(text.contains(&format!("release-{n}")), "release-{n} in the page");
    }
    for word in ["pass", "fail", "check by hand", "(as ana)"] {
        assert!(text.contains(word), "`{word}` in the page");
    }
    assert_eq!(dom["scripts"], 0);
    assert!(dom["charts"].as_u64().unwrap() >= 5, "{dom}");
    assert!(dom["lines"].as_u64().unwrap() >= 5, "drawn lines: {dom}");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "the screenshot");
}

#[test]
fn the_graph_shows_states_gates_and_coverage() {
    let p = Project::new();
    p.write("specs/r.md", "# Recovery\n\n- RTO 2 hours\n");
    p.flow(&["plan", "specs/r.md"]).expect(OK);
    let m = p.flow(&["graph"]);
    m.expect(OK);
    assert!(m.stdout.starts_with("flowchart TD\n"), "{}", m.stdout);
    assert!(
        m.stdout.contains(
            "restore_drill[\"restore-drill [gate]<br/>restore_drill · pending<br/>verifies recovery-1\"]:::pending"
        ),
        "{}",
        m.stdout
    );
    assert!(m.stdout.contains("changeset_backup --> restore_drill"), "{}", m.stdout);
    let d = p.flow(&["graph", "--format", "dot"]);
    d.expect(OK);
    assert!(d.stdout.starts_with("digraph \"recovery\"") || d.stdout.starts_with("digraph \"r\""), "{}", d.stdout);
    assert!(d.stdout.contains("\"changeset-backup\" -> \"restore-drill\";"), "{}", d.stdout);
    assert!(d.stdout.contains("penwidth=2.5"), "gates drawn thicker");
}
