//! The built-in load generator, for `flow loadtest` and the `loadtest` step kind.
//!
//! - **Lanes**: a run is split over one or more threads, each with its own single-threaded
//!   runtime, connections, share of the schedule and statistics shard, so nothing on the hot
//!   path crosses threads (the way wrk splits its work).
//! - **Open model** (`rate`): each lane's scheduler releases tickets at a constant arrival rate,
//!   each carrying its *intended* send time, whatever the server does; it sleeps on a timerfd
//!   in the lane's own event loop (precise to tens of microseconds, where the runtime's timer
//!   rounds to milliseconds). Workers take tickets from a bounded queue; latency is measured
//!   from the intended time (no coordinated omission: a stalled server shows), service time
//!   from the actual send. A worker (and connection) is added when released tickets have
//!   waited for a free one, up to the in-flight limit (rate x timeout unless given, within the
//!   open-files limit); a ticket that finds the queue full is never sent and counts as a
//!   failure, and the run is marked invalid, never quietly under-sent.
//!   An optional ramp and stages shape the rate (linear from one stage's rate to the next's).
//! - **Closed model** (no rate): `connections` workers send as fast as answers come back.
//! - A new TCP (and TLS) connection per request, or keep-alive; connect time apart. In the
//!   open model, when the scheduler wakes again within a millisecond, a fresh plain connection
//!   stays out of the event loop once its request is out: its answer is read at that wake-up
//!   and timed by the kernel's arrival stamp, one wake-up per request instead of two.
//! - Figures from HDR histograms (memory does not grow with the run), a per-second series,
//!   errors by class, and the generator's own CPU, memory and send lag.
//!
//! Files: [`settings`] (what a run is asked and runs), [`lane`] (lanes, the scheduler and its
//! timer, the closed model), [`stats`] (what lanes record), [`figures`] (a record judged into
//! the report, the live line), [`http`] (the client), [`threshold`], [`spread`] (one run from
//! several workers), [`sys`]; here, the run itself ([`run_raw`]) and its errors.

mod figures;
pub mod http;
mod lane;
mod settings;
pub mod spread;
mod stats;
pub mod sys;
pub mod threshold;

pub use figures::*;
pub(crate) use lane::*;
pub use settings::*;
pub use stats::*;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use self::http::{RequestSpec, Stamped, Target};

/// Why a load test could not run (a run that ran but missed its schedule is a valid report
/// marked invalid, not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Settings no run can be made of: a bad URL, rate, stage, header, threshold.
    #[error("{0}")]
    Settings(String),
    /// The target cannot be used at all (no such host, a scheme other than http or https).
    #[error("{0}")]
    Target(String),
    /// The generator itself could not run (threads, runtime).
    #[error("{0}")]
    Generator(String),
    /// A distributed run's workers could not be started or reached (a refused RunTask, an
    /// unreadable kubeconfig, an unwritable place).
    #[error("{0}")]
    Runner(String),
    /// Stopped by Ctrl-C: every worker was stopped, nothing was judged.
    #[error("{0}")]
    Cancelled(String),
}

/// What a run calls about once a second: the time since the start, the live figures and their
/// latency histogram; `true` asks the run to stop now (as an abort does).
pub(crate) type Hook = Arc<dyn Fn(Duration, &Live, &Histogram<u64>) -> bool + Send + Sync>;

/// Whether a success or error threshold fails on the figures so far (what `--abort-on-fail`
/// checks every second after the warm-up).
pub(crate) fn failing_now(thresholds: &[threshold::Threshold], live: &Live) -> bool {
    let (ok, done) = (live.ok, live.completed);
    let pct = if done == 0 { 100.0 } else { ok as f64 * 100.0 / done as f64 };
    thresholds.iter().any(|t| match t.metric {
        threshold::Metric::Success => !t.op.holds(pct, t.value),
        threshold::Metric::Errors => !t.op.holds(100.0 - pct, t.value),
        _ => false,
    })
}

/// Run the generator and report what it measured.
pub async fn run(settings: Settings, on_tick: Arc<dyn Fn(Duration, Live) + Send + Sync>) -> Result<Report, Error> {
    let hook: Hook = Arc::new(move |t, live: &Live, _: &Histogram<u64>| {
        on_tick(t, *live);
        false
    });
    let raw = run_raw(settings.clone(), hook).await?;
    Ok(report(&settings, raw))
}

/// Run a load test, calling `hook` about once a second.
pub(crate) async fn run_raw(settings: Settings, hook: Hook) -> Result<Raw, Error> {
    let target = Arc::new(
        Target::resolve(&RequestSpec {
            url: &settings.url,
            method: &settings.method,
            headers: &settings.headers,
            body: &settings.body,
        })
        .await?,
    );
    let settings = Arc::new(settings);
    let cpu0 = sys::cpu_time();
    let n = lanes(&settings);
    let start = Instant::now() + Duration::from_millis(20);
    let end = start + settings.duration;
    let rec = Arc::new(Recorder {
        start,
        warm_end: start + settings.warmup,
        shards: (0..n).map(|_| Mutex::new(Shard::new())).collect(),
        scheduled: AtomicU64::new(0),
        closed: settings.rate.is_none(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    // Fresh connections' answers may be timed by the kernel's stamps (see `Lane::one`): keep
    // them switched on for the whole run (if this fails, each socket still asks for its own).
    let _stamps = (settings.rate.is_some() && !settings.keepalive && !target.is_tls()).then(Stamped::hold);
    // Each request in flight holds a socket: the limit stays within the open-files limit.
    let files = sys::raise_open_files_limit();
    let wanted = settings.in_flight_limit();
    let limit = match files {
        Some(f) => wanted.min((f as usize).saturating_sub(FILES_RESERVED).max(n)),
        None => wanted,
    };

    // The live view, and abort-on-fail.
    let ticker = {
        let (rec, stop, settings) = (rec.clone(), stop.clone(), settings.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval_at(
                tokio::time::Instant::from_std(start + Duration::from_secs(1)),
                Duration::from_secs(1),
            );
            loop {
                every.tick().await;
                let (live, corrected) = rec.live();
                let asked = hook(start.elapsed(), &live, &corrected);
                let failing =
                    settings.abort_on_fail && Instant::now() > rec.warm_end && failing_now(&settings.thresholds, &live);
                if asked || failing {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        })
    };

    let threads: Vec<_> = (0..n)
        .map(|id| {
            let share = limit / n + usize::from(id < limit % n);
            let lane = Lane {
                id,
                of: n,
                settings: settings.clone(),
                target: target.clone(),
                rec: rec.clone(),
                stop: stop.clone(),
                start,
                end,
                limit: share.max(1),
                ticks: Arc::new(Ticks::new(start)),
            };
            std::thread::Builder::new().name(format!("load-{id}")).spawn(move || lane.run())
        })
        .collect();
    let (mut scheduled_measured, mut unsent_measured, mut stranded, mut sched_lag, mut aborted) =
        (0u64, 0u64, 0u64, hist(), false);
    let mut failure = None;
    for t in threads {
        let outcome = match t {
            Err(e) => Err(Error::Generator(format!("cannot start a load thread: {e}"))),
            // Joined off the runtime's threads: the ticker keeps running meanwhile.
            Ok(h) => tokio::task::spawn_blocking(move || h.join())
                .await
                .map_err(|e| Error::Generator(e.to_string()))
                .and_then(|r| r.map_err(|_| Error::Generator("a load thread panicked".into())))
                .and_then(|r| r),
        };
        match outcome {
            Ok(s) => {
                scheduled_measured += s.scheduled;
                unsent_measured += s.unsent;
                stranded += s.stranded;
                let _ = sched_lag.add(&s.lag);
                aborted |= s.aborted;
            }
            Err(e) => failure = Some(e),
        }
    }
    ticker.abort();
    if let Some(e) = failure {
        return Err(e);
    }
    let wall = Instant::now().saturating_duration_since(start);
    let cpu = sys::cpu_time().saturating_sub(cpu0);

    let mut all = Shard::new();
    for s in &rec.shards {
        all.merge(&s.lock().unwrap_or_else(|e| e.into_inner()));
    }
    Ok(Raw {
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
        rss_kib: sys::rss_kib(),
        closed: rec.closed,
    })
}

#[cfg(test)]
mod tests {
    use super::threshold::Verdict;
    use super::*;

    #[test]
    fn per_second_percentiles_within_four_percent() {
        let mut b = Buckets::default();
        for us in 1..=10_000u64 {
            b.record(us * 10);
        }
        for (q, truth) in [(0.5, 50.0), (0.99, 99.0)] {
            let got = b.quantile_ms(q);
            assert!((got - truth).abs() / truth < 0.04, "q{q}: {got} ms, truth {truth}");
        }
        for us in [0u64, 1, 15, 16, 17, 1000, 123_456, 3_600_000_000] {
            let i = Buckets::index(us);
            let v = Buckets::value(i);
            assert!((v - us as f64).abs() <= (us as f64 * 0.04).max(1.0), "{us} -> {i} -> {v}");
        }
    }

    #[test]
    fn lag_refuses_a_run_only_when_it_could_have_changed_a_verdict() {
        let t = |text: &str| threshold::parse(text).unwrap();
        let v = |measured: f64, pass: bool| Verdict { threshold: String::new(), measured, pass, unit: "ms" };
        let ts = [t("p99<10ms"), t("avg<5ms"), t("rate>=100")];
        // Passing with lag: the true figures are lower still; valid.
        assert_eq!(lag_changes_a_verdict(&ts, &[v(9.0, true), v(4.0, true), v(100.0, true)], 20.0), None);
        // Failing by far more than the lag: the service's own doing; valid.
        assert_eq!(lag_changes_a_verdict(&ts, &[v(40.0, false), v(4.0, true), v(100.0, true)], 12.0), None);
        // Failing by less than the lag: it may be the generator's; refused, naming the threshold.
        let why = lag_changes_a_verdict(&ts, &[v(15.0, false), v(4.0, true), v(100.0, true)], 12.0).unwrap();
        assert!(why.starts_with("`p99<10ms` failed at 15 ms"), "{why}");
        // A failed rate is not a latency: lag does not excuse it.
        assert_eq!(lag_changes_a_verdict(&ts, &[v(9.0, true), v(4.0, true), v(90.0, false)], 50.0), None);
    }

    #[test]
    fn staged_rates() {
        let stages = [(Duration::from_secs(10), 100.0), (Duration::from_secs(10), 300.0)];
        assert_eq!(rate_at(500.0, &stages, Duration::ZERO), 1.0);
        assert!((rate_at(500.0, &stages, Duration::from_secs(5)) - 50.5).abs() < 1e-9);
        assert!((rate_at(500.0, &stages, Duration::from_secs(15)) - 200.0).abs() < 1e-9);
        assert_eq!(rate_at(500.0, &stages, Duration::from_secs(25)), 500.0);
        assert_eq!(rate_at(500.0, &[], Duration::from_secs(1)), 500.0);
        assert_eq!(parse_stage("30s:1000").unwrap(), (Duration::from_secs(30), 1000.0));
        assert!(parse_stage("fast").is_err());
        // A steady rate: exact gaps; a slow start: the first request comes when one is owed.
        assert!((next_gap(500.0, &[], Duration::ZERO).as_secs_f64() - 0.002).abs() < 1e-9);
        let first = next_gap(500.0, &stages, Duration::ZERO).as_secs_f64();
        assert!((0.3..0.5).contains(&first), "{first}");
    }
}
