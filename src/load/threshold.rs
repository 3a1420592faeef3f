//! Thresholds: `rate>=2500`, `avg<250ms`, `success>=99.5%`, `p99<0.8s`, `p99.9<1s`, `max<2s`,
//! `errors<=0.5%`. Latencies normalize to ms, rates to req/s, shares to %.

use std::fmt;

use serde::Serialize;

use crate::domain::requirement::Op;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Metric {
    Rate,
    Avg,
    Max,
    /// A percentile, e.g. 99.0 or 99.9.
    P(f64),
    Success,
    Errors,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    pub text: String,
    pub metric: Metric,
    pub op: Op,
    pub value: f64,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

pub fn parse(text: &str) -> Result<Threshold, super::Error> {
    use super::Error::Settings;
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    let bad = || {
        Settings(format!(
            "threshold `{text}`: expected METRIC OP VALUE, such as rate>=2500, avg<250ms, p99<1s, success>=99.5%"
        ))
    };
    let pos = t.find(['<', '>', '=']).ok_or_else(bad)?;
    let (name, rest) = t.split_at(pos);
    let (op, value) = [("<=", Op::Le), (">=", Op::Ge), ("==", Op::Eq), ("<", Op::Lt), (">", Op::Gt), ("=", Op::Eq)]
        .iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v)))
        .ok_or_else(bad)?;
    let metric = match name {
        "rate" | "rps" | "throughput" => Metric::Rate,
        "avg" | "mean" => Metric::Avg,
        "max" => Metric::Max,
        "success" | "success_rate" => Metric::Success,
        "errors" | "error_rate" => Metric::Errors,
        p if p.starts_with('p') => {
            Metric::P(p[1..].parse::<f64>().ok().filter(|p| *p > 0.0 && *p < 100.0).ok_or_else(bad)?)
        }
        _ => {
            return Err(Settings(format!(
                "threshold `{text}`: unknown metric `{name}` (rate, avg, max, pNN, success, errors)"
            )))
        }
    };
    let num_end = value.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(value.len());
    let (num, unit) = value.split_at(num_end);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let value = match (&metric, unit) {
        (Metric::Avg | Metric::Max | Metric::P(_), "ms" | "") => num,
        (Metric::Avg | Metric::Max | Metric::P(_), "s") => num * 1000.0,
        (Metric::Success | Metric::Errors, "%" | "") => num,
        (Metric::Rate, "" | "rps" | "req/s" | "/s") => num,
        _ => return Err(Settings(format!("threshold `{text}`: unit `{unit}` does not fit {name}"))),
    };
    if matches!(metric, Metric::Success | Metric::Errors) && !(0.0..=100.0).contains(&value) {
        return Err(Settings(format!("threshold `{text}`: a share must be between 0 and 100 %")));
    }
    Ok(Threshold { text: text.trim().to_string(), metric, op, value })
}

/// The figures thresholds are judged on.
pub trait Figures {
    fn rate(&self) -> f64;
    fn mean_ms(&self) -> f64;
    fn max_ms(&self) -> f64;
    fn percentile_ms(&self, p: f64) -> f64;
    fn success_pct(&self) -> f64;
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub threshold: String,
    pub measured: f64,
    pub pass: bool,
    /// The measured figure's unit, for people (`req/s`, `ms`, `%`).
    #[serde(skip)]
    pub unit: &'static str,
}

impl Metric {
    pub fn unit(&self) -> &'static str {
        match self {
            Metric::Rate => "req/s",
            Metric::Avg | Metric::Max | Metric::P(_) => "ms",
            Metric::Success | Metric::Errors => "%",
        }
    }
}

pub fn judge(t: &Threshold, f: &dyn Figures) -> Verdict {
    let measured = match t.metric {
        Metric::Rate => f.rate(),
        Metric::Avg => f.mean_ms(),
        Metric::Max => f.max_ms(),
        Metric::P(p) => f.percentile_ms(p),
        Metric::Success => f.success_pct(),
        Metric::Errors => 100.0 - f.success_pct(),
    };
    let measured = (measured * 1000.0).round() / 1000.0;
    Verdict { threshold: t.text.clone(), measured, pass: t.op.holds(measured, t.value), unit: t.metric.unit() }
}

impl Verdict {
    pub fn describe(&self) -> String {
        let sep = if self.unit == "%" { "" } else { " " };
        format!(
            "{} {}: measured {}{sep}{}",
            if self.pass { "✓ pass" } else { "✗ FAIL" },
            self.threshold,
            crate::domain::human::grouped(self.measured),
            self.unit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let cases = [
            ("rate>=2500", Metric::Rate, Op::Ge, 2500.0),
            ("avg<250ms", Metric::Avg, Op::Lt, 250.0),
            ("success >= 99.5%", Metric::Success, Op::Ge, 99.5),
            ("p99<0.8s", Metric::P(99.0), Op::Lt, 800.0),
            ("p99.9<=1s", Metric::P(99.9), Op::Le, 1000.0),
            ("errors<0.5%", Metric::Errors, Op::Lt, 0.5),
        ];
        for (text, m, op, v) in cases {
            let t = parse(text).unwrap();
            assert_eq!((t.metric, t.op, t.value), (m, op, v), "{text}");
        }
        assert!(parse("latency<3").unwrap_err().to_string().contains("unknown metric `latency`"));
        assert!(parse("avg<3%").unwrap_err().to_string().contains("unit `%`"));
        assert!(parse("success>=120%").is_err());
        assert!(parse("fast").is_err());
    }
}
