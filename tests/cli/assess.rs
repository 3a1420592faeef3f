//! `flow assess` against moto: an account seeded as the launch scenario starts (one instance in
//! a /26 VPC, one NAT gateway for two AZs) gives exactly its findings; a VPC with a NAT gateway
//! per AZ does not get the NAT finding.

use aws_sdk_ec2::types::{Filter, InstanceType};

use crate::fake_aws::FakeAws;
use crate::support::{block, moto_conf, moto_url, Project};
use flow::exit::{FAILED, OK};

fn ec2(region: &str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&moto_conf(region))
}

/// A VPC: the first subnet public, the others private; NAT gateways in `nats` (an AZ, and a
/// public subnet of its own, or none for the first subnet), each private subnet routing through
/// its own AZ's, else the first one; `instances` running in the first private subnet. Its id
/// and the instances'.
fn seed(
    region: &str,
    cidr: &str,
    subnets: &[(&str, &str)],
    nats: &[(&str, Option<&str>)],
    instances: i32,
) -> (String, Vec<String>) {
    block(async {
        let c = ec2(region);
        let vpc = c.create_vpc().cidr_block(cidr).send().await.unwrap().vpc.unwrap().vpc_id.unwrap();
        let mut ids = Vec::new();
        for (az, block) in subnets {
            let s = c.create_subnet().vpc_id(&vpc).cidr_block(*block).availability_zone(*az).send().await.unwrap();
            ids.push((az.to_string(), s.subnet.unwrap().subnet_id.unwrap()));
        }
        let public = ids[0].1.clone();
        let igw =
            c.create_internet_gateway().send().await.unwrap().internet_gateway.unwrap().internet_gateway_id.unwrap();
        c.attach_internet_gateway().internet_gateway_id(&igw).vpc_id(&vpc).send().await.unwrap();
        let rt = c.create_route_table().vpc_id(&vpc).send().await.unwrap().route_table.unwrap().route_table_id.unwrap();
        c.create_route().route_table_id(&rt).destination_cidr_block("0.0.0.0/0").gateway_id(&igw).send().await.unwrap();
        c.associate_route_table().route_table_id(&rt).subnet_id(&public).send().await.unwrap();
        let mut nats_made: Vec<(String, String)> = Vec::new();
        for (az, own) in nats {
            let home = match own {
                None => public.clone(),
                Some(block) => {
                    let s =
                        c.create_subnet().vpc_id(&vpc).cidr_block(*block).availability_zone(*az).send().await.unwrap();
                    let s = s.subnet.unwrap().subnet_id.unwrap();
                    c.associate_route_table().route_table_id(&rt).subnet_id(&s).send().await.unwrap();
                    s
                }
            };
            let eip = c.allocate_address().send().await.unwrap().allocation_id.unwrap();
            let nat = c.create_nat_gateway().subnet_id(&home).allocation_id(eip).send().await.unwrap();
            nats_made.push((az.to_string(), nat.nat_gateway.unwrap().nat_gateway_id.unwrap()));
        }
        for (az, subnet) in &ids[1..] {
            let nat = nats_made.iter().find(|n| &n.0 == az).or(nats_made.first()).unwrap().1.clone();
            let prt =
                c.create_route_table().vpc_id(&vpc).send().await.unwrap().route_table.unwrap().route_table_id.unwrap();
            c.create_route()
                .route_table_id(&prt)
                .destination_cidr_block("0.0.0.0/0")
                .nat_gateway_id(nat)
                .send()
                .await
                .unwrap();
            c.associate_route_table().route_table_id(&prt).subnet_id(subnet).send().await.unwrap();
        }
        if instances > 0 {
            let image = c
                .describe_images()
                .filters(Filter::builder().name("architecture").values("x86_64").build())
                .send()
                .await
                .unwrap()
                .images()[0]
                .image_id()
                .unwrap()
                .to_string();
            let run = c
                .run_instances()
                .image_id(image)
                .instance_type(InstanceType::T3Small)
                .min_count(instances)
                .max_count(instances)
                .subnet_id(&ids[1].1)
                .send()
                .await
                .unwrap();
            let ids = run.instances().iter().map(|i| i.instance_id().unwrap().to_string()).collect();
            return (vpc, ids);
        }
        (vpc, vec![])
    })
}

/// CloudWatch (moto speaks no rpc-v2-cbor to it) and AWS Backup (moto lists no protected
/// resources) for flow: the fake, with `alarms` as (name, watched instance).
fn fakes(p: &Project, alarms: &[(&str, &str)]) -> FakeAws {
    let aws = FakeAws::start();
    aws.with(|s| {
        let mut cw = s.cloudwatch.lock().unwrap();
        for (name, instance) in alarms {
            cw.add(name, &[]);
            cw.alarms.get_mut(*name).unwrap().dimensions = vec![("InstanceId".into(), instance.to_string())];
        }
    });
    p.env("AWS_ENDPOINT_URL_CLOUDWATCH", &aws.url);
    p.env("AWS_ENDPOINT_URL_BACKUP", &aws.url);
    aws
}

/// The scenario's starting point: a /26 VPC, a public and a private subnet in one AZ and a
/// private one in another, one NAT gateway for both, one instance. Its VPC id.
fn seed_scenario() -> String {
    seed(
        "eu-west-1",
        "10.0.0.0/26",
        &[("eu-west-1a", "10.0.0.0/28"), ("eu-west-1a", "10.0.0.16/28"), ("eu-west-1b", "10.0.0.32/28")],
        &[("eu-west-1a", None)],
        1,
    )
    .0
}

fn rules(j: &serde_json::Value) -> Vec<String> {
    j["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_scenarios_starting_point_gives_its_findings() {
    let vpc = seed_scenario();
    let p = Project::new();
    p.with_launch_spec();
    p.aws(&moto_url());
    let _cw = fakes(&p, &[]);
    let r = p.flow(&["assess", "specs/launch.md", "--vpc", &vpc, "--fleet-max", "12", "--json"]);
    r.expect(FAILED);
    let j = r.json();
    assert_eq!(
        rules(&j),
        [
            "single-instance",
            "nat-single-az",
            "vpc-too-small",
            "ip-headroom",
            "no-load-balancer",
            "no-backups",
            "no-alarms"
        ],
        "{j}"
    );
    assert_eq!(j["setup"]["vpc"]["cidrs"], serde_json::json!(["10.0.0.0/26"]));
    // AWS keeps 5 addresses of every subnet: a /28 has 11 free.
    assert!(j["setup"]["subnets"].as_array().unwrap().iter().all(|s| s["free"].as_u64().unwrap() <= 11), "{j}");
    let nat = &j["findings"][1];
    assert!(nat["what"].as_str().unwrap().contains("in eu-west-1a serves private subnets in eu-west-1b"), "{nat}");
    // The findings name the launch spec's requirements they threaten.
    assert_eq!(j["findings"][0]["requirements"], serde_json::json!(["1.1", "2.1", "2.2"]));
    assert_eq!(j["findings"][5]["requirements"], serde_json::json!(["3.1", "3.2"]));
    assert_eq!(j["findings"][6]["requirements"], serde_json::json!(["3.3"]));

    // The same reading for an assistant, through `flow mcp`'s assess tool.
    let (error, said) = crate::mcp::call_tool(&p, "assess", serde_json::json!({"spec": "specs/launch.md", "vpc": vpc}));
    assert!(!error, "{said}");
    assert!(said.starts_with(&format!("{vpc} (10.0.0.0/26) in eu-west-1: 3 subnets in 2 AZs")), "{said}");
    assert!(said.contains("; 6 findings (5 high)") && said.contains("\"rule\": \"nat-single-az\""), "{said}");

    let text = p.flow(&["assess", "specs/launch.md", "--vpc", &vpc]);
    text.expect(FAILED);
    assert!(text.stdout.starts_with(&format!("{vpc} (10.0.0.0/26) in eu-west-1: 3 subnets in 2 AZs, 1 NAT gateway, 1 instance, 0 load balancers, 0 alarms\n")), "{}", text.stdout);
    assert!(text.stdout.contains("findings (5 high, 1 medium):"), "{}", text.stdout);
    assert!(text.stdout.contains("  HIGH   single-instance      one EC2 instance serves the app"), "{}", text.stdout);

    // The same setup drawn for draw.io: well-formed XML (Python's parser), one shape per
    // resource, an arrow per default route to the NAT gateway.
    let g = p.flow(&["graph", "--architecture", "current", "--vpc", &vpc, "--format", "drawio"]);
    g.expect(OK);
    p.write("current.drawio", &g.stdout);
    let python = std::env::var("FLOW_TEST_PYTHON").expect("FLOW_TEST_PYTHON: run the tests with scripts/test");
    let counted = std::process::Command::new(python)
        .args(["-c", "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); c = r.iter('mxCell'); c = list(c); print(sum(x.get('vertex') == '1' for x in c), sum(x.get('edge') == '1' for x in c), r.tag)"])
        .arg(p.path("current.drawio"))
        .output()
        .unwrap();
    // AWS cloud, VPC, 2 AZs, 3 subnets, the NAT gateway, the instance; 2 private subnets' routes.
    assert_eq!(
        String::from_utf8_lossy(&counted.stdout).trim(),
        "9 2 mxfile",
        "{}",
        String::from_utf8_lossy(&counted.stderr)
    );
    let m = p.flow(&["graph", "--architecture", "current", "--vpc", &vpc]);
    m.expect(OK);
    assert!(m.stdout.starts_with("flowchart TB\n") && m.stdout.contains("via nat-"), "{}", m.stdout);
    let bad = p.flow(&["graph", "--format", "drawio"]);
    assert_eq!(bad.code, flow::exit::USAGE, "{}", bad.stderr);
    assert!(bad.stderr.contains("add --architecture current (what runs) or target"), "{}", bad.stderr);
}

#[test]
fn a_nat_gateway_per_az_is_no_finding_and_the_only_vpc_is_found() {
    // A region no other test uses: its only non-default VPC is the app's.
    let region = "ap-southeast-2";
    let (_, instances) = seed(
        region,
        "10.1.0.0/16",
        &[("ap-southeast-2a", "10.1.0.0/24"), ("ap-southeast-2a", "10.1.1.0/24"), ("ap-southeast-2b", "10.1.2.0/24")],
        &[("ap-southeast-2a", None), ("ap-southeast-2b", Some("10.1.3.0/24"))],
        2,
    );
    let p = Project::new();
    p.aws(&moto_url());
    // An alarm watches one of the instances: the app is watched.
    let _cw = fakes(&p, &[("cpu-high", &instances[0])]);
    let r = p.flow(&["assess", "--region", region, "--json"]);
    r.expect(FAILED);
    let found = rules(&r.json());
    assert!(!found.contains(&"nat-single-az".to_string()), "{found:?}");
    assert!(!found.contains(&"vpc-too-small".to_string()), "{found:?}");
    assert!(found.contains(&"no-auto-scaling".to_string()), "two loose instances: {found:?}");
    assert!(!found.contains(&"no-alarms".to_string()), "{found:?}");
    assert_eq!(r.json()["setup"]["alarms"], serde_json::json!(["cpu-high"]));

    // Two VPCs: flow asks which, naming them.
    seed(region, "10.2.0.0/16", &[("ap-southeast-2a", "10.2.0.0/24")], &[], 0);
    let r = p.flow(&["assess", "--region", region]);
    assert_eq!(r.code, FAILED, "{}", r.stderr);
    assert!(
        r.stderr.contains("2 VPCs in ap-southeast-2 (vpc-") && r.stderr.contains("name the app's with --vpc"),
        "{}",
        r.stderr
    );
    let r = p.flow(&["assess", "--region", region, "--vpc", "vpc-0000000000"]);
    assert!(r.stderr.contains("assess: DescribeVpcs vpc-0000000000: InvalidVpcID.NotFound"), "{}", r.stderr);
    assert_ne!(r.code, OK);
}

/// The `assess` step in a runbook: ungated, read-only, its findings the evidence and a table in
/// the report.
#[test]
fn an_assess_step_reports_its_findings() {
    let vpc = seed_scenario();
    let p = Project::new();
    p.aws(&moto_url());
    let _cw = fakes(&p, &[]);
    p.write("specs/az.md", format!("---\nregion: eu-west-1\nvpc: {vpc}\n---\n# Resilience\n\n- THE SYSTEM SHALL survive the loss of one Availability Zone.\n"));
    p.flow(&["plan", "specs/az.md"]).expect(OK);
    let planned = p.status();
    assert_eq!(crate::support::step_field(&planned, "assess", "state"), "ready", "{planned}");
    p.edit_steps(
        "az",
        r#"
        [[steps]]
        id = "assess"
        kind = "assess"
        params = { vpc = "VPC" }
        [[steps]]
        id = "az"
        kind = "failover_drill"
        gate = true
        needs = ["assess"]
        covers = ["resilience-1"]
        params = { endpoint = "http://127.0.0.1:9/", inject = "true", duration_s = 1 }
        "#
        .replace("VPC", &vpc)
        .as_str(),
    );
    // The read runs without a gate; the drill after it waits for one.
    p.flow(&["run"]).expect(flow::exit::WAITING_APPROVAL);
    let st = p.status();
    assert_eq!(crate::support::step_field(&st, "assess", "state"), "succeeded", "{st}");
    let md = p.flow(&["report", "--format", "md", "-o", "-"]).stdout;
    assert!(md.contains("| severity | finding | resource | evidence | threatens |"), "{md}");
    assert!(md.contains("| **high** | one EC2 instance serves the app"), "{md}");
    assert_eq!(md.matches("| **high** |").count(), 5, "{md}");
}

/// `flow plan` on a spec naming its VPC reads what runs there and plans from it: the scenario's
/// /26 gets a block added and a NAT gateway per AZ, the fleet starts from the running instance's
/// AMI and type; `--no-assess` plans as for an empty account.
#[test]
fn the_plan_for_the_scenario_adds_to_its_vpc_and_starts_from_its_instance() {
    let (vpc, instances) = seed(
        "eu-west-1",
        "10.0.0.0/26",
        &[("eu-west-1a", "10.0.0.0/28"), ("eu-west-1a", "10.0.0.16/28"), ("eu-west-1b", "10.0.0.32/28")],
        &[("eu-west-1a", None)],
        1,
    );
    let (ami, igw) = block(async {
        let c = ec2("eu-west-1");
        let i = c.describe_instances().instance_ids(&instances[0]).send().await.unwrap();
        let ami = i.reservations()[0].instances()[0].image_id().unwrap().to_string();
        let g = c
            .describe_internet_gateways()
            .filters(Filter::builder().name("attachment.vpc-id").values(&vpc).build())
            .send()
            .await
            .unwrap();
        (ami, g.internet_gateways()[0].internet_gateway_id().unwrap().to_string())
    });
    let p = Project::new();
    p.aws(&moto_url());
    let _cw = fakes(&p, &[]);
    let spec = format!(
        "---\nregion: eu-west-1\nvpc: {vpc}\n---\n# Launch\n\n- 2,500 requests per second\n- survive the loss of one Availability Zone\n"
    );
    p.write("specs/launch.md", spec);
    let r = p.flow(&["plan", "specs/launch.md", "--json"]);
    r.expect(OK);
    let j = r.json();
    let step = |id: &str| j["steps"].as_array().unwrap().iter().find(|s| s["id"] == id).cloned().unwrap_or_default();
    let net = step("changeset-network");
    assert_eq!(net["params"]["template"], "templates/network-extend.yaml", "{net}");
    let np = &net["params"]["parameters"];
    assert_eq!((np["VpcId"].as_str(), np["InternetGatewayId"].as_str()), (Some(vpc.as_str()), Some(igw.as_str())));
    assert_eq!(np["AddCidrBlock"], "10.0.16.0/20");
    assert_eq!(np["AvailabilityZones"], serde_json::json!(["eu-west-1a", "eu-west-1b", "eu-west-1c"]));
    let cp = &step("changeset-compute")["params"]["parameters"];
    assert_eq!((cp["VpcId"].as_str(), cp["InstanceImageId"].as_str()), (Some(vpc.as_str()), Some(ami.as_str())));
    assert_eq!(cp["InstanceType"], "t3.small");
    assert_eq!(step("capacity-model")["params"]["vcpus_per_instance"], 2);
    // What runs counts against the quotas: at least this t3.small's 2 vCPUs and the NAT
    // gateway's Elastic IP (other tests share the region).
    assert!(step("quota-ec2-vcpus")["params"]["in_use"].as_u64().unwrap() >= 2, "{}", step("quota-ec2-vcpus"));
    assert!(step("quota-eips")["params"]["in_use"].as_u64().unwrap() >= 1);
    assert!(step("quota-nat-gateways")["params"]["in_use"].as_u64().unwrap() >= 1);
    assert!(step("reassess")["needs"].as_array().is_some_and(|n| n.contains(&"changeset-alarms".into())));
    assert!(
        j["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().starts_with(&format!(
            "note: planned from what runs in {vpc} (10.0.0.0/26) in eu-west-1: 3 subnets in 2 AZs"
        ))),
        "{}",
        j["notes"]
    );
    // The template it names is written beside the workflow, for review.
    assert!(p.read("workflows/templates/network-extend.yaml").contains("AWS::EC2::VPCCidrBlock"));

    // The target as the plan makes it: what runs, with 6 subnets, 3 NAT gateways, the fleet in
    // each new private subnet and the balancer added (draw.io XML, counted by Python's parser).
    let g = p.flow(&["graph", "--architecture", "target", "--format", "drawio"]);
    g.expect(OK);
    p.write("target.drawio", &g.stdout);
    let python = std::env::var("FLOW_TEST_PYTHON").expect("FLOW_TEST_PYTHON: run the tests with scripts/test");
    let counted = std::process::Command::new(python)
        .args(["-c", "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); c = list(r.iter('mxCell')); print(sum(x.get('vertex') == '1' for x in c), sum(x.get('edge') == '1' for x in c), r.find('diagram').get('name'))"])
        .arg(p.path("target.drawio"))
        .output()
        .unwrap();
    // Cloud, VPC, 3 AZs, 9 subnets, 4 NAT gateways, 1 + 3 instances, 1 balancer; 5 routes, 3
    // balancer arrows.
    assert_eq!(
        String::from_utf8_lossy(&counted.stdout).trim(),
        format!("23 8 {vpc} as the plan makes it"),
        "{}",
        String::from_utf8_lossy(&counted.stderr)
    );
    let m = p.flow(&["graph", "--architecture", "target"]);
    assert!(m.stdout.contains("new_private_2 -- \"0.0.0.0/0 via new-nat-2\" --> new_public_2"), "{}", m.stdout);

    // Without the read: the network for an empty account.
    let r = p.flow(&["plan", "specs/launch.md", "--no-assess", "--force", "--json"]);
    r.expect(OK);
    let j = r.json();
    let net = j["steps"].as_array().unwrap().iter().find(|s| s["id"] == "changeset-network").unwrap();
    assert_eq!(net["params"]["template"], "templates/network.yaml");
    // The report draws the target: a new VPC needs no reading.
    let html = p.flow(&["report", "-o", "-"]).stdout;
    assert!(html.contains("<h2>Target architecture</h2>"), "{html}");
    assert!(html.contains("<title>new-vpc as the plan makes it</title>"));

    // A VPC that is not there: refused with the call, nothing planned.
    p.write("specs/gone.md", "---\nregion: eu-west-1\nvpc: vpc-0000000000\n---\n- 100 requests per second\n");
    let r = p.flow(&["plan", "specs/gone.md"]);
    assert_eq!(r.code, FAILED, "{}", r.stderr);
    assert!(r.stderr.contains("DescribeVpcs vpc-0000000000") && r.stderr.contains("--no-assess"), "{}", r.stderr);
    assert!(!p.path("workflows/gone.toml").exists());
}

/// A VPC with a public subnet and a NAT gateway in each of its AZs keeps its network: no network
/// change set, the compute stack goes into its private subnets, and the AZ drill names them.
#[test]
fn the_plan_for_a_vpc_with_a_nat_gateway_per_az_keeps_its_network() {
    let region = "ca-central-1";
    let (vpc, _) = seed(
        region,
        "10.3.0.0/16",
        &[("ca-central-1a", "10.3.0.0/24"), ("ca-central-1a", "10.3.1.0/24"), ("ca-central-1b", "10.3.2.0/24")],
        &[("ca-central-1a", None), ("ca-central-1b", Some("10.3.3.0/24"))],
        1,
    );
    let private: Vec<String> = block(async {
        let out = ec2(region)
            .describe_subnets()
            .filters(Filter::builder().name("vpc-id").values(&vpc).build())
            .send()
            .await
            .unwrap();
        let mut s: Vec<(String, String)> = out
            .subnets()
            .iter()
            .filter(|n| ["10.3.1.0/24", "10.3.2.0/24"].contains(&n.cidr_block().unwrap()))
            .map(|n| (n.cidr_block().unwrap().to_string(), n.subnet_id().unwrap().to_string()))
            .collect();
        s.sort();
        s.into_iter().map(|(_, id)| id).collect()
    });
    let p = Project::new();
    p.aws(&moto_url());
    let _cw = fakes(&p, &[]);
    p.write(
        "specs/launch.md",
        format!("---\nregion: {region}\nvpc: {vpc}\n---\n- survive the loss of one Availability Zone\n"),
    );
    let r = p.flow(&["plan", "specs/launch.md", "--json"]);
    r.expect(OK);
    let j = r.json();
    let ids: Vec<&str> = j["steps"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(!ids.contains(&"changeset-network") && !ids.contains(&"quota-nat-gateways"), "{ids:?}");
    let step = |id: &str| j["steps"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap().clone();
    assert_eq!(step("changeset-compute")["params"]["parameters"]["PrivateSubnetIds"], serde_json::json!(private));
    let arns = step("changeset-resilience")["params"]["parameters"]["SubnetArns"].as_str().unwrap().to_string();
    assert!(
        arns.contains(&format!("subnet/{}", private[0])) && arns.contains(&format!("subnet/{}", private[1])),
        "{arns}"
    );
}

/// A second assess step after a change shows the findings it closed, in the report.
#[test]
fn a_reassessment_shows_the_findings_the_changes_closed() {
    let vpc = seed_scenario();
    let p = Project::new();
    p.aws(&moto_url());
    let _cw = fakes(&p, &[]);
    p.write("specs/az.md", format!("---\nregion: eu-west-1\nvpc: {vpc}\n---\n# Resilience\n\n- THE SYSTEM SHALL survive the loss of one Availability Zone.\n"));
    p.flow(&["plan", "specs/az.md", "--no-assess"]).expect(OK);
    p.edit_steps(
        "az",
        r#"
        [[steps]]
        id = "assess"
        kind = "assess"
        params = { vpc = "VPC" }
        [[steps]]
        id = "change"
        kind = "approval"
        gate = true
        needs = ["assess"]
        params = { summary = "a NAT gateway in eu-west-1b" }
        [[steps]]
        id = "reassess"
        kind = "assess"
        needs = ["change"]
        params = { vpc = "VPC" }
        [[steps]]
        id = "az"
        kind = "failover_drill"
        gate = true
        needs = ["reassess"]
        covers = ["resilience-1"]
        params = { endpoint = "http://127.0.0.1:9/", inject = "true", duration_s = 1 }
        "#
        .replace("VPC", &vpc)
        .as_str(),
    );
    p.flow(&["run"]).expect(flow::exit::WAITING_APPROVAL);
    // The change, made by hand: a NAT gateway in eu-west-1b for its private subnet.
    block(async {
        let c = ec2("eu-west-1");
        let in_vpc = Filter::builder().name("vpc-id").values(&vpc).build();
        let subnets = c.describe_subnets().filters(in_vpc.clone()).send().await.unwrap();
        let b = subnets
            .subnets()
            .iter()
            .find(|n| n.cidr_block() == Some("10.0.0.32/28"))
            .unwrap()
            .subnet_id()
            .unwrap()
            .to_string();
        let home = c
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block("10.0.0.48/28")
            .availability_zone("eu-west-1b")
            .send()
            .await
            .unwrap();
        let home = home.subnet.unwrap().subnet_id.unwrap();
        let eip = c.allocate_address().send().await.unwrap().allocation_id.unwrap();
        let nat = c.create_nat_gateway().subnet_id(&home).allocation_id(eip).send().await.unwrap();
        let nat = nat.nat_gateway.unwrap().nat_gateway_id.unwrap();
        let tables = c
            .describe_route_tables()
            .filters(Filter::builder().name("association.subnet-id").values(&b).build())
            .send()
            .await
            .unwrap();
        let rt = tables.route_tables()[0].route_table_id().unwrap().to_string();
        c.replace_route()
            .route_table_id(rt)
            .destination_cidr_block("0.0.0.0/0")
            .nat_gateway_id(nat)
            .send()
            .await
            .unwrap();
    });
    p.approve(&["change"]).expect(OK);
    p.flow(&["run"]).expect(flow::exit::WAITING_APPROVAL);
    let st = p.status();
    assert_eq!(crate::support::step_field(&st, "reassess", "state"), "succeeded", "{st}");
    let md = p.flow(&["report", "--format", "md", "-o", "-"]).stdout;
    assert!(md.contains("Closed since `assess`: 1 finding; still open: "), "{md}");
    assert!(md.contains("- closed: NAT gateway nat-"), "{md}");
    let json = p.flow(&["report", "--format", "json", "-o", "-"]).json();
    let re = json["steps"].as_array().unwrap().iter().find(|s| s["id"] == "reassess").unwrap().clone();
    assert_eq!(re["closed"]["findings"][0]["rule"], "nat-single-az", "{re}");
    // Each reading drawn in the HTML report, as a real browser shows it.
    p.flow(&["report", "-o", "az.html"]).expect(OK);
    let html = p.read("az.html");
    assert!(html.contains(&format!("<title>{vpc} as assess read it</title>")), "{html}");
    assert!(html.contains(&format!("<title>{vpc} as reassess read it</title>")));
    let seen = crate::support::browse(&p.path("az.html"), &p.path("az.png"));
    assert_eq!((&seen["errors"], &seen["requests"]), (&serde_json::json!([]), &serde_json::json!([])));
    assert_eq!(seen["dom"]["architectures"], 2, "{seen}");
    // First: the NAT gateway and the instance; after: two NAT gateways and the instance.
    assert_eq!(seen["dom"]["resources"], 5, "{seen}");
    assert!(seen["dom"]["text"].as_str().unwrap().contains("Closed since assess: 1 finding"), "{seen}");
}

/// A database in the VPC (RDS in moto): one AZ and no backups are two findings, the plan's
/// backup change set protects it and its restore drill restores it; a recovery point in AWS
/// Backup closes the backup finding.
#[test]
fn a_database_in_one_az_without_backups_is_found_and_planned_for() {
    let region = "eu-north-1";
    let (vpc, _) = seed(
        region,
        "10.0.0.0/26",
        &[("eu-north-1a", "10.0.0.0/28"), ("eu-north-1a", "10.0.0.16/28"), ("eu-north-1b", "10.0.0.32/28")],
        &[("eu-north-1a", None)],
        1,
    );
    let arn = block(async {
        let subnets = ec2(region)
            .describe_subnets()
            .filters(Filter::builder().name("vpc-id").values(&vpc).build())
            .send()
            .await
            .unwrap();
        let rds = aws_sdk_rds::Client::new(&moto_conf(region));
        rds.create_db_subnet_group()
            .db_subnet_group_name("orders")
            .db_subnet_group_description("orders")
            .set_subnet_ids(Some(subnets.subnets().iter().map(|n| n.subnet_id().unwrap().to_string()).collect()))
            .send()
            .await
            .unwrap();
        let db = rds
            .create_db_instance()
            .db_instance_identifier("orders")
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .master_username("app")
            .master_user_password("not-a-secret-1")
            .allocated_storage(20)
            .db_subnet_group_name("orders")
            .multi_az(false)
            .backup_retention_period(0)
            .send()
            .await
            .unwrap();
        db.db_instance().unwrap().db_instance_arn().unwrap().to_string()
    });
    let p = Project::new();
    p.aws(&moto_url());
    let aws = fakes(&p, &[]);
    let r = p.flow(&["assess", "--region", region, "--vpc", &vpc, "--json"]);
    r.expect(FAILED);
    let j = r.json();
    let on_db: Vec<String> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["resource"] == "orders")
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(on_db, ["single-az-database", "no-backups"], "{j}");
    assert_eq!(j["setup"]["databases"][0]["arn"], arn.as_str());

    // The plan backs it up and restores it in the drill.
    p.write(
        "specs/data.md",
        format!("---\nregion: {region}\nvpc: {vpc}\n---\n# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n"),
    );
    let r = p.flow(&["plan", "specs/data.md", "--json"]);
    r.expect(OK);
    let j = r.json();
    let step = |id: &str| j["steps"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap().clone();
    assert_eq!(step("changeset-backup")["params"]["parameters"]["ProtectedResourceArn"], arn.as_str());
    assert_eq!(step("restore-drill")["params"]["restore_metadata"]["DBInstanceIdentifier"], "data-restore-drill");

    // A recovery point in AWS Backup: the data has a copy.
    aws.with(|s| {
        s.drills.recovery_points.push(crate::fake_drills::RecoveryPoint {
            arn: "arn:aws:backup:eu-north-1:123456789012:recovery-point:rp-1".into(),
            resource: arn.clone(),
            vault: "vault".into(),
            created: std::time::SystemTime::now(),
        })
    });
    let r = p.flow(&["assess", "--region", region, "--vpc", &vpc, "--json"]);
    let found = rules(&r.json());
    let text = p.flow(&["assess", "--region", region, "--vpc", &vpc]).stdout;
    assert!(
        text.contains("  database orders postgres eu-north-1a, single-AZ, automated backups off, in AWS Backup\n"),
        "{text}"
    );
    assert!(
        found.contains(&"single-az-database".to_string()) && !found.contains(&"no-backups".to_string()),
        "{found:?}"
    );
}
