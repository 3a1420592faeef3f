//! The fixed catalogue of step kinds. Each kind is declared once, in [`KINDS`]: its name and
//! meaning, whether it changes the world (and so must be gated) or is a human decision, which
//! requirement kinds it can verify, the outputs later steps may reference, and its typed params
//! (their JSON schema and their checks). Planners, the validator, the LLM prompt and the engine
//! all read this one table; the executors that carry each kind out are registered beside it, in
//! [`crate::executor`].

mod drills;
mod params;

pub use drills::*;
pub use params::*;

use schemars::JsonSchema;
use serde_json::{Map, Value};

use super::metric as m;
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

    /// A spread load test: a runner or place needs workers, and a remote runner an S3 place.
    #[test]
    fn a_load_tests_spread_is_checked_with_its_params() {
        let loadtest = |extra: Value| {
            let mut p = serde_json::json!({"url": "http://127.0.0.1:1/", "rate": 10.0, "duration_s": 5});
            p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            check::<LoadtestParams>(p.as_object().unwrap()).map_err(|e| e.0)
        };
        let ecs = serde_json::json!({"kind": "ecs", "cluster": "c", "task_definition": "t", "subnets": ["s"]});
        assert!(loadtest(serde_json::json!({"runner": ecs})).unwrap_err().contains("set `workers` to 2 or more"));
        assert!(loadtest(serde_json::json!({"workers": 2, "runner": ecs}))
            .unwrap_err()
            .starts_with("`runner`: the ecs runner's workers meet the coordinator at an S3 prefix"));
        assert_eq!(loadtest(serde_json::json!({"workers": 2, "runner": ecs, "place": "s3://b/p"})), Ok(()));
        assert_eq!(loadtest(serde_json::json!({"workers": 2})), Ok(()));
    }
}
