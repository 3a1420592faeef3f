//! `flow report`: the launch decision as data. GO only when every measurable requirement
//! passes; then each requirement with its source, target, verdict, the step that verified it and
//! the figures; each step with its state, approval, artifact and what it measured (quota
//! figures, change-set resources, load-test series, drill timelines, restore breakdowns); the
//! journal. [`crate::report`] renders it as HTML, Markdown, JUnit XML; `--json` is this struct.

use serde_json::{Map, Value};

use super::{load, pick_runbook, Env};
use crate::domain::catalogue::StepKind;
use crate::domain::event::Event;
use crate::domain::lifecycle::{Phase, State};
use crate::domain::metric;
use crate::domain::plan::Plan;
use crate::domain::runbook::RunbookView;
use crate::domain::verdict;
use crate::error::Result;
use crate::load::Second;

pub use crate::report::model::*;

fn num(m: &Map<String, Value>, k: &str) -> Option<f64> {
    m.get(k).and_then(Value::as_f64)
}

/// A change set's table, read back from the artifact that was approved.
fn changes(artifact: &str) -> Vec<(String, String, String, String)> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in artifact.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.first() == Some(&"ACTION") {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        if cols.len() != 4 || line.trim_start().starts_with("parameters:") {
            break;
        }
        rows.push((cols[0].into(), cols[1].into(), cols[2].into(), cols[3].into()));
    }
    rows
}

fn views(
    plan: &Plan,
    kind: Option<StepKind>,
    state: State,
    s: &crate::domain::lifecycle::StepView,
    step: &crate::domain::plan::Step,
) -> StepViews {
    let covers = &step.covers;
    let e = &s.evidence;
    let target = |k: crate::domain::requirement::Kind| {
        plan.requirements.iter().find(|r| covers.contains(&r.id) && r.kind == k).map(|r| r.value)
    };
    let mut v = StepViews::default();
    match kind {
        Some(StepKind::Quota) => {
            // Before the step has run, its params say which quota it checks.
            let text = |k: &str| {
                e.get(k).or_else(|| step.params.get(k)).and_then(Value::as_str).unwrap_or_default().to_string()
            };
            v.quota = Some(QuotaView {
                quota: format!("{}/{} {}", text("service_code"), text("quota_code"), text("quota_name"))
                    .trim()
                    .to_string(),
                current: num(e, "applied_value"),
                required: num(e, "required_value").or_else(|| num(&step.params, "required")),
                request: e.get("request_id").and_then(Value::as_str).map(str::to_string),
                status: e
                    .get("request_status")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(s.note.clone())
                    .unwrap_or_else(|| if state == State::Succeeded { "enough".into() } else { state.to_string() }),
            })
        }
        Some(StepKind::Changeset) => v.changes = s.artifact.as_deref().map(changes).unwrap_or_default(),
        Some(StepKind::Loadtest) if s.phase == Phase::Succeeded => {
            let series: Vec<Second> =
                e.get("series").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
            let percentiles = [
                ("p50", metric::LATENCY_P50_MS),
                ("p90", metric::LATENCY_P90_MS),
                ("p95", metric::LATENCY_P95_MS),
                ("p99", metric::LATENCY_P99_MS),
                ("p99.9", metric::LATENCY_P999_MS),
                ("max", metric::LATENCY_MAX_MS),
            ]
            .iter()
            .filter_map(|(label, k)| num(e, k).map(|v| (label.to_string(), v)))
            .collect();
            use crate::domain::requirement::Kind;
            let latency_targets = plan
                .requirements
                .iter()
                .filter(|r| covers.contains(&r.id))
                .filter_map(|r| match &r.kind {
                    Kind::LatencyAvg => Some(("avg".to_string(), r.value)),
                    Kind::LatencyP(p) => Some((format!("p{p}"), r.value)),
                    _ => None,
                })
                .collect();
            v.load = Some(LoadView {
                series,
                percentiles,
                throughput_rps: num(e, metric::THROUGHPUT_RPS),
                success_rate_pct: num(e, metric::SUCCESS_RATE_PCT),
                warmup_s: num(&step.params, "warmup_s").unwrap_or(0.0),
                rate_target: target(Kind::Throughput),
                latency_targets,
            });
        }
        Some(StepKind::FailoverDrill) if s.phase == Phase::Succeeded => {
            v.failover = Some(FailoverView {
                timeline: e.get("timeline").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default(),
                outages: e.get("outages").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default(),
                fault_at_ms: e.get("fault_at_ms").and_then(Value::as_u64).unwrap_or(0),
                end_ms: e.get("end_ms").and_then(Value::as_u64).unwrap_or(0),
                downtime_s: num(e, "downtime_s").unwrap_or(0.0),
                recovered: e.get("recovered").and_then(Value::as_bool).unwrap_or(false),
                max_downtime_s: num(e, "max_downtime_s"),
                alarms: e
                    .get("alarms")
                    .and_then(|a| a.get("fired"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        (
                            a.get("alarm").and_then(Value::as_str).unwrap_or_default().to_string(),
                            a.get("fired_at_s").and_then(Value::as_f64).unwrap_or(0.0),
                            a.get("ok_at_s").and_then(Value::as_f64),
                        )
                    })
                    .collect(),
                alarm_findings: e
                    .get("alarms")
                    .and_then(|a| a.get("findings"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect(),
            })
        }
        Some(StepKind::RestoreDrill) if s.phase == Phase::Succeeded => {
            use crate::domain::requirement::Kind;
            v.restore = Some(RestoreView {
                rto_s: num(e, metric::RTO_S),
                rto_restore_s: num(e, "rto_restore_s"),
                rto_probe_s: num(e, "rto_probe_s"),
                rpo_s: num(e, metric::RPO_S),
                rpo_measured_s: num(e, "rpo_measured_s"),
                rpo_worst_case_s: num(e, "rpo_worst_case_s"),
                rpo_worst_case_from: e.get("rpo_worst_case_from").and_then(Value::as_str).map(str::to_string),
                rto_target_s: target(Kind::Rto),
                rpo_target_s: target(Kind::Rpo),
            })
        }
        Some(StepKind::Assess) if s.phase == Phase::Succeeded => {
            v.findings = e.get("findings").and_then(|f| serde_json::from_value(f.clone()).ok()).unwrap_or_default();
            v.setup = e.get("setup").and_then(|f| serde_json::from_value(f.clone()).ok());
        }
        Some(StepKind::AlarmDrill) if s.phase == Phase::Succeeded => {
            let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            v.alarms = Some(AlarmView {
                alarms: e
                    .get("alarms")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        (text(a, "alarm"), a.get("delay_s").and_then(Value::as_f64).unwrap_or(0.0), text(a, "subject"))
                    })
                    .collect(),
                slowest_s: num(e, metric::NOTIFICATION_DELAY_S),
                bound_s: num(e, "max_delay_s"),
                findings: e
                    .get("findings")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect(),
            })
        }
        _ => {}
    }
    v
}

/// Each succeeded assess step after another: the findings of the one before that it no longer
/// shows (the same rule on the same resource is the same finding).
fn close_findings(mut steps: Vec<StepReport>) -> Vec<StepReport> {
    let mut before: Option<(String, Vec<crate::domain::assess::Finding>)> = None;
    for s in steps.iter_mut().filter(|s| s.kind == "assess" && s.state == State::Succeeded) {
        if let Some((since, earlier)) = before.take() {
            let findings = earlier
                .into_iter()
                .filter(|f| !s.findings.iter().any(|g| g.rule == f.rule && g.resource == f.resource))
                .collect();
            s.closed = Some(Closed { since, findings });
        }
        before = Some((s.id.clone(), s.findings.clone()));
    }
    steps
}

#[derive(Default)]
struct StepViews {
    quota: Option<QuotaView>,
    changes: Vec<(String, String, String, String)>,
    load: Option<LoadView>,
    failover: Option<FailoverView>,
    restore: Option<RestoreView>,
    alarms: Option<AlarmView>,
    findings: Vec<crate::domain::assess::Finding>,
    setup: Option<crate::domain::assess::Setup>,
}

/// The report of a plan and its projection (and journal).
pub fn build(plan: &Plan, view: &RunbookView, journal: Vec<Event>, generated_at: String) -> Report {
    let verdicts = verdict::verdicts(plan, view);
    let decision = verdict::decision(plan, view, &verdicts);
    let requirements: Vec<RequirementReport> = plan
        .requirements
        .iter()
        .zip(verdicts)
        .map(|(r, v)| {
            let steps: Vec<String> =
                plan.steps.iter().filter(|s| s.covers.contains(&r.id)).map(|s| s.id.clone()).collect();
            let measured_at = v.evidence.iter().filter_map(|m| view.step(&m.step).updated_at.clone()).max();
            RequirementReport {
                id: r.id.clone(),
                kind: r.kind.to_string(),
                text: r.text.clone(),
                source: plan.spec.clone(),
                line: r.line,
                target: crate::domain::human::target(r),
                scope: r.scope.clone(),
                verdict: v.verdict,
                measurable: v.measurable,
                why: v.why,
                steps,
                evidence: v.evidence,
                measured_at,
            }
        })
        .collect();
    let steps = plan
        .steps
        .iter()
        .map(|st| {
            let s = view.step(&st.id);
            let state = view.state(st);
            let v = views(plan, StepKind::parse(&st.kind), state, s, st);
            StepReport {
                id: st.id.clone(),
                kind: st.kind.clone(),
                description: st.description.clone(),
                state,
                needs: st.needs.clone(),
                covers: st.covers.clone(),
                gate: st.gated(),
                approval: s.approval.clone(),
                approvals: s.approvals.clone(),
                artifact: s.artifact.clone(),
                error: s.error.clone(),
                reason: s.reason.clone(),
                note: s.note.clone(),
                outputs: s.outputs.clone(),
                evidence: s.evidence.clone(),
                updated_at: s.updated_at.clone(),
                quota: v.quota,
                changes: v.changes,
                load: v.load,
                failover: v.failover,
                restore: v.restore,
                alarms: v.alarms,
                findings: v.findings,
                closed: None,
                setup: v.setup,
            }
        })
        .collect::<Vec<StepReport>>();
    let steps = close_findings(steps);
    let read = steps.iter().find_map(|s| s.setup.as_ref());
    let target = crate::domain::network::target(plan, read).ok();
    Report {
        version: REPORT_VERSION,
        runbook: plan.runbook.clone(),
        spec: plan.spec.clone(),
        plan_version: view.version,
        generated_at,
        decision,
        requirements,
        questions: plan.questions.clone(),
        steps,
        journal,
        target,
    }
}

/// The report of a runbook as the store has it now.
pub fn report(env: &Env, runbook: Option<&str>) -> Result<Report> {
    let j = env.open()?;
    let l = load(j.as_ref(), pick_runbook(j.as_ref(), runbook)?)?;
    let journal = j.events_after(&l.meta.name, 0)?;
    drop(j);
    Ok(build(&l.plan, &l.view, journal, env.now()))
}

/// The plan's DAG with the steps' states: `mermaid` or `dot`.
pub fn graph(env: &Env, runbook: Option<&str>, kind: crate::report::graph::Kind) -> Result<String> {
    let j = env.open()?;
    let l = load(j.as_ref(), pick_runbook(j.as_ref(), runbook)?)?;
    drop(j);
    Ok(crate::report::graph::draw(kind, &l.plan, &l.view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_set_table_is_read_back_from_its_artifact() {
        let artifact = "CREATE change set x on stack s (eu-west-1):\n  template: t.yaml (sha256:1)\n  ACTION   LOGICAL ID  TYPE              REPLACEMENT\n  Add      Vpc         AWS::EC2::VPC     -\n  Modify   Subnet      AWS::EC2::Subnet  True\n  parameters:\n    Cidr = 10.0.0.0/16\n";
        assert_eq!(
            changes(artifact),
            [
                ("Add".into(), "Vpc".into(), "AWS::EC2::VPC".into(), "-".into()),
                ("Modify".into(), "Subnet".into(), "AWS::EC2::Subnet".into(), "True".into())
            ]
        );
    }

    #[test]
    fn go_only_when_every_measurable_requirement_passes() {
        let spec = crate::domain::spec::parse("r.md", "- RTO 2 hours\n- RPO 10 minutes\n- The team shall rehearse.\n")
            .unwrap();
        let plan = crate::planner::builtin::plan("r", "r.md", &spec, None);
        let r = build(&plan, &RunbookView::default(), vec![], "t".into());
        assert!(!r.decision.go);
        assert_eq!(r.decision.word, "NO-GO");
        assert!(r.decision.headline.starts_with("NO-GO: the evidence does not support GO"), "{}", r.decision.headline);
        assert_eq!(r.decision.unverified, ["req-1", "req-2"]);
        assert_eq!(r.decision.by_hand, ["req-3"]);
        assert_eq!(r.requirements[0].source, "r.md");
    }

    /// A runbook half done, built and rendered without a store, a binary or AWS: the restore
    /// drill measured RTO and RPO (one passes, one misses), the load test failed, the rest has
    /// not run. The Markdown and JUnit renderings are pinned.
    #[test]
    fn renderers_from_a_constructed_runbook() {
        use crate::domain::event::{Body, Event};
        let spec = crate::domain::spec::parse(
            "r.md",
            "# Launch\n\n- RTO 2 hours\n- RPO 10 minutes\n- p99 latency under 1 s\n",
        )
        .unwrap();
        let plan = crate::planner::builtin::plan("r", "r.md", &spec, None);
        let restore = plan.steps.iter().find(|s| s.kind == "restore_drill").unwrap().id.clone();
        let load = plan.steps.iter().find(|s| s.kind == "loadtest").unwrap().id.clone();
        let evidence = serde_json::json!({"rto_s": 3600.0, "rpo_s": 900.0}).as_object().unwrap().clone();
        let bodies = vec![
            Body::Succeeded { step: restore.clone(), outputs: evidence.clone(), evidence },
            Body::Failed {
                step: load.clone(),
                error: "the load test is not evidence: no successful answer".into(),
                interrupted: false,
            },
        ];
        let journal: Vec<Event> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| Event {
                seq: i as u64 + 1,
                at: format!("2026-12-06T00:0{i}:00Z"),
                actor: "ana".into(),
                as_name: None,
                host: "build-1".into(),
                body,
            })
            .collect();
        let view = RunbookView::from_events(&journal);
        let r = build(&plan, &view, journal, "2026-12-06T01:00:00Z".into());
        let graph = crate::report::graph::mermaid(&plan, &view);
        let (md, charts) = crate::report::render(&r, crate::report::Format::Md, &graph, "report");
        insta::assert_snapshot!("report-md-constructed", md);
        let names: Vec<&str> = charts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["report-restore-drill-restore.svg"], "one chart, the restore drill's");
        let (junit, _) = crate::report::render(&r, crate::report::Format::Junit, "", "");
        insta::assert_snapshot!("report-junit-constructed", junit);
    }
}
