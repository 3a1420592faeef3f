//! Executors: what each step kind does, through its verbs.
//!
//! - `preview` is read-only: the artifact a person approves (what would happen), or nothing to
//!   do at all;
//! - `submit` carries out the step, idempotent by the token the lifecycle derives from runbook,
//!   step, params digest and attempt;
//! - `poll` follows something that takes minutes or days;
//! - `reconcile` looks up, after a crash mid-submit, whether the effect happened (`None`: it
//!   cannot tell, and a person decides).
//!
//! Executors never touch the state store: they return results and the engine records them. The
//! engine finds them through a [`Registry`]; [`Builtin`] is this build's, and tests give the
//! engine their own.

mod alarm;
mod approval;
mod assess;
mod changeset;
mod command;
mod compute;
mod failover;
mod loadtest;
mod probe;
mod quota;
mod restore;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::domain::catalogue::StepKind;
use crate::domain::spec::Context;
use crate::{aws, load};

pub use crate::domain::lifecycle::{Outcome, Preview};
pub use assess::{assess, discover};
pub use failover::aws_token;
pub use loadtest::threshold_for;

/// What an executor may know about where it runs.
#[derive(Clone)]
pub struct Ctx {
    pub runbook: String,
    pub step: String,
    pub context: Context,
    /// The folder holding the workflow file; relative paths in params start here.
    pub workflow_dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    /// The requirements' verdicts now, for the kinds that are a human decision (empty for the
    /// others): what the person decides on.
    pub verdicts: Vec<crate::domain::verdict::Verdict>,
    /// The requirements this step covers (a load test's thresholds come from them).
    pub covers: Vec<crate::domain::requirement::Requirement>,
    /// Where long work says how far it is.
    pub progress: Arc<dyn crate::progress::Progress>,
}

/// Why a step's effect failed: the message recorded in the journal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("params: {0}")]
    Params(String),
    #[error(transparent)]
    Unresolved(#[from] crate::domain::reference::Unresolved),
    #[error(transparent)]
    Aws(#[from] aws::Error),
    #[error(transparent)]
    Capacity(#[from] crate::domain::capacity::Error),
    #[error(transparent)]
    Load(#[from] load::Error),
    /// Anything else the step ran into, said for a person.
    #[error("{0}")]
    Step(String),
    /// From `reconcile`: flow cannot tell whether the effect happened, and found this.
    #[error("{0}")]
    Interrupted(String),
}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error::Step(s)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[async_trait]
pub trait Executor: Send + Sync {
    async fn preview(&self, ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview>;
    async fn submit(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Outcome>;
    async fn poll(&self, _ctx: &Ctx, _params: &Map<String, Value>, _handle: &Value) -> Result<Outcome> {
        Err(Error::Step("this kind has nothing to poll".into()))
    }
    /// `None`: the executor cannot tell whether the effect happened; a person must decide.
    async fn reconcile(&self, _ctx: &Ctx, _params: &Map<String, Value>, _token: &str) -> Result<Option<Outcome>> {
        Ok(None)
    }
}

/// Where the engine finds each kind's executor.
pub trait Registry: Send + Sync {
    /// `None` when this build has none for the kind.
    fn executor(&self, kind: StepKind) -> Option<Arc<dyn Executor>>;
}

/// The executors built into flow.
pub struct Builtin;

impl Registry for Builtin {
    fn executor(&self, kind: StepKind) -> Option<Arc<dyn Executor>> {
        Some(match kind {
            StepKind::Approval => Arc::new(approval::Approval),
            StepKind::Probe => Arc::new(probe::Probe),
            StepKind::Command => Arc::new(command::Command),
            StepKind::CapacityModel => Arc::new(compute::CapacityModel),
            StepKind::IpCapacity => Arc::new(compute::IpCapacity),
            StepKind::Quota => Arc::new(quota::Quota),
            StepKind::Changeset => Arc::new(changeset::Changeset),
            StepKind::Loadtest => Arc::new(loadtest::Loadtest),
            StepKind::FailoverDrill => Arc::new(failover::FailoverDrill),
            StepKind::RestoreDrill => Arc::new(restore::RestoreDrill),
            StepKind::AlarmDrill => Arc::new(alarm::AlarmDrill),
            StepKind::Assess => Arc::new(assess::Assess),
        })
    }
}

/// A step's progress line while its long work lasts; cleared when dropped (on every way out).
pub(crate) struct Shown {
    progress: Arc<dyn crate::progress::Progress>,
    step: String,
}

impl Shown {
    pub(crate) fn new(ctx: &Ctx) -> Shown {
        Shown { progress: ctx.progress.clone(), step: ctx.step.clone() }
    }

    pub(crate) fn say(&self, line: &str) {
        self.progress.show(&self.step, line);
    }

    pub(crate) fn bar(&self, pos: u64, len: u64, line: &str) {
        self.progress.bar(&self.step, pos, len, line);
    }
}

impl Drop for Shown {
    fn drop(&mut self) {
        self.progress.done(&self.step);
    }
}

/// Params as the kind's typed struct.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(params: &Map<String, Value>) -> Result<T> {
    crate::domain::catalogue::typed(params).map_err(|e| Error::Params(e.0))
}

pub(crate) fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
