//! Verdicts and the launch decision. A requirement passes or fails only on evidence a
//! succeeded step recorded; one that is neither says why in one line (the step failed, was
//! skipped, has not run, recorded no figure). The decision has two parts: whether the evidence
//! supports GO, and what the person at the go/no-go gate decided. A rejected gate is NO-GO
//! whatever the evidence; the evidence alone is never a GO while the gate waits.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalogue::StepKind;
use super::human;
use super::lifecycle::{Phase, State};
use super::plan::{Plan, Step};
use super::requirement::{Kind, Requirement};
use super::runbook::RunbookView;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub id: String,
    pub kind: String,
    pub target: String,
    pub line: usize,
    /// pass, fail, unverified, or monitoring.
    pub verdict: String,
    pub measurable: bool,
    /// The evidence behind the verdict: which step measured what.
    pub evidence: Vec<Measure>,
    /// Why it is not a pass, in one line (a figure that misses, a step that failed, was
    /// skipped or has not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    pub step: String,
    pub metric: String,
    pub value: f64,
    pub pass: bool,
}

pub fn verdicts(plan: &Plan, view: &RunbookView) -> Vec<Verdict> {
    plan.requirements.iter().map(|r| verdict(plan, view, r)).collect()
}

/// The first line of a message, cut to a length a line can hold.
fn one_line(s: &str) -> String {
    let first = s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    if first.chars().count() > 200 {
        format!("{}...", first.chars().take(197).collect::<String>())
    } else {
        first.to_string()
    }
}

/// Why a covering step gave no figure for `metric`.
fn no_figure(s: &Step, view: &RunbookView, metric: &str) -> String {
    let v = view.step(&s.id);
    match v.phase {
        Phase::Failed if v.interrupted => format!("step `{}` was interrupted and waits for a person", s.id),
        Phase::Failed => {
            format!("step `{}` failed: {}", s.id, one_line(v.error.as_deref().unwrap_or("no reason recorded")))
        }
        Phase::Skipped => format!("step `{}` was {}", s.id, one_line(v.reason.as_deref().unwrap_or("skipped"))),
        Phase::Rejected => format!("step `{}` was {}", s.id, one_line(v.reason.as_deref().unwrap_or("rejected"))),
        Phase::Succeeded => format!("step `{}` recorded no {} figure", s.id, human::metric_name(metric)),
        _ => format!("step `{}` has not run yet ({})", s.id, view.state(s)),
    }
}

fn verdict(plan: &Plan, view: &RunbookView, r: &Requirement) -> Verdict {
    let mut evidence = Vec::new();
    let mut missing = Vec::new();
    let covering: Vec<&Step> = plan.steps.iter().filter(|s| s.covers.contains(&r.id)).collect();
    if let Some(metric) = r.kind.metric() {
        for s in &covering {
            let v = view.step(&s.id);
            let value = match (v.phase, v.evidence.get(&metric)) {
                (Phase::Succeeded, Some(Value::Number(n))) => n.as_f64(),
                (Phase::Succeeded, Some(Value::Bool(b))) => Some(if *b { 1.0 } else { 0.0 }),
                _ => None,
            };
            match value {
                Some(value) => evidence.push(Measure {
                    step: s.id.clone(),
                    metric: metric.clone(),
                    value,
                    pass: r.op.holds(value, r.value),
                }),
                None => missing.push(no_figure(s, view, &metric)),
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
    let why = match verdict {
        "fail" => {
            let misses: Vec<String> = evidence
                .iter()
                .filter(|m| !m.pass)
                .map(|m| {
                    format!(
                        "{} {} misses the target {} ({})",
                        human::metric_name(&m.metric),
                        human::metric(&m.metric, m.value),
                        human::target(r),
                        m.step
                    )
                })
                .collect();
            Some(misses.join("; "))
        }
        "unverified" if !r.kind.is_measurable() => None,
        "unverified" if covering.is_empty() => Some("no step of the plan verifies it".into()),
        "unverified" => Some(missing.join("; ")),
        _ => None,
    };
    Verdict {
        id: r.id.clone(),
        kind: r.kind.to_string(),
        target: human::target(r),
        line: r.line,
        verdict: verdict.into(),
        measurable: r.kind.is_measurable(),
        evidence,
        why,
    }
}

/// What a person at the go/no-go gate decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decided {
    /// The gate's step.
    pub step: String,
    /// Approved (go) or rejected (no-go).
    pub go: bool,
    /// The identity, with the display name they gave.
    pub by: String,
    pub at: String,
    /// The approval's comment, or the rejection's reason.
    pub comment: Option<String>,
}

/// A step that failed and was then skipped by a person: its failure is not forgotten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedFailure {
    pub step: String,
    pub error: String,
    pub skipped: String,
}

/// The launch decision: what the evidence supports, and what a person decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// GO: the evidence supports it and the person at the gate (if the plan has one) approved.
    pub go: bool,
    /// `GO`, `NO-GO`, or `UNDECIDED` (the evidence supports GO; the gate waits for a person).
    pub word: String,
    /// The first line of every report: the evidence, then the decision.
    pub headline: String,
    /// Does the evidence support GO: every measurable requirement passes (and there is one)?
    pub evidence_go: bool,
    /// The go/no-go gate (a decision step nothing else needs), if the plan has one.
    pub gate: Option<String>,
    /// What a person decided there, if anyone has.
    pub decided: Option<Decided>,
    pub failing: Vec<String>,
    pub unverified: Vec<String>,
    /// Promises no figure can verify: a person checks them.
    pub by_hand: Vec<String>,
    /// Targets monitoring verifies after launch (availability).
    #[serde(default)]
    pub monitored: Vec<String>,
    /// Steps that failed and were skipped: named on the first page.
    #[serde(default)]
    pub skipped_failures: Vec<SkippedFailure>,
    /// Questions the spec leaves open (`flow answer`): what the requirements are is not
    /// settled, so the evidence cannot support GO.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<String>,
}

/// The go/no-go gate: the decision steps no other step needs.
pub fn gate(plan: &Plan) -> Option<&Step> {
    plan.steps
        .iter()
        .filter(|s| StepKind::parse(&s.kind).is_some_and(StepKind::is_decision))
        .rfind(|s| !plan.steps.iter().any(|o| o.needs.contains(&s.id)))
}

pub fn decision(plan: &Plan, view: &RunbookView, verdicts: &[Verdict]) -> Decision {
    let ids = |f: &dyn Fn(&Verdict) -> bool| -> Vec<String> {
        verdicts.iter().filter(|v| f(v)).map(|v| v.id.clone()).collect()
    };
    let failing = ids(&|v| v.measurable && v.verdict == "fail");
    let unverified = ids(&|v| v.measurable && v.verdict == "unverified");
    let by_hand = ids(&|v| !v.measurable && v.verdict != "monitoring");
    let monitored = ids(&|v| !v.measurable && v.verdict == "monitoring");
    let questions: Vec<String> = plan.questions.iter().map(|q| q.id.clone()).collect();
    let evidence_go =
        failing.is_empty() && unverified.is_empty() && questions.is_empty() && verdicts.iter().any(|v| v.measurable);
    let gate = gate(plan);
    let decided = gate.and_then(|g| {
        let v = view.step(&g.id);
        match (v.phase, &v.approval, &v.rejection) {
            (Phase::Rejected, _, Some(r)) => Some(Decided {
                step: g.id.clone(),
                go: false,
                by: super::lifecycle::shown_as(&r.by, r.as_name.as_deref()),
                at: r.at.clone(),
                comment: Some(r.reason.clone()),
            }),
            (Phase::Succeeded, Some(a), _) => Some(Decided {
                step: g.id.clone(),
                go: true,
                by: super::lifecycle::shown_as(&a.by, a.as_name.as_deref()),
                at: a.at.clone(),
                comment: a.comment.clone(),
            }),
            _ => None,
        }
    });
    let skipped_failures = plan
        .steps
        .iter()
        .filter_map(|s| {
            let v = view.step(&s.id);
            (v.phase == Phase::Skipped).then_some(())?;
            Some(SkippedFailure {
                step: s.id.clone(),
                error: one_line(v.error.as_deref()?),
                skipped: v.reason.clone().unwrap_or_default(),
            })
        })
        .collect();
    let go = evidence_go && (gate.is_none() || decided.as_ref().is_some_and(|d| d.go));
    let word = match (&decided, evidence_go) {
        (Some(d), _) if !d.go => "NO-GO",
        (_, false) => "NO-GO",
        _ if go => "GO",
        _ => "UNDECIDED",
    };
    let evidence_text = if evidence_go {
        "the evidence supports GO: every measurable requirement passes on measured evidence".to_string()
    } else {
        let mut parts = Vec::new();
        if !failing.is_empty() {
            parts.push(format!("failing: {}", failing.join(", ")));
        }
        if !unverified.is_empty() {
            parts.push(format!("unverified: {}", unverified.join(", ")));
        }
        if !questions.is_empty() {
            parts.push(format!("open questions: {}", questions.join(", ")));
        }
        if parts.is_empty() {
            parts.push("no measurable requirement".into());
        }
        format!("the evidence does not support GO ({})", parts.join("; "))
    };
    let decided_text = match (&decided, gate) {
        (Some(d), _) => format!(
            "{} by {} at {}{}",
            if d.go { "approved" } else { "rejected" },
            d.by,
            d.at,
            d.comment.as_ref().map(|c| format!(": \"{c}\"")).unwrap_or_default()
        ),
        (None, Some(g)) => match view.state(g) {
            State::Skipped => format!(
                "no person decided: the `{}` gate was {}",
                g.id,
                view.step(&g.id).reason.clone().unwrap_or_default()
            ),
            _ => format!("no person has decided yet (`flow approve {}` or `flow reject {} --reason ...`)", g.id, g.id),
        },
        (None, None) => "the plan has no go/no-go gate: the evidence decides".into(),
    };
    let headline = format!("{word}: {evidence_text}; {decided_text}");
    Decision {
        go,
        word: word.into(),
        headline,
        evidence_go,
        gate: gate.map(|g| g.id.clone()),
        decided,
        failing,
        unverified,
        by_hand,
        monitored,
        skipped_failures,
        questions,
    }
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
    /// `throughput 2,625 req/s (peak-load)`.
    pub fn describe(&self) -> String {
        format!("{} {} ({})", human::metric_name(&self.metric), human::metric(&self.metric, self.value), self.step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{Body, Event};
    use serde_json::{json, Map};

    fn plan() -> Plan {
        let spec = crate::domain::spec::parse("r.md", "- RTO 2 hours\n- RPO 10 minutes\n").unwrap();
        let mut p = Plan::of("rb", vec![], spec.requirements);
        let step = |id: &str, kind: &str, needs: &[&str], covers: &[&str]| Step {
            id: id.into(),
            kind: kind.into(),
            description: String::new(),
            needs: needs.iter().map(|s| s.to_string()).collect(),
            covers: covers.iter().map(|s| s.to_string()).collect(),
            gate: true,
            params: Map::new(),
        };
        p.steps = vec![
            step("drill", "restore_drill", &[], &["req-1", "req-2"]),
            step("go-no-go", "approval", &["drill"], &[]),
        ];
        p
    }

    fn view(bodies: Vec<Body>) -> RunbookView {
        let events: Vec<Event> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| Event {
                seq: i as u64 + 1,
                at: "T".into(),
                actor: "x".into(),
                as_name: None,
                host: String::new(),
                body,
            })
            .collect();
        RunbookView::from_events(&events)
    }

    fn measured(rto: f64, rpo: f64) -> Body {
        let ev = json!({"rto_s": rto, "rpo_s": rpo}).as_object().unwrap().clone();
        Body::Succeeded { step: "drill".into(), outputs: ev.clone(), evidence: ev }
    }

    fn approved_gate() -> Vec<Body> {
        vec![
            Body::PreviewRecorded {
                step: "go-no-go".into(),
                artifact: "a".into(),
                artifact_digest: "d".into(),
                params_digest: "p".into(),
            },
            Body::Approved {
                step: "go-no-go".into(),
                by: "ana".into(),
                comment: Some("ship it".into()),
                artifact_digest: "d".into(),
                params_digest: "p".into(),
                shown: None,
                as_name: None,
                complete: true,
                missing: vec![],
            },
            Body::Succeeded { step: "go-no-go".into(), outputs: Map::new(), evidence: Map::new() },
        ]
    }

    /// (what happened, word, evidence supports GO, why of req-1)
    type Case<'a> = (&'a str, Vec<Body>, &'a str, bool, Option<&'a str>);

    #[test]
    fn decision_table() {
        let p = plan();
        let cases: Vec<Case> = vec![
            ("nothing ran", vec![], "NO-GO", false, Some("step `drill` has not run yet (ready)")),
            ("passing evidence, gate waiting", vec![measured(3.0, 60.0)], "UNDECIDED", true, None),
            (
                "passing evidence, gate approved",
                [vec![measured(3.0, 60.0)], approved_gate()].concat(),
                "GO",
                true,
                None,
            ),
            (
                "passing evidence, gate rejected",
                vec![
                    measured(3.0, 60.0),
                    Body::PreviewRecorded {
                        step: "go-no-go".into(),
                        artifact: "a".into(),
                        artifact_digest: "d".into(),
                        params_digest: "p".into(),
                    },
                    Body::Rejected {
                        step: "go-no-go".into(),
                        by: "bob".into(),
                        as_name: None,
                        reason: "not this week".into(),
                    },
                ],
                "NO-GO",
                true,
                None,
            ),
            (
                "failing evidence, gate approved",
                [vec![measured(9000.0, 60.0)], approved_gate()].concat(),
                "NO-GO",
                false,
                Some("RTO 2 h 30 min misses the target <= 2 h (drill)"),
            ),
            (
                "the drill failed and was skipped",
                vec![
                    Body::Failed { step: "drill".into(), error: "restore job failed\nmore".into(), interrupted: false },
                    Body::Skipped { step: "drill".into(), by: "ana".into(), reason: "no backup yet".into() },
                ],
                "NO-GO",
                false,
                Some("step `drill` was skipped by ana: no backup yet"),
            ),
        ];
        for (what, bodies, word, evidence_go, why) in cases {
            let v = view(bodies);
            let vs = verdicts(&p, &v);
            let d = decision(&p, &v, &vs);
            assert_eq!((d.word.as_str(), d.evidence_go), (word, evidence_go), "{what}: {}", d.headline);
            assert_eq!(d.go, word == "GO", "{what}");
            assert_eq!(vs[0].why.as_deref(), why, "{what}");
            assert_eq!(d.gate.as_deref(), Some("go-no-go"));
            assert!(d.headline.starts_with(word), "{what}: {}", d.headline);
        }
    }

    #[test]
    fn a_rejected_gate_and_a_skipped_failure_are_named_up_front() {
        let p = plan();
        let v = view(vec![
            measured(3.0, 60.0),
            Body::PreviewRecorded {
                step: "go-no-go".into(),
                artifact: "a".into(),
                artifact_digest: "d".into(),
                params_digest: "p".into(),
            },
            Body::Rejected {
                step: "go-no-go".into(),
                by: "bob".into(),
                as_name: None,
                reason: "wrong database".into(),
            },
        ]);
        let d = decision(&p, &v, &verdicts(&p, &v));
        assert_eq!(
            d.headline,
            "NO-GO: the evidence supports GO: every measurable requirement passes on measured evidence; rejected by bob at T: \"wrong database\""
        );
        let v = view(vec![
            Body::Failed { step: "drill".into(), error: "boom".into(), interrupted: false },
            Body::Skipped { step: "drill".into(), by: "ana".into(), reason: "later".into() },
        ]);
        let d = decision(&p, &v, &verdicts(&p, &v));
        assert_eq!(
            d.skipped_failures,
            [SkippedFailure { step: "drill".into(), error: "boom".into(), skipped: "skipped by ana: later".into() }]
        );
    }

    /// Each way a requirement gets its verdict: pass and fail on figures (a number, a yes/no),
    /// fail when any covering step misses, monitoring for uptime no drill measures, unverified
    /// with the reason (no step covers it, the step failed or has not run).
    #[test]
    fn verdict_table() {
        let text = "- RTO 2 hours\n- RPO 10 minutes\n- 99.9% availability\n- survive the loss of one Availability Zone\n- p99 latency under 1 s\n";
        let spec = crate::domain::spec::parse("r.md", text).unwrap();
        let mut p = Plan::of("rb", vec![], spec.requirements);
        let step = |id: &str, kind: &str, covers: &[&str]| Step {
            id: id.into(),
            kind: kind.into(),
            description: String::new(),
            needs: vec![],
            covers: covers.iter().map(|s| s.to_string()).collect(),
            gate: true,
            params: Map::new(),
        };
        p.steps = vec![
            step("drill", "restore_drill", &["req-1", "req-2"]),
            step("drill-2", "restore_drill", &["req-1"]),
            step("failover", "failover_drill", &["req-4"]),
        ];
        let ev = |v: Value| v.as_object().unwrap().clone();
        let happened = view(vec![
            Body::Succeeded {
                step: "drill".into(),
                outputs: Map::new(),
                evidence: ev(json!({"rto_s": 3600.0, "rpo_s": 60.0})),
            },
            Body::Succeeded { step: "drill-2".into(), outputs: Map::new(), evidence: ev(json!({"rto_s": 9000.0})) },
            Body::Failed {
                step: "failover".into(),
                error: "the probe endpoint did not answer\nsecond line".into(),
                interrupted: false,
            },
        ]);
        let v = verdicts(&p, &happened);
        let got: Vec<(&str, &str, Option<&str>)> =
            v.iter().map(|v| (v.id.as_str(), v.verdict.as_str(), v.why.as_deref())).collect();
        assert_eq!(
            got,
            [
                ("req-1", "fail", Some("RTO 2 h 30 min misses the target <= 2 h (drill-2)")),
                ("req-2", "pass", None),
                ("req-3", "monitoring", None),
                ("req-4", "unverified", Some("step `failover` failed: the probe endpoint did not answer")),
                ("req-5", "unverified", Some("no step of the plan verifies it")),
            ]
        );
        assert_eq!(
            v[0].evidence.iter().map(|m| m.pass).collect::<Vec<_>>(),
            [true, false],
            "each step's figure judged"
        );

        // A yes/no figure: the drill tolerated the loss of the AZ.
        let tolerated = view(vec![Body::Succeeded {
            step: "failover".into(),
            outputs: Map::new(),
            evidence: ev(json!({"az_failure_tolerated": true})),
        }]);
        let v = verdicts(&p, &tolerated);
        assert_eq!((v[3].verdict.as_str(), v[3].evidence[0].value), ("pass", 1.0));
        assert_eq!(
            v[0].why.as_deref(),
            Some("step `drill` has not run yet (ready); step `drill-2` has not run yet (ready)")
        );
    }
}
