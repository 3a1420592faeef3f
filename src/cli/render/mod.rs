//! Text for people, rendered from the same structs `--json` prints.

mod evidence;
mod status;

pub use evidence::*;
pub use status::*;

use serde_json::Value;

use crate::app::log::{Exchanges, Log};
use crate::app::plan::Planned;
use crate::app::run::RunReport;
use crate::domain::digest;
use crate::domain::lifecycle::State;
use crate::domain::requirement::Requirement;
use crate::domain::spec::{Level, Spec};
use crate::domain::validate;
use crate::engine::RunOutcome;

pub use crate::domain::human::visible;
pub use crate::report::text::{diff, event};

/// At most `width` characters; a cut text ends with "…" so it does not read as whole.
fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let cut: String = text.chars().take(width - 1).collect();
    format!("{}…", cut.trim_end())
}

fn req_row(r: &Requirement) -> String {
    let lines: Vec<String> = r.all_lines().iter().map(|l| l.to_string()).collect();
    let scope = r.scope.as_deref().map(|s| format!("[{s}] ")).unwrap_or_default();
    let text = clip(&format!("{scope}{}", r.text), 70);
    let row = format!("  {:<14} {:<22} {:<18} {:>5}  {}", r.id, r.kind.to_string(), r.target(), lines.join(","), text);
    format!("{}\n", row.trim_end())
}

pub fn spec(path: &str, s: &Spec) -> String {
    let measurable = s.requirements.iter().filter(|r| r.kind.is_measurable()).count();
    let monitored = s.requirements.iter().filter(|r| r.kind.has_target() && !r.kind.is_measurable()).count();
    let extra = if monitored > 0 { format!(", {monitored} verified by monitoring") } else { String::new() };
    let mut out = format!("{path}: {} requirements ({measurable} measurable{extra})\n", s.requirements.len());
    if !s.requirements.is_empty() {
        out.push_str(&format!("  {:<14} {:<22} {:<18} {:>5}  {}\n", "ID", "KIND", "TARGET", "LINE", "TEXT"));
    }
    for r in &s.requirements {
        out.push_str(&req_row(r));
        if let Some(n) = &r.note {
            out.push_str(&format!("  {:<14} note: {n}\n", ""));
        }
    }
    if !s.diagnostics.is_empty() {
        out.push_str("diagnostics:\n");
        for d in &s.diagnostics {
            let level = match d.level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Note => "note",
            };
            let at = match (d.line, d.other_line) {
                (Some(l), Some(o)) => format!("line {l} (and line {o}): "),
                (Some(l), None) => format!("line {l}: "),
                _ => String::new(),
            };
            out.push_str(&format!("  {level:<7} {at}{}\n", d.message));
        }
    }
    out.push_str(&questions(&s.questions, None));
    if !s.unread.is_empty() {
        out.push_str("not read as requirements:\n");
        for u in &s.unread {
            out.push_str(&format!("  line {}: '{}' not read as a requirement: {}\n", u.line, u.figure, u.why));
        }
    }
    if let Some(x) = &s.llm {
        out.push_str(&format!(
            "the model ({} {}): {} proposed, {} kept, {} as flow read them, {} rejected, {} read otherwise by flow\n",
            x.provider,
            x.model,
            x.proposed,
            x.kept.len(),
            x.agreed.len(),
            x.rejected.len(),
            x.disagreements.len()
        ));
        if !x.kept.is_empty() {
            out.push_str(&format!("  kept (source llm): {}\n", x.kept.join(", ")));
        }
        for d in &x.disagreements {
            out.push_str(&format!(
                "  line {}: the model reads \"{}\" as {}; flow reads {}; flow's reading is used\n",
                d.line, d.quote, d.model, d.builtin
            ));
        }
        for r in &x.rejected {
            match r.line {
                Some(l) => out.push_str(&format!("  rejected line {l}: \"{}\" ({}): {}\n", r.quote, r.proposal, r.why)),
                None => out.push_str(&format!("  rejected: {}\n", r.why)),
            }
        }
    }
    if !s.context.is_empty() {
        out.push_str("context:\n");
        for (k, v) in &s.context {
            out.push_str(&format!("  {k}: {v}\n"));
        }
    }
    out
}

/// The open questions, each with its readings and the command that settles it.
pub fn questions(qs: &[crate::domain::spec::Question], runbook: Option<&str>) -> String {
    if qs.is_empty() {
        return String::new();
    }
    let rb = runbook.map(|r| format!(" -r {r}")).unwrap_or_default();
    let mut out = format!("questions ({}): flow is not sure, and asks instead of guessing\n", qs.len());
    for q in qs {
        out.push_str(&format!("  {} (line {}): {}\n", q.id, q.line, q.why));
        for (i, r) in q.readings.iter().enumerate() {
            out.push_str(&format!("    {}. {} {} (line {})\n", i + 1, r.kind, crate::domain::human::target(r), r.line));
        }
        out.push_str(&format!("    -> flow answer {}{rb} --use N   |   flow answer {}{rb} --none\n", q.id, q.id));
    }
    out
}

pub fn plan(p: &Planned) -> String {
    let (plan, version, wf) = (&p.plan, p.version, &p.workflow);
    let mut out = match (&p.diff, p.unchanged) {
        (_, true) if p.kept_edit.is_some() => format!(
            "runbook {}: the planner's plan is unchanged; version {version}, the edit of {wf}, stays current\n",
            plan.runbook
        ),
        (_, true) => format!("runbook {}: plan unchanged (version {version}); {wf} left as it is\n", plan.runbook),
        (None, _) => format!("runbook {}: plan version {version} ({}) written to {wf}\n", plan.runbook, plan.planner),
        (Some(d), _) => format!(
            "runbook {}: plan version {version} ({}) written to {wf}\nchanges: {}\n  unchanged steps keep their state and evidence; changed steps lose their approvals\n",
            plan.runbook,
            plan.planner,
            diff(d)
        ),
    };
    if let Some(l) = &p.lost {
        out.push_str(&format!("discarded (--force):\n{}", l.describe()));
    }
    out.push_str("\nrequirements:\n");
    for r in &plan.requirements {
        out.push_str(&req_row(r));
    }
    if !plan.questions.is_empty() {
        out.push('\n');
        out.push_str(&questions(&plan.questions, Some(&plan.runbook)));
        out.push_str("  (a requirement with an open question is not covered by any step until it is answered)\n");
    }
    out.push_str("\nsteps (dependency order):\n");
    let index = plan.index();
    for (i, id) in validate::topo_order(plan).iter().enumerate() {
        let Some(&at) = index.get(id) else { continue };
        let (s, shown) = (&plan.steps[at], &p.steps[at]);
        let needs = if s.needs.is_empty() { "-".into() } else { s.needs.join(", ") };
        let covers = if s.covers.is_empty() { String::new() } else { format!("  covers: {}", s.covers.join(", ")) };
        out.push_str(&format!(
            "  {:>2}. {:<20} {:<15} {:<5} needs: {needs}{covers}\n",
            i + 1,
            s.id,
            s.kind,
            if shown.gate { "gate" } else { "" }
        ));
        if !s.description.is_empty() {
            out.push_str(&format!("      {}\n", s.description));
        }
        if let Some(flag) = shown.flag {
            let run = s.params.get("run").and_then(Value::as_str).unwrap_or_default();
            out.push_str(&format!("      ! {flag}: $ {run}\n"));
        }
    }
    out.push_str("\nnext: `flow run` runs the ready steps and stops at the first gates\n");
    out
}

pub fn run(r: &RunReport) -> String {
    let mut out = String::new();
    let ids = |state: State| r.steps.iter().filter(move |s| s.state == state);
    match r.outcome {
        RunOutcome::Done => out.push_str("done: every step succeeded or was skipped\n"),
        RunOutcome::Failed => {
            out.push_str("failed:\n");
            for s in ids(State::Failed) {
                out.push_str(&format!(
                    "  {}: {}\n    {}\n",
                    s.id,
                    s.why.clone().unwrap_or_default(),
                    next_for_failed(&s.id)
                ));
            }
            for s in ids(State::Rejected) {
                out.push_str(&format!("  {}: {}\n", s.id, s.why.clone().unwrap_or_default()));
            }
        }
        RunOutcome::WaitingApproval => {
            out.push_str("waiting for approval:\n");
            for s in ids(State::WaitingApproval) {
                out.push_str(&format!(
                    "  {id}: review with `flow status`, then `flow approve {id} --digest {d}` or `flow reject {id} --reason ...`\n",
                    id = s.id,
                    d = s.digest.as_deref().map(digest::short).unwrap_or("...")
                ));
            }
        }
        RunOutcome::Waiting => {
            out.push_str(&format!(
                "waiting on external progress; run `flow run` again after {}\n",
                r.next_poll_at.clone().unwrap_or_default()
            ));
        }
        RunOutcome::Unsupported => {
            out.push_str("blocked:\n");
            for s in &r.steps {
                if let (Some(b), State::Pending | State::Ready) = (&s.blocked, s.state) {
                    out.push_str(&format!("  {}: {b}\n", s.id));
                }
            }
        }
    }
    out
}

/// What a person can do about a failed step.
pub fn next_for_failed(step: &str) -> String {
    format!("next: `flow retry {step}` to run it again, or `flow skip {step} --reason ...` to go on without it")
}

/// A step's outputs for people: the figures that matter first (throughput and success rate
/// before latencies), with their units; at most five.
pub fn outputs(o: &serde_json::Map<String, Value>) -> String {
    use crate::domain::{human, metric as m};
    let first = [m::THROUGHPUT_RPS, m::SUCCESS_RATE_PCT, m::LATENCY_AVG_MS, m::LATENCY_P99_MS];
    let mut keys: Vec<&String> = o.keys().collect();
    keys.sort_by_key(|k| (first.iter().position(|f| f == k).unwrap_or(first.len()), k.to_string()));
    let parts: Vec<String> = keys
        .into_iter()
        .take(5)
        .map(|k| match &o[k] {
            Value::Number(n) if human::metric_unit(k).is_some() => {
                format!("{} {}", human::metric_name(k), human::metric(k, n.as_f64().unwrap_or_default()))
            }
            Value::String(v) => format!("{k}={v}"),
            v => format!("{k}={v}"),
        })
        .collect();
    parts.join(", ")
}

pub fn log(l: &Log) -> String {
    l.events.iter().map(|e| format!("{}\n", event(e))).collect()
}

pub fn exchanges(x: &Exchanges) -> String {
    let mut out = String::new();
    for e in &x.exchanges {
        out.push_str(&format!("{} {}:{} {} round {}\n", e.at, e.provider, e.model, e.question, e.round));
        if let Some(err) = &e.error {
            out.push_str(&format!("  error: {err}\n"));
        }
        for v in &e.violations {
            out.push_str(&format!("  violation: {v}\n"));
        }
        if let Some(a) = &e.answer {
            let a: String = a.chars().take(400).collect();
            out.push_str(&format!("  answer: {a}\n"));
        }
    }
    out
}

/// `flow assess`: what runs, then each finding with its evidence and what it threatens.
pub fn assessment(a: &crate::app::assess::Assessment) -> String {
    use crate::domain::assess::Severity;
    let s = &a.setup;
    let mut out = format!("{}\n", s.summary());
    for n in &s.subnets {
        out.push_str(&format!(
            "  subnet {} {} {} {} free, {}\n",
            n.id,
            n.az,
            n.cidr,
            n.free,
            match (&n.nat, n.public) {
                (_, true) => "public".to_string(),
                (Some(nat), _) => format!("private via {nat}"),
                (None, _) => "private, no default route".to_string(),
            }
        ));
    }
    for i in &s.instances {
        out.push_str(&format!(
            "  instance {} {} {}{}\n",
            i.id,
            i.instance_type,
            i.az,
            i.auto_scaling_group.as_ref().map(|g| format!(" in {g}")).unwrap_or_default()
        ));
    }
    for d in &s.databases {
        out.push_str(&format!(
            "  database {} {} {}, {}, automated backups {}{}\n",
            d.id,
            d.engine,
            d.az,
            if d.multi_az { "Multi-AZ" } else { "single-AZ" },
            if d.backup_retention_days == 0 { "off".to_string() } else { format!("{} days", d.backup_retention_days) },
            if s.backed_up.contains(&d.arn) { ", in AWS Backup" } else { "" }
        ));
    }
    if a.findings.is_empty() {
        out.push_str("no findings: nothing here threatens a requirement flow knows\n");
        return out;
    }
    let high = a.findings.iter().filter(|f| f.finding.severity == Severity::High).count();
    out.push_str(&format!("findings ({high} high, {} medium):\n", a.findings.len() - high));
    for j in &a.findings {
        let f = &j.finding;
        out.push_str(&format!(
            "  {:<6} {:<20} {}\n         evidence: {}\n         threatens: {}\n",
            if f.severity == Severity::High { "HIGH" } else { "medium" },
            f.rule,
            f.what,
            f.evidence,
            if j.requirements.is_empty() { f.threatens.join(", ") } else { j.requirements.join(", ") }
        ));
    }
    out
}

#[cfg(test)]
mod tests;
