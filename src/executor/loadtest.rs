//! `loadtest`: the built-in load generator as a step. Its thresholds come from the requirements
//! the step covers (throughput -> rate, latency_avg -> avg, latency_pNN -> pNN, success_rate ->
//! success); its figures are the evidence behind their verdicts. A run that could not keep its
//! schedule fails the step: its figures would not be evidence. A run cut short by a crash is
//! handed to a person (the default reconcile): load is not sent again without one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{obj, typed, Ctx, Executor, Outcome, Preview, Result};
use crate::domain::catalogue::{LoadtestParams, MIN_SUCCESS_PCT};
use crate::domain::metric as m;
use crate::domain::requirement::{fmt_num, Kind, Requirement, Unit};
use crate::load::{self, threshold};

pub struct Loadtest;

/// The threshold a requirement sets on a load test, if it sets one.
pub fn threshold_for(r: &Requirement) -> Option<threshold::Threshold> {
    let metric = match &r.kind {
        Kind::Throughput => threshold::Metric::Rate,
        Kind::LatencyAvg => threshold::Metric::Avg,
        Kind::LatencyP(p) => threshold::Metric::P(p.parse().ok()?),
        Kind::SuccessRate => threshold::Metric::Success,
        _ => return None,
    };
    Some(threshold::Threshold {
        text: format!("{} {} ({})", r.kind, r.target(), r.id),
        metric,
        op: r.op,
        value: r.value,
    })
}

/// The step's params as a run, checked by the same rules as `flow loadtest`'s flags.
fn settings(ctx: &Ctx, params: &Map<String, Value>) -> Result<load::Settings> {
    let p: LoadtestParams = typed(params)?;
    let mut ask = load::Ask::new(p.url.get()?.clone(), Duration::from_secs(p.duration_s));
    ask.rate = p.rate.as_ref().map(|r| r.get().copied()).transpose()?;
    ask.connections = p.connections.map(|c| c as usize);
    ask.keepalive = p.keepalive;
    ask.warmup = Duration::from_secs(p.warmup_s.unwrap_or(0));
    ask.timeout = p.timeout_ms.map(Duration::from_millis);
    ask.ramp = p.ramp_s.map(Duration::from_secs);
    ask.thresholds = ctx.covers.iter().filter_map(threshold_for).collect();
    Ok(load::Settings::resolve(ask)?)
}

fn params_floor(params: &Map<String, Value>) -> Option<f64> {
    params.get("min_success_pct").and_then(Value::as_f64)
}

/// A run whose success rate is below the success target it covers (or, covering none, below
/// the floor) measured a failing service: its throughput and latency figures are not evidence
/// of the service at that load, and nothing downstream may be sized from them.
fn success_shortfall(ctx: &Ctx, floor: &Option<f64>, success: f64) -> Option<String> {
    let h = crate::domain::human::value;
    let targets: Vec<&Requirement> = ctx.covers.iter().filter(|r| r.kind == Kind::SuccessRate).collect();
    if targets.is_empty() {
        let floor = floor.unwrap_or(MIN_SUCCESS_PCT);
        return (success < floor).then(|| {
            format!(
                "the success rate was {}, below the {} a load test needs for its figures to be evidence (`min_success_pct`): \
                 the endpoint is failing, so nothing is measured or sized from this run",
                h(success, Unit::Percent),
                h(floor, Unit::Percent)
            )
        });
    }
    targets.iter().find(|r| !r.op.holds(success, r.value)).map(|r| {
        format!(
            "the success rate was {}, short of the {} target of {}: the run's throughput and latency figures are not evidence of the service at this load",
            h(success, Unit::Percent),
            crate::domain::human::target(r),
            r.id
        )
    })
}

/// How the step's load is spread: `workers`, `runner`, `place`, `worker_lead_s`.
fn spread(params: &Map<String, Value>) -> Result<load::spread::Spread> {
    let p: LoadtestParams = typed(params)?;
    let spread = load::spread::Spread {
        workers: p.workers.unwrap_or(1) as usize,
        runner: p.runner.unwrap_or(load::spread::LoadRunner::Local),
        place: p.place,
        lead: p.worker_lead_s.map(std::time::Duration::from_secs),
    };
    if spread.workers > 1 {
        spread.check().map_err(|e| super::Error::Step(format!("the load test cannot be spread: {e}")))?;
    }
    Ok(spread)
}

#[async_trait]
impl Executor for Loadtest {
    async fn preview(&self, ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview> {
        let s = settings(ctx, params)?;
        let model = match s.rate {
            Some(r) => format!("open model at {} req/s", fmt_num(r)),
            None => format!("closed model, as fast as {} connections allow", s.connections.unwrap_or(64)),
        };
        let mut a = format!(
            "send load to {} for {} s ({model}, {}, warm-up {} s, timeout {} ms)\n",
            s.url,
            s.duration.as_secs(),
            if s.keepalive { "keep-alive connections" } else { "a new connection per request" },
            s.warmup.as_secs(),
            s.timeout.as_millis()
        );
        let spread = spread(params)?;
        if spread.workers > 1 {
            a.push_str(&format!("  {}, each its share, judged on their merged figures\n", spread.describe()));
        }
        for t in &s.thresholds {
            a.push_str(&format!("  threshold {t}\n"));
        }
        if !ctx.covers.iter().any(|r| r.kind == Kind::SuccessRate) {
            let floor = params_floor(params).unwrap_or(MIN_SUCCESS_PCT);
            a.push_str(&format!(
                "  fails below a success rate of {} %: its figures would not be evidence\n",
                fmt_num(floor)
            ));
        }
        Ok(Preview::Approve(a))
    }

    async fn submit(&self, ctx: &Ctx, params: &Map<String, Value>, _token: &str) -> Result<Outcome> {
        let s = settings(ctx, params)?;
        let shown = Arc::new(super::Shown::new(ctx));
        let (live, say) = (load::LiveLine::new(s.rate, s.thresholds.clone()), shown.clone());
        let len = s.duration.as_secs();
        let spread = spread(params)?;
        let tick: Arc<dyn Fn(std::time::Duration, load::Live) + Send + Sync> =
            Arc::new(move |t, l| say.bar(t.as_secs().min(len), len, &live.line(t, &l)));
        let report = if spread.workers > 1 {
            load::spread::coordinate(s, &spread, tick).await?
        } else {
            load::run(s, tick).await?
        };
        drop(shown);
        if let Some(why) = &report.invalid_reason {
            return Err(super::Error::Step(format!("the load test is not valid evidence: {why}")));
        }
        if let Some(why) = &report.unanswered {
            return Err(super::Error::Step(format!("the load test is not evidence: {why}")));
        }
        if let Some(why) = success_shortfall(ctx, &params_floor(params), report.success_rate_pct) {
            return Err(super::Error::Step(why));
        }
        let l = &report.latency;
        let outputs = obj(json!({
            m::THROUGHPUT_RPS: report.throughput_rps, m::SUCCESS_RATE_PCT: report.success_rate_pct,
            m::LATENCY_AVG_MS: l.mean_ms, m::LATENCY_P50_MS: l.p50_ms, m::LATENCY_P90_MS: l.p90_ms,
            m::LATENCY_P95_MS: l.p95_ms, m::LATENCY_P99_MS: l.p99_ms, m::LATENCY_P999_MS: l.p999_ms,
            m::LATENCY_MAX_MS: l.max_ms,
        }));
        let mut evidence = outputs.clone();
        evidence.insert("achieved_rate".into(), json!(report.achieved_rate));
        evidence.insert("target_rate".into(), json!(report.target_rate));
        evidence.insert("counts".into(), json!(report.counts));
        evidence.insert("errors".into(), json!(report.errors));
        evidence.insert("uncorrected_latency".into(), json!(report.uncorrected_latency));
        evidence.insert("thresholds".into(), json!(report.verdicts));
        evidence.insert("generator".into(), json!(report.generator));
        evidence.insert("series".into(), json!(report.series));
        if !report.workers.is_empty() {
            evidence.insert("workers".into(), json!(report.workers));
        }
        Ok(Outcome::Done { outputs, evidence })
    }
}
