//! The builtin planner: offline and deterministic. It draws the DAG a platform engineer would
//! for the requirements a spec holds, and nothing more:
//!
//! - the spec names the app's `vpc`: read what runs there first (`assess`, read-only), before
//!   the network change;
//! - throughput: measure the current endpoint (baseline load), size the fleet from that figure
//!   (capacity model), check and raise the quotas the model needs, check the VPC's addresses;
//! - throughput or AZ tolerance: change sets for a multi-AZ network (one NAT gateway per AZ),
//!   an Auto Scaling group behind a load balancer across AZs, alarms and notifications;
//! - throughput, latency, success rate: a peak load test (against the new endpoint when the plan
//!   builds one, else against the spec's endpoint);
//! - AZ tolerance, failover downtime: an FIS experiment template (an AZ power interruption,
//!   by change set) and the failover drill that runs it;
//! - RTO, RPO: AWS Backup for the data (by change set) and a restore drill;
//! - notification: an alarm drill over the alarms change set's alarms (or the spec's
//!   `alarm_prefix`);
//! - always: a final go/no-go approval.
//!
//! The plan is drawn in passes over a [`Draft`]: `infra` (sizing, quotas, network, compute,
//! alarms), then `proof` (the drills and load tests that give each requirement its evidence,
//! and the decision).

mod infra;
mod proof;
#[cfg(test)]
mod tests;

use serde_json::{json, Value};

use crate::domain::assess::Setup;
use crate::domain::network::{self, Network};
use crate::domain::plan::{Plan, Step};
use crate::domain::requirement::{Kind, Requirement};
use crate::domain::spec::Spec;

/// The CloudFormation templates the builtin plan's change sets use, shipped in the binary:
/// `flow plan` writes each one a plan refers to into the workflows folder when it is not there
/// (a person reviews and may edit them; an existing file is never overwritten).
pub const TEMPLATES: &[(&str, &str)] = &[
    ("templates/network.yaml", include_str!("../../../workflows/templates/network.yaml")),
    ("templates/network-extend.yaml", include_str!("../../../workflows/templates/network-extend.yaml")),
    ("templates/compute.yaml", include_str!("../../../workflows/templates/compute.yaml")),
    ("templates/alarms.yaml", include_str!("../../../workflows/templates/alarms.yaml")),
    ("templates/resilience.yaml", include_str!("../../../workflows/templates/resilience.yaml")),
    ("templates/backup.yaml", include_str!("../../../workflows/templates/backup.yaml")),
];

/// Used when the spec names no endpoint; the plan says so in the step's description.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080/";
pub const AZS: u32 = 3;
pub const HEADROOM_PCT: f64 = 25.0;
pub const INSTANCE_TYPE: &str = "c6i.large";
pub const VCPUS_PER_INSTANCE: u32 = 2;
pub const VPC_CIDR: &str = "10.0.0.0/16";
/// The peak load test runs this much above the throughput target.
pub const LOAD_MARGIN_PCT: f64 = 5.0;
pub const SUBNET_PREFIX: u8 = 24;

fn step(
    id: &str,
    kind: &str,
    description: &str,
    needs: &[&str],
    covers: Vec<String>,
    gate: bool,
    params: Value,
) -> Step {
    Step {
        id: id.into(),
        kind: kind.into(),
        description: description.into(),
        needs: needs.iter().map(|s| s.to_string()).collect(),
        covers,
        gate,
        params: params.as_object().cloned().unwrap_or_default(),
    }
}

fn ids(reqs: &[&Requirement]) -> Vec<String> {
    reqs.iter().map(|r| r.id.clone()).collect()
}

/// What the passes share while they draw the plan: the spec and what runs today, what the
/// spec names (endpoint, stack), the network decided, and the steps so far.
struct Draft<'a> {
    spec: &'a Spec,
    running: Option<&'a Setup>,
    stack: String,
    endpoint: String,
    /// Said in a step's description when the spec names no endpoint.
    endpoint_note: &'static str,
    throughput: Option<f64>,
    /// The plan changes infrastructure (a throughput target or AZ tolerance).
    infra: bool,
    net: Option<Network>,
    azs: u32,
    steps: Vec<Step>,
    /// The steps that give evidence, which the decision waits for.
    verifying: Vec<&'static str>,
    /// The kept private subnets, by ARN, for the AZ drill (no flow stack tags them).
    kept_subnets: Option<String>,
}

impl Draft<'_> {
    /// The spec's requirements of the kinds `f` accepts.
    fn of(&self, f: impl Fn(&Kind) -> bool) -> Vec<&Requirement> {
        self.spec.requirements.iter().filter(|r| f(&r.kind)).collect()
    }

    fn push(&mut self, step: Step) {
        self.steps.push(step);
    }
}

/// The plan for a spec; with `running`, what runs in the spec's VPC (read by `flow plan`), the
/// change sets turn it into the target instead of building beside it: the network is kept,
/// added to, or new as [`network::decide`] says, and the launch template starts from the running
/// instance's AMI and type.
pub fn plan(runbook: &str, spec_path: &str, spec: &Spec, running: Option<&Setup>) -> Plan {
    let throughput = spec.requirements.iter().find(|r| r.kind == Kind::Throughput).map(|r| r.value);
    let az_tolerance =
        spec.requirements.iter().any(|r| matches!(r.kind, Kind::AzFailureTolerance | Kind::FailoverDowntime));
    let endpoint = spec.context.get("endpoint").cloned();
    let net = running.map(|s| network::decide(s, AZS, SUBNET_PREFIX));
    let azs = match &net {
        Some(Network::Keep { azs, .. } | Network::Extend { azs, .. }) => azs.len() as u32,
        _ => AZS,
    };
    let mut d = Draft {
        spec,
        running,
        stack: spec.context.get("stack").cloned().unwrap_or_else(|| runbook.to_string()),
        endpoint_note: if endpoint.is_some() { "" } else { " (the spec names no endpoint: set `url`)" },
        endpoint: endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
        throughput,
        infra: throughput.is_some() || az_tolerance,
        net,
        azs,
        steps: Vec::new(),
        verifying: Vec::new(),
        kept_subnets: None,
    };
    if d.infra {
        infra::draw(&mut d);
    }
    proof::alarm_drill(&mut d);
    proof::load_test(&mut d);
    proof::failover(&mut d);
    proof::restore(&mut d);
    proof::decision(&mut d);
    Plan {
        runbook: runbook.into(),
        spec: spec_path.into(),
        planner: "builtin".into(),
        planned_by: None,
        context: spec.context.clone(),
        steps: d.steps,
        requirements: spec.requirements.clone(),
        questions: spec.questions.clone(),
    }
}
