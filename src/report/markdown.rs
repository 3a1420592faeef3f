//! The report in Markdown: the same content as the HTML, tables for the figures, the DAG as a
//! Mermaid block, and the charts as SVG files written beside it (linked by name).

use super::charts;
use super::model::Report;
use crate::domain::human;
use crate::domain::requirement::fmt_num;

/// Text from people and commands (names, comments, reasons, errors, output) as Markdown shows
/// it literally: no HTML it could carry is rendered, no table it sits in is broken.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('|', "\\|").replace('\n', " ")
}

/// The text, and the chart files (name, SVG) to write beside it; `stem` prefixes their names.
pub fn render(r: &Report, graph: &str, stem: &str) -> (String, Vec<(String, String)>) {
    let d = &r.decision;
    let mut files = Vec::new();
    let mut md = format!("# Launch decision: {}\n\n**{}**\n\n", r.runbook, d.word);
    md.push_str(&format!("- Evidence: {}", if d.evidence_go { "supports GO" } else { "does not support GO" }));
    if !d.failing.is_empty() {
        md.push_str(&format!("; failing: {}", d.failing.join(", ")));
    }
    if !d.unverified.is_empty() {
        md.push_str(&format!("; unverified: {}", d.unverified.join(", ")));
    }
    if !d.questions.is_empty() {
        md.push_str(&format!("; open questions: {}", d.questions.join(", ")));
    }
    md.push_str(&format!("\n- Decision: {}", esc(&super::html::decided(d))));
    for f in &d.skipped_failures {
        md.push_str(&format!("\n- **Failed, then skipped**: `{}` ({}; {})", f.step, esc(&f.error), esc(&f.skipped)));
    }
    md.push_str(&format!(
        "\n\nSpec `{}`, plan version {}, generated {} by flow.\n",
        r.spec, r.plan_version, r.generated_at
    ));
    if !d.by_hand.is_empty() {
        md.push_str(&format!("\nTo check by hand: {}.\n", d.by_hand.join(", ")));
    }
    if !d.monitored.is_empty() {
        md.push_str(&format!("\nTo verify by monitoring after launch: {}.\n", d.monitored.join(", ")));
    }
    md.push_str("\n## Requirements\n\n| id | requirement | target | verdict | verified by | figures |\n|---|---|---|---|---|---|\n");
    for q in &r.requirements {
        let verdict = match (q.measurable, q.verdict.as_str()) {
            (true, v) => v,
            (false, "monitoring") => "monitoring after launch",
            (false, _) => "check by hand",
        };
        let steps: Vec<String> = q.steps.iter().map(|s| format!("[{s}](#step-{s})")).collect();
        let mut figures: Vec<String> = q
            .evidence
            .iter()
            .map(|m| {
                format!(
                    "{} {} ({})",
                    human::metric_name(&m.metric),
                    human::metric(&m.metric, m.value),
                    if m.pass { "meets" } else { "misses" }
                )
            })
            .collect();
        figures.extend(q.why.as_deref().map(esc));
        md.push_str(&format!(
            "| `{}` | {} ({}:{}) | {} | **{}** | {} | {} |\n",
            q.id,
            match &q.scope {
                Some(s) => esc(&format!("{} (scope: {s})", q.text)),
                None => esc(&q.text),
            },
            q.source,
            q.line,
            q.target,
            verdict,
            steps.join(" "),
            figures.join("; ")
        ));
    }
    if !r.questions.is_empty() {
        md.push_str("\n## Open questions\n\nThe spec leaves these open: no step verifies them until a person answers (`flow answer Q --use N`).\n\n");
        for q in &r.questions {
            md.push_str(&format!("- **{}** (line {}): {}\n", q.id, q.line, esc(&q.why)));
            for (i, rd) in q.readings.iter().enumerate() {
                md.push_str(&format!("  {}. {} {} (line {})\n", i + 1, rd.kind, human::target(rd), rd.line));
            }
        }
    }
    md.push_str(&format!("\n## The plan\n\n```mermaid\n{graph}```\n\n## Steps\n"));
    for s in &r.steps {
        md.push_str(&format!("\n### <a id=\"step-{0}\"></a>{0} ({1}): {2}\n\n", s.id, s.kind, s.state));
        if !s.description.is_empty() {
            md.push_str(&format!("{}\n\n", esc(&s.description)));
        }
        if let Some(a) = &s.approval {
            md.push_str(&format!(
                "Approved by **{}** at {}{} (artifact `{}`).\n\n",
                esc(&crate::domain::lifecycle::shown_as(&a.by, a.as_name.as_deref())),
                a.at,
                a.comment.as_ref().map(|c| format!(": \"{}\"", esc(c))).unwrap_or_default(),
                a.artifact_digest
            ));
        }
        if let Some(e) = &s.error {
            md.push_str(&format!("Error: {}\n\n", esc(e)));
        }
        if let Some(q) = &s.quota {
            md.push_str(&format!(
                "| quota | current | required | request | status |\n|---|---|---|---|---|\n| {} | {} | {} | {} | {} |\n\n",
                q.quota,
                q.current.map(fmt_num).unwrap_or_default(),
                q.required.map(fmt_num).unwrap_or_default(),
                q.request.clone().unwrap_or_else(|| "none".into()),
                q.status
            ));
        }
        if !s.changes.is_empty() {
            md.push_str("| action | logical id | type | replacement |\n|---|---|---|---|\n");
            for (a, id, ty, rep) in &s.changes {
                md.push_str(&format!("| {a} | {id} | {ty} | {rep} |\n"));
            }
            md.push('\n');
        }
        let mut chart = |name: &str, svg: String, md: &mut String| {
            let file = format!("{stem}-{}-{name}.svg", s.id);
            md.push_str(&format!("![{} {name}]({file})\n\n", s.id));
            files.push((file, svg));
        };
        if let Some(l) = &s.load {
            md.push_str(&format!(
                "Throughput {} req/s, success {} %.\n\n",
                l.throughput_rps.map(fmt_num).unwrap_or_default(),
                l.success_rate_pct.map(fmt_num).unwrap_or_default()
            ));
            if !l.series.is_empty() {
                chart("latency", charts::latency_over_time(l), &mut md);
                chart("throughput", charts::throughput_over_time(l), &mut md);
            }
            if !l.percentiles.is_empty() {
                chart("distribution", charts::latency_distribution(l), &mut md);
            }
        }
        if let Some(f) = &s.failover {
            md.push_str(&format!(
                "Longest outage {} s; came back by itself: {}.\n\n",
                fmt_num(f.downtime_s),
                if f.recovered { "yes" } else { "no" }
            ));
            chart("probes", charts::probe_timeline(f), &mut md);
            if !f.alarms.is_empty() {
                md.push_str("| alarm | fired (s after the fault) | back to OK (s after the fault) |\n|---|---|---|\n");
                for (name, at, ok) in &f.alarms {
                    md.push_str(&format!(
                        "| {} | {} | {} |\n",
                        esc(name),
                        fmt_num(*at),
                        ok.map(fmt_num).unwrap_or_else(|| "still in ALARM".into())
                    ));
                }
                md.push('\n');
            }
            for x in &f.alarm_findings {
                md.push_str(&format!("- finding: {}\n", esc(x)));
            }
            if !f.alarm_findings.is_empty() {
                md.push('\n');
            }
        }
        if let Some(rs) = &s.restore {
            md.push_str(&format!(
                "RTO {} s, RPO {} s.\n\n",
                rs.rto_s.map(fmt_num).unwrap_or_else(|| "unknown".into()),
                rs.rpo_s.map(fmt_num).unwrap_or_else(|| "unknown".into())
            ));
            chart("restore", charts::restore_breakdown(rs), &mut md);
        }
        if let Some(c) = &s.closed {
            md.push_str(&format!(
                "Closed since `{}`: {} finding{}; still open: {}.\n\n",
                esc(&c.since),
                c.findings.len(),
                if c.findings.len() == 1 { "" } else { "s" },
                s.findings.len()
            ));
            for f in &c.findings {
                md.push_str(&format!("- closed: {} (`{}`)\n", esc(&f.what), esc(&f.resource)));
            }
            if !c.findings.is_empty() {
                md.push('\n');
            }
        }
        if !s.findings.is_empty() {
            md.push_str("| severity | finding | resource | evidence | threatens |\n|---|---|---|---|---|\n");
            for f in &s.findings {
                md.push_str(&format!(
                    "| {} | {} | `{}` | {} | {} |\n",
                    if f.severity == crate::domain::assess::Severity::High { "**high**" } else { "medium" },
                    esc(&f.what),
                    esc(&f.resource),
                    esc(&f.evidence),
                    f.threatens.join(", ")
                ));
            }
            md.push('\n');
        }
        if let Some(a) = &s.alarms {
            md.push_str(&format!(
                "Slowest notification {} s{}.\n\n| alarm | notified in (s) | subject |\n|---|---|---|\n",
                a.slowest_s.map(fmt_num).unwrap_or_else(|| "unknown".into()),
                a.bound_s.map(|b| format!(" (bound {} s)", fmt_num(b))).unwrap_or_default()
            ));
            for (name, delay, subject) in &a.alarms {
                md.push_str(&format!("| {} | {} | {} |\n", esc(name), fmt_num(*delay), esc(subject)));
            }
            for f in &a.findings {
                md.push_str(&format!("\n- finding: {}\n", esc(f)));
            }
            md.push('\n');
        }
    }
    md.push_str("\n## Journal\n\n```text\n");
    for e in &r.journal {
        // Inside the fence nothing renders; a fence in a journal line must not close it.
        md.push_str(&super::text::event(e).replace("```", "'''"));
        md.push('\n');
    }
    md.push_str("```\n");
    (md, files)
}
