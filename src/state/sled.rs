//! The local state store: sled on disk, one directory (`state/` by default), behind the
//! [`crate::state`] traits.
//!
//! Layout: tree `runbooks` (name -> [`RunbookMeta`]), per runbook a tree `journal/<name>`
//! (big-endian seq -> [`Event`], append-only), a tree `plans/<name>` (big-endian version ->
//! [`Plan`]), and an entry in `views` (the last snapshot of its projection). Trees `plan-cache`
//! and `llm/<name>` hold the planners' cache and audit trail. A plan version is written before
//! the `plan_recorded` event that makes it current, so a crash between the two leaves an
//! orphan version nobody reads.
//!
//! **Sessions.** sled allows one process at a time, so every command opens a session, works,
//! flushes and closes. Two file locks beside sled's files make that fair: a process takes
//! `flow.queue`, then `flow.lock` (the store), then lets go of `flow.queue`. A session held
//! across many transitions (the engine's, while it is busy) asks [`Journal::contended`] after
//! each commit: someone holding `flow.queue` is waiting, so it closes, and its next open queues
//! behind them. That is what lets `flow approve` write while `flow run` works or `--wait` polls.
//!
//! **Appends** go in one atomic sled batch, after checking that the batch starts at the
//! journal's next sequence number (under `flow.lock` no other process can write meanwhile), and
//! are flushed to disk before [`Journal::append`] returns.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::domain::event::Event;
use crate::domain::plan::Plan;
use crate::domain::runbook::RunbookView;
use crate::state::{check_append, Backend, Error, Journal, RunLock, RunbookMeta, Snapshot};

/// The sled backend rooted at a directory.
pub struct Sled {
    path: PathBuf,
    /// May opening it create the store? Only for the commands that start one (`flow plan`, an
    /// import's destination): a mistyped `--state` never leaves an empty store behind.
    create: bool,
}

impl Sled {
    /// A store that is opened if it is there, and created if it is not.
    pub fn new(path: impl Into<PathBuf>) -> Sled {
        Sled { path: path.into(), create: true }
    }

    /// A store that must already be there.
    pub fn existing(path: impl Into<PathBuf>) -> Sled {
        Sled { path: path.into(), create: false }
    }
}

/// Is there a store (sled's files) at `path`?
fn is_store(path: &Path) -> bool {
    path.join("conf").is_file() || path.join("db").is_file()
}

/// sled's error, for people: its corruption report is a Debug dump (file offsets, backtraces).
fn sled_error(path: &Path, e: sled::Error) -> Error {
    match e {
        sled::Error::Corruption { .. } => Error::Backend {
            path: path.display().to_string(),
            detail: "its files are damaged (the database reports corruption); restore the directory from a backup, \
                     or move it aside: a runbook's journal lives only there, so keep the damaged copy for recovery"
                .into(),
        },
        other => io_error(path, other),
    }
}

/// An open sled session.
pub struct Session {
    // Field order matters: the database closes before the lock is released.
    db: sled::Db,
    path: PathBuf,
    _lock: File,
    queue: File,
}

/// sled's page cache (its default is 1 GiB): a command reads a runbook's tail and snapshot,
/// not the whole store.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

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

fn io_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Backend { path: path.display().to_string(), detail: e.to_string() }
}

/// Take an exclusive file lock, polling until `deadline`.
fn lock_until(f: &File, path: &Path, start: Instant, limit: Duration) -> Result<(), Error> {
    let mut pause = Duration::from_millis(1);
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < limit => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Busy {
                    path: path.display().to_string(),
                    waited_ms: start.elapsed().as_millis() as u64,
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(path, e)),
        }
    }
}

fn lock_file(path: &Path) -> Result<File, Error> {
    File::options().create(true).truncate(false).write(true).open(path).map_err(|e| io_error(path, e))
}

impl Session {
    /// Open (creating it if needed), waiting while another process holds the store.
    ///
    /// Under `flow.lock`, a snapshot file sled left half written when a process was killed
    /// (`snap.*.generating`: sled writes, fsyncs, then renames) is removed before opening; sled
    /// 0.34 would otherwise refuse to open (spacejam/sled#1527). The log stays authoritative:
    /// sled replays it from the previous complete snapshot.
    pub fn open(path: &Path, create: bool) -> Result<Session, Error> {
        let start = Instant::now();
        let limit = lock_wait();
        if path.exists() && !path.is_dir() {
            return Err(io_error(path, "not a directory: a state store is a directory (or s3://BUCKET/PREFIX)"));
        }
        if !create && !is_store(path) {
            return Err(Error::NoStore { path: path.display().to_string() });
        }
        std::fs::create_dir_all(path).map_err(|e| io_error(path, e))?;
        let queue = lock_file(&path.join("flow.queue"))?;
        let lock = lock_file(&path.join("flow.lock"))?;
        lock_until(&queue, path, start, limit)?;
        let locked = lock_until(&lock, path, start, limit);
        let _ = queue.unlock();
        locked?;
        for entry in std::fs::read_dir(path).map_err(|e| io_error(path, e))?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("snap.") && name.ends_with(".generating") {
                tracing::warn!("removing {name}, a snapshot an interrupted flow process left half written");
                std::fs::remove_file(entry.path()).map_err(|e| io_error(path, e))?;
            }
        }
        let mut pause = Duration::from_millis(2);
        loop {
            match sled::Config::new().path(path).flush_every_ms(None).cache_capacity(CACHE_BYTES).open() {
                Ok(db) => return Ok(Session { db, path: path.to_path_buf(), _lock: lock, queue }),
                // A store this process just closed may hold sled's own lock a moment longer.
                Err(e) if is_lock_error(&e) => {
                    if start.elapsed() >= limit {
                        return Err(Error::Busy {
                            path: path.display().to_string(),
                            waited_ms: start.elapsed().as_millis() as u64,
                        });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(sled_error(path, e)),
            }
        }
    }

    fn err(&self, e: sled::Error) -> Error {
        sled_error(&self.path, e)
    }

    fn corrupt(&self, tree: &str, why: impl ToString) -> Error {
        Error::Corrupt { path: self.path.display().to_string(), tree: tree.into(), why: why.to_string() }
    }

    fn tree(&self, name: &str) -> Result<sled::Tree, Error> {
        self.db.open_tree(name).map_err(|e| self.err(e))
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, tree: &str, bytes: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(bytes).map_err(|e| self.corrupt(tree, e))
    }

    fn encode<T: serde::Serialize>(&self, tree: &str, v: &T) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(v).map_err(|e| self.corrupt(tree, e))
    }

    fn get<T: serde::de::DeserializeOwned>(&self, tree: &str, key: &[u8]) -> Result<Option<T>, Error> {
        match self.tree(tree)?.get(key).map_err(|e| self.err(e))? {
            Some(v) => Ok(Some(self.decode(tree, &v)?)),
            None => Ok(None),
        }
    }

    fn put<T: serde::Serialize>(&self, tree: &str, key: &[u8], v: &T) -> Result<(), Error> {
        let bytes = self.encode(tree, v)?;
        self.tree(tree)?.insert(key, bytes).map_err(|e| self.err(e))?;
        self.flush()
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

    /// Every value of a tree from `from` on, in key order.
    fn scan<T: serde::de::DeserializeOwned>(&self, name: &str, from: &[u8]) -> Result<Vec<T>, Error> {
        let t = self.tree(name)?;
        t.range(from..)
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.err(e))?;
                self.decode(name, &v)
            })
            .collect()
    }

    fn flush(&self) -> Result<(), Error> {
        self.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }
}

impl Journal for Session {
    fn runbooks(&self) -> Result<Vec<RunbookMeta>, Error> {
        self.scan("runbooks", b"")
    }

    fn meta(&self, name: &str) -> Result<Option<RunbookMeta>, Error> {
        self.get("runbooks", name.as_bytes())
    }

    fn put_meta(&mut self, meta: &RunbookMeta) -> Result<(), Error> {
        self.put("runbooks", meta.name.as_bytes(), meta)
    }

    fn plan(&self, runbook: &str, version: u32) -> Result<Option<Plan>, Error> {
        self.get(&format!("plans/{runbook}"), &version.to_be_bytes())
    }

    fn put_plan(&mut self, runbook: &str, version: u32, plan: &Plan) -> Result<(), Error> {
        self.put(&format!("plans/{runbook}"), &version.to_be_bytes(), plan)
    }

    fn events_after(&self, runbook: &str, after: u64) -> Result<Vec<Event>, Error> {
        self.scan(&format!("journal/{runbook}"), &(after + 1).to_be_bytes())
    }

    fn append(&mut self, runbook: &str, events: &[Event]) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        let name = format!("journal/{runbook}");
        let t = self.tree(&name)?;
        check_append(runbook, self.next_seq(&t, &name)?, events)?;
        let mut batch = sled::Batch::default();
        for e in events {
            batch.insert(&e.seq.to_be_bytes(), self.encode(&name, e)?);
        }
        t.apply_batch(batch).map_err(|e| self.err(e))?;
        self.flush()
    }

    fn snapshot(&self, runbook: &str) -> Result<Option<RunbookView>, Error> {
        Ok(self.get::<Snapshot>("views", runbook.as_bytes()).ok().flatten().and_then(Snapshot::current))
    }

    fn put_snapshot(&mut self, runbook: &str, view: &RunbookView) -> Result<(), Error> {
        self.put("views", runbook.as_bytes(), &Snapshot::of(view))
    }

    fn cached_plan(&self, key: &str) -> Result<Option<Plan>, Error> {
        self.get("plan-cache", key.as_bytes())
    }

    fn cache_plan(&mut self, key: &str, plan: &Plan) -> Result<(), Error> {
        self.put("plan-cache", key.as_bytes(), plan)
    }

    fn cached_answer(&self, key: &str) -> Result<Option<Value>, Error> {
        self.get("answer-cache", key.as_bytes())
    }

    fn cache_answer(&mut self, key: &str, answer: &Value) -> Result<(), Error> {
        self.put("answer-cache", key.as_bytes(), answer)
    }

    fn append_exchange(&mut self, runbook: &str, exchange: &Value) -> Result<(), Error> {
        let name = format!("llm/{runbook}");
        let t = self.tree(&name)?;
        let seq = self.next_seq(&t, &name)?;
        self.put(&name, &seq.to_be_bytes(), exchange)
    }

    fn exchanges(&self, runbook: &str) -> Result<Vec<Value>, Error> {
        self.scan(&format!("llm/{runbook}"), b"")
    }

    fn contended(&self) -> bool {
        match self.queue.try_lock() {
            Ok(()) => {
                let _ = self.queue.unlock();
                false
            }
            Err(_) => true,
        }
    }
}

struct FileLock(#[allow(dead_code)] File);

impl Backend for Sled {
    fn open(&self) -> Result<Box<dyn Journal>, Error> {
        Ok(Box::new(Session::open(&self.path, self.create)?))
    }

    fn run_lock(&self, runbook: &str) -> Result<RunLock, Error> {
        let dir = self.path.join("locks");
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let path = dir.join(format!("{runbook}.lock"));
        let f = lock_file(&path)?;
        match f.try_lock() {
            Ok(()) => Ok(RunLock::new(FileLock(f))),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked { runbook: runbook.into() }),
            Err(std::fs::TryLockError::Error(e)) => Err(io_error(&path, e)),
        }
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        crate::state::conformance::check(&|| Box::new(Sled::new(dir.path())), "sled");
    }

    #[test]
    fn a_waiting_process_is_seen_as_contention() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sled::new(dir.path());
        let held = s.open().unwrap();
        // Another process (here: another file handle) queues for the store.
        let queue = lock_file(&dir.path().join("flow.queue")).unwrap();
        queue.try_lock().unwrap();
        assert!(held.contended());
        queue.unlock().unwrap();
        assert!(!held.contended());
    }
}
