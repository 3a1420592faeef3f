//! What is running, and what in it threatens the launch requirements: the findings of
//! `flow assess`, from a [`Setup`] discovered read-only (`executor::assess`). Pure: every rule
//! is a function of the setup and of what the plan needs, so each one is tested on constructed
//! setups (a regional NAT gateway, which no emulator serves, among them).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One VPC and what runs in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    pub region: String,
    pub vpc: Vpc,
    pub subnets: Vec<Subnet>,
    pub nat_gateways: Vec<NatGateway>,
    pub instances: Vec<Instance>,
    pub load_balancers: Vec<LoadBalancer>,
    /// CloudWatch alarms whose dimensions name one of the instances or load balancers.
    pub alarms: Vec<String>,
    /// The internet gateway attached to the VPC.
    #[serde(default)]
    pub internet_gateway: Option<String>,
    /// The region's AZs (available ones), in order.
    #[serde(default)]
    pub region_azs: Vec<String>,
    /// What the account already uses in the region, of the quotas the plan checks.
    #[serde(default)]
    pub usage: Usage,
    /// RDS DB instances in the VPC's subnets.
    #[serde(default)]
    pub databases: Vec<Database>,
    /// ARNs of the VPC's instances and databases that AWS Backup has a recovery point of.
    #[serde(default)]
    pub backed_up: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Database {
    pub id: String,
    pub arn: String,
    pub engine: String,
    pub multi_az: bool,
    /// Days of automated backups kept (0: none).
    pub backup_retention_days: u32,
    pub az: String,
}

/// What the account uses in the region, counted as the quotas count it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// vCPUs of running and pending On-Demand instances of the standard families (A, C, D, H, I,
    /// M, R, T, Z): what quota L-1216C47A counts.
    pub standard_vcpus: u64,
    /// Elastic IP addresses allocated.
    pub elastic_ips: u64,
    /// NAT gateways (available or pending) per AZ.
    pub nat_gateways: BTreeMap<String, u64>,
    /// Application Load Balancers.
    pub application_load_balancers: u64,
}

impl Setup {
    /// The AZs its subnets are in, sorted, each once.
    pub fn azs(&self) -> Vec<&str> {
        let azs: BTreeSet<&str> = self.subnets.iter().map(|n| n.az.as_str()).collect();
        azs.into_iter().collect()
    }

    /// One line: `vpc-1 (10.0.0.0/26) in eu-west-1: 3 subnets in 2 AZs, 1 NAT gateway, ...`.
    pub fn summary(&self) -> String {
        let count = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{} ({}) in {}: {} in {}, {}, {}, {}, {}",
            self.vpc.id,
            self.vpc.cidrs.join(", "),
            self.region,
            count(self.subnets.len(), "subnet", "subnets"),
            count(self.azs().len(), "AZ", "AZs"),
            count(self.nat_gateways.len(), "NAT gateway", "NAT gateways"),
            count(self.instances.len(), "instance", "instances"),
            count(self.load_balancers.len(), "load balancer", "load balancers"),
            count(self.alarms.len(), "alarm", "alarms")
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vpc {
    pub id: String,
    pub cidrs: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    pub az: String,
    pub cidr: String,
    /// Free addresses, as EC2 counts them (AWS keeps 5 of every subnet).
    pub free: u64,
    /// Its default route goes to an internet gateway.
    pub public: bool,
    /// The NAT gateway its default route goes to, if any.
    pub nat: Option<String>,
    /// Its ARN (a fault injection experiment names kept subnets by it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arn: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NatGateway {
    pub id: String,
    /// Its AZ (a zonal gateway's, from its subnet); none for a regional one.
    pub az: Option<String>,
    /// The subnet it stands in (a zonal gateway's).
    #[serde(default)]
    pub subnet: Option<String>,
    pub regional: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub instance_type: String,
    pub az: String,
    pub subnet: String,
    pub auto_scaling_group: Option<String>,
    /// The AMI it runs.
    #[serde(default)]
    pub image: String,
    /// vCPUs of its type, when EC2 says.
    #[serde(default)]
    pub vcpus: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arn: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub name: String,
    pub azs: Vec<String>,
    pub healthy: u64,
    pub unhealthy: u64,
}

/// What the plan will need of the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Needs {
    /// Subnets the target network has (public and private in each AZ).
    pub subnets: u32,
    /// Their prefix length (`/24`).
    pub prefix: u8,
    /// The fleet at its largest (instances), when the capacity model has run.
    pub fleet_max: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
}

/// Something running that threatens a requirement, with the figure that shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// A short name for the rule: `single-instance`, `nat-single-az` ...
    pub rule: String,
    pub resource: String,
    pub what: String,
    /// What the API said.
    pub evidence: String,
    /// The requirement kinds it threatens.
    pub threatens: Vec<String>,
}

fn finding(
    severity: Severity,
    rule: &str,
    resource: &str,
    what: String,
    evidence: String,
    threatens: &[&str],
) -> Finding {
    Finding {
        severity,
        rule: rule.into(),
        resource: resource.into(),
        what,
        evidence,
        threatens: threatens.iter().map(|s| s.to_string()).collect(),
    }
}

/// Addresses in an IPv4 CIDR block (`10.0.0.0/26`: 64); `None` when it is not one.
pub fn addresses(cidr: &str) -> Option<u64> {
    let (ip, len) = cidr.split_once('/')?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    ip.parse::<std::net::Ipv4Addr>().ok()?;
    Some(1u64 << (32 - len))
}

const AZ_LOSS: &[&str] = &["az_failure_tolerance", "failover_downtime"];

/// Every finding, most severe first.
pub fn findings(s: &Setup, needs: &Needs) -> Vec<Finding> {
    let mut out = Vec::new();
    let vpc = &s.vpc.id;

    // Instances: one alone, or any outside an Auto Scaling group.
    let loose: Vec<&Instance> = s.instances.iter().filter(|i| i.auto_scaling_group.is_none()).collect();
    if s.instances.len() == 1 && loose.len() == 1 {
        let i = loose[0];
        out.push(finding(
            Severity::High,
            "single-instance",
            &i.id,
            "one EC2 instance serves the app: losing it, or its AZ, stops the service, and it alone carries the load"
                .into(),
            format!(
                "{} ({}) in {}, in no Auto Scaling group; no other instance runs in {vpc}",
                i.id, i.instance_type, i.az
            ),
            &["az_failure_tolerance", "failover_downtime", "throughput"],
        ));
    } else if !loose.is_empty() {
        out.push(finding(
            Severity::Medium,
            "no-auto-scaling",
            &loose.iter().map(|i| i.id.as_str()).collect::<Vec<_>>().join(", "),
            format!(
                "{} of {} instances are in no Auto Scaling group: nothing replaces one that fails",
                loose.len(),
                s.instances.len()
            ),
            loose.iter().map(|i| format!("{} in {}", i.id, i.az)).collect::<Vec<_>>().join(", "),
            &["failover_downtime"],
        ));
    }
    let instance_azs: BTreeSet<&str> = s.instances.iter().map(|i| i.az.as_str()).collect();
    let subnet_azs = s.azs();
    if subnet_azs.len() == 1 {
        let az = subnet_azs[0];
        out.push(finding(
            Severity::High,
            "one-az",
            vpc,
            format!("every subnet of {vpc} is in {az}: nothing can run in another AZ"),
            format!("{} subnets, all in {az}", s.subnets.len()),
            AZ_LOSS,
        ));
    } else if instance_azs.len() == 1 && s.instances.len() > 1 {
        let az = instance_azs.iter().next().copied().unwrap_or_default();
        out.push(finding(
            Severity::High,
            "instances-one-az",
            vpc,
            format!("every instance runs in {az}: losing it stops the service"),
            format!("{} instances, all in {az}; subnets in {}", s.instances.len(), subnet_azs.len()),
            AZ_LOSS,
        ));
    }

    // NAT gateways: a zonal one serving subnets of other AZs is a single point of failure.
    let mut served: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for n in &s.subnets {
        if let Some(nat) = &n.nat {
            served.entry(nat.as_str()).or_default().insert(n.az.as_str());
        }
    }
    for (nat, azs) in &served {
        let Some(g) = s.nat_gateways.iter().find(|g| g.id == *nat) else { continue };
        if g.regional {
            continue;
        }
        let home = g.az.as_deref().unwrap_or("its AZ");
        let others: Vec<&str> = azs.iter().copied().filter(|a| *a != home).collect();
        if !others.is_empty() {
            out.push(finding(
                Severity::High,
                "nat-single-az",
                nat,
                format!(
                    "NAT gateway {nat} in {home} serves private subnets in {}: losing {home} cuts their outbound traffic",
                    others.join(", ")
                ),
                format!("default routes of subnets in {} go to {nat} (zonal, in {home})", azs.iter().copied().collect::<Vec<_>>().join(", ")),
                AZ_LOSS,
            ));
        }
    }

    // Addresses: the VPC against the planned subnets, and the subnets left after an AZ loss
    // against the fleet.
    let total: u64 = s.vpc.cidrs.iter().filter_map(|c| addresses(c)).sum();
    let planned = u64::from(needs.subnets) * (1u64 << (32 - u32::from(needs.prefix.min(32))));
    if total > 0 && total < planned {
        out.push(finding(
            Severity::High,
            "vpc-too-small",
            vpc,
            format!(
                "{vpc} holds {total} addresses: too few for {} /{} subnets (public and private in each AZ, {planned} addresses); add a CIDR block or build a new VPC",
                needs.subnets, needs.prefix
            ),
            format!("CIDR {}", s.vpc.cidrs.join(", ")),
            &["throughput", "az_failure_tolerance"],
        ));
    }
    if let Some(fleet) = needs.fleet_max {
        let mut per_az: BTreeMap<&str, u64> = BTreeMap::new();
        for n in s.subnets.iter().filter(|n| !n.public) {
            *per_az.entry(n.az.as_str()).or_default() += n.free;
        }
        // The AZ with the most free addresses is the worst to lose (the first of equals).
        let (lost, most) =
            per_az.iter().max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0))).map(|(a, f)| (*a, *f)).unwrap_or(("", 0));
        let left: u64 = per_az.values().sum::<u64>() - most;
        if left < fleet {
            out.push(finding(
                Severity::High,
                "ip-headroom",
                vpc,
                format!("after losing {lost}, the private subnets left have {left} free addresses; the fleet needs up to {fleet}"),
                per_az.iter().map(|(a, f)| format!("{a}: {f} free")).collect::<Vec<_>>().join(", "),
                &["throughput", "az_failure_tolerance"],
            ));
        }
    }

    // Load balancers.
    if s.load_balancers.is_empty() {
        out.push(finding(
            Severity::High,
            "no-load-balancer",
            vpc,
            "no load balancer in front of the app: traffic goes to instances directly, and nothing routes around one that fails".into(),
            format!("DescribeLoadBalancers: none in {vpc}"),
            &["az_failure_tolerance", "failover_downtime", "throughput"],
        ));
    }
    for lb in &s.load_balancers {
        if lb.azs.len() < 2 {
            out.push(finding(
                Severity::High,
                "load-balancer-one-az",
                &lb.name,
                format!("load balancer {} is in {} AZ: losing it stops the traffic", lb.name, lb.azs.len()),
                format!("AZs: {}", lb.azs.join(", ")),
                AZ_LOSS,
            ));
        }
        if lb.unhealthy > 0 {
            out.push(finding(
                Severity::Medium,
                "unhealthy-targets",
                &lb.name,
                format!("{} of {} targets of {} are unhealthy", lb.unhealthy, lb.unhealthy + lb.healthy, lb.name),
                format!("DescribeTargetHealth: {} healthy, {} not", lb.healthy, lb.unhealthy),
                &["success_rate"],
            ));
        }
    }
    // Data: a database in one AZ; data that neither AWS Backup nor RDS keeps a copy of.
    for d in &s.databases {
        if !d.multi_az {
            out.push(finding(
                Severity::High,
                "single-az-database",
                &d.id,
                format!("database {} runs in {} only: losing that AZ stops it until it is restored", d.id, d.az),
                format!("DescribeDBInstances: {} {}, MultiAZ false", d.id, d.engine),
                AZ_LOSS,
            ));
        }
        if d.backup_retention_days == 0 && !s.backed_up.contains(&d.arn) {
            out.push(finding(
                Severity::High,
                "no-backups",
                &d.id,
                format!(
                    "database {} has no automated backups and no AWS Backup recovery point: nothing to restore it from",
                    d.id
                ),
                format!("DescribeDBInstances: BackupRetentionPeriod 0; ListProtectedResources: not {}", d.arn),
                &["rto", "rpo"],
            ));
        }
    }
    if s.databases.is_empty() {
        // No database: the data is on the instances.
        let bare: Vec<&Instance> =
            s.instances.iter().filter(|i| i.auto_scaling_group.is_none() && !s.backed_up.contains(&i.arn)).collect();
        if !bare.is_empty() {
            out.push(finding(
                Severity::High,
                "no-backups",
                &bare.iter().map(|i| i.id.as_str()).collect::<Vec<_>>().join(", "),
                "no database in the VPC, and AWS Backup has no recovery point of the instance that holds the data: nothing to restore it from".into(),
                format!("ListProtectedResources: none of {}", bare.iter().map(|i| i.id.as_str()).collect::<Vec<_>>().join(", ")),
                &["rto", "rpo"],
            ));
        }
    }
    if s.alarms.is_empty() && !(s.instances.is_empty() && s.load_balancers.is_empty()) {
        out.push(finding(
            Severity::Medium,
            "no-alarms",
            vpc,
            "no CloudWatch alarm watches the app's instances or load balancers: nobody is told when it fails".into(),
            "DescribeAlarms: none with one of them as a dimension".into(),
            &["notification"],
        ));
    }
    out.sort_by_key(|f| f.severity);
    out
}

/// The launch scenario's starting point, for unit tests: a /26 VPC in eu-west-1 with a public
/// and a private subnet in eu-west-1a and a private one in eu-west-1b, one zonal NAT gateway
/// (`nat-1`, in eu-west-1a) for both private subnets, an internet gateway, one t3.small
/// (`i-1`, AMI `ami-0123`) in no Auto Scaling group, no load balancer, alarm or database.
#[cfg(test)]
pub(crate) fn scenario() -> Setup {
    let subnet = |id: &str, az: &str, cidr: &str, public: bool, nat: Option<&str>| Subnet {
        id: id.into(),
        az: az.into(),
        cidr: cidr.into(),
        free: addresses(cidr).unwrap_or(5) - 5,
        public,
        nat: nat.map(str::to_string),
        arn: format!("arn:aws:ec2:eu-west-1:123456789012:subnet/{id}"),
    };
    Setup {
        region: "eu-west-1".into(),
        vpc: Vpc { id: "vpc-1".into(), cidrs: vec!["10.0.0.0/26".into()] },
        subnets: vec![
            subnet("subnet-pa", "eu-west-1a", "10.0.0.0/28", true, None),
            subnet("subnet-a", "eu-west-1a", "10.0.0.16/28", false, Some("nat-1")),
            subnet("subnet-b", "eu-west-1b", "10.0.0.32/28", false, Some("nat-1")),
        ],
        nat_gateways: vec![NatGateway {
            id: "nat-1".into(),
            az: Some("eu-west-1a".into()),
            subnet: Some("subnet-pa".into()),
            regional: false,
        }],
        instances: vec![Instance {
            id: "i-1".into(),
            instance_type: "t3.small".into(),
            az: "eu-west-1a".into(),
            subnet: "subnet-a".into(),
            auto_scaling_group: None,
            image: "ami-0123".into(),
            vcpus: Some(2),
            arn: "arn:aws:ec2:eu-west-1:123456789012:instance/i-1".into(),
        }],
        internet_gateway: Some("igw-1".into()),
        region_azs: vec!["eu-west-1a".into(), "eu-west-1b".into(), "eu-west-1c".into()],
        usage: Usage {
            standard_vcpus: 2,
            elastic_ips: 1,
            nat_gateways: [("eu-west-1a".to_string(), 1)].into_iter().collect(),
            application_load_balancers: 0,
        },
        ..Setup::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEEDS: Needs = Needs { subnets: 6, prefix: 24, fleet_max: Some(12) };

    fn rules(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.rule.as_str()).collect()
    }

    #[test]
    fn the_scenario_has_each_single_point_of_failure() {
        let f = findings(&scenario(), &NEEDS);
        assert_eq!(
            rules(&f),
            [
                "single-instance",
                "nat-single-az",
                "vpc-too-small",
                "ip-headroom",
                "no-load-balancer",
                "no-backups",
                "no-alarms"
            ]
        );
        assert!(f[1].what.contains("nat-1 in eu-west-1a serves private subnets in eu-west-1b"), "{:?}", f[1]);
        assert!(f[2].what.contains("holds 64 addresses: too few for 6 /24 subnets"), "{:?}", f[2]);
        // 11 free in each private /28; losing one AZ leaves 11 for a fleet of 12.
        assert_eq!(
            f[3].what,
            "after losing eu-west-1a, the private subnets left have 11 free addresses; the fleet needs up to 12"
        );
    }

    #[test]
    fn a_regional_nat_gateway_is_no_single_point_of_failure() {
        let mut s = scenario();
        s.nat_gateways[0] = NatGateway { id: "nat-1".into(), az: None, subnet: None, regional: true };
        assert!(!rules(&findings(&s, &NEEDS)).contains(&"nat-single-az"));
        // Nor is a zonal one per AZ.
        let mut s = scenario();
        s.nat_gateways.push(NatGateway {
            id: "nat-2".into(),
            az: Some("eu-west-1b".into()),
            subnet: None,
            regional: false,
        });
        s.subnets[2].nat = Some("nat-2".into());
        assert!(!rules(&findings(&s, &NEEDS)).contains(&"nat-single-az"));
    }

    #[test]
    fn a_multi_az_fleet_behind_a_balancer_has_no_high_finding() {
        let mut s = scenario();
        s.vpc.cidrs = vec!["10.0.0.0/16".into()];
        s.subnets[2].nat = None;
        s.subnets.iter_mut().for_each(|n| n.free = 250);
        s.instances = ["eu-west-1a", "eu-west-1b"]
            .iter()
            .enumerate()
            .map(|(i, az)| Instance {
                id: format!("i-{i}"),
                instance_type: "c6i.large".into(),
                az: az.to_string(),
                subnet: String::new(),
                auto_scaling_group: Some("asg".into()),
                ..Instance::default()
            })
            .collect();
        s.load_balancers = vec![LoadBalancer {
            name: "app".into(),
            azs: vec!["eu-west-1a".into(), "eu-west-1b".into()],
            healthy: 2,
            unhealthy: 0,
        }];
        s.alarms = vec!["latency".into()];
        assert_eq!(findings(&s, &NEEDS), vec![]);
        // Loose instances with no recovery point hold the data: no copy of it.
        s.instances[0].auto_scaling_group = None;
        assert!(rules(&findings(&s, &NEEDS)).contains(&"no-backups"));
    }

    #[test]
    fn a_database_in_one_az_without_backups_is_two_findings_and_the_instance_holds_no_data() {
        let mut s = scenario();
        s.databases = vec![Database {
            id: "orders".into(),
            arn: "arn:aws:rds:eu-west-1:1:db:orders".into(),
            engine: "postgres".into(),
            multi_az: false,
            backup_retention_days: 0,
            az: "eu-west-1a".into(),
        }];
        let f = findings(&s, &NEEDS);
        let data: Vec<(&str, &str)> = f
            .iter()
            .filter(|f| f.rule.contains("database") || f.rule == "no-backups")
            .map(|f| (f.rule.as_str(), f.resource.as_str()))
            .collect();
        assert_eq!(data, [("single-az-database", "orders"), ("no-backups", "orders")]);
        // Automated backups, or a recovery point in AWS Backup, are a copy to restore from.
        s.databases[0].backup_retention_days = 7;
        assert!(!rules(&findings(&s, &NEEDS)).contains(&"no-backups"));
        s.databases[0].backup_retention_days = 0;
        s.backed_up = vec![s.databases[0].arn.clone()];
        assert!(!rules(&findings(&s, &NEEDS)).contains(&"no-backups"));
        s.databases[0].multi_az = true;
        assert!(!rules(&findings(&s, &NEEDS)).contains(&"single-az-database"));
    }

    #[test]
    fn cidr_sizes() {
        assert_eq!(addresses("10.0.0.0/26"), Some(64));
        assert_eq!(addresses("10.0.0.0/16"), Some(65536));
        assert_eq!(addresses("2001:db8::/56"), None);
        assert_eq!(addresses("10.0.0.0/33"), None);
    }
}
