//! The `assess` step and the discovery behind it and `flow assess`: what runs in one VPC, read with Describe calls only (EC2, Elastic
//! Load Balancing v2, Auto Scaling, CloudWatch), as a [`Setup`] that `domain::assess` judges.
//!
//! The VPC is the one named, else the region's only non-default one. Each subnet's default route
//! is read from its route table (the VPC's main table when it has none of its own): to an
//! internet gateway (public) or to a NAT gateway (which one). Alarms count when one of their
//! dimensions names an instance or a load balancer of the VPC.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::Filter;
use serde_json::{json, Map, Value};

use super::{obj, typed, Ctx, Error, Executor, Outcome, Preview, Result};
use crate::aws::{Aws, AUTOSCALING, BACKUP, CLOUDWATCH, EC2, ELBV2, RDS};
use crate::domain::assess::{findings, Finding, Needs, Severity};
use crate::domain::assess::{Database, Instance, LoadBalancer, NatGateway, Setup, Subnet, Usage, Vpc};
use crate::domain::catalogue::AssessParams;

fn in_vpc(id: &str) -> Filter {
    Filter::builder().name("vpc-id").values(id).build()
}

async fn pick_vpc(aws: &Aws, ec2: &aws_sdk_ec2::Client, named: Option<&str>) -> Result<Vpc> {
    let mut req = ec2.describe_vpcs();
    if let Some(id) = named {
        req = req.vpc_ids(id);
    }
    let out = req.send().await.map_err(|e| aws.error(EC2, format!("DescribeVpcs {}", named.unwrap_or("")), &e))?;
    let vpc_of = |v: &aws_sdk_ec2::types::Vpc| {
        let mut cidrs: Vec<String> = v
            .cidr_block_association_set()
            .iter()
            .filter(|a| a.cidr_block_state().and_then(|s| s.state()).is_none_or(|s| s.as_str() == "associated"))
            .filter_map(|a| a.cidr_block().map(str::to_string))
            .collect();
        if cidrs.is_empty() {
            cidrs.extend(v.cidr_block().map(str::to_string));
        }
        Vpc { id: v.vpc_id().unwrap_or_default().to_string(), cidrs }
    };
    let own: Vec<&aws_sdk_ec2::types::Vpc> =
        out.vpcs().iter().filter(|v| named.is_some() || !v.is_default().unwrap_or(false)).collect();
    match (named, own.as_slice()) {
        (_, [one]) => Ok(vpc_of(one)),
        (Some(id), []) => Err(Error::Step(format!("no VPC {id} in {}", aws.region))),
        (None, []) => Err(Error::Step(format!(
            "no VPC but the default one in {}: name the app's with --vpc (or `vpc:` in the spec's context)",
            aws.region
        ))),
        (_, many) => Err(Error::Step(format!(
            "{} VPCs in {} ({}): name the app's with --vpc (or `vpc:` in the spec's context)",
            many.len(),
            aws.region,
            many.iter().map(|v| v.vpc_id().unwrap_or_default()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// What runs in the VPC, and its findings against the network the builtin plan builds (public
/// and private subnets in each AZ) and a fleet of `fleet_max` instances.
pub async fn assess(aws: &Aws, vpc: Option<&str>, fleet_max: Option<u64>) -> Result<(Setup, Vec<Finding>)> {
    let setup = discover(aws, vpc).await?;
    let needs =
        Needs { subnets: 2 * crate::planner::builtin::AZS, prefix: crate::planner::builtin::SUBNET_PREFIX, fleet_max };
    let found = findings(&setup, &needs);
    Ok((setup, found))
}

/// What runs in the VPC (`vpc`, else the region's only non-default one).
pub async fn discover(aws: &Aws, vpc: Option<&str>) -> Result<Setup> {
    let ec2 = aws_sdk_ec2::Client::new(&aws.conf);
    let vpc = pick_vpc(aws, &ec2, vpc).await?;
    let id = vpc.id.clone();

    let subnets = ec2
        .describe_subnets()
        .filters(in_vpc(&id))
        .send()
        .await
        .map_err(|e| aws.error(EC2, format!("DescribeSubnets {id}"), &e))?;
    let tables = ec2
        .describe_route_tables()
        .filters(in_vpc(&id))
        .send()
        .await
        .map_err(|e| aws.error(EC2, format!("DescribeRouteTables {id}"), &e))?;
    // Each route table's default route: (public, NAT gateway).
    let mut default_route: BTreeMap<String, (bool, Option<String>)> = BTreeMap::new();
    let mut table_of: BTreeMap<String, String> = BTreeMap::new();
    let mut main_table: Option<String> = None;
    for t in tables.route_tables() {
        let tid = t.route_table_id().unwrap_or_default().to_string();
        let route = t.routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"));
        let public = route.and_then(|r| r.gateway_id()).is_some_and(|g| g.starts_with("igw-"));
        let nat = route.and_then(|r| r.nat_gateway_id()).map(str::to_string);
        default_route.insert(tid.clone(), (public, nat));
        for a in t.associations() {
            if a.main().unwrap_or(false) {
                main_table = Some(tid.clone());
            }
            if let Some(s) = a.subnet_id() {
                table_of.insert(s.to_string(), tid.clone());
            }
        }
    }
    let mut subnet_list: Vec<Subnet> = subnets
        .subnets()
        .iter()
        .map(|n| {
            let sid = n.subnet_id().unwrap_or_default().to_string();
            let table = table_of.get(&sid).or(main_table.as_ref());
            let (public, nat) = table.and_then(|t| default_route.get(t)).cloned().unwrap_or((false, None));
            Subnet {
                az: n.availability_zone().unwrap_or_default().to_string(),
                cidr: n.cidr_block().unwrap_or_default().to_string(),
                free: n.available_ip_address_count().unwrap_or(0).max(0) as u64,
                public,
                nat,
                arn: n.subnet_arn().unwrap_or_default().to_string(),
                id: sid,
            }
        })
        .collect();
    subnet_list.sort_by(|a, b| (&a.az, !a.public, &a.id).cmp(&(&b.az, !b.public, &b.id)));
    let az_of = |subnet: &str| subnet_list.iter().find(|n| n.id == subnet).map(|n| n.az.clone());

    let igws = ec2
        .describe_internet_gateways()
        .filters(Filter::builder().name("attachment.vpc-id").values(&id).build())
        .send()
        .await
        .map_err(|e| aws.error(EC2, format!("DescribeInternetGateways {id}"), &e))?;
    let internet_gateway = igws.internet_gateways().first().and_then(|g| g.internet_gateway_id()).map(str::to_string);
    let zones =
        ec2.describe_availability_zones().send().await.map_err(|e| aws.error(EC2, "DescribeAvailabilityZones", &e))?;
    let mut region_azs: Vec<String> = zones
        .availability_zones()
        .iter()
        .filter(|z| z.state().is_none_or(|s| s.as_str() == "available"))
        .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
        .filter_map(|z| z.zone_name().map(str::to_string))
        .collect();
    region_azs.sort();

    let nats = ec2
        .describe_nat_gateways()
        .filter(in_vpc(&id))
        .send()
        .await
        .map_err(|e| aws.error(EC2, format!("DescribeNatGateways {id}"), &e))?;
    let nat_gateways: Vec<NatGateway> = nats
        .nat_gateways()
        .iter()
        .filter(|g| g.state().is_none_or(|s| s.as_str() == "available" || s.as_str() == "pending"))
        .map(|g| {
            let regional = g.availability_mode().is_some_and(|m| m.as_str() == "regional");
            NatGateway {
                id: g.nat_gateway_id().unwrap_or_default().to_string(),
                az: if regional { None } else { g.subnet_id().and_then(az_of) },
                subnet: if regional { None } else { g.subnet_id().map(str::to_string) },
                regional,
            }
        })
        .collect();

    // One pass over the region's running instances: the VPC's, and the quotas' usage.
    let running = running_instances(aws, &ec2).await?;
    let vcpus = vcpus_of(aws, &ec2, running.iter().filter_map(|(_, i)| i.instance_type()).map(|t| t.as_str())).await?;
    let mut instances: Vec<Instance> = running
        .iter()
        .filter(|(_, i)| i.vpc_id() == Some(id.as_str()))
        .map(|(owner, i)| {
            let instance_type = i.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default();
            Instance {
                arn: format!(
                    "arn:{}:ec2:{}:{owner}:instance/{}",
                    partition(&aws.region),
                    aws.region,
                    i.instance_id().unwrap_or_default()
                ),
                id: i.instance_id().unwrap_or_default().to_string(),
                vcpus: vcpus.get(&instance_type).copied(),
                instance_type,
                az: i.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_string(),
                subnet: i.subnet_id().unwrap_or_default().to_string(),
                auto_scaling_group: None,
                image: i.image_id().unwrap_or_default().to_string(),
            }
        })
        .collect();
    instances.sort_by(|a, b| a.id.cmp(&b.id));
    if !instances.is_empty() {
        let asg = aws_sdk_autoscaling::Client::new(&aws.conf);
        let out = asg
            .describe_auto_scaling_instances()
            .set_instance_ids(Some(instances.iter().map(|i| i.id.clone()).collect()))
            .send()
            .await
            .map_err(|e| aws.error(AUTOSCALING, "DescribeAutoScalingInstances", &e))?;
        for a in out.auto_scaling_instances() {
            if let Some(i) = instances.iter_mut().find(|i| Some(i.id.as_str()) == a.instance_id()) {
                i.auto_scaling_group = a.auto_scaling_group_name().map(str::to_string);
            }
        }
    }

    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&aws.conf);
    let lbs = elb.describe_load_balancers().send().await.map_err(|e| aws.error(ELBV2, "DescribeLoadBalancers", &e))?;
    let mut load_balancers = Vec::new();
    let mut lb_dimensions = Vec::new();
    for lb in lbs.load_balancers().iter().filter(|lb| lb.vpc_id() == Some(id.as_str())) {
        let arn = lb.load_balancer_arn().unwrap_or_default();
        // CloudWatch names a load balancer by its ARN's tail: `app/<name>/<id>`.
        if let Some((_, tail)) = arn.split_once(":loadbalancer/") {
            lb_dimensions.push(tail.to_string());
        }
        let (mut healthy, mut unhealthy) = (0, 0);
        let groups = elb
            .describe_target_groups()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(|e| aws.error(ELBV2, format!("DescribeTargetGroups {arn}"), &e))?;
        for g in groups.target_groups() {
            let tg = g.target_group_arn().unwrap_or_default();
            let health = elb
                .describe_target_health()
                .target_group_arn(tg)
                .send()
                .await
                .map_err(|e| aws.error(ELBV2, format!("DescribeTargetHealth {tg}"), &e))?;
            for t in health.target_health_descriptions() {
                match t.target_health().and_then(|h| h.state()).map(|s| s.as_str()) {
                    Some("healthy") => healthy += 1,
                    _ => unhealthy += 1,
                }
            }
        }
        let mut azs: Vec<String> =
            lb.availability_zones().iter().filter_map(|z| z.zone_name().map(str::to_string)).collect();
        azs.sort();
        load_balancers.push(LoadBalancer {
            name: lb.load_balancer_name().unwrap_or_default().to_string(),
            azs,
            healthy,
            unhealthy,
        });
    }

    // Alarms that watch one of them.
    let watched: Vec<String> = instances.iter().map(|i| i.id.clone()).chain(lb_dimensions).collect();
    let cw = aws_sdk_cloudwatch::Client::new(&aws.conf);
    let mut alarms = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = cw
            .describe_alarms()
            .set_next_token(next.clone())
            .send()
            .await
            .map_err(|e| aws.error(CLOUDWATCH, "DescribeAlarms", &e))?;
        for a in out.metric_alarms() {
            let mut dims: Vec<&str> = a.dimensions().iter().filter_map(|d| d.value()).collect();
            for m in a.metrics() {
                if let Some(metric) = m.metric_stat().and_then(|s| s.metric()) {
                    dims.extend(metric.dimensions().iter().filter_map(|d| d.value()));
                }
            }
            if dims.iter().any(|d| watched.iter().any(|w| w == d)) {
                alarms.push(a.alarm_name().unwrap_or_default().to_string());
            }
        }
        next = out.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    alarms.sort();
    let usage = usage(aws, &ec2, &running, &vcpus, lbs.load_balancers()).await?;
    let databases = databases(aws, &id).await?;
    let ours: Vec<&str> =
        instances.iter().map(|i| i.arn.as_str()).chain(databases.iter().map(|d| d.arn.as_str())).collect();
    let backed_up = if ours.is_empty() { vec![] } else { backed_up(aws, &ours).await? };
    Ok(Setup {
        usage,
        databases,
        backed_up,
        region: aws.region.clone(),
        vpc,
        subnets: subnet_list,
        nat_gateways,
        instances,
        load_balancers,
        alarms,
        internet_gateway,
        region_azs,
    })
}

/// The ARN partition of a region.
fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// RDS DB instances whose subnet group is in the VPC.
async fn databases(aws: &Aws, vpc: &str) -> Result<Vec<Database>> {
    let rds = aws_sdk_rds::Client::new(&aws.conf);
    let mut out = Vec::new();
    let mut pages = rds.describe_db_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws.error(RDS, "DescribeDBInstances", &e))?;
        for d in page.db_instances() {
            if d.db_subnet_group().and_then(|g| g.vpc_id()) != Some(vpc) {
                continue;
            }
            out.push(Database {
                id: d.db_instance_identifier().unwrap_or_default().to_string(),
                arn: d.db_instance_arn().unwrap_or_default().to_string(),
                engine: d.engine().unwrap_or_default().to_string(),
                multi_az: d.multi_az().unwrap_or(false),
                backup_retention_days: d.backup_retention_period().unwrap_or(0).max(0) as u32,
                az: d.availability_zone().unwrap_or_default().to_string(),
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Which of `arns` AWS Backup has a recovery point of (ListProtectedResources).
async fn backed_up(aws: &Aws, arns: &[&str]) -> Result<Vec<String>> {
    let backup = aws_sdk_backup::Client::new(&aws.conf);
    let mut out = Vec::new();
    let mut pages = backup.list_protected_resources().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws.error(BACKUP, "ListProtectedResources", &e))?;
        for r in page.results() {
            if let Some(arn) = r.resource_arn().filter(|a| arns.contains(a)) {
                out.push(arn.to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The region's running and pending instances, each with its reservation's owner (the account).
async fn running_instances(
    aws: &Aws,
    ec2: &aws_sdk_ec2::Client,
) -> Result<Vec<(String, aws_sdk_ec2::types::Instance)>> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_instances()
        .filters(Filter::builder().name("instance-state-name").values("running").values("pending").build())
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws.error(EC2, "DescribeInstances", &e))?;
        for r in page.reservations() {
            let owner = r.owner_id().unwrap_or_default().to_string();
            out.extend(r.instances().iter().map(|i| (owner.clone(), i.clone())));
        }
    }
    Ok(out)
}

/// vCPUs of each of `types`, as EC2 gives them (100 types a call).
async fn vcpus_of(
    aws: &Aws,
    ec2: &aws_sdk_ec2::Client,
    types: impl Iterator<Item = &str>,
) -> Result<BTreeMap<String, u32>> {
    let types: Vec<&str> = types.collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let mut out = BTreeMap::new();
    for chunk in types.chunks(100) {
        let found = ec2
            .describe_instance_types()
            .set_instance_types(Some(chunk.iter().map(|t| aws_sdk_ec2::types::InstanceType::from(*t)).collect()))
            .send()
            .await
            .map_err(|e| aws.error(EC2, "DescribeInstanceTypes", &e))?;
        for t in found.instance_types() {
            if let (Some(name), Some(v)) = (t.instance_type(), t.v_cpu_info().and_then(|v| v.default_v_cpus())) {
                out.insert(name.as_str().to_string(), u32::try_from(v).unwrap_or(0));
            }
        }
    }
    Ok(out)
}

/// What the account uses in the region of the quotas the plan checks, from the running
/// instances already read. Every call is a Describe.
async fn usage(
    aws: &Aws,
    ec2: &aws_sdk_ec2::Client,
    running: &[(String, aws_sdk_ec2::types::Instance)],
    vcpus: &BTreeMap<String, u32>,
    lbs: &[aws_sdk_elasticloadbalancingv2::types::LoadBalancer],
) -> Result<Usage> {
    // On-Demand instances of the standard families (spot ones count against another quota).
    let standard_vcpus: u64 = running
        .iter()
        .filter(|(_, i)| i.instance_lifecycle().is_none_or(|l| l.as_str() != "spot"))
        .filter_map(|(_, i)| i.instance_type().map(|t| t.as_str()))
        .filter(|t| t.starts_with(['a', 'c', 'd', 'h', 'i', 'm', 'r', 't', 'z']))
        .map(|t| u64::from(vcpus.get(t).copied().unwrap_or(0)))
        .sum();
    let addresses = ec2.describe_addresses().send().await.map_err(|e| aws.error(EC2, "DescribeAddresses", &e))?;
    let elastic_ips = addresses.addresses().iter().filter(|a| a.allocation_id().is_some()).count() as u64;
    // NAT gateways per AZ: a zonal one's AZ is its subnet's.
    let mut nats = Vec::new();
    let mut pages = ec2.describe_nat_gateways().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws.error(EC2, "DescribeNatGateways (the region's)", &e))?;
        for g in page.nat_gateways() {
            if g.state().is_none_or(|s| s.as_str() == "available" || s.as_str() == "pending") {
                nats.extend(g.subnet_id().map(str::to_string));
            }
        }
    }
    let mut nat_gateways: BTreeMap<String, u64> = BTreeMap::new();
    if !nats.is_empty() {
        let subnets = ec2
            .describe_subnets()
            .set_subnet_ids(Some(nats.iter().cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect()))
            .send()
            .await
            .map_err(|e| aws.error(EC2, "DescribeSubnets (the NAT gateways')", &e))?;
        for n in &nats {
            if let Some(az) =
                subnets.subnets().iter().find(|s| s.subnet_id() == Some(n)).and_then(|s| s.availability_zone())
            {
                *nat_gateways.entry(az.to_string()).or_default() += 1;
            }
        }
    }
    let application_load_balancers =
        lbs.iter().filter(|lb| lb.r#type().is_some_and(|t| t.as_str() == "application")).count() as u64;
    Ok(Usage { standard_vcpus, elastic_ips, nat_gateways, application_load_balancers })
}

/// The `assess` step: read-only and ungated; the setup and its findings are its evidence, the
/// counts of findings its outputs. Findings do not fail it: they are what it reports.
pub struct Assess;

#[async_trait]
impl Executor for Assess {
    async fn preview(&self, ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview> {
        let p: AssessParams = typed(params)?;
        let vpc = match &p.vpc {
            Some(v) => v.get()?.clone(),
            None => ctx.context.get("vpc").cloned().unwrap_or_else(|| "the region's only non-default VPC".into()),
        };
        Ok(Preview::Approve(format!(
            "read what runs in {vpc} (Describe calls only) and list what threatens the requirements"
        )))
    }

    async fn submit(&self, ctx: &Ctx, params: &Map<String, Value>, _token: &str) -> Result<Outcome> {
        let p: AssessParams = typed(params)?;
        let vpc = p.vpc.as_ref().map(|v| v.get().cloned()).transpose()?.or_else(|| ctx.context.get("vpc").cloned());
        let fleet_max = p.fleet_max.as_ref().map(|f| f.get().copied()).transpose()?.map(|f| f.ceil() as u64);
        let aws = crate::aws::config(p.region.as_deref(), &ctx.context).await?;
        let (setup, found) = assess(&aws, vpc.as_deref(), fleet_max).await?;
        let high = found.iter().filter(|f| f.severity == Severity::High).count();
        let outputs = obj(json!({"findings_high": high, "findings_medium": found.len() - high}));
        let mut evidence = outputs.clone();
        evidence.insert("setup".into(), serde_json::to_value(&setup).unwrap_or(Value::Null));
        evidence.insert("findings".into(), serde_json::to_value(&found).unwrap_or(Value::Null));
        Ok(Outcome::Done { outputs, evidence })
    }

    async fn reconcile(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Option<Outcome>> {
        // Read-only: reading again is the reconciliation.
        self.submit(ctx, params, token).await.map(Some)
    }
}
