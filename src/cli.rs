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
use crate::planner::llm::Provider;
use crate::{exit, planner, workflow};

#[derive(Parser, Debug)]
#[command(
    name = "flow",
    version,
    about = "Launch-readiness runbooks: spec -> plan -> gated, resumable run -> evidence"
)]
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
        /// builtin (offline), openai (any OpenAI-compatible endpoint) or bedrock.
        #[arg(long, default_value = "builtin", value_parser = ["builtin", "openai", "bedrock"])]
        planner: String,
        /// Model (openai) or model id / inference profile (bedrock).
        #[arg(long)]
        model: Option<String>,
        /// AWS region for bedrock (else FLOW_BEDROCK_REGION, [bedrock] region, AWS_REGION).
        #[arg(long)]
        region: Option<String>,
        /// Ask the model even when the same question has a cached plan.
        #[arg(long)]
        no_cache: bool,
        /// Times an invalid answer is sent back for repair (default 2).
        #[arg(long)]
        repair_rounds: Option<u32>,
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
    /// Load-test a URL: open model at a fixed rate, or closed model as fast as connections allow.
    Loadtest {
        url: String,
        /// Requests per second, scheduled whatever the server does (open model).
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Connections (closed model), or the initial pool (open model).
        #[arg(long)]
        connections: Option<usize>,
        /// A new TCP (and TLS) connection per request.
        #[arg(long)]
        no_keepalive: bool,
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Not counted in the figures.
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        warmup: std::time::Duration,
        #[arg(long, default_value = "GET")]
        method: String,
        /// `Name: value`, repeatable.
        #[arg(long = "header")]
        headers: Vec<String>,
        #[arg(long)]
        body: Option<String>,
        /// Statuses that count as success.
        #[arg(long, default_value = "200-399")]
        success: String,
        /// Requests in flight at most (default: rate x timeout).
        #[arg(long)]
        max_in_flight: Option<usize>,
        /// `rate>=2500`, `avg<250ms`, `p99<1s`, `success>=99.5%`, repeatable.
        #[arg(long = "threshold")]
        thresholds: Vec<String>,
        /// Stop as soon as a success or error threshold fails (checked every second after warm-up).
        #[arg(long)]
        abort_on_fail: bool,
        /// Reach --rate linearly over this long first.
        #[arg(long, value_parser = humantime::parse_duration)]
        ramp: Option<std::time::Duration>,
        /// `DURATION:RATE`, repeatable: reach RATE linearly over DURATION, then the next stage; --rate after the last.
        #[arg(long = "stage")]
        stages: Vec<String>,
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
    /// The runbook's journal (`--llm`: the planner's requests and answers).
    Log {
        #[arg(long)]
        llm: bool,
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
        Command::Plan { spec: path, planner, model, region, no_cache, repair_rounds, workflows, json } => {
            let how = PlanHow { planner, model, region, no_cache, repair_rounds };
            cmd_plan(env, &path, &workflows, &how, json).await
        }
        Command::Run { wait, jobs, json } => cmd_run(env, rb, wait, jobs, json).await,
        Command::Loadtest {
            url,
            rate,
            duration,
            connections,
            no_keepalive,
            timeout,
            warmup,
            method,
            headers,
            body,
            success,
            max_in_flight,
            thresholds,
            abort_on_fail,
            ramp,
            stages,
            json,
        } => {
            let bad = |m: String| Error::Config(m);
            let url: url::Url = url.parse().map_err(|e| bad(format!("url `{url}`: {e}")))?;
            let mut s = crate::load::Settings::new(url, duration);
            s.rate = rate;
            if rate.is_some_and(|r| !(r > 0.0)) {
                return Err(bad("--rate must be greater than 0".into()));
            }
            s.connections = connections;
            s.keepalive = !no_keepalive;
            s.timeout = timeout;
            s.warmup = warmup;
            if warmup >= duration {
                return Err(bad("--warmup must be shorter than --duration".into()));
            }
            s.method = method;
            s.headers = headers
                .iter()
                .map(|h| {
                    h.split_once(':')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .ok_or_else(|| bad(format!("header `{h}`: expected `Name: value`")))
                })
                .collect::<Result<_>>()?;
            s.body = body.unwrap_or_default().into_bytes();
            s.success = crate::load::parse_statuses(&success).map_err(|e| bad(format!("--success: {e}")))?;
            s.max_in_flight = max_in_flight;
            s.thresholds =
                thresholds.iter().map(|t| crate::load::threshold::parse(t)).collect::<Result<_, _>>().map_err(bad)?;
            s.abort_on_fail = abort_on_fail;
            if let (Some(r), Some(d)) = (rate, ramp) {
                s.stages.push((d, r));
            }
            for st in &stages {
                s.stages.push(crate::load::parse_stage(st).map_err(bad)?);
            }
            if !s.stages.is_empty() && rate.is_none() {
                return Err(bad("--ramp and --stage shape an open model: give --rate too".into()));
            }
            cmd_loadtest(s, json).await
        }
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
        Command::Log { llm: true, json } => cmd_log_llm(env, rb, json),
        Command::Log { llm: false, json } => cmd_log(env, rb, json),
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

struct PlanHow {
    planner: String,
    model: Option<String>,
    region: Option<String>,
    no_cache: bool,
    repair_rounds: Option<u32>,
}

async fn provider(how: &PlanHow, conf: &crate::config::Config) -> Result<Box<dyn Provider>> {
    use crate::config::env;
    Ok(match how.planner.as_str() {
        "openai" => {
            let base = env("OPENAI_BASE_URL")
                .or(conf.openai.base_url.clone())
                .unwrap_or_else(|| "https://api.openai.com/v1".into());
            let model = how
                .model
                .clone()
                .or(env("OPENAI_MODEL"))
                .or(conf.openai.model.clone())
                .unwrap_or_else(|| "gpt-4o-mini".into());
            let key_var = conf.openai.api_key_env.clone().unwrap_or_else(|| "OPENAI_API_KEY".into());
            // Local servers (Ollama, vLLM, llama.cpp) take any key.
            let key = env(&key_var).unwrap_or_else(|| "none".into());
            Box::new(planner::openai::OpenAi::new(&base, &key, &model))
        }
        "bedrock" => {
            let model =
                how.model.clone().or(env("FLOW_BEDROCK_MODEL")).or(conf.bedrock.model.clone()).ok_or_else(|| {
                    Error::Config(
                        "no Bedrock model: give --model, FLOW_BEDROCK_MODEL or [bedrock] model in flow.toml".into(),
                    )
                })?;
            let region = how.region.clone().or(env("FLOW_BEDROCK_REGION")).or(conf.bedrock.region.clone());
            Box::new(planner::bedrock::Bedrock::new(region.as_deref(), &model).await.map_err(|e| Error::Planner(e.0))?)
        }
        other => return Err(Error::Config(format!("unknown planner `{other}`"))),
    })
}

/// Plan with a model: from the cache when the same question was answered, else ask (and
/// repair); every exchange is kept in the state store, whatever the outcome.
async fn llm_plan(env: &Env, how: &PlanHow, name: &str, shown: &str, path: &std::path::Path, s: &Spec) -> Result<Plan> {
    let conf = crate::config::load()?;
    let provider = provider(how, &conf).await?;
    let key = planner::llm::cache_key(s, provider.as_ref());
    if !how.no_cache {
        let store = env.open()?;
        if let Some(plan) = store.cached_plan(&key)? {
            if validate::validate(&plan).is_empty() && plan.runbook == name {
                eprintln!(
                    "planner: {} {} answered this question before (cache key {}); not asking again (--no-cache to ask)",
                    provider.name(),
                    provider.model(),
                    crate::domain::digest::short(&key)
                );
                return Ok(plan);
            }
        }
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let rounds = how.repair_rounds.or(conf.planner.repair_rounds).unwrap_or(2);
    let mut exchanges = Vec::new();
    let now = || env.now();
    let result =
        planner::llm::plan(provider.as_ref(), name, shown, s, &text, rounds, &now, &mut |e| exchanges.push(e)).await;
    let store = env.open()?;
    for e in &exchanges {
        store.append_exchange(name, e)?;
    }
    match result {
        Ok(plan) => {
            store.cache_plan(&key, &plan)?;
            Ok(plan)
        }
        Err(planner::llm::Error::Provider(e)) => Err(Error::Planner(e)),
        Err(planner::llm::Error::Invalid { rounds, violations }) => Err(validate::Invalid {
            source: format!("from {} {} after {rounds} repair round{} (nothing was recorded; `flow log --llm -r {name}` shows the exchanges)", provider.name(), provider.model(), if rounds == 1 { "" } else { "s" }),
            violations: violations.into_iter().map(|message| validate::Violation { step: None, message }).collect(),
        }
        .into()),
    }
}

async fn cmd_plan(
    env: &Env,
    path: &std::path::Path,
    workflows: &std::path::Path,
    how: &PlanHow,
    json: bool,
) -> Result<i32> {
    let s = spec::load(path)?;
    let name = runbook_name(path)?;
    let shown = path.display().to_string();
    let plan = if how.planner == "builtin" {
        planner::builtin::plan(&name, &shown, &s)
    } else {
        llm_plan(env, how, &name, &shown, path, &s).await?
    };
    let violations = validate::validate(&plan);
    if !violations.is_empty() {
        return Err(
            validate::Invalid { source: format!("from the {} planner for {shown}", plan.planner), violations }.into()
        );
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

fn cmd_log_llm(env: &Env, rb: Option<&str>, json: bool) -> Result<i32> {
    let store = env.open()?;
    // The exchanges of a plan that failed are kept though no runbook was recorded.
    let name = match rb {
        Some(n) => n.to_string(),
        None => ops::pick_runbook(&store, None)?.name,
    };
    let exchanges = store.exchanges(&name)?;
    drop(store);
    if json {
        print_json(&json!({"runbook": name, "exchanges": exchanges}));
        return Ok(exit::OK);
    }
    for e in &exchanges {
        println!("{} {}:{} round {}", e.at, e.provider, e.model, e.round);
        if let Some(err) = &e.error {
            println!("  error: {err}");
        }
        for v in &e.violations {
            println!("  violation: {v}");
        }
        if let Some(a) = &e.answer {
            let a: String = a.chars().take(400).collect();
            println!("  answer: {a}");
        }
    }
    Ok(exit::OK)
}

/// A `command` step an LLM proposed: gated like every command, and flagged for a careful read.
pub fn llm_flag(plan: &Plan, step: &crate::domain::plan::Step) -> Option<&'static str> {
    (plan.by_llm() && step.kind == "command").then_some("command proposed by an LLM planner: read it before approving")
}

pub fn plan_json(plan: &Plan, version: u32) -> Value {
    json!({
        "runbook": plan.runbook,
        "version": version,
        "planner": plan.planner,
        "context": plan.context,
        "steps": plan.steps.iter().map(|s| json!({
            "id": s.id, "kind": s.kind, "description": s.description, "needs": s.needs,
            "covers": s.covers, "gate": s.gated(), "params": s.params, "flag": llm_flag(plan, s),
        })).collect::<Vec<_>>(),
        "requirements": plan.requirements,
        "planned_by": plan.planned_by,
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

async fn cmd_loadtest(s: crate::load::Settings, json: bool) -> Result<i32> {
    let live = !json && std::io::stderr().is_terminal();
    let tick: Arc<dyn Fn(Duration, crate::load::Live) + Send + Sync> = Arc::new(move |t, l| {
        if live {
            eprint!(
                "\r[{:>4}s] sent {:>9}  completed {:>9}  ok {:>9}  errors {:>7}   ",
                t.as_secs(),
                l.sent,
                l.completed,
                l.ok,
                l.errors
            );
        }
    });
    let report = crate::load::run(s, tick).await.map_err(Error::Config)?;
    if live {
        eprintln!();
    }
    if json {
        print_json(&serde_json::to_value(&report).unwrap_or_default());
    } else {
        print!("{}", render_load(&report));
    }
    Ok(if !report.valid {
        exit::INVALID
    } else if !report.passed() {
        exit::FAILED
    } else {
        exit::OK
    })
}

fn render_load(r: &crate::load::Report) -> String {
    let lat = |l: &crate::load::Latency| {
        format!(
            "mean {:.2}  p50 {:.2}  p90 {:.2}  p95 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ms",
            l.mean_ms, l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms
        )
    };
    let c = &r.counts;
    let mut out = format!(
        "rate       target {}  achieved {:.1} req/s  throughput {:.1} req/s\n\
         requests   scheduled {}  sent {}  completed {}  ok {}  in flight {}  unsent {}\n\
         success    {:.3} %\n\
         latency    {}   (from the intended send time)\n\
         service    {}   (from the actual send)\n",
        r.target_rate.map(|t| format!("{t} req/s")).unwrap_or_else(|| "none (closed model)".into()),
        r.achieved_rate,
        r.throughput_rps,
        c.scheduled,
        c.sent,
        c.completed,
        c.ok,
        c.in_flight,
        c.unsent,
        r.success_rate_pct,
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
    for w in &r.warnings {
        out.push_str(&format!("warning    {w}\n"));
    }
    if let Some(why) = &r.invalid_reason {
        out.push_str(&format!("INVALID    {why}\n"));
    }
    if r.aborted {
        out.push_str("aborted    a threshold failed during the run\n");
    }
    for v in &r.verdicts {
        out.push_str(&format!("threshold  {}\n", v.describe()));
    }
    out
}

fn render_run(env: &Env, r: &Report) -> Result<String> {
    let store = env.open()?;
    let l = ops::load(&store, ops::pick_runbook(&store, Some(&r.runbook))?)?;
    drop(store);
    let mut out = String::new();
    let ids = |phase: Phase| -> Vec<String> {
        l.plan.steps.iter().filter(|s| l.view.step(&s.id).phase == phase).map(|s| s.id.clone()).collect()
    };
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
                out.push_str(&format!(
                    "  {id}: review with `flow status`, then `flow approve {id}` or `flow reject {id} --reason ...`\n"
                ));
            }
        }
        crate::engine::RunOutcome::Waiting => {
            out.push_str(&format!(
                "waiting on external progress; run `flow run` again after {}\n",
                r.next_poll_at.clone().unwrap_or_default()
            ));
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
            if v.phase == Phase::Approved
                && ops::params_digest_now(&l.plan, &l.view, &s.id)
                    != v.approval.as_ref().map(|a| a.params_digest.clone())
            {
                void = Some("its params changed since it was approved (an earlier step's output differs)".into());
            }
            if edited.as_ref().is_some_and(|d| d.changed.contains(&s.id)) && v.approval.is_some() {
                void =
                    Some("the workflow file edits this step; its approval will be void at the next `flow run`".into());
            }
            json!({
                "id": s.id,
                "kind": s.kind,
                "state": l.view.state_name(s),
                "gate": s.gated(),
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
                "flag": llm_flag(&l.plan, s),
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
            detail.push(format!(
                "{} (next poll {})",
                v.note.clone().unwrap_or_default(),
                v.next_poll_at.map(rfc3339).unwrap_or_default()
            ));
        }
        if let Some(a) = &v.approval {
            detail.push(format!("approved by {} at {}", a.by, a.at));
        }
        if let Some(flag) = j["flag"].as_str() {
            detail.push(format!("! {flag}"));
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
            out.push_str(&format!(
                "  {} ({}), will:\n",
                s.id,
                v.artifact_digest.as_deref().map(crate::domain::digest::short).unwrap_or("")
            ));
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
    let part = |sign: &str, v: &[String]| {
        if v.is_empty() {
            None
        } else {
            Some(format!("{sign}{}", v.join(&format!(" {sign}"))))
        }
    };
    let parts: Vec<String> =
        [part("+", &d.added), part("-", &d.removed), part("~", &d.changed)].into_iter().flatten().collect();
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
        Body::PreviewRecorded { artifact_digest, .. } => {
            format!("waiting for approval ({})", crate::domain::digest::short(artifact_digest))
        }
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
        Body::Failed { error, interrupted, .. } => {
            format!("{}: {error}", if *interrupted { "interrupted" } else { "failed" })
        }
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
            if s.gated() { "gate" } else { "" }
        ));
        if !s.description.is_empty() {
            out.push_str(&format!("      {}\n", s.description));
        }
        if let Some(flag) = llm_flag(plan, s) {
            let run = s.params.get("run").and_then(Value::as_str).unwrap_or_default();
            out.push_str(&format!("      ! {flag}: $ {run}\n"));
        }
    }
    out.push_str("\nnext: `flow run` runs the ready steps and stops at the first gates\n");
    out
}
