//! Figures, units and comparisons read from prose.

use super::*;

fn one(text: &str) -> (f64, Class) {
    let t = normalize(text);
    let f = figures(&t, true);
    assert_eq!(f.iter().filter(|f| f.class != Class::Bare).count(), 1, "{text}: {f:?}");
    let f = f.into_iter().find(|f| f.class != Class::Bare).unwrap();
    (f.value, f.class)
}

#[test]
fn numbers() {
    for (text, v) in [
        ("1,200 rps", 1200.0),
        ("1 200 rps", 1200.0),
        ("1\u{a0}200 rps", 1200.0),
        ("2\u{202f}500 req/s", 2500.0),
        ("10 000 requests per second", 10_000.0),
        ("1.2k connections per second", 1200.0),
        ("12k ops/s", 12_000.0),
        ("2.5 thousand requests per second", 2500.0),
        ("0.25 s", 0.25),
    ] {
        assert_eq!(one(text).0, v, "{text}");
    }
}

#[test]
fn units() {
    let table: &[(&str, f64, Class)] = &[
        ("250 ms", 0.25, Class::Time),
        ("250\u{a0}ms", 0.25, Class::Time),
        ("1.5 sec", 1.5, Class::Time),
        ("5m", 300.0, Class::Time),
        ("2 hours 30 minutes", 9000.0, Class::Time),
        ("1h30m", 5400.0, Class::Time),
        ("a 15-minute window", 900.0, Class::Time),
        ("4 hrs", 14_400.0, Class::Time),
        ("7 days", 604_800.0, Class::Time),
        ("150,000 requests per minute", 2500.0, Class::Rate),
        ("36,000 requests per hour", 10.0, Class::Rate),
        ("9000 req/min", 150.0, Class::Rate),
        ("400 TPS", 400.0, Class::Rate),
        ("3,000 req/sec", 3000.0, Class::Rate),
        ("1 200 new connections/s", 1200.0, Class::Rate),
        ("50,000 messages per second", 50_000.0, Class::Rate),
        ("120k requests/min", 2000.0, Class::Rate),
        ("99.9 %", 99.9, Class::Percent),
        ("99.9 percent", 99.9, Class::Percent),
        ("250 MB/s", 250.0, Class::Bandwidth),
        ("10 Gbps", 10.0, Class::Bandwidth),
        ("four nines", 99.99, Class::Percent),
        ("three and a half nines", 99.95, Class::Percent),
    ];
    for (text, v, c) in table {
        let (got, class) = one(text);
        assert!((got - v).abs() < 1e-9 && class == *c, "{text}: {got} {class:?}");
    }
    let t = normalize("150,000 per minute");
    assert_eq!(figures(&t, true)[0].class, Class::Rate);
    assert_eq!(figures(&t, false)[0].class, Class::Bare, "a bare rate only in a sentence about load");
    assert_eq!(figures("5 m", true)[0].class, Class::Bare, "5 m is metres, if anything");
}

#[test]
fn ranges_minus_and_dashes() {
    let f = &figures("40–60 rps", true)[0];
    assert_eq!((f.value, f.range), (40.0, Some((40.0, 60.0))));
    let f = &figures("between 2 and 3 seconds", true)[0];
    assert_eq!(f.range, Some((2.0, 3.0)));
    assert_eq!(figures("under -50 ms", true)[0].value, -0.05);
    assert_eq!(figures("RPO – 5 minutes", true)[0].value, 300.0);
    assert_eq!(figures("RTO - 1 hour", true)[0].value, 3600.0);
    assert_eq!(figures("downtime —60 s", true)[0].value, 60.0);
    let dates = figures("Accepted, 2026-09-14.", true);
    assert!(dates.iter().all(|f| f.class == Class::Bare), "{dates:?}");
}

#[test]
fn shares_and_suffixes() {
    let t = "95 % of requests complete within 300 ms";
    let f = figures(t, true);
    assert_eq!(&t[f[0].end..f[0].share_end.unwrap()], " of requests");
    assert_eq!(figures("200 ms or less", true)[0].suffix, Some(Cmp::Op(Op::Le)));
    assert_eq!(figures("800 rps or more", true)[0].suffix, Some(Cmp::Op(Op::Ge)));
    assert_eq!(figures("2,500+ rps", true)[0].suffix, Some(Cmp::Op(Op::Ge)));
    assert_eq!(figures("250 ms max", true)[0].suffix, Some(Cmp::Op(Op::Le)));
}

fn cmp(text: &str) -> Option<Cmp> {
    let t = normalize(text);
    let f = figures(&t, true).into_iter().find(|f| f.class != Class::Bare).unwrap();
    let toks = tokens(&t);
    cmp_before(&toks, token_at(&toks, f.start))
}

#[test]
fn comparisons_and_negation() {
    use Op::*;
    let table: &[(&str, Option<Cmp>)] = &[
        ("under 250 ms", Some(Cmp::Op(Lt))),
        ("at most 30 seconds", Some(Cmp::Op(Le))),
        ("≤ 80 ms", Some(Cmp::Op(Le))),
        ("≥ 99.5 %", Some(Cmp::Op(Ge))),
        (">= 99.5 %", Some(Cmp::Op(Ge))),
        ("may not be higher than 120 ms", Some(Cmp::Op(Le))),
        ("must not exceed 700 ms", Some(Cmp::Op(Le))),
        ("never more than 0.5 %", Some(Cmp::Op(Le))),
        ("must not drop below 800 rps", Some(Cmp::Op(Ge))),
        ("no less than 99.9 %", Some(Cmp::Op(Ge))),
        ("not below 99.95 %", Some(Cmp::Op(Ge))),
        ("no longer than 300 ms", Some(Cmp::Op(Le))),
        ("not to exceed 2 s", Some(Cmp::Op(Le))),
        ("capped at 0.05 %", Some(Cmp::Op(Le))),
        ("Max failover time 45 seconds", Some(Cmp::Op(Le))),
        ("up to 2,500 rps", Some(Cmp::UpTo)),
        ("in under 1 second", Some(Cmp::Op(Lt))),
        ("within an RTO of 2 hours", None),
        ("within 2 hours", Some(Cmp::Op(Le))),
        ("latency under load must be 300 ms", None),
        ("RTO: 4h", None),
        ("If the cache is not warm, latency under 300 ms", Some(Cmp::Op(Lt))),
    ];
    for (text, want) in table {
        assert_eq!(cmp(text), *want, "{text}");
    }
}

#[test]
fn unit_hints() {
    assert_eq!(unit_hint("p95 target (ms)"), Some((Class::Time, 0.001)));
    assert_eq!(unit_hint("Error rate (%)"), Some((Class::Percent, 1.0)));
    assert_eq!(unit_hint("Connections per second"), Some((Class::Rate, 1.0)));
    assert_eq!(unit_hint("Throughput (rps)"), Some((Class::Rate, 1.0)));
    assert_eq!(unit_hint("Min"), None);
    assert_eq!(unit_hint("Latency (p99)"), None);
}

#[test]
fn normalizing() {
    assert_eq!(normalize("  a\u{a0}\u{202f}b\n c\u{2212}1 "), "a b c-1");
}
