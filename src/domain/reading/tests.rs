//! Reading sentences: each rule with the sentences that show it.

use super::*;

/// Read as in a section of targets.
fn got(text: &str) -> Vec<(String, Op, f64)> {
    let r = read(&quantity::normalize(text), &Hints { targets: true, ..Hints::default() });
    r.found.iter().map(|f| (f.kind.to_string(), f.op, f.value)).collect()
}

fn one(text: &str) -> (String, Op, f64) {
    let g = got(text);
    assert_eq!(g.len(), 1, "{text}: {g:?}");
    g[0].clone()
}

#[test]
fn figures_in_prose() {
    use Op::*;
    let table: &[(&str, &str, Op, f64)] = &[
        ("handle 2,500 connections per second", "throughput", Ge, 2500.0),
        ("serve 2500 requests/s", "throughput", Ge, 2500.0),
        ("2.5k requests per second", "throughput", Ge, 2500.0),
        ("peak load of 150,000 per minute", "throughput", Ge, 2500.0),
        ("handle up to 2,500 rps", "throughput", Ge, 2500.0),
        ("the average response time is under 250 ms", "latency_avg", Lt, 250.0),
        ("mean latency at most 0.25 seconds", "latency_avg", Le, 250.0),
        ("responses within 200 milliseconds on average", "latency_avg", Le, 200.0),
        ("p99 latency below 800 ms", "latency_p99", Lt, 800.0),
        ("the 95th percentile response time within 1 second", "latency_p95", Le, 1000.0),
        ("median response time under 80 ms", "latency_p50", Lt, 80.0),
        ("95 % of requests complete within 300 ms", "latency_p95", Le, 300.0),
        ("for 99 % of calls the API responds in under 1 second", "latency_p99", Lt, 1000.0),
        ("at least 99.5 % of requests are successful", "success_rate", Ge, 99.5),
        ("success rate of at least 99.9%", "success_rate", Ge, 99.9),
        ("error rate at most 0.1 %", "success_rate", Ge, 99.9),
        ("error rate below 1%", "success_rate", Gt, 99.0),
        ("at most 0.1 % of requests may fail", "success_rate", Ge, 99.9),
        ("availability of 99.95 %", "availability", Ge, 99.95),
        ("four nines of uptime", "availability", Ge, 99.99),
        ("with at most 1 minute of downtime", "failover_downtime", Le, 60.0),
        ("failover downtime under 45 s", "failover_downtime", Lt, 45.0),
        ("RTO 2h", "rto", Le, 7200.0),
        ("recovery time objective of 2 hours 30 minutes", "rto", Le, 9000.0),
        ("RPO: 10 minutes", "rpo", Le, 600.0),
        ("lose at most 5 min of data", "rpo", Le, 300.0),
        ("may not be higher than 120 ms on average", "latency_avg", Le, 120.0),
    ];
    for (text, kind, op, value) in table {
        let (k, o, v) = one(text);
        assert_eq!((k.as_str(), o, v), (*kind, *op, *value), "{text}");
    }
}

#[test]
fn figures_bind_to_their_own_labels() {
    assert_eq!(got("RTO 2 h and RPO 10 min"), [("rto".into(), Op::Le, 7200.0), ("rpo".into(), Op::Le, 600.0)]);
    assert_eq!(
        got("an RPO of 15 minutes and an RTO of 4 hours"),
        [("rpo".into(), Op::Le, 900.0), ("rto".into(), Op::Le, 14_400.0)]
    );
    assert_eq!(got("4 hours RTO, 15 minutes RPO"), [("rto".into(), Op::Le, 14_400.0), ("rpo".into(), Op::Le, 900.0)]);
    assert_eq!(
        got("The RTO and RPO are 1 hour and 5 minutes respectively"),
        [("rto".into(), Op::Le, 3600.0), ("rpo".into(), Op::Le, 300.0)]
    );
    assert_eq!(
        got("p99 latency under 300 ms and average under 100 ms"),
        [("latency_p99".into(), Op::Lt, 300.0), ("latency_avg".into(), Op::Lt, 100.0)]
    );
}

#[test]
fn look_alikes_are_not_targets() {
    for text in [
        "Mean time to recover (MTTR) shall be under 30 minutes",
        "Support tickets get a first response within 4 hours",
        "The cache hit rate stays above 90 %",
        "Storage throughput of 250 MB/s",
        "CPU utilisation below 70 %",
        "Error budget: 0.1 %",
        "Backups every 5 minutes, kept for 35 days",
        "Client timeout: 30 s",
        "The current p99 is 850 ms",
        "The p95 response time is 40 ms today",
        "a rate limit of 100 requests per second",
    ] {
        let r = read(&quantity::normalize(text), &Hints::default());
        assert!(r.found.is_empty(), "{text}: {:?}", r.found);
        assert!(!r.unread.is_empty(), "{text}: its figure is reported unread");
    }
    let r = read("Response time should be under 500 ms", &Hints::default());
    assert!(r.found.is_empty() && r.asks[0].why.contains("no statistic"), "{r:?}");
}

#[test]
fn wrong_way_comparisons_are_not_read() {
    let r = read("p99 latency above 200 ms", &Hints::default());
    assert!(r.found.is_empty());
    assert!(r.unread[0].why.contains("floor"), "{r:?}");
    let r = read("availability less than 99.9 %", &Hints::default());
    assert!(r.found.is_empty());
}

#[test]
fn impossible_figures() {
    let r = read("average response under -5 ms", &Hints::default());
    assert!(r.impossible[0].1.contains("-5 ms"), "{r:?}");
    let r = read("at least 150 % of requests successful", &Hints::default());
    assert!(r.impossible[0].1.contains("150 %"), "{r:?}");
    assert!(!read("error rate at most 120%", &Hints::default()).impossible.is_empty());
}

#[test]
fn hints_from_context() {
    let h = Hints { labels: vec![Label::Stat("99".into())], targets: true, ..Hints::default() };
    assert_eq!(read("checkout: 300 ms", &h).found[0].kind, Kind::LatencyP("99".into()));
    let h = Hints { not_targets: Some("under \"Results\"".into()), ..h };
    let r = read("checkout p99 must be under 300 ms", &h);
    assert!(r.found.is_empty() && r.unread[0].why.contains("Results"), "{r:?}");
    let h = Hints {
        bare_unit: Some((Class::Time, 0.001)),
        op: Some(Op::Le),
        labels: vec![Label::Stat("95".into())],
        ..Hints::default()
    };
    let r = read("200", &h);
    assert_eq!((r.found[0].op, r.found[0].value), (Op::Le, 200.0));
    let h = Hints { condition: true, ..Hints::default() };
    let r = read("WHEN traffic reaches 5,000 requests per second and p99 exceeds 2 s THE system SHALL", &h);
    assert_eq!(r.found.len(), 1);
    assert_eq!(r.unread[0].why, "in the condition (WHEN/IF/WHILE ...), not a target");
}

fn asked(text: &str) -> Vec<String> {
    read(&quantity::normalize(text), &Hints::default()).asks.into_iter().map(|a| a.why).collect()
}

fn unread(text: &str) -> Vec<String> {
    let r = read(&quantity::normalize(text), &Hints::default());
    assert!(r.found.is_empty(), "{text}: {:?}", r.found);
    r.unread.into_iter().map(|u| u.why).collect()
}

#[test]
fn a_figure_is_a_target_only_when_the_text_commits_to_it() {
    // A comparison, a promise, a target named at the figure, or an objective by name.
    for text in
        ["p99 latency under 300 ms", "The API must serve 2,500 requests per second", "a 1000 req/s SLO", "RTO: 4 hours"]
    {
        let r = read(&quantity::normalize(text), &Hints::default());
        assert_eq!(r.found.len(), 1, "{text}: {r:?}");
    }
    // A figure stated as a fact, a wish or an estimate is asked about, with its reading.
    for (text, why) in [
        ("Peak throughput = 20,000 writes/sec", "no comparison and no commitment"),
        ("Stretch target: p99 of 1 s", "Stretch target"),
        ("p99 latency should be ±10 ms", "estimate"),
    ] {
        let r = read(&quantity::normalize(text), &Hints::default());
        assert!(r.found.is_empty(), "{text}: {r:?}");
        assert!(r.asks.first().is_some_and(|a| a.why.contains(why) && a.readings.len() == 1), "{text}: {r:?}");
    }
    assert!(asked("p95 latency would be 200 ms").iter().any(|w| w.contains("is it a target")));
}

#[test]
fn figures_that_are_not_targets_say_why() {
    for (text, why) in [
        ("p95 latency 515 ms ❌", "measured result"),
        ("Alert when p99 latency exceeds 500 ms for 5 minutes", "alert"),
        ("Availability, for example 99.9% monthly", "example"),
        ("Total estimated RTO: 15 minutes", "estimate"),
        ("Monthly downtime must stay below 45 minutes per month", "allowance"),
        ("The API must allow 100 requests per second per client", "per-client"),
        ("Each shard handles 5,000 writes/sec", "per shard"),
        ("The circuit breaker opens at 30% errors", "circuit breaker"),
        ("k6 is injecting 1100 req/s", "load the test applies"),
        ("99.9 % availability is not achievable on one host", "not achievable"),
    ] {
        let whys = unread(text);
        assert!(whys.iter().any(|w| w.contains(why)), "{text}: {whys:?}");
    }
    // A target still to be decided: its example is offered as a reading.
    let whys = asked("Availability: TBD (e.g., 99.9% monthly)");
    assert!(whys[0].contains("TBD"), "{whys:?}");
    // A named target beside an applied load is still the target.
    assert_eq!(got("injecting 1100 req/s (above the 1000 req/s SLO)"), [("throughput".into(), Op::Ge, 1000.0)]);
}

#[test]
fn other_ways_of_writing() {
    use Op::*;
    for (text, kind, op, value) in [
        ("Service A requests that do not return 5xx: 99%", "success_rate", Ge, 99.0),
        ("availability 99,90 %", "availability", Ge, 99.9),
        ("RPO ≤ 1시간", "rpo", Le, 3600.0),
        ("RTO < 5 分鐘", "rto", Lt, 300.0),
        ("задержка p95 < 500 мс", "latency_p95", Lt, 500.0),
        ("время ответа < 30 с (85-й перц.)", "latency_p85", Lt, 30_000.0),
        ("가용성 99.9% 이상", "availability", Ge, 99.9),
        ("The API must respond within 500 ms for 95 % of requests", "latency_p95", Le, 500.0),
        ("must not exceed 100 milliseconds for 99 % of requests", "latency_p99", Le, 100.0),
        ("Users see at most 90 seconds of disruption", "failover_downtime", Le, 90.0),
        ("Writes may be interrupted for at most 45 seconds", "failover_downtime", Le, 45.0),
        ("Failover latency < 30 s", "failover_downtime", Lt, 30.0),
        ("must restore service within 45 seconds after a zone failure", "failover_downtime", Le, 45.0),
        ("must sustain 5,000 authentication requests per second", "throughput", Ge, 5000.0),
        ("must take 20 order placements/sec", "throughput", Ge, 20.0),
        ("must accept 1,500/min", "throughput", Ge, 25.0),
        ("must carry 1M msgs/sec", "throughput", Ge, 1e6),
        ("P95_Latency < 2 seconds", "latency_p95", Lt, 2000.0),
        ("Availability must be 99.7 % (2.5 nines)", "availability", Ge, 99.7),
        ("99.9 % of requests must succeed over a rolling 28-day window", "availability", Ge, 99.9),
        ("at least 99.5 % of requests must succeed", "success_rate", Ge, 99.5),
    ] {
        let (k, o, v) = one(text);
        assert_eq!((k.as_str(), o, v), (kind, op, value), "{text}");
    }
    assert_eq!(
        got("Search must answer <= 300 ms (P95); <= 500 ms at 2x peak"),
        [("latency_p95".into(), Op::Le, 300.0), ("latency_p95".into(), Op::Le, 500.0)]
    );
    assert_eq!(one("two and a half nines").2, 99.5);
    // One statistic for two figures that each say what they apply to.
    let r = read(&quantity::normalize("API P99 latency < 1s for reads, < 3s for writes"), &Hints::default());
    let got: Vec<(String, f64, Option<String>)> =
        r.found.iter().map(|f| (f.kind.to_string(), f.value, f.scope.clone())).collect();
    assert_eq!(
        got,
        [
            ("latency_p99".to_string(), 1000.0, Some("reads".to_string())),
            ("latency_p99".to_string(), 3000.0, Some("writes".to_string()))
        ]
    );
}
