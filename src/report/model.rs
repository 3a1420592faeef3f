//! The go/no-go report's model: what `flow report` renders ([`super::html`],
//! [`super::markdown`], [`super::junit`]) and `--json` prints. Built from a runbook's plan,
//! view and journal by `app::report::build`; plain data here, so every renderer can be tested
//! from a constructed value.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::drill::{Change, Outage};
use crate::domain::event::Event;
use crate::domain::lifecycle::{Approval, State};
use crate::domain::verdict::Measure;
use crate::load::Second;

/// Bump when the report's shape changes.
pub const REPORT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub runbook: String,
    pub spec: String,
    pub plan_version: u32,
    pub generated_at: String,
    pub decision: Decision,
    pub requirements: Vec<RequirementReport>,
    /// What the spec leaves open until a person answers: not requirements yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<crate::domain::spec::Question>,
    pub steps: Vec<StepReport>,
    pub journal: Vec<Event>,
    /// What the change sets make: drawn from the first assess step's reading (or from the plan
    /// alone when it builds a new VPC); none without a compute change set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<crate::domain::assess::Setup>,
}

pub use crate::domain::verdict::Decision;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequirementReport {
    pub id: String,
    pub kind: String,
    pub text: String,
    pub source: String,
    pub line: usize,
    pub target: String,
    /// What it applies to, when the spec says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// pass, fail, unverified, or monitoring (verified after launch).
    pub verdict: String,
    pub measurable: bool,
    /// Why it is not a pass, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The steps that cover it.
    pub steps: Vec<String>,
    pub evidence: Vec<Measure>,
    /// When the figures were taken (the verifying step's last event).
    pub measured_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    pub id: String,
    pub kind: String,
    pub description: String,
    pub state: State,
    pub needs: Vec<String>,
    pub covers: Vec<String>,
    pub gate: bool,
    pub approval: Option<Approval>,
    /// Every approval of what it showed (several when the policy asks for more).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
    /// What was shown for approval (or is waiting for it).
    pub artifact: Option<String>,
    pub error: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub outputs: Map<String, Value>,
    pub evidence: Map<String, Value>,
    pub updated_at: Option<String>,
    /// A quota step's figures.
    pub quota: Option<QuotaView>,
    /// A change set's resources: (action, logical id, type, replacement).
    pub changes: Vec<(String, String, String, String)>,
    /// A load test's per-second series and overall percentiles.
    pub load: Option<LoadView>,
    pub failover: Option<FailoverView>,
    pub restore: Option<RestoreView>,
    /// An alarm drill's per-alarm delays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<AlarmView>,
    /// An assess step's findings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<crate::domain::assess::Finding>,
    /// A later assess step: the earlier one's findings it no longer finds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Closed>,
    /// An assess step's reading, from its evidence (where the JSON has it), for the pictures.
    #[serde(skip)]
    pub setup: Option<crate::domain::assess::Setup>,
}

/// What an assess step read after an earlier one no longer shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Closed {
    /// The earlier assess step.
    pub since: String,
    pub findings: Vec<crate::domain::assess::Finding>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlarmView {
    /// (alarm, delay s, subject)
    pub alarms: Vec<(String, f64, String)>,
    pub slowest_s: Option<f64>,
    pub bound_s: Option<f64>,
    pub findings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuotaView {
    pub quota: String,
    pub current: Option<f64>,
    pub required: Option<f64>,
    pub request: Option<String>,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadView {
    pub series: Vec<Second>,
    /// (label, ms): p50 ... max, from the whole run.
    pub percentiles: Vec<(String, f64)>,
    pub throughput_rps: Option<f64>,
    pub success_rate_pct: Option<f64>,
    /// Seconds of warm-up at the start of the series (sent, not counted in the figures).
    #[serde(default)]
    pub warmup_s: f64,
    /// The throughput target this load test verifies (req/s).
    #[serde(default)]
    pub rate_target: Option<f64>,
    /// The latency targets it verifies: (`avg`, `p99` ..., ms).
    #[serde(default)]
    pub latency_targets: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailoverView {
    pub timeline: Vec<Change>,
    pub outages: Vec<Outage>,
    pub fault_at_ms: u64,
    pub end_ms: u64,
    pub downtime_s: f64,
    pub recovered: bool,
    pub max_downtime_s: Option<f64>,
    /// The alarms that fired during the drill: (alarm, s after the fault, back to OK at).
    #[serde(default)]
    pub alarms: Vec<(String, f64, Option<f64>)>,
    /// What the alarms' history says about the drill (a stop condition that never fired ...).
    #[serde(default)]
    pub alarm_findings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreView {
    pub rto_s: Option<f64>,
    pub rto_restore_s: Option<f64>,
    pub rto_probe_s: Option<f64>,
    pub rpo_s: Option<f64>,
    pub rpo_measured_s: Option<f64>,
    pub rpo_worst_case_s: Option<f64>,
    pub rpo_worst_case_from: Option<String>,
    pub rto_target_s: Option<f64>,
    pub rpo_target_s: Option<f64>,
}
