//! The engine: the only layer that acts. Every turn of its loop opens the store, asks the domain
//! what each step should do next ([`next_action`]), records the intent durably, closes the store,
//! and hands the work to executor tasks (at most `jobs` at once). When a task ends, the engine
//! opens the store again and records the outcome. So a `kill -9` at any point leaves a journal
//! that says what was intended and what is known to have happened:
//!
//! - a step found `previewing` is previewed again (read-only);
//! - a step found `submitting` is reconciled by its executor before anything is sent again,
//!   or, when the executor cannot tell, failed as *interrupted* for a person to decide.
//!
//! Approvals bind to digests: before an approved step's effect, the engine resolves its params
//! and previews it again; if either digest differs from the approval's, the approval is void.
//! One `flow run` per runbook at a time (an OS file lock); no store handle is held while
//! executors run or while `--wait` sleeps.

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::task::JoinSet;

use crate::domain::catalogue::StepKind;
use crate::domain::plan::{resolve, Plan};
use crate::domain::runbook::{next_action, token, Action, Body, Event, Phase, RunbookView};
use crate::domain::{digest, validate, verdict};
use crate::error::{Error, Result};
use crate::executor::{self, Ctx, Executor, Outcome, Preview};
use crate::exit;
use crate::ops::{self, Env, Recorded};
use crate::store::{RunbookMeta, Store};

pub struct Options {
    pub runbook: Option<String>,
    /// Keep polling external waits until done or blocked on a person.
    pub wait: bool,
    pub jobs: usize,
    /// How often `--wait` looks at the store again (for approvals given meanwhile).
    pub tick: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub runbook: String,
    pub version: u32,
    pub outcome: RunOutcome,
    /// Set when this run found an edited workflow file and recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited: Option<crate::domain::runbook::PlanDiff>,
    pub next_poll_at: Option<String>,
    pub events: Vec<Event>,
}

/// What an in-flight task is doing, with what it was given.
struct Flight {
    exec: Arc<dyn Executor>,
    ctx: Ctx,
    params: Map<String, Value>,
    params_digest: String,
}

enum Done {
    Previewed(Result<Preview, String>),
    Verified(Result<Preview, String>),
    Finished(Outcome),
    Reconciled(Option<Outcome>),
}

/// Holds the per-runbook run lock for as long as it lives.
struct RunLock(#[allow(dead_code)] File);

fn run_lock(env: &Env, runbook: &str) -> Result<RunLock> {
    let dir = env.state.join("locks");
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io(format!("creating {}: {e}", dir.display())))?;
    let path = dir.join(format!("{runbook}.lock"));
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::Io(format!("opening {}: {e}", path.display())))?;
    match f.try_lock() {
        Ok(()) => Ok(RunLock(f)),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(Error::Refused(format!("another `flow run` is working on runbook `{runbook}`; wait for it to finish")))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Io(format!("locking {}: {e}", path.display()))),
    }
}

pub struct Engine<'a> {
    env: &'a Env,
    opts: &'a Options,
    sink: &'a (dyn Fn(&Event) + Send + Sync),
    events: Vec<Event>,
}

impl<'a> Engine<'a> {
    pub fn new(env: &'a Env, opts: &'a Options, sink: &'a (dyn Fn(&Event) + Send + Sync)) -> Self {
        Engine { env, opts, sink, events: Vec::new() }
    }

    fn append(&mut self, store: &Store, runbook: &str, body: Body) -> Result<()> {
        let e = store.append(runbook, &self.env.actor, self.env.now(), body)?;
        (self.sink)(&e);
        self.events.push(e);
        Ok(())
    }

    pub async fn run(mut self) -> Result<Report> {
        let (meta, recorded) = {
            let store = self.env.open()?;
            let meta = ops::pick_runbook(&store, self.opts.runbook.as_deref())?;
            let (_, rec) = ops::sync_workflow(self.env, &store, &meta)?;
            (meta, rec)
        };
        let _lock = run_lock(self.env, &meta.name)?;
        {
            let store = self.env.open()?;
            if let Recorded { unchanged: false, .. } = recorded {
                if let Some(e) = store.events(&meta.name)?.last() {
                    (self.sink)(e);
                    self.events.push(e.clone());
                }
            }
            self.append(&store, &meta.name, Body::RunStarted { pid: std::process::id() })?;
        }
        let edited = if recorded.unchanged { None } else { recorded.diff.clone() };

        let mut flights: HashMap<String, Flight> = HashMap::new();
        let mut tasks: JoinSet<(String, Done)> = JoinSet::new();
        let mut task_ids: HashMap<tokio::task::Id, String> = HashMap::new();
        loop {
            let (plan, view, unsupported, progressed) = {
                let store = self.env.open()?;
                let l = ops::load(&store, meta.clone())?;
                let appended = self.events.len();
                let unsupported =
                    self.dispatch(&store, &meta, &l.plan, &l.view, &mut flights, &mut tasks, &mut task_ids)?;
                // Unchanged journal: the projection read above is still the current one.
                (l.plan, l.view, unsupported, self.events.len() != appended)
            };
            if tasks.is_empty() && progressed {
                // The journal moved without starting work (a failure, a block): look again.
                continue;
            }
            if tasks.is_empty() {
                let (outcome, next_poll) = summarize(&plan, &view, unsupported);
                let now = self.env.clock.now_ms();
                if self.opts.wait && next_poll.is_some() {
                    let until = next_poll.unwrap_or(now).saturating_sub(now);
                    tokio::time::sleep(Duration::from_millis(until).min(self.opts.tick)).await;
                    continue;
                }
                let store = self.env.open()?;
                self.append(&store, &meta.name, Body::RunFinished { outcome: format!("{outcome:?}").to_lowercase() })?;
                return Ok(Report {
                    runbook: meta.name.clone(),
                    version: view.version,
                    outcome,
                    edited,
                    next_poll_at: next_poll.map(crate::clock::rfc3339),
                    events: self.events,
                });
            }
            let joined = tasks.join_next_with_id().await.expect("tasks is not empty");
            let (id, done) = match joined {
                Ok((tid, r)) => {
                    task_ids.remove(&tid);
                    r
                }
                Err(e) => {
                    let id = task_ids.remove(&e.id()).unwrap_or_default();
                    (id, Done::Finished(Outcome::Fail(format!("the executor crashed: {e}"))))
                }
            };
            let Some(flight) = flights.remove(&id) else { continue };
            let store = self.env.open()?;
            self.record(&store, &meta, &id, flight, done, &mut flights, &mut tasks, &mut task_ids)?;
        }
    }

    /// Start whatever can start; returns the steps blocked for want of an executor.
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        store: &Store,
        meta: &RunbookMeta,
        plan: &Plan,
        view: &RunbookView,
        flights: &mut HashMap<String, Flight>,
        tasks: &mut JoinSet<(String, Done)>,
        task_ids: &mut HashMap<tokio::task::Id, String>,
    ) -> Result<Vec<String>> {
        let now = self.env.clock.now_ms();
        let outputs = view.outputs();
        let mut unsupported = Vec::new();
        for id in validate::topo_order(plan) {
            if flights.contains_key(id) {
                continue;
            }
            let Some(step) = plan.step(id) else { continue };
            let Some(kind) = StepKind::parse(&step.kind) else { continue };
            let sv = view.step(id);
            let Some(action) = next_action(step, kind, &sv, view.needs_done(step), now) else { continue };
            if flights.len() >= self.opts.jobs.max(1) {
                break;
            }
            let Some(exec) = executor::for_kind(kind) else {
                let reason = format!("the `{}` executor is not built into this version of flow", kind.name());
                if sv.blocked.as_deref() != Some(reason.as_str()) {
                    self.append(store, &meta.name, Body::Blocked { step: id.into(), reason })?;
                }
                unsupported.push(id.to_string());
                continue;
            };
            let params = match resolve(&step.params, &outputs) {
                Ok(p) => p,
                Err(r) => {
                    let error = format!(
                        "param references ${{{}.{}}}, but step `{}` recorded no output `{}`",
                        r.step, r.output, r.step, r.output
                    );
                    self.append(store, &meta.name, Body::Failed { step: id.into(), error, interrupted: false })?;
                    continue;
                }
            };
            let params_digest = digest::of_json(&Value::Object(params.clone()));
            let ctx = Ctx {
                runbook: meta.name.clone(),
                step: id.into(),
                context: plan.context.clone(),
                workflow_dir: meta.workflow.parent().map(|p| p.to_path_buf()).unwrap_or_default(),
                clock: self.env.clock.clone(),
                report: if kind == StepKind::Approval { report_text(plan, view) } else { String::new() },
                covers: plan.requirements.iter().filter(|r| step.covers.contains(&r.id)).cloned().collect(),
            };
            let flight = Flight {
                exec: exec.clone(),
                ctx: ctx.clone(),
                params: params.clone(),
                params_digest: params_digest.clone(),
            };
            let mut action = action;
            if action == Action::Verify
                && sv.approval.as_ref().map(|a| a.params_digest.as_str()) != Some(params_digest.as_str())
            {
                let reason = "its params changed since it was approved (an earlier step's output differs)".to_string();
                self.append(store, &meta.name, Body::ApprovalVoided { step: id.into(), reason })?;
                action = Action::Preview;
            }
            let handle = match action {
                Action::Preview => {
                    let attempt = if sv.phase == Phase::Previewing { sv.attempt.max(1) } else { sv.attempt + 1 };
                    self.append(store, &meta.name, Body::PreviewStarted { step: id.into(), attempt })?;
                    let (id, p) = (id.to_string(), params.clone());
                    tasks.spawn(async move {
                        let r = exec.preview(&ctx, &p).await;
                        (id, Done::Previewed(r))
                    })
                }
                Action::Verify => {
                    let (id, p) = (id.to_string(), params.clone());
                    tasks.spawn(async move {
                        let r = exec.preview(&ctx, &p).await;
                        (id, Done::Verified(r))
                    })
                }
                Action::Submit => {
                    let attempt = if sv.phase == Phase::Submitting { sv.attempt.max(1) } else { sv.attempt + 1 };
                    let tok = token(&meta.name, id, &params_digest, attempt);
                    self.append(
                        store,
                        &meta.name,
                        Body::SubmitStarted {
                            step: id.into(),
                            attempt,
                            token: tok.clone(),
                            params_digest: params_digest.clone(),
                        },
                    )?;
                    let (id, p) = (id.to_string(), params.clone());
                    tasks.spawn(async move {
                        let r = exec.submit(&ctx, &p, &tok).await;
                        (id, Done::Finished(r))
                    })
                }
                Action::Poll => {
                    let h = sv.handle.clone().unwrap_or(Value::Null);
                    let (id, p) = (id.to_string(), params.clone());
                    tasks.spawn(async move {
                        let r = exec.poll(&ctx, &p, &h).await;
                        (id, Done::Finished(r))
                    })
                }
                Action::Reconcile => {
                    let tok = sv.token.clone().unwrap_or_default();
                    let (id, p) = (id.to_string(), params.clone());
                    tasks.spawn(async move {
                        let r = exec.reconcile(&ctx, &p, &tok).await;
                        (id, Done::Reconciled(r))
                    })
                }
            };
            task_ids.insert(handle.id(), id.to_string());
            flights.insert(id.to_string(), flight);
        }
        Ok(unsupported)
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        store: &Store,
        meta: &RunbookMeta,
        id: &str,
        flight: Flight,
        done: Done,
        flights: &mut HashMap<String, Flight>,
        tasks: &mut JoinSet<(String, Done)>,
        task_ids: &mut HashMap<tokio::task::Id, String>,
    ) -> Result<()> {
        let rb = meta.name.as_str();
        let step = id.to_string();
        let outcome = match done {
            // Nothing to do: the step ends here, no gate needed.
            Done::Previewed(Ok(Preview::Nothing(o))) | Done::Verified(Ok(Preview::Nothing(o))) => o,
            Done::Previewed(Ok(Preview::Approve(artifact))) => {
                let artifact_digest = digest::of_bytes(artifact.as_bytes());
                return self.append(
                    store,
                    rb,
                    Body::PreviewRecorded { step, artifact, artifact_digest, params_digest: flight.params_digest },
                );
            }
            Done::Previewed(Err(e)) | Done::Verified(Err(e)) => Outcome::Fail(format!("preview failed: {e}")),
            Done::Verified(Ok(Preview::Approve(artifact))) => {
                let view = RunbookView::from_events(&store.events(rb)?);
                let sv = view.step(id);
                let artifact_digest = digest::of_bytes(artifact.as_bytes());
                if sv.approval.as_ref().map(|a| &a.artifact_digest) != Some(&artifact_digest) {
                    let reason = "what the step would do changed since it was approved".to_string();
                    self.append(store, rb, Body::ApprovalVoided { step: step.clone(), reason })?;
                    return self.append(
                        store,
                        rb,
                        Body::PreviewRecorded { step, artifact, artifact_digest, params_digest: flight.params_digest },
                    );
                }
                // Verified: record the intent, then carry out the effect.
                let attempt = if sv.submitted_attempt == Some(sv.attempt) { sv.attempt + 1 } else { sv.attempt.max(1) };
                let tok = token(rb, id, &flight.params_digest, attempt);
                self.append(
                    store,
                    rb,
                    Body::SubmitStarted {
                        step: step.clone(),
                        attempt,
                        token: tok.clone(),
                        params_digest: flight.params_digest.clone(),
                    },
                )?;
                let (exec, ctx, p) = (flight.exec.clone(), flight.ctx.clone(), flight.params.clone());
                let id2 = step.clone();
                let h = tasks.spawn(async move {
                    let r = exec.submit(&ctx, &p, &tok).await;
                    (id2, Done::Finished(r))
                });
                task_ids.insert(h.id(), step.clone());
                flights.insert(step, flight);
                return Ok(());
            }
            Done::Finished(o) | Done::Reconciled(Some(o)) => o,
            Done::Reconciled(None) => {
                let error = format!(
                    "flow stopped while this step's side effect was under way and cannot tell whether it happened; \
                     check, then `flow retry {id}` to run it again or `flow skip {id} --reason ...` if it is done"
                );
                return self.append(store, rb, Body::Failed { step, error, interrupted: true });
            }
        };
        match outcome {
            Outcome::Done { outputs, evidence } => self.append(store, rb, Body::Succeeded { step, outputs, evidence }),
            Outcome::Wait { next_poll_at, note, handle } => {
                self.append(store, rb, Body::WaitScheduled { step, next_poll_at, note, handle })
            }
            Outcome::Fail(error) => self.append(store, rb, Body::Failed { step, error, interrupted: false }),
        }
    }
}

/// The requirements' verdicts as text, shown in approval artifacts.
pub fn report_text(plan: &Plan, view: &RunbookView) -> String {
    let mut s = String::new();
    for v in verdict::verdicts(plan, view) {
        let ev: Vec<String> = v.evidence.iter().map(|m| m.describe()).collect();
        s.push_str(&format!(
            "  {:<10} {:<22} {:<18} {}{}\n",
            v.verdict,
            v.id,
            v.kind,
            v.target,
            if ev.is_empty() { String::new() } else { format!("  [{}]", ev.join("; ")) }
        ));
    }
    s
}

/// Where a run stands once nothing more can start now.
fn summarize(plan: &Plan, view: &RunbookView, unsupported: Vec<String>) -> (RunOutcome, Option<u64>) {
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
