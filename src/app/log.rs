//! `flow log`: the journal, every transition with who and when; `--llm`: the planner's
//! requests and answers.

use serde::Serialize;
use serde_json::Value;

use super::{pick_runbook, Env};
use crate::domain::event::Event;
use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct Log {
    pub runbook: String,
    pub events: Vec<Event>,
}

pub fn log(env: &Env, runbook: Option<&str>) -> Result<Log> {
    let j = env.open()?;
    let meta = pick_runbook(j.as_ref(), runbook)?;
    let events = j.events_after(&meta.name, 0)?;
    Ok(Log { runbook: meta.name, events })
}

#[derive(Debug, Clone, Serialize)]
pub struct Exchanges {
    pub runbook: String,
    pub exchanges: Vec<crate::planner::llm::Exchange>,
}

/// The planner's exchanges; those of a plan that failed are kept though no runbook was recorded.
pub fn exchanges(env: &Env, runbook: Option<&str>) -> Result<Exchanges> {
    let j = env.open()?;
    let name = match runbook {
        Some(n) => n.to_string(),
        None => pick_runbook(j.as_ref(), None)?.name,
    };
    let exchanges = j.exchanges(&name)?.into_iter().filter_map(|v: Value| serde_json::from_value(v).ok()).collect();
    Ok(Exchanges { runbook: name, exchanges })
}
