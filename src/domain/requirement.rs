//! Requirements: one measurable promise each, and the extraction of those promises from a
//! sentence of prose ("2,500 connections per second", "error rate at most 0.1 %", "RTO 2 h").
//!
//! Extraction is pattern based and deliberately conservative: a figure is taken only when it
//! stands next to the words that give it a meaning. A sentence that promises something (shall,
//! must, ...) but carries no figure we understand is kept as kind `other`.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde::{Deserialize, Serialize};

/// What a requirement measures.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Throughput,
    LatencyAvg,
    /// A latency percentile, kept as written: `99`, `95`, `99.9`.
    LatencyP(String),
    SuccessRate,
    AzFailureTolerance,
    FailoverDowntime,
    Rto,
    Rpo,
    Other,
}

impl Kind {
    pub fn is_measurable(&self) -> bool {
        *self != Kind::Other
    }

    /// The evidence metric that decides this kind's verdict.
    pub fn metric(&self) -> Option<String> {
        use super::metric as m;
        Some(match self {
            Kind::Throughput => m::THROUGHPUT_RPS.into(),
            Kind::LatencyAvg => m::LATENCY_AVG_MS.into(),
            Kind::LatencyP(p) => m::latency_p(p),
            Kind::SuccessRate => m::SUCCESS_RATE_PCT.into(),
            Kind::AzFailureTolerance => m::AZ_FAILURE_TOLERATED.into(),
            Kind::FailoverDowntime => m::FAILOVER_DOWNTIME_S.into(),
            Kind::Rto => m::RTO_S.into(),
            Kind::Rpo => m::RPO_S.into(),
            Kind::Other => return None,
        })
    }

    pub fn unit(&self) -> Unit {
        match self {
            Kind::Throughput => Unit::ReqPerSec,
            Kind::LatencyAvg | Kind::LatencyP(_) => Unit::Ms,
            Kind::SuccessRate => Unit::Percent,
            Kind::AzFailureTolerance | Kind::Other => Unit::Bool,
            Kind::FailoverDowntime | Kind::Rto | Kind::Rpo => Unit::Seconds,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Throughput => f.write_str("throughput"),
            Kind::LatencyAvg => f.write_str("latency_avg"),
            Kind::LatencyP(p) => write!(f, "latency_p{}", p.replace('.', "")),
            Kind::SuccessRate => f.write_str("success_rate"),
            Kind::AzFailureTolerance => f.write_str("az_failure_tolerance"),
            Kind::FailoverDowntime => f.write_str("failover_downtime"),
            Kind::Rto => f.write_str("rto"),
            Kind::Rpo => f.write_str("rpo"),
            Kind::Other => f.write_str("other"),
        }
    }
}

/// A requirement kind's name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown requirement kind `{0}`")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        Ok(match s {
            "throughput" => Kind::Throughput,
            "latency_avg" => Kind::LatencyAvg,
            "success_rate" => Kind::SuccessRate,
            "az_failure_tolerance" => Kind::AzFailureTolerance,
            "failover_downtime" => Kind::FailoverDowntime,
            "rto" => Kind::Rto,
            "rpo" => Kind::Rpo,
            "other" => Kind::Other,
            _ => match s.strip_prefix("latency_p") {
                Some(p) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
                    // p999 is the 99.9th percentile
                    let p = if p.len() > 2 { format!("{}.{}", &p[..2], &p[2..]) } else { p.to_string() };
                    Kind::LatencyP(p)
                }
                _ => return Err(UnknownKind(s.into())),
            },
        })
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
}

impl Op {
    pub fn holds(self, measured: f64, target: f64) -> bool {
        match self {
            Op::Lt => measured < target,
            Op::Le => measured <= target,
            Op::Gt => measured > target,
            Op::Ge => measured >= target,
            Op::Eq => (measured - target).abs() < 1e-9,
        }
    }
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    #[serde(rename = "req/s")]
    ReqPerSec,
    #[serde(rename = "ms")]
    Ms,
    #[serde(rename = "%")]
    Percent,
    #[serde(rename = "s")]
    Seconds,
    #[serde(rename = "bool")]
    Bool,
}

impl Unit {
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::ReqPerSec => "req/s",
            Unit::Ms => "ms",
            Unit::Percent => "%",
            Unit::Seconds => "s",
            Unit::Bool => "bool",
        }
    }
}

/// One promise of a spec, with where it was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requirement {
    pub id: String,
    pub kind: Kind,
    pub op: Op,
    pub value: f64,
    pub unit: Unit,
    pub line: usize,
    pub text: String,
}

impl Requirement {
    /// `op value unit` as a person reads it: `>= 2500 req/s`.
    pub fn target(&self) -> String {
        match self.kind {
            Kind::Other => "not measurable".into(),
            Kind::AzFailureTolerance => "tolerated".into(),
            _ => format!("{} {} {}", self.op.symbol(), fmt_num(self.value), self.unit.symbol()),
        }
    }

    /// Same measurable target (kind, op, value)?
    pub fn same_target(&self, other: &Requirement) -> bool {
        self.kind == other.kind && self.op == other.op && (self.value - other.value).abs() < 1e-9
    }
}

pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A figure found in a sentence, before it gets an id and a line.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub kind: Kind,
    pub op: Op,
    pub value: f64,
}

/// A figure that cannot be a target (negative latency, a rate over 100 %).
#[derive(Debug, Clone, PartialEq)]
pub struct Impossible(pub String);

const NUM: &str = r"(?P<num>-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)";
const CMP: &str = r"(?P<cmp>at\s+most|no\s+more\s+than|not\s+more\s+than|up\s+to|under|below|less\s+than|lower\s+than|within|at\s+least|no\s+less\s+than|not\s+less\s+than|more\s+than|over|above|greater\s+than|higher\s+than|minimum\s+of|maximum\s+of|of|<=|>=|=<|=>|<|>|=|≤|≥)";
const TIME_UNIT: &str =
    r"(?:ms|msec|millis(?:econds?)?|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)";

fn re(pattern: String) -> Regex {
    Regex::new(&format!("(?i){pattern}")).expect("static requirement pattern")
}

static THROUGHPUT_SHORT: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(
        r"{NUM}\s*(?P<k>k|thousand)?\s*(?P<per>rps|req/s|reqs?/s|requests?/s(?:ec)?|conn(?:ection)?s?/s(?:ec)?|tps|rpm|req/min|requests?/min)\b"
    ))
});
static THROUGHPUT_LONG: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(
        r"{NUM}\s*(?P<k>k\b|thousand\b)?\s*(?:new\s+|concurrent\s+|http\s+|successful\s+|incoming\s+|tcp\s+)?(?:connections?|requests?|calls|transactions|hits)\s*(?:per|a|an|each|every|/)\s*(?P<per>second|sec|s|minute|min|hour)\b"
    ))
});
/// "150,000 per minute": a bare rate, taken only in a sentence about load.
static THROUGHPUT_BARE: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(r"{NUM}\s*(?P<k>k\b|thousand\b)?\s*(?:per|a|each|every|/)\s*(?P<per>second|sec|minute|min|hour)\b"))
});
static LOAD_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(?:requests?|connections?|traffic|load|throughput|handle|serve|calls|hits|transactions)\b".into())
});
static LATENCY_AVG: LazyLock<Regex> =
    LazyLock::new(|| re(format!(r"\b(?:average|mean|avg)\b[^.;]{{0,60}}?{CMP}?\s*{NUM}\s*(?P<unit>{TIME_UNIT})\b")));
static LATENCY_AVG_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(
        r"\b(?:response|latency|respond)[^.;]{{0,30}}?{CMP}?\s*{NUM}\s*(?P<unit>{TIME_UNIT})\s+(?:on\s+average|in\s+average|average|mean)\b"
    ))
});
static LATENCY_PCT: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(
        r"\b(?:p(?P<p>\d{{2}}(?:\.\d+)?)|(?P<p2>\d{{2}}(?:\.\d+)?)(?:st|nd|rd|th)?[\s-]*percentile)\b[^.;]{{0,60}}?{CMP}?\s*{NUM}\s*(?P<unit>{TIME_UNIT})\b"
    ))
});
static SUCCESS_PCT_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(
        r"{CMP}?\s*{NUM}\s*(?:%|percent)\s*(?:of\s+(?:all\s+)?(?:the\s+)?(?:requests|responses|calls|connections)\s+)?(?:\w+\s+){{0,2}}?(?:success|successful|succeed|succeeds|successfully)\b"
    ))
});
static SUCCESS_RATE_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(
        r"\bsuccess(?:ful)?\s*(?:rate|ratio)\s*(?:of|is|:|must\s+be|shall\s+be|should\s+be|will\s+be|stays?|remains?)?\s*{CMP}?\s*{NUM}\s*(?:%|percent)"
    ))
});
static ERROR_RATE: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(
        r"\b(?:error|failure)\s*(?:rate|ratio)\s*(?:of|is|:|must\s+be|shall\s+be|should\s+be|will\s+be|stays?|remains?)?\s*{CMP}?\s*{NUM}\s*(?:%|percent)"
    ))
});
static AZ: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:\b(?:loss|lose|losing|lost|failure|outage|fail|failing|down)\s+(?:of\s+)?(?:one|an|a|1|a\s+single|any\s+one|any\s+single|any)\s+(?:availability\s+zones?|azs?)\b|\b(?:az|availability[\s-]zone)\s+(?:failure|outage|loss)s?\b|\b(?:one|an|a|1|a\s+single|any)\s+(?:availability\s+zones?|azs?)\s+(?:fails|failed|goes\s+down|is\s+lost|is\s+down|becomes\s+unavailable|is\s+unavailable)\b)".into())
});
static DURATION: LazyLock<String> = LazyLock::new(|| {
    format!(r"(?P<dur>-?\d+(?:\.\d+)?\s*{TIME_UNIT}\b(?:\s*(?:and\s+)?\d+(?:\.\d+)?\s*{TIME_UNIT}\b)*)")
});
static DOWNTIME_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(r"{CMP}?\s*{}\s+(?:of\s+)?(?:downtime|interruption|unavailability|outage)\b", &*DURATION))
});
static DOWNTIME_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(
        r"\b(?:downtime|interruption|unavailability|failover\s+time|fail\s+over)\b[^.;]{{0,40}}?{CMP}?\s*{}",
        &*DURATION
    ))
});
static RTO: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(r"\b(?:rto|recovery\s+time\s+objective|recovery\s+time)\b[^.;\d]{{0,40}}?{CMP}?\s*{}", &*DURATION))
});
static RPO: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(r"\b(?:rpo|recovery\s+point\s+objective|recovery\s+point)\b[^.;\d]{{0,40}}?{CMP}?\s*{}", &*DURATION))
});
static RPO_DATA: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(r"\b(?:lose|loss\s+of|lost)\s+{CMP}?\s*{}\s+of\s+(?:data|writes|transactions)", &*DURATION))
});
static PROMISE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(?:shall|must|should|will|needs?\s+to|has\s+to|have\s+to|required|requires|guarantees?)\b".into())
});
static TIME_PART: LazyLock<Regex> = LazyLock::new(|| re(format!(r"(?P<n>-?\d+(?:\.\d+)?)\s*(?P<u>{TIME_UNIT})\b")));

fn parse_num(s: &str) -> f64 {
    s.replace(',', "").parse().unwrap_or(f64::NAN)
}

/// Seconds in one of a time unit.
fn unit_seconds(u: &str) -> f64 {
    let u = u.to_ascii_lowercase();
    match u.as_str() {
        "ms" | "msec" => 0.001,
        _ if u.starts_with("milli") => 0.001,
        "s" | "sec" | "secs" => 1.0,
        _ if u.starts_with("second") => 1.0,
        "m" | "min" | "mins" => 60.0,
        _ if u.starts_with("minute") => 60.0,
        "h" | "hr" | "hrs" => 3600.0,
        _ if u.starts_with("hour") => 3600.0,
        _ => 86400.0,
    }
}

/// "2 hours 30 minutes", "10 min", "2h" -> seconds.
pub fn parse_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut any = false;
    for c in TIME_PART.captures_iter(s) {
        total += parse_num(&c["n"]) * unit_seconds(&c["u"]);
        any = true;
    }
    any.then_some(total)
}

/// The comparison a phrase states; `default` when it states none.
fn op_of(c: &Captures, default: Op) -> Op {
    let Some(m) = c.name("cmp") else { return default };
    let w = m.as_str().to_ascii_lowercase();
    let w: String = w.split_whitespace().collect::<Vec<_>>().join(" ");
    match w.as_str() {
        "under" | "below" | "less than" | "lower than" | "<" => Op::Lt,
        "at most" | "no more than" | "not more than" | "up to" | "within" | "maximum of" | "<=" | "=<" | "≤" => {
            Op::Le
        }
        "more than" | "over" | "above" | "greater than" | "higher than" | ">" => Op::Gt,
        "at least" | "no less than" | "not less than" | "minimum of" | ">=" | "=>" | "≥" => Op::Ge,
        "=" => Op::Eq,
        _ => default,
    }
}

/// Every measurable figure in one sentence, in order of appearance; `Err` for a figure that
/// cannot be a target.
pub fn extract(text: &str) -> Result<Vec<Found>, Impossible> {
    let mut found: Vec<(usize, Found)> = Vec::new();
    let push = |at: usize, f: Found, found: &mut Vec<(usize, Found)>| {
        if !found.iter().any(|(_, g)| g.kind == f.kind) {
            found.push((at, f));
        }
    };

    let bare: &[&Regex] = if LOAD_WORDS.is_match(text) { &[&THROUGHPUT_BARE] } else { &[] };
    for rx in [&*THROUGHPUT_SHORT, &*THROUGHPUT_LONG].into_iter().chain(bare.iter().copied()) {
        if let Some(c) = rx.captures(text) {
            let mut v = parse_num(&c["num"]);
            if c.name("k").is_some() {
                v *= 1000.0;
            }
            let per = c["per"].to_ascii_lowercase();
            if per.contains("min") || per == "rpm" {
                v /= 60.0;
            } else if per.starts_with("hour") {
                v /= 3600.0;
            }
            if v <= 0.0 {
                return Err(Impossible(format!("a throughput of {} req/s is not a target", fmt_num(v))));
            }
            push(c.get(0).unwrap().start(), Found { kind: Kind::Throughput, op: Op::Ge, value: v }, &mut found);
        }
    }

    let latency = |c: &Captures| parse_num(&c["num"]) * unit_seconds(&c["unit"]) * 1000.0;
    for rx in [&*LATENCY_AVG, &*LATENCY_AVG_AFTER] {
        if let Some(c) = rx.captures(text) {
            let v = latency(&c);
            if v < 0.0 {
                return Err(Impossible(format!("a latency of {} ms is impossible", fmt_num(v))));
            }
            push(
                c.get(0).unwrap().start(),
                Found { kind: Kind::LatencyAvg, op: op_of(&c, Op::Le), value: v },
                &mut found,
            );
        }
    }
    for c in LATENCY_PCT.captures_iter(text) {
        let p = c.name("p").or(c.name("p2")).unwrap().as_str().to_string();
        let pv: f64 = p.parse().unwrap_or(0.0);
        if !(0.0..100.0).contains(&pv) || pv == 0.0 {
            return Err(Impossible(format!("percentile p{p} does not exist")));
        }
        let v = latency(&c);
        if v < 0.0 {
            return Err(Impossible(format!("a latency of {} ms is impossible", fmt_num(v))));
        }
        push(c.get(0).unwrap().start(), Found { kind: Kind::LatencyP(p), op: op_of(&c, Op::Le), value: v }, &mut found);
    }

    let pct_check = |v: f64, what: &str| -> Result<(), Impossible> {
        if !(0.0..=100.0).contains(&v) {
            return Err(Impossible(format!("a {what} of {} % is impossible", fmt_num(v))));
        }
        Ok(())
    };
    for rx in [&*SUCCESS_PCT_FIRST, &*SUCCESS_RATE_FIRST] {
        if let Some(c) = rx.captures(text) {
            let v = parse_num(&c["num"]);
            pct_check(v, "success rate")?;
            let op = match op_of(&c, Op::Ge) {
                Op::Gt => Op::Gt,
                Op::Eq => Op::Eq,
                _ => Op::Ge,
            };
            push(c.get(0).unwrap().start(), Found { kind: Kind::SuccessRate, op, value: v }, &mut found);
        }
    }
    if let Some(c) = ERROR_RATE.captures(text) {
        let v = parse_num(&c["num"]);
        pct_check(v, "error rate")?;
        // error <= x  <=>  success >= 100 - x ; error < x <=> success > 100 - x
        let op = match op_of(&c, Op::Le) {
            Op::Lt => Op::Gt,
            _ => Op::Ge,
        };
        let s = ((100.0 - v) * 1e9).round() / 1e9;
        push(c.get(0).unwrap().start(), Found { kind: Kind::SuccessRate, op, value: s }, &mut found);
    }

    if let Some(m) = AZ.find(text) {
        push(m.start(), Found { kind: Kind::AzFailureTolerance, op: Op::Eq, value: 1.0 }, &mut found);
    }

    let durations: [(&Regex, Kind); 5] = [
        (&DOWNTIME_FIRST, Kind::FailoverDowntime),
        (&DOWNTIME_AFTER, Kind::FailoverDowntime),
        (&RTO, Kind::Rto),
        (&RPO, Kind::Rpo),
        (&RPO_DATA, Kind::Rpo),
    ];
    for (rx, kind) in durations {
        if let Some(c) = rx.captures(text) {
            let Some(v) = parse_duration(&c["dur"]) else { continue };
            if v < 0.0 {
                return Err(Impossible(format!("a {kind} of {} s is impossible", fmt_num(v))));
            }
            push(c.get(0).unwrap().start(), Found { kind, op: op_of(&c, Op::Le), value: v }, &mut found);
        }
    }

    found.sort_by_key(|(at, _)| *at);
    Ok(found.into_iter().map(|(_, f)| f).collect())
}

/// Does the sentence promise something (even if nothing measurable)?
pub fn is_promise(text: &str) -> bool {
    PROMISE.is_match(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> (String, Op, f64) {
        let f = extract(text).unwrap();
        assert_eq!(f.len(), 1, "{text}: {f:?}");
        (f[0].kind.to_string(), f[0].op, f[0].value)
    }

    #[test]
    fn figures_in_prose() {
        let table: &[(&str, &str, Op, f64)] = &[
            ("handle 2,500 connections per second", "throughput", Op::Ge, 2500.0),
            ("serve 2500 requests/s", "throughput", Op::Ge, 2500.0),
            ("at 3000 rps", "throughput", Op::Ge, 3000.0),
            ("2.5k requests per second", "throughput", Op::Ge, 2500.0),
            ("150,000 requests per minute", "throughput", Op::Ge, 2500.0),
            ("peak load of 150,000 per minute", "throughput", Op::Ge, 2500.0),
            ("the average response time is under 250 ms", "latency_avg", Op::Lt, 250.0),
            ("mean latency at most 0.25 seconds", "latency_avg", Op::Le, 250.0),
            ("responses within 200 milliseconds on average", "latency_avg", Op::Le, 200.0),
            ("p99 latency below 800 ms", "latency_p99", Op::Lt, 800.0),
            ("the 95th percentile response time within 1 second", "latency_p95", Op::Le, 1000.0),
            ("at least 99.5 % of requests are successful", "success_rate", Op::Ge, 99.5),
            ("success rate of at least 99.9%", "success_rate", Op::Ge, 99.9),
            ("error rate at most 0.1 %", "success_rate", Op::Ge, 99.9),
            ("error rate below 1%", "success_rate", Op::Gt, 99.0),
            ("survive the loss of one Availability Zone", "az_failure_tolerance", Op::Eq, 1.0),
            ("tolerate an AZ failure", "az_failure_tolerance", Op::Eq, 1.0),
            ("with at most 1 minute of downtime", "failover_downtime", Op::Le, 60.0),
            ("failover downtime under 45 s", "failover_downtime", Op::Lt, 45.0),
            ("RTO 2h", "rto", Op::Le, 7200.0),
            ("recovery time objective of 2 hours 30 minutes", "rto", Op::Le, 9000.0),
            ("RPO: 10 minutes", "rpo", Op::Le, 600.0),
            ("lose at most 5 min of data", "rpo", Op::Le, 300.0),
        ];
        for (text, kind, op, value) in table {
            let (k, o, v) = one(text);
            assert_eq!((k.as_str(), o, v), (*kind, *op, *value), "{text}");
        }
    }

    #[test]
    fn one_sentence_many_figures() {
        let f = extract("It must take 2,500 connections per second with an average response under 250 ms and at least 99.5 % successful.").unwrap();
        let kinds: Vec<String> = f.iter().map(|f| f.kind.to_string()).collect();
        assert_eq!(kinds, ["throughput", "latency_avg", "success_rate"]);
        let f = extract("RTO 2 h and RPO 10 min").unwrap();
        assert_eq!(
            (f[0].kind.clone(), f[0].value, f[1].kind.clone(), f[1].value),
            (Kind::Rto, 7200.0, Kind::Rpo, 600.0)
        );
    }

    #[test]
    fn impossible_figures() {
        assert!(extract("average response under -5 ms").unwrap_err().0.contains("-5 ms"));
        assert!(extract("at least 150 % of requests successful").unwrap_err().0.contains("150 %"));
        assert!(extract("error rate at most 120%").is_err());
    }

    #[test]
    fn prose_without_figures() {
        assert!(extract("The team shall write a runbook.").unwrap().is_empty());
        assert!(extract("Backups shall run 4 per hour.").unwrap().is_empty(), "a bare rate outside a load sentence");
        assert!(is_promise("The team shall write a runbook."));
        assert!(!is_promise("This document describes the launch."));
    }

    #[test]
    fn kind_names_round_trip() {
        for k in ["throughput", "latency_avg", "latency_p99", "latency_p999", "rto", "other"] {
            assert_eq!(k.parse::<Kind>().unwrap().to_string(), k);
        }
        assert!("latency".parse::<Kind>().is_err());
    }
}
