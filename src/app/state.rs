//! Where state lives, and moving a runbook between stores: `flow state export|import` copy
//! its registry entry, every plan version, the whole journal, the planner's exchanges and a
//! fresh snapshot, then read the copy back and check its digests against the original.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use crate::clock::Clock;
use crate::domain::digest;
use crate::domain::event::Body;
use crate::error::{Error, Result};
use crate::state::{Backend, Journal};

/// A backend for a state location: `s3://BUCKET/PREFIX`, or a local directory (sled), which
/// `create` allows to be made when it is not there yet.
pub fn backend(url: &str, clock: Arc<dyn Clock>, create: bool) -> Result<Arc<dyn Backend>> {
    if url.starts_with("s3://") {
        Ok(Arc::new(crate::state::s3::S3::connect(url, clock)?))
    } else if create {
        Ok(Arc::new(crate::state::sled::Sled::new(PathBuf::from(url))))
    } else {
        Ok(Arc::new(crate::state::sled::Sled::existing(PathBuf::from(url))))
    }
}

/// What was copied, and the digests both sides agree on.
#[derive(Debug, Clone, Serialize)]
pub struct Copied {
    pub runbook: String,
    pub from: String,
    pub to: String,
    pub events: usize,
    pub plan_versions: usize,
    pub exchanges: usize,
    /// Digest of the journal, and of the plan versions, as read back from the copy.
    pub journal_digest: String,
    pub plans_digest: String,
}

struct Contents {
    meta: crate::state::RunbookMeta,
    events: Vec<crate::domain::event::Event>,
    plans: Vec<(u32, crate::domain::plan::Plan)>,
    exchanges: Vec<serde_json::Value>,
}

fn read(j: &dyn Journal, name: &str, at: &str) -> Result<Contents> {
    let meta = j.meta(name)?.ok_or_else(|| Error::Refused(format!("no runbook `{name}` in {at}")))?;
    let events = j.events_after(name, 0)?;
    let mut plans = Vec::new();
    for e in &events {
        if let Body::PlanRecorded { version, .. } = e.body {
            match j.plan(name, version)? {
                Some(p) => plans.push((version, p)),
                None => return Err(Error::Refused(format!("{at}: plan version {version} of `{name}` is missing"))),
            }
        }
    }
    let exchanges = j.exchanges(name)?;
    Ok(Contents { meta, events, plans, exchanges })
}

fn digests(c: &Contents) -> (String, String) {
    let plans: Vec<_> = c.plans.iter().map(|(v, p)| json!([v, p.digest()])).collect();
    (digest::of_json(&json!(c.events)), digest::of_json(&json!(plans)))
}

/// Copy `runbook` (or the only one) from `src` to `dst`, which must not hold it yet.
pub fn copy(src: &dyn Backend, dst: &dyn Backend, runbook: Option<&str>) -> Result<Copied> {
    let (from, to) = (src.describe(), dst.describe());
    if from == to {
        return Err(Error::Refused(format!("{from} is both the source and the destination")));
    }
    let s = src.open()?;
    let name = super::pick_runbook(s.as_ref(), runbook)?.name;
    let c = read(s.as_ref(), &name, &from)?;
    drop(s);
    let mut d = dst.open()?;
    if d.meta(&name)?.is_some() {
        return Err(Error::Refused(format!("{to} already holds runbook `{name}`; nothing was copied")));
    }
    if !d.events_after(&name, 0)?.is_empty() {
        return Err(Error::Refused(format!(
            "{to} holds events of runbook `{name}` but no registry entry (an interrupted copy?); nothing was copied"
        )));
    }
    // Plans and exchanges first, the journal next, the registry entry last: until it is
    // written the copy is not a runbook anyone sees.
    for (v, p) in &c.plans {
        d.put_plan(&name, *v, p)?;
    }
    for x in &c.exchanges {
        d.append_exchange(&name, x)?;
    }
    for chunk in c.events.chunks(500) {
        d.append(&name, chunk)?;
    }
    d.put_snapshot(&name, &crate::domain::runbook::RunbookView::from_events(&c.events))?;
    d.put_meta(&c.meta)?;
    let back = read(d.as_ref(), &name, &to)?;
    let (want, got) = (digests(&c), digests(&back));
    if want != got || back.exchanges.len() != c.exchanges.len() {
        return Err(Error::Refused(format!(
            "the copy of `{name}` in {to} does not read back as the original (journal {} vs {}, plans {} vs {})",
            digest::short(&want.0),
            digest::short(&got.0),
            digest::short(&want.1),
            digest::short(&got.1)
        )));
    }
    Ok(Copied {
        runbook: name,
        from,
        to,
        events: c.events.len(),
        plan_versions: c.plans.len(),
        exchanges: c.exchanges.len(),
        journal_digest: got.0,
        plans_digest: got.1,
    })
}
