//! Executors: what each step kind does, through three verbs.
//!
//! - `preview` is read-only: the artifact a person approves (what would happen);
//! - `submit` carries out the step, idempotent by the token the engine derives from runbook,
//!   step, params digest and attempt;
//! - `poll` follows something that takes minutes or days;
//! - `reconcile` looks up, after a crash mid-submit, whether the effect happened.
//!
//! Executors never touch the state store: they return [`Outcome`]s and the engine records them.

mod approval;
mod changeset;
mod command;
mod compute;
mod loadtest;
mod probe;
mod quota;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::domain::catalogue::StepKind;
use crate::domain::spec::Context;

/// What an executor may know about where it runs.
#[derive(Clone)]
pub struct Ctx {
    pub runbook: String,
    pub step: String,
    pub context: Context,
    /// The folder holding the workflow file; relative paths in params start here.
    pub workflow_dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    /// The requirements' verdicts as text, for the approvals that decide on them.
    pub report: String,
    /// The requirements this step covers (a load test's thresholds come from them).
    pub covers: Vec<crate::domain::requirement::Requirement>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done {
        outputs: Map<String, Value>,
        evidence: Map<String, Value>,
    },
    /// Come back at `next_poll_at` (Unix ms) with `handle`.
    Wait {
        next_poll_at: u64,
        note: String,
        handle: Value,
    },
    Fail(String),
}

/// What a preview found.
#[derive(Debug, Clone, PartialEq)]
pub enum Preview {
    /// The artifact a person approves before the effect.
    Approve(String),
    /// Nothing to do (the quota is already enough, the change set has no changes): the step
    /// ends with this outcome, no gate.
    Nothing(Outcome),
}

#[async_trait]
pub trait Executor: Send + Sync {
    async fn preview(&self, ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview, String>;
    async fn submit(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Outcome;
    async fn poll(&self, _ctx: &Ctx, _params: &Map<String, Value>, _handle: &Value) -> Outcome {
        Outcome::Fail("this kind has nothing to poll".into())
    }
    /// `None`: the executor cannot tell whether the effect happened; a person must decide.
    async fn reconcile(&self, _ctx: &Ctx, _params: &Map<String, Value>, _token: &str) -> Option<Outcome> {
        None
    }
}

/// The executor for a kind, or `None` when this build has none yet.
pub fn for_kind(kind: StepKind) -> Option<Arc<dyn Executor>> {
    Some(match kind {
        StepKind::Approval => Arc::new(approval::Approval),
        StepKind::Probe => Arc::new(probe::Probe),
        StepKind::Command => Arc::new(command::Command),
        StepKind::CapacityModel => Arc::new(compute::CapacityModel),
        StepKind::IpCapacity => Arc::new(compute::IpCapacity),
        StepKind::Quota => Arc::new(quota::Quota),
        StepKind::Changeset => Arc::new(changeset::Changeset),
        StepKind::Loadtest => Arc::new(loadtest::Loadtest),
        StepKind::FailoverDrill | StepKind::RestoreDrill => return None,
    })
}

/// Params as the kind's typed struct, or a step failure naming the problem.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(params: &Map<String, Value>) -> Result<T, String> {
    serde_json::from_value(Value::Object(params.clone())).map_err(|e| format!("params: {e}"))
}

pub(crate) fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
