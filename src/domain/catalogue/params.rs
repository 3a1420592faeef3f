//! The params of the approval, probe, command, capacity, quota, change set and load test
//! kinds, each with the rules a value must keep ([`Check`]).

use crate::domain::reference::Input;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use super::*;

/// Checks beyond types (ranges, one-of).
pub trait Check {
    fn check(&self) -> Result<(), ParamsError> {
        Ok(())
    }
}

pub(crate) fn positive(name: &str, v: &Input<f64>) -> Result<(), ParamsError> {
    match v {
        Input::Value(x) if !x.is_finite() => Err(format!("`{name}` must be a finite number, got {x}").into()),
        Input::Value(x) if x.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) => {
            Err(format!("`{name}` must be greater than 0, got {x}").into())
        }
        _ => Ok(()),
    }
}

/// The highest arrival rate the load generator schedules: one request every 100 ns. Its
/// scheduler counts time in nanoseconds; far above this, gaps round to nothing.
pub const MAX_RATE: f64 = 10_000_000.0;

/// The one rule for a load test's arrival rate, for `flow loadtest` flags and `loadtest`
/// params alike: a finite number above 0 and at most [`MAX_RATE`].
pub fn check_rate(name: &str, rate: f64) -> Result<(), ParamsError> {
    if !rate.is_finite() {
        return Err(ParamsError(format!("{name} {rate} is not a rate: give a finite number of requests per second")));
    }
    if rate <= 0.0 {
        return Err(ParamsError(format!("{name} must be greater than 0, got {rate}")));
    }
    if rate > MAX_RATE {
        return Err(ParamsError(format!(
            "{name} {rate} req/s is more than the load generator can schedule (at most {} req/s, one request every 100 ns)",
            crate::domain::requirement::fmt_num(MAX_RATE)
        )));
    }
    Ok(())
}

pub(crate) fn rate(name: &str, v: &Input<f64>) -> Result<(), ParamsError> {
    match v {
        Input::Value(x) => check_rate(&format!("`{name}`"), *x),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalParams {
    /// What the person decides.
    pub summary: String,
    #[serde(default)]
    pub checklist: Vec<String>,
}
impl Check for ApprovalParams {}

pub(crate) fn d_status() -> u16 {
    200
}
pub(crate) fn d_timeout_ms() -> u64 {
    5000
}
pub(crate) fn d_one() -> u32 {
    1
}
pub(crate) fn d_interval() -> u64 {
    10
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeParams {
    pub url: Input<String>,
    #[serde(default = "d_status")]
    pub expect_status: u16,
    #[serde(default)]
    pub max_latency_ms: Option<u64>,
    #[serde(default = "d_timeout_ms")]
    pub timeout_ms: u64,
    /// How many times to try before failing; between tries the step waits `interval_s`.
    #[serde(default = "d_one")]
    pub attempts: u32,
    #[serde(default = "d_interval")]
    pub interval_s: u64,
}
impl Check for ProbeParams {
    fn check(&self) -> Result<(), ParamsError> {
        if let Input::Value(u) = &self.url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!("`url` must start with http:// or https://, got `{u}`").into());
            }
        }
        if self.attempts == 0 {
            return Err("`attempts` must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandParams {
    /// Run by `sh -c`.
    pub run: String,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub timeout_s: Option<u64>,
    #[serde(default)]
    pub expect_exit: i32,
}
impl Check for CommandParams {
    fn check(&self) -> Result<(), ParamsError> {
        if self.run.trim().is_empty() {
            return Err("`run` is empty".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityModelParams {
    pub target_rps: Input<f64>,
    /// What one instance serves, measured (a baseline load test's throughput) or given.
    pub per_instance_rps: Input<f64>,
    pub azs: u32,
    pub headroom_pct: f64,
    pub vcpus_per_instance: u32,
    #[serde(default)]
    pub instance_type: Option<String>,
}
impl Check for CapacityModelParams {
    fn check(&self) -> Result<(), ParamsError> {
        positive("target_rps", &self.target_rps)?;
        positive("per_instance_rps", &self.per_instance_rps)?;
        if self.azs < 2 {
            return Err(format!("`azs` must be at least 2 to survive the loss of one, got {}", self.azs).into());
        }
        if !(0.0..=1000.0).contains(&self.headroom_pct) {
            return Err(format!("`headroom_pct` must be between 0 and 1000, got {}", self.headroom_pct).into());
        }
        if self.vcpus_per_instance == 0 {
            return Err("`vcpus_per_instance` must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpCapacityParams {
    pub vpc_cidr: String,
    /// Prefix length of each per-AZ subnet (for example 24).
    pub subnet_prefix: u8,
    pub azs: u32,
    /// Instances the network must hold at most (the capacity model's `max_instances`).
    pub instances: Input<u64>,
    /// Addresses per subnet set aside besides instances: AWS's 5, a load balancer's 8, a NAT's 1.
    #[serde(default = "d_reserved")]
    pub reserved_per_subnet: u64,
}
pub(crate) fn d_reserved() -> u64 {
    14
}
impl Check for IpCapacityParams {
    fn check(&self) -> Result<(), ParamsError> {
        crate::domain::capacity::parse_cidr(&self.vpc_cidr).map_err(|e| ParamsError(e.to_string()))?;
        if !(16..=28).contains(&self.subnet_prefix) {
            return Err(
                format!("`subnet_prefix` must be between 16 and 28 (AWS limits), got {}", self.subnet_prefix).into()
            );
        }
        if self.azs == 0 {
            return Err("`azs` must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaParams {
    pub service_code: String,
    #[serde(default)]
    pub quota_code: Option<String>,
    #[serde(default)]
    pub quota_name: Option<String>,
    pub required: Input<f64>,
    /// What the account already uses of the quota (`flow plan` reads it from the running setup):
    /// the quota must hold `in_use` + `required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_use: Option<Input<f64>>,
    #[serde(default)]
    pub region: Option<String>,
}
impl Check for QuotaParams {
    fn check(&self) -> Result<(), ParamsError> {
        if self.quota_code.is_none() && self.quota_name.is_none() {
            return Err("give `quota_code` or `quota_name`".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangesetParams {
    /// Template path, relative to the workflow file's folder.
    pub template: String,
    #[serde(default)]
    pub stack: Option<String>,
    #[serde(default)]
    pub parameters: BTreeMap<String, Input<Value>>,
    #[serde(default)]
    pub region: Option<String>,
}
impl Check for ChangesetParams {}

pub(crate) fn d_true() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadtestParams {
    pub url: Input<String>,
    /// Fixed arrival rate (open model); absent: as fast as `connections` allow.
    #[serde(default)]
    pub rate: Option<Input<f64>>,
    pub duration_s: u64,
    #[serde(default)]
    pub connections: Option<u32>,
    #[serde(default = "d_true")]
    pub keepalive: bool,
    #[serde(default)]
    pub warmup_s: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Reach `rate` linearly over this many seconds first.
    #[serde(default)]
    pub ramp_s: Option<u64>,
    /// For a run that covers no success-rate requirement (a baseline): the success rate (%)
    /// below which its figures are not evidence and the step fails (default 99).
    #[serde(default)]
    pub min_success_pct: Option<f64>,
    /// Workers that share the schedule (default 1); the thresholds are judged on their merged
    /// histograms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u16>,
    /// What starts the workers (default: local processes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<LoadRunner>,
    /// Where the workers meet the coordinator: a directory or `s3://BUCKET/PREFIX` (which the
    /// ecs and kubernetes runners need).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// How long before the shared start the workers are started (default: the runner's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_lead_s: Option<u64>,
}

/// What starts a distributed load test's workers, each an ordinary `flow load-worker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LoadRunner {
    /// Processes on this machine.
    Local,
    /// ECS tasks on Fargate, one RunTask per worker, the subnets taken in turn (one per AZ
    /// spreads the load's source); the task definition runs flow's container image.
    Ecs(EcsRunner),
    /// One Kubernetes Job with a pod per worker (Indexed completions), through the API server
    /// the kubeconfig names, as kubectl reads it.
    Kubernetes(KubernetesRunner),
}

/// Where the ecs runner starts its tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EcsRunner {
    pub cluster: String,
    pub task_definition: String,
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// For subnets that reach the internet through an internet gateway, not a NAT.
    #[serde(default)]
    pub assign_public_ip: bool,
    /// The container that runs flow (default: the task definition's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// Where the kubernetes runner creates its Job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesRunner {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// For the pods' AWS role (IRSA or EKS Pod Identity), to reach the S3 place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
}

impl LoadRunner {
    pub fn name(&self) -> &'static str {
        match self {
            LoadRunner::Local => "local",
            LoadRunner::Ecs(_) => "ecs",
            LoadRunner::Kubernetes(_) => "kubernetes",
        }
    }

    /// Whether workers started this way can meet the coordinator at `place`: the ecs and
    /// kubernetes runners' workers run elsewhere and meet at an S3 prefix; ecs needs a subnet.
    pub fn check(&self, place: Option<&str>) -> Result<(), ParamsError> {
        let s3 = place.is_some_and(|p| p.starts_with("s3://"));
        match self {
            LoadRunner::Local => Ok(()),
            LoadRunner::Ecs(e) if e.subnets.is_empty() => {
                Err("the ecs runner needs at least one subnet (one per AZ spreads the load's source)".into())
            }
            _ if !s3 => Err(ParamsError(format!(
                "the {} runner's workers meet the coordinator at an S3 prefix: give the place as s3://BUCKET/PREFIX",
                self.name()
            ))),
            _ => Ok(()),
        }
    }
}

/// The success rate a load test covering no success-rate requirement must reach for its
/// figures to count (a baseline against a broken endpoint sizes nothing).
pub const MIN_SUCCESS_PCT: f64 = 99.0;

impl Check for LoadtestParams {
    fn check(&self) -> Result<(), ParamsError> {
        if let Some(w) = self.workers.filter(|w| !(1..=64).contains(w)) {
            return Err(format!("`workers` must be between 1 and 64, got {w}").into());
        }
        if let Some(m) = self.min_success_pct.filter(|m| !(m.is_finite() && (0.0..=100.0).contains(m))) {
            return Err(format!("`min_success_pct` must be between 0 and 100, got {m}").into());
        }
        if let Some(r) = &self.rate {
            rate("rate", r)?;
        }
        if self.duration_s == 0 {
            return Err("`duration_s` must be at least 1".into());
        }
        if let Some(w) = self.warmup_s.filter(|w| *w >= self.duration_s) {
            return Err(format!("`warmup_s` ({w}) must be shorter than `duration_s` ({})", self.duration_s).into());
        }
        let spread = self.runner.is_some() || self.place.is_some() || self.worker_lead_s.is_some();
        if spread && self.workers.unwrap_or(1) < 2 {
            return Err(
                "`runner`, `place` and `worker_lead_s` spread a run over workers: set `workers` to 2 or more".into()
            );
        }
        if let Some(r) = &self.runner {
            r.check(self.place.as_deref()).map_err(|e| format!("`runner`: {e}"))?;
        }
        Ok(())
    }
}
