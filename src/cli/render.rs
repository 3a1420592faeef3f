//! Text for people, rendered from the same structs `--json` prints.

use serde_json::Value;

use crate::app::log::{Exchanges, Log};
use crate::app::plan::Planned;
use crate::app::run::RunReport;
use crate::app::status::Status;
use crate::domain::digest;
use crate::domain::lifecycle::{shown_as, State};
use crate::domain::metric;
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

pub fn status(st: &Status) -> String {
    let mut out = format!("runbook {} (plan version {}, {})\n", st.runbook, st.version, st.workflow.display());
    if let Some(l) = &st.lease {
        out.push_str(&format!("lease: `flow run` by {l}\n"));
    }
    for rule in &st.policy {
        out.push_str(&format!("approval policy: {rule}\n"));
    }
    if let Some(d) = &st.workflow_edited {
        out.push_str(&format!(
            "note: the workflow file was edited since version {} ({}); `flow run` will validate and record it\n",
            st.version,
            diff(d)
        ));
    }
    if let Some(why) = &st.workflow_invalid {
        out.push_str(&format!(
            "warning: `flow run` will refuse the workflow file until it is fixed (or `flow plan` writes it again); the steps below are plan version {}:\n",
            st.version
        ));
        for line in why.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out.push_str(&format!("\n{:<22} {:<15} {:<17} {}\n", "STEP", "KIND", "STATE", "DETAIL"));
    for s in &st.steps {
        let mut detail = Vec::new();
        if let (Some(b), State::Pending | State::Ready) = (&s.blocked, s.state) {
            detail.push(b.clone());
        }
        if let Some(e) = &s.error {
            detail.push(e.clone());
        }
        if s.state == State::Failed {
            detail.push(next_for_failed(&s.id));
        }
        if let Some(r) = &s.reason {
            detail.push(r.clone());
        }
        if s.state == State::Waiting {
            detail.push(format!(
                "{} (next poll {})",
                s.note.clone().unwrap_or_default(),
                s.next_poll_at.clone().unwrap_or_default()
            ));
        }
        if let Some(a) = &s.approval {
            detail.push(format!("approved by {} at {}", shown_as(&a.by, a.as_name.as_deref()), a.at));
        } else if !s.approvals.is_empty() {
            let by: Vec<String> = s.approvals.iter().map(|a| shown_as(&a.by, a.as_name.as_deref())).collect();
            detail.push(format!("approved so far by {}", by.join(", ")));
        }
        if !s.missing.is_empty() {
            detail.push(format!("still needs {}", s.missing.join("; ")));
        }
        if let Some(flag) = &s.flag {
            detail.push(format!("! {flag}"));
        }
        if let Some(void) = &s.approval_void {
            detail.push(format!("approval void: {void}"));
        }
        if s.state == State::Succeeded && !s.outputs.is_empty() {
            detail.push(outputs(&s.outputs));
        }
        let row = format!("{:<22} {:<15} {:<17} {}", s.id, s.kind, s.state, detail.join("; "));
        out.push_str(row.trim_end());
        out.push('\n');
    }
    let waiting: Vec<_> = st.in_state(State::WaitingApproval).collect();
    if !waiting.is_empty() {
        out.push_str("\nwaiting for approval:\n");
        for s in waiting {
            out.push_str(&format!(
                "  {} ({}), will:\n",
                s.id,
                s.artifact_digest.as_deref().map(digest::short).unwrap_or("")
            ));
            for line in s.will.as_deref().unwrap_or_default().lines() {
                out.push_str(&format!("    {line}\n"));
            }
            let d = s.artifact_digest.as_deref().map(digest::short).unwrap_or("");
            out.push_str(&format!(
                "    -> flow approve {} --digest {d}   |   flow reject {} --reason ...\n",
                s.id, s.id
            ));
        }
    }
    if !st.questions.is_empty() {
        out.push('\n');
        out.push_str(&questions(&st.questions, Some(&st.runbook)));
    }
    out.push_str("\nrequirements:\n");
    for v in &st.requirements {
        let ev: Vec<String> = v.evidence.iter().map(|m| m.describe()).collect();
        let mut note = if v.measurable || !v.evidence.is_empty() { ev.join("; ") } else { v.unmeasured().into() };
        if let Some(why) = &v.why {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(why);
        }
        let row = format!("  {:<10} {:<12} {:<22} {:<18} {}", v.verdict, v.id, v.kind, v.target, note);
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out.push_str(&format!("\nnext: {}\n", next_command(st)));
    out
}

/// What to do next, from where the runbook stands.
fn next_command(st: &Status) -> String {
    let any = |state: State| st.steps.iter().any(|s| s.state == state);
    let started = st.steps.iter().any(|s| !matches!(s.state, State::Pending | State::Ready));
    if st.workflow_invalid.is_some() {
        format!("fix {} as the warning above says, then `flow run`", st.workflow.display())
    } else if !st.questions.is_empty() {
        "settle the questions above with `flow answer`, then `flow plan` again".into()
    } else if any(State::WaitingApproval) {
        "review what each waiting step will do, then `flow approve STEP --digest D` (or `flow reject`); then `flow run`"
            .into()
    } else if any(State::Failed) {
        "`flow retry STEP` after fixing the cause, or `flow skip STEP --reason ...`".into()
    } else if any(State::Waiting) {
        "`flow run --wait` polls what is pending outside until it is done or a gate waits".into()
    } else if !started {
        "`flow run` runs the ready steps and stops at the first gates. No AWS account to try it on? \
         `scripts/demo` (in flow's repository) runs this launch end to end on 127.0.0.1"
            .into()
    } else if st.steps.iter().all(|s| matches!(s.state, State::Succeeded | State::Skipped | State::Rejected)) {
        format!("`flow report` writes the go/no-go decision to {}-report.html", st.runbook)
    } else {
        "`flow run` runs the steps that are ready".into()
    }
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

pub fn load(r: &crate::load::Report) -> String {
    let lat = |l: &crate::load::Latency| {
        format!(
            "mean {:.2}  p50 {:.2}  p90 {:.2}  p95 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ms",
            l.mean_ms, l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms
        )
    };
    let c = &r.counts;
    let mut out = format!(
        "throughput {:.1} req/s (successful answers)  success {:.3} %\n\
         rate       target {}  sent {:.1} req/s\n\
         requests   scheduled {}  sent {}  completed {}  ok {}  in flight {}  unsent {}\n\
         latency    {}   (from the intended send time)\n\
         service    {}   (from the actual send)\n",
        r.throughput_rps,
        r.success_rate_pct,
        r.target_rate.map(|t| format!("{t} req/s")).unwrap_or_else(|| "none (closed model)".into()),
        r.achieved_rate,
        c.scheduled,
        c.sent,
        c.completed,
        c.ok,
        c.in_flight,
        c.unsent,
        lat(&r.latency),
        lat(&r.uncorrected_latency)
    );
    if let Some(cm) = &r.connect_ms {
        out.push_str(&format!(
            "connect    {} connections  mean {:.2}  p99 {:.2} ms\n",
            r.connections_opened, cm.mean_ms, cm.p99_ms
        ));
    }
    let errors: Vec<String> = r.errors.iter().filter(|(_, v)| **v > 0).map(|(k, v)| format!("{k} {v}")).collect();
    out.push_str(&format!("errors     {}\n", if errors.is_empty() { "none".into() } else { errors.join("  ") }));
    out.push_str(&format!(
        "generator  {:.3} cores  RSS {:.1} MiB (peak {:.1})  send lag p99 {:.2} ms  scheduler lag p99 {:.2} ms\n",
        r.generator.cpu_cores,
        r.generator.rss_mib,
        r.generator.peak_rss_mib,
        r.generator.send_lag_ms.p99_ms,
        r.generator.scheduler_lag_p99_ms
    ));
    for w in &r.workers {
        out.push_str(&format!(
            "worker     {}: {}\n",
            w.worker,
            match &w.failed {
                Some(why) => format!("FAILED, {why}"),
                None => format!(
                    "target {}  sent {:.1} req/s  p99 {:.2} ms  {:.3} cores  scheduler lag p99 {:.2} ms{}",
                    w.target_rate.map(|t| format!("{t} req/s")).unwrap_or_else(|| "none".into()),
                    w.achieved_rate,
                    w.p99_ms,
                    w.cpu_cores,
                    w.scheduler_lag_p99_ms,
                    if w.behind { "  BEHIND its schedule" } else { "" }
                ),
            }
        ));
    }
    for w in &r.warnings {
        out.push_str(&format!("warning    {w}\n"));
    }
    if let Some(why) = &r.invalid_reason {
        out.push_str(&format!("INVALID    {why}\n"));
    }
    if let Some(why) = &r.unanswered {
        out.push_str(&format!("NO ANSWER  {why}\n"));
    }
    if r.aborted {
        out.push_str("aborted    a threshold failed during the run\n");
    }
    for v in &r.verdicts {
        out.push_str(&format!("threshold  {}\n", v.describe()));
    }
    out
}

/// A drill's figures, for a person.
pub fn drill(r: &crate::app::drill::DrillReport) -> String {
    use crate::domain::requirement::fmt_num;
    let e = &r.evidence;
    let num = |k: &str| e.get(k).and_then(Value::as_f64).map(fmt_num).unwrap_or_else(|| "unknown".into());
    let mut out = String::new();
    if r.drill == "failover_drill" {
        out.push_str(&format!(
            "downtime   {} s (longest outage)   recovered {}   time to recover {} s\n",
            num("downtime_s"),
            e.get("recovered").and_then(Value::as_bool).map(|b| if b { "yes" } else { "no" }).unwrap_or("unknown"),
            num("time_to_recover_s")
        ));
        out.push_str(&format!(
            "probes     {} every {} ms, {} % answered\n",
            num("probes"),
            num("probe_interval_ms"),
            num("probe_success_pct")
        ));
        for o in e.get("outages").and_then(Value::as_array).into_iter().flatten() {
            let at = |k: &str| {
                o.get(k).and_then(Value::as_f64).map(|ms| fmt_num(ms / 1000.0)).unwrap_or_else(|| "end".into())
            };
            out.push_str(&format!(
                "outage     {} s to {} s ({} s)\n",
                at("start_ms"),
                at("end_ms"),
                num_of(o, "duration_s")
            ));
        }
    } else if r.drill == "alarm_drill" {
        for a in e.get("alarms").and_then(Value::as_array).into_iter().flatten() {
            out.push_str(&format!(
                "alarm      {}: notified in {} s ({})\n",
                a.get("alarm").and_then(Value::as_str).unwrap_or_default(),
                num_of(a, "delay_s"),
                a.get("subject").and_then(Value::as_str).unwrap_or_default()
            ));
        }
        for f in e.get("findings").and_then(Value::as_array).into_iter().flatten() {
            out.push_str(&format!("finding    {}\n", f.as_str().unwrap_or_default()));
        }
        out.push_str(&format!(
            "slowest    {} s; every alarm set back, queue {} removed\n",
            num(metric::NOTIFICATION_DELAY_S),
            e.get("queue").and_then(Value::as_str).unwrap_or_default()
        ));
    } else {
        out.push_str(&format!("rto        {} s\n", num(metric::RTO_S)));
        out.push_str(&format!(
            "rpo        {} s (measured {}, worst case {})\n",
            num(metric::RPO_S),
            num("rpo_measured_s"),
            num("rpo_worst_case_s")
        ));
        if let Some(c) = e.get("cleanup").filter(|c| !c.is_null()) {
            out.push_str(&format!(
                "cleanup    exit {}\n",
                c.get("exit_code").map(Value::to_string).unwrap_or_else(|| "none".into())
            ));
        }
    }
    for b in &r.bounds {
        if b.metric == "recovered" {
            let back = if b.pass { "yes (pass)" } else { "no: still down when the watch ended (FAIL)" };
            out.push_str(&format!("bound      came back by itself: {back}\n"));
            continue;
        }
        // Every bound a drill holds is a time: said as people read one.
        use crate::domain::human;
        out.push_str(&format!(
            "bound      {} <= {}: {} ({})\n",
            human::metric_name(b.metric),
            human::duration_s(b.limit),
            b.measured.map(human::duration_s).unwrap_or_else(|| "unknown".into()),
            if b.pass { "pass" } else { "FAIL" }
        ));
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

fn num_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_f64).map(crate::domain::requirement::fmt_num).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cut_text_says_so() {
        assert_eq!(super::clip("short", 70), "short");
        let long = "WHEN launch traffic arrives THE SYSTEM SHALL handle 2,500 connections per second";
        let cut = super::clip(long, 70);
        assert_eq!(cut.chars().count(), 70);
        assert!(cut.ends_with("connections…"), "{cut}");
        // Characters, not bytes: no panic inside a multi-byte one.
        assert_eq!(super::clip(&"é".repeat(80), 10), format!("{}…", "é".repeat(9)));
    }

    use crate::app::status::{Status, StepStatus};
    use crate::domain::lifecycle::State;

    fn step(id: &str, kind: &str, state: State) -> StepStatus {
        StepStatus {
            id: id.into(),
            kind: kind.into(),
            state,
            gate: true,
            needs: vec![],
            covers: vec![],
            attempt: 1,
            will: None,
            artifact_digest: None,
            approval: None,
            approvals: vec![],
            missing: vec![],
            author: None,
            approval_void: None,
            next_poll_at: None,
            note: None,
            error: None,
            interrupted: false,
            blocked: None,
            reason: None,
            outputs: Default::default(),
            evidence: Default::default(),
            updated_at: None,
            flag: None,
        }
    }

    /// `flow status` from constructed values: a gate waiting with what it will do, a failed
    /// step with its error, a succeeded one, one not run, and the requirements' verdicts.
    #[test]
    fn status_from_constructed_values() {
        use crate::domain::event::{Body, Event};
        let spec = crate::domain::spec::parse("r.md", "# Launch\n\n- RTO 2 hours\n- p99 latency under 1 s\n").unwrap();
        let mut plan = crate::planner::builtin::plan("r", "r.md", &spec, None);
        plan.steps.retain(|s| ["restore_drill", "loadtest", "changeset", "approval"].contains(&s.kind.as_str()));
        let evidence = serde_json::json!({"rto_s": 3600.0}).as_object().unwrap().clone();
        let done = Event {
            seq: 1,
            at: "2026-12-06T00:00:00Z".into(),
            actor: "ana".into(),
            as_name: None,
            host: String::new(),
            body: Body::Succeeded {
                step: "restore-drill".into(),
                outputs: evidence.clone(),
                evidence: evidence.clone(),
            },
        };
        let fail = Event {
            seq: 2,
            body: Body::Failed {
                step: "load-test".into(),
                error: "the load test is not evidence: no successful answer".into(),
                interrupted: false,
            },
            ..done.clone()
        };
        let view = crate::domain::runbook::RunbookView::from_events(&[done, fail]);
        let mut gate = step("changeset-backup", "changeset", State::WaitingApproval);
        gate.will = Some(
            "CREATE change set flow-backup on stack app-backup (eu-west-1):\n  Add  Vault  AWS::Backup::BackupVault"
                .into(),
        );
        gate.artifact_digest = Some("sha256:0123456789abcdef0123".into());
        let mut failed = step("load-test", "loadtest", State::Failed);
        failed.error = Some("the load test is not evidence: no successful answer".into());
        failed.covers = vec!["launch-2".into()];
        let mut drill = step("restore-drill", "restore_drill", State::Succeeded);
        drill.needs = vec!["changeset-backup".into()];
        drill.covers = vec!["launch-1".into()];
        drill.evidence = evidence;
        let mut go = step("go-no-go", "approval", State::Pending);
        go.needs = vec!["load-test".into(), "restore-drill".into()];
        let st = Status {
            runbook: "r".into(),
            version: 2,
            workflow: "workflows/r.toml".into(),
            workflow_edited: None,
            workflow_invalid: None,
            steps: vec![failed, gate, drill, go],
            requirements: crate::domain::verdict::verdicts(&plan, &view),
            lease: None,
            you: "ana".into(),
            policy: vec![],
            spec: "r.md".into(),
            questions: vec![],
        };
        insta::assert_snapshot!("status-constructed", super::status(&st));
    }

    /// `flow assess` from the launch scenario's starting point, constructed: one instance in a
    /// small VPC, one NAT gateway for two AZs.
    #[test]
    fn assessment_from_constructed_values() {
        use crate::domain::assess::{findings, scenario, Needs};
        let setup = scenario();
        let needs = Needs { subnets: 6, prefix: 24, fleet_max: None };
        let judged = findings(&setup, &needs)
            .into_iter()
            .map(|f| crate::app::assess::Judged { finding: f, requirements: vec!["launch-4".into()] })
            .collect();
        let a = crate::app::assess::Assessment { version: 1, setup, findings: judged };
        insta::assert_snapshot!("assessment-constructed", super::assessment(&a));
    }
}
