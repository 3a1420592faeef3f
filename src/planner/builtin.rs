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
    ("templates/network.yaml", include_str!("../../workflows/templates/network.yaml")),
    ("templates/network-extend.yaml", include_str!("../../workflows/templates/network-extend.yaml")),
    ("templates/compute.yaml", include_str!("../../workflows/templates/compute.yaml")),
    ("templates/alarms.yaml", include_str!("../../workflows/templates/alarms.yaml")),
    ("templates/resilience.yaml", include_str!("../../workflows/templates/resilience.yaml")),
    ("templates/backup.yaml", include_str!("../../workflows/templates/backup.yaml")),
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

/// The plan for a spec; with `running`, what runs in the spec's VPC (read by `flow plan`), the
/// change sets turn it into the target instead of building beside it: the network is kept,
/// added to, or new as [`network::decide`] says, and the launch template starts from the running
/// instance's AMI and type.
pub fn plan(runbook: &str, spec_path: &str, spec: &Spec, running: Option<&Setup>) -> Plan {
    let reqs = &spec.requirements;
    let of = |f: &dyn Fn(&Kind) -> bool| -> Vec<&Requirement> { reqs.iter().filter(|r| f(&r.kind)).collect() };
    let throughput = of(&|k| *k == Kind::Throughput).first().map(|r| r.value);
    let perf = of(&|k| matches!(k, Kind::Throughput | Kind::LatencyAvg | Kind::LatencyP(_) | Kind::SuccessRate));
    let az = of(&|k| matches!(k, Kind::AzFailureTolerance | Kind::FailoverDowntime));
    let restore = of(&|k| matches!(k, Kind::Rto | Kind::Rpo));
    let notify = of(&|k| *k == Kind::Notification);
    let others = of(&|k| *k == Kind::Other);
    let latency_ms = of(&|k| *k == Kind::LatencyAvg).first().map(|r| r.value);
    let success = of(&|k| *k == Kind::SuccessRate).first().map(|r| r.value);

    let endpoint = spec.context.get("endpoint").cloned();
    let endpoint_note = if endpoint.is_some() { "" } else { " (the spec names no endpoint: set `url`)" };
    let endpoint = endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let stack = spec.context.get("stack").cloned().unwrap_or_else(|| runbook.to_string());

    let mut steps = Vec::new();
    let mut verifying: Vec<&str> = Vec::new();
    let infra = throughput.is_some() || !az.is_empty();
    let net = running.map(|s| network::decide(s, AZS, SUBNET_PREFIX));
    let azs = match &net {
        Some(Network::Keep { azs, .. } | Network::Extend { azs, .. }) => azs.len() as u32,
        _ => AZS,
    };
    // The instance serving today: the baseline measures its type, the fleet runs its AMI.
    let serving = running.and_then(|s| s.instances.first());
    let instance_type = serving.map(|i| i.instance_type.clone()).filter(|t| !t.is_empty());
    let instance_type = instance_type.unwrap_or_else(|| INSTANCE_TYPE.to_string());
    let vcpus_per = serving.and_then(|i| i.vcpus).unwrap_or(VCPUS_PER_INSTANCE);
    let image = serving.map(|i| i.image.clone()).filter(|i| !i.is_empty());
    // The kept private subnets, by ARN, for the AZ drill (no flow stack tags them).
    let mut kept_subnets: Option<String> = None;

    if infra {
        // Sizing: measured when there is a throughput target, else one instance per AZ.
        let (min, max, desired, vcpus) = if let Some(target) = throughput {
            steps.push(step(
                "baseline-load",
                "loadtest",
                &format!(
                    "Measure what the current endpoint serves today, as fast as 64 connections allow{endpoint_note}"
                ),
                &[],
                vec![],
                true,
                json!({"url": endpoint, "connections": 64, "duration_s": 60, "keepalive": false}),
            ));
            steps.push(step(
                "capacity-model",
                "capacity_model",
                &format!("Instances per AZ so that losing one of {azs} AZs still serves the target with {HEADROOM_PCT}% headroom"),
                &["baseline-load"],
                vec![],
                false,
                json!({
                    "target_rps": target,
                    "per_instance_rps": "${baseline-load.throughput_rps}",
                    "azs": azs,
                    "headroom_pct": HEADROOM_PCT,
                    "vcpus_per_instance": vcpus_per,
                    "instance_type": instance_type,
                }),
            ));
            (
                json!("${capacity-model.min_instances}"),
                json!("${capacity-model.max_instances}"),
                json!("${capacity-model.instances_total}"),
                json!("${capacity-model.vcpus}"),
            )
        } else {
            let n = azs as u64;
            (json!(n), json!(2 * n), json!(n), json!(2 * n * vcpus_per as u64))
        };
        let sized: &[&str] = if throughput.is_some() { &["capacity-model"] } else { &[] };
        // Where the app runs today, when the spec says: read before anything is changed.
        let assessed = spec.context.contains_key("vpc");
        if let Some(vpc) = spec.context.get("vpc") {
            let mut params = json!({"vpc": vpc});
            if throughput.is_some() {
                params["fleet_max"] = json!("${capacity-model.max_instances}");
            }
            steps.push(step(
                "assess",
                "assess",
                &format!("Read what runs in {vpc} today (read-only): single instance, NAT gateways, subnets and their free addresses, load balancers, alarms"),
                sized,
                vec![],
                false,
                params,
            ));
        }
        let model = |name: &str, fallback: Value| -> Value {
            if throughput.is_some() {
                json!(format!("${{capacity-model.{name}}}"))
            } else {
                fallback
            }
        };
        let quotas = [
            (
                "quota-ec2-vcpus",
                "ec2",
                "L-1216C47A",
                "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
                vcpus.clone(),
                "vCPUs for the Auto Scaling group at its maximum size",
            ),
            (
                "quota-alb",
                "elasticloadbalancing",
                "L-53DA6B97",
                "Application Load Balancers per Region",
                model("albs", json!(1)),
                "one Application Load Balancer across the AZs",
            ),
            (
                "quota-nat-gateways",
                "vpc",
                "L-FE5A380F",
                "NAT gateways per Availability Zone",
                model("nat_gateways_per_az", json!(1)),
                "one NAT gateway in each AZ",
            ),
            (
                "quota-eips",
                "ec2",
                "L-0263D0A3",
                "EC2-VPC Elastic IPs",
                model("elastic_ips", json!(AZS)),
                "an Elastic IP for each NAT gateway",
            ),
        ];
        let keep = matches!(net, Some(Network::Keep { .. }));
        for (id, service, code, name, required, why) in quotas {
            // A kept network adds no NAT gateway, and so no Elastic IP.
            if keep && matches!(id, "quota-nat-gateways" | "quota-eips") {
                continue;
            }
            let mut params =
                json!({"service_code": service, "quota_code": code, "quota_name": name, "required": required});
            // What the account already uses counts against the same quota.
            let mut used = String::new();
            if let Some(u) = running.map(|r| &r.usage) {
                let target_azs: Vec<String> = match &net {
                    Some(Network::Extend { azs, .. }) => azs.clone(),
                    _ => u.nat_gateways.keys().cloned().collect(),
                };
                let n = match id {
                    "quota-ec2-vcpus" => u.standard_vcpus,
                    "quota-alb" => u.application_load_balancers,
                    "quota-nat-gateways" => {
                        target_azs.iter().filter_map(|a| u.nat_gateways.get(a)).copied().max().unwrap_or(0)
                    }
                    _ => u.elastic_ips,
                };
                params["in_use"] = json!(n);
                used = format!(" on top of the {n} in use");
            }
            steps.push(step(
                id,
                "quota",
                &format!("Check {name} covers {why}{used}; request an increase when short"),
                sized,
                vec![],
                true,
                params,
            ));
        }
        let mut network_needs = vec!["ip-capacity"];
        if !keep {
            network_needs.extend(["quota-nat-gateways", "quota-eips"]);
        }
        if assessed {
            network_needs.push("assess");
        }
        // The network: its subnets for the compute stack, and the step that makes it (if any).
        let made = |name: &str| json!(format!("${{changeset-network.{name}}}"));
        let (vpc_id, public_ids, private_ids, subnet_arns) = match &net {
            Some(Network::Keep { vpc, cidr, azs: kept, public, private, private_prefix }) => {
                steps.push(step(
                    "ip-capacity",
                    "ip_capacity",
                    &format!(
                        "Check the private subnets {vpc} keeps ({}, /{private_prefix} or larger) hold the fleet at its maximum, even with one AZ lost",
                        kept.join(", ")
                    ),
                    sized,
                    vec![],
                    false,
                    json!({"vpc_cidr": cidr, "subnet_prefix": private_prefix, "azs": azs, "instances": max.clone()}),
                ));
                let arns: Vec<&str> = running
                    .into_iter()
                    .flat_map(|s| &s.subnets)
                    .filter(|n| private.contains(&n.id) && !n.arn.is_empty())
                    .map(|n| n.arn.as_str())
                    .collect();
                (json!(vpc), json!(public), json!(private), Some(arns.join(",")))
            }
            Some(Network::Extend {
                vpc,
                internet_gateway,
                add_cidr,
                within,
                azs: target,
                public_cidrs,
                private_cidrs,
                why,
            }) => {
                steps.push(step(
                    "ip-capacity",
                    "ip_capacity",
                    &format!("Check the /{SUBNET_PREFIX} subnets added to {vpc} from {within} hold the fleet at its maximum, even with one AZ lost"),
                    sized,
                    vec![],
                    false,
                    json!({"vpc_cidr": within, "subnet_prefix": SUBNET_PREFIX, "azs": azs, "instances": max.clone()}),
                ));
                let block = match add_cidr {
                    Some(c) => format!("the CIDR block {c} and, in it, "),
                    None => format!("in its free room of {within}, "),
                };
                steps.push(step(
                    "changeset-network",
                    "changeset",
                    &format!(
                        "Add to {vpc} {block}a public and a private subnet with a NAT gateway in each of {} ({why}); its running instance and subnets stay as they are",
                        target.join(", ")
                    ),
                    &network_needs,
                    vec![],
                    true,
                    json!({
                        "template": "templates/network-extend.yaml",
                        "stack": format!("{stack}-network"),
                        "parameters": {
                            "VpcId": vpc,
                            "InternetGatewayId": internet_gateway,
                            "AddCidrBlock": add_cidr.clone().unwrap_or_default(),
                            "AvailabilityZones": target,
                            "PublicSubnetCidrs": public_cidrs,
                            "PrivateSubnetCidrs": private_cidrs,
                        },
                    }),
                ));
                (json!(vpc), made("PublicSubnetIds"), made("PrivateSubnetIds"), None)
            }
            None | Some(Network::New { .. }) => {
                steps.push(step(
                    "ip-capacity",
                    "ip_capacity",
                    &format!(
                        "Check the {VPC_CIDR} VPC's per-AZ /24 subnets hold the fleet at its maximum, even with one AZ lost"
                    ),
                    sized,
                    vec![],
                    false,
                    json!({"vpc_cidr": VPC_CIDR, "subnet_prefix": SUBNET_PREFIX, "azs": AZS, "instances": max.clone()}),
                ));
                // Public subnets first, then private ones: the layout ip-capacity checks.
                let layout = crate::domain::capacity::subnets(VPC_CIDR, SUBNET_PREFIX, 2 * AZS).unwrap_or_default();
                let (public, private) = layout.split_at(layout.len().min(AZS as usize));
                let why = match &net {
                    Some(Network::New { why }) => format!(" ({why})"),
                    _ => String::new(),
                };
                steps.push(step(
                    "changeset-network",
                    "changeset",
                    &format!("Multi-AZ network: public and private subnets in each AZ, one NAT gateway per AZ (no single NAT){why}"),
                    &network_needs,
                    vec![],
                    true,
                    json!({
                        "template": "templates/network.yaml",
                        "stack": format!("{stack}-network"),
                        "parameters": {"VpcCidr": VPC_CIDR, "PublicSubnetCidrs": public, "PrivateSubnetCidrs": private},
                    }),
                ));
                (made("VpcId"), made("PublicSubnetIds"), made("PrivateSubnetIds"), None)
            }
        };
        kept_subnets = subnet_arns;
        let mut compute_needs = if keep { vec!["ip-capacity"] } else { vec!["changeset-network"] };
        compute_needs.extend(["quota-ec2-vcpus", "quota-alb"]);
        if keep && assessed {
            compute_needs.push("assess");
        }
        compute_needs.extend_from_slice(sized);
        let mut parameters = json!({
            "VpcId": vpc_id,
            "PublicSubnetIds": public_ids,
            "PrivateSubnetIds": private_ids,
            "InstanceType": instance_type,
            "MinSize": min,
            "MaxSize": max,
            "DesiredCapacity": desired,
        });
        let from = match (&image, serving) {
            (Some(ami), Some(i)) => {
                parameters["InstanceImageId"] = json!(ami);
                format!(", from the running instance {}'s AMI {ami} and type", i.id)
            }
            _ => String::new(),
        };
        steps.push(step(
            "changeset-compute",
            "changeset",
            &format!(
                "Auto Scaling group across the AZs behind an Application Load Balancer, from a launch template{from}"
            ),
            &compute_needs,
            vec![],
            true,
            json!({
                "template": "templates/compute.yaml",
                "stack": format!("{stack}-compute"),
                "parameters": parameters,
            }),
        ));
        steps.push(step(
            "changeset-alarms",
            "changeset",
            "CloudWatch alarms on latency, 5xx rate and unhealthy hosts, an anomaly-detection alarm on request count, SNS notifications",
            &["changeset-compute"],
            vec![],
            true,
            json!({
                "template": "templates/alarms.yaml",
                "stack": format!("{stack}-alarms"),
                "parameters": {
                    "LoadBalancerFullName": "${changeset-compute.LoadBalancerFullName}",
                    "TargetGroupFullName": "${changeset-compute.TargetGroupFullName}",
                    "LatencyThresholdSeconds": latency_ms.map(|ms| ms / 1000.0).unwrap_or(0.5),
                    "ErrorRateThresholdPct": success.map(|s| ((100.0 - s) * 1000.0).round() / 1000.0).unwrap_or(1.0),
                    "NotificationEmail": "ops@example.com",
                },
            }),
        ));
        if let Some(assess) = steps.iter().find(|s| s.id == "assess").cloned() {
            // The same read after the changes: the report shows the findings they closed.
            steps.push(step(
                "reassess",
                "assess",
                "Read the VPC again after the changes: which findings they closed, which remain",
                &["changeset-alarms"],
                vec![],
                false,
                serde_json::Value::Object(assess.params),
            ));
            verifying.push("reassess");
        }
    }

    if !notify.is_empty() {
        // The alarms change set's alarms when the plan makes them, else the spec's.
        let (prefix, needs, note) = match spec.context.get("alarm_prefix") {
            Some(p) => (p.clone(), vec![], ""),
            None if infra => (format!("{stack}-alarms-"), vec!["changeset-alarms"], ""),
            None => (
                format!("{stack}-alarms-"),
                vec![],
                " (the spec names no `alarm_prefix`: set the prefix of the alarms to fire in its context)",
            ),
        };
        steps.push(step(
            "alarm-drill",
            "alarm_drill",
            &format!(
                "Set each alarm to ALARM and measure how long its notification takes to reach a subscriber of its SNS topic; set it back after{note}"
            ),
            &needs,
            ids(&notify),
            true,
            json!({"alarm_prefix": prefix}),
        ));
        verifying.push("alarm-drill");
    }
    if !perf.is_empty() {
        let (id, url, needs, desc) = if infra {
            (
                "peak-load",
                json!("${changeset-compute.EndpointURL}"),
                vec!["changeset-alarms"],
                "Peak load at the target rate, a new connection per request, against the new endpoint".to_string(),
            )
        } else {
            (
                "load-test",
                json!(endpoint),
                vec![],
                format!("Load test at the target rate against the endpoint{endpoint_note}"),
            )
        };
        // Test above the target: a run at exactly 2,500 req/s measures just under it.
        let rate = throughput.map(|t| (t * (1.0 + LOAD_MARGIN_PCT / 100.0)).ceil()).unwrap_or(50.0);
        steps.push(step(
            id,
            "loadtest",
            &desc,
            &needs,
            ids(&perf),
            true,
            json!({"url": url, "rate": rate, "duration_s": 600, "keepalive": throughput.is_none(), "warmup_s": 60}),
        ));
        verifying.push(id);
    }
    if !az.is_empty() {
        let az_name = spec.context.get("drill_az").cloned();
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
        if let Some(arns) = &kept_subnets {
            parameters["SubnetArns"] = json!(arns);
            parameters.as_object_mut().map(|p| p.remove("NetworkStackName"));
        }
        steps.push(step(
            "changeset-resilience",
            "changeset",
            &format!("AWS FIS experiment template for the failover drill: an AZ power interruption of {which}, stopped by the error-rate alarm"),
            &["changeset-alarms"],
            vec![],
            true,
            json!({"template": "templates/resilience.yaml", "stack": format!("{stack}-resilience"), "parameters": parameters}),
        ));
        let mut needs = vec!["changeset-resilience"];
        if verifying.contains(&"peak-load") {
            needs.push("peak-load");
        }
        steps.push(step(
            "az-failover-drill",
            "failover_drill",
            "Run the AZ power interruption while probing the endpoint; measure the longest outage and whether the service comes back by itself",
            &needs,
            ids(&az),
            true,
            json!({
                "endpoint": "${changeset-compute.EndpointURL}",
                "fis_template": "${changeset-resilience.ExperimentTemplateId}",
                "duration_s": 300,
                "probe_interval_ms": 250,
                "alarm_prefix": format!("{stack}-alarms-"),
            }),
        ));
        verifying.push("az-failover-drill");
    }
    if !restore.is_empty() {
        // The spec's resource, else what holds the data in the VPC read: a database (one with no
        // copy first), else the instance serving today.
        let found = running.and_then(|r| {
            let db = r.databases.iter().find(|d| d.backup_retention_days == 0 && !r.backed_up.contains(&d.arn));
            db.or(r.databases.first()).map(|d| d.arn.clone()).or_else(|| {
                r.instances.iter().find(|i| i.auto_scaling_group.is_none() && !i.arn.is_empty()).map(|i| i.arn.clone())
            })
        });
        let (resource, note) = match (spec.context.get("backup_resource"), found) {
            (Some(r), _) => (Some(r.clone()), String::new()),
            (None, Some(f)) => (Some(f.clone()), format!(" (what holds the data in the VPC read: {f})")),
            (None, None) => (None, " (the spec names no `backup_resource`: set it in its context)".to_string()),
        };
        let mut backup_params =
            json!({"template": "templates/backup.yaml", "stack": format!("{stack}-backup"), "parameters": {}});
        if let Some(r) = &resource {
            backup_params["parameters"]["ProtectedResourceArn"] = json!(r);
        }
        steps.push(step(
            "changeset-backup",
            "changeset",
            &format!("AWS Backup for the app's data: a vault, continuous backup and hourly snapshots, the restore role{note}"),
            &[],
            vec![],
            true,
            backup_params,
        ));
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
        if let Some(probe) = spec.context.get("restore_probe") {
            drill["probe"] = json!(probe);
        }
        let probe_note = if spec.context.contains_key("restore_probe") {
            ""
        } else {
            " (the spec names no `restore_probe`: set where the restored copy answers)"
        };
        steps.push(step(
            "restore-drill",
            "restore_drill",
            &format!(
                "Restore the newest recovery point into a scratch copy; RTO: until it answers its probe; RPO: the worse of its age and the plan's worst case{probe_note}"
            ),
            &["changeset-backup"],
            ids(&restore),
            true,
            drill,
        ));
        verifying.push("restore-drill");
    }
    let mut summary = String::from("Go / no-go: every requirement has evidence and passes");
    if !others.is_empty() {
        summary.push_str("; check by hand: ");
        summary.push_str(&others.iter().map(|r| format!("{} (line {})", r.id, r.line)).collect::<Vec<_>>().join(", "));
    }
    steps.push(step(
        "go-no-go",
        "approval",
        "Final decision, with the report of every requirement's evidence",
        &verifying,
        vec![],
        true,
        json!({"summary": summary}),
    ));

    Plan {
        runbook: runbook.into(),
        spec: spec_path.into(),
        planner: "builtin".into(),
        planned_by: None,
        context: spec.context.clone(),
        steps,
        requirements: spec.requirements.clone(),
        questions: spec.questions.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{spec, validate};

    fn kinds(p: &Plan) -> Vec<&str> {
        p.steps.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn a_spec_naming_its_vpc_is_assessed_before_the_network_changes() {
        let s = spec::parse("r.md", "---\nvpc: vpc-0abc\n---\n- 3000 rps\n").unwrap();
        let p = plan("r", "r.md", &s, None);
        let assess = p.steps.iter().find(|s| s.id == "assess").expect("an assess step");
        assert_eq!((assess.kind.as_str(), assess.gate), ("assess", false));
        assert_eq!(assess.params["vpc"], "vpc-0abc");
        assert_eq!(assess.params["fleet_max"], "${capacity-model.max_instances}");
        assert!(p.steps.iter().find(|s| s.id == "changeset-network").unwrap().needs.contains(&"assess".to_string()));
        assert_eq!(validate::validate(&p), vec![]);
        // Without a VPC there is nothing to read yet.
        let s = spec::parse("r.md", "- 3000 rps\n").unwrap();
        assert!(!plan("r", "r.md", &s, None).steps.iter().any(|s| s.kind == "assess"));
    }

    #[test]
    fn a_restore_only_spec_gets_a_restore_plan() {
        let s = spec::parse("r.md", "- RTO 2 h\n- RPO 10 min\n").unwrap();
        let p = plan("r", "r.md", &s, None);
        assert_eq!(kinds(&p), ["changeset-backup", "restore-drill", "go-no-go"]);
        assert_eq!(validate::validate(&p), vec![]);
    }

    #[test]
    fn a_latency_only_spec_tests_its_endpoint() {
        let s = spec::parse("l.md", "---\nendpoint: http://10.1.1.1/\n---\n- average response under 100 ms\n").unwrap();
        let p = plan("l", "l.md", &s, None);
        assert_eq!(kinds(&p), ["load-test", "go-no-go"]);
        assert_eq!(p.steps[0].params["url"], "http://10.1.1.1/");
        assert_eq!(validate::validate(&p), vec![]);
    }

    #[test]
    fn az_only_spec_builds_multi_az_without_a_baseline() {
        let s = spec::parse("a.md", "- The app must survive the loss of one AZ.\n").unwrap();
        let p = plan("a", "a.md", &s, None);
        assert!(!kinds(&p).contains(&"baseline-load"));
        assert!(kinds(&p).contains(&"az-failover-drill"));
        assert_eq!(validate::validate(&p), vec![]);
    }

    /// What runs: the scenario's starting point in a VPC of `cidr`.
    fn running(cidr: &str) -> Setup {
        let mut s = crate::domain::assess::scenario();
        s.vpc.cidrs = vec![cidr.into()];
        s
    }

    const LAUNCH: &str = "---\nvpc: vpc-1\n---\n- 2500 requests per second\n- survive the loss of one AZ\n";

    fn params<'a>(p: &'a Plan, id: &str) -> &'a serde_json::Map<String, Value> {
        &p.steps.iter().find(|s| s.id == id).unwrap_or_else(|| panic!("no step {id}")).params
    }

    #[test]
    fn a_running_vpc_too_small_is_added_to_and_the_fleet_starts_from_its_instance() {
        let s = spec::parse("l.md", LAUNCH).unwrap();
        let p = plan("l", "l.md", &s, Some(&running("10.0.0.0/26")));
        assert_eq!(validate::validate(&p), vec![]);
        let net = params(&p, "changeset-network");
        assert_eq!(net["template"], "templates/network-extend.yaml");
        assert_eq!(
            net["parameters"],
            json!({
                "VpcId": "vpc-1",
                "InternetGatewayId": "igw-1",
                "AddCidrBlock": "10.0.16.0/20",
                "AvailabilityZones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
                "PublicSubnetCidrs": ["10.0.16.0/24", "10.0.17.0/24", "10.0.18.0/24"],
                "PrivateSubnetCidrs": ["10.0.19.0/24", "10.0.20.0/24", "10.0.21.0/24"],
            })
        );
        let compute = &params(&p, "changeset-compute")["parameters"];
        assert_eq!((&compute["VpcId"], &compute["InstanceImageId"]), (&json!("vpc-1"), &json!("ami-0123")));
        assert_eq!(compute["PrivateSubnetIds"], "${changeset-network.PrivateSubnetIds}");
        let model = params(&p, "capacity-model");
        assert_eq!((&model["instance_type"], &model["azs"]), (&json!("t3.small"), &json!(3)));
        assert_eq!(params(&p, "ip-capacity")["vpc_cidr"], "10.0.16.0/20");
        // What the account uses counts: 2 vCPUs running, 1 NAT gateway in eu-west-1a, 1 Elastic IP.
        let used = |id: &str| params(&p, id)["in_use"].clone();
        assert_eq!(
            [used("quota-ec2-vcpus"), used("quota-nat-gateways"), used("quota-eips"), used("quota-alb")],
            [json!(2), json!(1), json!(1), json!(0)]
        );
        // Read before the network change and again before the decision.
        assert_eq!(p.steps.iter().filter(|s| s.kind == "assess").count(), 2);
        assert!(p.steps.iter().find(|s| s.id == "go-no-go").unwrap().needs.contains(&"reassess".to_string()));
    }

    #[test]
    fn a_running_vpc_with_a_nat_gateway_per_az_gets_no_network_change() {
        let mut r = running("10.0.0.0/16");
        r.subnets.push(crate::domain::assess::Subnet {
            id: "subnet-pb".into(),
            az: "eu-west-1b".into(),
            cidr: "10.0.0.48/28".into(),
            public: true,
            ..r.subnets[0].clone()
        });
        r.nat_gateways.push(crate::domain::assess::NatGateway {
            id: "nat-b".into(),
            az: Some("eu-west-1b".into()),
            subnet: Some("subnet-pb".into()),
            regional: false,
        });
        r.subnets[2].nat = Some("nat-b".into());
        let s = spec::parse("l.md", LAUNCH).unwrap();
        let p = plan("l", "l.md", &s, Some(&r));
        assert_eq!(validate::validate(&p), vec![]);
        let ids = kinds(&p);
        for gone in ["changeset-network", "quota-nat-gateways", "quota-eips"] {
            assert!(!ids.contains(&gone), "{gone} in {ids:?}");
        }
        let compute = &params(&p, "changeset-compute")["parameters"];
        assert_eq!(compute["PublicSubnetIds"], json!(["subnet-pa", "subnet-pb"]));
        assert_eq!(compute["PrivateSubnetIds"], json!(["subnet-a", "subnet-b"]));
        assert_eq!(params(&p, "capacity-model")["azs"], 2);
        assert_eq!(
            params(&p, "changeset-resilience")["parameters"]["SubnetArns"],
            "arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-a,arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-b"
        );
        assert!(params(&p, "changeset-resilience")["parameters"].get("NetworkStackName").is_none());
    }
}
