//! Workflow files: `workflows/<runbook>.toml`, the plan as people review and edit it.

use std::path::Path;

use serde_json::Value;

use crate::domain::digest;
use crate::domain::plan::Plan;

/// Why a workflow file cannot be read, written or used, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("workflow {path}: no such file (run `flow plan SPEC` first)")]
    Missing { path: String },
    #[error("workflow {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("workflow {path}: not UTF-8 text: {source}")]
    NotUtf8 { path: String, source: std::str::Utf8Error },
    /// Not a plan: the TOML parser's words (pointing at the line), a value flow cannot use, or
    /// another runbook's name.
    #[error("workflow {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("workflow (rendering): {0}")]
    Render(#[from] toml::ser::Error),
    #[error("{what}: {source}")]
    Write { what: String, source: std::io::Error },
}

type Result<T, E = Error> = std::result::Result<T, E>;

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// The file's text: a short header, then the plan.
pub fn render(plan: &Plan, version: u32) -> Result<String> {
    let mut plan = plan.clone();
    for s in plan.steps.iter_mut() {
        let mut v = Value::Object(std::mem::take(&mut s.params));
        strip_nulls(&mut v);
        s.params = match v {
            Value::Object(m) => m,
            _ => Default::default(),
        };
    }
    let body = toml::to_string_pretty(&plan)?;
    Ok(format!(
        "# flow workflow for runbook `{}`: plan version {version}, planner {}.\n\
         # Review it, edit it if you need to: `flow run` validates this file again and records an\n\
         # edited version (changed steps lose their approvals). `flow plan` rewrites it.\n\n{body}",
        plan.runbook, plan.planner
    ))
}

/// Write the file atomically; returns the digest of its bytes.
pub fn write(path: &Path, plan: &Plan, version: u32) -> Result<String> {
    let text = render(plan, version)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|source| Error::Write { what: format!("creating {}", dir.display()), source })?;
    }
    // Write then rename, so a crash never leaves half a file.
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, &text)
        .map_err(|source| Error::Write { what: format!("writing {}", tmp.display()), source })?;
    std::fs::rename(&tmp, path)
        .map_err(|source| Error::Write { what: format!("writing {}", path.display()), source })?;
    Ok(digest::of_bytes(text.as_bytes()))
}

/// The file's bytes, or a workflow error naming it.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let shown = path.display().to_string();
    std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::Missing { path: shown },
        _ => Error::Read { path: shown, source },
    })
}

/// Parse a workflow file's bytes.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Plan> {
    let shown = path.display().to_string();
    let text = std::str::from_utf8(bytes).map_err(|source| Error::NotUtf8 { path: shown.clone(), source })?;
    let bad = |message: String| Error::Invalid { path: shown.clone(), message };
    let value: toml::Value = toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().to_string()))?;
    // TOML has inf and nan; JSON (the params' model) has neither, and would read them as
    // nothing: refused here, naming the value, rather than silently dropped.
    if let Some(at) = non_finite(&value, "") {
        return Err(bad(at));
    }
    // Parsed again into the plan, for errors that point at the line.
    toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().to_string()))
}

/// The first float that is not a number (inf, nan), named by where it is: `steps[3] (peak-load).params.rate`.
fn non_finite(v: &toml::Value, at: &str) -> Option<String> {
    match v {
        toml::Value::Float(f) if !f.is_finite() => {
            let f = if f.is_nan() { "nan".to_string() } else { f.to_string() };
            Some(format!("{at} = {f} is not a number flow can use: give a finite value"))
        }
        toml::Value::Table(t) => t.iter().find_map(|(k, v)| {
            let here = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
            non_finite(v, &here)
        }),
        toml::Value::Array(a) => a.iter().enumerate().find_map(|(i, v)| {
            let id = v.get("id").and_then(toml::Value::as_str).map(|id| format!(" ({id})")).unwrap_or_default();
            non_finite(v, &format!("{at}[{i}]{id}"))
        }),
        _ => None,
    }
}

pub fn read(path: &Path) -> Result<Plan> {
    parse(path, &read_bytes(path)?)
}
