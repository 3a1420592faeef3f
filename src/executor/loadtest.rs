//! `loadtest`: the built-in load generator as a step. Its thresholds come from the requirements
//! the step covers (throughput -> rate, latency_avg -> avg, latency_pNN -> pNN, success_rate ->
//! success); its figures are the evidence behind their verdicts. A run that could not keep its
//! schedule fails the step: its figures would not be evidence. A run cut short by a crash is
//! handed to a person (the default reconcile): load is not sent again without one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{obj, typed, Ctx, Executor, Outcome, Preview};
use crate::domain::catalogue::LoadtestParams;
use crate::domain::requirement::{fmt_num, Kind, Requirement};
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

fn settings(ctx: &Ctx, params: &Map<String, Value>) -> Result<load::Settings, String> {
    let p: LoadtestParams = typed(params)?;
    let url: url::Url =
        p.url.get()?.parse().map_err(|e| format!("url `{}`: {e}", p.url.get().unwrap_or(&String::new())))?;
    let mut s = load::Settings::new(url, Duration::from_secs(p.duration_s));
    s.rate = match &p.rate {
        Some(r) => Some(*r.get()?),
        None => None,
    };
    s.connections = p.connections.map(|c| c as usize);
    s.keepalive = p.keepalive;
    s.warmup = Duration::from_secs(p.warmup_s.unwrap_or(0).min(p.duration_s.saturating_sub(1)));
    if let Some(t) = p.timeout_ms {
        s.timeout = Duration::from_millis(t);
    }
    if let (Some(r), Some(ramp)) = (s.rate, p.ramp_s) {
        s.stages.push((Duration::from_secs(ramp), r));
    }
    s.thresholds = ctx.covers.iter().filter_map(threshold_for).collect();
    Ok(s)
}

#[async_trait]
impl Executor for Loadtest {
    async fn preview(&self, ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview, String> {
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
        for t in &s.thresholds {
            a.push_str(&format!("  threshold {t}\n"));
        }
        Ok(Preview::Approve(a))
    }

    async fn submit(&self, ctx: &Ctx, params: &Map<String, Value>, _token: &str) -> Outcome {
        let s = match settings(ctx, params) {
            Ok(s) => s,
            Err(e) => return Outcome::Fail(e),
        };
        let report = match load::run(s, Arc::new(|_, _| {})).await {
            Ok(r) => r,
            Err(e) => return Outcome::Fail(e),
        };
        if let Some(why) = &report.invalid_reason {
            return Outcome::Fail(format!("the load test is not valid evidence: {why}"));
        }
        let l = &report.latency;
        let outputs = obj(json!({
            "throughput_rps": report.throughput_rps, "success_rate_pct": report.success_rate_pct,
            "latency_avg_ms": l.mean_ms, "latency_p50_ms": l.p50_ms, "latency_p90_ms": l.p90_ms,
            "latency_p95_ms": l.p95_ms, "latency_p99_ms": l.p99_ms, "latency_p999_ms": l.p999_ms,
            "latency_max_ms": l.max_ms,
        }));
        let mut evidence = outputs.clone();
        evidence.insert("achieved_rate".into(), json!(report.achieved_rate));
        evidence.insert("target_rate".into(), json!(report.target_rate));
        evidence.insert("counts".into(), json!(report.counts));
        evidence.insert("errors".into(), json!(report.errors));
        evidence.insert("uncorrected_latency".into(), json!(report.uncorrected_latency));
        evidence.insert("thresholds".into(), json!(report.verdicts));
        evidence.insert("generator".into(), json!(report.generator));
        Outcome::Done { outputs, evidence }
    }
}
