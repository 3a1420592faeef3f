//! `flow run`: record an edited workflow file (validated first), then run the engine under the
//! runbook's run lock.

use serde::Serialize;

use super::{pick_runbook, sync_workflow, Env};
use crate::domain::event::Event;
use crate::domain::lifecycle::State;
use crate::domain::plan::PlanDiff;
use crate::engine::{self, Options, Reporter, RunOutcome};
use crate::error::Result;

/// A step's state after the run, for the summary a person reads.
#[derive(Debug, Clone)]
pub struct StepAfter {
    pub id: String,
    pub state: State,
    /// The error of a failed step, the reason of a rejected one.
    pub why: Option<String>,
    pub blocked: Option<String>,
    /// The digest of what a step waiting for approval shows.
    pub digest: Option<String>,
}

/// What `flow run` did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub runbook: String,
    pub version: u32,
    pub outcome: RunOutcome,
    /// Set when this run found an edited workflow file and recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited: Option<PlanDiff>,
    /// RFC 3339.
    pub next_poll_at: Option<String>,
    pub events: Vec<Event>,
    #[serde(skip)]
    pub steps: Vec<StepAfter>,
}

pub async fn run(env: &Env, runbook: Option<&str>, opts: &Options, reporter: &dyn Reporter) -> Result<RunReport> {
    let mut meta = {
        let j = env.open()?;
        pick_runbook(j.as_ref(), runbook)?
    };
    let _lock = env.backend.run_lock(&meta.name)?;
    let recorded = {
        let mut j = env.open()?;
        sync_workflow(env, j.as_mut(), &mut meta)?
    };
    let mut events = Vec::new();
    if let Some(e) = &recorded.event {
        reporter.event(e);
        events.push(e.clone());
    }
    {
        // The approval policy this run enforces, journaled when it changed.
        let mut j = env.open()?;
        let view = crate::state::project(j.as_ref(), &meta.name)?;
        if let Some(body) = env.policy_change(&view) {
            for e in env.append(j.as_mut(), &meta.name, view.next_seq(), vec![body])? {
                reporter.event(&e);
                events.push(e);
            }
        }
    }
    let edited = if recorded.unchanged { None } else { recorded.diff.clone() };
    let parts = engine::Parts {
        backend: env.backend.as_ref(),
        executors: env.executors.as_ref(),
        clock: &env.clock,
        reporter,
        notifier: env.notifier.clone(),
        progress: env.progress.clone(),
        actor: &env.actor,
        as_name: env.display.as_deref(),
        policy: &env.policy,
    };
    let ran = engine::run(parts, &meta, opts).await?;
    events.extend(ran.events);
    let (plan, view) = (&ran.plan, &ran.view);
    let steps = plan
        .steps
        .iter()
        .map(|s| {
            let v = view.step(&s.id);
            StepAfter {
                id: s.id.clone(),
                state: view.state(s),
                why: v.error.clone().or(v.reason.clone()),
                blocked: v.blocked.clone(),
                digest: v.artifact_digest.clone(),
            }
        })
        .collect();
    Ok(RunReport {
        runbook: meta.name.clone(),
        version: ran.version,
        outcome: ran.outcome,
        edited,
        next_poll_at: ran.next_poll_at.map(crate::clock::rfc3339),
        events,
        steps,
    })
}
