//! One run from several workers, one verdict. Each worker is an ordinary flow process
//! (`flow load-worker JOB`) that runs its share of the schedule (the rate, stages, connections
//! and in-flight limit divided by the number of workers) from a shared start time. A
//! [`Runner`] starts them where they should run: processes here ([`local`]), ECS tasks on
//! Fargate ([`ecs`]) or a Kubernetes Job ([`kube`]). They meet at the run's [`Place`] (a
//! directory, or an S3 prefix), with no server of flow's own in between: the coordinator
//! writes each worker's job there; each worker writes its progress once a second (its counts
//! and its latency histogram so far) and at the end its [`Part`]. The coordinator adds the
//! parts exactly as one run adds its lanes' shards and judges the thresholds only on the sum:
//! percentiles come from merged histograms (the live line's too), never from averaging each
//! worker's.

mod ecs;
mod kube;
mod local;
mod part;
mod place;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

pub use part::{add, share, Job, Part, PartError};
pub use place::{Place, PlaceError};

use super::{Error, Live, Raw, Settings};
pub use crate::domain::catalogue::LoadRunner;

/// How a run is spread: how many workers, started by which runner, meeting where.
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    pub workers: usize,
    pub runner: LoadRunner,
    /// A directory or `s3://BUCKET/PREFIX`; default (local runner only): a temporary
    /// directory, removed after the run.
    pub place: Option<String>,
    /// How long before the shared start the workers are started (default: the runner's).
    pub lead: Option<Duration>,
}

impl Spread {
    pub fn local(workers: usize) -> Spread {
        Spread { workers, runner: LoadRunner::Local, place: None, lead: None }
    }

    /// What the approval preview says about where the load comes from.
    pub fn describe(&self) -> String {
        let n = self.workers;
        let at = self.place.as_deref().map(|p| format!(", meeting at {p}")).unwrap_or_default();
        match &self.runner {
            LoadRunner::Local => format!("from {n} local worker processes{at}"),
            LoadRunner::Ecs(e) => format!(
                "from {n} ECS Fargate tasks ({}) in cluster {}, across subnets {}{at}",
                e.task_definition,
                e.cluster,
                e.subnets.join(", ")
            ),
            LoadRunner::Kubernetes(k) => format!(
                "from a Kubernetes Job of {n} pods ({}) in namespace {} of context {}{at}",
                k.image,
                k.namespace.as_deref().unwrap_or("(the context's)"),
                k.context.as_deref().unwrap_or("(the current one)")
            ),
        }
    }

    /// Whether the runner's workers can meet the coordinator at the place, before anything starts.
    pub fn check(&self) -> Result<(), Error> {
        self.runner.check(self.place.as_deref()).map_err(|e| Error::Settings(e.0))
    }
}

/// How a worker ended, as its runner saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    Done,
    Failed(String),
}

/// Where a worker stands, as the coordinator sees it.
enum Seen {
    /// No figures yet; `exited`: its runner says it ended well.
    Running {
        exited: bool,
    },
    Measured(Box<Raw>),
    Failed(String),
}

/// What starts and stops workers: [`local::Local`], [`ecs::Ecs`], [`kube::Kube`].
#[async_trait]
pub trait Runner: Send {
    fn kind(&self) -> &'static str;
    /// Start one worker per job (`jobs[k]` is where worker `k` reads its job). An error: the
    /// workers could not be started at all (a worker refused alone is reported by `poll`).
    async fn start(&mut self, jobs: &[String], stop_by_ms: u64) -> Result<(), Error>;
    /// Worker `k` for people: `pid 4242`, `task 8f2c… in subnet-a`, `pod run-x-1`.
    fn which(&self, k: usize) -> String;
    /// The workers that ended since the last call, and how.
    async fn poll(&mut self) -> Vec<(usize, Ended)>;
    /// Stop every worker still running (at the end, on an abort, on Ctrl-C).
    async fn stop(&mut self);
}

/// How long before the shared start each runner's workers are started: processes are up in
/// a moment; a Fargate task takes about a minute (placement, image pull), a pod less.
fn lead(runner: &LoadRunner, workers: usize) -> Duration {
    match runner {
        LoadRunner::Local => Duration::from_millis(1000 + 200 * workers as u64),
        LoadRunner::Ecs(_) => Duration::from_secs(120),
        LoadRunner::Kubernetes(_) => Duration::from_secs(60),
    }
}

/// What a worker writes once a second: its live counts and its CO-corrected latency
/// histogram so far (packed as in a [`Part`]), from which the coordinator's live line takes
/// exact merged percentiles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    pub pid: u32,
    pub live: Live,
    #[serde(default)]
    pub corrected: String,
}

/// The live figures of all workers: counts summed, the mean weighted by answers, the
/// percentiles and maximum of their histograms added (exact, as the verdict's are).
pub fn live_sum(parts: &[(Live, Histogram<u64>)]) -> Live {
    let mut l = Live::default();
    let mut sum_ms = 0.0;
    let mut all = super::hist();
    for (p, h) in parts {
        l.scheduled += p.scheduled;
        l.sent += p.sent;
        l.completed += p.completed;
        l.ok += p.ok;
        l.errors += p.errors;
        l.measured += p.measured;
        l.measured_ok += p.measured_ok;
        l.measured_s = l.measured_s.max(p.measured_s);
        sum_ms += p.mean_ms.unwrap_or(0.0) * p.measured as f64;
        let _ = all.add(h);
    }
    if l.measured > 0 {
        let ms = |us: u64| us as f64 / 1000.0;
        l.mean_ms = Some(sum_ms / l.measured as f64);
        l.p50_ms = Some(ms(all.value_at_quantile(0.50)));
        l.p99_ms = Some(ms(all.value_at_quantile(0.99)));
        l.max_ms = Some(ms(all.max()));
    }
    l
}

fn job_name(k: usize) -> String {
    format!("worker-{k}.job.json")
}
fn progress_name(k: usize) -> String {
    format!("worker-{k}.progress.json")
}
fn part_name(k: usize) -> String {
    format!("worker-{k}.part.json")
}
/// Written by the coordinator to stop every worker early (an abort on a failed threshold).
const STOP: &str = "stop.json";

/// How late after the shared start a worker may begin before the run is invalid.
pub const START_SLACK_MS: u64 = 2000;

/// How long after the shared start a worker that has written nothing counts as never started.
const SILENT_MS: u64 = START_SLACK_MS + 10_000;

/// A worker (`flow load-worker JOB`, JOB a path or an `s3://` URL): wait for the shared
/// start, run the share, write progress once a second and the part at the end; stop early
/// when the coordinator writes its stop. It stops by itself at the job's `stop_by_ms`
/// whatever happens (a coordinator killed with -9 leaves no worker running past the run's end).
pub async fn work(job_ref: &str) -> Result<(), Error> {
    let unusable = |e: PlaceError| Error::Settings(e.to_string());
    let (place, name) = Place::of_job(job_ref).await.map_err(unusable)?;
    let text =
        place.get(&name).await.map_err(unusable)?.ok_or_else(|| Error::Settings(format!("{job_ref}: not found")))?;
    let job: Job = serde_json::from_slice(&text).map_err(|e| Error::Settings(format!("{job_ref}: {e}")))?;
    let settings = job.settings().map_err(|e| Error::Settings(e.to_string()))?;
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

    // Progress goes out and the stop is looked for off the run's ticker (a put to S3 may take
    // longer than a tick): the latest progress waits in a watch, the stop in a flag.
    let (tx, mut rx) = tokio::sync::watch::channel(None::<Vec<u8>>);
    let stop = Arc::new(AtomicBool::new(false));
    let pid = std::process::id();
    let reporter = {
        let (place, stop, k) = (place.clone(), stop.clone(), job.worker);
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let bytes = rx.borrow_and_update().clone();
                if let Some(b) = bytes {
                    if let Err(e) = place.put(&progress_name(k), b).await {
                        eprintln!("load-worker: {e}");
                    }
                }
                if let Ok(Some(_)) = place.get(STOP).await {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        })
    };
    let asked = stop.clone();
    let hook: super::Hook = Arc::new(move |_, live: &Live, corrected: &Histogram<u64>| {
        let progress = Progress { pid, live: *live, corrected: part::pack(corrected).unwrap_or_default() };
        if let Ok(b) = serde_json::to_vec(&progress) {
            let _ = tx.send(Some(b));
        }
        asked.load(Ordering::Relaxed)
    });
    let raw = super::run_raw(settings, hook).await?;
    reporter.abort();
    let part = Part::of(&raw).map_err(|e| Error::Generator(e.to_string()))?;
    let bytes = serde_json::to_vec(&part).map_err(|e| Error::Generator(e.to_string()))?;
    place.put(&part_name(job.worker), bytes).await.map_err(|e| Error::Generator(format!("writing its figures: {e}")))
}

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

/// The runner a spread names, its workers' logs (local) beside the place or in `scratch`.
async fn runner(spread: &Spread, place: &Place, scratch: &std::path::Path) -> Result<Box<dyn Runner>, Error> {
    Ok(match &spread.runner {
        LoadRunner::Local => Box::new(local::Local::new(match place {
            Place::Dir(d) => d.clone(),
            Place::S3 { .. } => scratch.to_path_buf(),
        })?),
        LoadRunner::Ecs(e) => Box::new(ecs::Ecs::new(e).await?),
        LoadRunner::Kubernetes(k) => Box::new(kube::Kube::new(k, place.region())),
    })
}

/// Run `s` spread as `spread` says, and report the workers' merged figures. Each worker's
/// progress feeds the live line (percentiles from their added histograms); a worker that
/// dies, never starts or writes no figures makes the run invalid, by name. With
/// `abort_on_fail`, a failing success or error threshold on the merged figures stops every
/// worker; Ctrl-C stops them all and ends the run with nothing measured.
pub async fn coordinate(
    s: Settings,
    spread: &Spread,
    on_tick: Arc<dyn Fn(Duration, Live) + Send + Sync>,
) -> Result<super::Report, Error> {
    let gen = Error::Generator;
    spread.check()?;
    let n = spread.workers;
    let scratch = std::env::temp_dir().join(format!("flow-load-{}-{}", std::process::id(), crate::clock::system_ms()));
    let place = match &spread.place {
        Some(at) => Place::open(at).await.map_err(|e| Error::Settings(e.to_string()))?,
        None => Place::open(&scratch.display().to_string()).await.map_err(|e| gen(e.to_string()))?,
    };
    // Ctrl-C (and a TERM) from here on stops every worker wherever it runs: listened for
    // before any is started.
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).map_err(|e| gen(format!("listening for Ctrl-C: {e}")))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| gen(format!("listening for TERM: {e}")))?;
    let mut runner = runner(spread, &place, &scratch).await?;
    // Every worker starts at one time, late enough for all to be up; each stops by itself at
    // the run's end plus the request timeout and a grace.
    let start_at =
        crate::clock::system_ms() + spread.lead.unwrap_or_else(|| lead(&spread.runner, n)).as_millis() as u64;
    let stop_by = start_at + (s.duration.as_millis() + s.timeout.as_millis()) as u64 + 10_000;
    let mut jobs = Vec::new();
    for k in 0..n {
        let text = serde_json::to_vec_pretty(&Job::new(&s, n, k, start_at, stop_by)).map_err(|e| gen(e.to_string()))?;
        place.put(&job_name(k), text).await.map_err(|e| Error::Runner(e.to_string()))?;
        jobs.push(place.at(&job_name(k)));
    }
    if let Err(e) = runner.start(&jobs, stop_by).await {
        runner.stop().await;
        return Err(e);
    }

    let mut seen: Vec<Seen> = (0..n).map(|_| Seen::Running { exited: false }).collect();
    let mut progress: Vec<Option<(Live, Histogram<u64>)>> = vec![None; n];
    let mut stopping = false;
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        let interrupted = tokio::select! {
            _ = every.tick() => false,
            _ = int.recv() => true,
            _ = term.recv() => true,
        };
        if interrupted {
            runner.stop().await;
            if spread.place.is_none() {
                place.remove();
            }
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(Error::Cancelled(format!("stopped: the {n} workers were stopped and nothing was judged")));
        }
        for (k, e) in runner.poll().await {
            match (e, &mut seen[k]) {
                (Ended::Done, Seen::Running { exited }) => *exited = true,
                (Ended::Failed(why), s @ Seen::Running { .. }) => *s = Seen::Failed(why),
                _ => {}
            }
        }
        let now = crate::clock::system_ms();
        for k in 0..n {
            let Seen::Running { exited } = seen[k] else { continue };
            match place.get(&part_name(k)).await {
                Ok(Some(b)) => {
                    let read = serde_json::from_slice::<Part>(&b).map_err(PartError::from).and_then(|p| p.raw());
                    seen[k] = match read {
                        Ok(raw) => Seen::Measured(Box::new(raw)),
                        Err(e) => Seen::Failed(format!("wrote figures that cannot be read: {e}")),
                    };
                    continue;
                }
                Ok(None) if exited => {
                    seen[k] = Seen::Failed("ended without writing its figures".into());
                    continue;
                }
                _ => {}
            }
            if let Ok(Some(b)) = place.get(&progress_name(k)).await {
                if let Ok(p) = serde_json::from_slice::<Progress>(&b) {
                    let h = part::unpack(&p.corrected).unwrap_or_else(|_| super::hist());
                    progress[k] = Some((p.live, h));
                }
            }
            if progress[k].is_none() && now > start_at + SILENT_MS {
                seen[k] = Seen::Failed(format!(
                    "never started: nothing from it {} s after the shared start",
                    SILENT_MS / 1000
                ));
            }
        }
        let reported: Vec<(Live, Histogram<u64>)> = progress.iter().flatten().cloned().collect();
        let live = live_sum(&reported);
        if now >= start_at {
            on_tick(Duration::from_millis(now - start_at), live);
        }
        let warm = now > start_at + s.warmup.as_millis() as u64;
        if s.abort_on_fail && !stopping && warm && super::failing_now(&s.thresholds, &live) {
            stopping = true;
            let _ = place.put(STOP, b"{}".to_vec()).await;
        }
        if !seen.iter().any(|s| matches!(s, Seen::Running { .. })) {
            break;
        }
        if now > stop_by + 2000 {
            for s in seen.iter_mut().filter(|s| matches!(s, Seen::Running { .. })) {
                *s = Seen::Failed("was still running after the run's end and its grace, and was stopped".into());
            }
            break;
        }
    }
    runner.stop().await;

    // Each worker's own figures, then their sum.
    let mut merged: Option<Raw> = None;
    let mut figures = Vec::new();
    let mut failures = Vec::new();
    for (k, state) in seen.into_iter().enumerate() {
        let name = format!("worker {} of {n} ({})", k + 1, runner.which(k));
        let share = share(&s, n, k);
        let raw = match state {
            Seen::Measured(raw) => *raw,
            unmeasured => {
                let why = match unmeasured {
                    Seen::Failed(why) => why,
                    _ => "wrote no figures".to_string(),
                };
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
        // A worker stopped by an abort sent less than its schedule: that is the abort, not it.
        if let (Some(r), false) = (&own.invalid_reason, stopping) {
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
            behind: !own.valid && !stopping,
            failed: None,
        });
        merged = Some(match merged {
            None => raw,
            Some(m) => add(m, &raw),
        });
    }
    if spread.place.is_none() {
        place.remove();
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let Some(merged) = merged else {
        return Err(gen(format!("no worker measured anything: {}", failures.join("; "))));
    };
    let mut report = super::report(&s, merged);
    report.config["workers"] = serde_json::json!(n);
    report.config["runner"] = serde_json::json!(runner.kind());
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

    /// The live line's percentiles are those of all workers' samples together, not the
    /// slowest worker's: one fast worker and one slow one give a p50 between them.
    #[test]
    fn live_percentiles_come_from_the_added_histograms() {
        let mut fast = crate::load::hist();
        let mut slow = crate::load::hist();
        let mut all = crate::load::hist();
        for i in 0..1000u64 {
            let _ = fast.record(1_000 + i);
            let _ = slow.record(100_000 + i * 10);
            let _ = all.record(1_000 + i);
            let _ = all.record(100_000 + i * 10);
        }
        let live = |h: &Histogram<u64>| Live {
            measured: h.len(),
            completed: h.len(),
            ok: h.len(),
            mean_ms: Some(h.mean() / 1000.0),
            ..Live::default()
        };
        let l = live_sum(&[(live(&fast), fast.clone()), (live(&slow), slow.clone())]);
        assert_eq!(l.measured, 2000);
        assert_eq!(l.p50_ms, Some(all.value_at_quantile(0.5) as f64 / 1000.0));
        assert_eq!(l.p99_ms, Some(all.value_at_quantile(0.99) as f64 / 1000.0));
        assert!(l.p50_ms.unwrap() < slow.value_at_quantile(0.5) as f64 / 1000.0);
    }

    #[test]
    fn remote_runners_need_an_s3_place_and_ecs_a_subnet() {
        let ecs = LoadRunner::Ecs(crate::domain::catalogue::EcsRunner {
            cluster: "c".into(),
            task_definition: "t".into(),
            subnets: vec![],
            security_groups: vec![],
            assign_public_ip: false,
            container: None,
        });
        let mut s = Spread { workers: 2, runner: ecs, place: Some("s3://b/p".into()), lead: None };
        assert!(s.check().unwrap_err().to_string().contains("at least one subnet"));
        s.runner = LoadRunner::Kubernetes(crate::domain::catalogue::KubernetesRunner {
            image: "i".into(),
            namespace: None,
            context: None,
            service_account: None,
            kubeconfig: None,
        });
        assert!(s.check().is_ok());
        s.place = Some("/tmp/x".into());
        assert!(s.check().unwrap_err().to_string().contains("s3://BUCKET/PREFIX"));
        assert!(Spread::local(2).check().is_ok());
    }
}
