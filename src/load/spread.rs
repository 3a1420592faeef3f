//! One run from several processes, one verdict. Each worker runs its share of the schedule (the
//! rate, stages, connections and in-flight limit divided by the number of workers) from a
//! shared start time and ships what it recorded as a [`Part`]: its HDR histograms serialized
//! (V2 with DEFLATE, base64) and its counts and per-second series as they are. The coordinator
//! adds the parts exactly as one run adds its lanes' shards, and judges the thresholds only on
//! the sum: percentiles come from the merged histograms, never from averaging each worker's.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::Duration;

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::http::ErrorClass;
use super::{Buckets, Live, Raw, Second, Settings, Shard};

fn pack(h: &Histogram<u64>) -> Result<String, String> {
    let mut buf = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut buf).map_err(|e| format!("serializing a histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

fn unpack(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| format!("a histogram: {e}"))?;
    Deserializer::new().deserialize(&mut Cursor::new(bytes)).map_err(|e| format!("a histogram: {e:?}"))
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
    pub(crate) fn of(r: &Raw) -> Result<Part, String> {
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

    pub fn raw(&self) -> Result<Raw, String> {
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

    pub fn settings(&self) -> Result<Settings, String> {
        let url = url::Url::parse(&self.url).map_err(|e| format!("{}: {e}", self.url))?;
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

/// What a worker writes once a second for the coordinator's live view.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    pub pid: u32,
    pub live: Live,
}

/// The live figures of all workers: counts summed, the mean weighted by answers, and each
/// percentile the slowest worker's, an upper bound of the merged one (a quantile of a sum of
/// histograms lies between the parts' quantiles). The verdict never comes from these: it comes
/// from the merged histograms at the end.
pub fn live_sum(parts: &[Progress]) -> Live {
    let mut l = Live::default();
    let mut sum_ms = 0.0;
    let worst = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    for p in parts {
        l.scheduled += p.live.scheduled;
        l.sent += p.live.sent;
        l.completed += p.live.completed;
        l.ok += p.live.ok;
        l.errors += p.live.errors;
        l.measured += p.live.measured;
        l.measured_ok += p.live.measured_ok;
        l.measured_s = l.measured_s.max(p.live.measured_s);
        sum_ms += p.live.mean_ms.unwrap_or(0.0) * p.live.measured as f64;
        l.p50_ms = worst(l.p50_ms, p.live.p50_ms);
        l.p99_ms = worst(l.p99_ms, p.live.p99_ms);
        l.max_ms = worst(l.max_ms, p.live.max_ms);
    }
    if l.measured > 0 {
        l.mean_ms = Some(sum_ms / l.measured as f64);
    }
    l
}

/// Write `bytes` to `path` whole or not at all (a temporary file renamed over it).
fn put(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// The file a worker writes its figures to, beside its job file.
pub fn part_path(dir: &std::path::Path, worker: usize) -> std::path::PathBuf {
    dir.join(format!("worker-{worker}.part.json"))
}

pub fn progress_path(dir: &std::path::Path, worker: usize) -> std::path::PathBuf {
    dir.join(format!("worker-{worker}.progress.json"))
}

/// A worker (`flow load-worker JOB`): wait for the shared start, run the share, write the
/// part. It stops by itself at the job's `stop_by_ms` whatever happens (a coordinator killed
/// with -9 leaves no worker running past the run's end).
pub async fn work(job_path: &std::path::Path) -> Result<(), super::Error> {
    use super::Error;
    let text = std::fs::read(job_path).map_err(|e| Error::Settings(format!("{}: {e}", job_path.display())))?;
    let job: Job =
        serde_json::from_slice(&text).map_err(|e| Error::Settings(format!("{}: {e}", job_path.display())))?;
    let settings = job.settings().map_err(Error::Settings)?;
    let dir = job_path.parent().unwrap_or(std::path::Path::new(".")).to_path_buf();
    let stop_by = job.stop_by_ms;
    std::thread::spawn(move || loop {
        let now = crate::clock::system_ms();
        if now >= stop_by {
            eprintln!("load-worker: the run's end and its grace have passed; stopping");
            std::process::exit(crate::exit::FAILED);
        }
        std::thread::sleep(Duration::from_millis((stop_by - now).min(1000)));
    });
    let now = crate::clock::system_ms();
    if now > job.start_at_ms + START_SLACK_MS {
        return Err(Error::Generator(format!(
            "worker {} started {} ms after the shared start time",
            job.worker,
            now - job.start_at_ms
        )));
    }
    tokio::time::sleep(Duration::from_millis(job.start_at_ms.saturating_sub(now))).await;
    let (progress, pid) = (progress_path(&dir, job.worker), std::process::id());
    let tick: std::sync::Arc<dyn Fn(Duration, Live) + Send + Sync> = std::sync::Arc::new(move |_, live| {
        if let Ok(b) = serde_json::to_vec(&Progress { pid, live }) {
            let _ = put(&progress, &b);
        }
    });
    let raw = super::run_raw(settings, tick).await?;
    let part = Part::of(&raw).map_err(Error::Generator)?;
    let bytes = serde_json::to_vec(&part).map_err(|e| Error::Generator(e.to_string()))?;
    put(&part_path(&dir, job.worker), &bytes).map_err(|e| Error::Generator(format!("writing its figures: {e}")))
}

/// How late after the shared start a worker may begin before the run is invalid.
pub const START_SLACK_MS: u64 = 2000;

/// One worker's own figures, kept beside the merged ones.
#[derive(Debug, Clone, Serialize)]
pub struct Worker {
    pub worker: String,
    pub target_rate: Option<f64>,
    pub achieved_rate: f64,
    pub throughput_rps: f64,
    pub p99_ms: f64,
    pub cpu_cores: f64,
    pub scheduler_lag_p99_ms: f64,
    /// It sent less than its schedule called for (or did not finish): named in the verdict.
    pub behind: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// How a worker ended, as the coordinator saw it.
enum Ended {
    Exited(std::process::ExitStatus),
    /// Still running when the run's end and its grace had passed: stopped.
    Overran,
}

/// Run `s` as `workers` local processes (`flow load-worker`), each its share of the schedule
/// from one start time, and report their merged figures. Each worker's progress feeds the live
/// line; a worker that dies, never starts or writes no figures makes the run invalid, by name.
/// `dir` keeps what they wrote (default: a temporary directory, removed after).
pub async fn coordinate(
    s: Settings,
    workers: usize,
    dir: Option<std::path::PathBuf>,
    on_tick: std::sync::Arc<dyn Fn(Duration, Live) + Send + Sync>,
) -> Result<super::Report, super::Error> {
    let gen = super::Error::Generator;
    let keep = dir.is_some();
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("flow-load-{}-{}", std::process::id(), crate::clock::system_ms())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| gen(format!("creating {}: {e}", dir.display())))?;
    let exe = std::env::current_exe().map_err(|e| gen(format!("finding flow's own program to start workers: {e}")))?;
    // Every worker starts at one time, late enough for all to be up; each stops by itself at
    // the run's end plus the request timeout and a grace.
    let start_at = crate::clock::system_ms() + 1000 + 200 * workers as u64;
    let run_ms = s.duration.as_millis() as u64;
    let stop_by = start_at + run_ms + s.timeout.as_millis() as u64 + 10_000;
    let mut children = Vec::new();
    for k in 0..workers {
        let job = Job::new(&s, workers, k, start_at, stop_by);
        let path = dir.join(format!("worker-{k}.job.json"));
        let text = serde_json::to_vec_pretty(&job).map_err(|e| gen(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| gen(format!("writing {}: {e}", path.display())))?;
        let log = std::fs::File::create(dir.join(format!("worker-{k}.log")))
            .map_err(|e| gen(format!("creating worker {k}'s log: {e}")))?;
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.arg("load-worker")
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(|e| gen(e.to_string()))?)
            .stderr(log)
            .kill_on_drop(true);
        // SAFETY: between fork and exec only an async-signal-safe system call (prctl) is made.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                    .map_err(std::io::Error::from)
            });
        }
        let child = cmd.spawn().map_err(|e| gen(format!("starting worker {k} ({}): {e}", exe.display())))?;
        let pid = child.id().unwrap_or(0);
        children.push((k, pid, child, None::<Ended>));
    }
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        for (_, _, child, ended) in children.iter_mut().filter(|c| c.3.is_none()) {
            if let Ok(Some(status)) = child.try_wait() {
                *ended = Some(Ended::Exited(status));
            }
        }
        let seen: Vec<Progress> = (0..workers)
            .filter_map(|k| std::fs::read(progress_path(&dir, k)).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        let now = crate::clock::system_ms();
        if now >= start_at {
            on_tick(Duration::from_millis(now - start_at), live_sum(&seen));
        }
        if children.iter().all(|c| c.3.is_some()) {
            break;
        }
        if now > stop_by + 2000 {
            for (_, _, child, ended) in children.iter_mut().filter(|c| c.3.is_none()) {
                let _ = child.kill().await;
                *ended = Some(Ended::Overran);
            }
            break;
        }
    }

    // The parts: each worker's own figures, then their sum.
    let mut merged: Option<Raw> = None;
    let mut figures = Vec::new();
    let mut failures = Vec::new();
    for (k, pid, _, ended) in &children {
        let name = format!("worker {} of {workers} (pid {pid})", k + 1);
        let log = std::fs::read_to_string(dir.join(format!("worker-{k}.log"))).unwrap_or_default();
        let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
        let part = std::fs::read(part_path(&dir, *k)).ok().and_then(|b| serde_json::from_slice::<Part>(&b).ok());
        let why = match ended {
            Some(Ended::Overran) => {
                Some("was still running after the run's end and its grace, and was stopped".to_string())
            }
            Some(Ended::Exited(st)) if !st.success() => {
                Some(match (st.code(), std::os::unix::process::ExitStatusExt::signal(st)) {
                    (_, Some(sig)) => format!("was killed by signal {sig}"),
                    (Some(c), _) => format!(
                        "exited with code {c}{}",
                        if last.is_empty() { String::new() } else { format!(": {last}") }
                    ),
                    _ => "ended abnormally".to_string(),
                })
            }
            _ if part.is_none() => Some("wrote no figures".to_string()),
            _ => None,
        };
        let share = share(&s, workers, *k);
        let raw = match (why, &part) {
            (None, Some(p)) => p.raw().map_err(gen)?,
            (why, _) => {
                let why = why.unwrap_or_else(|| "wrote no figures".into());
                failures.push(format!("{name} {why}"));
                figures.push(Worker {
                    worker: name,
                    target_rate: share.rate,
                    achieved_rate: 0.0,
                    throughput_rps: 0.0,
                    p99_ms: 0.0,
                    cpu_cores: 0.0,
                    scheduler_lag_p99_ms: 0.0,
                    behind: true,
                    failed: Some(why),
                });
                continue;
            }
        };
        let own = super::report(&share, raw.clone());
        if let Some(r) = &own.invalid_reason {
            failures.push(format!("{name}: {r}"));
        }
        figures.push(Worker {
            worker: name,
            target_rate: own.target_rate,
            achieved_rate: own.achieved_rate,
            throughput_rps: own.throughput_rps,
            p99_ms: own.latency.p99_ms,
            cpu_cores: own.generator.cpu_cores,
            scheduler_lag_p99_ms: own.generator.scheduler_lag_p99_ms,
            behind: !own.valid,
            failed: None,
        });
        merged = Some(match merged {
            None => raw,
            Some(m) => add(m, &raw),
        });
    }
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let Some(merged) = merged else {
        return Err(gen(format!("no worker measured anything: {}", failures.join("; "))));
    };
    let mut report = super::report(&s, merged);
    report.config["workers"] = serde_json::json!(workers);
    report.config["runner"] = serde_json::json!("local");
    if !failures.is_empty() {
        report.valid = false;
        report.invalid_reason = Some(match report.invalid_reason.take() {
            Some(r) => format!("{}; {r}", failures.join("; ")),
            None => failures.join("; "),
        });
    }
    report.workers = figures;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples split over workers and added back give the very histogram of all samples: the
    /// merge is exact, so merged percentiles are those of one run with every request.
    #[test]
    fn merged_histograms_are_the_histogram_of_all_samples() {
        let mut all = super::super::hist();
        let mut parts: Vec<Histogram<u64>> = (0..4).map(|_| super::super::hist()).collect();
        let mut x: u64 = 12345;
        for i in 0..40_000u64 {
            // A skewed spread of latencies from 100 µs to about 3 s.
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let us = 100 + (x >> 33) % 1000 * ((x >> 20) % 3000 + 1);
            let _ = all.record(us);
            let _ = parts[(i % 4) as usize].record(us);
        }
        let mut merged = super::super::hist();
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
