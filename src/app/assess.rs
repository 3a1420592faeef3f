//! `flow assess`: what runs in the app's VPC and what in it threatens the requirements; read
//! only. With a spec, its context names the region and the VPC, and each finding names the
//! requirements of the kinds it threatens.

use std::path::Path;

use serde::Serialize;

use super::Env;
use crate::domain::assess::{Finding, Setup};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub version: u32,
    pub setup: Setup,
    pub findings: Vec<Judged>,
}

/// A finding and the spec's requirements it threatens.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    #[serde(flatten)]
    pub finding: Finding,
    /// Ids of the spec's requirements of the threatened kinds (empty without a spec).
    pub requirements: Vec<String>,
}

pub async fn run(
    _env: &Env,
    spec: Option<&Path>,
    vpc: Option<&str>,
    region: Option<&str>,
    fleet_max: Option<u64>,
) -> Result<Assessment> {
    let spec = spec.map(super::spec::read).transpose()?;
    let context = spec.as_ref().map(|s| s.context.clone()).unwrap_or_default();
    let vpc = vpc.map(str::to_string).or_else(|| context.get("vpc").cloned());
    let aws = crate::aws::config(region, &context).await.map_err(|e| Error::Assess(e.into()))?;
    let (setup, findings) = crate::executor::assess(&aws, vpc.as_deref(), fleet_max).await.map_err(Error::Assess)?;
    let findings = findings
        .into_iter()
        .map(|f| {
            let requirements = spec
                .iter()
                .flat_map(|s| &s.requirements)
                .filter(|r| f.threatens.contains(&r.kind.to_string()))
                .map(|r| r.id.clone())
                .collect();
            Judged { finding: f, requirements }
        })
        .collect();
    Ok(Assessment { version: 1, setup, findings })
}

/// The setup the runbook's plan describes (`flow graph --architecture target`): what runs in its
/// VPC, read-only, when the plan changes a running one, with what the change sets add.
pub async fn target(env: &Env, runbook: Option<&str>, region: Option<&str>) -> Result<Setup> {
    let plan = {
        let j = env.open()?;
        let l = super::load(j.as_ref(), super::pick_runbook(j.as_ref(), runbook)?)?;
        l.plan
    };
    let running = match plan.context.get("vpc") {
        Some(vpc) if !crate::domain::network::builds_new_vpc(&plan) => {
            let aws = crate::aws::config(region, &plan.context).await.map_err(|e| Error::Assess(e.into()))?;
            Some(crate::executor::discover(&aws, Some(vpc)).await.map_err(Error::Assess)?)
        }
        _ => None,
    };
    crate::domain::network::target(&plan, running.as_ref()).map_err(|e| Error::Refused(e.to_string()))
}
