//! The state store: sled on disk, one directory (`state/` by default).
//!
//! Layout: tree `runbooks` (name -> [`RunbookMeta`]), per runbook a tree `journal/<name>`
//! (big-endian seq -> [`Event`], append-only) and a tree `plans/<name>` (big-endian version ->
//! [`Plan`]). A plan version is written before the `plan_recorded` event that makes it current,
//! so a crash between the two leaves an orphan version nobody reads.
//!
//! A store is held open only for a short read-modify-write: every command opens, works, flushes
//! and closes, and retries for a while when another process holds sled's file lock. That is what
//! lets `flow approve` write while `flow run --wait` is polling.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::domain::plan::Plan;
use crate::domain::runbook::{Body, Event};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("state store {path} is busy (another flow process holds it) and stayed busy for {waited_ms} ms")]
    Busy { path: PathBuf, waited_ms: u64 },
    #[error("state store {path}: {source}")]
    Sled { path: PathBuf, source: sled::Error },
    #[error("state store {path}: corrupt record in {tree}: {why}")]
    Corrupt { path: PathBuf, tree: String, why: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunbookMeta {
    pub name: String,
    /// The workflow file `flow run` reads.
    pub workflow: PathBuf,
    pub spec: String,
    pub created_at: String,
}

pub struct Store {
    // Field order matters: the database closes before the lock is released.
    db: sled::Db,
    path: PathBuf,
    _lock: std::fs::File,
}

fn lock_wait() -> Duration {
    let ms = std::env::var("FLOW_LOCK_TIMEOUT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(15_000);
    Duration::from_millis(ms)
}

fn is_lock_error(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock"),
        _ => false,
    }
}

impl Store {
    /// Open (creating it if needed), waiting while another process holds the store.
    ///
    /// flow's own lock (`flow.lock`) is taken first and held for the whole session, so that
    /// only one flow process is ever inside sled. Under it, a snapshot file sled left half
    /// written when a process was killed (`snap.*.generating`: sled writes, fsyncs, then
    /// renames) is removed before opening; sled 0.34 would otherwise refuse to open
    /// (spacejam/sled#1527). The log stays authoritative: sled replays it from the previous
    /// complete snapshot.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let start = Instant::now();
        let limit = lock_wait();
        let mut pause = Duration::from_millis(2);
        let busy =
            |start: Instant| Error::Busy { path: path.to_path_buf(), waited_ms: start.elapsed().as_millis() as u64 };
        let io = |e: std::io::Error| Error::Sled { path: path.to_path_buf(), source: sled::Error::Io(e) };
        std::fs::create_dir_all(path).map_err(io)?;
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join("flow.lock"))
            .map_err(io)?;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < limit => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(busy(start)),
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        for entry in std::fs::read_dir(path).map_err(io)?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("snap.") && name.ends_with(".generating") {
                tracing::warn!("removing {name}, a snapshot an interrupted flow process left half written");
                std::fs::remove_file(entry.path()).map_err(io)?;
            }
        }
        let mut pause = Duration::from_millis(2);
        loop {
            match sled::Config::new().path(path).flush_every_ms(None).open() {
                Ok(db) => return Ok(Store { db, path: path.to_path_buf(), _lock: lock }),
                // A store this process just closed may hold sled's own lock a moment longer.
                Err(e) if is_lock_error(&e) => {
                    if start.elapsed() >= limit {
                        return Err(busy(start));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(source) => return Err(Error::Sled { path: path.to_path_buf(), source }),
            }
        }
    }

    fn err(&self, source: sled::Error) -> Error {
        Error::Sled { path: self.path.clone(), source }
    }

    fn corrupt(&self, tree: &str, why: impl ToString) -> Error {
        Error::Corrupt { path: self.path.clone(), tree: tree.into(), why: why.to_string() }
    }

    fn tree(&self, name: &str) -> Result<sled::Tree, Error> {
        self.db.open_tree(name).map_err(|e| self.err(e))
    }

    /// The key after a sequence tree's last one (1 for an empty tree).
    fn next_seq(&self, t: &sled::Tree, name: &str) -> Result<u64, Error> {
        match t.last().map_err(|e| self.err(e))? {
            Some((k, _)) => {
                Ok(u64::from_be_bytes(k.as_ref().try_into().map_err(|_| self.corrupt(name, "bad key"))?) + 1)
            }
            None => Ok(1),
        }
    }

    /// Every value of a tree, in key order.
    fn all<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Vec<T>, Error> {
        let t = self.tree(name)?;
        t.iter()
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.err(e))?;
                serde_json::from_slice(&v).map_err(|e| self.corrupt(name, e))
            })
            .collect()
    }

    pub fn runbooks(&self) -> Result<Vec<RunbookMeta>, Error> {
        self.all("runbooks")
    }

    pub fn meta(&self, name: &str) -> Result<Option<RunbookMeta>, Error> {
        let t = self.tree("runbooks")?;
        match t.get(name).map_err(|e| self.err(e))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(|e| self.corrupt("runbooks", e))?)),
            None => Ok(None),
        }
    }

    pub fn put_meta(&self, meta: &RunbookMeta) -> Result<(), Error> {
        let t = self.tree("runbooks")?;
        t.insert(meta.name.as_bytes(), serde_json::to_vec(meta).expect("meta serializes")).map_err(|e| self.err(e))?;
        self.flush()
    }

    pub fn put_plan(&self, runbook: &str, version: u32, plan: &Plan) -> Result<(), Error> {
        let t = self.tree(&format!("plans/{runbook}"))?;
        t.insert(version.to_be_bytes(), serde_json::to_vec(plan).expect("plan serializes")).map_err(|e| self.err(e))?;
        self.flush()
    }

    pub fn plan(&self, runbook: &str, version: u32) -> Result<Option<Plan>, Error> {
        let name = format!("plans/{runbook}");
        let t = self.tree(&name)?;
        match t.get(version.to_be_bytes()).map_err(|e| self.err(e))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(|e| self.corrupt(&name, e))?)),
            None => Ok(None),
        }
    }

    /// Append one event and make it durable before returning.
    pub fn append(&self, runbook: &str, actor: &str, at: String, body: Body) -> Result<Event, Error> {
        let name = format!("journal/{runbook}");
        let t = self.tree(&name)?;
        let seq = self.next_seq(&t, &name)?;
        let event = Event { seq, at, actor: actor.into(), body };
        t.insert(seq.to_be_bytes(), serde_json::to_vec(&event).expect("event serializes")).map_err(|e| self.err(e))?;
        self.flush()?;
        Ok(event)
    }

    pub fn events(&self, runbook: &str) -> Result<Vec<Event>, Error> {
        self.all(&format!("journal/{runbook}"))
    }

    /// A plan an LLM planner produced for this cache key, if any.
    pub fn cached_plan(&self, key: &str) -> Result<Option<Plan>, Error> {
        let t = self.tree("plan-cache")?;
        match t.get(key).map_err(|e| self.err(e))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(|e| self.corrupt("plan-cache", e))?)),
            None => Ok(None),
        }
    }

    pub fn cache_plan(&self, key: &str, plan: &Plan) -> Result<(), Error> {
        let t = self.tree("plan-cache")?;
        t.insert(key, serde_json::to_vec(plan).expect("plan serializes")).map_err(|e| self.err(e))?;
        self.flush()
    }

    /// Keep one LLM exchange (request, answer, violations) for audit.
    pub fn append_exchange(&self, runbook: &str, exchange: &crate::planner::llm::Exchange) -> Result<(), Error> {
        let name = format!("llm/{runbook}");
        let t = self.tree(&name)?;
        let seq = self.next_seq(&t, &name)?;
        t.insert(seq.to_be_bytes(), serde_json::to_vec(exchange).expect("exchange serializes"))
            .map_err(|e| self.err(e))?;
        self.flush()
    }

    pub fn exchanges(&self, runbook: &str) -> Result<Vec<crate::planner::llm::Exchange>, Error> {
        self.all(&format!("llm/{runbook}"))
    }

    pub fn flush(&self) -> Result<(), Error> {
        self.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }
}
