//! The `flow` command line: parse flags, resolve them once, dispatch, render. Human output on
//! stdout (progress on stderr); `--json` prints exactly one JSON document on stdout.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use crate::clock::{rfc3339, Shifted};
use crate::domain::plan::Plan;
use crate::domain::requirement::Requirement;
use crate::domain::runbook::{diff, Body, Event, Phase, PlanDiff};
use crate::domain::spec::{self, Spec};
use crate::domain::{validate, verdict};
use crate::engine::{Engine, Options, Report};
use crate::error::{Error, Result};
use crate::ops::{self, Env};
use crate::{exit, planner, workflow};

#[derive(Parser, Debug)]
#[command(name = "flow", version, about = "Launch-readiness runbooks: spec -> plan -> gated, resumable run -> evidence")]
pub struct Cli {
    /// State directory (sled store).
    #[arg(long, global = true, env = "FLOW_STATE", default_value = "state")]
    state: PathBuf,
    /// Runbook to act on (default: the only one in the store).
    #[arg(long, short = 'r', global = true, env = "FLOW_RUNBOOK")]
    runbook: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse a spec and show its requirements and context.
    Spec {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Plan a spec: validate the DAG, write workflows/<name>.toml, record the version.
    Plan {
        spec: PathBuf,
        #[arg(long, default_value = "builtin", value_parser = ["builtin"])]
        planner: String,
        /// Where workflow files go.
        #[arg(long, env = "FLOW_WORKFLOWS", default_value = "workflows")]
        workflows: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run every ready step; stop at gates and long waits.
    Run {
        /// Keep polling external waits until done or blocked on a person.
        #[arg(long)]
        wait: bool,
        /// Steps run at once, at most.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
        #[arg(long)]
        json: bool,
    },
    /// Steps, gates waiting and requirement verdicts.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Approve what a gated step showed.
    Approve {
        step: String,
        /// Who approves (default: the OS user).
        #[arg(long = "as")]
        by: Option<String>,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a gated step.
    Reject {
        step: String,
        #[arg(long)]
        reason: String,
        #[arg(long = "as")]
        by: Option<String>,
    },
    /// Run a failed or rejected step again.
    Retry {
        step: String,
        #[arg(long = "as")]
        by: Option<String>,
    },
    /// Mark a step as skipped (its requirements stay unverified).
    Skip {
        step: String,
        #[arg(long)]
        reason: String,
        #[arg(long = "as")]
        by: Option<String>,
    },
    /// The runbook's journal.
    Log {
        #[arg(long)]
        json: bool,
    },
}

/// Run the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit::USAGE } else { exit::OK };
        }
    };
    init_tracing();
    let clock = match Shifted::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let env = Env { state: cli.state.clone(), actor: ops::os_user(), clock: Arc::new(clock) };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::INTERNAL;
        }
    };
    match rt.block_on(dispatch(&env, cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOW_LOG").unwrap_or_else(|_| "warn".into());
    let ansi = std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

async fn dispatch(env: &Env, cli: Cli) -> Result<i32> {
    let rb = cli.runbook.as_deref();
    let by = |b: Option<String>| b.unwrap_or_else(|| env.actor.clone());
    match cli.command {
        Command::Spec { file, json } => {
            let s = spec::load(&file)?;
            if json {
                print_json(&json!({"requirements": s.requirements, "context": s.context}));
            } else {
                print!("{}", render_spec(&file.display().to_string(), &s));
            }
            Ok(exit::OK)
        }
        Command::Plan { spec: path, planner: _, workflows, json } => cmd_plan(env, &path, &workflows, json),
        Command::Run { wait, jobs, json } => cmd_run(env, rb, wait, jobs, json).await,
        Command::Status { json } => cmd_status(env, rb, json),
        Command::Approve { step, by: who, comment } => {
            let e = ops::approve(env, rb, &step, &by(who), comment)?;
            println!("approved `{step}` as {} (event #{}); `flow run` carries it out", e.actor, e.seq);
            Ok(exit::OK)
        }
        Command::Reject { step, reason, by: who } => {
            let e = ops::reject(env, rb, &step, &by(who), &reason)?;
            println!("rejected `{step}` (event #{})", e.seq);
            Ok(exit::OK)
        }
        Command::Retry { step, by: who } => {
            let e = ops::retry(env, rb, &step, &by(who))?;
            println!("`{step}` will run again at the next `flow run` (event #{})", e.seq);
            Ok(exit::OK)
        }
        Command::Skip { step, reason, by: who } => {
            let e = ops::skip(env, rb, &step, &by(who), &reason)?;
            println!("skipped `{step}` (event #{})", e.seq);
            Ok(exit::OK)
        }
        Command::Log { json } => cmd_log(env, rb, json),
    }
}

fn runbook_name(spec_path: &std::path::Path) -> Result<String> {
    let stem = spec_path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let name = spec::slug(stem);
    if name.is_empty() {
        return Err(Error::Refused(format!("cannot name a runbook after {}", spec_path.display())));
    }
    Ok(name)
}

fn cmd_plan(env: &Env, path: &std::path::Path, workflows: &std::path::Path, json: bool) -> Result<i32> {
    let s = spec::load(path)?;
    let name = runbook_name(path)?;
    let shown = path.display().to_string();
    let plan = planner::builtin::plan(&name, &shown, &s);
    let violations = validate::validate(&plan);
    if !violations.is_empty() {
        return Err(validate::Invalid { source: format!("from the builtin planner for {shown}"), violations }.into());
    }
    let wf_path = workflows.join(format!("{name}.toml"));
    let store = env.open()?;
    let meta = ops::ensure_meta(env, &store, &name, &wf_path, &shown)?;
    let rec = ops::record_plan(env, &store, &name, &plan, "plan")?;
    drop(store);
    workflow::write(&meta.workflow, &plan, rec.version)?;
    if json {
        let mut v = plan_json(&plan, rec.version);
        v["workflow"] = json!(wf_path.display().to_string());
        v["diff"] = match &rec.diff {
            Some(d) => json!(d),
            None => Value::Null,
        };
        print_json(&v);
    } else {
        print!("{}", render_plan(&plan, rec.version, &wf_path.display().to_string(), &rec));
    }
    Ok(exit::OK)
}

pub fn plan_json(plan: &Plan, version: u32) -> Value {
    json!({
        "runbook": plan.runbook,
        "version": version,
        "planner": plan.planner,
        "context": plan.context,
        "steps": plan.steps.iter().map(|s| json!({
            "id": s.id, "kind": s.kind, "description": s.description, "needs": s.needs,
            "covers": s.covers, "gate": ops::gated(s), "params": s.params,
        })).collect::<Vec<_>>(),
        "requirements": plan.requirements,
    })
}

async fn cmd_run(env: &Env, rb: Option<&str>, wait: bool, jobs: usize, json: bool) -> Result<i32> {
    let tick = std::env::var("FLOW_WAIT_TICK_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let opts = Options { runbook: rb.map(str::to_string), wait, jobs, tick: Duration::from_millis(tick) };
    let quiet = json;
    let sink = move |e: &Event| {
        if !quiet {
            eprintln!("{}", describe_event(e));
        }
    };
    let report = Engine::new(env, &opts, &sink).run().await?;
    if json {
        print_json(&serde_json::to_value(&report).unwrap_or_default());
    } else {
        print!("{}", render_run(env, &report)?);
    }
    Ok(report.outcome.exit_code())
}

fn render_run(env: &Env, r: &Report) -> Result<String> {
    let store = env.open()?;
    let l = ops::load(&store, ops::pick_runbook(&store, Some(&r.runbook))?)?;
    drop(store);
    let mut out = String::new();
    let ids = |phase: Phase| -> Vec<String> { l.plan.steps.iter().filter(|s| l.view.step(&s.id).phase == phase).map(|s| s.id.clone()).collect() };
    match r.outcome {
        crate::engine::RunOutcome::Done => out.push_str("done: every step succeeded or was skipped\n"),
        crate::engine::RunOutcome::Failed => {
            out.push_str("failed:\n");
            for id in ids(Phase::Failed).into_iter().chain(ids(Phase::Rejected)) {
                let v = l.view.step(&id);
                out.push_str(&format!("  {id}: {}\n", v.error.or(v.reason).unwrap_or_default()));
            }
        }
        crate::engine::RunOutcome::WaitingApproval => {
            out.push_str("waiting for approval:\n");
            for id in ids(Phase::AwaitingApproval) {
                out.push_str(&format!("  {id}: review with `flow status`, then `flow approve {id}` or `flow reject {id} --reason ...`\n"));
            }
        }
        crate::engine::RunOutcome::Waiting => {
            out.push_str(&format!("waiting on external progress; run `flow run` again after {}\n", r.next_poll_at.clone().unwrap_or_default()));
        }
        crate::engine::RunOutcome::Unsupported => {
            out.push_str("blocked:\n");
            for s in &l.plan.steps {
                if let Some(b) = l.view.step(&s.id).blocked.filter(|_| l.view.step(&s.id).phase == Phase::Idle) {
                    out.push_str(&format!("  {}: {b}\n", s.id));
                }
            }
        }
    }
    Ok(out)
}

fn cmd_status(env: &Env, rb: Option<&str>, json: bool) -> Result<i32> {
    let store = env.open()?;
    let l = ops::load(&store, ops::pick_runbook(&store, rb)?)?;
    drop(store);
    // An edited workflow file not yet run: say which approvals it will void.
    let edited: Option<PlanDiff> = match workflow::read(&l.meta.workflow) {
        Ok(p) if p.digest() != l.plan.digest() => Some(diff(&l.plan, &p)),
        _ => None,
    };
    let verdicts = verdict::verdicts(&l.plan, &l.view);
    let steps: Vec<Value> = l
        .plan
        .steps
        .iter()
        .map(|s| {
            let v = l.view.step(&s.id);
            let mut void = v.void_reason.clone();
            if v.phase == Phase::Approved && ops::params_digest_now(&l.plan, &l.view, &s.id) != v.approval.as_ref().map(|a| a.params_digest.clone()) {
                void = Some("its params changed since it was approved (an earlier step's output differs)".into());
            }
            if edited.as_ref().is_some_and(|d| d.changed.contains(&s.id)) && v.approval.is_some() {
                void = Some("the workflow file edits this step; its approval will be void at the next `flow run`".into());
            }
            json!({
                "id": s.id,
                "kind": s.kind,
                "state": l.view.state_name(s),
                "gate": ops::gated(s),
                "needs": s.needs,
                "covers": s.covers,
                "attempt": v.attempt,
                "will": if v.phase == Phase::AwaitingApproval { json!(v.artifact) } else { Value::Null },
                "artifact_digest": v.artifact_digest,
                "approval": v.approval,
                "approval_void": void,
                "next_poll_at": v.next_poll_at.map(rfc3339),
                "note": v.note,
                "error": v.error,
                "interrupted": v.interrupted,
                "blocked": v.blocked,
                "reason": v.reason,
                "outputs": v.outputs,
                "evidence": v.evidence,
                "updated_at": v.updated_at,
            })
        })
        .collect();
    if json {
        print_json(&json!({
            "runbook": l.meta.name,
            "version": l.view.version,
            "workflow": l.meta.workflow,
            "workflow_edited": edited,
            "steps": steps,
            "requirements": verdicts,
        }));
        return Ok(exit::OK);
    }
    let mut out = format!("runbook {} (plan version {}, {})\n", l.meta.name, l.view.version, l.meta.workflow.display());
    if let Some(d) = &edited {
        out.push_str(&format!(
            "note: the workflow file was edited since version {} ({}); `flow run` will validate and record it\n",
            l.view.version,
            describe_diff(d)
        ));
    }
    out.push_str(&format!("\n{:<22} {:<15} {:<17} {}\n", "STEP", "KIND", "STATE", "DETAIL"));
    for (s, j) in l.plan.steps.iter().zip(&steps) {
        let v = l.view.step(&s.id);
        let mut detail = Vec::new();
        if let Some(b) = v.blocked.as_ref().filter(|_| v.phase == Phase::Idle) {
            detail.push(b.clone());
        }
        if let Some(e) = &v.error {
            detail.push(e.clone());
        }
        if let Some(r) = &v.reason {
            detail.push(r.clone());
        }
        if v.phase == Phase::Waiting {
            detail.push(format!("{} (next poll {})", v.note.clone().unwrap_or_default(), v.next_poll_at.map(rfc3339).unwrap_or_default()));
        }
        if let Some(a) = &v.approval {
            detail.push(format!("approved by {} at {}", a.by, a.at));
        }
        if let Some(void) = j["approval_void"].as_str() {
            detail.push(format!("approval void: {void}"));
        }
        if v.phase == Phase::Succeeded && !v.outputs.is_empty() {
            let o: Vec<String> = v.outputs.iter().take(4).map(|(k, v)| format!("{k}={v}")).collect();
            detail.push(o.join(" "));
        }
        out.push_str(&format!("{:<22} {:<15} {:<17} {}\n", s.id, s.kind, l.view.state_name(s), detail.join("; ")));
    }
    let waiting: Vec<_> = l.plan.steps.iter().filter(|s| l.view.step(&s.id).phase == Phase::AwaitingApproval).collect();
    if !waiting.is_empty() {
        out.push_str("\nwaiting for approval:\n");
        for s in waiting {
            let v = l.view.step(&s.id);
            out.push_str(&format!("  {} ({}), will:\n", s.id, v.artifact_digest.as_deref().map(crate::domain::digest::short).unwrap_or("")));
            for line in v.artifact.unwrap_or_default().lines() {
                out.push_str(&format!("    {line}\n"));
            }
            out.push_str(&format!("    -> flow approve {}   |   flow reject {} --reason ...\n", s.id, s.id));
        }
    }
    out.push_str("\nrequirements:\n");
    for v in &verdicts {
        let ev: Vec<String> = v.evidence.iter().map(|m| m.describe()).collect();
        let note = if v.measurable { ev.join("; ") } else { "not measurable: check by hand".into() };
        out.push_str(&format!("  {:<10} {:<12} {:<22} {:<18} {}\n", v.verdict, v.id, v.kind, v.target, note));
    }
    print!("{out}");
    Ok(exit::OK)
}

fn cmd_log(env: &Env, rb: Option<&str>, json: bool) -> Result<i32> {
    let store = env.open()?;
    let meta = ops::pick_runbook(&store, rb)?;
    let events = store.events(&meta.name)?;
    drop(store);
    if json {
        print_json(&json!({"runbook": meta.name, "events": events}));
    } else {
        for e in &events {
            println!("{}", describe_event(e));
        }
    }
    Ok(exit::OK)
}

fn describe_diff(d: &PlanDiff) -> String {
    let part = |sign: &str, v: &[String]| if v.is_empty() { None } else { Some(format!("{sign}{}", v.join(&format!(" {sign}")))) };
    let parts: Vec<String> = [part("+", &d.added), part("-", &d.removed), part("~", &d.changed)].into_iter().flatten().collect();
    if parts.is_empty() {
        "no step changed".into()
    } else {
        parts.join(" ")
    }
}

/// One journal line: `#12 2026-11-25T10:00:00Z ana approved changeset-network ...`.
pub fn describe_event(e: &Event) -> String {
    let what = match &e.body {
        Body::PlanRecorded { version, planner, source, added, removed, changed, .. } => format!(
            "plan version {version} ({planner}, from {source}): {}",
            describe_diff(&PlanDiff { added: added.clone(), removed: removed.clone(), changed: changed.clone() })
        ),
        Body::RunStarted { pid } => format!("run started (pid {pid})"),
        Body::RunFinished { outcome } => format!("run finished: {outcome}"),
        Body::PreviewStarted { attempt, .. } => format!("preview (attempt {attempt})"),
        Body::PreviewRecorded { artifact_digest, .. } => format!("waiting for approval ({})", crate::domain::digest::short(artifact_digest)),
        Body::Approved { by, comment, artifact_digest, .. } => format!(
            "approved by {by} ({}){}",
            crate::domain::digest::short(artifact_digest),
            comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
        ),
        Body::ApprovalVoided { reason, .. } => format!("approval void: {reason}"),
        Body::Rejected { by, reason, .. } => format!("rejected by {by}: {reason}"),
        Body::SubmitStarted { attempt, token, .. } => format!("started (attempt {attempt}, token {token})"),
        Body::WaitScheduled { next_poll_at, note, .. } => format!("waiting until {}: {note}", rfc3339(*next_poll_at)),
        Body::Succeeded { outputs, .. } => {
            let o: Vec<String> = outputs.iter().take(6).map(|(k, v)| format!("{k}={v}")).collect();
            format!("succeeded {}", o.join(" "))
        }
        Body::Failed { error, interrupted, .. } => format!("{}: {error}", if *interrupted { "interrupted" } else { "failed" }),
        Body::Blocked { reason, .. } => format!("blocked: {reason}"),
        Body::Skipped { by, reason, .. } => format!("skipped by {by}: {reason}"),
        Body::RetryRequested { by, .. } => format!("retry requested by {by}"),
    };
    match e.body.step() {
        Some(s) => format!("#{:<4} {} {:<10} {s}: {what}", e.seq, e.at, e.actor),
        None => format!("#{:<4} {} {:<10} {what}", e.seq, e.at, e.actor),
    }
}

fn req_row(r: &Requirement) -> String {
    let text: String = r.text.chars().take(70).collect();
    format!("  {:<14} {:<22} {:<18} {:>5}  {}\n", r.id, r.kind.to_string(), r.target(), r.line, text)
}

fn render_spec(path: &str, s: &Spec) -> String {
    let measurable = s.requirements.iter().filter(|r| r.kind.is_measurable()).count();
    let mut out = format!("{path}: {} requirements ({measurable} measurable)\n", s.requirements.len());
    out.push_str(&format!("  {:<14} {:<22} {:<18} {:>5}  {}\n", "ID", "KIND", "TARGET", "LINE", "TEXT"));
    for r in &s.requirements {
        out.push_str(&req_row(r));
    }
    if !s.context.is_empty() {
        out.push_str("context:\n");
        for (k, v) in &s.context {
            out.push_str(&format!("  {k}: {v}\n"));
        }
    }
    out
}

fn render_plan(plan: &Plan, version: u32, wf: &str, rec: &ops::Recorded) -> String {
    let mut out = match (&rec.diff, rec.unchanged) {
        (_, true) => format!("runbook {}: plan unchanged (version {version}); {wf} rewritten\n", plan.runbook),
        (None, _) => format!("runbook {}: plan version {version} ({}) written to {wf}\n", plan.runbook, plan.planner),
        (Some(d), _) => format!(
            "runbook {}: plan version {version} ({}) written to {wf}\nchanges: {}\n  unchanged steps keep their state and evidence; changed steps lose their approvals\n",
            plan.runbook,
            plan.planner,
            describe_diff(d)
        ),
    };
    out.push_str("\nrequirements:\n");
    for r in &plan.requirements {
        out.push_str(&req_row(r));
    }
    out.push_str("\nsteps (dependency order):\n");
    for (i, id) in validate::topo_order(plan).iter().enumerate() {
        let Some(s) = plan.step(id) else { continue };
        let needs = if s.needs.is_empty() { "-".into() } else { s.needs.join(", ") };
        let covers = if s.covers.is_empty() { String::new() } else { format!("  covers: {}", s.covers.join(", ")) };
        out.push_str(&format!(
            "  {:>2}. {:<20} {:<15} {:<5} needs: {needs}{covers}\n",
            i + 1,
            s.id,
            s.kind,
            if ops::gated(s) { "gate" } else { "" }
        ));
        if !s.description.is_empty() {
            out.push_str(&format!("      {}\n", s.description));
        }
    }
    out.push_str("\nnext: `flow run` runs the ready steps and stops at the first gates\n");
    out
}
