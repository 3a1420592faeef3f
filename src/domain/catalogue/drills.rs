//! The params of the drill and assessment kinds: failover (and its [`Fault`]), restore, alarm,
//! assess.

use crate::domain::reference::Input;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::*;

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
