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
//! loser re-reads, decides again and retries. sled ([`crate::store`]) enforces it under its
//! store lock; a shared backend can enforce it with a conditional put per event.
//!
//! [`Memory`] is a backend in memory, for the engine's own tests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

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

#[derive(Default)]
struct MemoryState {
    metas: BTreeMap<String, RunbookMeta>,
    plans: BTreeMap<(String, u32), Plan>,
    events: BTreeMap<String, Vec<Event>>,
    snapshots: BTreeMap<String, RunbookView>,
    cache: BTreeMap<String, Plan>,
    answers: BTreeMap<String, Value>,
    exchanges: BTreeMap<String, Vec<Value>>,
    locks: BTreeMap<String, ()>,
    /// Appends still allowed before the next one fails, for crash tests (`None`: no limit).
    appends_left: Option<usize>,
    /// Successful appends so far.
    appends: usize,
}

/// A backend in memory: sessions share one state; appends can be made to fail after a given
/// number, to stand for a process that dies right there.
#[derive(Clone, Default)]
pub struct Memory(Arc<Mutex<MemoryState>>);

impl Memory {
    pub fn new() -> Memory {
        Memory::default()
    }

    /// After `n` more successful appends, every append fails (as if the process died).
    pub fn fail_appends_after(&self, n: Option<usize>) {
        self.lock().appends_left = n;
    }

    /// Every event of a runbook.
    pub fn events(&self, runbook: &str) -> Vec<Event> {
        self.lock().events.get(runbook).cloned().unwrap_or_default()
    }

    /// How many appends have succeeded (each is one durable commit).
    pub fn appends(&self) -> usize {
        self.lock().appends
    }

    /// Another writer appends `body` as the journal's next event, now.
    pub fn append_next(&self, runbook: &str, actor: &str, body: crate::domain::event::Body) -> Event {
        let mut st = self.lock();
        let log = st.events.entry(runbook.to_string()).or_default();
        let seq = log.last().map_or(1, |e| e.seq + 1);
        let e = Event { seq, at: "t".into(), actor: actor.into(), as_name: None, host: String::new(), body };
        log.push(e.clone());
        st.appends += 1;
        e
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct MemorySession(Memory);

impl Journal for MemorySession {
    fn runbooks(&self) -> Result<Vec<RunbookMeta>, Error> {
        Ok(self.0.lock().metas.values().cloned().collect())
    }
    fn meta(&self, name: &str) -> Result<Option<RunbookMeta>, Error> {
        Ok(self.0.lock().metas.get(name).cloned())
    }
    fn put_meta(&mut self, meta: &RunbookMeta) -> Result<(), Error> {
        self.0.lock().metas.insert(meta.name.clone(), meta.clone());
        Ok(())
    }
    fn plan(&self, runbook: &str, version: u32) -> Result<Option<Plan>, Error> {
        Ok(self.0.lock().plans.get(&(runbook.to_string(), version)).cloned())
    }
    fn put_plan(&mut self, runbook: &str, version: u32, plan: &Plan) -> Result<(), Error> {
        self.0.lock().plans.insert((runbook.to_string(), version), plan.clone());
        Ok(())
    }
    fn events_after(&self, runbook: &str, after: u64) -> Result<Vec<Event>, Error> {
        let st = self.0.lock();
        Ok(st.events.get(runbook).map(|v| v.iter().filter(|e| e.seq > after).cloned().collect()).unwrap_or_default())
    }
    fn append(&mut self, runbook: &str, events: &[Event]) -> Result<(), Error> {
        let mut st = self.0.lock();
        if let Some(left) = st.appends_left.as_mut() {
            if *left == 0 {
                return Err(Error::Backend { path: "memory".into(), detail: "the process died here".into() });
            }
            *left -= 1;
        }
        let log = st.events.entry(runbook.to_string()).or_default();
        let next = log.last().map_or(1, |e| e.seq + 1);
        check_append(runbook, next, events)?;
        log.extend_from_slice(events);
        st.appends += 1;
        Ok(())
    }
    fn snapshot(&self, runbook: &str) -> Result<Option<RunbookView>, Error> {
        Ok(self.0.lock().snapshots.get(runbook).cloned())
    }
    fn put_snapshot(&mut self, runbook: &str, view: &RunbookView) -> Result<(), Error> {
        self.0.lock().snapshots.insert(runbook.to_string(), view.clone());
        Ok(())
    }
    fn cached_plan(&self, key: &str) -> Result<Option<Plan>, Error> {
        Ok(self.0.lock().cache.get(key).cloned())
    }
    fn cache_plan(&mut self, key: &str, plan: &Plan) -> Result<(), Error> {
        self.0.lock().cache.insert(key.to_string(), plan.clone());
        Ok(())
    }
    fn cached_answer(&self, key: &str) -> Result<Option<Value>, Error> {
        Ok(self.0.lock().answers.get(key).cloned())
    }
    fn cache_answer(&mut self, key: &str, answer: &Value) -> Result<(), Error> {
        self.0.lock().answers.insert(key.to_string(), answer.clone());
        Ok(())
    }
    fn append_exchange(&mut self, runbook: &str, exchange: &Value) -> Result<(), Error> {
        self.0.lock().exchanges.entry(runbook.to_string()).or_default().push(exchange.clone());
        Ok(())
    }
    fn exchanges(&self, runbook: &str) -> Result<Vec<Value>, Error> {
        Ok(self.0.lock().exchanges.get(runbook).cloned().unwrap_or_default())
    }
}

struct MemoryLock(Memory, String);

impl Drop for MemoryLock {
    fn drop(&mut self) {
        self.0.lock().locks.remove(&self.1);
    }
}

impl Backend for Memory {
    fn open(&self) -> Result<Box<dyn Journal>, Error> {
        Ok(Box::new(MemorySession(self.clone())))
    }
    fn run_lock(&self, runbook: &str) -> Result<RunLock, Error> {
        let mut st = self.lock();
        if st.locks.contains_key(runbook) {
            return Err(Error::Locked { runbook: runbook.into() });
        }
        st.locks.insert(runbook.into(), ());
        Ok(RunLock::new(MemoryLock(self.clone(), runbook.into())))
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::Body;

    fn ev(seq: u64) -> Event {
        Event {
            seq,
            at: "t".into(),
            actor: "a".into(),
            as_name: None,
            host: String::new(),
            body: Body::RunStarted { pid: 1 },
        }
    }

    #[test]
    fn appends_are_conditional_on_the_next_sequence_number() {
        let m = Memory::new();
        let mut a = m.open().unwrap();
        let mut b = m.open().unwrap();
        a.append("rb", &[ev(1), ev(2)]).unwrap();
        // b decided on a stale view: event 2 is taken.
        match b.append("rb", &[ev(2)]) {
            Err(Error::Conflict { expected: 2, found: 3, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(b.append("rb", &[ev(3), ev(5)]), Err(Error::Backend { .. })));
        b.append("rb", &[ev(3)]).unwrap();
        assert_eq!(m.events("rb").iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(a.events_after("rb", 1).unwrap().len(), 2);
    }

    #[test]
    fn one_run_lock_per_runbook() {
        let m = Memory::new();
        let held = m.run_lock("rb").unwrap();
        assert!(matches!(m.run_lock("rb"), Err(Error::Locked { .. })));
        assert!(m.run_lock("other").is_ok());
        drop(held);
        assert!(m.run_lock("rb").is_ok());
    }
}
