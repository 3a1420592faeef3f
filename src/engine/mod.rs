//! The engine: the only layer that acts, and it owns nothing but the loop. It asks the
//! lifecycle ([`crate::domain::lifecycle`]) what each step should do, records the intent in the
//! journal, carries out the effect through the step kind's executor, and records the outcome.
//! A `kill -9` between any two of these leaves a journal that says what was intended and what
//! is known to have happened, and the next run picks up from there (the lifecycle decides how:
//! preview again, submit again, or reconcile).
//!
//! It is given everything it works with: a [`Backend`] for the journal, a [`Registry`] of
//! executors, a clock and a [`Reporter`]. Its cost per transition does not grow with the
//! runbook:
//!
//! - the plan's index and the projection are kept in memory and folded forward, event by
//!   event; a step is looked at again only when something about it changed (an event of its
//!   own, a need that finished, its poll time coming due);
//! - a turn's events (outcomes, then the intents of the effects it starts) are committed in one
//!   conditional append, and only then are the effects started;
//! - the store session stays open while work keeps coming, and is closed as soon as another
//!   process queues for the store, or the engine would wait on a long effect or a poll time.
//!   Reopening folds in what others appended meanwhile (an approval, a retry, a new plan).
//!
//! One `flow run` per runbook at a time: the caller holds the backend's run lock.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::task::JoinSet;

use crate::clock::{rfc3339, Clock};
use crate::domain::catalogue::StepKind;
use crate::domain::event::{Body, Event};
use crate::domain::lifecycle::{self, Decision, Effect, Finished, Phase, Resolved, Situation, Start, StepView};
use crate::domain::notify::{self, Notice};
use crate::domain::plan::Plan;
use crate::domain::policy::Policy;
use crate::domain::reference::resolve;
use crate::domain::runbook::RunbookView;
use crate::domain::{validate, verdict};
use crate::executor::{Ctx, Executor, Registry};
use crate::exit;
use crate::state::{Backend, Journal, RunbookMeta};

#[derive(Debug, Clone)]
pub struct Options {
    /// Keep polling external waits until done or blocked on a person.
    pub wait: bool,
    /// Effects in flight at once, at most.
    pub jobs: usize,
    /// How often the store is looked at again while waiting (for approvals given meanwhile).
    pub tick: Duration,
    /// How long the store stays open while effects run, before it is handed back.
    pub hold: Duration,
    /// Keep every recorded event for the run's report (the reporter sees them either way).
    pub keep_events: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wait: false,
            jobs: 4,
            tick: Duration::from_secs(1),
            hold: Duration::from_millis(10),
            keep_events: true,
        }
    }
}

/// Where the engine's events go as they are recorded (the CLI prints them).
pub trait Reporter: Send + Sync {
    fn event(&self, e: &Event);
}

/// A reporter that shows nothing.
pub struct Quiet;

impl Reporter for Quiet {
    fn event(&self, _: &Event) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Done,
    Failed,
    WaitingApproval,
    Waiting,
    Unsupported,
}

impl RunOutcome {
    pub fn exit_code(self) -> i32 {
        match self {
            RunOutcome::Done => exit::OK,
            RunOutcome::Failed => exit::FAILED,
            RunOutcome::WaitingApproval => exit::WAITING_APPROVAL,
            RunOutcome::Waiting => exit::WAITING,
            RunOutcome::Unsupported => exit::UNSUPPORTED,
        }
    }

    /// As the `run_finished` event records it.
    pub fn journal_name(self) -> &'static str {
        match self {
            RunOutcome::Done => "done",
            RunOutcome::Failed => "failed",
            RunOutcome::WaitingApproval => "waitingapproval",
            RunOutcome::Waiting => "waiting",
            RunOutcome::Unsupported => "unsupported",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Ran {
    pub version: u32,
    pub outcome: RunOutcome,
    pub next_poll_at: Option<u64>,
    /// Every event this run recorded (with [`Options::keep_events`]).
    pub events: Vec<Event>,
    /// The plan and the projection as the run left them.
    pub plan: Plan,
    pub view: RunbookView,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Journal(#[from] crate::state::Error),
    #[error("runbook `{runbook}` has no recorded plan version {version}")]
    NoPlan { runbook: String, version: u32 },
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// Where notices go (a webhook). A notifier retries on its own; an error it returns is
/// journaled and logged, and never stops the run.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    async fn send(&self, notice: &Notice) -> std::result::Result<(), Undelivered>;
}

/// Why a notice did not reach its notifier's destination, in the notifier's own error type.
pub type Undelivered = Box<dyn std::error::Error + Send + Sync>;

/// What the engine works with: where the journal is, who carries out each kind, what time it
/// is, who hears about each event, who is told about what matters, and who it acts as.
#[derive(Clone)]
pub struct Parts<'a> {
    pub backend: &'a dyn Backend,
    pub executors: &'a dyn Registry,
    pub clock: &'a Arc<dyn Clock>,
    pub reporter: &'a dyn Reporter,
    pub notifier: Option<Arc<dyn Notifier>>,
    pub progress: Arc<dyn crate::progress::Progress>,
    pub actor: &'a str,
    /// The display name the person running it gave (`--as`).
    pub as_name: Option<&'a str>,
    /// The approval policy in force: an approved step that falls short of it waits.
    pub policy: &'a Policy,
}

/// Run a runbook's ready steps until nothing more can start now (or, with `wait`, until done
/// or blocked on a person).
pub async fn run(parts: Parts<'_>, meta: &RunbookMeta, opts: &Options) -> Result<Ran> {
    let mut e = Engine::new(parts, meta, opts)?;
    let r = e.run().await;
    e.close();
    r
}

/// The plan, indexed for the loop.
struct Indexed {
    plan: Plan,
    index: HashMap<String, usize>,
    /// Position in dependency order, by step index; `order[rank]` is the step index.
    rank: Vec<usize>,
    order: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    kinds: Vec<Option<StepKind>>,
    /// Per step, how many of its needs (in order) are known done in the recorded view: a need
    /// done stays done until the plan changes (which builds a new index), so a step with
    /// thousands of needs is not asked about all of them again each time one finishes.
    needs_done_upto: std::cell::RefCell<Vec<usize>>,
}

impl Indexed {
    fn new(plan: Plan) -> Indexed {
        let index: HashMap<String, usize> =
            plan.steps.iter().enumerate().rev().map(|(i, s)| (s.id.clone(), i)).collect();
        let mut order: Vec<usize> =
            validate::topo_order(&plan).iter().filter_map(|id| index.get(*id).copied()).collect();
        // Steps the order leaves out (only in an invalid plan) still get a place.
        let placed: BTreeSet<usize> = order.iter().copied().collect();
        order.extend((0..plan.steps.len()).filter(|i| !placed.contains(i)));
        let mut rank = vec![0; plan.steps.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        let mut dependents = vec![Vec::new(); plan.steps.len()];
        for (i, s) in plan.steps.iter().enumerate() {
            for n in &s.needs {
                if let Some(&j) = index.get(n) {
                    dependents[j].push(i);
                }
            }
        }
        let kinds = plan.steps.iter().map(|s| StepKind::parse(&s.kind)).collect();
        let needs_done_upto = std::cell::RefCell::new(vec![0; plan.steps.len()]);
        Indexed { plan, index, rank, order, dependents, kinds, needs_done_upto }
    }

    /// Are step `i`'s needs all done: in the recorded view up to the mark, then in the turn's
    /// working view (`done`). The mark moves only on what is recorded.
    fn needs_done(&self, i: usize, recorded: &RunbookView, done: impl Fn(&str) -> bool) -> bool {
        let needs = &self.plan.steps[i].needs;
        let mut upto = self.needs_done_upto.borrow_mut();
        let mut k = upto[i];
        while k < needs.len() && recorded.step(&needs[k]).phase.satisfies_needs() {
            k += 1;
        }
        upto[i] = k;
        needs[k..].iter().all(|n| done(n))
    }
}

/// What one turn decided.
#[derive(Default)]
struct Turn {
    staged: Vec<Event>,
    starts: Vec<(String, Start)>,
    /// Ranks of steps that wait for a free slot.
    kept: BTreeSet<usize>,
    unsupported: Vec<String>,
}

/// A turn's working copy of the view: the steps it changed, over the engine's view.
#[derive(Default)]
struct Shallow {
    changed: HashMap<String, StepView>,
}

impl Shallow {
    fn step<'v>(&'v self, base: &'v RunbookView, id: &str) -> &'v StepView {
        self.changed.get(id).unwrap_or_else(|| base.step(id))
    }

    fn output<'v>(&'v self, base: &'v RunbookView, step: &str, output: &str) -> Option<&'v Value> {
        match self.changed.get(step) {
            Some(s) => (s.phase == Phase::Succeeded).then(|| s.outputs.get(output)).flatten(),
            None => base.output(step, output),
        }
    }

    fn apply(&mut self, base: &RunbookView, e: &Event) {
        if let Some(id) = e.body.step() {
            let s = self.changed.entry(id.to_string()).or_insert_with(|| base.step(id).clone());
            lifecycle::apply(s, &e.body, &e.at);
        }
    }
}

/// An effect's result, waiting to be recorded.
struct Completed {
    step: String,
    start: Start,
    finished: Finished,
}

struct Engine<'a> {
    backend: &'a dyn Backend,
    executors: &'a dyn Registry,
    clock: Arc<dyn Clock>,
    reporter: &'a dyn Reporter,
    notifier: Option<Arc<dyn Notifier>>,
    progress: Arc<dyn crate::progress::Progress>,
    actor: &'a str,
    as_name: Option<&'a str>,
    policy: &'a Policy,
    meta: &'a RunbookMeta,
    opts: &'a Options,

    session: Option<Box<dyn Journal>>,
    /// Notices to send (their intent not yet recorded), and those being sent.
    queued: Vec<Notice>,
    /// Each notice's key and, when it was not delivered, why.
    sending: JoinSet<(String, Option<String>)>,
    plan: Indexed,
    view: RunbookView,
    /// Ranks of the steps to look at again.
    dirty: BTreeSet<usize>,
    /// Poll times of waiting steps (stale entries are harmless: the lifecycle decides).
    timers: BinaryHeap<Reverse<(u64, String)>>,
    unsupported: BTreeSet<String>,
    flights: HashMap<String, Start>,
    tasks: JoinSet<(String, Finished)>,
    task_steps: HashMap<tokio::task::Id, String>,
    completed: Vec<Completed>,
    /// This run's recorded events.
    events: Vec<Event>,
    snapshot_seq: u64,
}

/// Events appended since the last snapshot before the engine writes a new one when it hands
/// the store back.
const SNAPSHOT_EVERY: u64 = 2_000;
/// Conflicting appends retried in a row before the run gives up.
const CONFLICTS: usize = 8;

impl<'a> Engine<'a> {
    fn new(parts: Parts<'a>, meta: &'a RunbookMeta, opts: &'a Options) -> Result<Engine<'a>> {
        let Parts { backend, executors, clock, reporter, notifier, progress, actor, as_name, policy } = parts;
        let clock = clock.clone();
        let session = backend.open()?;
        let view = crate::state::project(session.as_ref(), &meta.name)?;
        let snapshot_seq = view.last_seq;
        let plan = load_plan(session.as_ref(), &meta.name, view.version)?;
        let mut e = Engine {
            backend,
            executors,
            clock,
            reporter,
            notifier,
            progress,
            actor,
            as_name,
            policy,
            meta,
            opts,
            session: Some(session),
            queued: Vec::new(),
            sending: JoinSet::new(),
            plan: Indexed::new(plan),
            view,
            dirty: BTreeSet::new(),
            timers: BinaryHeap::new(),
            unsupported: BTreeSet::new(),
            flights: HashMap::new(),
            tasks: JoinSet::new(),
            task_steps: HashMap::new(),
            completed: Vec::new(),
            events: Vec::new(),
            snapshot_seq,
        };
        e.look_at_everything();
        Ok(e)
    }

    fn look_at_everything(&mut self) {
        self.dirty = (0..self.plan.order.len()).collect();
        self.timers.clear();
        for (id, s) in &self.view.steps {
            if let (Phase::Waiting, Some(t)) = (s.phase, s.next_poll_at) {
                self.timers.push(Reverse((t, id.clone())));
            }
        }
    }

    fn session(&mut self) -> Result<&mut Box<dyn Journal>> {
        if self.session.is_none() {
            let s = self.backend.open()?;
            let news = s.events_after(&self.meta.name, self.view.last_seq)?;
            self.session = Some(s);
            for e in news {
                self.absorb(&e)?;
            }
        }
        Ok(self.session.as_mut().expect("just opened"))
    }

    /// Hand the store back (writing a snapshot first when many events came since the last).
    fn close(&mut self) {
        if let Some(mut s) = self.session.take() {
            if self.view.last_seq >= self.snapshot_seq + SNAPSHOT_EVERY {
                match s.put_snapshot(&self.meta.name, &self.view) {
                    Ok(()) => self.snapshot_seq = self.view.last_seq,
                    Err(e) => tracing::warn!("could not write a snapshot of the projection: {e}"),
                }
            }
        }
    }

    /// Fold one event into the view and mark what it may have made ready.
    fn absorb(&mut self, e: &Event) -> Result<()> {
        if let Body::PlanRecorded { version, .. } = &e.body {
            self.view.apply(e);
            let plan =
                load_plan(self.session.as_deref().expect("absorbing with a session"), &self.meta.name, *version)?;
            self.plan = Indexed::new(plan);
            self.look_at_everything();
            return Ok(());
        }
        let Some(id) = e.body.step() else {
            self.view.apply(e);
            return Ok(());
        };
        let before = self.view.step(id).phase;
        self.view.apply(e);
        let after = self.view.step(id);
        if let (Phase::Waiting, Some(t)) = (after.phase, after.next_poll_at) {
            self.timers.push(Reverse((t, id.to_string())));
        }
        let changed = before != after.phase;
        if let Some(&i) = self.plan.index.get(id) {
            self.dirty.insert(self.plan.rank[i]);
            if changed {
                for &d in &self.plan.dependents[i] {
                    self.dirty.insert(self.plan.rank[d]);
                }
            }
        }
        Ok(())
    }

    fn event(&self, body: Body) -> Event {
        Event {
            seq: 0,
            at: rfc3339(self.clock.now_ms()),
            actor: self.actor.to_string(),
            as_name: self.as_name.map(str::to_string),
            host: crate::state::host().into(),
            body,
        }
    }

    /// Record `bodies` now, in one append.
    fn record(&mut self, bodies: Vec<Body>) -> Result<()> {
        let staged: Vec<Event> = bodies.into_iter().map(|b| self.event(b)).collect();
        self.commit(staged)
    }

    fn commit(&mut self, mut staged: Vec<Event>) -> Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        let first = self.view.next_seq();
        for (k, e) in staged.iter_mut().enumerate() {
            e.seq = first + k as u64;
        }
        let rb = self.meta.name.clone();
        self.session()?.append(&rb, &staged)?;
        for e in staged {
            self.absorb(&e)?;
            if self.notifier.is_some() {
                if let Some(n) = notify::about(&e, &self.plan.plan) {
                    if !self.view.notified.contains(&n.key) && !self.queued.iter().any(|q| q.key == n.key) {
                        self.queued.push(n);
                    }
                }
            }
            self.reporter.event(&e);
            if self.opts.keep_events {
                self.events.push(e);
            }
        }
        Ok(())
    }

    async fn run(&mut self) -> Result<Ran> {
        self.record(vec![Body::RunStarted { pid: std::process::id() }])?;
        loop {
            while let Some(joined) = self.tasks.try_join_next_with_id() {
                self.land(joined);
            }
            self.due_timers();
            self.turn()?;
            self.notices()?;
            if self.session.as_ref().is_some_and(|s| s.contended()) {
                self.close();
            }
            let slots = self.flights.len() < self.opts.jobs.max(1);
            if !self.completed.is_empty() || (!self.dirty.is_empty() && slots) {
                continue;
            }
            if !self.tasks.is_empty() {
                self.await_effects().await?;
                continue;
            }
            let (outcome, next_poll) = self.summarize();
            let now = self.clock.now_ms();
            if self.opts.wait && next_poll.is_some() {
                self.notices()?;
                self.close();
                let until = Duration::from_millis(next_poll.unwrap_or(now).saturating_sub(now));
                self.progress.show("wait", &format!("waiting: next poll at {}", rfc3339(next_poll.unwrap_or(now))));
                tokio::time::sleep(until.min(self.opts.tick)).await;
                self.session()?;
                continue;
            }
            if outcome == RunOutcome::Done && self.notifier.is_some() {
                let n = notify::completed(&self.plan.plan, &self.view);
                if !self.view.notified.contains(&n.key) {
                    self.queued.push(n);
                }
            }
            self.notices()?;
            // Every notice of this run is delivered, or its failure recorded, before it ends.
            while let Some(r) = self.sending.join_next().await {
                self.delivered(r)?;
            }
            self.progress.done("wait");
            self.record(vec![Body::RunFinished { outcome: outcome.journal_name().into() }])?;
            let name = self.meta.name.clone();
            let view = std::mem::take(&mut self.view);
            let written = self.session()?.put_snapshot(&name, &view);
            self.view = view;
            match written {
                Ok(()) => self.snapshot_seq = self.view.last_seq,
                Err(e) => tracing::warn!("could not write a snapshot of the projection: {e}"),
            }
            return Ok(Ran {
                version: self.view.version,
                outcome,
                next_poll_at: next_poll,
                events: std::mem::take(&mut self.events),
                plan: self.plan.plan.clone(),
                view: std::mem::take(&mut self.view),
            });
        }
    }

    /// Start sending the queued notices (their intent recorded first: each goes once), and
    /// record how the finished ones went.
    fn notices(&mut self) -> Result<()> {
        while let Some(r) = self.sending.try_join_next() {
            self.delivered(r)?;
        }
        let (Some(notifier), false) = (self.notifier.clone(), self.queued.is_empty()) else { return Ok(()) };
        let queued = std::mem::take(&mut self.queued);
        let bodies = queued
            .iter()
            .map(|n| Body::NotifyStarted { key: n.key.clone(), kind: n.kind.clone(), title: n.title.clone() })
            .collect();
        self.record(bodies)?;
        for n in queued {
            let to = notifier.clone();
            self.sending.spawn(async move {
                let r = to.send(&n).await;
                (n.key, r.err().map(|e| e.to_string()))
            });
        }
        Ok(())
    }

    fn delivered(&mut self, r: std::result::Result<(String, Option<String>), tokio::task::JoinError>) -> Result<()> {
        let (key, error) = match r {
            Ok(x) => x,
            Err(e) => (String::new(), Some(format!("the notifier crashed: {e}"))),
        };
        if let Some(e) = &error {
            tracing::warn!("notice {key} not delivered: {e}");
        }
        self.record(vec![Body::Notified { key, ok: error.is_none(), error }])
    }

    /// Wait for the next effect to finish: briefly with the store open, then with it closed,
    /// looking at the store again every tick for what others recorded meanwhile.
    async fn await_effects(&mut self) -> Result<()> {
        if self.session.is_some() {
            if let Ok(Some(joined)) = tokio::time::timeout(self.opts.hold, self.tasks.join_next_with_id()).await {
                self.land(joined);
                return Ok(());
            }
            self.close();
        }
        loop {
            tokio::select! {
                joined = self.tasks.join_next_with_id() => {
                    if let Some(joined) = joined {
                        self.land(joined);
                    }
                    return Ok(());
                }
                _ = tokio::time::sleep(self.opts.tick) => {
                    let seen = self.view.last_seq;
                    self.session()?;
                    if self.view.last_seq != seen {
                        // Someone approved, retried or re-planned: decide again now.
                        return Ok(());
                    }
                    self.close();
                }
            }
        }
    }

    fn land(&mut self, joined: std::result::Result<(tokio::task::Id, (String, Finished)), tokio::task::JoinError>) {
        let (step, finished) = match joined {
            Ok((tid, r)) => {
                self.task_steps.remove(&tid);
                r
            }
            Err(e) => {
                let step = self.task_steps.remove(&e.id()).unwrap_or_default();
                (step, Finished::Submitted(Err(lifecycle::Failure(format!("the executor crashed: {e}")))))
            }
        };
        if let Some(start) = self.flights.remove(&step) {
            self.completed.push(Completed { step, start, finished });
        }
    }

    fn due_timers(&mut self) {
        let now = self.clock.now_ms();
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((_, id))) = self.timers.pop() else { break };
            if let Some(&i) = self.plan.index.get(&id) {
                self.dirty.insert(self.plan.rank[i]);
            }
        }
    }

    /// One turn: settle what finished, decide what changed, commit it all in one append, then
    /// start the effects. A conflicting append (someone else wrote first) folds their events
    /// in and decides again; nothing was started on the stale view.
    fn turn(&mut self) -> Result<()> {
        for _ in 0..CONFLICTS {
            let dirty = std::mem::take(&mut self.dirty);
            let t = self.plan_turn(dirty);
            self.unsupported.extend(t.unsupported);
            match self.commit(t.staged) {
                Ok(()) => {
                    // Merged the small into the large: thousands of ready steps waiting for a
                    // slot are not copied again at every turn.
                    let mut kept = t.kept;
                    if kept.len() > self.dirty.len() {
                        std::mem::swap(&mut kept, &mut self.dirty);
                    }
                    self.dirty.extend(kept);
                    self.completed.clear();
                    for (id, start) in t.starts {
                        self.launch(id, start);
                    }
                    return Ok(());
                }
                Err(Error::Journal(crate::state::Error::Conflict { .. })) => self.reload()?,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Journal(crate::state::Error::Backend {
            path: self.backend.describe(),
            detail: format!("runbook `{}` kept moving under this run; run it again", self.meta.name),
        }))
    }

    /// Decide a turn against a working copy of the view: the events to record (in order), the
    /// effects to start once they are durable, and the steps left for a free slot.
    fn plan_turn(&self, mut dirty: BTreeSet<usize>) -> Turn {
        let now = self.clock.now_ms();
        let mut view = Shallow::default();
        let mut t = Turn::default();
        let stage = |view: &mut Shallow, t: &mut Turn, bodies: Vec<Body>| {
            for b in bodies {
                let e = self.event(b);
                view.apply(&self.view, &e);
                t.staged.push(e);
            }
        };
        for c in &self.completed {
            let sv = view.step(&self.view, &c.step);
            let d = lifecycle::settle(&self.meta.name, &c.step, sv, &c.start, c.finished.clone());
            stage(&mut view, &mut t, d.record);
            if let Some(start) = d.start {
                t.starts.push((c.step.clone(), start));
            }
            // What it unblocks is decided in this same turn, and committed with its outcome.
            if let Some(&i) = self.plan.index.get(&c.step) {
                dirty.extend(self.plan.dependents[i].iter().map(|&d| self.plan.rank[d]));
            }
        }
        let jobs = self.opts.jobs.max(1);
        while let Some(rank) = dirty.pop_first() {
            let i = self.plan.order[rank];
            let step = &self.plan.plan.steps[i];
            if self.flights.contains_key(&step.id) || t.starts.iter().any(|(id, _)| id == &step.id) {
                continue;
            }
            let Some(kind) = self.plan.kinds[i] else { continue };
            let situation = Situation {
                runbook: &self.meta.name,
                step,
                kind,
                view: view.step(&self.view, &step.id),
                needs_done: self.plan.needs_done(i, &self.view, |n| view.step(&self.view, n).phase.satisfies_needs()),
                executor: self.executors.executor(kind).is_some(),
                now_ms: now,
                policy: self.policy,
            };
            let resolve_params = || {
                let lookup = |s: &str, o: &str| view.output(&self.view, s, o);
                resolve(&step.params, &lookup).map(Resolved::new)
            };
            let Decision { record, start, unsupported } = lifecycle::decide(&situation, resolve_params);
            if unsupported {
                t.unsupported.push(step.id.clone());
            }
            if start.is_some() && self.flights.len() + t.starts.len() >= jobs {
                // No slot: this step (and the rest) wait for one; nothing of it is recorded.
                t.kept = std::mem::take(&mut dirty);
                t.kept.insert(rank);
                break;
            }
            if record.is_empty() && start.is_none() {
                continue;
            }
            let before = view.step(&self.view, &step.id).phase;
            stage(&mut view, &mut t, record);
            if before != view.step(&self.view, &step.id).phase {
                // Dependants may be ready now: look at them in this same turn.
                for &d in &self.plan.dependents[i] {
                    dirty.insert(self.plan.rank[d]);
                }
            }
            if let Some(start) = start {
                t.starts.push((step.id.clone(), start));
            }
        }
        t
    }

    /// Someone else wrote first: fold the whole journal in again and look at everything.
    fn reload(&mut self) -> Result<()> {
        let name = self.meta.name.clone();
        let s = self.session()?;
        let view = crate::state::project(s.as_ref(), &name)?;
        let plan = load_plan(s.as_ref(), &name, view.version)?;
        self.view = view;
        self.plan = Indexed::new(plan);
        self.look_at_everything();
        Ok(())
    }

    fn ctx(&self, id: &str, kind: StepKind) -> Ctx {
        let plan = &self.plan.plan;
        let covers = match self.plan.index.get(id) {
            Some(&i) => plan.requirements.iter().filter(|r| plan.steps[i].covers.contains(&r.id)).cloned().collect(),
            None => vec![],
        };
        Ctx {
            runbook: self.meta.name.clone(),
            step: id.into(),
            context: plan.context.clone(),
            workflow_dir: self.meta.workflow.parent().map(|p| p.to_path_buf()).unwrap_or_default(),
            clock: self.clock.clone(),
            verdicts: if kind.def().decision { verdict::verdicts(plan, &self.view) } else { vec![] },
            covers,
            progress: self.progress.clone(),
        }
    }

    fn launch(&mut self, id: String, start: Start) {
        let Some(&i) = self.plan.index.get(&id) else { return };
        let Some(kind) = self.plan.kinds[i] else { return };
        let Some(exec) = self.executors.executor(kind) else { return };
        let ctx = self.ctx(&id, kind);
        let (effect, params) = (start.effect.clone(), start.params.params.clone());
        let step = id.clone();
        let handle = self.tasks.spawn(async move { (step, carry_out(exec, ctx, params, effect).await) });
        self.task_steps.insert(handle.id(), id.clone());
        self.flights.insert(id, start);
    }

    /// Where a run stands once nothing more can start now.
    fn summarize(&self) -> (RunOutcome, Option<u64>) {
        summarize(&self.plan.plan, &self.view, &self.unsupported)
    }
}

/// Carry out one effect through its executor; a failure becomes the message to record.
async fn carry_out(exec: Arc<dyn Executor>, ctx: Ctx, params: Map<String, Value>, effect: Effect) -> Finished {
    let msg = |e: crate::executor::Error| lifecycle::Failure(e.to_string());
    match effect {
        Effect::Preview | Effect::Verify => Finished::Previewed(exec.preview(&ctx, &params).await.map_err(msg)),
        Effect::Submit { token } => Finished::Submitted(exec.submit(&ctx, &params, &token).await.map_err(msg)),
        Effect::Poll { handle } => Finished::Submitted(exec.poll(&ctx, &params, &handle).await.map_err(msg)),
        Effect::Reconcile { token } => match exec.reconcile(&ctx, &params, &token).await {
            Err(crate::executor::Error::Interrupted(found)) => Finished::Interrupted(found),
            other => Finished::Reconciled(other.map_err(msg)),
        },
    }
}

fn load_plan(j: &dyn Journal, runbook: &str, version: u32) -> Result<Plan> {
    j.plan(runbook, version)?.ok_or(Error::NoPlan { runbook: runbook.into(), version })
}

/// Where a run stands once nothing more can start now.
pub fn summarize(plan: &Plan, view: &RunbookView, unsupported: &BTreeSet<String>) -> (RunOutcome, Option<u64>) {
    let phases: Vec<Phase> = plan.steps.iter().map(|s| view.step(&s.id).phase).collect();
    let next_poll = plan
        .steps
        .iter()
        .map(|s| view.step(&s.id))
        .filter(|s| s.phase == Phase::Waiting)
        .filter_map(|s| s.next_poll_at)
        .min();
    let outcome = if phases.iter().all(|p| p.satisfies_needs()) {
        RunOutcome::Done
    } else if phases.iter().any(|p| matches!(p, Phase::Failed | Phase::Rejected)) {
        RunOutcome::Failed
    } else if !unsupported.is_empty() {
        RunOutcome::Unsupported
    } else if phases.contains(&Phase::AwaitingApproval) {
        RunOutcome::WaitingApproval
    } else if next_poll.is_some() {
        RunOutcome::Waiting
    } else {
        RunOutcome::Failed
    };
    (outcome, next_poll)
}

#[cfg(test)]
mod tests;
