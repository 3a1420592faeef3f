//! `flow plan`: spec -> requirements -> a planner (builtin, or an LLM with its cache and audit
//! trail) -> the one validator -> the workflow file and a recorded plan version.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::model::{extract, llm_plan, model};
use super::{ensure_meta, llm_flag, note_workflow, record_plan, Env, Recorded};
use crate::domain::plan::{Plan, PlanDiff, PlannedBy};
use crate::domain::replan::{self, Loss};
use crate::domain::requirement::Requirement;
use crate::domain::runbook::{EDITED, PLANNED};
use crate::domain::spec::{self as dspec, Context};
use crate::domain::{digest, validate};
use crate::error::{Error, Result};
use crate::planner;
use crate::workflow;

/// Who drafts the plan: flow's own rules, or a model behind an OpenAI-compatible endpoint or
/// Amazon Bedrock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Planner {
    #[default]
    Builtin,
    Openai,
    Bedrock,
}

impl Planner {
    /// As the plan records it (`planner = "openai"`).
    pub fn name(self) -> &'static str {
        match self {
            Planner::Builtin => "builtin",
            Planner::Openai => "openai",
            Planner::Bedrock => "bedrock",
        }
    }
}

/// Which planner, and how to ask it.
#[derive(Debug, Clone)]
pub struct How {
    pub planner: Planner,
    pub model: Option<String>,
    pub region: Option<String>,
    pub no_cache: bool,
    pub repair_rounds: Option<u32>,
    /// With a model: ask it which requirements the spec states too (grounded, see
    /// [`crate::domain::grounding`]).
    pub extract: bool,
    /// Record the new version even when it discards evidence, approvals or an edit of the
    /// workflow file (without it, such a re-plan is refused with the list of what would go).
    pub force: bool,
    /// The runbook's name (default: the spec file's name as a slug).
    pub runbook: Option<String>,
    /// How long one model answer may take (default: [`super::model::default_timeout`]).
    pub timeout: Option<std::time::Duration>,
    /// With the builtin planner and a spec naming its `vpc`: read what runs there (read-only)
    /// and plan from it.
    pub assess: bool,
}

impl Default for How {
    fn default() -> Self {
        How {
            planner: Planner::Builtin,
            model: None,
            region: None,
            no_cache: false,
            repair_rounds: None,
            extract: true,
            force: false,
            runbook: None,
            timeout: None,
            assess: true,
        }
    }
}

/// A step as `flow plan --json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    pub id: String,
    pub kind: String,
    pub description: String,
    pub needs: Vec<String>,
    pub covers: Vec<String>,
    /// Gated: whether the plan says so or the kind requires it.
    pub gate: bool,
    pub params: Map<String, Value>,
    pub flag: Option<&'static str>,
}

/// What `flow plan` made.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    pub runbook: String,
    pub version: u32,
    pub planner: String,
    pub planned_by: Option<PlannedBy>,
    pub context: Context,
    pub steps: Vec<PlannedStep>,
    pub requirements: Vec<Requirement>,
    /// What the spec leaves open until a person answers (`flow answer`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<crate::domain::spec::Question>,
    pub workflow: String,
    /// `None` for the first version.
    pub diff: Option<PlanDiff>,
    #[serde(skip)]
    pub unchanged: bool,
    #[serde(skip)]
    pub plan: Plan,
    /// What the spec and the planner said on the way (warnings, cache hits), for the person.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What recording this version discarded (with `--force`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<Loss>,
    /// No new version: the planner's answer is the version a person edited, and the edit
    /// stays current (the version it was recorded as).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_edit: Option<u32>,
}

impl Planned {
    pub fn new(plan: Plan, rec: &Recorded, workflow: String) -> Planned {
        Planned {
            runbook: plan.runbook.clone(),
            version: rec.version,
            planner: plan.planner.clone(),
            planned_by: plan.planned_by.clone(),
            context: plan.context.clone(),
            steps: plan
                .steps
                .iter()
                .map(|s| PlannedStep {
                    id: s.id.clone(),
                    kind: s.kind.clone(),
                    description: s.description.clone(),
                    needs: s.needs.clone(),
                    covers: s.covers.clone(),
                    gate: s.gated(),
                    params: s.params.clone(),
                    flag: llm_flag(&plan, s),
                })
                .collect(),
            requirements: plan.requirements.clone(),
            questions: plan.questions.clone(),
            workflow,
            diff: rec.diff.clone(),
            unchanged: rec.unchanged,
            plan,
            notes: vec![],
            lost: None,
            kept_edit: None,
        }
    }
}

/// A runbook name from any text: lowercase letters (any script) and digits, other runs of
/// characters as one `-`, at most 60 characters.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(60).collect::<String>().trim_end_matches('-').to_string()
}

/// The runbook a spec file names: its file name as a slug (or the name given).
pub fn runbook_name(spec_path: &Path, given: Option<&str>) -> Result<String> {
    let name = match given {
        Some(g) => {
            let n = slug(g);
            if n != g {
                return Err(Error::Usage(format!(
                    "runbook name `{g}`: use lowercase letters, digits and `-` (`{n}` would do)"
                )));
            }
            n
        }
        None => slug(spec_path.file_stem().and_then(|s| s.to_str()).unwrap_or("")),
    };
    if name.is_empty() {
        return Err(Error::Refused(format!("cannot name a runbook after {}", spec_path.display())));
    }
    Ok(name)
}

/// Plan a spec file: validate, write `<workflows>/<name>.toml`, record the version.
pub async fn plan(env: &Env, path: &Path, workflows: &Path, how: &How) -> Result<Planned> {
    let mut s = super::spec::read(path)?;
    let name = runbook_name(path, how.runbook.as_deref())?;
    // Questions a person already answered for this runbook (lines unchanged) are settled.
    {
        let j = env.open()?;
        if j.meta(&name)?.is_some() {
            let view = crate::state::project(j.as_ref(), &name)?;
            s.apply_answers(&view.answers);
        }
    }
    let shown = path.display().to_string();
    let llm = how.planner != Planner::Builtin;
    let mut notes = Vec::new();
    // A conflict or an impossible figure is refused before any model is asked; a spec where
    // flow read nothing may still hold what a model can point at.
    if let Some(e) = s.refusal(&shown) {
        if !(llm && how.extract && matches!(e.kind, dspec::ErrorKind::NoRequirements { .. })) {
            return Err(e.into());
        }
    }
    let model = if llm { Some(model(how).await?) } else { None };
    if let Some(m) = model.as_ref().filter(|_| how.extract) {
        extract(env, m, path, &mut s, Some(&name), &mut notes).await?;
        if let Some(e) = s.refusal(&shown) {
            return Err(e.into());
        }
    }
    notes.extend(s.warnings().map(|d| match d.line {
        Some(l) => format!("warning: {shown}:{l}: {}", d.message),
        None => format!("warning: {shown}: {}", d.message),
    }));
    let running = match s.context.get("vpc") {
        Some(vpc) if model.is_none() && how.assess => {
            let aws = crate::aws::config(None, &s.context).await.map_err(|e| Error::Assess(e.into()))?;
            let setup = crate::executor::discover(&aws, Some(vpc)).await.map_err(|e| {
                Error::Assess(crate::executor::Error::Step(format!(
                    "{e}; nothing was planned (`flow plan {shown} --no-assess` plans without reading it)"
                )))
            })?;
            notes.push(format!("note: planned from what runs in {}", setup.summary()));
            Some(setup)
        }
        _ => None,
    };
    let plan = match &model {
        None => planner::builtin::plan(&name, &shown, &s, running.as_ref()),
        Some(m) => llm_plan(env, m, &name, &shown, path, &s, &mut notes).await?,
    };
    let violations = validate::validate(&plan);
    if !violations.is_empty() {
        return Err(
            validate::Invalid { of: format!("from the {} planner for {shown}", plan.planner), violations }.into()
        );
    }
    let wf_path: PathBuf = workflows.join(format!("{name}.toml"));
    let mut j = env.open()?;
    // A runbook belongs to one spec file: another file whose name gives the same runbook
    // (`orders/launch.md` and `search/launch.md`) would take over its history.
    if let Some(m) = j.meta(&name)?.filter(|m| same_file(&m.spec, &shown) == Some(false)) {
        return Err(Error::Refused(format!(
            "runbook `{name}` belongs to {}, not {shown}; nothing was planned. Give this spec its own runbook: \
             `flow plan {shown} --runbook NAME`",
            m.spec
        )));
    }
    let mut meta = ensure_meta(env, j.as_mut(), &name, &wf_path, &shown)?;
    let view = crate::state::project(j.as_ref(), &name)?;
    let current = if view.version > 0 { j.plan(&name, view.version)? } else { None };
    let file = std::fs::read(&meta.workflow).ok();
    // An edit in the file that `flow run` has not recorded yet.
    let file_edit = file.as_ref().and_then(|bytes| {
        let recorded = meta.workflow_read.as_ref().is_some_and(|r| r.digest == digest::of_bytes(bytes));
        (!recorded).then(|| workflow::parse(&meta.workflow, bytes).ok()).flatten()
    });
    let file_edit = file_edit.filter(|p| current.as_ref().is_none_or(|c| c.digest() != p.digest()));
    if let Some(current) = current.as_ref().filter(|c| c.digest() == plan.digest()) {
        // The same plan: no new version; the file stays as it is (a pending edit included),
        // and is written only if it is missing.
        notes.extend(write_templates(&plan, &meta.workflow)?);
        if file.is_none() {
            let written = workflow::write(&meta.workflow, &plan, view.version)?;
            note_workflow(j.as_mut(), &mut meta, written, view.version)?;
        } else if file_edit.is_some() {
            notes.push(format!(
                "note: {} holds an edit `flow run` has not recorded yet; it is left as it is",
                meta.workflow.display()
            ));
        }
        let rec = Recorded { version: view.version, diff: Some(PlanDiff::default()), unchanged: true, event: None };
        let mut planned = Planned::new(current.clone(), &rec, wf_path.display().to_string());
        planned.notes = notes;
        return Ok(planned);
    }
    let planned_before = if view.planned_version > 0 { j.plan(&name, view.planned_version)? } else { None };
    let edited_version = (view.source == EDITED).then_some(view.version);
    if let (Some(current), Some(before), Some(edited)) = (&current, &planned_before, edited_version) {
        if before.digest() == plan.digest() && !how.force {
            // The planner answers as it did before the person's edit: the edit stands.
            notes.push(format!(
                "note: the planner's plan is unchanged since version {}; version {edited}, the edit of {}, stays current (`flow plan --force` replaces it with the planner's)",
                view.planned_version,
                meta.workflow.display()
            ));
            let rec = Recorded { version: view.version, diff: Some(PlanDiff::default()), unchanged: true, event: None };
            let mut planned = Planned::new(current.clone(), &rec, wf_path.display().to_string());
            planned.notes = notes;
            planned.kept_edit = Some(edited);
            return Ok(planned);
        }
    }
    let lost = current.as_ref().map(|current| {
        let edit = match (&file_edit, edited_version, &planned_before) {
            (Some(edit), _, _) => Some((edit, current, None)),
            (None, Some(v), Some(before)) => Some((current, before, Some(v))),
            _ => None,
        };
        replan::loss(current, &view, &plan, edit)
    });
    if let Some(l) = lost.as_ref().filter(|l| !l.is_empty() && !how.force) {
        return Err(Error::Refused(format!(
            "re-planning {shown} would discard what runbook `{name}` holds; nothing was recorded or written.\n{}  \
             `flow plan {shown} --force` records the new version anyway.",
            l.describe()
        )));
    }
    let rec = record_plan(env, j.as_mut(), &name, &plan, PLANNED)?;
    let written = workflow::write(&meta.workflow, &plan, rec.version)?;
    notes.extend(write_templates(&plan, &meta.workflow)?);
    // The file reads back as the recorded plan: the next `flow run` need not parse it again.
    let text =
        std::fs::read(&meta.workflow).map_err(|e| Error::io(format!("reading {}", meta.workflow.display()), e))?;
    if workflow::parse(&meta.workflow, &text).is_ok_and(|p| p.digest() == plan.digest()) {
        note_workflow(j.as_mut(), &mut meta, written, rec.version)?;
    }
    drop(j);
    let mut planned = Planned::new(plan, &rec, wf_path.display().to_string());
    planned.notes = notes;
    planned.lost = lost.filter(|l| !l.is_empty());
    Ok(planned)
}

/// Do two spec paths name the same file? `None` when that cannot be told (the recorded one is
/// gone): then it is taken to be the same, as a moved project's would be.
fn same_file(recorded: &str, given: &str) -> Option<bool> {
    if recorded == given {
        return Some(true);
    }
    let (a, b) = (std::fs::canonicalize(recorded).ok()?, std::fs::canonicalize(given).ok()?);
    Some(a == b)
}

/// Write the shipped templates the plan's change sets refer to and the workflows folder lacks;
/// one note each.
fn write_templates(plan: &Plan, workflow: &Path) -> Result<Vec<String>> {
    let dir = workflow.parent().unwrap_or(Path::new("."));
    let mut notes = Vec::new();
    for s in plan.steps.iter().filter(|s| s.kind == "changeset") {
        let Some(t) = s.params.get("template").and_then(Value::as_str) else { continue };
        let Some((_, text)) = planner::builtin::TEMPLATES.iter().find(|(name, _)| *name == t) else { continue };
        let path = dir.join(t);
        if path.exists() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        std::fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        notes.push(format!(
            "wrote {} (flow's template for step `{}`: review it before approving the change set)",
            path.display(),
            s.id
        ));
    }
    Ok(notes)
}
