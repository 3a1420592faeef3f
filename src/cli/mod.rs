//! The `flow` command line: parse flags ([`args`]), resolve them once into the app's inputs,
//! call [`crate::app`], render text or JSON from the same struct ([`render`]). Human output on
//! stdout (the run's events on stderr); `--json` prints exactly one JSON document on stdout.

pub mod args;
pub mod progress;
pub mod render;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;

use self::args::{Architecture, Cli, Command, Extract, GraphFormat, ModelArgs, StateAction};
use crate::app::{self, Env};
use crate::clock::Shifted;
use crate::domain::digest;
use crate::domain::event::Event;
use crate::domain::human::visible;
use crate::domain::lifecycle::Seen;
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
    // Completions and the man page need no store and no config.
    match &cli.command {
        Command::Completions { shell } => {
            let mut cmd = <args::Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "flow", &mut std::io::stdout());
            return exit::OK;
        }
        Command::Man { dir } => {
            return match man(dir.as_deref()) {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::USAGE
                }
            };
        }
        _ => {}
    }
    if let Some(dir) = &cli.directory {
        if let Err(e) = std::env::set_current_dir(dir) {
            let why =
                if e.kind() == std::io::ErrorKind::NotFound { "no such directory".to_string() } else { e.to_string() };
            eprintln!("error: cannot enter directory {}: {why}", dir.display());
            return exit::USAGE;
        }
    }
    let clock = match Shifted::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", visible(&e.to_string()));
            return exit::USAGE;
        }
    };
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(clock);
    let display = match cli.actor.as_deref().map(str::trim) {
        Some("") => {
            eprintln!("error: --as needs a name");
            return exit::USAGE;
        }
        Some(a) => Some(a.to_string()),
        None => None,
    };
    let config = match crate::config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", visible(&e.to_string()));
            return exit::USAGE;
        }
    };
    let state = match cli.state.clone().filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => config.state.url.clone().unwrap_or_else(|| "state".into()),
    };
    // Only the commands that start a store may create one: a mistyped --state leaves nothing.
    let creates = match &cli.command {
        Command::Plan { .. } | Command::Mcp | Command::State { action: StateAction::Import { .. } } => true,
        // A model's answer is cached in the store.
        Command::Spec { extract, .. } => *extract == Extract::Llm,
        _ => false,
    };
    let backend = match app::state::backend(&state, clock.clone(), creates) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {}", visible(&e.to_string()));
            return e.exit_code();
        }
    };
    // Who acts is who the state's backend can vouch for (the AWS caller on S3), else the OS
    // user; `--as` only adds a display name beside it.
    let actor = backend.identity().unwrap_or_else(app::os_user);
    let env = Env {
        backend,
        actor,
        display,
        policy: config.policy(),
        clock,
        executors: Arc::new(crate::executor::Builtin),
        notifier: None,
        progress: Arc::new(crate::progress::Silent),
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
            eprintln!("error: {}", visible(&e.to_string()));
            e.exit_code()
        }
    }
}

/// The man pages: `flow.1` on stdout, or it and one page per command in `dir`.
fn man(dir: Option<&std::path::Path>) -> Result<()> {
    let cmd = <args::Cli as clap::CommandFactory>::command();
    let render = |c: clap::Command, title: &str| -> Result<Vec<u8>> {
        let mut page = Vec::new();
        clap_mangen::Man::new(c).title(title).render(&mut page).map_err(|e| Error::io("writing the man page", e))?;
        Ok(page)
    };
    let Some(dir) = dir else {
        let page = render(cmd, "flow")?;
        return std::io::Write::write_all(&mut std::io::stdout(), &page)
            .map_err(|e| Error::io("writing the man page", e));
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let write = |name: &str, page: Vec<u8>| {
        let path = dir.join(name);
        std::fs::write(&path, page).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    };
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("flow-{}", sub.get_name());
        write(&format!("{name}.1"), render(sub.clone(), &name)?)?;
    }
    write("flow.1", render(cmd, "flow")?)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOW_LOG").unwrap_or_else(|_| {
        // The AWS SDK's own warnings (no IMDS off EC2, a profile it skipped) are noise for a
        // person; what failed reaches them as flow's error. So are async-openai's error lines
        // (it logs an error body it cannot read, which flow then reads and reports).
        "warn,aws_config=error,aws_smithy_runtime=error,rmcp=error,async_openai=off".into()
    });
    let ansi = std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// Text for a person on stdout, with every character that would act on the terminal instead
/// of showing written out ([`visible`]).
fn out(text: &str) {
    print!("{}", visible(text));
}

/// One JSON document on stdout, written as it is serialized (a long run's report is large).
fn print_json(v: &impl Serialize) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = serde_json::to_writer_pretty(&mut out, v);
    let _ = writeln!(out);
    let _ = out.flush();
}

/// The run's events, one line each on stderr (nothing with `--json`), above the bars.
struct Lines {
    quiet: bool,
    bars: Arc<progress::Bars>,
}

impl Reporter for Lines {
    fn event(&self, e: &Event) {
        if !self.quiet {
            self.bars.line(&visible(&render::event(e)));
        }
    }
}

/// An env whose long work shows bars on a terminal (unless `quiet`).
fn with_bars(env: &Env, quiet: bool) -> (Env, Arc<progress::Bars>) {
    let bars = Arc::new(progress::Bars::new(quiet));
    let mut env = env.clone();
    env.progress = bars.clone();
    (env, bars)
}

/// Work that waits on a model, stopped by Ctrl-C. The work records to the state store only
/// between model calls (never across an await), so dropping it at Ctrl-C leaves no trace of the
/// call under way: no exchange, no cache entry, no plan version.
async fn or_cancel<T>(work: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::select! {
        r = work => Ok(r),
        _ = tokio::signal::ctrl_c() => Err(Error::Cancelled(
            "stopped while waiting for the model; nothing of this call was recorded".into(),
        )),
    }
}

async fn dispatch(env: &Env, cli: Cli) -> Result<i32> {
    let rb = cli.runbook.as_deref();
    match cli.command {
        Command::Spec { file, extract, planner, model: ModelArgs { model, region, no_cache, llm_timeout }, json } => {
            let mut s = app::spec::read(&file)?;
            if extract == Extract::Llm {
                let how = app::plan::How {
                    planner: planner.into(),
                    model,
                    region,
                    no_cache,
                    timeout: llm_timeout,
                    ..app::plan::How::default()
                };
                let (env, _bars) = with_bars(env, json);
                let mut notes = Vec::new();
                let model = app::plan::model(&how).await?;
                or_cancel(app::plan::extract(&env, &model, &file, &mut s, None, &mut notes)).await??;
                for n in notes.iter().filter(|n| n.contains("not asking again")) {
                    eprintln!("{}", visible(n));
                }
            }
            if json {
                print_json(&s);
            } else {
                out(&render::spec(&file.display().to_string(), &s));
            }
            Ok(exit::OK)
        }
        Command::Plan {
            spec,
            planner,
            model: ModelArgs { model, region, no_cache, llm_timeout },
            repair_rounds,
            no_extract,
            no_assess,
            force,
            workflows,
            json,
        } => {
            let how = app::plan::How {
                planner,
                model,
                region,
                no_cache,
                repair_rounds,
                extract: !no_extract,
                force,
                runbook: rb.map(str::to_string),
                timeout: llm_timeout,
                assess: !no_assess,
            };
            let (env, _bars) = with_bars(env, json);
            // Only a model is worth waiting on; the builtin planner is not interrupted halfway.
            let planned = if how.planner == app::plan::Planner::Builtin {
                app::plan::plan(&env, &spec, &workflows, &how).await?
            } else {
                or_cancel(app::plan::plan(&env, &spec, &workflows, &how)).await??
            };
            for n in &planned.notes {
                eprintln!("{}", visible(n));
            }
            if json {
                print_json(&planned);
            } else {
                out(&render::plan(&planned));
            }
            Ok(exit::OK)
        }
        Command::Run { wait, jobs, json } => {
            let tick = std::env::var("FLOW_WAIT_TICK_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
            // The events are printed as they happen; only the JSON report holds them all.
            let opts =
                Options { wait, jobs, tick: Duration::from_millis(tick), keep_events: json, ..Options::default() };
            let (mut env, bars) = with_bars(env, json);
            if let Some((url, name)) = crate::config::webhook()? {
                let hook = crate::webhook::Webhook::new(&url, name.as_deref()).map_err(|e| Error::Config(e.into()))?;
                env.notifier = Some(Arc::new(hook));
            }
            let report = app::run::run(&env, rb, &opts, &Lines { quiet: json, bars }).await?;
            if json {
                print_json(&report);
            } else {
                out(&render::run(&report));
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
            workers,
            spread,
            json,
        } => {
            let spread = spread.spread(workers as usize)?;
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
            loadtest(load::Settings::resolve(ask)?, &spread, json).await
        }
        Command::LoadWorker { job } => {
            load::spread::work(&job).await?;
            Ok(exit::OK)
        }
        Command::Drill { drill } => self::drill(env, drill).await,
        Command::Assess { spec, vpc, region, fleet_max, json } => {
            let a = app::assess::run(env, spec.as_deref(), vpc.as_deref(), region.as_deref(), fleet_max).await?;
            if json {
                print_json(&a);
            } else {
                out(&render::assessment(&a));
            }
            let high = a.findings.iter().any(|f| f.finding.severity == crate::domain::assess::Severity::High);
            Ok(if high { exit::FAILED } else { exit::OK })
        }
        Command::Mcp => {
            let mut env = env.clone();
            if let Some((url, name)) = crate::config::webhook()? {
                env.notifier = Some(Arc::new(
                    crate::webhook::Webhook::new(&url, name.as_deref()).map_err(|e| Error::Config(e.into()))?,
                ));
            }
            crate::mcp::serve(env).await?;
            Ok(exit::OK)
        }
        Command::Report { format, output, json, check } => {
            if check && output.is_none() {
                let r = app::report::report(env, rb)?;
                out(&format!("{}\n", r.decision.headline));
                return Ok(decision_code(&r.decision));
            }
            let code = report(env, rb, if json { crate::report::Format::Json } else { format }, output.as_deref())?;
            Ok(if check { code } else { exit::OK })
        }
        Command::Graph { format, architecture: Some(which), vpc, region } => {
            let (setup, title) = if which == Architecture::Target {
                if vpc.is_some() {
                    return Err(Error::Usage(
                        "--vpc draws what runs (--architecture current); the target is the runbook's plan: pick it with -r".into(),
                    ));
                }
                let s = app::assess::target(env, rb, region.as_deref()).await?;
                let title = format!("{} as the plan makes it", s.vpc.id);
                (s, title)
            } else {
                let a = app::assess::run(env, None, vpc.as_deref(), region.as_deref(), None).await?;
                let title = format!("{} as it runs", a.setup.vpc.id);
                (a.setup, title)
            };
            out(&match format {
                GraphFormat::Drawio => crate::report::architecture::drawio(&setup, &title),
                GraphFormat::Dot => crate::report::architecture::dot(&setup),
                GraphFormat::Mermaid => crate::report::architecture::mermaid(&setup),
            });
            Ok(exit::OK)
        }
        Command::Graph { format, .. } => {
            let kind = match format {
                GraphFormat::Mermaid => crate::report::graph::Kind::Mermaid,
                GraphFormat::Dot => crate::report::graph::Kind::Dot,
                GraphFormat::Drawio => return Err(Error::Usage(
                    "--format drawio draws AWS resources: add --architecture current (what runs) or target (what the plan makes); the plan's steps are drawn as mermaid or dot"
                        .into(),
                )),
            };
            let g = app::report::graph(env, rb, kind)?;
            out(&g);
            Ok(exit::OK)
        }
        Command::Status { json } => {
            let st = app::status::status(env, rb)?;
            if json {
                print_json(&st);
            } else {
                out(&render::status(&st));
            }
            Ok(exit::OK)
        }
        Command::Approve { step, digest, comment } => {
            let seen = match digest {
                Some(d) => Seen::Digest(d),
                None => match confirm(env, rb, &step)? {
                    Some(d) => Seen::Confirmed(d),
                    None => {
                        eprintln!("nothing was approved");
                        return Ok(exit::REFUSED);
                    }
                },
            };
            let e = app::verbs::approve(env, rb, &step, comment, &seen)?;
            let who = crate::domain::lifecycle::shown_as(&e.actor, e.as_name.as_deref());
            match &e.body {
                crate::domain::event::Body::Approved { complete: false, missing, .. } => out(&format!(
                    "approved `{step}` as {who} (event #{}); the approval policy still needs {} before it runs\n",
                    e.seq,
                    missing.join("; ")
                )),
                _ => out(&format!("approved `{step}` as {who} (event #{}); `flow run` carries it out\n", e.seq)),
            }
            Ok(exit::OK)
        }
        Command::Answer { question, choice, none: _, comment } => {
            let (e, q) = app::verbs::answer(env, rb, &question, choice, comment)?;
            let what = match choice {
                Some(n) => {
                    let r = &q.readings[n - 1];
                    format!("reading {n}: {} {}", r.kind, crate::domain::human::target(r))
                }
                None => "none of the readings: the figure is not a target".into(),
            };
            let spec = app::status::status(env, rb).map(|s| s.spec).unwrap_or_default();
            out(&format!(
                "answered {question} ({what}) as {} (event #{}); `flow plan {spec}` plans with it\n",
                crate::domain::lifecycle::shown_as(&e.actor, e.as_name.as_deref()),
                e.seq
            ));
            Ok(exit::OK)
        }
        Command::Reject { step, reason } => {
            let e = app::verbs::reject(env, rb, &step, &reason)?;
            out(&format!("rejected `{step}` (event #{})\n", e.seq));
            Ok(exit::OK)
        }
        Command::Retry { step } => {
            let e = app::verbs::retry(env, rb, &step)?;
            let st = app::status::status(env, rb)?;
            let how = match st.step(&step).and_then(|s| s.approval.as_ref()) {
                Some(a) => format!(
                    "on the approval by {} at {}, which holds only if what it shows is unchanged (else it is shown again for approval)",
                    crate::domain::lifecycle::shown_as(&a.by, a.as_name.as_deref()),
                    a.at
                ),
                None => "from its preview: it needs a new approval".into(),
            };
            out(&format!("`{step}` will run again at the next `flow run`, {how} (event #{})\n", e.seq));
            Ok(exit::OK)
        }
        Command::Skip { step, reason } => {
            let e = app::verbs::skip(env, rb, &step, &reason)?;
            out(&format!("skipped `{step}` (event #{})\n", e.seq));
            Ok(exit::OK)
        }
        Command::State { action } => {
            let (other, export, json) = match action {
                StateAction::Export { to, json } => (to, true, json),
                StateAction::Import { from, json } => (from, false, json),
            };
            let there = app::state::backend(&other, env.clock.clone(), export)?;
            let (src, dst) =
                if export { (env.backend.as_ref(), there.as_ref()) } else { (there.as_ref(), env.backend.as_ref()) };
            let c = app::state::copy(src, dst, rb)?;
            if json {
                print_json(&c);
            } else {
                println!(
                    "copied runbook {} from {} to {}: {} events, {} plan versions, {} planner exchanges; read back and checked (journal {}, plans {})",
                    c.runbook,
                    c.from,
                    c.to,
                    c.events,
                    c.plan_versions,
                    c.exchanges,
                    digest::short(&c.journal_digest),
                    digest::short(&c.plans_digest)
                );
            }
            Ok(exit::OK)
        }
        Command::Log { llm: true, json } => {
            let x = app::log::exchanges(env, rb)?;
            if json {
                print_json(&x);
            } else {
                out(&render::exchanges(&x));
            }
            Ok(exit::OK)
        }
        // Answered before any store is opened.
        Command::Completions { .. } | Command::Man { .. } => Ok(exit::OK),
        Command::Log { llm: false, json } => {
            let l = app::log::log(env, rb)?;
            if json {
                print_json(&l);
            } else {
                out(&render::log(&l));
            }
            Ok(exit::OK)
        }
    }
}

/// `flow approve` without a digest: on a terminal, print what would be approved and ask; the
/// digest of what was printed is what gets approved (`None`: the person said no). Off a
/// terminal (a script, CI) there is no one to show it to: the digest is required.
fn confirm(env: &Env, rb: Option<&str>, step: &str) -> Result<Option<String>> {
    use std::io::{BufRead, Write};
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::Usage(format!(
            "`flow approve {step}` off a terminal needs the digest of the preview you reviewed: \
             `flow approve {step} --digest DIGEST` (`flow status` shows it beside the step)"
        )));
    }
    let (artifact, digest) = app::verbs::preview(env, rb, step)?;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "`{step}` will ({}):", digest::short(&digest));
    for line in render::visible(&artifact).lines() {
        let _ = writeln!(err, "    {line}");
    }
    let _ = write!(err, "approve this as {}? [y/N] ", env.actor);
    let _ = err.flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes").then_some(digest))
}

/// `flow report`: render, then write to the file (and the charts beside it) or print. Without
/// `-o`, HTML and Markdown go to a file named after the runbook (a page of HTML is no use on a
/// terminal), JSON and JUnit to stdout; `-o -` prints any of them.
fn report(env: &Env, rb: Option<&str>, format: crate::report::Format, output: Option<&std::path::Path>) -> Result<i32> {
    use crate::report::Format;
    let r = app::report::report(env, rb)?;
    let write = |path: &std::path::Path, text: &str| {
        std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    };
    let default = match format {
        Format::Md => Some(std::path::PathBuf::from(format!("{}-report.md", r.runbook))),
        Format::Html => Some(std::path::PathBuf::from(format!("{}-report.html", r.runbook))),
        Format::Json | Format::Junit => None,
    };
    let output = match output {
        Some(o) if o == std::path::Path::new("-") => None,
        Some(o) => Some(o.to_path_buf()),
        None => default,
    };
    let graph = match format {
        Format::Md => app::report::graph(env, rb, crate::report::graph::Kind::Mermaid)?,
        _ => String::new(),
    };
    let stem = output
        .as_deref()
        .and_then(|o| o.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "flow-report".into());
    let (text, files) = crate::report::render(&r, format, &graph, &stem);
    let dir = output
        .as_deref()
        .and_then(|o| o.parent())
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    for (name, svg) in &files {
        write(&dir.join(name), svg)?;
    }
    match output {
        Some(path) => {
            write(&path, &text)?;
            let charts = match format {
                Format::Html => format!(", {} charts inline", text.matches("<div class=\"chart\">").count()),
                Format::Md => format!(", {} charts beside it", files.len()),
                Format::Json | Format::Junit => String::new(),
            };
            eprintln!(
                "{}: {} ({} requirements{charts})",
                path.display(),
                visible(&r.decision.headline),
                r.requirements.len()
            );
        }
        None => out(&text),
    }
    Ok(decision_code(&r.decision))
}

/// `flow report --check`'s exit code: 0 GO, 1 NO-GO, 10 UNDECIDED.
fn decision_code(d: &crate::domain::verdict::Decision) -> i32 {
    match d.word.as_str() {
        "GO" => exit::OK,
        "UNDECIDED" => exit::WAITING_APPROVAL,
        _ => exit::FAILED,
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
        args::Drill::Restore {
            restore,
            probe,
            interval,
            probe_timeout,
            allow_probe_up_before,
            timeout,
            cleanup,
            worst_rpo,
            max_rto,
            max_rpo,
            json,
        } => {
            let params = json!({
                "restore": restore, "probe": probe, "probe_interval_ms": ms(interval), "timeout_s": timeout.as_secs().max(1),
                "cleanup": cleanup, "worst_rpo_s": worst_rpo.map(|d| d.as_secs_f64()),
                "probe_timeout_ms": probe_timeout.map(ms), "allow_probe_up_before": allow_probe_up_before,
            });
            let mut bounds: Vec<(&'static str, f64)> = Vec::new();
            bounds.extend(max_rto.map(|d| (ad::RTO, d.as_secs_f64())));
            bounds.extend(max_rpo.map(|d| (ad::RPO, d.as_secs_f64())));
            (StepKind::RestoreDrill, params, bounds, json)
        }
        args::Drill::Alarm { prefix, alarm, region, max_delay, wait, json } => {
            let params = json!({
                "alarm_prefix": prefix, "alarms": if alarm.is_empty() { None } else { Some(alarm) }, "region": region,
                "max_delay_s": max_delay.as_secs_f64(), "wait_s": wait.map(|w| w.as_secs().max(1)),
            });
            (StepKind::AlarmDrill, params, vec![(ad::NOTIFICATION, max_delay.as_secs_f64())], json)
        }
    };
    let mut params = params.as_object().cloned().unwrap_or_default();
    params.retain(|_, v| !v.is_null());
    let (env, _bars) = with_bars(env, json);
    let report = ad::run(&env, kind, params, &bounds).await?;
    if json {
        print_json(&report);
    } else {
        out(&render::drill(&report));
    }
    Ok(if report.passed { exit::OK } else { exit::FAILED })
}

async fn loadtest(s: load::Settings, spread: &load::spread::Spread, json: bool) -> Result<i32> {
    let bars = Arc::new(progress::Bars::new(json));
    // With workers, Ctrl-C is the coordinator's: it stops them all, wherever they run.
    let report = app::loadtest::run(s, spread, bars).await?;
    if json {
        print_json(&report);
    } else {
        out(&render::load(&report));
    }
    Ok(if !report.valid {
        exit::INVALID
    } else if !report.passed() {
        exit::FAILED
    } else {
        exit::OK
    })
}
