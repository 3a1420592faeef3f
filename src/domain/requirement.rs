//! Requirements: one promise each, with its target (kind, comparison, value, unit), where it
//! was written, and what it applies to. Reading them from prose is [`super::reading`]'s job.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a requirement measures.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Throughput,
    LatencyAvg,
    /// A latency percentile, kept as written: `99`, `95`, `99.9`.
    LatencyP(String),
    SuccessRate,
    /// Percent uptime: verified after launch by monitoring, not by a step.
    Availability,
    AzFailureTolerance,
    FailoverDowntime,
    Rto,
    Rpo,
    /// A person is told when an alarm fires, within a bound (seconds).
    Notification,
    Other,
}

/// How fast a notification must reach a person when the spec writes no bound (seconds).
pub const DEFAULT_NOTIFICATION_S: f64 = 300.0;

impl Kind {
    /// Verified by a step's measured evidence before launch.
    pub fn is_measurable(&self) -> bool {
        !matches!(self, Kind::Other | Kind::Availability)
    }

    /// Has a figure to compare with (availability too, though monitoring verifies it).
    pub fn has_target(&self) -> bool {
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
            Kind::Availability => m::AVAILABILITY_PCT.into(),
            Kind::AzFailureTolerance => m::AZ_FAILURE_TOLERATED.into(),
            Kind::FailoverDowntime => m::FAILOVER_DOWNTIME_S.into(),
            Kind::Rto => m::RTO_S.into(),
            Kind::Rpo => m::RPO_S.into(),
            Kind::Notification => m::NOTIFICATION_DELAY_S.into(),
            Kind::Other => return None,
        })
    }

    pub fn unit(&self) -> Unit {
        match self {
            Kind::Throughput => Unit::ReqPerSec,
            Kind::LatencyAvg | Kind::LatencyP(_) => Unit::Ms,
            Kind::SuccessRate | Kind::Availability => Unit::Percent,
            Kind::AzFailureTolerance | Kind::Other => Unit::Bool,
            Kind::FailoverDowntime | Kind::Rto | Kind::Rpo | Kind::Notification => Unit::Seconds,
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
            Kind::Availability => f.write_str("availability"),
            Kind::AzFailureTolerance => f.write_str("az_failure_tolerance"),
            Kind::FailoverDowntime => f.write_str("failover_downtime"),
            Kind::Rto => f.write_str("rto"),
            Kind::Rpo => f.write_str("rpo"),
            Kind::Notification => f.write_str("notification"),
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
            "availability" => Kind::Availability,
            "az_failure_tolerance" => Kind::AzFailureTolerance,
            "failover_downtime" => Kind::FailoverDowntime,
            "rto" => Kind::Rto,
            "rpo" => Kind::Rpo,
            "notification" => Kind::Notification,
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

/// Who read a requirement: the builtin grammar, or a model whose quote the grammar confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    #[default]
    Builtin,
    Llm,
}

impl Source {
    fn is_builtin(&self) -> bool {
        *self == Source::Builtin
    }
}

fn one_line(lines: &[usize]) -> bool {
    lines.len() <= 1
}

/// One promise of a spec, with where it was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requirement {
    pub id: String,
    pub kind: Kind,
    pub op: Op,
    pub value: f64,
    pub unit: Unit,
    /// The first line that states it.
    pub line: usize,
    pub text: String,
    /// What it applies to, when the spec says ("checkout API", a table row, a heading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Every line that states it, when more than one does (a summary table restating it).
    #[serde(default, skip_serializing_if = "one_line")]
    pub lines: Vec<usize>,
    #[serde(default, skip_serializing_if = "Source::is_builtin")]
    pub source: Source,
    /// Why it is `other` though it has a figure (a latency with no statistic, a mean time to
    /// recover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Requirement {
    /// A requirement read from one line, in its kind's unit, with no scope.
    pub fn new(id: &str, kind: Kind, op: Op, value: f64, line: usize, text: &str) -> Requirement {
        let unit = kind.unit();
        Requirement {
            id: id.into(),
            kind,
            op,
            value,
            unit,
            line,
            text: text.into(),
            scope: None,
            lines: Vec::new(),
            source: Source::Builtin,
            note: None,
        }
    }

    /// `op value unit` as a person reads it: `>= 2500 req/s`.
    pub fn target(&self) -> String {
        match self.kind {
            Kind::Other => "not measurable".into(),
            Kind::AzFailureTolerance => "tolerated".into(),
            _ => format!("{} {} {}", self.op.symbol(), fmt_num(self.value), self.unit.symbol()),
        }
    }

    /// Every line that states it.
    pub fn all_lines(&self) -> Vec<usize> {
        if self.lines.is_empty() {
            vec![self.line]
        } else {
            self.lines.clone()
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

/// Does the sentence promise something (even if nothing measurable)?
pub fn is_promise(text: &str) -> bool {
    static PROMISE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)\b(?:shall|must|should|will|needs?\s+to|has\s+to|have\s+to|required|requires|guarantees?)\b",
        )
        .expect("static promise pattern")
    });
    PROMISE.is_match(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promises() {
        assert!(is_promise("The team shall write a runbook."));
        assert!(!is_promise("This document describes the launch."));
    }

    #[test]
    fn kind_names_round_trip() {
        for k in ["throughput", "latency_avg", "latency_p99", "latency_p999", "availability", "rto", "other"] {
            assert_eq!(k.parse::<Kind>().unwrap().to_string(), k);
        }
        assert!("latency".parse::<Kind>().is_err());
    }
}
