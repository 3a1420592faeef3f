//! Targets written as code: k6 thresholds, and figures in fenced code blocks.

use std::sync::LazyLock;

use regex::Regex;

use super::*;
use crate::domain::requirement::fmt_num;

/// A k6 threshold, as the prose flow reads: "p99 latency < 200 ms".
pub(crate) struct Threshold {
    /// Byte range in the code block of what it was read from.
    pub(crate) at: usize,
    pub(crate) end: usize,
    pub(crate) prose: String,
    /// The metric's tag ("cache:warm"), a scope.
    pub(crate) tag: Option<String>,
}

pub(crate) static K6_SUMMARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^[ \t]*[✓✗✔✘]?[ \t]*(?P<m>[a-z_][a-z0-9_]*)(?:\{(?P<tag>[^}\n]*)\})?\.*[ \t]*:[ \t]*(?P<e>(?:p\(\d+(?:\.\d+)?\)|avg|med|min|max|rate|count)[ \t]*(?:<=|>=|<|>|==)[ \t]*\d+(?:\.\d+)?)")
        .expect("static k6 pattern")
});
pub(crate) static K6_SCRIPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)['"]?(?P<m>[a-z_][a-z0-9_]*)(?:\{(?P<tag>[^}\n]*)\})?['"]?[ \t]*:[ \t]*\[(?P<e>[^\]\n]*)\]"#)
        .expect("static k6 pattern")
});
pub(crate) static K6_EXPR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?P<agg>p\((?P<p>\d+(?:\.\d+)?)\)|avg|med|min|max|rate|count)\s*(?P<op><=|>=|<|>|==)\s*(?P<v>\d+(?:\.\d+)?)",
    )
    .expect("static k6 pattern")
});

/// k6 thresholds in a code block, in its summary's form or its script's. Only those flow
/// measures: a duration's percentile or average (k6 writes milliseconds), a failure or error
/// rate, the request rate. A `checks` rate, a count or a maximum is left as code.
pub(crate) fn k6_thresholds(code: &str) -> Vec<Threshold> {
    let read = |metric: &str, expr: &str| -> Option<String> {
        let c = K6_EXPR.captures(expr)?;
        let op = &c["op"];
        let v: f64 = c["v"].parse().ok()?;
        let m = metric.to_ascii_lowercase();
        if m.contains("duration") || m.contains("latency") || m.contains("waiting") {
            let stat = match &c["agg"] {
                "avg" => "average".to_string(),
                "med" => "p50".to_string(),
                _ => format!("p{}", c.name("p")?.as_str()),
            };
            Some(format!("{stat} latency {op} {} ms", fmt_num(v)))
        } else if (m.contains("failed") || m.contains("error")) && &c["agg"] == "rate" && v <= 1.0 {
            Some(format!("error rate {op} {} %", fmt_num((v * 100.0 * 1e9).round() / 1e9)))
        } else if m == "http_reqs" && &c["agg"] == "rate" {
            Some(format!("throughput {op} {} requests per second", fmt_num(v)))
        } else {
            None
        }
    };
    let mut out = Vec::new();
    for c in K6_SUMMARY.captures_iter(code) {
        let (m, e) = (c.name("m").unwrap(), c.name("e").unwrap());
        if let Some(prose) = read(m.as_str(), e.as_str()) {
            let tag = c.name("tag").map(|t| t.as_str().to_string());
            out.push(Threshold { at: m.start(), end: e.end(), prose, tag });
        }
    }
    if out.is_empty() && code.contains("thresholds") {
        for c in K6_SCRIPT.captures_iter(code) {
            let (m, e) = (c.name("m").unwrap(), c.name("e").unwrap());
            for x in e.as_str().split(',') {
                if let Some(prose) = read(m.as_str(), x.trim().trim_matches(['\'', '"', '`'])) {
                    let tag = c.name("tag").map(|t| t.as_str().to_string());
                    out.push(Threshold { at: m.start(), end: e.end(), prose, tag });
                }
            }
        }
    }
    out
}

/// Plain `key: value` lines in a code block that a line just above it names as targets
/// ("**Regional Performance Targets**:" then a fence of "Europe:" / "- P95 Latency: < 180ms";
/// "**Service Level Agreement (SLA)**:" then YAML) are read as the nested list they are
/// written as: each line becomes a list item at its indentation, the fences blank lines (so
/// line numbers hold). Only a fence with no language or `text`, `yaml`, `yml`, `plain`, and
/// only when every line is such a line or a `-` item: code, k6 summaries and tables stay code.
pub(crate) fn targets_in_code(text: &str) -> std::borrow::Cow<'_, str> {
    const NAMES: &[&str] =
        &["target", "targets", "sla", "slo", "slos", "objectives", "requirements", "commitments", "thresholds"];
    if !text.contains("```") {
        return std::borrow::Cow::Borrowed(text);
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut changed = false;
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        let info = fence.trim_start_matches('`').trim().to_ascii_lowercase();
        let plain = fence.starts_with("```") && ["", "text", "yaml", "yml", "plain"].contains(&info.as_str());
        let named = plain && {
            let lead = out.iter().rev().find(|l| !l.trim().is_empty()).map(|l| l.to_lowercase()).unwrap_or_default();
            lead.trim_end().trim_end_matches('*').ends_with(':')
                && words(&lead).iter().any(|w| NAMES.contains(&w.as_str()))
        };
        if named {
            let close = (i + 1..lines.len()).find(|&j| lines[j].trim_start().starts_with("```"));
            if let Some(end) = close {
                let body = &lines[i + 1..end];
                let key_value = |l: &str| {
                    let t = l.trim().trim_start_matches("- ");
                    t.is_empty()
                        || t.ends_with(':') && !t.contains("://")
                        || t.split_once(": ").is_some_and(|(k, v)| {
                            !k.is_empty() && !k.contains(['=', '{', ';', '"']) && !v.trim().is_empty()
                        })
                };
                if !body.is_empty() && body.iter().all(|l| key_value(l)) {
                    out.push(String::new());
                    for l in body {
                        let t = l.trim().trim_start_matches("- ");
                        // A line that only names a group ("Europe:") heads the items under it.
                        out.push(if t.is_empty() {
                            String::new()
                        } else if t.ends_with(':') {
                            format!("###### {}", t.trim_end_matches(':'))
                        } else {
                            format!("- {t}")
                        });
                    }
                    out.push(String::new());
                    changed = true;
                    i = end + 1;
                    continue;
                }
            }
        }
        out.push(lines[i].to_string());
        i += 1;
    }
    if changed {
        std::borrow::Cow::Owned(out.join("\n"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}
