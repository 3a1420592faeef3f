//! A backend in memory, for the engine's own tests (not in the production build).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{check_append, Backend, Error, Journal, RunLock, RunbookMeta};
use crate::domain::event::Event;
use crate::domain::plan::Plan;
use crate::domain::runbook::RunbookView;

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
    #[test]
    fn memory_passes_the_conformance_suite() {
        let m = super::Memory::new();
        super::super::conformance::check(&|| Box::new(m.clone()), "memory");
    }
}
