//! The state behind every command, as traits: a [`Backend`] opens [`Journal`] sessions, and
//! holds the one-`flow run`-per-runbook lock.
//!
//! A journal session keeps, per runbook, the registry entry ([`RunbookMeta`]), every plan
//! version, the append-only event log, a snapshot of the projection (so a reader folds only
//! the events after it), and the planners' cache and audit trail.
//!
//! **Appends are conditional**: [`Journal::append`] writes events `expected, expected+1, ...`
//! only if `expected` is the journal's next sequence number, else it fails with
//! [`Error::Conflict`] and writes nothing. So two writers can never both write event N: the
//! loser re-reads, decides again and retries. sled ([`crate::state::sled`]) enforces it under its
//! store lock; a shared backend can enforce it with a conditional put per event.
//!
//! The backends: [`sled`] (a local directory), [`s3`] (shared team state), and, in tests
//! only, [`memory`]. Each runs the [`conformance`] suite, so a new backend (DynamoDB,
//! Postgres) is a file here and a test line.

pub mod conformance;
#[cfg(test)]
pub mod memory;
pub mod s3;
pub mod sled;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::event::Event;
use crate::domain::plan::Plan;
use crate::domain::runbook::{RunbookView, PROJECTION_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("state store {path} is busy (another flow process holds it) and stayed busy for {waited_ms} ms")]
    Busy { path: String, waited_ms: u64 },
    #[error("state store {path}: {detail}")]
    Backend { path: String, detail: String },
    #[error("state store {path}: corrupt record in {tree}: {why}")]
    Corrupt { path: String, tree: String, why: String },
    /// Someone else appended first: event `expected` is taken (the journal is at `found`).
    #[error("runbook `{runbook}` moved on while this command worked: event {expected} was written by {} (the journal's next event is {found}); run the command again", by.as_deref().unwrap_or("another process"))]
    Conflict { runbook: String, expected: u64, found: u64, by: Option<String> },
    /// Another `flow run` holds the runbook.
    #[error("another `flow run` is working on runbook `{runbook}`; wait for it to finish")]
    Locked { runbook: String },
    /// There is no store where the command was pointed (and it may not make one).
    #[error("no runbook yet: there is no state store at {path} (`flow plan SPEC` creates one; --state or FLOW_STATE names another)")]
    NoStore { path: String },
    /// Another `flow run` holds the runbook's lease on the shared state.
    #[error("another `flow run` is working on runbook `{runbook}`: {holder} holds its lease until {until} (renewed while it runs; it lapses if that run dies)")]
    Leased { runbook: String, holder: String, until: String },
}

/// A runbook in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunbookMeta {
    pub name: String,
    /// The workflow file `flow run` reads.
    pub workflow: PathBuf,
    pub spec: String,
    pub created_at: String,
    /// The workflow file as last read, found valid and recorded: while its bytes and the plan
    /// version are unchanged, the file is not parsed and validated again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_read: Option<WorkflowRead>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRead {
    /// Digest of the file's bytes.
    pub digest: String,
    /// The plan version those bytes are.
    pub version: u32,
}

/// One open session on the state store.
pub trait Journal: Send {
    fn runbooks(&self) -> Result<Vec<RunbookMeta>, Error>;
    fn meta(&self, name: &str) -> Result<Option<RunbookMeta>, Error>;
    fn put_meta(&mut self, meta: &RunbookMeta) -> Result<(), Error>;

    fn plan(&self, runbook: &str, version: u32) -> Result<Option<Plan>, Error>;
    /// Written before the `plan_recorded` event that makes it current.
    fn put_plan(&mut self, runbook: &str, version: u32, plan: &Plan) -> Result<(), Error>;

    /// The events after `after`, in order (`after = 0`: all of them).
    fn events_after(&self, runbook: &str, after: u64) -> Result<Vec<Event>, Error>;
    /// Append `events` (numbered from `events[0].seq`, one by one) if and only if
    /// `events[0].seq` is the journal's next sequence number; durable when it returns.
    fn append(&mut self, runbook: &str, events: &[Event]) -> Result<(), Error>;

    /// The last snapshot of the projection (of [`PROJECTION_VERSION`]), if any.
    fn snapshot(&self, runbook: &str) -> Result<Option<RunbookView>, Error>;
    fn put_snapshot(&mut self, runbook: &str, view: &RunbookView) -> Result<(), Error>;

    fn cached_plan(&self, key: &str) -> Result<Option<Plan>, Error>;
    fn cache_plan(&mut self, key: &str, plan: &Plan) -> Result<(), Error>;
    /// A model's answer to another question (the requirements it read from a spec), by the
    /// question's digest, so the same question is not asked twice.
    fn cached_answer(&self, key: &str) -> Result<Option<Value>, Error>;
    fn cache_answer(&mut self, key: &str, answer: &Value) -> Result<(), Error>;
    /// One planner exchange (request, answer, violations), kept for audit.
    fn append_exchange(&mut self, runbook: &str, exchange: &Value) -> Result<(), Error>;
    fn exchanges(&self, runbook: &str) -> Result<Vec<Value>, Error>;

    /// Is another process waiting for this store? A session held across many transitions
    /// closes soon when it is.
    fn contended(&self) -> bool {
        false
    }
}

/// Holds a runbook's run lock for as long as it lives.
pub struct RunLock(#[allow(dead_code)] Box<dyn Send>);

impl RunLock {
    pub fn new(guard: impl Send + 'static) -> RunLock {
        RunLock(Box::new(guard))
    }
}

/// This machine's name, as events record it: `FLOW_HOST`, else `HOSTNAME`, else
/// /etc/hostname.
pub fn host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        ["FLOW_HOST", "HOSTNAME"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".into())
    })
}

/// Where state lives.
pub trait Backend: Send + Sync {
    /// Open a session, waiting a while for another process that holds the store.
    fn open(&self) -> Result<Box<dyn Journal>, Error>;
    /// Only one `flow run` per runbook at a time: [`Error::Locked`] while another holds it.
    fn run_lock(&self, runbook: &str) -> Result<RunLock, Error>;
    /// Where it is, for messages.
    fn describe(&self) -> String;
    /// Who holds the runbook's run lock, where the backend can tell (a shared store's lease).
    fn run_holder(&self, _runbook: &str) -> Result<Option<String>, Error> {
        Ok(None)
    }
    /// Who the person acting is, where the backend can tell (the AWS caller identity on S3);
    /// `None`: the OS user.
    fn identity(&self) -> Option<String> {
        None
    }
}

/// The current projection: the snapshot, if any, and the events after it.
pub fn project(j: &dyn Journal, runbook: &str) -> Result<RunbookView, Error> {
    let mut view = j.snapshot(runbook)?.unwrap_or_default();
    for e in j.events_after(runbook, view.last_seq)? {
        view.apply(&e);
    }
    Ok(view)
}

/// The snapshot record: the projection and the version of the fold that made it.
#[derive(Serialize, Deserialize)]
pub struct Snapshot {
    pub projection: u32,
    pub view: RunbookView,
}

impl Snapshot {
    pub fn of(view: &RunbookView) -> Snapshot {
        Snapshot { projection: PROJECTION_VERSION, view: view.clone() }
    }

    /// The view, if the fold that made it is this build's.
    pub fn current(self) -> Option<RunbookView> {
        (self.projection == PROJECTION_VERSION).then_some(self.view)
    }
}

/// Check a batch for [`Journal::append`] against the journal's next sequence number.
pub fn check_append(runbook: &str, next: u64, events: &[Event]) -> Result<(), Error> {
    let Some(first) = events.first() else { return Ok(()) };
    if first.seq != next {
        return Err(Error::Conflict { runbook: runbook.into(), expected: first.seq, found: next, by: None });
    }
    if events.windows(2).any(|w| w[1].seq != w[0].seq + 1) {
        return Err(Error::Backend {
            path: runbook.into(),
            detail: "a batch of events is not numbered one by one".into(),
        });
    }
    Ok(())
}
