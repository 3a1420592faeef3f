//! A local stand-in for the AWS APIs `flow` calls, for `scripts/demo`: the test suite's
//! wire-protocol fakes (`tests/cli/fake_aws.rs`: Service Quotas over awsJson1.1, CloudFormation
//! over awsQuery; `tests/cli/fake_drills.rs`: FIS, ARC zonal shift and AWS Backup over
//! restJson1) served on 127.0.0.1 until killed. moto cannot carry the launch runbook (no quota
//! increase requests, no stack outputs after a change set, no restore jobs, no experiment that
//! touches anything), so the demo uses these.
//!
//! `cargo run --example aws_emulator -- ENDPOINT_URL` prints the emulator's URL on its first
//! line. Quotas are seeded so that the vCPU quota falls short (one increase request, approved
//! when next polled); every stack's `EndpointURL` output is ENDPOINT_URL (the demo's app).
//!
//! The drills act for real on this machine:
//! - an FIS experiment runs `FLOW_DEMO_FAULT_START` when it starts and `FLOW_DEMO_FAULT_END`
//!   when it ends, `FLOW_DEMO_FAULT_SECONDS` (default 3) later: the demo pauses its app;
//! - the backup of `FLOW_DEMO_BACKUP_RESOURCE` has a recovery point four minutes old; a restore
//!   takes three seconds, then the scratch copy listens on 127.0.0.1:`FLOW_DEMO_RESTORE_PORT`;
//! - CloudWatch alarms named `FLOW_DEMO_ALARM_PREFIX...` notify the SNS topic
//!   `FLOW_DEMO_ALARM_TOPIC` at `FLOW_DEMO_SNS_URL` (moto, which delivers to SQS) when set to
//!   ALARM.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[path = "../tests/cli/serve.rs"]
mod serve;

#[allow(dead_code)]
#[path = "../tests/cli/fake_aws.rs"]
mod fake_aws;

#[allow(dead_code)]
#[path = "../tests/cli/fake_drills.rs"]
mod fake_drills;

#[allow(dead_code)]
#[path = "../tests/cli/fake_cloudwatch.rs"]
mod fake_cloudwatch;

fn sh(var: &str) {
    if let Ok(cmd) = std::env::var(var) {
        let _ = std::process::Command::new("sh").arg("-c").arg(&cmd).status();
    }
}

fn main() {
    let endpoint = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8080/".into());
    let aws = fake_aws::FakeAws::start();
    aws.set_quota("ec2", "L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", None, 8.0);
    aws.set_quota("elasticloadbalancing", "L-53DA6B97", "Application Load Balancers per Region", Some(50.0), 50.0);
    aws.set_quota("vpc", "L-FE5A380F", "NAT gateways per Availability Zone", None, 5.0);
    aws.set_quota("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs", Some(5.0), 5.0);
    let seconds = std::env::var("FLOW_DEMO_FAULT_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let resource = std::env::var("FLOW_DEMO_BACKUP_RESOURCE").unwrap_or_default();
    let restore_port: Option<u16> = std::env::var("FLOW_DEMO_RESTORE_PORT").ok().and_then(|p| p.parse().ok());
    aws.with(|s| {
        s.auto_approve = true;
        s.outputs.insert("EndpointURL".into(), endpoint);
        s.outputs.insert("BackupVaultName".into(), "orders-app-backup-vault".into());
        s.outputs.insert("BackupPlanId".into(), "orders-app-backup-plan".into());
        s.outputs.insert("ExperimentTemplateId".into(), "EXTaz1power".into());
        s.drills.default_duration = Some(Duration::from_secs(seconds));
        s.drills.fault = Some(Arc::new(|on| sh(if on { "FLOW_DEMO_FAULT_START" } else { "FLOW_DEMO_FAULT_END" })));
        s.drills.recovery_points.push(fake_drills::RecoveryPoint {
            arn: "arn:aws:backup:eu-west-1:123456789012:recovery-point:continuous:orders-db".into(),
            resource: resource.clone(),
            vault: "orders-app-backup-vault".into(),
            created: SystemTime::now() - Duration::from_secs(240),
        });
        // The rules of workflows/templates/backup.yaml.
        s.drills.plans.push((
            "orders-app-backup-plan".into(),
            vec![
                ("continuous".into(), "cron(0 5 ? * * *)".into(), 60, true),
                ("hourly".into(), "cron(0 * ? * * *)".into(), 60, false),
            ],
        ));
        s.drills.restore_takes = Duration::from_secs(3);
        s.drills.restored = Some(Arc::new(move |_| {
            let Some(port) = restore_port else { return };
            // The scratch copy: something listening where the restore drill probes.
            std::thread::spawn(move || {
                if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                    for c in l.incoming() {
                        drop(c);
                    }
                }
            });
        }));
    });
    // The alarms change set's alarms, on a topic in moto (`FLOW_DEMO_SNS_URL`), which the
    // alarm drill sets off: their actions publish there.
    if let (Ok(sns), Ok(topic), Ok(prefix)) = (
        std::env::var("FLOW_DEMO_SNS_URL"),
        std::env::var("FLOW_DEMO_ALARM_TOPIC"),
        std::env::var("FLOW_DEMO_ALARM_PREFIX"),
    ) {
        let errors = format!("{prefix}ErrorRateAlarm-DEMO");
        aws.with(|s| {
            let cw = s.cloudwatch.clone();
            {
                let mut alarms = cw.lock().unwrap();
                alarms.sns_url = Some(sns);
                for name in ["LatencyAlarm", "ErrorRateAlarm", "UnhealthyHostsAlarm", "RequestAnomalyAlarm"] {
                    alarms.add(&format!("{prefix}{name}-DEMO"), &[&topic]);
                }
            }
            // The FIS experiment's stop condition is the error-rate alarm, which the outage
            // sets off (as a 5xx rate over its threshold would) and its end clears.
            s.drills.stop_alarm = Some(errors.clone());
            let fault = s.drills.fault.take();
            s.drills.fault = Some(Arc::new(move |on| {
                if let Some(f) = &fault {
                    f(on);
                }
                cw.lock().unwrap().crossed(&errors, if on { "ALARM" } else { "OK" });
            }));
        });
    }
    println!("{}", aws.url);
    loop {
        std::thread::park();
    }
}
