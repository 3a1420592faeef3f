//! The fixed catalogue of step kinds: what each means, its typed params, the outputs later steps
//! may reference, which requirement kinds it can verify, and whether it has a side effect (and
//! so must be gated). Planners, the validator and the engine all read this one table.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::plan::Input;
use super::requirement::Kind as ReqKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StepKind {
    Approval,
    Probe,
    Command,
    CapacityModel,
    IpCapacity,
    Quota,
    Changeset,
    Loadtest,
    FailoverDrill,
    RestoreDrill,
}

/// Outputs a kind produces: a fixed list, or any name (stack outputs, command metrics).
pub enum Outputs {
    Fixed(&'static [&'static str]),
    Any,
}

impl StepKind {
    pub const ALL: [StepKind; 10] = [
        StepKind::Approval,
        StepKind::Probe,
        StepKind::Command,
        StepKind::CapacityModel,
        StepKind::IpCapacity,
        StepKind::Quota,
        StepKind::Changeset,
        StepKind::Loadtest,
        StepKind::FailoverDrill,
        StepKind::RestoreDrill,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StepKind::Approval => "approval",
            StepKind::Probe => "probe",
            StepKind::Command => "command",
            StepKind::CapacityModel => "capacity_model",
            StepKind::IpCapacity => "ip_capacity",
            StepKind::Quota => "quota",
            StepKind::Changeset => "changeset",
            StepKind::Loadtest => "loadtest",
            StepKind::FailoverDrill => "failover_drill",
            StepKind::RestoreDrill => "restore_drill",
        }
    }

    pub fn parse(s: &str) -> Option<StepKind> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn meaning(self) -> &'static str {
        match self {
            StepKind::Approval => "a human decision; nothing runs, the approval is the outcome",
            StepKind::Probe => "HTTP GET of a URL: expected status and latency bound, retried on a schedule",
            StepKind::Command => {
                "a shell command (always gated); exit code, output and `::metric name=value` lines are evidence"
            }
            StepKind::CapacityModel => {
                "instances per AZ so that losing one AZ still serves the target with headroom; quota needs"
            }
            StepKind::IpCapacity => "checks that the VPC's subnets have the addresses the capacity model needs",
            StepKind::Quota => "checks an AWS service quota and requests an increase when short",
            StepKind::Changeset => "a CloudFormation change set: reviewed, approved, executed",
            StepKind::Loadtest => "open-model HTTP load test: rate, latency, success rate",
            StepKind::FailoverDrill => "impairs one Availability Zone and measures downtime",
            StepKind::RestoreDrill => "restores a backup and measures recovery time and data age",
        }
    }

    /// Does running it change the world? Such a step must be gated.
    pub fn side_effect(self) -> bool {
        matches!(
            self,
            StepKind::Command
                | StepKind::Quota
                | StepKind::Changeset
                | StepKind::Loadtest
                | StepKind::FailoverDrill
                | StepKind::RestoreDrill
        )
    }

    /// Must a step of this kind carry a gate?
    pub fn requires_gate(self) -> bool {
        self.side_effect() || self == StepKind::Approval
    }

    pub fn outputs(self) -> Outputs {
        match self {
            StepKind::Approval => Outputs::Fixed(&["approved_by"]),
            StepKind::Probe => Outputs::Fixed(&["status", "latency_ms", "attempts"]),
            StepKind::Command | StepKind::Changeset => Outputs::Any,
            StepKind::CapacityModel => Outputs::Fixed(&[
                "azs",
                "instances_per_az",
                "instances_total",
                "min_instances",
                "max_instances",
                "vcpus",
                "albs",
                "nat_gateways",
                "nat_gateways_per_az",
                "elastic_ips",
            ]),
            StepKind::IpCapacity => Outputs::Fixed(&["ips_per_subnet", "ips_needed_per_subnet", "spare_per_subnet"]),
            StepKind::Quota => Outputs::Fixed(&["applied_value", "required_value", "request_id"]),
            StepKind::Loadtest => Outputs::Fixed(&[
                "throughput_rps",
                "success_rate_pct",
                "latency_avg_ms",
                "latency_p50_ms",
                "latency_p90_ms",
                "latency_p95_ms",
                "latency_p99_ms",
                "latency_p999_ms",
                "latency_max_ms",
            ]),
            StepKind::FailoverDrill => Outputs::Fixed(&["failover_downtime_s", "az_failure_tolerated"]),
            StepKind::RestoreDrill => Outputs::Fixed(&["rto_s", "rpo_s"]),
        }
    }

    /// Can a step of this kind produce the evidence for a requirement of `kind`?
    pub fn verifies(self, kind: &ReqKind) -> bool {
        match self {
            StepKind::Loadtest => {
                matches!(kind, ReqKind::Throughput | ReqKind::LatencyAvg | ReqKind::LatencyP(_) | ReqKind::SuccessRate)
            }
            StepKind::FailoverDrill => matches!(kind, ReqKind::AzFailureTolerance | ReqKind::FailoverDowntime),
            StepKind::RestoreDrill => matches!(kind, ReqKind::Rto | ReqKind::Rpo),
            StepKind::Command => kind.is_measurable(),
            _ => false,
        }
    }

    /// The JSON schema of this kind's params, generated from the typed struct (all inline).
    pub fn params_schema(self) -> Value {
        fn of<T: JsonSchema>() -> Value {
            let gen =
                schemars::generate::SchemaSettings::draft07().with(|s| s.inline_subschemas = true).into_generator();
            let mut v = serde_json::to_value(gen.into_root_schema_for::<T>()).unwrap_or_default();
            if let Value::Object(m) = &mut v {
                m.remove("$schema");
                m.remove("title");
            }
            v
        }
        match self {
            StepKind::Approval => of::<ApprovalParams>(),
            StepKind::Probe => of::<ProbeParams>(),
            StepKind::Command => of::<CommandParams>(),
            StepKind::CapacityModel => of::<CapacityModelParams>(),
            StepKind::IpCapacity => of::<IpCapacityParams>(),
            StepKind::Quota => of::<QuotaParams>(),
            StepKind::Changeset => of::<ChangesetParams>(),
            StepKind::Loadtest => of::<LoadtestParams>(),
            StepKind::FailoverDrill => of::<FailoverDrillParams>(),
            StepKind::RestoreDrill => of::<RestoreDrillParams>(),
        }
    }

    /// Check raw params against this kind's typed params.
    pub fn check_params(self, params: &Map<String, Value>) -> Result<(), String> {
        let v = Value::Object(params.clone());
        fn typed<T: serde::de::DeserializeOwned + Check>(v: Value) -> Result<(), String> {
            serde_json::from_value::<T>(v).map_err(|e| e.to_string())?.check()
        }
        match self {
            StepKind::Approval => typed::<ApprovalParams>(v),
            StepKind::Probe => typed::<ProbeParams>(v),
            StepKind::Command => typed::<CommandParams>(v),
            StepKind::CapacityModel => typed::<CapacityModelParams>(v),
            StepKind::IpCapacity => typed::<IpCapacityParams>(v),
            StepKind::Quota => typed::<QuotaParams>(v),
            StepKind::Changeset => typed::<ChangesetParams>(v),
            StepKind::Loadtest => typed::<LoadtestParams>(v),
            StepKind::FailoverDrill => typed::<FailoverDrillParams>(v),
            StepKind::RestoreDrill => typed::<RestoreDrillParams>(v),
        }
    }
}

/// Checks beyond types (ranges, one-of).
pub trait Check {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

fn positive(name: &str, v: &Input<f64>) -> Result<(), String> {
    match v {
        Input::Value(x) if !(*x > 0.0) => Err(format!("`{name}` must be greater than 0, got {x}")),
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

fn d_status() -> u16 {
    200
}
fn d_timeout_ms() -> u64 {
    5000
}
fn d_one() -> u32 {
    1
}
fn d_interval() -> u64 {
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
    fn check(&self) -> Result<(), String> {
        if let Input::Value(u) = &self.url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!("`url` must start with http:// or https://, got `{u}`"));
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
    fn check(&self) -> Result<(), String> {
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
    fn check(&self) -> Result<(), String> {
        positive("target_rps", &self.target_rps)?;
        positive("per_instance_rps", &self.per_instance_rps)?;
        if self.azs < 2 {
            return Err(format!("`azs` must be at least 2 to survive the loss of one, got {}", self.azs));
        }
        if !(0.0..=1000.0).contains(&self.headroom_pct) {
            return Err(format!("`headroom_pct` must be between 0 and 1000, got {}", self.headroom_pct));
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
fn d_reserved() -> u64 {
    14
}
impl Check for IpCapacityParams {
    fn check(&self) -> Result<(), String> {
        super::capacity::parse_cidr(&self.vpc_cidr)?;
        if !(16..=28).contains(&self.subnet_prefix) {
            return Err(format!("`subnet_prefix` must be between 16 and 28 (AWS limits), got {}", self.subnet_prefix));
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
    #[serde(default)]
    pub region: Option<String>,
}
impl Check for QuotaParams {
    fn check(&self) -> Result<(), String> {
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

fn d_true() -> bool {
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
}
impl Check for LoadtestParams {
    fn check(&self) -> Result<(), String> {
        if let Some(r) = &self.rate {
            positive("rate", r)?;
        }
        if self.duration_s == 0 {
            return Err("`duration_s` must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailoverDrillParams {
    pub endpoint: Input<String>,
    #[serde(default)]
    pub stack: Option<String>,
    /// The AZ to impair; absent: the one holding most instances.
    #[serde(default)]
    pub az: Option<String>,
    pub duration_s: u64,
    #[serde(default)]
    pub probe_interval_ms: Option<u64>,
}
impl Check for FailoverDrillParams {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreDrillParams {
    /// What to restore from (a database or volume identifier).
    pub source: String,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub stack: Option<String>,
}
impl Check for RestoreDrillParams {}
