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

pub mod http;
pub mod spread;
pub mod sys;
pub mod threshold;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use serde::Serialize;

use self::http::{exchange, Conn, ErrorClass, RequestSpec, Stamped, Target};
use self::threshold::{Figures, Threshold, Verdict};

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

/// What a person (`flow loadtest` flags) or a step (`loadtest` params) asks of a run, before it
/// is checked: [`Settings::resolve`] checks both with the same rules.
#[derive(Debug, Clone)]
pub struct Ask {
    pub url: String,
    pub rate: Option<f64>,
    pub duration: Duration,
    pub connections: Option<usize>,
    pub keepalive: bool,
    pub timeout: Option<Duration>,
    pub warmup: Duration,
    pub method: Option<String>,
    /// `Name: value`.
    pub headers: Vec<String>,
    pub body: Option<String>,
    /// Statuses that count as success, such as `200-299,304`.
    pub success: Option<String>,
    pub max_in_flight: Option<usize>,
    pub thresholds: Vec<Threshold>,
    pub abort_on_fail: bool,
    /// Reach `rate` linearly over this long first.
    pub ramp: Option<Duration>,
    /// `DURATION:RATE` stages.
    pub stages: Vec<String>,
}

impl Ask {
    pub fn new(url: impl Into<String>, duration: Duration) -> Ask {
        Ask {
            url: url.into(),
            rate: None,
            duration,
            connections: None,
            keepalive: true,
            timeout: None,
            warmup: Duration::ZERO,
            method: None,
            headers: vec![],
            body: None,
            success: None,
            max_in_flight: None,
            thresholds: vec![],
            abort_on_fail: false,
            ramp: None,
            stages: vec![],
        }
    }
}

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

    /// Check what was asked, once, with the same rules for flags and step params.
    pub fn resolve(a: Ask) -> Result<Settings, Error> {
        let bad = Error::Settings;
        let url: url::Url = a.url.parse().map_err(|e| bad(format!("url `{}`: {e}", a.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!("url `{url}`: the scheme must be http or https")));
        }
        if a.duration.is_zero() {
            return Err(bad("the duration must be longer than 0".into()));
        }
        if let Some(r) = a.rate {
            crate::domain::catalogue::check_rate("the rate", r).map_err(bad)?;
        }
        if a.warmup >= a.duration {
            return Err(bad(format!(
                "the warm-up ({}) must be shorter than the duration ({})",
                humantime::format_duration(a.warmup),
                humantime::format_duration(a.duration)
            )));
        }
        let mut s = Settings::new(url, a.duration);
        s.rate = a.rate;
        s.connections = a.connections;
        s.keepalive = a.keepalive;
        if let Some(t) = a.timeout {
            s.timeout = t;
        }
        s.warmup = a.warmup;
        if let Some(m) = a.method {
            s.method = m;
        }
        s.headers = a
            .headers
            .iter()
            .map(|h| {
                h.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| bad(format!("header `{h}`: expected `Name: value`")))
            })
            .collect::<Result<_, _>>()?;
        s.body = a.body.unwrap_or_default().into_bytes();
        if let Some(ok) = &a.success {
            s.success = parse_statuses(ok).map_err(|e| bad(format!("success statuses: {e}")))?;
        }
        s.max_in_flight = a.max_in_flight;
        s.thresholds = a.thresholds;
        s.abort_on_fail = a.abort_on_fail;
        if let (Some(r), Some(d)) = (a.rate, a.ramp) {
            s.stages.push((d, r));
        }
        for st in &a.stages {
            s.stages.push(parse_stage(st)?);
        }
        if !s.stages.is_empty() && a.rate.is_none() {
            return Err(bad("--ramp and --stage shape an open model: give --rate too".into()));
        }
        Ok(s)
    }

    fn ok(&self, status: u16) -> bool {
        self.success.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }

    /// Requests in flight at most: the connections of the closed model; for the open model,
    /// `max_in_flight` or enough for the rate while every request runs to its timeout.
    pub fn in_flight_limit(&self) -> usize {
        match self.rate {
            Some(r) => self.max_in_flight.unwrap_or_else(|| ((r * self.timeout.as_secs_f64()).ceil() as usize).max(16)),
            None => self.connections.unwrap_or(64).max(1),
        }
    }
}

/// Parse a stage: `30s:1000` (reach 1,000 req/s over 30 s).
pub fn parse_stage(s: &str) -> Result<(Duration, f64), Error> {
    let bad = |m: String| Error::Settings(format!("stage `{s}`: {m}"));
    let (d, r) = s.split_once(':').ok_or_else(|| bad("expected DURATION:RATE, such as 30s:1000".into()))?;
    let d = humantime::parse_duration(d.trim()).map_err(|e| bad(e.to_string()))?;
    let r: f64 = r.trim().parse().map_err(|_| bad(format!("`{r}` is not a rate")))?;
    crate::domain::catalogue::check_rate("the rate", r).map_err(bad)?;
    if d.is_zero() {
        return Err(bad("the duration must be longer than 0".into()));
    }
    Ok((d, r))
}

/// Parse `200-299,304` into inclusive ranges.
fn parse_statuses(s: &str) -> Result<Vec<(u16, u16)>, String> {
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
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Second {
    pub t: u64,
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    pub errors: u64,
    pub mean_ms: f64,
    /// Latency percentiles of the requests due in this second (from the intended send time),
    /// to about 4 %.
    #[serde(default)]
    pub p50_ms: f64,
    #[serde(default)]
    pub p99_ms: f64,
    #[serde(default)]
    pub max_ms: f64,
    #[serde(skip)]
    latency_sum_us: u64,
    #[serde(skip)]
    buckets: Buckets,
}

/// A small latency histogram for one second: 16 buckets per doubling (about 4 % wide), kept
/// only for seconds that had answers.
#[derive(Debug, Clone, Default)]
struct Buckets {
    counts: Vec<u32>,
    max_us: u64,
}

impl Buckets {
    const SUB: u32 = 16;

    fn index(us: u64) -> usize {
        if us < Self::SUB as u64 {
            return us as usize;
        }
        let e = 63 - us.leading_zeros();
        let mantissa = (us >> (e - 4)) & (Self::SUB as u64 - 1);
        (Self::SUB + (e - 4) * Self::SUB) as usize + mantissa as usize
    }

    /// The middle of a bucket (µs).
    fn value(i: usize) -> f64 {
        let sub = Self::SUB as usize;
        if i < sub {
            return i as f64;
        }
        let e = (i - sub) / sub + 4;
        let mantissa = ((i - sub) % sub) as u64;
        let low = (1u64 << e) + (mantissa << (e - 4));
        low as f64 + (1u64 << (e - 4)) as f64 / 2.0
    }

    fn record(&mut self, us: u64) {
        let i = Self::index(us);
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.max_us = self.max_us.max(us);
    }

    fn add(&mut self, o: &Buckets) {
        if self.counts.len() < o.counts.len() {
            self.counts.resize(o.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.max_us = self.max_us.max(o.max_us);
    }

    /// The `q` quantile (0..1) in ms.
    fn quantile_ms(&self, q: f64) -> f64 {
        let n: u64 = self.counts.iter().map(|c| *c as u64).sum();
        if n == 0 {
            return 0.0;
        }
        let rank = ((n as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += *c as u64;
            if seen >= rank {
                return (Self::value(i).min(self.max_us as f64) / 1000.0 * 1000.0).round() / 1000.0;
            }
        }
        self.max_us as f64 / 1000.0
    }
}

/// What workers record: one per lane.
#[derive(Clone)]
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
            m.buckets.add(&s.buckets);
        }
    }
}

/// What the live view shows once a second (summed from the shards then: no shared counter
/// on the hot path).
#[derive(Debug, Default, Clone, Copy, Serialize, serde::Deserialize)]
pub struct Live {
    pub scheduled: u64,
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    pub errors: u64,
    /// After the warm-up (what the report will count): answers, successes, and the
    /// CO-corrected latency so far (None before the first answer).
    pub measured: u64,
    pub measured_ok: u64,
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Seconds since the warm-up ended.
    pub measured_s: f64,
}

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
    /// A lane's own shard: only its thread records into it (and the live view reads it once a
    /// second), so the lock is never contended.
    fn shard(&self, lane: usize) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[lane].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connect(&self, lane: usize, d: Duration) {
        let _ = self.shard(lane).connect.record((d.as_micros() as u64).max(1));
    }

    /// The live figures and the CO-corrected latency histogram they come from (after warm-up).
    fn live(&self) -> (Live, Histogram<u64>) {
        let mut l = Live { scheduled: self.scheduled.load(Ordering::Relaxed), ..Live::default() };
        let mut corrected = hist();
        let mut sum_us = 0u64;
        for s in &self.shards {
            let s = s.lock().unwrap_or_else(|e| e.into_inner());
            l.sent += s.live.sent;
            l.completed += s.live.completed;
            l.ok += s.live.ok;
            l.errors += s.live.errors;
            l.measured += s.completed;
            l.measured_ok += s.ok;
            sum_us += s.corrected_sum_us;
            let _ = corrected.add(&s.corrected);
        }
        if l.measured > 0 {
            let ms = |us: u64| us as f64 / 1000.0;
            l.mean_ms = Some(sum_us as f64 / l.measured as f64 / 1000.0);
            l.p50_ms = Some(ms(corrected.value_at_quantile(0.50)));
            l.p99_ms = Some(ms(corrected.value_at_quantile(0.99)));
            l.max_ms = Some(ms(corrected.max()));
        }
        l.measured_s = Instant::now().saturating_duration_since(self.warm_end).as_secs_f64();
        if self.closed {
            l.scheduled = l.sent;
        }
        (l, corrected)
    }

    /// A request is going out now (counted here, not when it ends, so one still in flight when
    /// the run stops is counted as sent).
    fn sending(&self, lane: usize, intended: Instant) {
        let t = intended.saturating_duration_since(self.start).as_secs();
        let mut s = self.shard(lane);
        s.live.sent += 1;
        s.second(t).sent += 1;
        if intended >= self.warm_end {
            s.sent += 1;
        }
    }

    fn record(
        &self,
        lane: usize,
        settings: &Settings,
        intended: Instant,
        sent: Option<Instant>,
        done: Instant,
        r: Result_,
    ) {
        let ok = matches!(r, Result_::Status(s) if settings.ok(s));
        let corrected = done.saturating_duration_since(intended).as_micros() as u64;
        let t = intended.saturating_duration_since(self.start).as_secs();
        let measured = intended >= self.warm_end;
        let mut s = self.shard(lane);
        s.live.completed += 1;
        if ok {
            s.live.ok += 1;
        } else {
            s.live.errors += 1;
        }
        {
            let sec = s.second(t);
            sec.completed += 1;
            sec.latency_sum_us += corrected;
            sec.buckets.record(corrected);
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

/// One lane: a thread with its own single-threaded runtime, connections, share of the
/// schedule and statistics shard. Nothing on the hot path crosses threads.
#[derive(Clone)]
struct Lane {
    id: usize,
    of: usize,
    settings: Arc<Settings>,
    target: Arc<Target>,
    rec: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    start: Instant,
    end: Instant,
    /// This lane's share of the in-flight limit.
    limit: usize,
    ticks: Arc<Ticks>,
}

/// The open-model scheduler's wake-ups, at which fresh connections' answers are read.
struct Ticks {
    /// The lane's start, which `next` counts from.
    start: Instant,
    notify: tokio::sync::Notify,
    /// When the scheduler wakes next, in nanoseconds from the lane's start (`u64::MAX`: it
    /// will not, as in the closed model or once the schedule is over).
    next: AtomicU64,
}

impl Ticks {
    fn new(start: Instant) -> Ticks {
        Ticks { start, notify: tokio::sync::Notify::new(), next: AtomicU64::new(u64::MAX) }
    }

    /// Will the scheduler wake within `HARVEST_HORIZON` of `now`?
    fn soon(&self, now: Instant) -> bool {
        let horizon = now.saturating_duration_since(self.start) + HARVEST_HORIZON;
        self.next.load(Ordering::Relaxed) <= horizon.as_nanos() as u64
    }

    /// Until the scheduler's next wake-up (at once if none is coming).
    async fn wait(&self) {
        let next = self.notify.notified();
        if self.next.load(Ordering::Relaxed) != u64::MAX {
            next.await;
        }
    }

    /// The scheduler is awake: those waiting read their answers. It wakes next at `next`
    /// (`None`: never).
    fn tick(&self, next: Option<Instant>) {
        let at = next.map_or(u64::MAX, |t| t.saturating_duration_since(self.start).as_nanos() as u64);
        self.next.store(at, Ordering::Relaxed);
        self.notify.notify_waiters();
    }
}

/// A worker's connection, read buffer and request deadline, kept from one request to the
/// next.
struct Worker {
    conn: Option<Conn>,
    buf: BytesMut,
    stamped: Stamped,
    /// Reset for each request, never dropped: the runtime's timer wheel then always holds a
    /// deadline no later than the next one, and arming it does not wake the event loop (a
    /// fresh timeout per request would, a system call each time).
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Worker {
    fn new() -> Worker {
        Worker {
            conn: None,
            buf: BytesMut::with_capacity(4 * 1024),
            stamped: Stamped::default(),
            deadline: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }
}

/// What a lane's scheduler saw.
struct Schedule {
    scheduled: u64,
    unsent: u64,
    /// Tickets released but still queued when the schedule ended.
    queue: Option<async_channel::Receiver<Instant>>,
    /// Of those, the ones no worker was free to take before the run stopped (never sent).
    stranded: u64,
    lag: Histogram<u64>,
    aborted: bool,
}

impl Lane {
    /// One request, on the worker's connection (opened, or replaced, as needed).
    ///
    /// A fresh plain connection in the open model, when the scheduler wakes again within
    /// `HARVEST_HORIZON`, is kept out of the event loop once its request is out: its answer is
    /// read at that wake-up and timed by the kernel's arrival stamp, so a prompt answer costs
    /// no wake-up of its own. An answer not all there by then is waited for on the event loop.
    async fn one(&self, w: &mut Worker, intended: Instant) {
        let (settings, rec) = (&*self.settings, &*self.rec);
        let sent = Instant::now();
        rec.sending(self.id, intended);
        let (conn, buf, stamped) = (&mut w.conn, &mut w.buf, &mut w.stamped);
        let attempt = async {
            let mut written = 0;
            if conn.is_none() {
                let harvest = !settings.keepalive && !self.target.is_tls() && self.ticks.soon(sent);
                let (sock, early) = self
                    .target
                    .open(settings.keepalive, harvest)
                    .inspect_err(|_| rec.connect(self.id, sent.elapsed()))?;
                written = early;
                if harvest && early == self.target.request(false).len() {
                    // Connected, and the request is out.
                    rec.connect(self.id, sent.elapsed());
                    self.ticks.wait().await;
                    if let Some((a, stamp)) = stamped.answer(&sock, buf, self.target.is_head())? {
                        return Ok((a, stamp));
                    }
                    *conn = Some(self.target.finish(sock, early).await?);
                } else {
                    let c = self.target.finish(sock, early).await;
                    rec.connect(self.id, sent.elapsed());
                    *conn = Some(c?);
                }
            }
            let c = conn.as_mut().expect("connected above");
            exchange(c, &self.target, settings.keepalive, buf, written).await.map(|a| (a, None))
        };
        w.deadline.as_mut().reset(tokio::time::Instant::from_std(sent + settings.timeout));
        let result = tokio::select! {
            biased;
            r = attempt => Ok(r),
            _ = w.deadline.as_mut() => Err(()),
        };
        // A kernel stamp is wall-clock time: placed on the monotonic clock by how long ago it was.
        let now = Instant::now();
        let arrival = |stamp: Option<SystemTime>| match stamp {
            Some(t) => {
                now.checked_sub(SystemTime::now().duration_since(t).unwrap_or_default()).unwrap_or(now).clamp(sent, now)
            }
            None => now,
        };
        let result = result.map(|r| r.map(|(a, stamp)| (a, arrival(stamp))));
        let conn = &mut w.conn;
        let mut done = now;
        let r = match result {
            Ok(Ok((a, at))) => {
                done = at;
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
        rec.record(self.id, settings, intended, Some(sent), done, r);
    }

    /// Run the lane on the calling thread until its part is done and what it sent has been
    /// answered (or a timeout has passed); what is still open then is dropped with the runtime.
    fn run(self) -> Result<Schedule, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Generator(format!("cannot start a load lane: {e}")))?;
        // The lane's work is a task, not the `block_on` future itself: waking that future goes
        // through the driver's eventfd (a system call per wake-up), waking a task does not.
        rt.block_on(async move {
            tokio::spawn(self.main()).await.map_err(|e| Error::Generator(format!("a load lane stopped: {e}")))
        })
    }

    async fn main(self) -> Schedule {
        let mut workers = tokio::task::JoinSet::new();
        let schedule = match self.settings.rate {
            Some(rate) => self.open(rate, &mut workers).await,
            None => self.closed(&mut workers).await,
        };
        // Let what was sent finish, up to one timeout.
        let grace = self.settings.timeout + Duration::from_millis(100);
        let _ = tokio::time::timeout(grace, async { while workers.join_next().await.is_some() {} }).await;
        // Tickets no worker took by then were never sent.
        let mut schedule = schedule;
        if let Some(queue) = schedule.queue.take() {
            while let Ok(intended) = queue.try_recv() {
                schedule.stranded += u64::from(intended >= self.rec.warm_end);
                self.rec.record(self.id, &self.settings, intended, None, intended, Result_::Failed(ErrorClass::Unsent));
            }
        }
        schedule
    }

    /// The closed model: this lane's share of the connections (`limit`), each sending its next request
    /// when the last is answered.
    async fn closed(&self, workers: &mut tokio::task::JoinSet<()>) -> Schedule {
        for _ in 0..self.limit {
            let lane = self.clone();
            workers.spawn(async move {
                let mut w = Worker::new();
                tokio::time::sleep_until(lane.start.into()).await;
                while Instant::now() < lane.end && !lane.stop.load(Ordering::Relaxed) {
                    lane.one(&mut w, Instant::now()).await;
                }
            });
        }
        tokio::time::sleep_until(self.end.into()).await;
        Schedule {
            scheduled: 0,
            unsent: 0,
            queue: None,
            stranded: 0,
            lag: hist(),
            aborted: self.stop.load(Ordering::Relaxed),
        }
    }

    /// The open model: release this lane's tickets (every `of`-th of the schedule) at their
    /// intended times, to workers that are added while tickets wait, up to the lane's share of
    /// the in-flight limit.
    async fn open(&self, rate: f64, workers: &mut tokio::task::JoinSet<()>) -> Schedule {
        let limit = self.limit;
        let (tx, rx) = async_channel::bounded::<Instant>(limit);
        // Workers waiting for a ticket.
        let idle = Arc::new(AtomicUsize::new(0));
        let spawn_worker = |workers: &mut tokio::task::JoinSet<()>| {
            let (lane, rx, idle) = (self.clone(), rx.clone(), idle.clone());
            workers.spawn(async move {
                let mut w = Worker::new();
                loop {
                    idle.fetch_add(1, Ordering::Relaxed);
                    let t = rx.recv().await;
                    idle.fetch_sub(1, Ordering::Relaxed);
                    let Ok(intended) = t else { break };
                    lane.one(&mut w, intended).await;
                }
            });
        };
        let initial = self.settings.connections.map(|c| c.div_ceil(self.of)).unwrap_or(4).min(limit).max(1);
        (0..initial).for_each(|_| spawn_worker(workers));
        let mut spawned = initial;
        let mut backlog: Option<Instant> = None;
        let timer = Timer::new();
        let stages = &self.settings.stages;
        // The next intended send time of the whole schedule (it integrates the staged rate);
        // this lane takes ticket k when k % of == id.
        let step = |at: Instant| next_gap(rate, stages, at.saturating_duration_since(self.start));
        let (mut next, mut k) = (self.start, 0usize);
        // Ticket k's time is the sum of k gaps, each rounded to a nanosecond: it may lie up to
        // k ns before its exact time, so one exactly at the end (rate x duration whole) would
        // be sent as one too many. Within that error of the end counts as at the end.
        let within = |next: Instant, k: usize| next + Duration::from_nanos(k as u64) < self.end;
        let mut out =
            Schedule { scheduled: 0, unsent: 0, queue: Some(rx.clone()), stranded: 0, lag: hist(), aborted: false };
        let skip = |next: &mut Instant, k: &mut usize| {
            while *k % self.of != self.id && within(*next, *k) {
                *next += step(*next);
                *k += 1;
            }
        };
        skip(&mut next, &mut k);
        while within(next, k) {
            timer.sleep_until(next).await;
            if self.stop.load(Ordering::Relaxed) {
                out.aborted = true;
                break;
            }
            let now = Instant::now();
            // Tickets left from earlier wake-ups, more than the workers free to take them, for
            // over a millisecond: every worker is waiting on the server, so add one (one per
            // wake-up: a lane that is merely busy would otherwise open connections it cannot
            // serve, and fall further behind).
            if tx.len() > idle.load(Ordering::Relaxed) {
                let since = *backlog.get_or_insert(now);
                if now.saturating_duration_since(since) >= BACKLOG_GRACE && spawned < limit {
                    spawn_worker(workers);
                    spawned += 1;
                }
            } else {
                backlog = None;
            }
            while next <= now && within(next, k) {
                let _ = out.lag.record((now.saturating_duration_since(next).as_micros() as u64).max(1));
                self.rec.scheduled.fetch_add(1, Ordering::Relaxed);
                let measured = next >= self.rec.warm_end;
                out.scheduled += measured as u64;
                if tx.try_send(next).is_err() {
                    // Never sent: a failure, and the run says it could not keep up.
                    out.unsent += measured as u64;
                    self.rec.record(self.id, &self.settings, next, None, next, Result_::Failed(ErrorClass::Unsent));
                }
                next += step(next);
                k += 1;
                skip(&mut next, &mut k);
            }
            // Fresh connections' answers that came in since the last wake-up are read now
            // (their workers run after this turn, before the next wait).
            self.ticks.tick(within(next, k).then_some(next));
            // The workers send what was released while the scheduler waits for the timer; when
            // the next ticket is already due it does not wait, so it lets them run first (a
            // yield costs the event loop a look at the system, a system call).
            if next <= Instant::now() {
                tokio::task::yield_now().await;
            }
        }
        self.ticks.tick(None);
        drop(tx);
        out
    }
}

/// A sleep precise to tens of microseconds: a timerfd on the lane's own event loop, where
/// the runtime's timer rounds up to whole milliseconds (a bias in every latency).
struct Timer(Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>);

impl Timer {
    fn new() -> Timer {
        use rustix::time::{timerfd_create, TimerfdClockId, TimerfdFlags};
        let fd = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC).ok();
        // SAFETY: the timer owns its descriptor, which is neither replaced nor closed while the
        // runtime has it registered (it is closed when the `AsyncFd` drops, after deregistering).
        Timer(fd.and_then(|fd| {
            unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.ok()
        }))
    }

    async fn sleep_until(&self, at: Instant) {
        use rustix::time::{timerfd_settime, Itimerspec, TimerfdTimerFlags, Timespec};
        let wait = at.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return;
        }
        let Some(fd) = &self.0 else {
            return tokio::time::sleep(wait).await;
        };
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        let value = Itimerspec { it_interval: zero, it_value: Timespec::try_from(wait).unwrap_or(zero) };
        if timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &value).is_err() {
            return tokio::time::sleep(wait).await;
        }
        // Arming the timer again resets its count of expirations, so it is never read (a
        // system call saved per wake-up): readiness is cleared by hand.
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return tokio::time::sleep_until(at.into()).await;
            };
            ready.clear_ready();
            if Instant::now() >= at {
                return;
            }
        }
    }
}

/// How many lanes a run uses: the closed model, one per core (fewer for fewer connections);
/// the open model, as many as the rate needs, no more than the cores. A lane carries tens of
/// thousands of keep-alive requests a second, fewer new connections; at a modest rate one lane
/// costs less CPU than two (in a one-off comparison by hand on 2 cores at 2,500 req/s with
/// keep-alive: about 0.085 core against 0.095), since every thread that sleeps and wakes pays.
fn lanes(s: &Settings) -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let want = match s.rate {
        Some(r) => (r / if s.keepalive { LANE_RATE_KEEPALIVE } else { LANE_RATE_NEW_CONNECTION }).ceil() as usize,
        None => s.connections.unwrap_or(64),
    };
    want.clamp(1, cores)
}

/// The open-model rate one lane is given before another is added.
const LANE_RATE_KEEPALIVE: f64 = 30_000.0;
const LANE_RATE_NEW_CONNECTION: f64 = 10_000.0;

/// Files kept for everything else when the open-files limit caps the requests in flight.
const FILES_RESERVED: usize = 64;

/// How long released tickets may outnumber free workers before the lane adds one.
const BACKLOG_GRACE: Duration = Duration::from_millis(1);
/// A fresh connection's answer is read at the scheduler's next wake-up when that comes within
/// this (at rates of about 1,000 req/s a lane and up, where wake-ups are what the generator's
/// CPU goes to); an answered request is then counted in flight for no longer than this.
const HARVEST_HORIZON: Duration = Duration::from_millis(1);

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

/// The live view's line, once a second: answers and errors in the last second apart (a
/// refused connection is an error, never an answer), the latency so far (after the warm-up, as
/// the report counts it), and each threshold as it stands now.
pub struct LiveLine {
    target: Option<f64>,
    thresholds: Vec<threshold::Threshold>,
    last: Mutex<(Duration, Live)>,
}

/// The figures so far, for judging thresholds while the run goes on.
struct SoFar<'a>(&'a Live);

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

/// Everything a run recorded, before it is judged: what a worker ships, and what the lanes (or
/// the workers) of one run add up to.
#[derive(Clone)]
pub struct Raw {
    all: Shard,
    /// After warm-up: scheduled, never sent, stranded.
    scheduled: u64,
    unsent: u64,
    stranded: u64,
    sched_lag: Histogram<u64>,
    aborted: bool,
    limit: usize,
    wanted: usize,
    files: Option<u64>,
    cpu: Duration,
    wall: Duration,
    rss_kib: (u64, u64),
    closed: bool,
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
const LAG_WARNING_MS: f64 = 10.0;

/// Late releases add to measured latency (it counts from the intended send time), so they
/// can only turn a pass into a fail, never the other way. A run is refused as evidence only
/// when a latency threshold failed and would have held without the lag (the figure less the
/// scheduler's lag p99 meets it): then the failure may be the generator's, not the service's.
fn lag_changes_a_verdict(thresholds: &[Threshold], verdicts: &[Verdict], sched_p99: f64) -> Option<String> {
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
fn unanswered(r: &Report) -> String {
    let errors: Vec<String> = r.errors.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{n} {k}")).collect();
    format!(
        "no request got a successful answer from {} ({} requests{}): the figures measure nothing",
        r.config["url"].as_str().unwrap_or("the target"),
        r.counts.scheduled.max(r.counts.sent),
        if errors.is_empty() { String::new() } else { format!("; {}", errors.join(", ")) }
    )
}

#[cfg(test)]
mod tests {
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
