//! The builtin plan for specs with each kind of requirement, and for what runs today.

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
