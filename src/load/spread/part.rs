//! What travels between the coordinator and its workers: a worker's [`Job`] (its share of the
//! schedule and the shared start time) and its [`Part`] (what it recorded: HDR histograms
//! serialized V2 with DEFLATE, base64; counts and per-second series as they are), and the
//! exact sum of two parts ([`add`]).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::Duration;

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::load::http::ErrorClass;
use crate::load::{Buckets, Raw, Second, Settings, Shard};

/// Why a part (or a histogram in it) cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    #[error("serializing a histogram: {0}")]
    Pack(#[from] hdrhistogram::serialization::V2DeflateSerializeError),
    #[error("a histogram: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("a histogram: {0}")]
    Unpack(#[from] hdrhistogram::serialization::DeserializeError),
    #[error("{url}: {source}")]
    Url { url: String, source: url::ParseError },
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

pub(crate) fn pack(h: &Histogram<u64>) -> Result<String, PartError> {
    let mut buf = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut buf)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

pub(crate) fn unpack(s: &str) -> Result<Histogram<u64>, PartError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s)?;
    Ok(Deserializer::new().deserialize(&mut Cursor::new(bytes))?)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireSecond {
    sent: u64,
    completed: u64,
    ok: u64,
    errors: u64,
    latency_sum_us: u64,
    buckets: Vec<u32>,
    max_us: u64,
}

/// What one worker recorded, as it ships it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    pub version: u32,
    corrected: String,
    service: String,
    connect: String,
    send_lag: String,
    sched_lag: String,
    corrected_sum_us: u64,
    service_sum_us: u64,
    completed: u64,
    ok: u64,
    sent: u64,
    errors: BTreeMap<String, u64>,
    series: Vec<WireSecond>,
    scheduled: u64,
    unsent: u64,
    stranded: u64,
    aborted: bool,
    limit: usize,
    wanted: usize,
    cpu_ms: u64,
    wall_ms: u64,
    rss_kib: u64,
    peak_kib: u64,
    closed: bool,
}

impl Part {
    pub(crate) fn of(r: &Raw) -> Result<Part, PartError> {
        let a = &r.all;
        Ok(Part {
            version: 1,
            corrected: pack(&a.corrected)?,
            service: pack(&a.service)?,
            connect: pack(&a.connect)?,
            send_lag: pack(&a.send_lag)?,
            sched_lag: pack(&r.sched_lag)?,
            corrected_sum_us: a.corrected_sum_us,
            service_sum_us: a.service_sum_us,
            completed: a.completed,
            ok: a.ok,
            sent: a.sent,
            errors: a.errors.iter().map(|(k, v)| (k.name().to_string(), *v)).collect(),
            series: a
                .series
                .iter()
                .map(|s| WireSecond {
                    sent: s.sent,
                    completed: s.completed,
                    ok: s.ok,
                    errors: s.errors,
                    latency_sum_us: s.latency_sum_us,
                    buckets: s.buckets.counts.clone(),
                    max_us: s.buckets.max_us,
                })
                .collect(),
            scheduled: r.scheduled,
            unsent: r.unsent,
            stranded: r.stranded,
            aborted: r.aborted,
            limit: r.limit,
            wanted: r.wanted,
            cpu_ms: r.cpu.as_millis() as u64,
            wall_ms: r.wall.as_millis() as u64,
            rss_kib: r.rss_kib.0,
            peak_kib: r.rss_kib.1,
            closed: r.closed,
        })
    }

    pub fn raw(&self) -> Result<Raw, PartError> {
        let mut all = Shard::new();
        all.corrected = unpack(&self.corrected)?;
        all.service = unpack(&self.service)?;
        all.connect = unpack(&self.connect)?;
        all.send_lag = unpack(&self.send_lag)?;
        all.corrected_sum_us = self.corrected_sum_us;
        all.service_sum_us = self.service_sum_us;
        all.completed = self.completed;
        all.ok = self.ok;
        all.sent = self.sent;
        for (k, v) in &self.errors {
            let class = ErrorClass::ALL.iter().find(|c| c.name() == k).copied().unwrap_or(ErrorClass::Other);
            *all.errors.entry(class).or_default() += v;
        }
        all.series = self
            .series
            .iter()
            .map(|w| Second {
                sent: w.sent,
                completed: w.completed,
                ok: w.ok,
                errors: w.errors,
                latency_sum_us: w.latency_sum_us,
                buckets: Buckets { counts: w.buckets.clone(), max_us: w.max_us },
                ..Second::default()
            })
            .collect();
        Ok(Raw {
            all,
            scheduled: self.scheduled,
            unsent: self.unsent,
            stranded: self.stranded,
            sched_lag: unpack(&self.sched_lag)?,
            aborted: self.aborted,
            limit: self.limit,
            wanted: self.wanted,
            files: None,
            cpu: Duration::from_millis(self.cpu_ms),
            wall: Duration::from_millis(self.wall_ms),
            rss_kib: (self.rss_kib, self.peak_kib),
            closed: self.closed,
        })
    }
}

/// The sum of two workers' records, added as a run adds its lanes': histograms added, counts
/// summed, second by second; CPU and memory summed, the wall time the longer.
pub fn add(mut a: Raw, b: &Raw) -> Raw {
    a.all.merge(&b.all);
    a.scheduled += b.scheduled;
    a.unsent += b.unsent;
    a.stranded += b.stranded;
    let _ = a.sched_lag.add(&b.sched_lag);
    a.aborted |= b.aborted;
    a.limit += b.limit;
    a.wanted += b.wanted;
    a.files = None;
    a.cpu += b.cpu;
    a.wall = a.wall.max(b.wall);
    a.rss_kib = (a.rss_kib.0 + b.rss_kib.0, a.rss_kib.1 + b.rss_kib.1);
    a
}

/// Worker `k` of `n`'s share of a run: the rate, stages, connections and in-flight limit
/// divided (the remainder to the first workers); thresholds are the coordinator's.
pub fn share(s: &Settings, n: usize, k: usize) -> Settings {
    let part = |total: usize| (total / n + usize::from(k < total % n)).max(1);
    let mut w = s.clone();
    w.rate = s.rate.map(|r| r / n as f64);
    w.stages = s.stages.iter().map(|(d, r)| (*d, r / n as f64)).collect();
    w.connections = s.connections.map(part);
    w.max_in_flight = s.max_in_flight.map(part);
    w.thresholds = vec![];
    w.abort_on_fail = false;
    w
}

/// What a worker is told: its share and when to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub worker: usize,
    pub workers: usize,
    pub url: String,
    pub rate: Option<f64>,
    pub duration_ms: u64,
    pub connections: Option<usize>,
    pub keepalive: bool,
    pub timeout_ms: u64,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub success: Vec<(u16, u16)>,
    pub warmup_ms: u64,
    pub max_in_flight: Option<usize>,
    pub stages: Vec<(u64, f64)>,
    /// Unix time in ms at which every worker starts sending.
    pub start_at_ms: u64,
    /// Unix time in ms by which the worker has stopped, whatever happens.
    pub stop_by_ms: u64,
}

impl Job {
    pub fn new(s: &Settings, workers: usize, worker: usize, start_at_ms: u64, stop_by_ms: u64) -> Job {
        let w = share(s, workers, worker);
        Job {
            worker,
            workers,
            url: w.url.to_string(),
            rate: w.rate,
            duration_ms: w.duration.as_millis() as u64,
            connections: w.connections,
            keepalive: w.keepalive,
            timeout_ms: w.timeout.as_millis() as u64,
            method: w.method,
            headers: w.headers,
            body: w.body,
            success: w.success,
            warmup_ms: w.warmup.as_millis() as u64,
            max_in_flight: w.max_in_flight,
            stages: w.stages.iter().map(|(d, r)| (d.as_millis() as u64, *r)).collect(),
            start_at_ms,
            stop_by_ms,
        }
    }

    pub fn settings(&self) -> Result<Settings, PartError> {
        let url = url::Url::parse(&self.url).map_err(|source| PartError::Url { url: self.url.clone(), source })?;
        let mut s = Settings::new(url, Duration::from_millis(self.duration_ms));
        s.rate = self.rate;
        s.connections = self.connections;
        s.keepalive = self.keepalive;
        s.timeout = Duration::from_millis(self.timeout_ms);
        s.method = self.method.clone();
        s.headers = self.headers.clone();
        s.body = self.body.clone();
        s.success = self.success.clone();
        s.warmup = Duration::from_millis(self.warmup_ms);
        s.max_in_flight = self.max_in_flight;
        s.stages = self.stages.iter().map(|(d, r)| (Duration::from_millis(*d), *r)).collect();
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples split over workers and added back give the very histogram of all samples: the
    /// merge is exact, so merged percentiles are those of one run with every request.
    #[test]
    fn merged_histograms_are_the_histogram_of_all_samples() {
        let mut all = crate::load::hist();
        let mut parts: Vec<Histogram<u64>> = (0..4).map(|_| crate::load::hist()).collect();
        let mut x: u64 = 12345;
        for i in 0..40_000u64 {
            // A skewed spread of latencies from 100 µs to about 3 s.
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let us = 100 + (x >> 33) % 1000 * ((x >> 20) % 3000 + 1);
            let _ = all.record(us);
            let _ = parts[(i % 4) as usize].record(us);
        }
        let mut merged = crate::load::hist();
        for p in &parts {
            let back = unpack(&pack(p).unwrap()).unwrap();
            assert_eq!(&back, p, "a histogram survives serialization");
            merged.add(&back).unwrap();
        }
        assert_eq!(merged, all);
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(merged.value_at_quantile(q), all.value_at_quantile(q), "p{q}");
        }
    }

    #[test]
    fn a_share_divides_the_schedule_and_keeps_no_threshold() {
        let mut s = Settings::new(url::Url::parse("http://127.0.0.1:1/").unwrap(), Duration::from_secs(10));
        s.rate = Some(1000.0);
        s.stages = vec![(Duration::from_secs(2), 400.0)];
        s.connections = Some(10);
        s.thresholds = vec![crate::load::threshold::parse("p99<1s").unwrap()];
        let w: Vec<Settings> = (0..4).map(|k| share(&s, 4, k)).collect();
        assert_eq!(w.iter().map(|w| w.rate.unwrap()).sum::<f64>(), 1000.0);
        assert_eq!(w.iter().map(|w| w.connections.unwrap()).collect::<Vec<_>>(), [3, 3, 2, 2]);
        assert_eq!(w[0].stages, [(Duration::from_secs(2), 100.0)]);
        assert!(w.iter().all(|w| w.thresholds.is_empty()));
        let job = Job::new(&s, 4, 1, 0, 0);
        assert_eq!(job.settings().unwrap().rate, Some(250.0));
    }
}
