//! The report as one self-contained HTML file (maud): inline CSS and inline SVG charts, no
//! script, no font or image fetched from anywhere; dark text on light, readable printed and on
//! a phone; every verdict colour has its word beside it.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use super::charts;
use super::model::{Report, RequirementReport, StepReport};
use crate::domain::human;
use crate::domain::requirement::fmt_num;

const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a; background: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 16px; }
h1 { font-size: 1.6em; margin: 0.2em 0; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px; margin-top: 2em; }
h3 { margin-bottom: 0.3em; }
small, .muted { color: #555; }
table { border-collapse: collapse; width: 100%; margin: 0.5em 0; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid #e4e4e4; }
th { background: #f4f4f4; }
.scroll { overflow-x: auto; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 13px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 0.9em; }
.pass { background: #0072b2; color: #fff; }
.fail { background: #d55e00; color: #fff; }
.unverified { background: #f0e442; color: #1a1a1a; }
.by-hand { background: #e4e4e4; color: #1a1a1a; }
.decision { font-size: 1.3em; padding: 12px; border: 3px solid; border-radius: 6px; }
.decision.go { border-color: #0072b2; }
.decision.nogo { border-color: #d55e00; }
.decision.undecided { border-color: #e69f00; }
.warn { border-left: 4px solid #d55e00; padding-left: 8px; }
.chart svg { max-width: 100%; height: auto; }
article.step { border-top: 1px solid #ddd; padding-top: 4px; }
pre.journal { white-space: pre-wrap; overflow-wrap: anywhere; }
@media print {
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  .scroll, pre { overflow: visible; }
  pre { white-space: pre-wrap; overflow-wrap: anywhere; }
  h2, h3 { break-after: avoid; }
  .chart, tr, .decision { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  details { display: block; }
  details::details-content { display: block; content-visibility: visible; }
  details > summary { font-weight: 600; }
  .badge { border: 1px solid #1a1a1a; }
  @page { margin: 14mm; }
}
"#;

fn badge(verdict: &str) -> Markup {
    let class = match verdict {
        "pass" => "pass",
        "fail" => "fail",
        "unverified" => "unverified",
        _ => "by-hand",
    };
    html! { span class={ "badge " (class) } { (verdict) } }
}

fn chart(svg: String) -> Markup {
    html! { div class="chart" { (PreEscaped(svg)) } }
}

fn value(v: &Value) -> String {
    match v {
        Value::Number(n) => n.as_f64().map(fmt_num).unwrap_or_else(|| n.to_string()),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn requirement(r: &RequirementReport) -> Markup {
    let verdict = match (r.measurable, r.verdict.as_str()) {
        (true, v) => v,
        (false, "monitoring") => "monitoring after launch",
        (false, _) => "check by hand",
    };
    html! {
        tr id={ "req-" (r.id) } {
            td { code { (r.id) } }
            td {
                (r.text) br;
                small { (r.source) ":" (r.line) @if let Some(s) = &r.scope { " · " (s) } }
            }
            td { (r.target) }
            td { (badge(verdict)) @if let Some(w) = &r.why { br; small { (w) } } }
            td { @for s in &r.steps { a href={ "#step-" (s) } { (s) } " " } }
            td {
                @for m in &r.evidence {
                    (human::metric_name(&m.metric)) " " strong { (human::metric(&m.metric, m.value)) } " " (if m.pass { "(meets)" } else { "(misses)" }) br;
                }
                @if let Some(at) = &r.measured_at { small { "taken " (at) } }
            }
        }
    }
}

/// What the gate of a step with no approval means now.
fn gate_words(s: &StepReport) -> &'static str {
    use crate::domain::lifecycle::State;
    match s.state {
        State::Succeeded => "no approval needed: it had nothing to change",
        State::WaitingApproval => "waits for approval",
        State::Rejected => "rejected at its gate",
        State::Skipped => "skipped before its gate",
        _ => "gated: not approved yet",
    }
}

fn step(s: &StepReport) -> Markup {
    html! {
        article class="step" id={ "step-" (s.id) } {
            h3 { (s.id) " " small { (s.kind) } " " span class="badge by-hand" { (s.state) } }
            @if !s.description.is_empty() { p { (s.description) } }
            @if !s.covers.is_empty() { p { small { "verifies: " @for c in &s.covers { a href={ "#req-" (c) } { (c) } " " } } } }
            @if let Some(a) = &s.approval {
                p {
                    "approved by " strong { (crate::domain::lifecycle::shown_as(&a.by, a.as_name.as_deref())) } " at " (a.at)
                    @if let Some(c) = &a.comment { ": “" (c) "”" }
                    br; small { "artifact " code { (a.artifact_digest) } }
                }
            } @else if s.gate {
                p { small { (gate_words(s)) } }
            }
            @if s.approvals.len() > 1 {
                p { small { "approvals: " @for a in &s.approvals { (crate::domain::lifecycle::shown_as(&a.by, a.as_name.as_deref())) " at " (a.at) "; " } } }
            }
            @if let Some(e) = &s.error { p { strong { "error: " } (e) } }
            @if let Some(r) = &s.reason { p { (r) } }
            @if let Some(q) = &s.quota {
                div class="scroll" { table {
                    tr { th { "quota" } th { "current" } th { "required" } th { "request" } th { "status" } }
                    tr {
                        td { (q.quota) }
                        td { (q.current.map(fmt_num).unwrap_or_default()) }
                        td { (q.required.map(fmt_num).unwrap_or_default()) }
                        td { (q.request.clone().unwrap_or_else(|| "none".into())) }
                        td { (q.status) }
                    }
                } }
            }
            @if !s.changes.is_empty() {
                div class="scroll" { table {
                    tr { th { "action" } th { "logical id" } th { "type" } th { "replacement" } }
                    @for (a, id, ty, r) in &s.changes { tr { td { (a) } td { (id) } td { (ty) } td { (r) } } }
                } }
            }
            @if let Some(l) = &s.load {
                p {
                    "throughput " strong { (l.throughput_rps.map(|v| human::grouped(v.round())).unwrap_or_default()) " req/s" }
                    ", success " strong { (l.success_rate_pct.map(fmt_num).unwrap_or_default()) " %" }
                    @if l.warmup_s > 0.0 { small { " (after a " (human::duration_s(l.warmup_s)) " warm-up, shaded in the charts)" } }
                }
                @if !l.series.is_empty() {
                    (chart(charts::latency_over_time(l)))
                    (chart(charts::throughput_over_time(l)))
                }
                @if !l.percentiles.is_empty() { (chart(charts::latency_distribution(l))) }
            }
            @if let Some(f) = &s.failover {
                p {
                    "longest outage " strong { (human::duration_s(f.downtime_s)) }
                    @if let Some(b) = f.max_downtime_s { " (bound " (human::duration_s(b)) ")" }
                    "; came back by itself: " strong { (if f.recovered { "yes" } else { "no" }) }
                }
                (chart(charts::probe_timeline(f)))
                @if !f.alarms.is_empty() {
                    div class="scroll" { table {
                        tr { th { "alarm" } th { "fired (s after the fault)" } th { "back to OK" } }
                        @for (name, at, ok) in &f.alarms {
                            tr {
                                td { (name) }
                                td { (fmt_num(*at)) }
                                td { (ok.map(fmt_num).unwrap_or_else(|| "still in ALARM".into())) }
                            }
                        }
                    } }
                }
                @for x in &f.alarm_findings { p { small { "finding: " (x) } } }
                @if !f.outages.is_empty() {
                    div class="scroll" { table {
                        tr { th { "outage from (s)" } th { "to (s)" } th { "lasted (s)" } }
                        @for o in &f.outages {
                            tr {
                                td { (fmt_num(o.start_ms as f64 / 1000.0)) }
                                td { (o.end_ms.map(|e| fmt_num(e as f64 / 1000.0)).unwrap_or_else(|| "still down".into())) }
                                td { (fmt_num(o.duration_s)) }
                            }
                        }
                    } }
                }
            }
            @if let Some(r) = &s.restore {
                p {
                    "RTO " strong { (r.rto_s.map(human::duration_s).unwrap_or_else(|| "unknown".into())) }
                    @if let Some(t) = r.rto_target_s { " (target " (human::duration_s(t)) ")" }
                    ", RPO " strong { (r.rpo_s.map(human::duration_s).unwrap_or_else(|| "unknown".into())) }
                    @if let Some(t) = r.rpo_target_s { " (target " (human::duration_s(t)) ")" }
                    @if let Some(from) = &r.rpo_worst_case_from { br; small { "worst case from " (from) } }
                }
                (chart(charts::restore_breakdown(r)))
            }
            @if let Some(setup) = &s.setup {
                div class="scroll architecture" { (PreEscaped(crate::report::architecture::svg(setup, &format!("{} as {} read it", setup.vpc.id, s.id)))) }
            }
            @if let Some(c) = &s.closed {
                p {
                    "Closed since " code { (c.since) } ": " strong { (c.findings.len()) } " finding"
                    @if c.findings.len() != 1 { "s" }
                    "; still open: " strong { (s.findings.len()) } "."
                }
                @if !c.findings.is_empty() {
                    ul { @for f in &c.findings { li { "closed: " (f.what) " (" code { (f.resource) } ")" } } }
                }
            }
            @if !s.findings.is_empty() {
                div class="scroll" { table {
                    tr { th { "severity" } th { "finding" } th { "resource" } th { "evidence" } th { "threatens" } }
                    @for f in &s.findings {
                        tr {
                            td { @if f.severity == crate::domain::assess::Severity::High { strong { "high" } } @else { "medium" } }
                            td { (f.what) } td { code { (f.resource) } } td { (f.evidence) } td { (f.threatens.join(", ")) }
                        }
                    }
                } }
            }
            @if let Some(a) = &s.alarms {
                p {
                    "Slowest notification " strong { (a.slowest_s.map(human::duration_s).unwrap_or_else(|| "unknown".into())) }
                    @if let Some(b) = a.bound_s { " (bound " (human::duration_s(b)) ")" }
                }
                div class="scroll" { table {
                    tr { th { "alarm" } th { "notified in" } th { "subject" } }
                    @for (name, delay, subject) in &a.alarms {
                        tr { td { (name) } td { (human::duration_s(*delay)) } td { (subject) } }
                    }
                } }
                @for f in &a.findings { p { small { "finding: " (f) } } }
            }
            @if !s.outputs.is_empty() {
                details { summary { "outputs" } div class="scroll" { table {
                    @for (k, v) in &s.outputs { tr { td { code { (k) } } td { (value(v)) } } }
                } } }
            }
            @if let Some(a) = &s.artifact { details { summary { "what was shown for approval" } pre { (a) } } }
        }
    }
}

/// What the person at the gate decided, in words.
pub fn decided(d: &crate::domain::verdict::Decision) -> String {
    match (&d.decided, &d.gate) {
        (Some(x), _) => format!(
            "{} by {} at {}{}",
            if x.go { "GO, approved" } else { "NO-GO, rejected" },
            x.by,
            x.at,
            x.comment.as_ref().map(|c| format!(": “{c}”")).unwrap_or_default()
        ),
        (None, Some(g)) => format!("not decided yet (the `{g}` gate waits for a person)"),
        (None, None) => "the plan has no go/no-go gate: the evidence decides".into(),
    }
}

pub fn render(r: &Report) -> String {
    let d = &r.decision;
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "flow report: " (r.runbook) ": " (d.word) }
                style { (PreEscaped(CSS)) }
            }
            body { main {
                header {
                    h1 { "Launch decision: " (r.runbook) }
                    p class={ "decision " (match d.word.as_str() { "GO" => "go", "UNDECIDED" => "undecided", _ => "nogo" }) } {
                        strong id="decision" { (d.word) }
                        br;
                        span id="evidence" { "Evidence: " (if d.evidence_go { "supports GO" } else { "does not support GO" }) }
                        @if !d.failing.is_empty() { "; failing: " @for id in &d.failing { a href={ "#req-" (id) } { (id) } " " } }
                        @if !d.unverified.is_empty() { "; unverified: " @for id in &d.unverified { a href={ "#req-" (id) } { (id) } " " } }
                        @if !d.questions.is_empty() { "; open questions: " @for id in &d.questions { (id) " " } }
                        br;
                        span id="decided" { "Decision: " (decided(d)) }
                    }
                    @if !d.skipped_failures.is_empty() {
                        p class="warn" id="skipped-failures" {
                            strong { "Failed, then skipped: " }
                            @for f in &d.skipped_failures { a href={ "#step-" (f.step) } { (f.step) } " (" (f.error) "; " (f.skipped) ") " }
                        }
                    }
                    @if !d.by_hand.is_empty() { p { "to check by hand: " @for id in &d.by_hand { a href={ "#req-" (id) } { (id) } " " } } }
                    @if !d.monitored.is_empty() { p { "to verify by monitoring after launch: " @for id in &d.monitored { a href={ "#req-" (id) } { (id) } " " } } }
                    p class="muted" { "spec " (r.spec) ", plan version " (r.plan_version) ", generated " (r.generated_at) " by flow" }
                }
                section id="requirements" {
                    h2 { "Requirements" }
                    div class="scroll" { table {
                        tr { th { "id" } th { "requirement" } th { "target" } th { "verdict" } th { "verified by" } th { "figures" } }
                        @for q in &r.requirements { (requirement(q)) }
                    } }
                }
                @if !r.questions.is_empty() {
                    section id="questions" {
                        h2 { "Open questions" }
                        p { "The spec leaves these open: no step verifies them until a person answers (" code { "flow answer Q --use N" } ")." }
                        @for q in &r.questions {
                            p { strong { (q.id) } " (line " (q.line) "): " (q.why) }
                            ol { @for rd in &q.readings { li { (rd.kind.to_string()) " " (crate::domain::human::target(rd)) " (line " (rd.line) ")" } } }
                        }
                    }
                }
                @if let Some(t) = &r.target {
                    section id="target" {
                        h2 { "Target architecture" }
                        p { small { "What the change sets make of " (t.vpc.id) "; resources named " code { "new-" } " are theirs." } }
                        div class="scroll architecture" { (PreEscaped(crate::report::architecture::svg(t, &format!("{} as the plan makes it", t.vpc.id)))) }
                    }
                }
                section id="steps" {
                    h2 { "Steps" }
                    @for s in &r.steps { (step(s)) }
                }
                section id="journal" {
                    h2 { "Journal" }
                    pre class="journal" { @for e in &r.journal { (super::text::event(e)) "\n" } }
                }
            } }
        }
    };
    page.into_string()
}
