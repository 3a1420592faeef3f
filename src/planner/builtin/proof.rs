//! The steps that give each requirement its evidence — the alarm drill, the load test, the
//! failover drill, the restore drill — and the go/no-go decision that waits for them all.

use super::*;

/// Notification: set each alarm to ALARM and time its notification. The alarms change set's
/// alarms when the plan makes them, else the spec's.
pub(super) fn alarm_drill(d: &mut Draft) {
    let notify = ids(&d.of(|k| *k == Kind::Notification));
    if notify.is_empty() {
        return;
    }
    let stack = &d.stack;
    let (prefix, needs, note) = match d.spec.context.get("alarm_prefix") {
        Some(p) => (p.clone(), vec![], ""),
        None if d.infra => (format!("{stack}-alarms-"), vec!["changeset-alarms"], ""),
        None => (
            format!("{stack}-alarms-"),
            vec![],
            " (the spec names no `alarm_prefix`: set the prefix of the alarms to fire in its context)",
        ),
    };
    d.push(step(
        "alarm-drill",
        "alarm_drill",
        &format!(
            "Set each alarm to ALARM and measure how long its notification takes to reach a subscriber of its SNS topic; set it back after{note}"
        ),
        &needs,
        notify,
        true,
        json!({"alarm_prefix": prefix}),
    ));
    d.verifying.push("alarm-drill");
}

/// Throughput, latency, success rate: a load test at the target rate, against the new
/// endpoint when the plan builds one, else the spec's.
pub(super) fn load_test(d: &mut Draft) {
    let perf = ids(&d.of(|k| matches!(k, Kind::Throughput | Kind::LatencyAvg | Kind::LatencyP(_) | Kind::SuccessRate)));
    if perf.is_empty() {
        return;
    }
    let (id, url, needs, desc) = if d.infra {
        (
            "peak-load",
            json!("${changeset-compute.EndpointURL}"),
            vec!["changeset-alarms"],
            "Peak load at the target rate, a new connection per request, against the new endpoint".to_string(),
        )
    } else {
        (
            "load-test",
            json!(d.endpoint),
            vec![],
            format!("Load test at the target rate against the endpoint{}", d.endpoint_note),
        )
    };
    // Test above the target: a run at exactly 2,500 req/s measures just under it.
    let rate = d.throughput.map(|t| (t * (1.0 + LOAD_MARGIN_PCT / 100.0)).ceil()).unwrap_or(50.0);
    let keepalive = d.throughput.is_none();
    d.push(step(
        id,
        "loadtest",
        &desc,
        &needs,
        perf,
        true,
        json!({"url": url, "rate": rate, "duration_s": 600, "keepalive": keepalive, "warmup_s": 60}),
    ));
    d.verifying.push(id);
}

/// AZ tolerance, failover downtime: an FIS experiment template (an AZ power interruption, by
/// change set) and the drill that runs it while probing the endpoint.
pub(super) fn failover(d: &mut Draft) {
    let az = ids(&d.of(|k| matches!(k, Kind::AzFailureTolerance | Kind::FailoverDowntime)));
    if az.is_empty() {
        return;
    }
    let stack = d.stack.clone();
    let az_name = d.spec.context.get("drill_az").cloned();
    let which = match &az_name {
        Some(a) => a.clone(),
        None => "the region's first AZ (set `drill_az` in the spec's context to choose)".into(),
    };
    let mut parameters = json!({
        "AutoScalingGroupName": "${changeset-compute.AutoScalingGroupName}",
        "NetworkStackName": format!("{stack}-network"),
        "StopAlarmArn": "${changeset-alarms.ErrorRateAlarmArn}",
        "Duration": "PT5M",
    });
    if let Some(a) = az_name {
        parameters["AvailabilityZone"] = json!(a);
    }
    if let Some(arns) = &d.kept_subnets {
        parameters["SubnetArns"] = json!(arns);
        parameters.as_object_mut().map(|p| p.remove("NetworkStackName"));
    }
    d.push(step(
        "changeset-resilience",
        "changeset",
        &format!("AWS FIS experiment template for the failover drill: an AZ power interruption of {which}, stopped by the error-rate alarm"),
        &["changeset-alarms"],
        vec![],
        true,
        json!({"template": "templates/resilience.yaml", "stack": format!("{stack}-resilience"), "parameters": parameters}),
    ));
    let mut needs = vec!["changeset-resilience"];
    if d.verifying.contains(&"peak-load") {
        needs.push("peak-load");
    }
    d.push(step(
        "az-failover-drill",
        "failover_drill",
        "Run the AZ power interruption while probing the endpoint; measure the longest outage and whether the service comes back by itself",
        &needs,
        az,
        true,
        json!({
            "endpoint": "${changeset-compute.EndpointURL}",
            "fis_template": "${changeset-resilience.ExperimentTemplateId}",
            "duration_s": 300,
            "probe_interval_ms": 250,
            "alarm_prefix": format!("{stack}-alarms-"),
        }),
    ));
    d.verifying.push("az-failover-drill");
}

/// RTO, RPO: AWS Backup for the app's data (by change set) and a restore drill of its newest
/// recovery point.
pub(super) fn restore(d: &mut Draft) {
    let restore = ids(&d.of(|k| matches!(k, Kind::Rto | Kind::Rpo)));
    if restore.is_empty() {
        return;
    }
    let stack = d.stack.clone();
    let context = &d.spec.context;
    // The spec's resource, else what holds the data in the VPC read: a database (one with no
    // copy first), else the instance serving today.
    let found = d.running.and_then(|r| {
        let db = r.databases.iter().find(|d| d.backup_retention_days == 0 && !r.backed_up.contains(&d.arn));
        db.or(r.databases.first()).map(|d| d.arn.clone()).or_else(|| {
            r.instances.iter().find(|i| i.auto_scaling_group.is_none() && !i.arn.is_empty()).map(|i| i.arn.clone())
        })
    });
    let (resource, note) = match (context.get("backup_resource"), found) {
        (Some(r), _) => (Some(r.clone()), String::new()),
        (None, Some(f)) => (Some(f.clone()), format!(" (what holds the data in the VPC read: {f})")),
        (None, None) => (None, " (the spec names no `backup_resource`: set it in its context)".to_string()),
    };
    let mut backup_params =
        json!({"template": "templates/backup.yaml", "stack": format!("{stack}-backup"), "parameters": {}});
    if let Some(r) = &resource {
        backup_params["parameters"]["ProtectedResourceArn"] = json!(r);
    }
    let scratch = format!("{stack}-restore-drill");
    let rds = resource.as_deref().is_some_and(|r| r.starts_with("arn:aws:rds:"));
    let mut drill = json!({
        "backup_vault": "${changeset-backup.BackupVaultName}",
        "backup_plan_id": "${changeset-backup.BackupPlanId}",
        "iam_role_arn": "${changeset-backup.RestoreRoleArn}",
    });
    if rds {
        drill["restore_metadata"] = json!({"DBInstanceIdentifier": scratch});
        drill["cleanup"] =
            json!(format!("aws rds delete-db-instance --db-instance-identifier {scratch} --skip-final-snapshot"));
    }
    if let Some(probe) = context.get("restore_probe") {
        drill["probe"] = json!(probe);
    }
    let probe_note = if context.contains_key("restore_probe") {
        ""
    } else {
        " (the spec names no `restore_probe`: set where the restored copy answers)"
    };
    d.push(step(
        "changeset-backup",
        "changeset",
        &format!(
            "AWS Backup for the app's data: a vault, continuous backup and hourly snapshots, the restore role{note}"
        ),
        &[],
        vec![],
        true,
        backup_params,
    ));
    d.push(step(
        "restore-drill",
        "restore_drill",
        &format!(
            "Restore the newest recovery point into a scratch copy; RTO: until it answers its probe; RPO: the worse of its age and the plan's worst case{probe_note}"
        ),
        &["changeset-backup"],
        restore,
        true,
        drill,
    ));
    d.verifying.push("restore-drill");
}

/// The go/no-go approval, after every step that gives evidence; what no step can measure is
/// named for a person to check by hand.
pub(super) fn decision(d: &mut Draft) {
    let others = d.of(|k| *k == Kind::Other);
    let mut summary = String::from("Go / no-go: every requirement has evidence and passes");
    if !others.is_empty() {
        summary.push_str("; check by hand: ");
        summary.push_str(&others.iter().map(|r| format!("{} (line {})", r.id, r.line)).collect::<Vec<_>>().join(", "));
    }
    let verifying = d.verifying.clone();
    d.push(step(
        "go-no-go",
        "approval",
        "Final decision, with the report of every requirement's evidence",
        &verifying,
        vec![],
        true,
        json!({"summary": summary}),
    ));
}
