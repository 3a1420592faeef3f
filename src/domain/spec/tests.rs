//! Reading specs: unit cases for each way a target is written, and for what is not a target.

use super::*;
use crate::domain::requirement::Kind;

fn ids_kinds(spec: &Spec) -> Vec<(String, String, usize)> {
    spec.requirements.iter().map(|r| (r.id.clone(), r.kind.to_string(), r.line)).collect()
}

#[test]
fn bullets_with_explicit_ids_and_front_matter() {
    let text = "---\nregion: eu-west-1\nstack: shop\n---\n# Launch\n\n- REQ-1: handle 2,500 connections per second\n- **REQ-2** average response under 250 ms\n";
    let s = parse("t.md", text).unwrap();
    assert_eq!(ids_kinds(&s), [("REQ-1".into(), "throughput".into(), 7), ("REQ-2".into(), "latency_avg".into(), 8)]);
    assert_eq!(s.context["region"], "eu-west-1");
    assert_eq!(s.context["stack"], "shop");
}

#[test]
fn kiro_acceptance_criteria() {
    let text = "# Requirements\n\n## Requirement 1\n\n**User Story:** As an operator, I want speed.\n\n### Acceptance Criteria\n\n1. WHEN traffic peaks THEN THE SYSTEM SHALL take 2,500 connections per second and answer 99.5 % of requests successfully\n2. IF one availability zone fails THEN THE SYSTEM SHALL survive the loss of one AZ\n3. IF one availability zone fails THEN THE SYSTEM SHALL page the on-call engineer\n";
    let s = parse("k.md", text).unwrap();
    assert_eq!(
        ids_kinds(&s),
        [
            ("1.1".into(), "throughput".into(), 9),
            ("1.1b".into(), "success_rate".into(), 9),
            ("1.2".into(), "az_failure_tolerance".into(), 10),
            ("1.3".into(), "other".into(), 11)
        ]
    );
}

#[test]
fn tables_paragraphs_and_context_section() {
    let text = "# Targets\n\n| ID | Requirement | Target |\n|----|----|----|\n| P-1 | p99 latency | under 900 ms |\n| P-2 | RTO | 2 hours |\n\n## Recovery\n\nThe data must not be older than an RPO of 10 minutes.\n\n## Context\n\n- Region: us-east-1\n- Endpoint URL: `http://127.0.0.1:8080/health`\n";
    let s = parse("t.md", text).unwrap();
    assert_eq!(
        ids_kinds(&s),
        [
            ("P-1".into(), "latency_p99".into(), 5),
            ("P-2".into(), "rto".into(), 6),
            ("recovery-1".into(), "rpo".into(), 10)
        ]
    );
    assert_eq!(s.context["endpoint"], "http://127.0.0.1:8080/health");
    assert_eq!(s.context["region"], "us-east-1");
}

#[test]
fn lines_of_figures_in_a_paragraph() {
    let s = parse(
        "p.md",
        "# Search\n\nIt must serve 900 requests per second. Results\nmust arrive with a p95 under 350 ms.\n",
    )
    .unwrap();
    assert_eq!(s.requirements.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 4]);
}

#[test]
fn sections_leads_and_columns_say_what_their_figures_are() {
    let doc = "# Checkout\n\n## Results\n\n| Metric | Value |\n|---|---|\n| p95 latency | 515 ms |\n\n\
               ## Targets\n\nLatency (p95)\n\n- API: < 300 ms\n\n\
               | Percentile | Latency | Target | Status |\n|---|---|---|---|\n| P99 | 2.3 ms | < 100 ms | ok |\n\n\
               ## Alerts\n\n- Page when p99 latency exceeds 800 ms.\n";
    let s = parse("x.md", doc).unwrap();
    let got: Vec<(String, f64, usize)> = s.requirements.iter().map(|r| (r.kind.to_string(), r.value, r.line)).collect();
    assert_eq!(got, [("latency_p95".to_string(), 300.0, 13), ("latency_p99".to_string(), 100.0, 17)]);
    let why = |figure: &str| s.unread.iter().find(|u| u.figure == figure).map(|u| u.why.clone()).unwrap_or_default();
    assert!(why("515 ms").contains("\"Results\", a section of measured results"), "{:?}", s.unread);
    assert!(why("2.3 ms").contains("in the column \"Latency\""), "{:?}", s.unread);
    assert!(why("800 ms").contains("alerts"), "{:?}", s.unread);
}

#[test]
fn zero_needs_no_unit_next_to_the_point_it_bounds() {
    let doc = "# DR\n\n| Data | RPO target | Method |\n|---|---|---|\n| Code | 0 (no data loss) | Git |\n\
               | Orders | 1 hour | backups |\n\n## Ledger\n\n- RPO: 0 (synchronous replication)\n- Latency: 0\n";
    let s = parse("x.md", doc).unwrap();
    let got: Vec<(String, f64, usize)> = s.requirements.iter().map(|r| (r.kind.to_string(), r.value, r.line)).collect();
    assert_eq!(got, [("rpo".into(), 0.0, 5), ("rpo".into(), 3600.0, 6), ("rpo".into(), 0.0, 10)]);
}

#[test]
fn a_column_named_target_with_a_remark_in_brackets_holds_targets() {
    let doc = "# Bus\n\n| Metric | Target (source) | Status |\n|---|---|---|\n| p99 latency | < 6 ms (issue 19) | proposed |\n";
    let s = parse("x.md", doc).unwrap();
    assert_eq!(s.requirements.len(), 1, "{:?}", s.unread);
    assert_eq!((s.requirements[0].kind.to_string(), s.requirements[0].value), ("latency_p99".into(), 6.0));
    // A column of notes stays one, whatever its brackets say.
    assert_eq!(classify("Source (target doc)"), Col::NotTarget);
    assert_eq!(classify("Current (target)"), Col::NotTarget);
}

#[test]
fn the_metric_column_names_the_figure_before_its_description() {
    let doc = "# Keys\n\n| Metric | Target | Description |\n|---|---|---|\n\
               | RTO (Recovery Time Objective) | 15 minutes | Maximum acceptable downtime |\n";
    let s = parse("x.md", doc).unwrap();
    assert_eq!(s.requirements.len(), 1);
    assert_eq!((s.requirements[0].kind.to_string(), s.requirements[0].scope.clone()), ("rto".into(), None));
}

#[test]
fn k6_thresholds_are_read_in_a_results_section_and_nothing_else_in_the_summary() {
    let doc = "# Load test results\n\n```\nhttp_req_duration..: avg=32ms p(95)=88ms p(99)=141ms\n\
               http_reqs..........: 120000  999.8/s\n\
               ✓ http_req_failed....: rate<0.01\n\
               ✗ http_req_duration..: p(95)<500  (312ms — PASS)\n\
               ✓ checks.............: rate>0.99\n```\n\n## Script\n\n```js\n\
               export const options = { thresholds: {\n  'http_req_duration{cache:warm}': ['p(50)<30', 'avg<20'],\n\
               http_reqs: ['rate>1000', 'count>5'],\n} };\n```\n";
    let s = parse("x.md", doc).unwrap();
    let got: Vec<(String, String, f64, usize, Option<String>)> = s
        .requirements
        .iter()
        .map(|r| (r.kind.to_string(), r.op.symbol().to_string(), r.value, r.line, r.scope.clone()))
        .collect();
    let warm = Some("cache:warm".to_string());
    assert_eq!(
        got,
        [
            ("success_rate".into(), ">".into(), 99.0, 6, None),
            ("latency_p95".into(), "<".into(), 500.0, 7, None),
            ("latency_p50".into(), "<".into(), 30.0, 15, warm.clone()),
            ("latency_avg".into(), "<".into(), 20.0, 15, warm),
            ("throughput".into(), ">".into(), 1000.0, 16, Some("Script".into())),
        ]
    );
    // The summary's measurements and the result after a threshold stay what they are.
    let unread: Vec<&str> = s.unread.iter().map(|u| u.figure.as_str()).collect();
    assert!(unread.contains(&"999.8/s") && unread.contains(&"312ms"), "{unread:?}");
    assert!(s.unread.iter().all(|u| u.why == IN_CODE), "{:?}", s.unread);
}

#[test]
fn a_figure_called_the_target_is_read_among_results() {
    let doc = "# Bench\n\n## Result\n\n- **p99 latency**: PASSES (213 ms vs 500 ms target)\n\n\
               | Panel | Shows |\n|---|---|\n| Availability (SLO 99.5%) | colour at 99% / 99.5% |\n";
    let s = parse("x.md", doc).unwrap();
    let got: Vec<(String, f64, usize)> = s.requirements.iter().map(|r| (r.kind.to_string(), r.value, r.line)).collect();
    assert_eq!(got, [("latency_p99".into(), 500.0, 5), ("availability".into(), 99.5, 9)]);
    let unread: Vec<&str> = s.unread.iter().map(|u| u.figure.as_str()).collect();
    assert!(unread.contains(&"213 ms") && unread.contains(&"99%"), "{unread:?}");
}

#[test]
fn every_figure_with_a_unit_is_read_or_listed() {
    let doc = "# Progress\n\n| Metric | NFR | Iter 3 |\n|---|---|---|\n| p95 latency | <500ms | 274ms |\n\
               | p50 latency | — | 8.9ms |\n\n### Политика по бюджету ошибок\n\n\
               | Расход за 30 дней | Действие |\n|---|---|\n| < 25% | релизы |\n| 100% | SEV-1 |\n\n- CPU: 500 m\n";
    let s = parse("x.md", doc).unwrap();
    assert_eq!(s.requirements.len(), 1);
    assert!(s.questions.is_empty(), "{:?}", s.questions);
    let why = |figure: &str| {
        s.unread
            .iter()
            .find(|u| u.figure == figure)
            .map(|u| u.why.clone())
            .unwrap_or_else(|| panic!("{figure}: {:?}", s.unread))
    };
    assert!(why("8.9ms").contains("\"Iter 3\", which holds no targets"));
    assert!(why("30 дней").contains("table header"));
    assert!(why("25%").contains("budgets"));
    assert!(why("500 m").contains("millicores"));
}

#[test]
fn diagnostics_not_refusals() {
    let s = parse("x.md", "# A\n\n- average response under -3 ms\n- RTO 2 h\n").unwrap();
    let e = s.refusal("x.md").unwrap();
    assert_eq!(e.line, Some(3));
    assert!(matches!(e.kind, ErrorKind::Impossible(_)));
    // Two different targets: a question with both readings, not a refusal.
    let s = parse("x.md", "# A\n\n- RTO 2 h\n- RTO of 4 hours\n").unwrap();
    assert!(s.requirements.is_empty() && s.refusal("x.md").is_none());
    let q = &s.questions[0];
    assert_eq!((q.id.as_str(), q.line, q.other_line), ("q-4", 4, Some(3)));
    assert!(
        q.why.starts_with("two different targets for rto: <= 7200 s at line 3 and <= 14400 s at line 4"),
        "{}",
        q.why
    );
    assert_eq!(q.readings.iter().map(|r| r.value).collect::<Vec<_>>(), [7200.0, 14400.0]);
    // Answered: the chosen reading is the requirement.
    let mut answered = s.clone();
    let a = Answer { choice: Some(2), by: "ana".into(), at: "t".into() };
    answered.apply_answers(&BTreeMap::from([(q.key.clone(), a)]));
    assert_eq!((answered.requirements.len(), answered.requirements[0].value), (1, 14400.0));
    assert!(answered.questions.is_empty());
    assert_eq!(parse("x.md", "  \n").unwrap_err().kind, ErrorKind::Empty);
    let s = parse("x.md", "# Just a title\n\nHello.\n").unwrap();
    assert!(matches!(s.refusal("x.md").unwrap().kind, ErrorKind::NoRequirements { .. }));
    let e = parse_bytes("x.md", b"# A\n\n- RTO \xff 2h\n").unwrap_err();
    assert_eq!((e.kind, e.line), (ErrorKind::NotUtf8, Some(3)));
}

#[test]
fn same_target_twice_is_one_requirement() {
    let s = parse("x.md", "- RTO 2 h\n- RTO of 120 minutes\n").unwrap();
    assert_eq!(s.requirements.len(), 1);
    assert_eq!(s.requirements[0].lines, [1, 2]);
    assert!(s.refusal("x.md").is_none());
}

#[test]
fn key_value_lines_in_a_code_block_named_as_targets_are_read() {
    let doc = "# Perf\n\n**Regional Performance Targets**:\n```\nEurope:\n- P95 Latency: < 180ms\n\nAsia:\n- P95 Latency: < 200ms\n```\n\nMore text.\n";
    let s = parse("x.md", doc).unwrap();
    let got: Vec<(Option<&str>, f64, usize)> =
        s.requirements.iter().map(|r| (r.scope.as_deref(), r.value, r.line)).collect();
    assert_eq!(got, [(Some("Europe"), 180.0, 6), (Some("Asia"), 200.0, 9)]);
    // Code stays code: a language, a lead that names no targets, or a line that is not `key: value`.
    for doc in [
        "**Targets**:\n```js\np95: < 180ms\n```\n",
        "**Results**:\n```\np95: < 180ms\n```\n",
        "**Targets**:\n```\np95: < 180ms\ncheck(res, { ok: true })\n```\n",
    ] {
        let s = parse("x.md", doc);
        assert!(s.as_ref().map_or(true, |s| s.requirements.is_empty()), "{doc}: {s:?}");
    }
}

#[test]
fn a_tier_the_spec_chooses_leaves_the_others_a_menu() {
    let table = "# Uptime\n\n| Tier | Target Uptime | Maximum Downtime/Month |\n|---|---|---|\n| Standard | 99.9% | 43m |\n| Enterprise | 99.95% | 21m |\n| Critical | 99.99% | 4m |\n";
    // Each tier its own promise while none is chosen (an SLA page for all customers) ...
    let all = parse("x.md", table).unwrap();
    let values: Vec<f64> = all.requirements.iter().map(|r| r.value).collect();
    assert_eq!(values, [99.9, 99.95, 99.99]);
    assert!(
        all.unread.iter().any(|u| u.line == 5 && u.figure == "43m"),
        "a downtime allowance per month is not a target"
    );
    // ... and one target once a line outside the table chooses a tier, with its figure.
    let chosen = parse("x.md", &format!("{table}\n**Default target: 99.95% uptime (Enterprise tier)**\n")).unwrap();
    let got: Vec<(f64, Vec<usize>)> = chosen.requirements.iter().map(|r| (r.value, r.all_lines())).collect();
    assert_eq!(got, [(99.95, vec![6, 9])]);
    assert!(chosen
        .unread
        .iter()
        .any(|u| u.line == 5 && u.why.contains("menu of tiers; line 9 chooses \"Enterprise\"")));
    // A line naming a tier with another figure chooses nothing.
    let other = parse("x.md", &format!("{table}\nDefault target: 99.5% uptime (Enterprise tier)\n")).unwrap();
    assert_eq!(other.requirements.iter().filter(|r| r.kind == Kind::Availability).count(), 4);
}

#[test]
fn scopes_keep_targets_apart() {
    let s = parse("x.md", "# SLOs\n\n## Checkout API\n\n- p99 under 300 ms\n\n## Search API\n\n- p99 under 800 ms\n- checkout: p99 under 300 ms\n").unwrap();
    let got: Vec<(Option<&str>, f64)> = s.requirements.iter().map(|r| (r.scope.as_deref(), r.value)).collect();
    assert_eq!(got, [(Some("Checkout API"), 300.0), (Some("Search API"), 800.0)]);
    assert_eq!(s.requirements[0].lines, [5, 10]);
    assert!(s.refusal("x.md").is_none(), "{:?}", s.diagnostics);
}

#[test]
fn a_notification_bound_is_read_after_its_verb() {
    let read = |t: &str| -> Vec<(Kind, f64)> {
        parse("x.md", t).unwrap().requirements.iter().map(|r| (r.kind.clone(), r.value)).collect()
    };
    assert_eq!(read("# Ops\n\n- Page on-call within 2 min of an alert.\n"), [(Kind::Notification, 120.0)]);
    // "within 10 minutes of an outage": the notification's bound, not a downtime target.
    assert_eq!(
        read("# Ops\n\n- The system shall notify the on-call engineer within 10 minutes of an outage alert.\n"),
        [(Kind::Notification, 600.0)]
    );
    let bare = parse("x.md", "# Ops\n\n- THE SYSTEM SHALL notify the on-call engineer when an alarm fires.\n").unwrap();
    assert_eq!((bare.requirements[0].kind.clone(), bare.requirements[0].value), (Kind::Notification, 300.0));
    assert!(bare.requirements[0].note.as_deref().unwrap_or_default().contains("no bound written"));
    // No person, or no alarm: not a notification requirement.
    assert!(
        !read("# Ops\n\n- Notify users by e-mail within 1 hour of an order.\n").contains(&(Kind::Notification, 3600.0))
    );
    assert!(read("# Ops\n\n- Notify the on-call engineer within 5 minutes.\n")
        .iter()
        .all(|r| r.0 != Kind::Notification));
    // Measured, not promised: a results section is not read.
    assert!(read("# Results\n\n- We paged on-call within 3 minutes of the alert.\n")
        .iter()
        .all(|r| r.0 != Kind::Notification));
}

#[test]
fn sentences_split() {
    use super::read::sentences;
    let t = "It must serve 900 rps. Results must arrive e.g. fast. 99.9 % must succeed.";
    let got: Vec<&str> = sentences(t).into_iter().map(|(s, e)| &t[s..e]).collect();
    assert_eq!(got, ["It must serve 900 rps.", "Results must arrive e.g. fast.", "99.9 % must succeed."]);
}
