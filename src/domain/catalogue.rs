//! The fixed catalogue of step kinds. Each kind is declared once, in [`KINDS`]: its name and
//! meaning, whether it changes the world (and so must be gated) or is a human decision, which
//! requirement kinds it can verify, the outputs later steps may reference, and its typed params
//! (their JSON schema and their checks). Planners, the validator, the LLM prompt and the engine
//! all read this one table; the executors that carry each kind out are registered beside it, in
//! [`crate::executor`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::metric as m;
use super::reference::Input;
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
    AlarmDrill,
    Assess,
}

/// Outputs a kind produces: a fixed list, or any name (stack outputs, command metrics).
pub enum Outputs {
    Fixed(&'static [&'static str]),
    Any,
}

/// What params of a kind may not be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamsError(pub String);

impl From<String> for ParamsError {
    fn from(s: String) -> Self {
        ParamsError(s)
    }
}

impl From<&str> for ParamsError {
    fn from(s: &str) -> Self {
        ParamsError(s.into())
    }
}

/// One kind, declared once.
pub struct KindDef {
    pub kind: StepKind,
    pub name: &'static str,
    pub meaning: &'static str,
    /// Does running it change the world? Such a step must be gated.
    pub side_effect: bool,
    /// Is it a person's decision? Such a step must be gated too.
    pub decision: bool,
    /// Does an approval cover one run only? Retrying such a step (a drill: a fault injected
    /// again) asks for a new approval.
    pub approval_per_run: bool,
    /// Can it produce the evidence for a requirement of this kind?
    pub verifies: fn(&ReqKind) -> bool,
    /// The same, in words, for the LLM prompt.
    pub verifies_text: &'static str,
    pub outputs: Outputs,
    /// The JSON schema of its params (all inline).
    pub schema: fn() -> Value,
    /// Check raw params against its typed params.
    pub check: fn(&Map<String, Value>) -> Result<(), ParamsError>,
    /// Exclusive sets of params, when the kind takes exactly one (a failover drill's fault, a
    /// restore drill's way to restore); empty for most kinds. The typed plan shape a model's
    /// grammar follows has one alternative per way.
    pub ways: &'static [Way],
}

/// Params that go together, apart from every other way of the same kind.
#[derive(Debug)]
pub struct Way {
    /// The params this way needs.
    pub required: &'static [&'static str],
    /// The params only this way may have.
    pub optional: &'static [&'static str],
}

fn schema<T: JsonSchema>() -> Value {
    let gen = schemars::generate::SchemaSettings::draft07().with(|s| s.inline_subschemas = true).into_generator();
    let mut v = serde_json::to_value(gen.into_root_schema_for::<T>()).unwrap_or_default();
    if let Value::Object(m) = &mut v {
        m.remove("$schema");
        m.remove("title");
    }
    v
}

fn check<T: serde::de::DeserializeOwned + Check>(params: &Map<String, Value>) -> Result<(), ParamsError> {
    typed::<T>(params)?.check()
}

/// Params as a kind's typed struct; a wrong type names the param it is in ("`duration_s`:
/// invalid type: string \"sixty\", expected u64").
pub fn typed<T: serde::de::DeserializeOwned>(params: &Map<String, Value>) -> Result<T, ParamsError> {
    serde_path_to_error::deserialize(Value::Object(params.clone())).map_err(|e| {
        let path = e.path().to_string();
        ParamsError(if path == "." { e.inner().to_string() } else { format!("`{path}`: {}", e.inner()) })
    })
}

fn nothing(_: &ReqKind) -> bool {
    false
}

/// Every kind, in [`StepKind`] order.
pub static KINDS: [KindDef; 12] = [
    KindDef {
        kind: StepKind::Approval,
        name: "approval",
        meaning: "a human decision; nothing runs, the approval is the outcome",
        side_effect: false,
        approval_per_run: false,
        decision: true,
        verifies: nothing,
        verifies_text: "nothing",
        outputs: Outputs::Fixed(&["approved_by"]),
        schema: schema::<ApprovalParams>,
        check: check::<ApprovalParams>,
        ways: &[],
    },
    KindDef {
        kind: StepKind::Probe,
        name: "probe",
        meaning: "HTTP GET of a URL: expected status and latency bound, retried on a schedule",
        side_effect: false,
        approval_per_run: false,
        decision: false,
        verifies: nothing,
        verifies_text: "nothing",
        outputs: Outputs::Fixed(&["status", "latency_ms", "attempts"]),
        schema: schema::<ProbeParams>,
        check: check::<ProbeParams>,
        ways: &[],
    },
    KindDef {
        kind: StepKind::Command,
        name: "command",
        meaning: "a shell command (always gated); exit code, output and `::metric name=value` lines are evidence",
        side_effect: true,
        approval_per_run: false,
        decision: false,
        verifies: ReqKind::is_measurable,
        verifies_text: "any measurable kind (through `::metric name=value` lines)",
        outputs: Outputs::Any,
        schema: schema::<CommandParams>,
        check: check::<CommandParams>,
        ways: &[],
    },
    KindDef {
        kind: StepKind::CapacityModel,
        name: "capacity_model",
        meaning: "instances per AZ so that losing one AZ still serves the target with headroom; quota needs",
        side_effect: false,
        approval_per_run: false,
        decision: false,
        verifies: nothing,
        verifies_text: "nothing",
        outputs: Outputs::Fixed(&[
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
        schema: schema::<CapacityModelParams>,
        check: check::<CapacityModelParams>,
        ways: &[],
    },
    KindDef {
        kind: StepKind::IpCapacity,
        name: "ip_capacity",
        meaning: "checks that the VPC's subnets have the addresses the capacity model needs",
        side_effect: false,
        approval_per_run: false,
        decision: false,
        verifies: nothing,
        verifies_text: "nothing",
        outputs: Outputs::Fixed(&["ips_per_subnet", "ips_needed_per_subnet", "spare_per_subnet"]),
        schema: schema::<IpCapacityParams>,
        check: check::<IpCapacityParams>,
        ways: &[],
    },
    KindDef {
        kind: StepKind::Quota,
        name: "quota",
        meaning: "checks an AWS service quota and requests an increase when short",
        side_effect: true,
        approval_per_run: false,
        decision: false,
        verifies: nothing,
        verifies_text: "nothing",
        outputs: Outputs::Fixed(&["applied_value", "required_value", "request_id"]),
        schema: schema::<QuotaParams>,
        check: check::<QuotaParams>,
        ways: &[],
    },
    KindDef {
        kind: StepKind::Changeset,
        name: "changeset",
        meaning: "a CloudFormation change set: reviewed, approved, executed",
        side_effect: true,
        approval_per_run: false,
        decision: false,
        verifies: nothing,
        verifies_text: "nothing",
        outputs: Outputs::Any,
        schema: schema::<ChangesetParams>,
        check: check::<ChangesetParams>,
        ways: &[],
    },
    KindDef {
        kind: StepKind::Loadtest,
        name: "loadtest",
        meaning: "open-model HTTP load test: rate, latency, success rate",
        side_effect: true,
        approval_per_run: false,
        decision: false,
        verifies: |k| {
            matches!(k, ReqKind::Throughput | ReqKind::LatencyAvg | ReqKind::LatencyP(_) | ReqKind::SuccessRate)
        },
        verifies_text: "throughput, latency_avg, latency_pNN, success_rate",
        outputs: Outputs::Fixed(&[
            m::THROUGHPUT_RPS,
            m::SUCCESS_RATE_PCT,
            m::LATENCY_AVG_MS,
            m::LATENCY_P50_MS,
            m::LATENCY_P90_MS,
            m::LATENCY_P95_MS,
            m::LATENCY_P99_MS,
            m::LATENCY_P999_MS,
            m::LATENCY_MAX_MS,
        ]),
        schema: schema::<LoadtestParams>,
        check: check::<LoadtestParams>,
        ways: &[],
    },
    KindDef {
        kind: StepKind::FailoverDrill,
        name: "failover_drill",
        meaning: "injects a fault (a command, an AWS FIS experiment, or an ARC zonal shift) while probing the service; measures downtime and recovery",
        side_effect: true,
        approval_per_run: true,
        decision: false,
        verifies: |k| matches!(k, ReqKind::AzFailureTolerance | ReqKind::FailoverDowntime),
        verifies_text: "az_failure_tolerance, failover_downtime",
        outputs: Outputs::Fixed(&[m::FAILOVER_DOWNTIME_S, m::AZ_FAILURE_TOLERATED]),
        schema: schema::<FailoverDrillParams>,
        check: check::<FailoverDrillParams>,
        ways: &[
            Way { required: &["inject"], optional: &["recover"] },
            Way { required: &["fis_template"], optional: &[] },
            Way { required: &["zonal_shift_resource", "away_from"], optional: &[] },
        ],
    },
    KindDef {
        kind: StepKind::RestoreDrill,
        name: "restore_drill",
        meaning: "restores a backup into a scratch copy (a command, or AWS Backup) and measures recovery time (RTO) and data loss (RPO)",
        side_effect: true,
        approval_per_run: true,
        decision: false,
        verifies: |k| matches!(k, ReqKind::Rto | ReqKind::Rpo),
        verifies_text: "rto, rpo",
        outputs: Outputs::Fixed(&[m::RTO_S, m::RPO_S]),
        schema: schema::<RestoreDrillParams>,
        check: check::<RestoreDrillParams>,
        ways: &[
            Way { required: &["restore"], optional: &[] },
            Way {
                required: &["backup_vault"],
                optional: &["resource_arn", "recovery_point_arn", "iam_role_arn", "restore_metadata", "backup_plan_id"],
            },
        ],
    },
    KindDef {
        kind: StepKind::AlarmDrill,
        name: "alarm_drill",
        meaning: "sets CloudWatch alarms to ALARM and measures how long their notifications take to reach a subscriber of their SNS topics",
        side_effect: true,
        approval_per_run: true,
        decision: false,
        verifies: |k| matches!(k, ReqKind::Notification),
        verifies_text: "notification",
        outputs: Outputs::Fixed(&[m::NOTIFICATION_DELAY_S]),
        schema: schema::<AlarmDrillParams>,
        check: check::<AlarmDrillParams>,
        ways: &[Way { required: &["alarm_prefix"], optional: &[] }, Way { required: &["alarms"], optional: &[] }],
    },
    KindDef {
        kind: StepKind::Assess,
        name: "assess",
        meaning: "reads what runs in the app's VPC (Describe calls only) and lists what threatens the requirements: a single instance, a NAT gateway serving other AZs, a VPC too small, no load balancer, no alarms",
        side_effect: false,
        approval_per_run: false,
        decision: false,
        verifies: nothing,
        verifies_text: "nothing",
        outputs: Outputs::Fixed(&["findings_high", "findings_medium"]),
        schema: schema::<AssessParams>,
        check: check::<AssessParams>,
        ways: &[],
    },
];

impl StepKind {
    pub fn all() -> impl Iterator<Item = StepKind> {
        KINDS.iter().map(|d| d.kind)
    }

    /// Its entry in [`KINDS`]. The match is exhaustive, so a new kind does not compile until it
    /// has a position here, and `KINDS`' length does not until it has an entry there (a test
    /// checks each entry sits at its kind's position).
    pub fn def(self) -> &'static KindDef {
        let at = match self {
            StepKind::Approval => 0,
            StepKind::Probe => 1,
            StepKind::Command => 2,
            StepKind::CapacityModel => 3,
            StepKind::IpCapacity => 4,
            StepKind::Quota => 5,
            StepKind::Changeset => 6,
            StepKind::Loadtest => 7,
            StepKind::FailoverDrill => 8,
            StepKind::RestoreDrill => 9,
            StepKind::AlarmDrill => 10,
            StepKind::Assess => 11,
        };
        &KINDS[at]
    }

    pub fn name(self) -> &'static str {
        self.def().name
    }

    pub fn parse(s: &str) -> Option<StepKind> {
        KINDS.iter().find(|d| d.name == s).map(|d| d.kind)
    }

    pub fn meaning(self) -> &'static str {
        self.def().meaning
    }

    /// Does running it change the world? Such a step must be gated.
    pub fn side_effect(self) -> bool {
        self.def().side_effect
    }

    /// Does an approval cover one run only (a retry needs a new one)?
    pub fn approval_per_run(self) -> bool {
        self.def().approval_per_run
    }

    /// Must a step of this kind carry a gate?
    pub fn requires_gate(self) -> bool {
        self.def().side_effect || self.def().decision
    }

    /// Is a step of this kind a person's decision (the go/no-go)?
    pub fn is_decision(self) -> bool {
        self.def().decision
    }

    pub fn outputs(self) -> &'static Outputs {
        &self.def().outputs
    }

    /// Can a step of this kind produce the evidence for a requirement of `kind`?
    pub fn verifies(self, kind: &ReqKind) -> bool {
        (self.def().verifies)(kind)
    }

    /// The JSON schema of this kind's params, generated from the typed struct (all inline).
    pub fn params_schema(self) -> Value {
        (self.def().schema)()
    }

    /// Check raw params against this kind's typed params.
    pub fn check_params(self, params: &Map<String, Value>) -> Result<(), ParamsError> {
        (self.def().check)(params)
    }
}

/// Checks beyond types (ranges, one-of).
pub trait Check {
    fn check(&self) -> Result<(), ParamsError> {
        Ok(())
    }
}

fn positive(name: &str, v: &Input<f64>) -> Result<(), ParamsError> {
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
            super::requirement::fmt_num(MAX_RATE)
        )));
    }
    Ok(())
}

fn rate(name: &str, v: &Input<f64>) -> Result<(), ParamsError> {
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
fn d_reserved() -> u64 {
    14
}
impl Check for IpCapacityParams {
    fn check(&self) -> Result<(), ParamsError> {
        super::capacity::parse_cidr(&self.vpc_cidr).map_err(|e| ParamsError(e.to_string()))?;
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
    Ecs {
        cluster: String,
        task_definition: String,
        subnets: Vec<String>,
        #[serde(default)]
        security_groups: Vec<String>,
        /// For subnets that reach the internet through an internet gateway, not a NAT.
        #[serde(default)]
        assign_public_ip: bool,
        /// The container that runs flow (default: the task definition's first).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<String>,
    },
    /// One Kubernetes Job with a pod per worker (Indexed completions), through the API server
    /// the kubeconfig names, as kubectl reads it.
    Kubernetes {
        image: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<String>,
        /// For the pods' AWS role (IRSA or EKS Pod Identity), to reach the S3 place.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service_account: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kubeconfig: Option<String>,
    },
}

impl LoadRunner {
    pub fn name(&self) -> &'static str {
        match self {
            LoadRunner::Local => "local",
            LoadRunner::Ecs { .. } => "ecs",
            LoadRunner::Kubernetes { .. } => "kubernetes",
        }
    }

    /// Whether workers started this way can meet the coordinator at `place`: the ecs and
    /// kubernetes runners' workers run elsewhere and meet at an S3 prefix; ecs needs a subnet.
    pub fn check(&self, place: Option<&str>) -> Result<(), ParamsError> {
        let s3 = place.is_some_and(|p| p.starts_with("s3://"));
        match self {
            LoadRunner::Local => Ok(()),
            LoadRunner::Ecs { subnets, .. } if subnets.is_empty() => {
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
        if let Some(r) = &self.runner {
            r.check(self.place.as_deref()).map_err(|e| format!("`runner`: {e}"))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailoverDrillParams {
    /// What the probes ask: the service's health URL.
    pub endpoint: Input<String>,
    /// Fault by command: run by `sh -c` when the fault starts (it may block for the fault).
    #[serde(default)]
    pub inject: Option<String>,
    /// Run after the measurement, to undo what `inject` did (never counted as the service
    /// recovering by itself).
    #[serde(default)]
    pub recover: Option<String>,
    /// Fault by AWS FIS: the experiment template to run (an AZ power interruption).
    #[serde(default)]
    pub fis_template: Option<Input<String>>,
    /// Fault by ARC zonal shift: the load balancer whose traffic moves away from `away_from`.
    #[serde(default)]
    pub zonal_shift_resource: Option<Input<String>>,
    /// The Availability Zone id (`euw1-az1`) a zonal shift moves traffic away from.
    #[serde(default)]
    pub away_from: Option<Input<String>>,
    #[serde(default)]
    pub region: Option<String>,
    /// How long to watch after the fault starts (longer when the fault outlasts it).
    pub duration_s: u64,
    #[serde(default)]
    pub probe_interval_ms: Option<u64>,
    /// How long a probe waits for its answer before it counts the service as down (default
    /// 1 s, whatever the interval: probes overlap on their fixed schedule). A slow answer is a
    /// latency figure, not an outage.
    #[serde(default)]
    pub probe_timeout_ms: Option<u64>,
    /// Probes before the fault, which must all succeed or nothing is injected (default 1 s).
    #[serde(default)]
    pub baseline_s: Option<u64>,
    /// The longest outage allowed; default: the covered `failover_downtime` requirement's.
    #[serde(default)]
    pub max_downtime_s: Option<f64>,
    /// Background load (req/s) from the built-in generator while the drill runs.
    #[serde(default)]
    pub rate: Option<Input<f64>>,
    /// The alarms whose history the drill reads afterwards (every metric alarm whose name
    /// starts with this): which fired during it, when, and whether they came back to OK.
    #[serde(default)]
    pub alarm_prefix: Option<Input<String>>,
}

/// How a failover drill injects its fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `inject`: a shell command.
    Command,
    /// `fis_template`: an AWS FIS experiment.
    Fis,
    /// `zonal_shift_resource`: an ARC zonal shift away from `away_from`.
    ZonalShift,
}

impl Fault {
    /// As the evidence records it (`"how"`).
    pub fn name(self) -> &'static str {
        match self {
            Fault::Command => "command",
            Fault::Fis => "fis",
            Fault::ZonalShift => "zonal_shift",
        }
    }
}

impl FailoverDrillParams {
    /// How the fault is injected: exactly one of the three.
    pub fn fault(&self) -> Result<Fault, ParamsError> {
        let set = [
            (Fault::Command, self.inject.is_some()),
            (Fault::Fis, self.fis_template.is_some()),
            (Fault::ZonalShift, self.zonal_shift_resource.is_some()),
        ];
        let chosen: Vec<Fault> = set.iter().filter(|(_, on)| *on).map(|(f, _)| *f).collect();
        match chosen[..] {
            [one] => Ok(one),
            [] => Err("give the fault: `inject` (a command), `fis_template` or `zonal_shift_resource`".into()),
            _ => Err(format!(
                "give one fault, not {}",
                chosen.iter().map(|f| f.name()).collect::<Vec<_>>().join(" and ")
            )
            .into()),
        }
    }
}

impl Check for FailoverDrillParams {
    fn check(&self) -> Result<(), ParamsError> {
        if self.fault()? == Fault::ZonalShift && self.away_from.is_none() {
            return Err("a zonal shift needs `away_from`, the AZ id to move traffic away from".into());
        }
        if self.duration_s == 0 {
            return Err("`duration_s` must be at least 1".into());
        }
        let interval = self.probe_interval_ms.unwrap_or(DRILL_INTERVAL_MS);
        if interval == 0 {
            return Err("`probe_interval_ms` must be at least 1".into());
        }
        if self.probe_timeout_ms == Some(0) {
            return Err("`probe_timeout_ms` must be at least 1".into());
        }
        if let Some(r) = &self.rate {
            rate("rate", r)?;
        }
        Ok(())
    }
}

/// Drills probe this often unless told otherwise (ms).
pub const DRILL_INTERVAL_MS: u64 = 100;
/// A drill's probe waits this long for an answer unless told otherwise (ms): a service under
/// a fault that answers within a second is up, if slow.
pub const PROBE_TIMEOUT_MS: u64 = 1000;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreDrillParams {
    /// Restore by command: run by `sh -c`; it may print `::restore-point RFC3339` (the time of
    /// the newest data it restored) or `::metric rpo_s=N`.
    #[serde(default)]
    pub restore: Option<String>,
    /// Restore by AWS Backup: the vault holding the recovery points.
    #[serde(default)]
    pub backup_vault: Option<Input<String>>,
    /// The resource AWS Backup protects (default: the spec's `backup_resource`).
    #[serde(default)]
    pub resource_arn: Option<Input<String>>,
    /// A recovery point to restore; default: the newest completed one of the resource.
    #[serde(default)]
    pub recovery_point_arn: Option<String>,
    /// The role AWS Backup restores with.
    #[serde(default)]
    pub iam_role_arn: Option<Input<String>>,
    /// Where the scratch copy goes (AWS Backup's restore metadata, such as DBInstanceIdentifier).
    #[serde(default)]
    pub restore_metadata: BTreeMap<String, String>,
    /// The backup plan that protects the resource: its rules give the worst-case RPO.
    #[serde(default)]
    pub backup_plan_id: Option<Input<String>>,
    #[serde(default)]
    pub region: Option<String>,
    /// How the restored copy is seen to serve: `http(s)://...` (a 2xx or 3xx answer) or
    /// `tcp://host:port` (a connection); default: the spec's `restore_probe`.
    #[serde(default)]
    pub probe: Option<Input<String>>,
    #[serde(default)]
    pub probe_interval_ms: Option<u64>,
    /// How long a probe waits for an answer (default 1 s).
    #[serde(default)]
    pub probe_timeout_ms: Option<u64>,
    /// The probe is expected not to answer before the restore starts (it should reach the
    /// scratch copy, which does not exist yet); one that does makes the drill fail, unless
    /// this says that is intended (a copy restored over one that already serves).
    #[serde(default)]
    pub allow_probe_up_before: bool,
    /// How long the restore may take before the drill fails (default 4 h).
    #[serde(default)]
    pub timeout_s: Option<u64>,
    /// The worst data loss the backup configuration allows (s), when no plan says it.
    #[serde(default)]
    pub worst_rpo_s: Option<f64>,
    /// Run after the measurement to delete the scratch copy (`FLOW_RESTORED_ARN` names it).
    #[serde(default)]
    pub cleanup: Option<String>,
}

impl RestoreDrillParams {
    /// `command` or `backup`.
    pub fn mode(&self) -> Result<&'static str, ParamsError> {
        match (self.restore.is_some(), self.backup_vault.is_some()) {
            (true, false) => Ok("command"),
            (false, true) => Ok("backup"),
            (true, true) => Err("give one way to restore, not both `restore` and `backup_vault`".into()),
            (false, false) => {
                Err("give the way to restore: `restore` (a command) or `backup_vault` (AWS Backup)".into())
            }
        }
    }
}

impl Check for RestoreDrillParams {
    fn check(&self) -> Result<(), ParamsError> {
        self.mode()?;
        if let Some(Input::Value(p)) = &self.probe {
            if !(p.starts_with("http://") || p.starts_with("https://") || p.starts_with("tcp://")) {
                return Err(format!("`probe` must be an http(s):// URL or tcp://host:port, got `{p}`").into());
            }
        }
        if self.probe_interval_ms == Some(0) || self.timeout_s == Some(0) || self.probe_timeout_ms == Some(0) {
            return Err("`probe_interval_ms`, `probe_timeout_ms` and `timeout_s` must be at least 1".into());
        }
        if self.worst_rpo_s.is_some_and(|w| w.is_nan() || w < 0.0) {
            return Err("`worst_rpo_s` cannot be negative".into());
        }
        Ok(())
    }
}

/// Params of an `assess` step: where the app runs.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessParams {
    /// The app's VPC; default: the spec's context `vpc`, else the region's only non-default VPC.
    #[serde(default)]
    pub vpc: Option<Input<String>>,
    #[serde(default)]
    pub region: Option<String>,
    /// The fleet at its largest (instances): do the private subnets hold it after an AZ loss?
    #[serde(default)]
    pub fleet_max: Option<Input<f64>>,
}

impl Check for AssessParams {
    fn check(&self) -> Result<(), ParamsError> {
        if let Some(f) = &self.fleet_max {
            positive("fleet_max", f)?;
        }
        Ok(())
    }
}

/// Params of an `alarm_drill`: which alarms to fire, and the bound on their notifications.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmDrillParams {
    /// Every metric alarm whose name starts with this (a stack's alarms: `<stack>-`).
    #[serde(default)]
    pub alarm_prefix: Option<Input<String>>,
    /// Or the alarms by name.
    #[serde(default)]
    pub alarms: Option<Vec<String>>,
    #[serde(default)]
    pub region: Option<String>,
    /// The longest a notification may take (seconds); default: the covered `notification`
    /// requirement's.
    #[serde(default)]
    pub max_delay_s: Option<f64>,
    /// How long to wait for the notifications (seconds); default: the bound plus a minute.
    #[serde(default)]
    pub wait_s: Option<u64>,
}

impl Check for AlarmDrillParams {
    fn check(&self) -> Result<(), ParamsError> {
        match (&self.alarm_prefix, &self.alarms) {
            (Some(_), Some(_)) => return Err("give `alarm_prefix` or `alarms`, not both".into()),
            (None, None) => return Err("name the alarms to fire: `alarm_prefix` or `alarms`".into()),
            (None, Some(a)) if a.is_empty() || a.iter().any(|n| n.trim().is_empty()) => {
                return Err("`alarms` must name at least one alarm, and no empty name".into())
            }
            (Some(Input::Value(p)), None) if p.trim().is_empty() => {
                return Err("`alarm_prefix` cannot be empty: it would fire every alarm in the region".into())
            }
            _ => {}
        }
        if self.max_delay_s.is_some_and(|b| b.is_nan() || b <= 0.0) {
            return Err("`max_delay_s` must be above 0".into());
        }
        if self.wait_s == Some(0) {
            return Err("`wait_s` must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_kind_order_and_names_are_unique() {
        let mut names = std::collections::BTreeSet::new();
        for (i, d) in KINDS.iter().enumerate() {
            assert_eq!(d.kind as usize, i, "{} out of place", d.name);
            assert!(std::ptr::eq(d.kind.def(), d), "{}: def() points elsewhere", d.name);
            assert!(names.insert(d.name), "{} twice", d.name);
            assert_eq!(StepKind::parse(d.name), Some(d.kind));
            assert!(d.kind.params_schema().is_object(), "{}", d.name);
        }
        assert!(StepKind::Changeset.requires_gate() && StepKind::Approval.requires_gate());
        assert!(!StepKind::Probe.requires_gate());
        assert!(StepKind::Loadtest.verifies(&ReqKind::LatencyP("99".into())));
        assert!(!StepKind::Loadtest.verifies(&ReqKind::Rto));
    }

    #[test]
    fn params_are_checked_beyond_their_types() {
        let p = |v: serde_json::Value| v.as_object().unwrap().clone();
        let load = StepKind::Loadtest;
        assert!(load
            .check_params(&p(serde_json::json!({"url": "http://x/", "duration_s": 10, "warmup_s": 2})))
            .is_ok());
        assert_eq!(
            load.check_params(&p(serde_json::json!({"url": "http://x/", "duration_s": 10, "warmup_s": 10})))
                .unwrap_err()
                .to_string(),
            "`warmup_s` (10) must be shorter than `duration_s` (10)"
        );
        assert!(StepKind::CapacityModel
            .check_params(&p(serde_json::json!({"target_rps": 0, "per_instance_rps": 1, "azs": 3, "headroom_pct": 1, "vcpus_per_instance": 1})))
            .unwrap_err()
            .to_string()
            .contains("`target_rps` must be greater than 0"));
    }
}
