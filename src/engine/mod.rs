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
//!
//! Files: here the engine's surface and its loop ([`run`]); `turn` (the plan indexed, one
//! turn's decisions), `session` (the journal session, staging and committing), `effects`
//! (effects and notices in flight, poll times).

mod effects;
mod session;
#[cfg(test)]
mod tests;
mod turn;

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
use effects::Completed;
use session::load_plan;
use turn::Indexed;

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

    /// Where a run stands once nothing more can start now.
    fn summarize(&self) -> (RunOutcome, Option<u64>) {
        summarize(&self.plan.plan, &self.view, &self.unsupported)
    }
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
