//! Figures for people: grouped thousands (`2,625`), durations in the largest units that keep
//! them exact enough (`3 s`, `1 min 30 s`, `2 h`), a unit after every number, `yes`/`no` for a
//! yes-or-no figure. JSON keeps the raw numbers; every text a person reads goes through here.

use super::requirement::{fmt_num, Kind, Requirement, Unit};

/// `2625` -> `2,625`; `2625.456` -> `2,625.456`; `0.5` -> `0.5`.
pub fn grouped(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let plain = fmt_num(v);
    let (sign, rest) = plain.strip_prefix('-').map(|r| ("-", r)).unwrap_or(("", plain.as_str()));
    let (int, frac) = rest.split_once('.').map(|(i, f)| (i, Some(f))).unwrap_or((rest, None));
    let mut out = String::with_capacity(plain.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

/// Seconds as people say them: `0.25 s`, `3 s`, `1 min 30 s`, `10 min`, `2 h`, `2 h 30 min`.
pub fn duration_s(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return format!("{} s", fmt_num(s));
    }
    if s < 60.0 {
        return format!("{} s", fmt_num((s * 1000.0).round() / 1000.0));
    }
    let total = s.round() as u64;
    let (h, m, sec) = (total / 3600, total % 3600 / 60, total % 60);
    match (h, m, sec) {
        (0, m, 0) => format!("{m} min"),
        (0, m, sec) => format!("{m} min {sec} s"),
        (h, 0, 0) => format!("{h} h"),
        (h, m, 0) => format!("{h} h {m} min"),
        (h, m, sec) => format!("{h} h {m} min {sec} s"),
    }
}

/// A value in a unit, for people.
pub fn value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::ReqPerSec => format!("{} req/s", grouped(round_to(v, 1))),
        Unit::Ms => format!("{} ms", grouped(round_to(v, 2))),
        Unit::Percent => format!("{} %", fmt_num(round_to(v, 3))),
        Unit::Seconds => duration_s(v),
        Unit::Bool => if v != 0.0 { "yes" } else { "no" }.into(),
    }
}

fn round_to(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// The unit an evidence metric is in, from its name (`*_rps`, `*_ms`, `*_pct`, `*_s`, and the
/// yes-or-no `az_failure_tolerated`).
pub fn metric_unit(metric: &str) -> Option<Unit> {
    if metric == super::metric::AZ_FAILURE_TOLERATED {
        return Some(Unit::Bool);
    }
    [("_rps", Unit::ReqPerSec), ("_ms", Unit::Ms), ("_pct", Unit::Percent), ("_s", Unit::Seconds)]
        .into_iter()
        .find_map(|(suffix, unit)| metric.ends_with(suffix).then_some(unit))
}

/// A metric's value for people: `2,625 req/s`, `3 s`, `yes`.
pub fn metric(metric: &str, v: f64) -> String {
    match metric_unit(metric) {
        Some(u) => value(v, u),
        None => grouped(v),
    }
}

/// What a metric measures, in words: `throughput`, `failover downtime`, `AZ failure tolerated`.
pub fn metric_name(metric: &str) -> String {
    use super::metric as m;
    match metric {
        m::THROUGHPUT_RPS => "throughput".into(),
        m::SUCCESS_RATE_PCT => "success rate".into(),
        m::AVAILABILITY_PCT => "availability".into(),
        m::LATENCY_AVG_MS => "average latency".into(),
        m::LATENCY_MAX_MS => "maximum latency".into(),
        m::AZ_FAILURE_TOLERATED => "AZ failure tolerated".into(),
        m::FAILOVER_DOWNTIME_S => "failover downtime".into(),
        m::RTO_S => "RTO".into(),
        m::RPO_S => "RPO".into(),
        m::NOTIFICATION_DELAY_S => "notification delay".into(),
        other => match other.strip_prefix("latency_p").and_then(|p| p.strip_suffix("_ms")) {
            Some(p) if p.len() > 2 => format!("p{}.{} latency", &p[..2], &p[2..]),
            Some(p) => format!("p{p} latency"),
            None => other.replace('_', " "),
        },
    }
}

/// A requirement's target for people: `>= 2,500 req/s`, `< 250 ms`, `<= 2 h`, `tolerated`.
pub fn target(r: &Requirement) -> String {
    match r.kind {
        Kind::Other => "not measurable".into(),
        Kind::AzFailureTolerance => "tolerated".into(),
        _ => format!("{} {}", r.op.symbol(), value(r.value, r.unit)),
    }
}

/// Would a terminal or a browser act on this character instead of showing it? C0 controls
/// (but line feed and tab), DEL, C1 controls, and the bidirectional overrides, embeddings,
/// isolates and marks that reorder what is shown.
pub fn is_hidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text as it is, with every character that would act instead of showing ([`is_hidden`])
/// written out visibly: `\e` for escape, `\r`, `\x07`, `<U+202E>`. What a person reads
/// is then what is there: an escape sequence cannot erase a line or hide a command.
pub fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_hidden) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\u{1b}' => out.push_str("\\e"),
            '\r' => out.push_str("\\r"),
            c if is_hidden(c) && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_hidden(c) => out.push_str(&format!("<U+{:04X}>", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_shown() {
        let cmd = "DROP DATABASE #\u{1b}[1K\r      $ echo hello-world";
        assert_eq!(visible(cmd), "DROP DATABASE #\\e[1K\\r      $ echo hello-world");
        assert_eq!(visible("a\u{202e}cba\u{2069}"), "a<U+202E>cba<U+2069>");
        assert_eq!(visible("\u{9b}31m \u{7}"), "\\x9b31m \\x07");
        assert_eq!(visible("lines\n\tand tabs stay"), "lines\n\tand tabs stay");
        assert!(matches!(visible("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn figures_read_as_people_write_them() {
        let cases: Vec<(String, &str)> = vec![
            (grouped(2625.0), "2,625"),
            (grouped(1234567.5), "1,234,567.5"),
            (grouped(-1000.0), "-1,000"),
            (grouped(999.0), "999"),
            (grouped(0.25), "0.25"),
            (duration_s(3.0), "3 s"),
            (duration_s(0.25), "0.25 s"),
            (duration_s(60.0), "1 min"),
            (duration_s(90.0), "1 min 30 s"),
            (duration_s(600.0), "10 min"),
            (duration_s(7200.0), "2 h"),
            (duration_s(9000.0), "2 h 30 min"),
            (metric("throughput_rps", 2625.04), "2,625 req/s"),
            (metric("latency_p99_ms", 8.031), "8.03 ms"),
            (metric("success_rate_pct", 99.5), "99.5 %"),
            (metric("az_failure_tolerated", 1.0), "yes"),
            (metric("az_failure_tolerated", 0.0), "no"),
            (metric("rto_s", 3.2), "3.2 s"),
            (metric_name("latency_p999_ms"), "p99.9 latency"),
            (metric_name("latency_p95_ms"), "p95 latency"),
            (metric_name("rto_s"), "RTO"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
