//! `failover_drill`: inject a fault while probing the service, and measure what it does.
//!
//! Probes start before the fault; if any of them fails, nothing is injected. The fault is a
//! command (any environment), an AWS FIS experiment (an AZ power interruption from a shipped
//! template), or an ARC zonal shift (the load balancer's traffic moved away from one AZ, then
//! back). The probes go on for `duration_s` after the fault starts, and for a short settle
//! after the fault ends when it outlasts that; optional background load runs meanwhile. The
//! evidence: the probe timeline (its changes of state), the outage windows, the longest one
//! (`failover_downtime_s`), the time to recover, whether the service came back with no human
//! action, and `az_failure_tolerated` (it came back, within the downtime bound).
//!
//! A drill caught mid-run by a crash does not inject its fault again: a command drill is
//! interrupted, for a person; an FIS experiment or a zonal shift is found by the token it was
//! started with, stopped, and the drill fails as incomplete. A retried drill is approved again.

mod fault;

use fault::*;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_arczonalshift::Client as ArcClient;
use aws_sdk_fis::types::{ActionsMode, StartExperimentExperimentOptionsInput};
use aws_sdk_fis::Client as FisClient;
use serde_json::{json, Map, Value};

use super::watch::Watch;
use super::{obj, typed, Ctx, Error, Executor, Outcome, Preview, Result};
use crate::aws::{self, Aws, ARC_ZONAL_SHIFT, FIS};
use crate::domain::catalogue::{FailoverDrillParams, Fault, DRILL_INTERVAL_MS, PROBE_TIMEOUT_MS};
use crate::domain::requirement::{fmt_num, Kind};
use crate::domain::{digest, drill, metric};

pub struct FailoverDrill;

/// After the fault ends, the service must answer this long (within the window) to count as back.
const SETTLE: Duration = Duration::from_secs(2);
/// A fault that outlasts the window is waited for at most this long before flow ends it.
const FAULT_CAP: Duration = Duration::from_secs(3600);

/// A token AWS accepts (at most 64 characters) derived from the step's.
pub fn aws_token(token: &str) -> String {
    format!("flow-{}", digest::short(&digest::of_bytes(token.as_bytes())))
}

/// The drill's settings, resolved.
struct Plan {
    p: FailoverDrillParams,
    endpoint: String,
    interval: Duration,
    timeout: Duration,
    baseline: Duration,
    duration: Duration,
    /// The downtime bound and where it came from.
    bound: Option<(f64, String)>,
    rate: Option<f64>,
}

fn plan(ctx: &Ctx, params: &Map<String, Value>) -> Result<Plan> {
    let p: FailoverDrillParams = typed(params)?;
    let endpoint = p.endpoint.get()?.clone();
    let interval = Duration::from_millis(p.probe_interval_ms.unwrap_or(DRILL_INTERVAL_MS));
    let timeout = Duration::from_millis(p.probe_timeout_ms.unwrap_or(PROBE_TIMEOUT_MS));
    let bound = match p.max_downtime_s {
        Some(b) => Some((b, "max_downtime_s".to_string())),
        None => ctx.covers.iter().find(|r| r.kind == Kind::FailoverDowntime).map(|r| (r.value, r.id.clone())),
    };
    let rate = p.rate.as_ref().map(|r| r.get().copied()).transpose()?;
    Ok(Plan {
        endpoint,
        interval,
        timeout,
        baseline: Duration::from_secs(p.baseline_s.unwrap_or(1)),
        duration: Duration::from_secs(p.duration_s),
        bound,
        rate,
        p,
    })
}

/// The AWS side of a drill: FIS or ARC zonal shift.
struct Clients {
    aws: Aws,
}

impl Clients {
    async fn new(ctx: &Ctx, p: &FailoverDrillParams) -> Result<Clients> {
        Ok(Clients { aws: aws::config(p.region.as_deref(), &ctx.context).await? })
    }
    fn fis(&self) -> FisClient {
        FisClient::new(&self.aws.conf)
    }
    fn arc(&self) -> ArcClient {
        ArcClient::new(&self.aws.conf)
    }
}

/// The fault, ready to start: an AWS one with its clients.
enum Armed {
    Command,
    Fis(Clients),
    Shift(Clients),
}

/// The fault, as it was started (an AWS one with the clients that started it).
enum Running<'a> {
    Command(tokio::process::Child),
    Fis { id: String, c: &'a Clients },
    Shift { id: String, c: &'a Clients },
}

impl FailoverDrill {
    async fn drill(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Outcome> {
        let d = plan(ctx, params)?;
        let how = d.p.fault().map_err(|e| Error::Params(e.to_string()))?;
        // The AWS clients are made before any probe: a missing region or credentials stop the
        // drill before it starts.
        let armed = match how {
            Fault::Command => Armed::Command,
            Fault::Fis => Armed::Fis(Clients::new(ctx, &d.p).await?),
            Fault::ZonalShift => Armed::Shift(Clients::new(ctx, &d.p).await?),
        };
        let clients = match &armed {
            Armed::Command => None,
            Armed::Fis(c) | Armed::Shift(c) => Some(c),
        };
        let aws_tok = aws_token(token);

        let watch = Watch::start(&d.endpoint, d.interval, d.timeout)?;
        tokio::time::sleep(d.baseline.max(d.interval)).await;
        // The baseline's probes have all answered once their timeout has passed.
        tokio::time::sleep(d.timeout).await;
        let baseline: Vec<_> =
            watch.so_far().into_iter().filter(|p| p.at_ms < d.baseline.max(d.interval).as_millis() as u64).collect();
        let down = baseline.iter().filter(|p| !p.up).count();
        if baseline.is_empty() || down > 0 {
            let _ = watch.stop().await;
            return Err(Error::Step(format!(
                "{} was not answering before the fault ({down} of {} probes failed): nothing was injected",
                d.endpoint,
                baseline.len()
            )));
        }

        let fault_at = watch.now_ms();
        // Alarm history is stamped by AWS's clock: the fault's wall time, not the watch's.
        let fault_wall_ms = wall_ms();
        let load = d.rate.map(|rate| {
            let url = d.endpoint.clone();
            let lasts = d.duration + SETTLE;
            tokio::spawn(async move {
                let mut ask = crate::load::Ask::new(url, lasts);
                ask.rate = Some(rate);
                let s = crate::load::Settings::resolve(ask)?;
                crate::load::run(s, Arc::new(|_, _| {})).await
            })
        });
        let mut fault = json!({"how": how.name(), "started_ms": fault_at});
        let mut running = match &armed {
            Armed::Command => {
                let run = d.p.inject.clone().unwrap_or_default();
                fault["command"] = json!(run);
                match super::command::shell(ctx, &run, token).kill_on_drop(true).spawn() {
                    Ok(child) => Running::Command(child),
                    Err(e) => {
                        let _ = watch.stop().await;
                        return Err(Error::Step(format!("cannot start the fault `sh -c {run}`: {e}")));
                    }
                }
            }
            Armed::Fis(c) => {
                let template = d.p.fis_template.as_ref().map(|t| t.get().cloned()).transpose()?.unwrap_or_default();
                let started = c
                    .fis()
                    .start_experiment()
                    .experiment_template_id(&template)
                    .client_token(&aws_tok)
                    .experiment_options(
                        StartExperimentExperimentOptionsInput::builder().actions_mode(ActionsMode::RunAll).build(),
                    )
                    .tags("flow-token", &aws_tok)
                    .tags("flow-step", &ctx.step)
                    .send()
                    .await;
                match started {
                    Ok(out) => {
                        let id = out.experiment.and_then(|e| e.id).unwrap_or_default();
                        fault["experiment"] = json!(id);
                        fault["template"] = json!(template);
                        Running::Fis { id, c }
                    }
                    Err(e) => {
                        let _ = watch.stop().await;
                        return Err(c.aws.error(FIS, format!("StartExperiment {template}"), &e).into());
                    }
                }
            }
            Armed::Shift(c) => {
                let resource =
                    d.p.zonal_shift_resource.as_ref().map(|t| t.get().cloned()).transpose()?.unwrap_or_default();
                let away = d.p.away_from.as_ref().map(|t| t.get().cloned()).transpose()?.unwrap_or_default();
                let minutes = (d.duration.as_secs() + SETTLE.as_secs()).div_ceil(60).max(1) + 5;
                let started = c
                    .arc()
                    .start_zonal_shift()
                    .resource_identifier(&resource)
                    .away_from(&away)
                    .expires_in(format!("{minutes}m"))
                    .comment(format!("flow drill {} {aws_tok}", ctx.step))
                    .send()
                    .await;
                match started {
                    Ok(out) => {
                        fault["zonal_shift"] = json!(out.zonal_shift_id());
                        fault["away_from"] = json!(away);
                        fault["resource"] = json!(resource);
                        Running::Shift { id: out.zonal_shift_id().to_string(), c }
                    }
                    Err(e) => {
                        let _ = watch.stop().await;
                        return Err(c
                            .aws
                            .error(ARC_ZONAL_SHIFT, format!("StartZonalShift {resource} away from {away}"), &e)
                            .into());
                    }
                }
            }
        };

        // Watch: the window, and the fault's end plus a settle when it outlasts the window.
        let shown = super::Shown::new(ctx);
        let window_end = fault_at + d.duration.as_millis() as u64;
        let cap = window_end + FAULT_CAP.as_millis() as u64;
        let mut fault_end: Option<u64> = None;
        let mut fault_result = Value::Null;
        loop {
            let now = watch.now_ms();
            if fault_end.is_none() {
                match &mut running {
                    Running::Command(child) => {
                        if let Ok(Some(status)) = child.try_wait() {
                            fault_end = Some(now);
                            fault_result = json!({"exit_code": status.code().unwrap_or(-1)});
                        } else if now >= cap {
                            let _ = child.kill().await;
                            fault_end = Some(now);
                            fault_result = json!({"stopped": "the fault command outlasted the drill by an hour"});
                        }
                    }
                    Running::Fis { id, c } => {
                        let status = fis_status(c, id).await?;
                        if fis_terminal(&status) {
                            fault_end = Some(now);
                            fault_result = json!({"status": status.as_str()});
                        } else if now >= cap {
                            let _ = c.fis().stop_experiment().id(id.as_str()).send().await;
                            fault_end = Some(now);
                            fault_result = json!({"status": "stopped by flow: it outlasted the drill by an hour"});
                        }
                    }
                    Running::Shift { id, c } => {
                        if now >= window_end {
                            cancel_shift(c, id).await?;
                            fault_end = Some(now);
                            fault_result = json!({"cancelled": true});
                        }
                    }
                }
            }
            let so_far = drill::failover(&watch.so_far(), fault_at, now);
            shown.say(&format!(
                "{:.1}/{} s after the fault ({}): service {}, longest outage so far {} s",
                now.saturating_sub(fault_at) as f64 / 1000.0,
                d.duration.as_secs(),
                how.name(),
                if so_far.outages.last().is_some_and(|o| o.end_ms.is_none()) { "DOWN" } else { "up" },
                fmt_num(so_far.downtime_s)
            ));
            let settled = fault_end.is_some_and(|e| now >= e + SETTLE.as_millis() as u64);
            if now >= window_end && settled {
                break;
            }
            tokio::time::sleep(d.interval.min(Duration::from_millis(250))).await;
        }
        let (probes, end_ms) = watch.stop().await;
        drop(shown);
        let a = drill::failover(&probes, fault_at, end_ms);
        let alarms = match &d.p.alarm_prefix {
            Some(prefix) => {
                let prefix = prefix.get()?.clone();
                let template = fault.get("template").and_then(Value::as_str).map(str::to_string);
                Some(alarms_during(ctx, &d, clients, &prefix, template.as_deref(), fault_wall_ms, a.downtime_s).await)
            }
            None => None,
        };
        fault["ended_ms"] = json!(fault_end);
        fault["result"] = fault_result;

        let within = d.bound.as_ref().is_none_or(|(b, _)| a.downtime_s <= *b);
        let tolerated = a.recovered && within;
        let mut evidence = obj(json!({
            metric::FAILOVER_DOWNTIME_S: a.downtime_s,
            metric::AZ_FAILURE_TOLERATED: tolerated,
            "downtime_s": a.downtime_s,
            "time_to_recover_s": a.time_to_recover_s,
            "recovered": a.recovered,
            "max_downtime_s": d.bound.as_ref().map(|b| b.0),
            "max_downtime_from": d.bound.as_ref().map(|b| b.1.clone()),
            "outages": a.outages,
            "timeline": a.timeline,
            "probes": a.probes,
            "probe_success_pct": a.probe_success_pct,
            "probe_interval_ms": d.interval.as_millis() as u64,
            "probe_timeout_ms": d.timeout.as_millis() as u64,
            "fault_at_ms": fault_at,
            "end_ms": end_ms,
            "endpoint": d.endpoint,
            "fault": fault,
        }));
        if let Some(a) = alarms {
            evidence.insert("alarms".into(), a);
        }
        if let Some(l) = load {
            evidence.insert(
                "load".into(),
                match l.await {
                    Ok(Ok(r)) => json!({"rate": d.rate, "success_rate_pct": r.success_rate_pct, "completed": r.counts.completed, "latency_p99_ms": r.latency.p99_ms}),
                    Ok(Err(e)) => json!({"rate": d.rate, "error": e.to_string()}),
                    Err(e) => json!({"rate": d.rate, "error": e.to_string()}),
                },
            );
        }
        if let Some(run) = &d.p.recover {
            evidence.insert("recover".into(), super::command::run_to_end(ctx, run, token, &[]).await);
        }
        let outputs = obj(json!({metric::FAILOVER_DOWNTIME_S: a.downtime_s, metric::AZ_FAILURE_TOLERATED: tolerated}));
        Ok(Outcome::Done { outputs, evidence })
    }
}

#[async_trait]
impl Executor for FailoverDrill {
    async fn preview(&self, ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview> {
        let d = plan(ctx, params)?;
        let how = d.p.fault().map_err(|e| Error::Params(e.to_string()))?;
        let mut a = match how {
            Fault::Command => format!(
                "inject a fault by running:\n  $ {}\n{}",
                d.p.inject.clone().unwrap_or_default(),
                d.p.recover.as_ref().map(|r| format!("and afterwards, to undo it:\n  $ {r}\n")).unwrap_or_default()
            ),
            Fault::Fis => {
                let c = Clients::new(ctx, &d.p).await?;
                let template = d.p.fis_template.as_ref().map(|t| t.get().cloned()).transpose()?.unwrap_or_default();
                let (role, lines) = fis_template_text(&c, &template).await?;
                let resolved = fis_dry_run(&c, &template, &ctx.step, ctx.clock.now_ms()).await?;
                let mut a =
                    format!("run the AWS FIS experiment template {template} in {} (role {role}):\n", c.aws.region);
                for l in lines {
                    a.push_str(&l);
                    a.push('\n');
                }
                a.push_str(&format!("  resolved targets now ({}):\n", resolved.len()));
                for r in &resolved {
                    a.push_str(&format!("    {r}\n"));
                }
                a
            }
            Fault::ZonalShift => {
                let c = Clients::new(ctx, &d.p).await?;
                let resource =
                    d.p.zonal_shift_resource.as_ref().map(|t| t.get().cloned()).transpose()?.unwrap_or_default();
                let away = d.p.away_from.as_ref().map(|t| t.get().cloned()).transpose()?.unwrap_or_default();
                let r = c
                    .arc()
                    .get_managed_resource()
                    .resource_identifier(&resource)
                    .send()
                    .await
                    .map_err(|e| c.aws.error(ARC_ZONAL_SHIFT, format!("GetManagedResource {resource}"), &e))?;
                let mut zones: Vec<String> = r.applied_weights().iter().map(|(z, w)| format!("{z}={w}")).collect();
                zones.sort();
                format!(
                    "move the traffic of {} ({resource}) away from {away} with an ARC zonal shift for the drill, then cancel it\n  zones now: {}\n  active shifts now: {}\n",
                    r.name().unwrap_or_default(),
                    zones.join(", "),
                    r.zonal_shifts().len()
                )
            }
        };
        a.push_str(&format!(
            "while probing {} every {} ms (timeout {} ms): {} s before the fault (all must answer, or nothing is injected), {} s after it\n",
            d.endpoint,
            d.interval.as_millis(),
            d.timeout.as_millis(),
            d.baseline.as_secs(),
            d.duration.as_secs()
        ));
        if let Some(r) = d.rate {
            a.push_str(&format!("  background load: {} req/s\n", fmt_num(r)));
        }
        if let Some(p) = &d.p.alarm_prefix {
            a.push_str(&format!(
                "  afterwards, the history of the alarms named {}* (and of the experiment's stop conditions): which fired, when\n",
                p.get()?
            ));
        }
        match &d.bound {
            Some((b, from)) => a.push_str(&format!("  downtime bound: {} s (from {from})\n", fmt_num(*b))),
            None => a.push_str("  downtime bound: none (the drill reports what it measures)\n"),
        }
        Ok(Preview::Approve(a))
    }

    async fn submit(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Outcome> {
        self.drill(ctx, params, token).await
    }

    async fn reconcile(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Option<Outcome>> {
        let d = plan(ctx, params)?;
        let how = d.p.fault().map_err(|e| Error::Params(e.to_string()))?;
        let aws_tok = aws_token(token);
        let incomplete = |what: String| {
            Error::Step(format!(
                "the drill was interrupted: {what}; its fault was injected once and the measurement is incomplete, so it is \
                 no evidence. `flow retry {}` runs a new drill (to be approved again)",
                ctx.step
            ))
        };
        match how {
            // A command cannot be looked up: a person decides.
            Fault::Command => Ok(None),
            Fault::Fis => {
                let c = Clients::new(ctx, &d.p).await?;
                let template = d.p.fis_template.as_ref().map(|t| t.get().cloned()).transpose()?.unwrap_or_default();
                match fis_started(&c, &template, &aws_tok).await? {
                    Some((id, status)) => {
                        if !fis_terminal(&status) {
                            c.fis()
                                .stop_experiment()
                                .id(&id)
                                .send()
                                .await
                                .map_err(|e| c.aws.error(FIS, format!("StopExperiment {id}"), &e))?;
                            Err(incomplete(format!("FIS experiment {id} was {} and is now stopped", status.as_str())))
                        } else {
                            Err(incomplete(format!("FIS experiment {id} ran and is {}", status.as_str())))
                        }
                    }
                    // Never started: the drill runs now, once.
                    None => self.drill(ctx, params, token).await.map(Some),
                }
            }
            Fault::ZonalShift => {
                let c = Clients::new(ctx, &d.p).await?;
                let resource =
                    d.p.zonal_shift_resource.as_ref().map(|t| t.get().cloned()).transpose()?.unwrap_or_default();
                match shift_started(&c, &resource, &aws_tok).await? {
                    Some((id, true)) => {
                        cancel_shift(&c, &id).await?;
                        Err(incomplete(format!("zonal shift {id} was active and is now cancelled")))
                    }
                    Some((id, false)) => Err(incomplete(format!("zonal shift {id} ran and has ended"))),
                    None => self.drill(ctx, params, token).await.map(Some),
                }
            }
        }
    }
}
