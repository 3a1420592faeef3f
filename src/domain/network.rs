//! The network the plan builds, decided from what runs: keep the VPC when each of its AZs
//! already has a public subnet and a private one leaving through its own AZ's NAT gateway (or a
//! regional one); else add to it (subnets and a NAT gateway per AZ, in free room of its CIDR
//! blocks or in a block added to it); else, with no VPC to start from or none that reaches the
//! internet, a new one. Pure: tested on constructed setups.

use super::assess::Setup;
use super::capacity::parse_cidr;

#[derive(Debug, Clone, PartialEq)]
pub enum Network {
    /// The VPC has what the target needs; its subnets are used as they are.
    Keep {
        vpc: String,
        /// The VPC's first CIDR block.
        cidr: String,
        azs: Vec<String>,
        /// One public and one private subnet per AZ, in `azs` order.
        public: Vec<String>,
        private: Vec<String>,
        /// The largest prefix (smallest subnet) among `private`.
        private_prefix: u8,
    },
    /// Subnets and a NAT gateway per AZ are added to the VPC.
    Extend {
        vpc: String,
        internet_gateway: String,
        /// A CIDR block to associate first, when the VPC's own have no room.
        add_cidr: Option<String>,
        /// Where the new subnets are carved from (`add_cidr`, or the VPC's block with room).
        within: String,
        azs: Vec<String>,
        public_cidrs: Vec<String>,
        private_cidrs: Vec<String>,
        /// Why the VPC is not kept as it is.
        why: String,
    },
    /// A new VPC, and why.
    New { why: String },
}

fn block(cidr: &str) -> Option<(u32, u32)> {
    let (ip, len) = cidr.split_once('/')?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let ip = u32::from(ip.parse::<std::net::Ipv4Addr>().ok()?);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let start = ip & mask;
    Some((start, start | !mask))
}

fn overlaps(a: (u32, u32), b: (u32, u32)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

fn cidr(start: u32, prefix: u8) -> String {
    format!("{}/{prefix}", std::net::Ipv4Addr::from(start))
}

/// `count` free `/prefix` blocks inside `within`, avoiding `taken`, lowest first.
fn carve(within: &str, prefix: u8, count: usize, taken: &[(u32, u32)]) -> Option<Vec<String>> {
    let (start, end) = block(within)?;
    let size = 1u64 << (32 - u32::from(prefix));
    let mut out = Vec::new();
    let mut at = u64::from(start);
    while at + size - 1 <= u64::from(end) && out.len() < count {
        let b = (at as u32, (at + size - 1) as u32);
        if !taken.iter().any(|t| overlaps(*t, b)) {
            out.push(cidr(b.0, prefix));
        }
        at += size;
    }
    (out.len() == count).then_some(out)
}

/// The private range (RFC 1918) a block is in; a VPC may add blocks from its primary's range.
fn private_range(cidr: &str) -> Option<&'static str> {
    let b = block(cidr)?;
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"].into_iter().find(|r| block(r).is_some_and(|r| overlaps(r, b)))
}

/// The size of a CIDR block added for the new subnets: a /20 holds 16 /24s.
pub const ADDED_PREFIX: u8 = 20;

/// The network for `want` AZs of public and private `/prefix` subnets, from what runs.
pub fn decide(s: &Setup, want: u32, prefix: u8) -> Network {
    let vpc = s.vpc.id.clone();
    // AZs where a public subnet and a private one leaving through a NAT gateway of that AZ (or
    // a regional one) stand.
    let nat_home = |nat: &str| s.nat_gateways.iter().find(|g| g.id == nat).map(|g| (g.regional, g.az.clone()));
    let mut azs = Vec::new();
    let (mut public, mut private, mut private_prefix) = (Vec::new(), Vec::new(), 0u8);
    for az in s.azs() {
        let pubs = s.subnets.iter().find(|n| n.az == az && n.public);
        let privs = s.subnets.iter().filter(|n| n.az == az && !n.public).find(|n| {
            n.nat.as_deref().and_then(nat_home).is_some_and(|(regional, home)| regional || home.as_deref() == Some(az))
        });
        if let (Some(p), Some(q)) = (pubs, privs) {
            azs.push(az.to_string());
            public.push(p.id.clone());
            private.push(q.id.clone());
            let len = q.cidr.split_once('/').and_then(|(_, l)| l.parse().ok()).unwrap_or(32);
            private_prefix = private_prefix.max(len);
        }
    }
    let first = s.vpc.cidrs.first().cloned().unwrap_or_default();
    if azs.len() >= 2 && parse_cidr(&first).is_ok() {
        return Network::Keep { vpc, cidr: first, azs, public, private, private_prefix };
    }
    let why = if s.azs().len() < 2 {
        format!("{vpc} has subnets in {} AZ", s.azs().len())
    } else if azs.len() < 2 {
        format!(
            "{vpc} has a public subnet and a private one leaving through its own AZ's NAT gateway in {} AZ",
            azs.len()
        )
    } else {
        format!("{vpc}'s CIDR block {first} is not one a VPC can have")
    };
    let Some(igw) = s.internet_gateway.clone() else {
        return Network::New { why: format!("{why}, and no internet gateway to add public subnets behind") };
    };
    // The AZs: those the VPC already uses first, then the region's others, in order.
    let mut target: Vec<String> = s.azs().iter().map(|a| a.to_string()).collect();
    for az in &s.region_azs {
        if !target.contains(az) {
            target.push(az.clone());
        }
    }
    target.truncate(want as usize);
    if target.len() < want as usize {
        return Network::New { why: format!("{why}, and {} of the region's AZs are known, not {want}", target.len()) };
    }
    let n = 2 * target.len();
    let mut taken: Vec<(u32, u32)> = s.subnets.iter().filter_map(|n| block(&n.cidr)).collect();
    for c in &s.vpc.cidrs {
        if let Some(room) = carve(c, prefix, n, &taken) {
            let (public_cidrs, private_cidrs) = (room[..target.len()].to_vec(), room[target.len()..].to_vec());
            return Network::Extend {
                vpc,
                internet_gateway: igw,
                add_cidr: None,
                within: c.clone(),
                azs: target,
                public_cidrs,
                private_cidrs,
                why,
            };
        }
    }
    // A block from the primary's private range that overlaps none of the VPC's.
    taken.extend(s.vpc.cidrs.iter().filter_map(|c| block(c)));
    let Some(range) = private_range(&first) else {
        return Network::New {
            why: format!("{why}, and its CIDR block {first} is in no private range to add one from"),
        };
    };
    let Some(added) = carve(range, ADDED_PREFIX, 1, &taken).and_then(|v| v.into_iter().next()) else {
        return Network::New { why: format!("{why}, and {range} has no free /{ADDED_PREFIX} to add") };
    };
    let room = carve(&added, prefix, n, &[]).unwrap_or_default();
    let (public_cidrs, private_cidrs) = (room[..target.len()].to_vec(), room[target.len()..].to_vec());
    Network::Extend {
        vpc,
        internet_gateway: igw,
        within: added.clone(),
        add_cidr: Some(added),
        azs: target,
        public_cidrs,
        private_cidrs,
        why: format!("{why}; its blocks {} have no room for {n} /{prefix} subnets", s.vpc.cidrs.join(", ")),
    }
}

/// A change set's network added to `s`: per AZ, a public subnet with a NAT gateway and a
/// private subnet leaving through it (ids `new-public-N`, `new-nat-N`, `new-private-N`). The
/// private subnets' ids.
fn add_network(s: &mut Setup, azs: &[String], public: &[String], private: &[String]) -> Vec<String> {
    use super::assess::{NatGateway, Subnet};
    let fresh = |cidr: &str, id: String, az: &str, public: bool, nat: Option<String>| Subnet {
        id,
        az: az.into(),
        cidr: cidr.into(),
        free: super::assess::addresses(cidr).unwrap_or(5).saturating_sub(5),
        public,
        nat,
        arn: String::new(),
    };
    let mut ids = Vec::new();
    for (i, az) in azs.iter().enumerate() {
        let (nat, pubid, privid) =
            (format!("new-nat-{}", i + 1), format!("new-public-{}", i + 1), format!("new-private-{}", i + 1));
        if let Some(c) = public.get(i) {
            s.subnets.push(fresh(c, pubid.clone(), az, true, None));
            s.nat_gateways.push(NatGateway {
                id: nat.clone(),
                az: Some(az.clone()),
                subnet: Some(pubid),
                regional: false,
            });
        }
        if let Some(c) = private.get(i) {
            s.subnets.push(fresh(c, privid.clone(), az, false, Some(nat)));
            ids.push(privid);
        }
    }
    ids
}

/// Is `st` a change set of the shipped template `name`?
fn changeset_of(st: &crate::domain::plan::Step, name: &str) -> bool {
    st.kind == "changeset" && st.params.get("template").and_then(serde_json::Value::as_str) == Some(name)
}

/// Does the plan build a new VPC (so its target is drawn from the plan alone, with no reading
/// of what runs)?
pub fn builds_new_vpc(plan: &crate::domain::plan::Plan) -> bool {
    plan.steps.iter().any(|st| changeset_of(st, "templates/network.yaml"))
}

/// What a plan lacks for its target to be drawn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct NoTarget(pub String);

/// The setup the plan's change sets describe: what runs (when the plan starts from a running
/// VPC) with the network change set's subnets and NAT gateways added, the Auto Scaling group
/// in each private subnet the compute change set names, its load balancer across their AZs and
/// the alarms stack. Resources the plan makes have ids starting `new-`. An error names what the
/// plan lacks (no compute change set, or one whose network needs a reading of the VPC).
pub fn target(plan: &crate::domain::plan::Plan, running: Option<&Setup>) -> Result<Setup, NoTarget> {
    use super::assess::{Instance, LoadBalancer, Vpc};
    use serde_json::Value;
    let compute = plan.steps.iter().find(|st| changeset_of(st, "templates/compute.yaml")).ok_or_else(|| {
        NoTarget(format!("runbook `{}` has no compute change set (templates/compute.yaml) to draw", plan.runbook))
    })?;
    let p = |st: &crate::domain::plan::Step, k: &str| st.params.get("parameters").and_then(|v| v.get(k)).cloned();
    let list = |v: Option<Value>| -> Vec<String> {
        match v {
            Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            Some(Value::String(s)) if !s.starts_with("${") => s.split(',').map(|x| x.trim().to_string()).collect(),
            _ => vec![],
        }
    };
    let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let mut s;
    let private: Vec<String>;
    if let Some(net) = plan.steps.iter().find(|st| changeset_of(st, "templates/network.yaml")) {
        s = Setup {
            region: plan.context.get("region").cloned().unwrap_or_else(|| "the region".into()),
            vpc: Vpc { id: "new-vpc".into(), cidrs: vec![text(p(net, "VpcCidr"))] },
            ..Setup::default()
        };
        // The template takes the region's first three AZs: their names are known only there.
        let azs: Vec<String> = (1..=3).map(|i| format!("AZ {i}")).collect();
        private = add_network(&mut s, &azs, &list(p(net, "PublicSubnetCidrs")), &list(p(net, "PrivateSubnetCidrs")));
    } else {
        let r = running.ok_or_else(|| {
            NoTarget(format!(
                "runbook `{}` changes a running VPC: drawing its target needs that VPC read",
                plan.runbook
            ))
        })?;
        s = r.clone();
        if let Some(net) = plan.steps.iter().find(|st| changeset_of(st, "templates/network-extend.yaml")) {
            let added = text(p(net, "AddCidrBlock"));
            if !added.is_empty() {
                s.vpc.cidrs.push(added);
            }
            let azs = list(p(net, "AvailabilityZones"));
            private =
                add_network(&mut s, &azs, &list(p(net, "PublicSubnetCidrs")), &list(p(net, "PrivateSubnetCidrs")));
        } else {
            private = list(p(compute, "PrivateSubnetIds"));
        }
        s.subnets.sort_by(|a, b| (&a.az, !a.public, &a.id).cmp(&(&b.az, !b.public, &b.id)));
    }
    let asg = compute.params.get("stack").and_then(Value::as_str).unwrap_or("compute").to_string();
    let size = |k: &str| match p(compute, k) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(v)) if v.starts_with("${") => "sized by the capacity model".into(),
        Some(v) => v.to_string(),
        None => "?".into(),
    };
    let instance_type = text(p(compute, "InstanceType"));
    let mut azs = Vec::new();
    for id in &private {
        let Some(n) = s.subnets.iter().find(|n| &n.id == id).cloned() else { continue };
        azs.push(n.az.clone());
        s.instances.push(Instance {
            id: format!("new-asg-{}", n.az.replace(' ', "-").to_lowercase()),
            instance_type: instance_type.clone(),
            az: n.az.clone(),
            subnet: n.id.clone(),
            auto_scaling_group: Some(format!("{asg}, {} to {}", size("MinSize"), size("MaxSize"))),
            image: text(p(compute, "InstanceImageId")),
            vcpus: None,
            arn: String::new(),
        });
    }
    s.load_balancers.push(LoadBalancer { name: "new-alb".into(), azs, healthy: 0, unhealthy: 0 });
    if let Some(a) = plan.steps.iter().find(|st| changeset_of(st, "templates/alarms.yaml")) {
        s.alarms.push(a.params.get("stack").and_then(Value::as_str).unwrap_or("alarms").to_string());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::assess::{NatGateway, Subnet};

    use crate::domain::assess::scenario;

    fn subnet(id: &str, az: &str, cidr: &str, public: bool, nat: Option<&str>) -> Subnet {
        Subnet {
            id: id.into(),
            az: az.into(),
            cidr: cidr.into(),
            public,
            nat: nat.map(str::to_string),
            ..Subnet::default()
        }
    }

    fn nat(id: &str, az: &str) -> NatGateway {
        NatGateway { id: id.into(), az: Some(az.into()), subnet: None, regional: false }
    }

    #[test]
    fn a_vpc_too_small_gets_a_block_added_from_its_private_range() {
        let Network::Extend { vpc, internet_gateway, add_cidr, azs, public_cidrs, private_cidrs, why, .. } =
            decide(&scenario(), 3, 24)
        else {
            panic!("{:?}", decide(&scenario(), 3, 24))
        };
        assert_eq!((vpc.as_str(), internet_gateway.as_str()), ("vpc-1", "igw-1"));
        // 10.0.0.0/20 overlaps the VPC's /26: the next /20 is free.
        assert_eq!(add_cidr.as_deref(), Some("10.0.16.0/20"));
        assert_eq!(azs, ["eu-west-1a", "eu-west-1b", "eu-west-1c"]);
        assert_eq!(public_cidrs, ["10.0.16.0/24", "10.0.17.0/24", "10.0.18.0/24"]);
        assert_eq!(private_cidrs, ["10.0.19.0/24", "10.0.20.0/24", "10.0.21.0/24"]);
        assert!(why.contains("in 1 AZ") && why.contains("no room for 6 /24 subnets"), "{why}");
    }

    #[test]
    fn a_vpc_with_room_gets_subnets_in_it_around_the_ones_it_has() {
        let mut s = scenario();
        s.vpc.cidrs = vec!["10.0.0.0/16".into()];
        s.subnets[2].cidr = "10.0.2.0/24".into();
        let Network::Extend { add_cidr, within, public_cidrs, private_cidrs, .. } = decide(&s, 3, 24) else { panic!() };
        assert_eq!((add_cidr, within.as_str()), (None, "10.0.0.0/16"));
        // 10.0.0.0/24 holds the two /28s, 10.0.2.0/24 is taken.
        assert_eq!(public_cidrs, ["10.0.1.0/24", "10.0.3.0/24", "10.0.4.0/24"]);
        assert_eq!(private_cidrs, ["10.0.5.0/24", "10.0.6.0/24", "10.0.7.0/24"]);
    }

    #[test]
    fn a_nat_gateway_per_az_keeps_the_network() {
        let mut s = scenario();
        s.subnets.push(subnet("subnet-pb", "eu-west-1b", "10.0.0.48/28", true, None));
        s.nat_gateways.push(nat("nat-2", "eu-west-1b"));
        s.subnets[2].nat = Some("nat-2".into());
        assert_eq!(
            decide(&s, 3, 24),
            Network::Keep {
                vpc: "vpc-1".into(),
                cidr: "10.0.0.0/26".into(),
                azs: vec!["eu-west-1a".into(), "eu-west-1b".into()],
                public: vec!["subnet-pa".into(), "subnet-pb".into()],
                private: vec!["subnet-a".into(), "subnet-b".into()],
                private_prefix: 28,
            }
        );
        // So does one regional NAT gateway for both.
        s.nat_gateways = vec![NatGateway { id: "nat-r".into(), az: None, subnet: None, regional: true }];
        s.subnets[1].nat = Some("nat-r".into());
        s.subnets[2].nat = Some("nat-r".into());
        assert!(matches!(decide(&s, 3, 24), Network::Keep { .. }));
    }

    #[test]
    fn no_internet_gateway_or_no_private_range_is_a_new_vpc() {
        let mut s = scenario();
        s.internet_gateway = None;
        assert!(matches!(decide(&s, 3, 24), Network::New { why } if why.contains("no internet gateway")));
        let mut s = scenario();
        s.vpc.cidrs = vec!["100.64.0.0/26".into()];
        s.subnets.clear();
        assert!(matches!(decide(&s, 3, 24), Network::New { why } if why.contains("in no private range")));
    }

    fn launch(cidr: &str) -> crate::domain::plan::Plan {
        let spec = crate::domain::spec::parse(
            "l.md",
            "---\nvpc: vpc-1\n---\n- 2500 requests per second\n- survive the loss of one AZ\n",
        )
        .unwrap();
        let mut r = scenario();
        r.vpc.cidrs = vec![cidr.into()];
        crate::planner::builtin::plan("l", "l.md", &spec, Some(&r))
    }

    #[test]
    fn the_target_of_an_extended_vpc_adds_subnets_nat_gateways_and_the_fleet_to_what_runs() {
        let t = target(&launch("10.0.0.0/26"), Some(&scenario())).unwrap();
        assert_eq!(t.vpc.cidrs, ["10.0.0.0/26", "10.0.16.0/20"]);
        // 3 running subnets and 6 new ones; 1 running NAT gateway and 3 new ones.
        assert_eq!((t.subnets.len(), t.nat_gateways.len()), (9, 4));
        assert_eq!(t.azs(), ["eu-west-1a", "eu-west-1b", "eu-west-1c"]);
        // The running instance stays; the fleet goes into the new private subnets.
        let fleet: Vec<&str> = t.instances.iter().map(|i| i.subnet.as_str()).collect();
        assert_eq!(fleet, ["subnet-a", "new-private-1", "new-private-2", "new-private-3"]);
        assert_eq!(t.load_balancers[0].azs, ["eu-west-1a", "eu-west-1b", "eu-west-1c"]);
        assert_eq!(
            t.instances[1].auto_scaling_group.as_deref(),
            Some("l-compute, sized by the capacity model to sized by the capacity model")
        );
        assert_eq!(t.alarms, ["l-alarms"]);
        // The new private subnet in eu-west-1b leaves through eu-west-1b's new NAT gateway.
        let b = t.subnets.iter().find(|n| n.id == "new-private-2").unwrap();
        assert_eq!((b.az.as_str(), b.nat.as_deref()), ("eu-west-1b", Some("new-nat-2")));
        // Without the reading, it cannot be drawn.
        assert!(target(&launch("10.0.0.0/26"), None).unwrap_err().0.contains("needs that VPC read"));
    }

    #[test]
    fn the_target_of_a_new_vpc_needs_no_reading() {
        let spec = crate::domain::spec::parse("l.md", "- survive the loss of one AZ\n").unwrap();
        let plan = crate::planner::builtin::plan("l", "l.md", &spec, None);
        let t = target(&plan, None).unwrap();
        assert_eq!((t.vpc.id.as_str(), t.vpc.cidrs[0].as_str()), ("new-vpc", "10.0.0.0/16"));
        assert_eq!((t.subnets.len(), t.nat_gateways.len(), t.instances.len()), (6, 3, 3));
        assert_eq!(t.instances[0].auto_scaling_group.as_deref(), Some("l-compute, 3 to 6"));
    }
}
