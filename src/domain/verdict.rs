//! Verdicts: a requirement passes or fails only on evidence a succeeded step recorded.

use serde::Serialize;
use serde_json::Value;

use super::lifecycle::Phase;
use super::plan::Plan;
use super::requirement::{fmt_num, Kind, Requirement};
use super::runbook::RunbookView;

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Verdict {
    pub id: String,
    pub kind: String,
    pub target: String,
    pub line: usize,
    /// pass, fail or unverified.
    pub verdict: String,
    pub measurable: bool,
    /// The evidence behind the verdict: which step measured what.
    pub evidence: Vec<Measure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Measure {
    pub step: String,
    pub metric: String,
    pub value: f64,
    pub pass: bool,
}

pub fn verdicts(plan: &Plan, view: &RunbookView) -> Vec<Verdict> {
    plan.requirements.iter().map(|r| verdict(plan, view, r)).collect()
}

fn verdict(plan: &Plan, view: &RunbookView, r: &Requirement) -> Verdict {
    let mut evidence = Vec::new();
    if let Some(metric) = r.kind.metric() {
        for s in plan.steps.iter().filter(|s| s.covers.contains(&r.id)) {
            let v = view.step(&s.id);
            if v.phase != Phase::Succeeded {
                continue;
            }
            let value = match v.evidence.get(&metric) {
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::Bool(b)) => Some(if *b { 1.0 } else { 0.0 }),
                _ => None,
            };
            if let Some(value) = value {
                evidence.push(Measure {
                    step: s.id.clone(),
                    metric: metric.clone(),
                    value,
                    pass: r.op.holds(value, r.value),
                });
            }
        }
    }
    let verdict = if evidence.is_empty() && r.kind == Kind::Availability {
        // Percent uptime over weeks: monitoring after launch verifies it, not a drill.
        "monitoring"
    } else if evidence.is_empty() {
        "unverified"
    } else if evidence.iter().all(|m| m.pass) {
        "pass"
    } else {
        "fail"
    };
    Verdict {
        id: r.id.clone(),
        kind: r.kind.to_string(),
        target: r.target(),
        line: r.line,
        verdict: verdict.into(),
        measurable: r.kind.is_measurable(),
        evidence,
    }
}

/// The launch decision: GO only when every measurable requirement passes (and there is one).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Decision {
    pub go: bool,
    /// `GO` or `NO-GO`.
    pub word: String,
    pub failing: Vec<String>,
    pub unverified: Vec<String>,
    /// Promises no figure can verify: a person checks them.
    pub by_hand: Vec<String>,
    /// Targets monitoring verifies after launch (availability).
    #[serde(default)]
    pub monitored: Vec<String>,
}

pub fn decision(verdicts: &[Verdict]) -> Decision {
    let ids = |f: &dyn Fn(&Verdict) -> bool| -> Vec<String> {
        verdicts.iter().filter(|v| f(v)).map(|v| v.id.clone()).collect()
    };
    let failing = ids(&|v| v.measurable && v.verdict == "fail");
    let unverified = ids(&|v| v.measurable && v.verdict == "unverified");
    let by_hand = ids(&|v| !v.measurable && v.verdict != "monitoring");
    let monitored = ids(&|v| !v.measurable && v.verdict == "monitoring");
    let go = failing.is_empty() && unverified.is_empty() && verdicts.iter().any(|v| v.measurable);
    Decision { go, word: if go { "GO" } else { "NO-GO" }.into(), failing, unverified, by_hand, monitored }
}

impl Verdict {
    /// What a requirement flow does not verify itself waits for.
    pub fn unmeasured(&self) -> &'static str {
        if self.verdict == "monitoring" {
            "verified by monitoring after launch"
        } else {
            "not measurable: check by hand"
        }
    }
}

impl Measure {
    pub fn describe(&self) -> String {
        format!("{} = {} ({})", self.metric, fmt_num(self.value), self.step)
    }
}
