//! The built-in load generator, for `flow loadtest` and the `loadtest` step kind.
//!
//! - **Open model** (`rate`): a scheduler releases tickets at a constant arrival rate, each
//!   carrying its *intended* send time, whatever the server does. Connection workers take
//!   tickets from a bounded queue; latency is measured from the intended time (no coordinated
//!   omission: a stalled server shows), service time from the actual send. Workers (and so
//!   keep-alive connections) are added while tickets wait, up to the in-flight limit (rate x
//!   timeout unless given); a ticket that finds the queue full is never sent and counts as a
//!   failure, and the run is marked invalid, never quietly under-sent.
//!   An optional ramp and stages shape the rate (linear from one stage's rate to the next's).
//! - **Closed model** (no rate): `connections` workers send as fast as answers come back.
//! - A new TCP (and TLS) connection per request, or keep-alive; connect time apart.
//! - Figures from HDR histograms sharded by thread (memory does not grow with the run), a
//!   per-second series, errors by class, and the generator's own CPU, memory and send lag.

pub mod http;
pub mod sys;
pub mod threshold;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use serde::Serialize;

use self::http::{exchange, timed_connect, Conn, ErrorClass, RequestSpec, Target};
use self::threshold::{Figures, Threshold, Verdict};

/// Everything a run needs, resolved from flags or step params.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: url::Url,
    pub rate: Option<f64>,
    pub duration: Duration,
    pub connections: Option<usize>,
    pub keepalive: bool,
    pub timeout: Duration,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Inclusive status ranges that count as success (default 200-399).
    pub success: Vec<(u16, u16)>,
    pub warmup: Duration,
    pub max_in_flight: Option<usize>,
    pub thresholds: Vec<Threshold>,
    pub abort_on_fail: bool,
    /// Open model only: reach each stage's rate linearly over its duration, starting from
    /// `ramp_from`; after the last stage, `rate` holds.
    pub stages: Vec<(Duration, f64)>,
}

/// The arrival rate at `t` into the run.
pub fn rate_at(base: f64, stages: &[(Duration, f64)], t: Duration) -> f64 {
    let (mut from, mut t0) = (1.0_f64, Duration::ZERO);
    for (d, to) in stages {
        let end = t0 + *d;
        if t < end {
            let x = (t - t0).as_secs_f64() / d.as_secs_f64().max(1e-9);
            return (from + (to - from) * x).max(1.0);
        }
        from = *to;
        t0 = end;
    }
    base
}

/// Time from `t` to the next request: where the rate's integral from `t` reaches one request
/// (in steps of at most 1 ms, so a ramp that starts slow is not skipped over).
pub fn next_gap(base: f64, stages: &[(Duration, f64)], t: Duration) -> Duration {
    let mut owed = 1.0_f64;
    let mut gap = 0.0_f64;
    loop {
        let r = rate_at(base, stages, t + Duration::from_secs_f64(gap));
        let dt = (1.0 / r).min(0.001);
        if r * dt >= owed {
            return Duration::from_secs_f64(gap + owed / r);
        }
        owed -= r * dt;
        gap += dt;
    }
}

impl Settings {
    pub fn new(url: url::Url, duration: Duration) -> Settings {
        Settings {
            url,
            rate: None,
            duration,
            connections: None,
            keepalive: true,
            timeout: Duration::from_secs(10),
            method: "GET".into(),
            headers: vec![],
            body: vec![],
            success: vec![(200, 399)],
            warmup: Duration::ZERO,
            max_in_flight: None,
            thresholds: vec![],
            abort_on_fail: false,
            stages: vec![],
        }
    }

    fn ok(&self, status: u16) -> bool {
        self.success.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }

    pub fn in_flight_limit(&self) -> usize {
        self.max_in_flight.unwrap_or_else(|| match self.rate {
            Some(r) => ((r * self.timeout.as_secs_f64()).ceil() as usize).max(16),
            None => self.connections.unwrap_or(64),
        })
    }
}

/// Parse a stage: `30s:1000` (reach 1,000 req/s over 30 s).
pub fn parse_stage(s: &str) -> Result<(Duration, f64), String> {
    let (d, r) = s.split_once(':').ok_or_else(|| format!("stage `{s}`: expected DURATION:RATE, such as 30s:1000"))?;
    let d = humantime::parse_duration(d.trim()).map_err(|e| format!("stage `{s}`: {e}"))?;
    let r: f64 = r.trim().parse().map_err(|_| format!("stage `{s}`: `{r}` is not a rate"))?;
    if !(r > 0.0) || d.is_zero() {
        return Err(format!("stage `{s}`: duration and rate must be positive"));
    }
    Ok((d, r))
}

/// Parse `200-299,304` into inclusive ranges.
pub fn parse_statuses(s: &str) -> Result<Vec<(u16, u16)>, String> {
    s.split(',')
        .map(|part| {
            let part = part.trim();
            let bad = || format!("`{part}` is not a status or a range such as 200-299");
            match part.split_once('-') {
                Some((a, b)) => Ok((a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?)),
                None => {
                    let v = part.parse().map_err(|_| bad())?;
                    Ok((v, v))
                }
            }
        })
        .collect()
}

fn hist() -> Histogram<u64> {
    // 1 µs to 1 h at 2 significant digits: a fixed ~70 KiB each.
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid histogram bounds")
}

/// One second of the run, for charts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Second {
    pub t: u64,
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    pub errors: u64,
    pub mean_ms: f64,
    #[serde(skip)]
    latency_sum_us: u64,
}

/// What workers record; sharded by thread.
struct Shard {
    corrected: Histogram<u64>,
    service: Histogram<u64>,
    connect: Histogram<u64>,
    send_lag: Histogram<u64>,
    corrected_sum_us: u64,
    service_sum_us: u64,
    completed: u64,
    ok: u64,
    sent: u64,
    errors: BTreeMap<ErrorClass, u64>,
    series: Vec<Second>,
    /// All-time counts (warm-up included) for the live view.
    live: Live,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            corrected: hist(),
            service: hist(),
            connect: hist(),
            send_lag: hist(),
            corrected_sum_us: 0,
            service_sum_us: 0,
            completed: 0,
            ok: 0,
            sent: 0,
            errors: BTreeMap::new(),
            series: Vec::new(),
            live: Live::default(),
        }
    }

    fn second(&mut self, t: u64) -> &mut Second {
        let i = t as usize;
        if self.series.len() <= i {
            self.series.resize_with(i + 1, Second::default);
        }
        &mut self.series[i]
    }

    fn merge(&mut self, o: &Shard) {
        let _ = self.corrected.add(&o.corrected);
        let _ = self.service.add(&o.service);
        let _ = self.connect.add(&o.connect);
        let _ = self.send_lag.add(&o.send_lag);
        self.corrected_sum_us += o.corrected_sum_us;
        self.service_sum_us += o.service_sum_us;
        self.completed += o.completed;
        self.ok += o.ok;
        self.sent += o.sent;
        for (k, v) in &o.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        for (i, s) in o.series.iter().enumerate() {
            let m = self.second(i as u64);
            m.sent += s.sent;
            m.completed += s.completed;
            m.ok += s.ok;
            m.errors += s.errors;
            m.latency_sum_us += s.latency_sum_us;
        }
    }
}

/// What the live view shows once a second (summed from the shards then: no shared counter
/// on the hot path).
#[derive(Debug, Default, Clone, Copy)]
pub struct Live {
    pub scheduled: u64,
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    pub errors: u64,
}

const SHARDS: usize = 8;

thread_local! {
    static SHARD_INDEX: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

struct Recorder {
    start: Instant,
    warm_end: Instant,
    shards: Vec<Mutex<Shard>>,
    scheduled: AtomicU64,
    /// Closed model: the intended time is the send time, so service time and send lag are
    /// the corrected figures themselves and are not recorded twice.
    closed: bool,
}

enum Result_ {
    Status(u16),
    Failed(ErrorClass),
}

impl Recorder {
    fn shard(&self) -> std::sync::MutexGuard<'_, Shard> {
        let i = SHARD_INDEX.with(|i| *i);
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connect(&self, d: Duration) {
        let _ = self.shard().connect.record((d.as_micros() as u64).max(1));
    }

    fn live(&self) -> Live {
        let mut l = Live { scheduled: self.scheduled.load(Ordering::Relaxed), ..Live::default() };
        for s in &self.shards {
            let s = s.lock().unwrap_or_else(|e| e.into_inner());
            l.sent += s.live.sent;
            l.completed += s.live.completed;
            l.ok += s.live.ok;
            l.errors += s.live.errors;
        }
        if self.closed {
            l.scheduled = l.sent;
        }
        l
    }

    fn record(&self, settings: &Settings, intended: Instant, sent: Option<Instant>, done: Instant, r: Result_) {
        let ok = matches!(r, Result_::Status(s) if settings.ok(s));
        let corrected = done.saturating_duration_since(intended).as_micros() as u64;
        let t = intended.saturating_duration_since(self.start).as_secs();
        let measured = intended >= self.warm_end;
        let mut s = self.shard();
        s.live.completed += 1;
        s.live.sent += sent.is_some() as u64;
        if ok {
            s.live.ok += 1;
        } else {
            s.live.errors += 1;
        }
        {
            let sec = s.second(t);
            sec.completed += 1;
            sec.latency_sum_us += corrected;
            if sent.is_some() {
                sec.sent += 1;
            }
            if ok {
                sec.ok += 1;
            } else {
                sec.errors += 1;
            }
        }
        if !measured {
            return;
        }
        if let Some(sent) = sent {
            s.sent += 1;
            if !self.closed {
                let lag = sent.saturating_duration_since(intended).as_micros() as u64;
                let _ = s.send_lag.record(lag.max(1));
                let service = done.saturating_duration_since(sent).as_micros() as u64;
                let _ = s.service.record(service.max(1));
                s.service_sum_us += service;
            }
        }
        let _ = s.corrected.record(corrected.max(1));
        s.corrected_sum_us += corrected;
        s.completed += 1;
        match r {
            Result_::Status(_) if ok => s.ok += 1,
            Result_::Status(_) => *s.errors.entry(ErrorClass::Status).or_default() += 1,
            Result_::Failed(c) => *s.errors.entry(c).or_default() += 1,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Ticket {
    intended: Instant,
}

/// One request, on the worker's connection (opened, or replaced, as needed).
async fn one(settings: &Settings, target: &Target, rec: &Recorder, conn: &mut Option<Conn>, buf: &mut BytesMut, intended: Instant) {
    let sent = Instant::now();
    let attempt = async {
        if conn.is_none() {
            let (c, took) = timed_connect(target, settings.keepalive).await;
            rec.connect(took);
            *conn = Some(c?);
        }
        let c = conn.as_mut().expect("connected above");
        exchange(c, target, settings.keepalive, buf).await
    };
    let result = tokio::time::timeout(settings.timeout, attempt).await;
    let done = Instant::now();
    let r = match result {
        Ok(Ok(a)) => {
            if !a.reusable || !settings.keepalive {
                *conn = None;
            }
            Result_::Status(a.status)
        }
        Ok(Err(e)) => {
            *conn = None;
            Result_::Failed(ErrorClass::of(&e))
        }
        Err(_) => {
            *conn = None;
            Result_::Failed(ErrorClass::Timeout)
        }
    };
    rec.record(settings, intended, Some(sent), done, r);
}

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

fn latency(h: &Histogram<u64>, sum_us: u64) -> Latency {
    let ms = |v: u64| (v as f64 / 1000.0 * 1000.0).round() / 1000.0;
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
    /// Scheduled but never sent (in-flight limit reached).
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
    /// The corrected latencies, for percentile thresholds.
    #[serde(skip)]
    pub percentiles: Option<Histogram<u64>>,
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
        self.percentiles.as_ref().map(|h| if h.is_empty() { 0.0 } else { h.value_at_quantile(p / 100.0) as f64 / 1000.0 }).unwrap_or(0.0)
    }
    fn success_pct(&self) -> f64 {
        self.success_rate_pct
    }
}

impl Report {
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.pass)
    }
}

/// Ports a new-connection run would tie up in TIME_WAIT (60 s) against what the kernel has.
fn port_warning(s: &Settings) -> Option<String> {
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

/// Run a load test. `live` is called about once a second with the counters.
pub async fn run(settings: Settings, on_tick: Arc<dyn Fn(Duration, Live) + Send + Sync>) -> Result<Report, String> {
    let target = Arc::new(
        Target::resolve(&RequestSpec { url: &settings.url, method: &settings.method, headers: &settings.headers, body: &settings.body }).await?,
    );
    let settings = Arc::new(settings);
    let cpu0 = sys::cpu_time();
    let start = Instant::now() + Duration::from_millis(20);
    let end = start + settings.duration;
    let rec = Arc::new(Recorder {
        start,
        warm_end: start + settings.warmup,
        shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
        scheduled: AtomicU64::new(0),
        closed: settings.rate.is_none(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let limit = settings.in_flight_limit();
    let mut workers = tokio::task::JoinSet::new();
    let mut scheduled_measured = 0u64;
    let mut unsent_measured = 0u64;
    let mut sched_lag = hist();
    let aborted;
    // The open model's workers are spawned on the runtime directly; these stop them at the end.
    let mut aborts: Vec<tokio::task::AbortHandle> = Vec::new();

    // The live view, and abort-on-fail.
    let ticker = {
        let (rec, stop, settings) = (rec.clone(), stop.clone(), settings.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval_at(tokio::time::Instant::from_std(start + Duration::from_secs(1)), Duration::from_secs(1));
            loop {
                every.tick().await;
                let live = rec.live();
                on_tick(start.elapsed(), live);
                if settings.abort_on_fail && Instant::now() > rec.warm_end {
                    let (ok, done) = (live.ok, live.completed);
                    let pct = if done == 0 { 100.0 } else { ok as f64 * 100.0 / done as f64 };
                    let failing = settings.thresholds.iter().any(|t| match t.metric {
                        threshold::Metric::Success => !t.op.holds(pct, t.value),
                        threshold::Metric::Errors => !t.op.holds(100.0 - pct, t.value),
                        _ => false,
                    });
                    if failing {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    match settings.rate {
        Some(rate) => {
            let (tx, rx) = async_channel::bounded::<Ticket>(limit);
            // Workers waiting for a ticket: a new one (and connection) is added only when none is.
            let idle = Arc::new(AtomicUsize::new(0));
            let spawn_worker = {
                let (rx, settings, target, rec, idle) = (rx.clone(), settings.clone(), target.clone(), rec.clone(), idle.clone());
                move |handle: &tokio::runtime::Handle| {
                    let (rx, settings, target, rec, idle) = (rx.clone(), settings.clone(), target.clone(), rec.clone(), idle.clone());
                    handle.spawn(async move {
                        let mut conn = None;
                        let mut buf = BytesMut::with_capacity(4 * 1024);
                        loop {
                            idle.fetch_add(1, Ordering::Relaxed);
                            let t = rx.recv().await;
                            idle.fetch_sub(1, Ordering::Relaxed);
                            let Ok(t) = t else { break };
                            one(&settings, &target, &rec, &mut conn, &mut buf, t.intended).await;
                        }
                    })
                }
            };
            let handle = tokio::runtime::Handle::current();
            let initial = settings.connections.unwrap_or(4).min(limit).max(1);
            let mut handles: Vec<tokio::task::JoinHandle<()>> = (0..initial).map(|_| spawn_worker(&handle)).collect();
            // The schedule runs on its own thread: std's sleep is precise to tens of µs, where
            // the async timer rounds up to whole milliseconds (a bias in every latency).
            let (rec2, stop2, settings2) = (rec.clone(), stop.clone(), settings.clone());
            let sched = tokio::task::spawn_blocking(move || {
                let stages = settings2.stages.clone();
                // The next intended send time: the schedule integrates the (staged) rate.
                let step = |at: Instant| next_gap(rate, &stages, at.saturating_duration_since(start));
                let mut next = start;
                let mut grown = Vec::new();
                let mut spawned = initial;
                let (mut scheduled, mut unsent, mut lag, mut aborted) = (0u64, 0u64, hist(), false);
                loop {
                    if next >= end {
                        break;
                    }
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    }
                    if stop2.load(Ordering::Relaxed) {
                        aborted = true;
                        break;
                    }
                    let now = Instant::now();
                    while next <= now && next < end {
                        let _ = lag.record((now.saturating_duration_since(next).as_micros() as u64).max(1));
                        rec2.scheduled.fetch_add(1, Ordering::Relaxed);
                        let measured = next >= rec2.warm_end;
                        scheduled += measured as u64;
                        if tx.try_send(Ticket { intended: next }).is_err() {
                            // Never sent: a failure, and the run says it could not keep up.
                            unsent += measured as u64;
                            rec2.record(&settings2, next, None, next, Result_::Failed(ErrorClass::Unsent));
                        }
                        if idle.load(Ordering::Relaxed) == 0 && spawned < limit {
                            grown.push(spawn_worker(&handle));
                            spawned += 1;
                        }
                        next += step(next);
                    }
                }
                drop(tx);
                (scheduled, unsent, lag, aborted, grown)
            });
            let (scheduled, unsent, lag, was_aborted, grown) = sched.await.map_err(|e| format!("the scheduler stopped: {e}"))?;
            scheduled_measured = scheduled;
            unsent_measured = unsent;
            sched_lag = lag;
            aborted = was_aborted;
            handles.extend(grown);
            for h in handles {
                aborts.push(h.abort_handle());
                workers.spawn(async move {
                    let _ = h.await;
                });
            }
        }
        None => {
            let n = settings.connections.unwrap_or(64).max(1);
            for _ in 0..n {
                let (settings, target, rec, stop) = (settings.clone(), target.clone(), rec.clone(), stop.clone());
                workers.spawn(async move {
                    let mut conn = None;
                    let mut buf = BytesMut::with_capacity(4 * 1024);
                    tokio::time::sleep_until(tokio::time::Instant::from_std(start)).await;
                    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
                        one(&settings, &target, &rec, &mut conn, &mut buf, Instant::now()).await;
                    }
                });
            }
            tokio::time::sleep_until(tokio::time::Instant::from_std(end)).await;
            aborted = stop.load(Ordering::Relaxed);
        }
    }
    // Let what was sent finish, up to one timeout; then stop.
    let grace = tokio::time::sleep(settings.timeout + Duration::from_millis(100));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            r = workers.join_next() => if r.is_none() { break },
            _ = &mut grace => {
                aborts.iter().for_each(|a| a.abort());
                workers.abort_all();
                break
            }
        }
    }
    ticker.abort();
    let wall = Instant::now().saturating_duration_since(start.min(Instant::now()));
    let cpu = sys::cpu_time().saturating_sub(cpu0);

    let mut all = Shard::new();
    for s in &rec.shards {
        all.merge(&s.lock().unwrap_or_else(|e| e.into_inner()));
    }
    let measured_secs = settings.duration.saturating_sub(settings.warmup).as_secs_f64().max(0.001);
    let scheduled = if settings.rate.is_some() { scheduled_measured } else { all.completed };
    let in_flight = all.sent.saturating_sub(all.completed.saturating_sub(unsent_measured));
    let achieved = all.sent as f64 / measured_secs;
    let throughput = (all.completed - unsent_measured) as f64 / measured_secs;
    let success = if scheduled == 0 { 0.0 } else { all.ok as f64 * 100.0 / scheduled as f64 };
    let sched_p99 = sched_lag.value_at_quantile(0.99) as f64 / 1000.0;
    let invalid_reason = match settings.rate {
        Some(_) if unsent_measured > 0 => Some(format!(
            "{unsent_measured} of {scheduled} scheduled requests were never sent: the in-flight limit of {limit} was reached"
        )),
        Some(_) if sched_p99 > 10.0 => Some(format!("the generator released requests late (scheduler lag p99 {sched_p99:.1} ms): it could not keep the schedule")),
        Some(_) if scheduled > 0 && (all.sent as f64) < scheduled as f64 * 0.995 && !aborted => {
            Some(format!("sent {} of the {scheduled} requests the schedule called for ({achieved:.1} req/s)", all.sent))
        }
        _ => None,
    };
    let mut warnings = Vec::new();
    if let Some(w) = port_warning(&settings) {
        warnings.push(w);
    }
    let (rss, peak) = sys::rss_kib();
    let series: Vec<Second> = all
        .series
        .iter()
        .enumerate()
        .map(|(t, s)| Second {
            t: t as u64,
            mean_ms: if s.completed == 0 { 0.0 } else { (s.latency_sum_us as f64 / s.completed as f64 / 1000.0 * 1000.0).round() / 1000.0 },
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
        counts: Counts { scheduled, sent: all.sent, completed: all.completed - unsent_measured, ok: all.ok, in_flight, unsent: unsent_measured },
        latency: latency(&all.corrected, all.corrected_sum_us),
        uncorrected_latency: if rec.closed { latency(&all.corrected, all.corrected_sum_us) } else { latency(&all.service, all.service_sum_us) },
        connect_ms: (!all.connect.is_empty()).then(|| latency(&all.connect, all.connect.mean() as u64 * all.connect.len())),
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
        percentiles: Some(all.corrected),
    };
    report.verdicts = settings.thresholds.iter().map(|t| threshold::judge(t, &report)).collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

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
