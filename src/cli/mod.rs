//! The `flow` command line: parse flags ([`args`]), resolve them once into the app's inputs,
//! call [`crate::app`], render text or JSON from the same struct ([`render`]). Human output on
//! stdout (the run's events on stderr); `--json` prints exactly one JSON document on stdout.

pub mod args;
pub mod render;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;

use self::args::{Cli, Command};
use crate::app::{self, Env};
use crate::clock::Shifted;
use crate::domain::event::Event;
use crate::engine::{Options, Reporter};
use crate::error::{Error, Result};
use crate::{exit, load};

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
    let env = Env {
        backend: Arc::new(crate::store::Sled::new(cli.state.clone())),
        actor: app::os_user(),
        clock: Arc::new(clock),
        executors: Arc::new(crate::executor::Builtin),
    };
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

/// One JSON document on stdout, written as it is serialized (a long run's report is large).
fn print_json(v: &impl Serialize) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = serde_json::to_writer_pretty(&mut out, v);
    let _ = writeln!(out);
    let _ = out.flush();
}

/// The run's events, one line each on stderr (nothing with `--json`).
struct Lines {
    quiet: bool,
}

impl Reporter for Lines {
    fn event(&self, e: &Event) {
        if !self.quiet {
            eprintln!("{}", render::event(e));
        }
    }
}

async fn dispatch(env: &Env, cli: Cli) -> Result<i32> {
    let rb = cli.runbook.as_deref();
    let by = |b: Option<String>| b.unwrap_or_else(|| env.actor.clone());
    match cli.command {
        Command::Spec { file, json } => {
            let s = app::spec::read(&file)?;
            if json {
                print_json(&serde_json::json!({"requirements": s.requirements, "context": s.context}));
            } else {
                print!("{}", render::spec(&file.display().to_string(), &s));
            }
            Ok(exit::OK)
        }
        Command::Plan { spec, planner, model, region, no_cache, repair_rounds, workflows, json } => {
            let how = app::plan::How { planner, model, region, no_cache, repair_rounds };
            let planned = app::plan::plan(env, &spec, &workflows, &how).await?;
            for n in &planned.notes {
                eprintln!("{n}");
            }
            if json {
                print_json(&planned);
            } else {
                print!("{}", render::plan(&planned));
            }
            Ok(exit::OK)
        }
        Command::Run { wait, jobs, json } => {
            let tick = std::env::var("FLOW_WAIT_TICK_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
            // The events are printed as they happen; only the JSON report holds them all.
            let opts =
                Options { wait, jobs, tick: Duration::from_millis(tick), keep_events: json, ..Options::default() };
            let report = app::run::run(env, rb, &opts, &Lines { quiet: json }).await?;
            if json {
                print_json(&report);
            } else {
                print!("{}", render::run(&report));
            }
            Ok(report.outcome.exit_code())
        }
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
            let mut ask = load::Ask::new(url, duration);
            ask.rate = rate;
            ask.connections = connections;
            ask.keepalive = !no_keepalive;
            ask.timeout = Some(timeout);
            ask.warmup = warmup;
            ask.method = Some(method);
            ask.headers = headers;
            ask.body = body;
            ask.success = Some(success);
            ask.max_in_flight = max_in_flight;
            ask.thresholds = thresholds.iter().map(|t| load::threshold::parse(t)).collect::<Result<_, _>>()?;
            ask.abort_on_fail = abort_on_fail;
            ask.ramp = ramp;
            ask.stages = stages;
            loadtest(load::Settings::resolve(ask)?, json).await
        }
        Command::Drill { drill } => self::drill(env, drill).await,
        Command::Status { json } => {
            let st = app::status::status(env, rb)?;
            if json {
                print_json(&st);
            } else {
                print!("{}", render::status(&st));
            }
            Ok(exit::OK)
        }
        Command::Approve { step, by: who, comment } => {
            let e = app::verbs::approve(env, rb, &step, &by(who), comment)?;
            println!("approved `{step}` as {} (event #{}); `flow run` carries it out", e.actor, e.seq);
            Ok(exit::OK)
        }
        Command::Reject { step, reason, by: who } => {
            let e = app::verbs::reject(env, rb, &step, &by(who), &reason)?;
            println!("rejected `{step}` (event #{})", e.seq);
            Ok(exit::OK)
        }
        Command::Retry { step, by: who } => {
            let e = app::verbs::retry(env, rb, &step, &by(who))?;
            println!("`{step}` will run again at the next `flow run` (event #{})", e.seq);
            Ok(exit::OK)
        }
        Command::Skip { step, reason, by: who } => {
            let e = app::verbs::skip(env, rb, &step, &by(who), &reason)?;
            println!("skipped `{step}` (event #{})", e.seq);
            Ok(exit::OK)
        }
        Command::Log { llm: true, json } => {
            let x = app::log::exchanges(env, rb)?;
            if json {
                print_json(&x);
            } else {
                print!("{}", render::exchanges(&x));
            }
            Ok(exit::OK)
        }
        Command::Log { llm: false, json } => {
            let l = app::log::log(env, rb)?;
            if json {
                print_json(&l);
            } else {
                print!("{}", render::log(&l));
            }
            Ok(exit::OK)
        }
    }
}

async fn drill(env: &Env, d: args::Drill) -> Result<i32> {
    use crate::app::drill as ad;
    use crate::domain::catalogue::StepKind;
    use serde_json::json;
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    let (kind, params, bounds, json) = match d {
        args::Drill::Failover {
            url,
            inject,
            recover,
            interval,
            probe_timeout,
            duration,
            baseline,
            max_downtime,
            rate,
            json,
        } => {
            let params = json!({
                "endpoint": url, "inject": inject, "recover": recover, "probe_interval_ms": ms(interval),
                "probe_timeout_ms": probe_timeout.map(ms), "duration_s": duration.as_secs().max(1),
                "baseline_s": baseline.as_secs(), "max_downtime_s": max_downtime.map(|d| d.as_secs_f64()), "rate": rate,
            });
            let bounds: Vec<(&'static str, f64)> =
                max_downtime.map(|d| (ad::DOWNTIME, d.as_secs_f64())).into_iter().collect();
            (StepKind::FailoverDrill, params, bounds, json)
        }
        args::Drill::Restore { restore, probe, interval, timeout, cleanup, worst_rpo, max_rto, max_rpo, json } => {
            let params = json!({
                "restore": restore, "probe": probe, "probe_interval_ms": ms(interval), "timeout_s": timeout.as_secs().max(1),
                "cleanup": cleanup, "worst_rpo_s": worst_rpo.map(|d| d.as_secs_f64()),
            });
            let mut bounds: Vec<(&'static str, f64)> = Vec::new();
            bounds.extend(max_rto.map(|d| (ad::RTO, d.as_secs_f64())));
            bounds.extend(max_rpo.map(|d| (ad::RPO, d.as_secs_f64())));
            (StepKind::RestoreDrill, params, bounds, json)
        }
    };
    let mut params = params.as_object().cloned().unwrap_or_default();
    params.retain(|_, v| !v.is_null());
    let report = ad::run(env, kind, params, &bounds).await?;
    if json {
        print_json(&report);
    } else {
        print!("{}", render::drill(&report));
    }
    Ok(if report.passed { exit::OK } else { exit::FAILED })
}

async fn loadtest(s: load::Settings, json: bool) -> Result<i32> {
    let live = !json && std::io::stderr().is_terminal();
    let tick: Arc<dyn Fn(Duration, load::Live) + Send + Sync> = Arc::new(move |t, l| {
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
    let report = load::run(s, tick).await.map_err(Error::Load)?;
    if live {
        eprintln!();
    }
    if json {
        print_json(&report);
    } else {
        print!("{}", render::load(&report));
    }
    Ok(if !report.valid {
        exit::INVALID
    } else if !report.passed() {
        exit::FAILED
    } else {
        exit::OK
    })
}
