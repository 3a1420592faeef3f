//! The infrastructure a throughput target or AZ tolerance needs: the fleet sized (measured
//! when there is a target), what runs read first, the quotas, the network (kept, added to or
//! new), the compute stack, its alarms, and the same read again after the changes.

use super::*;

/// The fleet's size, as figures or as the capacity model's outputs.
struct Sizing {
    min: Value,
    max: Value,
    desired: Value,
    vcpus: Value,
}

/// The network the compute stack goes into: as figures (kept) or the network change set's
/// outputs.
struct Subnets {
    vpc: Value,
    public: Value,
    private: Value,
    /// The kept private subnets' ARNs, comma-separated.
    arns: Option<String>,
}

pub(super) fn draw(d: &mut Draft) {
    // The instance serving today: the baseline measures its type, the fleet runs its AMI.
    let serving = d.running.and_then(|s| s.instances.first());
    let instance_type = serving.map(|i| i.instance_type.clone()).filter(|t| !t.is_empty());
    let instance_type = instance_type.unwrap_or_else(|| INSTANCE_TYPE.to_string());
    let vcpus_per = serving.and_then(|i| i.vcpus).unwrap_or(VCPUS_PER_INSTANCE);
    let image = serving.map(|i| i.image.clone()).filter(|i| !i.is_empty());

    let size = sizing(d, &instance_type, vcpus_per);
    let sized: &[&str] = if d.throughput.is_some() { &["capacity-model"] } else { &[] };
    // Where the app runs today, when the spec says: read before anything is changed.
    let assessed = d.spec.context.contains_key("vpc");
    if let Some(vpc) = d.spec.context.get("vpc") {
        let mut params = json!({"vpc": vpc});
        if d.throughput.is_some() {
            params["fleet_max"] = json!("${capacity-model.max_instances}");
        }
        d.push(step(
            "assess",
            "assess",
            &format!("Read what runs in {vpc} today (read-only): single instance, NAT gateways, subnets and their free addresses, load balancers, alarms"),
            sized,
            vec![],
            false,
            params,
        ));
    }
    let keep = matches!(d.net, Some(Network::Keep { .. }));
    quotas(d, &size, sized, keep);
    let mut network_needs = vec!["ip-capacity"];
    if !keep {
        network_needs.extend(["quota-nat-gateways", "quota-eips"]);
    }
    if assessed {
        network_needs.push("assess");
    }
    let Subnets { vpc, public, private, arns } = network(d, &size, sized, &network_needs);
    d.kept_subnets = arns;

    let mut compute_needs = if keep { vec!["ip-capacity"] } else { vec!["changeset-network"] };
    compute_needs.extend(["quota-ec2-vcpus", "quota-alb"]);
    if keep && assessed {
        compute_needs.push("assess");
    }
    compute_needs.extend_from_slice(sized);
    let mut parameters = json!({
        "VpcId": vpc,
        "PublicSubnetIds": public,
        "PrivateSubnetIds": private,
        "InstanceType": instance_type,
        "MinSize": size.min,
        "MaxSize": size.max,
        "DesiredCapacity": size.desired,
    });
    let from = match (&image, serving) {
        (Some(ami), Some(i)) => {
            parameters["InstanceImageId"] = json!(ami);
            format!(", from the running instance {}'s AMI {ami} and type", i.id)
        }
        _ => String::new(),
    };
    let stack = d.stack.clone();
    d.push(step(
        "changeset-compute",
        "changeset",
        &format!("Auto Scaling group across the AZs behind an Application Load Balancer, from a launch template{from}"),
        &compute_needs,
        vec![],
        true,
        json!({
            "template": "templates/compute.yaml",
            "stack": format!("{stack}-compute"),
            "parameters": parameters,
        }),
    ));
    alarms(d);
    if let Some(assess) = d.steps.iter().find(|s| s.id == "assess").cloned() {
        // The same read after the changes: the report shows the findings they closed.
        d.push(step(
            "reassess",
            "assess",
            "Read the VPC again after the changes: which findings they closed, which remain",
            &["changeset-alarms"],
            vec![],
            false,
            serde_json::Value::Object(assess.params),
        ));
        d.verifying.push("reassess");
    }
}

/// Sizing: measured when there is a throughput target (a baseline load test, then the
/// capacity model), else one instance per AZ.
fn sizing(d: &mut Draft, instance_type: &str, vcpus_per: u32) -> Sizing {
    let azs = d.azs;
    let Some(target) = d.throughput else {
        let n = azs as u64;
        return Sizing { min: json!(n), max: json!(2 * n), desired: json!(n), vcpus: json!(2 * n * vcpus_per as u64) };
    };
    let endpoint_note = d.endpoint_note;
    let endpoint = d.endpoint.clone();
    d.push(step(
        "baseline-load",
        "loadtest",
        &format!("Measure what the current endpoint serves today, as fast as 64 connections allow{endpoint_note}"),
        &[],
        vec![],
        true,
        json!({"url": endpoint, "connections": 64, "duration_s": 60, "keepalive": false}),
    ));
    d.push(step(
        "capacity-model",
        "capacity_model",
        &format!(
            "Instances per AZ so that losing one of {azs} AZs still serves the target with {HEADROOM_PCT}% headroom"
        ),
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
    Sizing {
        min: json!("${capacity-model.min_instances}"),
        max: json!("${capacity-model.max_instances}"),
        desired: json!("${capacity-model.instances_total}"),
        vcpus: json!("${capacity-model.vcpus}"),
    }
}

/// The quotas the fleet and the network need, each counting what the account already uses; a
/// kept network adds no NAT gateway, and so no Elastic IP.
fn quotas(d: &mut Draft, size: &Sizing, sized: &[&str], keep: bool) {
    let model = |name: &str, fallback: Value| -> Value {
        if d.throughput.is_some() {
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
            size.vcpus.clone(),
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
    for (id, service, code, name, required, why) in quotas {
        if keep && matches!(id, "quota-nat-gateways" | "quota-eips") {
            continue;
        }
        let mut params = json!({"service_code": service, "quota_code": code, "quota_name": name, "required": required});
        // What the account already uses counts against the same quota.
        let mut used = String::new();
        if let Some(u) = d.running.map(|r| &r.usage) {
            let target_azs: Vec<String> = match &d.net {
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
        d.push(step(
            id,
            "quota",
            &format!("Check {name} covers {why}{used}; request an increase when short"),
            sized,
            vec![],
            true,
            params,
        ));
    }
}

/// The network: its subnets for the compute stack, the address check, and the change set that
/// makes or extends it (none when it is kept).
fn network(d: &mut Draft, size: &Sizing, sized: &[&str], network_needs: &[&str]) -> Subnets {
    let made = |name: &str| json!(format!("${{changeset-network.{name}}}"));
    let (azs, stack, max) = (d.azs, d.stack.clone(), size.max.clone());
    match d.net.clone() {
        Some(Network::Keep { vpc, cidr, azs: kept, public, private, private_prefix }) => {
            d.push(step(
                "ip-capacity",
                "ip_capacity",
                &format!(
                    "Check the private subnets {vpc} keeps ({}, /{private_prefix} or larger) hold the fleet at its maximum, even with one AZ lost",
                    kept.join(", ")
                ),
                sized,
                vec![],
                false,
                json!({"vpc_cidr": cidr, "subnet_prefix": private_prefix, "azs": azs, "instances": max}),
            ));
            let arns: Vec<&str> = d
                .running
                .into_iter()
                .flat_map(|s| &s.subnets)
                .filter(|n| private.contains(&n.id) && !n.arn.is_empty())
                .map(|n| n.arn.as_str())
                .collect();
            Subnets { vpc: json!(vpc), public: json!(public), private: json!(private), arns: Some(arns.join(",")) }
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
            d.push(step(
                "ip-capacity",
                "ip_capacity",
                &format!("Check the /{SUBNET_PREFIX} subnets added to {vpc} from {within} hold the fleet at its maximum, even with one AZ lost"),
                sized,
                vec![],
                false,
                json!({"vpc_cidr": within, "subnet_prefix": SUBNET_PREFIX, "azs": azs, "instances": max}),
            ));
            let block = match &add_cidr {
                Some(c) => format!("the CIDR block {c} and, in it, "),
                None => format!("in its free room of {within}, "),
            };
            d.push(step(
                "changeset-network",
                "changeset",
                &format!(
                    "Add to {vpc} {block}a public and a private subnet with a NAT gateway in each of {} ({why}); its running instance and subnets stay as they are",
                    target.join(", ")
                ),
                network_needs,
                vec![],
                true,
                json!({
                    "template": "templates/network-extend.yaml",
                    "stack": format!("{stack}-network"),
                    "parameters": {
                        "VpcId": vpc,
                        "InternetGatewayId": internet_gateway,
                        "AddCidrBlock": add_cidr.unwrap_or_default(),
                        "AvailabilityZones": target,
                        "PublicSubnetCidrs": public_cidrs,
                        "PrivateSubnetCidrs": private_cidrs,
                    },
                }),
            ));
            Subnets { vpc: json!(vpc), public: made("PublicSubnetIds"), private: made("PrivateSubnetIds"), arns: None }
        }
        net @ (None | Some(Network::New { .. })) => {
            d.push(step(
                "ip-capacity",
                "ip_capacity",
                &format!(
                    "Check the {VPC_CIDR} VPC's per-AZ /24 subnets hold the fleet at its maximum, even with one AZ lost"
                ),
                sized,
                vec![],
                false,
                json!({"vpc_cidr": VPC_CIDR, "subnet_prefix": SUBNET_PREFIX, "azs": AZS, "instances": max}),
            ));
            // Public subnets first, then private ones: the layout ip-capacity checks.
            let layout = crate::domain::capacity::subnets(VPC_CIDR, SUBNET_PREFIX, 2 * AZS).unwrap_or_default();
            let (public, private) = layout.split_at(layout.len().min(AZS as usize));
            let why = match &net {
                Some(Network::New { why }) => format!(" ({why})"),
                _ => String::new(),
            };
            d.push(step(
                "changeset-network",
                "changeset",
                &format!("Multi-AZ network: public and private subnets in each AZ, one NAT gateway per AZ (no single NAT){why}"),
                network_needs,
                vec![],
                true,
                json!({
                    "template": "templates/network.yaml",
                    "stack": format!("{stack}-network"),
                    "parameters": {"VpcCidr": VPC_CIDR, "PublicSubnetCidrs": public, "PrivateSubnetCidrs": private},
                }),
            ));
            Subnets {
                vpc: made("VpcId"),
                public: made("PublicSubnetIds"),
                private: made("PrivateSubnetIds"),
                arns: None,
            }
        }
    }
}

/// Alarms on the compute stack, at the spec's latency and success targets where it has them.
fn alarms(d: &mut Draft) {
    let latency_ms = d.of(|k| *k == Kind::LatencyAvg).first().map(|r| r.value);
    let success = d.of(|k| *k == Kind::SuccessRate).first().map(|r| r.value);
    let stack = d.stack.clone();
    d.push(step(
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
}
