//! Each command: its arguments to `app`, its result to text or JSON, its exit code.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use super::args::{Architecture, Cli, Command, Extract, GraphFormat, ModelArgs, StateAction};
use super::*;
use crate::app::{self, Env};
use crate::domain::digest;
use crate::domain::human::visible;
use crate::domain::lifecycle::Seen;
use crate::engine::Options;
use crate::error::{Error, Result};
use crate::{exit, load};

pub(super) async fn dispatch(env: &Env, cli: Cli) -> Result<i32> {
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
                let model = app::model::model(&how).await?;
                or_cancel(app::model::extract(&env, &model, &file, &mut s, None, &mut notes)).await??;
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
