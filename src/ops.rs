//! Runbook operations over the store: which runbook a command means, recording plan versions
//! (with their diff), syncing an edited workflow file, and the operator verbs (approve, reject,
//! retry, skip). Each verb opens the store, checks the projection, appends one event, closes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::{rfc3339, Clock};
use crate::domain::plan::{resolve, Plan};
use crate::domain::runbook::{diff, Body, Event, Phase, PlanDiff, RunbookView};
use crate::domain::{digest, validate};
use crate::error::{Error, Result};
use crate::store::{RunbookMeta, Store};
use crate::workflow;

/// Who acts and when: shared by every command.
#[derive(Clone)]
pub struct Env {
    pub state: PathBuf,
    pub actor: String,
    pub clock: Arc<dyn Clock>,
}

impl Env {
    pub fn now(&self) -> String {
        rfc3339(self.clock.now_ms())
    }
    pub fn open(&self) -> Result<Store> {
        Ok(Store::open(&self.state)?)
    }
}

/// The OS user, for approvals without `--as`.
pub fn os_user() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .or_else(passwd_user)
        .unwrap_or_else(|| "unknown".into())
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

pub fn pick_runbook(store: &Store, name: Option<&str>) -> Result<RunbookMeta> {
    let all = store.runbooks()?;
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
    pub events: Vec<Event>,
}

pub fn load(store: &Store, meta: RunbookMeta) -> Result<Loaded> {
    let events = store.events(&meta.name)?;
    let view = RunbookView::from_events(&events);
    let plan = store.plan(&meta.name, view.version)?.ok_or_else(|| {
        Error::Refused(format!("runbook `{}` has no recorded plan: run `flow plan {}`", meta.name, meta.spec))
    })?;
    Ok(Loaded { meta, plan, view, events })
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub version: u32,
    /// `None` for the first version.
    pub diff: Option<PlanDiff>,
    pub unchanged: bool,
}

/// Make `plan` the runbook's current version unless it already is.
pub fn record_plan(env: &Env, store: &Store, name: &str, plan: &Plan, source: &str) -> Result<Recorded> {
    let view = RunbookView::from_events(&store.events(name)?);
    let old = if view.version > 0 { store.plan(name, view.version)? } else { None };
    let d = match &old {
        Some(old) if old.digest() == plan.digest() => {
            return Ok(Recorded { version: view.version, diff: Some(PlanDiff::default()), unchanged: true })
        }
        Some(old) => diff(old, plan),
        None => PlanDiff { added: plan.steps.iter().map(|s| s.id.clone()).collect(), ..Default::default() },
    };
    let version = view.version + 1;
    store.put_plan(name, version, plan)?;
    store.append(
        name,
        &env.actor,
        env.now(),
        Body::PlanRecorded {
            version,
            digest: plan.digest(),
            planner: plan.planner.clone(),
            source: source.into(),
            added: d.added.clone(),
            removed: d.removed.clone(),
            changed: d.changed.clone(),
        },
    )?;
    Ok(Recorded { version, diff: old.map(|_| d), unchanged: false })
}

/// Register a new runbook, or point an existing one at its (maybe new) workflow file.
pub fn ensure_meta(env: &Env, store: &Store, name: &str, workflow_path: &Path, spec: &str) -> Result<RunbookMeta> {
    let workflow_abs = std::path::absolute(workflow_path).unwrap_or_else(|_| workflow_path.to_path_buf());
    let meta = match store.meta(name)? {
        Some(m) if m.workflow == workflow_abs && m.spec == spec => return Ok(m),
        Some(m) => RunbookMeta { workflow: workflow_abs, spec: spec.into(), ..m },
        None => RunbookMeta { name: name.into(), workflow: workflow_abs, spec: spec.into(), created_at: env.now() },
    };
    store.put_meta(&meta)?;
    Ok(meta)
}

/// Read the workflow file, validate it, and record it as a new version if it was edited.
pub fn sync_workflow(env: &Env, store: &Store, meta: &RunbookMeta) -> Result<(Plan, Recorded)> {
    let plan = workflow::read(&meta.workflow)?;
    if plan.runbook != meta.name {
        return Err(Error::Workflow {
            path: meta.workflow.display().to_string(),
            message: format!("says runbook = \"{}\", expected \"{}\"", plan.runbook, meta.name),
        });
    }
    let violations = validate::validate(&plan);
    if !violations.is_empty() {
        return Err(validate::Invalid { source: meta.workflow.display().to_string(), violations }.into());
    }
    let rec = record_plan(env, store, &meta.name, &plan, "workflow edit")?;
    Ok((plan, rec))
}

/// Digest of a step's params resolved against the outputs recorded so far.
pub fn params_digest_now(plan: &Plan, view: &RunbookView, step: &str) -> Option<String> {
    let s = plan.step(step)?;
    resolve(&s.params, &view.outputs()).ok().map(|p| digest::of_json(&serde_json::Value::Object(p)))
}

fn step_list(plan: &Plan, view: &RunbookView, phase: Phase) -> String {
    let ids: Vec<&str> = plan.steps.iter().filter(|s| view.step(&s.id).phase == phase).map(|s| s.id.as_str()).collect();
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

fn find_step<'a>(l: &'a Loaded, step: &str, waiting: &str) -> Result<&'a crate::domain::plan::Step> {
    l.plan.step(step).ok_or_else(|| Error::Refused(format!("no step `{step}` in runbook `{}`; {waiting}", l.meta.name)))
}

/// `flow approve`.
pub fn approve(env: &Env, runbook: Option<&str>, step: &str, by: &str, comment: Option<String>) -> Result<Event> {
    let store = env.open()?;
    let l = load(&store, pick_runbook(&store, runbook)?)?;
    let waiting = format!("waiting for approval: {}", step_list(&l.plan, &l.view, Phase::AwaitingApproval));
    let s = find_step(&l, step, &waiting)?;
    let v = l.view.step(step);
    if v.phase != Phase::AwaitingApproval {
        return Err(Error::Refused(format!(
            "step `{step}` is not waiting for approval (it is {}); {waiting}",
            l.view.state_name(s)
        )));
    }
    let (Some(artifact_digest), Some(params_digest)) = (v.artifact_digest.clone(), v.params_digest.clone()) else {
        return Err(Error::Refused(format!("step `{step}` has no recorded preview to approve")));
    };
    if params_digest_now(&l.plan, &l.view, step).as_deref() != Some(params_digest.as_str()) {
        return Err(Error::Refused(format!(
            "step `{step}`: its params changed since the preview was shown; run `flow run` to preview it again"
        )));
    }
    Ok(store.append(
        &l.meta.name,
        by,
        env.now(),
        Body::Approved { step: step.into(), by: by.into(), comment, artifact_digest, params_digest },
    )?)
}

/// `flow reject`.
pub fn reject(env: &Env, runbook: Option<&str>, step: &str, by: &str, reason: &str) -> Result<Event> {
    let store = env.open()?;
    let l = load(&store, pick_runbook(&store, runbook)?)?;
    let waiting = format!("waiting for approval: {}", step_list(&l.plan, &l.view, Phase::AwaitingApproval));
    let s = find_step(&l, step, &waiting)?;
    if !matches!(l.view.step(step).phase, Phase::AwaitingApproval | Phase::Approved) {
        return Err(Error::Refused(format!(
            "step `{step}` is not waiting for a decision (it is {}); {waiting}",
            l.view.state_name(s)
        )));
    }
    Ok(store.append(
        &l.meta.name,
        by,
        env.now(),
        Body::Rejected { step: step.into(), by: by.into(), reason: reason.into() },
    )?)
}

/// `flow retry`.
pub fn retry(env: &Env, runbook: Option<&str>, step: &str, by: &str) -> Result<Event> {
    let store = env.open()?;
    let l = load(&store, pick_runbook(&store, runbook)?)?;
    let failed = format!(
        "failed or rejected: {}, {}",
        step_list(&l.plan, &l.view, Phase::Failed),
        step_list(&l.plan, &l.view, Phase::Rejected)
    );
    let s = find_step(&l, step, &failed)?;
    if !matches!(l.view.step(step).phase, Phase::Failed | Phase::Rejected) {
        return Err(Error::Refused(format!("step `{step}` has not failed (it is {}); {failed}", l.view.state_name(s))));
    }
    Ok(store.append(&l.meta.name, by, env.now(), Body::RetryRequested { step: step.into(), by: by.into() })?)
}

/// `flow skip`.
pub fn skip(env: &Env, runbook: Option<&str>, step: &str, by: &str, reason: &str) -> Result<Event> {
    let store = env.open()?;
    let l = load(&store, pick_runbook(&store, runbook)?)?;
    let s = find_step(&l, step, "see `flow status` for the steps")?;
    let phase = l.view.step(step).phase;
    if matches!(phase, Phase::Succeeded | Phase::Skipped) {
        return Err(Error::Refused(format!("step `{step}` is already {}", l.view.state_name(s))));
    }
    if matches!(phase, Phase::Previewing | Phase::Submitting) {
        return Err(Error::Refused(format!(
            "step `{step}` is running; let `flow run` finish it (after a crash, `flow run` reconciles it first)"
        )));
    }
    Ok(store.append(
        &l.meta.name,
        by,
        env.now(),
        Body::Skipped { step: step.into(), by: by.into(), reason: reason.into() },
    )?)
}
