//! What every state backend must do, as one suite each backend runs: `sled` and `memory` in
//! their unit tests, `s3` against moto in the integration tests. A new backend passes
//! [`check`] before anything else uses it.
//!
//! `open` makes a backend on one and the same store each time it is called (a second process,
//! or the same one after a restart). The suite panics, naming the backend and the rule, at the
//! first rule broken.

use serde_json::json;

use super::{project, Backend, Error, RunbookMeta};
use crate::domain::event::{Body, Event};
use crate::domain::plan::Plan;
use crate::domain::runbook::RunbookView;

fn ev(seq: u64) -> Event {
    Event {
        seq,
        at: "2026-12-06T00:00:00Z".into(),
        actor: "conformance".into(),
        as_name: None,
        host: String::new(),
        body: Body::RunStarted { pid: seq as u32 },
    }
}

fn plan(spec: &str) -> Plan {
    serde_json::from_value(json!({"runbook": "rb", "spec": spec})).expect("a plan")
}

fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Run every rule against the backends `open` makes.
pub fn check(open: &dyn Fn() -> Box<dyn Backend>, name: &str) {
    let b = open();
    let fail = |rule: &str, why: String| -> ! { panic!("backend {name}: {rule}: {why}") };

    // The registry: what is put is read back, listed, and replaced whole.
    {
        let mut j = b.open().unwrap_or_else(|e| fail("open", e.to_string()));
        assert!(j.meta("rb").unwrap().is_none(), "{name}: a runbook never put is not there");
        let meta = RunbookMeta {
            name: "rb".into(),
            workflow: "workflows/rb.toml".into(),
            spec: "specs/rb.md".into(),
            created_at: "2026-12-06T00:00:00Z".into(),
            workflow_read: None,
        };
        j.put_meta(&meta).unwrap();
        let mut other = meta.clone();
        other.name = "other".into();
        j.put_meta(&other).unwrap();
        assert_eq!(j.meta("rb").unwrap().as_ref(), Some(&meta), "{name}: meta round trip");
        let names: Vec<String> = j.runbooks().unwrap().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["other", "rb"], "{name}: runbooks listed by name");
        let mut edited = meta.clone();
        edited.spec = "specs/rb-2.md".into();
        j.put_meta(&edited).unwrap();
        assert_eq!(j.meta("rb").unwrap().map(|m| m.spec).as_deref(), Some("specs/rb-2.md"), "{name}: meta replaced");
    }

    // Plan versions: each kept apart, none invented.
    {
        let mut j = b.open().unwrap();
        j.put_plan("rb", 1, &plan("one")).unwrap();
        j.put_plan("rb", 2, &plan("two")).unwrap();
        assert_eq!(j.plan("rb", 1).unwrap().map(|p| p.spec).as_deref(), Some("one"), "{name}: plan version 1");
        assert_eq!(j.plan("rb", 2).unwrap().map(|p| p.spec).as_deref(), Some("two"), "{name}: plan version 2");
        assert!(j.plan("rb", 3).unwrap().is_none(), "{name}: no plan version 3");
        assert!(j.plan("other", 1).unwrap().is_none(), "{name}: plans are per runbook");
    }

    // Appends are conditional on the next sequence number, across processes: one that decided
    // on what it read, while another appended, loses and writes nothing. A batch is all or
    // nothing; scans start where asked. (A backend may keep a batch as one record: it need
    // only refuse a number some reader could have seen as next, not one inside a batch.)
    {
        b.open().unwrap().append("rb", &[ev(1)]).unwrap();
        // A second process reads the journal and decides that event 2 comes next ...
        let next = open().open().unwrap().events_after("rb", 0).unwrap().len() as u64 + 1;
        assert_eq!(next, 2, "{name}: one event read back");
        // ... while the first appends two more.
        b.open().unwrap().append("rb", &[ev(2), ev(3)]).unwrap();
        let mut c = open().open().unwrap();
        match c.append("rb", &[ev(next)]) {
            Err(Error::Conflict { expected: 2, found: 4, .. }) => {}
            other => fail("a stale append is a conflict", format!("{:?}", other.map_err(|e| e.to_string()))),
        }
        assert!(c.append("rb", &[ev(4), ev(6)]).is_err(), "{name}: a batch not numbered one by one is refused");
        assert_eq!(seqs(&c.events_after("rb", 0).unwrap()), [1, 2, 3], "{name}: a refused append writes nothing");
        c.append("rb", &[ev(4)]).unwrap();
        assert_eq!(seqs(&c.events_after("rb", 2).unwrap()), [3, 4], "{name}: events after 2");
        assert_eq!(c.events_after("rb", 4).unwrap().len(), 0, "{name}: nothing after the last");
        assert_eq!(c.events_after("other", 0).unwrap().len(), 0, "{name}: events are per runbook");
        c.append("other", &[ev(1)]).unwrap();
        assert_eq!(c.events_after("other", 0).unwrap()[0].body, ev(1).body, "{name}: an event reads back as written");
    }

    // Snapshots: the projection is the snapshot plus the events after it.
    {
        let mut j = b.open().unwrap();
        let all = j.events_after("rb", 0).unwrap();
        let at_two = RunbookView::from_events(&all[..2]);
        j.put_snapshot("rb", &at_two).unwrap();
        assert_eq!(j.snapshot("rb").unwrap().map(|v| v.last_seq), Some(2), "{name}: snapshot round trip");
        assert_eq!(project(j.as_ref(), "rb").unwrap(), RunbookView::from_events(&all), "{name}: snapshot + tail");
        assert!(j.snapshot("other").unwrap().is_none(), "{name}: snapshots are per runbook");
    }

    // The planners' cache and audit trail.
    {
        let mut j = b.open().unwrap();
        assert!(j.cached_plan("k").unwrap().is_none(), "{name}: nothing cached yet");
        j.cache_plan("k", &plan("cached")).unwrap();
        assert_eq!(j.cached_plan("k").unwrap().map(|p| p.spec).as_deref(), Some("cached"), "{name}: cached plan");
        j.cache_answer("q", &json!({"requirements": [1, 2]})).unwrap();
        assert_eq!(j.cached_answer("q").unwrap(), Some(json!({"requirements": [1, 2]})), "{name}: cached answer");
        assert!(j.cached_answer("other").unwrap().is_none(), "{name}: answers by key");
        j.append_exchange("rb", &json!({"n": 1})).unwrap();
        j.append_exchange("rb", &json!({"n": 2})).unwrap();
        assert_eq!(j.exchanges("rb").unwrap(), [json!({"n": 1}), json!({"n": 2})], "{name}: exchanges in order");
        assert!(j.exchanges("other").unwrap().is_empty(), "{name}: exchanges are per runbook");
    }

    // Everything is still there for the next process.
    {
        let again = open();
        let j = again.open().unwrap();
        assert_eq!(seqs(&j.events_after("rb", 0).unwrap()), [1, 2, 3, 4], "{name}: events durable");
        assert_eq!(j.plan("rb", 2).unwrap().map(|p| p.spec).as_deref(), Some("two"), "{name}: plans durable");
        assert_eq!(j.snapshot("rb").unwrap().map(|v| v.last_seq), Some(2), "{name}: snapshot durable");
        assert_eq!(j.exchanges("rb").unwrap().len(), 2, "{name}: exchanges durable");
    }

    // One `flow run` per runbook: the run lock (a lease, on shared state) is exclusive while
    // held, per runbook, and free again when dropped.
    {
        let held = b.run_lock("rb").unwrap_or_else(|e| fail("run lock", e.to_string()));
        match open().run_lock("rb") {
            Err(Error::Locked { .. } | Error::Leased { .. }) => {}
            Err(e) => fail("a held run lock refuses another", e.to_string()),
            Ok(_) => fail("a held run lock refuses another", "it was granted twice".into()),
        }
        let other = b.run_lock("other").unwrap_or_else(|e| fail("run locks are per runbook", e.to_string()));
        drop(held);
        drop(other);
        let again = open().run_lock("rb");
        assert!(again.is_ok(), "{name}: a dropped run lock is free: {:?}", again.err().map(|e| e.to_string()));
    }
}
