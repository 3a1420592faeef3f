//! What `flow` does, for every front end: the CLI ([`crate::cli`]) and the MCP server call the
//! same functions, which return typed, serializable structs; the front ends only parse input
//! and render output.
//!
//! - [`spec`]: read a spec file; [`plan`]: plan it (builtin or LLM planner), write the
//!   workflow file, record the version; [`model`]: ask a model (its requirements grounded, its
//!   plan validated and repaired; cache, audit);
//! - [`run`]: sync an edited workflow file and run the engine;
//! - [`status`]: steps, gates and verdicts; [`verbs`]: approve, reject, retry, skip;
//!   [`log`]: the journal and the planner's exchanges.
//!
//! Each call opens the state store for as long as it needs it, and no longer.

pub mod assess;
pub mod drill;
pub mod loadtest;
pub mod log;
pub mod model;
pub mod plan;
pub mod report;
pub mod run;
pub mod spec;
pub mod state;
pub mod status;
pub mod verbs;

use std::path::Path;
use std::sync::Arc;

use crate::clock::{rfc3339, Clock};
use crate::domain::digest;
use crate::domain::event::{Body, Event};
use crate::domain::plan::{diff, Plan, PlanDiff};
use crate::domain::policy::Policy;
use crate::domain::runbook::RunbookView;
use crate::domain::validate;
use crate::error::{Error, Result};
use crate::executor::Registry;
use crate::state::{Backend, Journal, RunbookMeta, WorkflowRead};
use crate::workflow;

/// Who acts, where state lives, what time it is, which executors run steps.
#[derive(Clone)]
pub struct Env {
    pub backend: Arc<dyn Backend>,
    /// Who acts: the AWS caller identity on shared state, the OS user locally.
    pub actor: String,
    /// The display name the person gave (`--as`): shown next to the identity, never instead.
    pub display: Option<String>,
    /// The approval policy in force (`flow.toml`).
    pub policy: Policy,
    pub clock: Arc<dyn Clock>,
    pub executors: Arc<dyn Registry>,
    /// Who is told when a gate waits, a step fails, a long wait starts, a runbook completes.
    pub notifier: Option<Arc<dyn crate::engine::Notifier>>,
    /// Where long work says how far it is.
    pub progress: Arc<dyn crate::progress::Progress>,
}

impl Env {
    pub fn now(&self) -> String {
        rfc3339(self.clock.now_ms())
    }

    pub fn open(&self) -> Result<Box<dyn Journal>> {
        Ok(self.backend.open()?)
    }

    /// Append events after the runbook's last, as this actor, now.
    pub fn append(&self, j: &mut dyn Journal, runbook: &str, next: u64, bodies: Vec<Body>) -> Result<Vec<Event>> {
        self.append_as(j, runbook, next, &self.actor, bodies)
    }

    pub fn append_as(
        &self,
        j: &mut dyn Journal,
        runbook: &str,
        next: u64,
        actor: &str,
        bodies: Vec<Body>,
    ) -> Result<Vec<Event>> {
        let at = self.now();
        let events: Vec<Event> = bodies
            .into_iter()
            .enumerate()
            .map(|(k, body)| Event {
                seq: next + k as u64,
                at: at.clone(),
                actor: actor.into(),
                as_name: self.display.clone(),
                host: crate::state::host().into(),
                body,
            })
            .collect();
        j.append(runbook, &events)?;
        Ok(events)
    }
}

/// The OS user this process runs as: the login name of its uid (not `$USER`, which anyone sets).
pub fn os_user() -> String {
    passwd_user().unwrap_or_else(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").map(|m| format!("uid {}", m.uid())).unwrap_or_else(|_| "unknown".into())
    })
}

impl Env {
    /// Who acts, as the lifecycle's verbs take it.
    pub fn who(&self) -> crate::domain::lifecycle::Who {
        crate::domain::lifecycle::Who::new(&self.actor, self.display.as_deref())
    }

    /// The policy event to journal first when the one in force is not the one last journaled.
    pub fn policy_change(&self, view: &RunbookView) -> Option<Body> {
        let d = policy_digest(&self.policy);
        (d != view.policy_digest)
            .then(|| Body::PolicyRecorded { digest: d, policy: serde_json::to_value(&self.policy).unwrap_or_default() })
    }
}

/// A policy's digest; empty for no policy at all (nothing to journal).
pub fn policy_digest(p: &Policy) -> String {
    if p.is_empty() {
        String::new()
    } else {
        digest::of_json(&serde_json::to_value(p).unwrap_or_default())
    }
}

/// The login name of this process's uid, from /etc/passwd.
fn passwd_user() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
    })
}

/// The runbook a command means: the one named, or the only one.
pub fn pick_runbook(j: &dyn Journal, name: Option<&str>) -> Result<RunbookMeta> {
    let all = j.runbooks()?;
    let names = || all.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ");
    match name {
        Some(n) => all.iter().find(|m| m.name == n).cloned().ok_or_else(|| {
            Error::Refused(if all.is_empty() {
                format!("no runbook `{n}`: the state store is empty (run `flow plan SPEC` first)")
            } else {
                format!("no runbook `{n}`; known runbooks: {}", names())
            })
        }),
        None => match all.len() {
            0 => Err(Error::Refused("no runbook yet: run `flow plan SPEC` first".into())),
            1 => Ok(all[0].clone()),
            _ => Err(Error::Refused(format!("several runbooks ({}): choose one with --runbook NAME", names()))),
        },
    }
}

/// A runbook as the store has it now.
pub struct Loaded {
    pub meta: RunbookMeta,
    pub plan: Plan,
    pub view: RunbookView,
}

pub fn load(j: &dyn Journal, meta: RunbookMeta) -> Result<Loaded> {
    let view = crate::state::project(j, &meta.name)?;
    let plan = j.plan(&meta.name, view.version)?.ok_or_else(|| {
        Error::Refused(format!("runbook `{}` has no recorded plan: run `flow plan {}`", meta.name, meta.spec))
    })?;
    Ok(Loaded { meta, plan, view })
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub version: u32,
    /// `None` for the first version.
    pub diff: Option<PlanDiff>,
    pub unchanged: bool,
    /// The `plan_recorded` event, when a version was recorded.
    pub event: Option<Event>,
}

/// Make `plan` the runbook's current version unless it already is.
pub fn record_plan(env: &Env, j: &mut dyn Journal, name: &str, plan: &Plan, source: &str) -> Result<Recorded> {
    let view = crate::state::project(j, name)?;
    let old = if view.version > 0 { j.plan(name, view.version)? } else { None };
    let d = match &old {
        Some(old) if old.digest() == plan.digest() => {
            return Ok(Recorded {
                version: view.version,
                diff: Some(PlanDiff::default()),
                unchanged: true,
                event: None,
            })
        }
        Some(old) => diff(old, plan),
        None => PlanDiff { added: plan.steps.iter().map(|s| s.id.clone()).collect(), ..Default::default() },
    };
    let version = view.version + 1;
    let reopened = crate::domain::replan::reopened(plan, &view, &d);
    j.put_plan(name, version, plan)?;
    let body = Body::PlanRecorded {
        version,
        digest: plan.digest(),
        planner: plan.planner.clone(),
        source: source.into(),
        added: d.added.clone(),
        removed: d.removed.clone(),
        changed: d.changed.clone(),
        reopened,
    };
    let event = env.append(j, name, view.next_seq(), vec![body])?.pop();
    Ok(Recorded { version, diff: old.map(|_| d), unchanged: false, event })
}

/// Register a new runbook, or point an existing one at its (maybe new) workflow file.
pub fn ensure_meta(
    env: &Env,
    j: &mut dyn Journal,
    name: &str,
    workflow_path: &Path,
    spec: &str,
) -> Result<RunbookMeta> {
    // Kept as given (relative to the project, as `flow plan` was given it), so a copied or
    // moved project, or a CI checkout at another path on shared state, finds its own file.
    let workflow = relative(workflow_path);
    let meta = match j.meta(name)? {
        Some(m) if m.workflow == workflow && m.spec == spec => return Ok(m),
        Some(m) => RunbookMeta { workflow, spec: spec.into(), ..m },
        None => {
            RunbookMeta { name: name.into(), workflow, spec: spec.into(), created_at: env.now(), workflow_read: None }
        }
    };
    j.put_meta(&meta)?;
    Ok(meta)
}

/// A path as the project sees it: relative to the working directory (`-C`) when it is under
/// it, else as given.
pub fn relative(p: &Path) -> std::path::PathBuf {
    if p.is_relative() {
        return p.to_path_buf();
    }
    std::env::current_dir()
        .ok()
        .and_then(|d| p.strip_prefix(d).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf())
}

/// Note that the workflow file's bytes (of `digest`) are plan `version`.
pub fn note_workflow(j: &mut dyn Journal, meta: &mut RunbookMeta, digest: String, version: u32) -> Result<()> {
    let read = Some(WorkflowRead { digest, version });
    if meta.workflow_read != read {
        meta.workflow_read = read;
        j.put_meta(meta)?;
    }
    Ok(())
}

/// The workflow file's plan, checked as `flow run` checks an edit before recording it: it
/// parses, names this runbook and breaks no rule of a plan.
fn checked_plan(meta: &RunbookMeta, bytes: &[u8]) -> Result<Plan> {
    let plan = workflow::parse(&meta.workflow, bytes)?;
    if plan.runbook != meta.name {
        return Err(workflow::Error::Invalid {
            path: meta.workflow.display().to_string(),
            message: format!("says runbook = \"{}\", expected \"{}\"", plan.runbook, meta.name),
        }
        .into());
    }
    let violations = validate::validate(&plan);
    if !violations.is_empty() {
        return Err(validate::Invalid { of: meta.workflow.display().to_string(), violations }.into());
    }
    Ok(plan)
}

/// The file's bytes are the ones last read, at the current version: nothing to look at.
fn already_read(l: &Loaded, bytes: &[u8]) -> bool {
    l.meta.workflow_read.as_ref().is_some_and(|r| r.version == l.view.version && r.digest == digest::of_bytes(bytes))
}

/// Read the workflow file and, if it was edited, validate it and record it as a new version.
/// An unchanged file (same bytes as last read, at the current version) is not parsed again.
pub fn sync_workflow(env: &Env, j: &mut dyn Journal, meta: &mut RunbookMeta) -> Result<Recorded> {
    let bytes = workflow::read_bytes(&meta.workflow)?;
    let file_digest = digest::of_bytes(&bytes);
    let version = crate::state::project(j, &meta.name)?.version;
    if meta.workflow_read.as_ref().is_some_and(|r| r.digest == file_digest && r.version == version) {
        return Ok(Recorded { version, diff: Some(PlanDiff::default()), unchanged: true, event: None });
    }
    let plan = checked_plan(meta, &bytes)?;
    let rec = record_plan(env, j, &meta.name, &plan, crate::domain::runbook::EDITED)?;
    note_workflow(j, meta, file_digest, rec.version)?;
    Ok(rec)
}

/// Has the workflow file been edited since its version was recorded? The changes it would
/// make, without recording anything.
pub fn pending_edit(l: &Loaded) -> Option<PlanDiff> {
    let bytes = std::fs::read(&l.meta.workflow).ok()?;
    if already_read(l, &bytes) {
        return None;
    }
    match workflow::parse(&l.meta.workflow, &bytes) {
        Ok(p) if p.digest() != l.plan.digest() => Some(diff(&l.plan, &p)),
        _ => None,
    }
}

/// Why `flow run` would refuse the workflow file as it is now (it does not parse, names another
/// runbook, or breaks a rule of the plan), or None. Nothing is recorded.
pub fn workflow_problem(l: &Loaded) -> Option<String> {
    let bytes = match workflow::read_bytes(&l.meta.workflow) {
        Ok(b) => b,
        Err(e) => return Some(e.to_string()),
    };
    if already_read(l, &bytes) {
        return None;
    }
    checked_plan(&l.meta, &bytes).err().map(|e| e.to_string())
}

/// Digest of a step's params resolved against the outputs recorded so far.
pub fn params_digest_now(plan: &Plan, view: &RunbookView, step: &str) -> Option<String> {
    let s = plan.step(step)?;
    let lookup = |st: &str, o: &str| view.output(st, o);
    crate::domain::reference::resolve(&s.params, &lookup).ok().map(|p| digest::of_json(&serde_json::Value::Object(p)))
}

/// A `command` step an LLM proposed: gated like every command, and flagged for a careful read.
pub fn llm_flag(plan: &Plan, step: &crate::domain::plan::Step) -> Option<&'static str> {
    (plan.by_llm() && step.kind == "command").then_some("command proposed by an LLM planner: read it before approving")
}
