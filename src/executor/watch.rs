//! Watching a service during a drill: probes on a fixed schedule, each recorded at its
//! *intended* time (so a slow answer cannot shift the timeline) and with its own timeout,
//! independent of the interval (probes overlap: a hung service counts as down once a probe's
//! timeout passes; a slow one that answers within it is up). Each probe also records when its
//! answer arrived. `http(s)://` probes want a 2xx or 3xx
//! answer on a fresh connection; `tcp://host:port` probes want a connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Error, Result};
use crate::domain::drill::Probe;

#[derive(Clone)]
enum Target {
    Http(reqwest::Client, String),
    Tcp(String),
}

impl Target {
    fn parse(url: &str, timeout: Duration) -> Result<Target> {
        if let Some(addr) = url.strip_prefix("tcp://") {
            return Ok(Target::Tcp(addr.trim_end_matches('/').to_string()));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::Step(format!("probe `{url}`: expected an http(s):// URL or tcp://host:port")));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Step(format!("HTTP client: {e}")))?;
        Ok(Target::Http(client, url.to_string()))
    }

    async fn probe(&self, timeout: Duration) -> (bool, String) {
        match self {
            Target::Http(c, url) => match c.get(url).send().await {
                Ok(r) if r.status().is_success() || r.status().is_redirection() => {
                    (true, r.status().as_u16().to_string())
                }
                Ok(r) => (false, r.status().as_u16().to_string()),
                Err(e) if e.is_timeout() => (false, "timeout".into()),
                Err(e) if e.is_connect() => (false, "refused".into()),
                Err(_) => (false, "error".into()),
            },
            Target::Tcp(addr) => {
                match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr.as_str())).await {
                    Ok(Ok(_)) => (true, "connected".into()),
                    Ok(Err(_)) => (false, "refused".into()),
                    Err(_) => (false, "timeout".into()),
                }
            }
        }
    }
}

/// One probe now: (up, detail).
pub async fn probe_once(url: &str, timeout: Duration) -> Result<(bool, String)> {
    Ok(Target::parse(url, timeout)?.probe(timeout).await)
}

/// Probes running in the background from [`Watch::start`] until [`Watch::stop`].
pub struct Watch {
    started: Instant,
    results: Arc<Mutex<Vec<Probe>>>,
    scheduler: tokio::task::JoinHandle<JoinSet<()>>,
    stop: Arc<tokio::sync::Notify>,
}

impl Watch {
    /// Start probing `url` every `interval`, each probe timing out after `timeout`.
    pub fn start(url: &str, interval: Duration, timeout: Duration) -> Result<Watch> {
        let target = Target::parse(url, timeout)?;
        let results: Arc<Mutex<Vec<Probe>>> = Arc::default();
        let stop = Arc::new(tokio::sync::Notify::new());
        let started = Instant::now();
        let (r, s) = (results.clone(), stop.clone());
        let scheduler = tokio::spawn(async move {
            let mut probes = JoinSet::new();
            let mut tick = tokio::time::interval_at(started, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            loop {
                tokio::select! {
                    due = tick.tick() => {
                        let at_ms = due.duration_since(started).as_millis() as u64;
                        let (t, r) = (target.clone(), r.clone());
                        probes.spawn(async move {
                            let (up, detail) = t.probe(timeout).await;
                            let answered_ms = up.then(|| started.elapsed().as_millis() as u64);
                            r.lock().unwrap_or_else(|e| e.into_inner()).push(Probe { at_ms, up, answered_ms, detail });
                        });
                        while probes.try_join_next().is_some() {}
                    }
                    _ = s.notified() => return probes,
                }
            }
        });
        Ok(Watch { started, results, scheduler, stop })
    }

    /// Milliseconds since the probes started.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The probes answered so far, in schedule order.
    pub fn so_far(&self) -> Vec<Probe> {
        let mut v = self.results.lock().unwrap_or_else(|e| e.into_inner()).clone();
        v.sort_by_key(|p| p.at_ms);
        v
    }

    /// Wait until a probe due at or after `from_ms` has succeeded; when its answer arrived.
    pub async fn first_up_after(&self, from_ms: u64, poll: Duration) -> u64 {
        loop {
            if let Some(p) = self.so_far().into_iter().find(|p| p.at_ms >= from_ms && p.up) {
                return p.answered_ms.unwrap_or(p.at_ms);
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Stop scheduling, let the probes in flight answer (each within its timeout), and return
    /// every probe with the time the schedule stopped.
    pub async fn stop(self) -> (Vec<Probe>, u64) {
        let end_ms = self.now_ms();
        self.stop.notify_one();
        let Watch { results, scheduler, .. } = self;
        if let Ok(mut inflight) = scheduler.await {
            while inflight.join_next().await.is_some() {}
        }
        let mut v = results.lock().unwrap_or_else(|e| e.into_inner()).clone();
        v.sort_by_key(|p| p.at_ms);
        v.retain(|p| p.at_ms <= end_ms);
        (v, end_ms)
    }
}
