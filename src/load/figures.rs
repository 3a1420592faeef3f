//! What a run's record ([`Raw`]) is judged into: the [`Report`] `--json` prints, its latency,
//! counts and generator figures, the validity checks, and the live line ([`LiveLine`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::http::ErrorClass;
use super::threshold::{self, Figures, Threshold, Verdict};
use super::*;

/// The figures of a run, after warm-up.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

pub(crate) fn latency(h: &Histogram<u64>, sum_us: u64) -> Latency {
    let ms = |v: u64| v as f64 / 1000.0;
    let q = |p: f64| if h.is_empty() { 0.0 } else { ms(h.value_at_quantile(p)) };
    Latency {
        mean_ms: if h.is_empty() { 0.0 } else { ((sum_us as f64 / h.len() as f64) / 1000.0 * 1000.0).round() / 1000.0 },
        p50_ms: q(0.50),
        p90_ms: q(0.90),
        p95_ms: q(0.95),
        p99_ms: q(0.99),
        p999_ms: q(0.999),
        max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    /// Requests the schedule called for (open model), or sent (closed model), after warm-up.
    pub scheduled: u64,
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    /// Sent but with no answer when the run ended.
    pub in_flight: u64,
    /// Scheduled but never sent (the in-flight limit reached, or no connection free before the
    /// run ended).
    pub unsent: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Generator {
    pub cpu_cores: f64,
    pub rss_mib: f64,
    pub peak_rss_mib: f64,
    /// How late requests were sent against their intended time (scheduler and queueing).
    pub send_lag_ms: Latency,
    /// How late the scheduler itself released tickets: the generator's own lag.
    pub scheduler_lag_p99_ms: f64,
}

/// The versioned document `flow loadtest --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub config: serde_json::Value,
    pub valid: bool,
    pub invalid_reason: Option<String>,
    pub warnings: Vec<String>,
    pub target_rate: Option<f64>,
    pub achieved_rate: f64,
    pub throughput_rps: f64,
    pub success_rate_pct: f64,
    pub counts: Counts,
    pub latency: Latency,
    pub uncorrected_latency: Latency,
    pub connect_ms: Option<Latency>,
    pub connections_opened: u64,
    pub errors: BTreeMap<&'static str, u64>,
    pub series: Vec<Second>,
    pub generator: Generator,
    pub verdicts: Vec<Verdict>,
    pub aborted: bool,
    /// Set when no request got an expected answer: the run measured nothing (a dead endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unanswered: Option<String>,
    /// The corrected latencies, for percentile thresholds.
    #[serde(skip)]
    pub percentiles: Option<Histogram<u64>>,
    /// With several workers: each one's own figures (the rest of the report is their sum).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<spread::Worker>,
}

impl Figures for Report {
    fn rate(&self) -> f64 {
        self.throughput_rps
    }
    fn mean_ms(&self) -> f64 {
        self.latency.mean_ms
    }
    fn max_ms(&self) -> f64 {
        self.latency.max_ms
    }
    fn percentile_ms(&self, p: f64) -> f64 {
        self.percentiles
            .as_ref()
            .map(|h| if h.is_empty() { 0.0 } else { h.value_at_quantile(p / 100.0) as f64 / 1000.0 })
            .unwrap_or(0.0)
    }
    fn success_pct(&self) -> f64 {
        self.success_rate_pct
    }
}

impl Report {
    /// Every threshold held, and the service answered at all.
    pub fn passed(&self) -> bool {
        self.unanswered.is_none() && self.verdicts.iter().all(|v| v.pass)
    }
}

/// Ports a new-connection run would tie up in TIME_WAIT (60 s) against what the kernel has.
pub(crate) fn port_warning(s: &Settings) -> Option<String> {
    if s.keepalive {
        return None;
    }
    let rate = s.rate?;
    let ports = sys::ephemeral_ports()?;
    let need = rate * 60.0;
    (need > ports as f64).then(|| {
        format!(
            "a new connection per request at {rate} req/s needs ~{} client ports within TIME_WAIT's 60 s, and the kernel has {ports}; \
             the requests ask the server to close first (Connection: close) so TIME_WAIT lands on its side, but expect out_of_ports errors if it does not",
            need as u64
        )
    })
}

/// The live view's line, once a second: answers and errors in the last second apart (a
/// refused connection is an error, never an answer), the latency so far (after the warm-up, as
/// the report counts it), and each threshold as it stands now.
pub struct LiveLine {
    pub(crate) target: Option<f64>,
    pub(crate) thresholds: Vec<threshold::Threshold>,
    pub(crate) last: Mutex<(Duration, Live)>,
}

/// The figures so far, for judging thresholds while the run goes on.
pub(crate) struct SoFar<'a>(&'a Live);

impl threshold::Figures for SoFar<'_> {
    fn rate(&self) -> f64 {
        if self.0.measured_s > 0.0 {
            self.0.measured_ok as f64 / self.0.measured_s
        } else {
            0.0
        }
    }
    fn mean_ms(&self) -> f64 {
        self.0.mean_ms.unwrap_or(0.0)
    }
    fn max_ms(&self) -> f64 {
        self.0.max_ms.unwrap_or(0.0)
    }
    fn percentile_ms(&self, p: f64) -> f64 {
        match p {
            p if p <= 50.0 => self.0.p50_ms.unwrap_or(0.0),
            _ => self.0.p99_ms.unwrap_or(0.0),
        }
    }
    fn success_pct(&self) -> f64 {
        if self.0.measured == 0 {
            100.0
        } else {
            self.0.measured_ok as f64 * 100.0 / self.0.measured as f64
        }
    }
}

impl LiveLine {
    pub fn new(target: Option<f64>, thresholds: Vec<threshold::Threshold>) -> LiveLine {
        LiveLine { target, thresholds, last: Mutex::new((Duration::ZERO, Live::default())) }
    }

    /// `target 2,500 req/s  ok 2,498/s  errors 0/s  p50 1.2 ms  p99 4.1 ms  sent 29,970  ✓ rate>=2500  ✗ p99<3ms`.
    /// Thresholds on percentiles other than p50 and p99 are judged at the end only.
    pub fn line(&self, t: Duration, l: &Live) -> String {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let dt = t.saturating_sub(last.0).as_secs_f64();
        let per_s = |now: u64, then: u64| if dt > 0.0 { now.saturating_sub(then) as f64 / dt } else { 0.0 };
        let (ok_s, err_s) = (per_s(l.ok, last.1.ok), per_s(l.errors, last.1.errors));
        *last = (t, *l);
        let g = crate::domain::human::grouped;
        let ms = |v: Option<f64>| {
            v.map_or("-".to_string(), |v| match v {
                v if v < 10.0 => format!("{v:.2} ms"),
                v if v < 100.0 => format!("{v:.1} ms"),
                v => format!("{} ms", g(v.round())),
            })
        };
        let mut line = format!(
            "{}  ok {}/s  errors {}/s  p50 {}  p99 {}  sent {}",
            self.target.map(|r| format!("target {} req/s", g(r))).unwrap_or_else(|| "closed model".into()),
            g(ok_s.round()),
            g(err_s.round()),
            ms(l.p50_ms),
            ms(l.p99_ms),
            g(l.sent as f64),
        );
        if l.measured > 0 {
            for th in &self.thresholds {
                if matches!(th.metric, threshold::Metric::P(p) if p != 50.0 && p != 99.0) {
                    continue;
                }
                let v = threshold::judge(th, &SoFar(l));
                line.push_str(&format!("  {} {}", if v.pass { "✓" } else { "✗" }, th.text));
            }
        }
        line
    }
}

/// Everything a run recorded, before it is judged: what a worker ships, and what the lanes (or
/// the workers) of one run add up to.
#[derive(Clone)]
pub struct Raw {
    pub(crate) all: Shard,
    /// After warm-up: scheduled, never sent, stranded.
    pub(crate) scheduled: u64,
    pub(crate) unsent: u64,
    pub(crate) stranded: u64,
    pub(crate) sched_lag: Histogram<u64>,
    pub(crate) aborted: bool,
    pub(crate) limit: usize,
    pub(crate) wanted: usize,
    pub(crate) files: Option<u64>,
    pub(crate) cpu: Duration,
    pub(crate) wall: Duration,
    pub(crate) rss_kib: (u64, u64),
    pub(crate) closed: bool,
}

/// The report of what a run (or the workers of one) recorded, with the settings' thresholds
/// judged on it.
pub fn report(settings: &Settings, raw: Raw) -> Report {
    let Raw {
        all,
        scheduled: scheduled_measured,
        unsent: unsent_measured,
        stranded,
        sched_lag,
        aborted,
        limit,
        wanted,
        files,
        cpu,
        wall,
        rss_kib: (rss, peak),
        closed,
    } = raw;
    let measured_secs = settings.duration.saturating_sub(settings.warmup).as_secs_f64().max(0.001);
    let scheduled = if settings.rate.is_some() { scheduled_measured } else { all.completed };
    // Results recorded for requests never sent are not completions.
    let never_sent = unsent_measured + stranded;
    let completed = all.completed.saturating_sub(never_sent);
    let in_flight = all.sent.saturating_sub(completed);
    let achieved = all.sent as f64 / measured_secs;
    // Throughput is what the service did: expected answers a second. Refusals, errors and
    // timeouts are failures, never throughput.
    let throughput = all.ok as f64 / measured_secs;
    let success = if scheduled == 0 { 0.0 } else { all.ok as f64 * 100.0 / scheduled as f64 };
    let sched_p99 = sched_lag.value_at_quantile(0.99) as f64 / 1000.0;
    let invalid_reason = match settings.rate {
        Some(_) if unsent_measured > 0 => {
            Some(format!("{unsent_measured} of {scheduled} scheduled requests were never sent: the in-flight limit of {limit} was reached"))
        }
        Some(_) if stranded > 0 => Some(format!(
            "{stranded} of {scheduled} scheduled requests were never sent: every connection was still waiting on the server when the run ended"
        )),
        Some(_) if scheduled > 0 && (all.sent as f64) < scheduled as f64 * 0.995 && !aborted => {
            Some(format!("sent {} of the {scheduled} requests the schedule called for ({achieved:.1} req/s)", all.sent))
        }
        _ => None,
    };
    let mut warnings = Vec::new();
    if limit < wanted {
        let files = files.unwrap_or(0);
        warnings.push(match settings.rate {
            Some(rate) => format!(
                "the in-flight limit is {limit}, where rate x timeout would be {wanted}: the open-files limit ({files}) allows no more; \
                 a server that stops answering for more than {:.1} s makes the run invalid (raise `ulimit -n` to lift it)",
                limit as f64 / rate
            ),
            None => format!("{wanted} connections need more files than the open-files limit ({files}) allows: {limit} are used (raise `ulimit -n`)"),
        });
    }
    if let Some(w) = port_warning(settings) {
        warnings.push(w);
    }
    let series: Vec<Second> = all
        .series
        .iter()
        .enumerate()
        .map(|(t, s)| Second {
            t: t as u64,
            mean_ms: if s.completed == 0 {
                0.0
            } else {
                (s.latency_sum_us as f64 / s.completed as f64 / 1000.0 * 1000.0).round() / 1000.0
            },
            p50_ms: s.buckets.quantile_ms(0.5),
            p99_ms: s.buckets.quantile_ms(0.99),
            max_ms: (s.buckets.max_us as f64 / 1000.0 * 1000.0).round() / 1000.0,
            ..s.clone()
        })
        .collect();
    let mut errors: BTreeMap<&'static str, u64> = ErrorClass::ALL.iter().map(|c| (c.name(), 0)).collect();
    for (k, v) in &all.errors {
        *errors.entry(k.name()).or_default() += v;
    }
    let mut report = Report {
        version: 1,
        config: serde_json::json!({
            "url": settings.url.as_str(), "rate": settings.rate, "duration_s": settings.duration.as_secs_f64(),
            "connections": settings.connections, "keepalive": settings.keepalive, "timeout_ms": settings.timeout.as_millis() as u64,
            "method": settings.method, "warmup_s": settings.warmup.as_secs_f64(), "in_flight_limit": limit,
            "success_statuses": settings.success, "thresholds": settings.thresholds.iter().map(|t| t.text.clone()).collect::<Vec<_>>(),
            "stages": settings.stages.iter().map(|(d, r)| serde_json::json!({"duration_s": d.as_secs_f64(), "rate": r})).collect::<Vec<_>>(),
        }),
        valid: invalid_reason.is_none(),
        invalid_reason,
        warnings,
        target_rate: settings.rate,
        achieved_rate: (achieved * 100.0).round() / 100.0,
        throughput_rps: (throughput * 100.0).round() / 100.0,
        success_rate_pct: (success * 1000.0).round() / 1000.0,
        counts: Counts { scheduled, sent: all.sent, completed, ok: all.ok, in_flight, unsent: never_sent },
        latency: latency(&all.corrected, all.corrected_sum_us),
        uncorrected_latency: if closed {
            latency(&all.corrected, all.corrected_sum_us)
        } else {
            latency(&all.service, all.service_sum_us)
        },
        connect_ms: (!all.connect.is_empty())
            .then(|| latency(&all.connect, all.connect.mean() as u64 * all.connect.len())),
        connections_opened: all.connect.len(),
        errors,
        series,
        generator: Generator {
            cpu_cores: (cpu.as_secs_f64() / wall.as_secs_f64().max(0.001) * 1000.0).round() / 1000.0,
            rss_mib: (rss as f64 / 1024.0 * 10.0).round() / 10.0,
            peak_rss_mib: (peak as f64 / 1024.0 * 10.0).round() / 10.0,
            send_lag_ms: latency(&all.send_lag, all.send_lag.mean() as u64 * all.send_lag.len()),
            scheduler_lag_p99_ms: sched_p99,
        },
        verdicts: vec![],
        aborted,
        unanswered: None,
        percentiles: Some(all.corrected),
        workers: vec![],
    };
    report.verdicts = settings.thresholds.iter().map(|t| threshold::judge(t, &report)).collect();
    if report.valid {
        if let Some(why) = lag_changes_a_verdict(&settings.thresholds, &report.verdicts, sched_p99) {
            report.valid = false;
            report.invalid_reason = Some(why);
        }
    }
    if settings.rate.is_some() && sched_p99 > LAG_WARNING_MS && report.valid {
        report.warnings.push(format!(
            "the generator released requests late (scheduler lag p99 {sched_p99:.1} ms, as on a busy machine): latencies are measured from the intended send time, so they include it and err on the high side"
        ));
    }
    if report.counts.ok == 0 {
        report.unanswered = Some(unanswered(&report));
    }
    report
}

/// Scheduler lag above which a run says so (its figures stay valid: latency is measured from
/// the intended send time, so lag can only make them look worse).
pub(crate) const LAG_WARNING_MS: f64 = 10.0;

/// Late releases add to measured latency (it counts from the intended send time), so they
/// can only turn a pass into a fail, never the other way. A run is refused as evidence only
/// when a latency threshold failed and would have held without the lag (the figure less the
/// scheduler's lag p99 meets it): then the failure may be the generator's, not the service's.
pub(crate) fn lag_changes_a_verdict(thresholds: &[Threshold], verdicts: &[Verdict], sched_p99: f64) -> Option<String> {
    thresholds.iter().zip(verdicts).find_map(|(t, v)| {
        let latency = matches!(t.metric, threshold::Metric::Avg | threshold::Metric::Max | threshold::Metric::P(_));
        let without_lag = (v.measured - sched_p99).max(0.0);
        (latency && !v.pass && t.op.holds(without_lag, t.value)).then(|| {
            format!(
                "`{t}` failed at {} ms, but the generator released requests late (scheduler lag p99 {sched_p99:.1} ms, as on a busy machine): \
                 without that lag it could have passed, so the failure may be the generator's, not the service's",
                crate::domain::requirement::fmt_num(v.measured)
            )
        })
    })
}

/// Why a run measured nothing: not one request got an expected answer.
pub(crate) fn unanswered(r: &Report) -> String {
    let errors: Vec<String> = r.errors.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{n} {k}")).collect();
    format!(
        "no request got a successful answer from {} ({} requests{}): the figures measure nothing",
        r.config["url"].as_str().unwrap_or("the target"),
        r.counts.scheduled.max(r.counts.sent),
        if errors.is_empty() { String::new() } else { format!("; {}", errors.join(", ")) }
    )
}
