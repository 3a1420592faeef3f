//! What a run records: HDR histograms and counts per lane ([`Shard`]), a per-second series
//! ([`Second`], [`Buckets`]), the live figures ([`Live`]) and the [`Recorder`] the lanes share.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::http::ErrorClass;
use super::*;

pub(crate) fn hist() -> Histogram<u64> {
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
    pub(crate) latency_sum_us: u64,
    #[serde(skip)]
    pub(crate) buckets: Buckets,
}

/// A small latency histogram for one second: 16 buckets per doubling (about 4 % wide), kept
/// only for seconds that had answers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Buckets {
    pub(crate) counts: Vec<u32>,
    pub(crate) max_us: u64,
}

impl Buckets {
    const SUB: u32 = 16;

    pub(crate) fn index(us: u64) -> usize {
        if us < Self::SUB as u64 {
            return us as usize;
        }
        let e = 63 - us.leading_zeros();
        let mantissa = (us >> (e - 4)) & (Self::SUB as u64 - 1);
        (Self::SUB + (e - 4) * Self::SUB) as usize + mantissa as usize
    }

    /// The middle of a bucket (µs).
    pub(crate) fn value(i: usize) -> f64 {
        let sub = Self::SUB as usize;
        if i < sub {
            return i as f64;
        }
        let e = (i - sub) / sub + 4;
        let mantissa = ((i - sub) % sub) as u64;
        let low = (1u64 << e) + (mantissa << (e - 4));
        low as f64 + (1u64 << (e - 4)) as f64 / 2.0
    }

    pub(crate) fn record(&mut self, us: u64) {
        let i = Self::index(us);
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.max_us = self.max_us.max(us);
    }

    pub(crate) fn add(&mut self, o: &Buckets) {
        if self.counts.len() < o.counts.len() {
            self.counts.resize(o.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.max_us = self.max_us.max(o.max_us);
    }

    /// The `q` quantile (0..1) in ms.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
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
pub(crate) struct Shard {
    pub(crate) corrected: Histogram<u64>,
    pub(crate) service: Histogram<u64>,
    pub(crate) connect: Histogram<u64>,
    pub(crate) send_lag: Histogram<u64>,
    pub(crate) corrected_sum_us: u64,
    pub(crate) service_sum_us: u64,
    pub(crate) completed: u64,
    pub(crate) ok: u64,
    pub(crate) sent: u64,
    pub(crate) errors: BTreeMap<ErrorClass, u64>,
    pub(crate) series: Vec<Second>,
    /// All-time counts (warm-up included) for the live view.
    pub(crate) live: Live,
}

impl Shard {
    pub(crate) fn new() -> Shard {
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

    pub(crate) fn second(&mut self, t: u64) -> &mut Second {
        let i = t as usize;
        if self.series.len() <= i {
            self.series.resize_with(i + 1, Second::default);
        }
        &mut self.series[i]
    }

    pub(crate) fn merge(&mut self, o: &Shard) {
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

pub(crate) struct Recorder {
    pub(crate) start: Instant,
    pub(crate) warm_end: Instant,
    pub(crate) shards: Vec<Mutex<Shard>>,
    pub(crate) scheduled: AtomicU64,
    /// Closed model: the intended time is the send time, so service time and send lag are
    /// the corrected figures themselves and are not recorded twice.
    pub(crate) closed: bool,
}

pub(crate) enum Result_ {
    Status(u16),
    Failed(ErrorClass),
}

impl Recorder {
    /// A lane's own shard: only its thread records into it (and the live view reads it once a
    /// second), so the lock is never contended.
    pub(crate) fn shard(&self, lane: usize) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[lane].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn connect(&self, lane: usize, d: Duration) {
        let _ = self.shard(lane).connect.record((d.as_micros() as u64).max(1));
    }

    /// The live figures and the CO-corrected latency histogram they come from (after warm-up).
    pub(crate) fn live(&self) -> (Live, Histogram<u64>) {
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
    pub(crate) fn sending(&self, lane: usize, intended: Instant) {
        let t = intended.saturating_duration_since(self.start).as_secs();
        let mut s = self.shard(lane);
        s.live.sent += 1;
        s.second(t).sent += 1;
        if intended >= self.warm_end {
            s.sent += 1;
        }
    }

    pub(crate) fn record(
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
