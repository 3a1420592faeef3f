//! The AWS step kinds through the real AWS SDK: against moto (started once per run by
//! scripts/test) and, for what moto lacks, against the wire-protocol fakes in `fake_aws`.

use std::time::{Duration, Instant};

use crate::fake_aws::FakeAws;
use crate::support::{later, moto_url, state, step_field, Project};
use flow::exit::{FAILED, OK, WAITING, WAITING_APPROVAL};

/// A planned RTO spec whose steps the test writes; `drill`, the gated command covering the RTO,
/// comes after the first of them.
fn project(steps: &str) -> Project {
    let first = steps.split("id = \"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default().to_string();
    let p = Project::new();
    p.write("specs/aws.md", "---\nregion: eu-west-1\nstack: shop\n---\n# Recovery\n\n- RTO 2 hours\n");
    p.flow(&["plan", "specs/aws.md"]).expect(OK);
    let drill = r#"
        [[steps]]
        id = "drill"
        kind = "command"
        gate = true
        needs = ["FIRST"]
        covers = ["recovery-1"]
        params = { run = "echo '::metric rto_s=60'" }
    "#
    .replace("FIRST", &first);
    p.edit_steps("aws", &format!("{steps}\n{drill}"));
    p
}

const EC2_VCPUS: &str = "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances";

fn quota_step(service: &str, code: &str, required: u32) -> String {
    format!(
        r#"
        [[steps]]
        id = "quota"
        kind = "quota"
        gate = true
        params = {{ service_code = "{service}", quota_code = "{code}", required = {required} }}
        "#
    )
}

#[test]
fn a_sufficient_quota_is_evidence_without_a_gate() {
    // moto serves the VPC quotas: VPCs per Region is 5.
    let p = project(&quota_step("vpc", "L-F678F1CE", 3));
    p.aws(&moto_url());
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let s = p.status();
    assert_eq!(step_field(&s, "quota", "state"), "succeeded", "{s}");
    let ev: serde_json::Value = serde_json::from_str(&step_field(&s, "quota", "evidence")).unwrap();
    assert_eq!(
        (ev["applied_value"].as_f64(), ev["required_value"].as_f64(), ev["value_source"].as_str()),
        (Some(5.0), Some(3.0), Some("applied"))
    );
    assert_eq!(step_field(&s, "drill", "state"), "waiting_approval");
}

/// What the account already uses counts against the quota: 3 more VPCs fit in 5 only when
/// fewer than 3 are in use.
#[test]
fn what_is_in_use_counts_against_the_quota() {
    let p = project(&quota_step("vpc", "L-F678F1CE", 3).replace("required = 3", "required = 3, in_use = 4"));
    p.aws(&moto_url());
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let s = p.status();
    assert_eq!(step_field(&s, "quota", "state"), "waiting_approval", "{s}");
    let will = step_field(&s, "quota", "will");
    assert!(will.contains("current: 5 (applied)\n  desired: 7 (4 in use + 3 for the plan)"), "{will}");
}

#[test]
fn a_short_quota_is_requested_once_and_polled_to_approved() {
    let aws = FakeAws::start();
    aws.set_quota("ec2", "L-1216C47A", EC2_VCPUS, None, 32.0);
    let p = project(&quota_step("ec2", "L-1216C47A", 48));
    p.aws(&aws.url);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let will = step_field(&p.status(), "quota", "will");
    for expected in [
        "request a service quota increase in eu-west-1",
        "quota:   L-1216C47A Running On-Demand",
        "current: 32 (default)",
        "desired: 48",
    ] {
        assert!(will.contains(expected), "`{expected}` in\n{will}");
    }
    assert_eq!(aws.with(|s| s.filed), 0, "nothing is filed before the approval");

    p.approve(&["quota", "--as", "ana"]).expect(OK);
    let r = p.flow(&["run"]);
    r.expect(WAITING);
    assert!(r.stdout.contains("run `flow run` again after"), "{}", r.stdout);
    let s = p.status();
    assert_eq!(step_field(&s, "quota", "state"), "waiting");
    assert!(step_field(&s, "quota", "note").contains("filed request req-1 for ec2/L-1216C47A (32 -> 48): PENDING"));
    assert_eq!(aws.with(|s| s.filed), 1);

    // Not due yet: nothing is asked, nothing filed.
    p.flow(&["run"]).expect(WAITING);
    assert_eq!(aws.with(|s| s.filed), 1);

    // Days later the request was approved.
    aws.set_request_status("APPROVED");
    p.env("FLOW_NOW", &later(2 * 86400));
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    assert_eq!(p.state_of("drill"), "waiting_approval");
    let s = p.status();
    assert_eq!(step_field(&s, "quota", "state"), "succeeded");
    let ev: serde_json::Value = serde_json::from_str(&step_field(&s, "quota", "evidence")).unwrap();
    assert_eq!(
        (ev["applied_value"].as_f64(), ev["request_id"].as_str(), ev["request_status"].as_str()),
        (Some(48.0), Some("req-1"), Some("APPROVED"))
    );
    assert_eq!(aws.with(|s| s.filed), 1, "exactly one request");
}

#[test]
fn a_denied_request_fails_the_step_in_aws_words() {
    let aws = FakeAws::start();
    aws.set_quota("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs", Some(5.0), 5.0);
    let p = project(&quota_step("ec2", "L-0263D0A3", 8));
    p.aws(&aws.url);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["quota"]).expect(OK);
    p.flow(&["run"]).expect(WAITING);
    aws.set_request_status("DENIED");
    p.env("FLOW_NOW", &later(3600));
    let r = p.flow(&["run"]);
    r.expect(FAILED);
    assert!(r.stdout.contains("quota: AWS answered DENIED to quota increase request req-1 for ec2/L-0263D0A3 (5 -> 8), support case case-req-1"), "{}", r.stdout);
}

#[test]
fn a_kill_between_filing_and_recording_files_one_request() {
    let aws = FakeAws::start();
    aws.set_quota("elasticloadbalancing", "L-53DA6B97", "Application Load Balancers per Region", Some(1.0), 50.0);
    aws.with(|s| s.file_delay_ms = 5000);
    let p = project(&quota_step("elasticloadbalancing", "L-53DA6B97", 2));
    p.aws(&aws.url);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["quota"]).expect(OK);
    let mut child = p.spawn(&["run"]);
    let start = Instant::now();
    while aws.with(|s| s.filed) == 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "the request was never filed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(p.state_of("quota"), "running", "flow died before it could record the request");

    aws.with(|s| s.file_delay_ms = 0);
    p.flow(&["run"]).expect(WAITING);
    let s = p.status();
    assert!(step_field(&s, "quota", "note").contains("adopted open request req-1"), "{s}");
    assert_eq!(aws.with(|s| s.filed), 1, "still one request");
}

#[test]
fn a_refused_aws_call_is_a_clear_step_failure() {
    let aws = FakeAws::start();
    let p = project(&quota_step("denied", "L-1", 1));
    p.aws(&aws.url);
    let r = p.flow(&["run"]);
    r.expect(FAILED);
    assert!(
        r.stdout.contains("quota: preview failed: GetServiceQuota denied/L-1: AccessDeniedException: User: arn:aws:iam::123456789012:user/ci is not authorized to perform: servicequotas:GetServiceQuota"),
        "{}",
        r.stdout
    );
}

const NETWORK_V1: &str = "AWSTemplateFormatVersion: \"2010-09-09\"\nParameters:\n  Cidr:\n    Type: String\nResources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties:\n      CidrBlock: !Ref Cidr\n  Subnet:\n    Type: AWS::EC2::Subnet\n    Properties:\n      VpcId: !Ref Vpc\n      CidrBlock: 10.0.1.0/24\nOutputs:\n  VpcId:\n    Value: !Ref Vpc\n  Endpoint:\n    Value: http://lb.example/health\n";

fn changeset_steps(template: &str) -> String {
    format!(
        r#"
        [[steps]]
        id = "net"
        kind = "changeset"
        gate = true
        params = {{ template = "templates/{template}", stack = "shop-network", parameters = {{ Cidr = "10.0.0.0/16" }} }}
        [[steps]]
        id = "use-output"
        kind = "command"
        gate = true
        needs = ["net"]
        params = {{ run = "echo 'endpoint ${{net.Endpoint}}' > endpoint.txt" }}
        "#
    )
}

#[test]
fn a_change_set_is_shown_approved_executed_and_its_outputs_used() {
    let aws = FakeAws::start();
    let p = project(&changeset_steps("net.yaml"));
    p.write("workflows/templates/net.yaml", NETWORK_V1);
    p.aws(&aws.url);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let will = step_field(&p.status(), "net", "will");
    for expected in [
        "CREATE change set flow-net-",
        "on stack shop-network (eu-west-1)",
        "template: templates/net.yaml (sha256:",
        "ACTION",
        "Add      Vpc",
        "AWS::EC2::VPC",
        "Add      Subnet",
        "Cidr = 10.0.0.0/16",
    ] {
        assert!(will.contains(expected), "`{expected}` in\n{will}");
    }
    p.approve(&["net"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let s = p.status();
    assert_eq!(step_field(&s, "net", "state"), "succeeded");
    let outputs: serde_json::Value = serde_json::from_str(&step_field(&s, "net", "outputs")).unwrap();
    assert_eq!(outputs["Endpoint"], "http://lb.example/health");
    assert!(step_field(&s, "use-output", "will").contains("echo 'endpoint http://lb.example/health'"));
    assert_eq!(aws.with(|s| s.stacks["shop-network"].status.clone()), "CREATE_COMPLETE");

    // The same template again: an UPDATE with no changes is nothing to do, no gate.
    // A changed subnet CIDR is a Modify that replaces the subnet.
    p.write("workflows/templates/net-v2.yaml", NETWORK_V1.replace("10.0.1.0/24", "10.0.9.0/24"));
    p.edit_steps(
        "aws",
        r#"
        [[steps]]
        id = "same"
        kind = "changeset"
        gate = true
        params = { template = "templates/net.yaml", stack = "shop-network", parameters = { Cidr = "10.0.0.0/16" } }
        [[steps]]
        id = "resize"
        kind = "changeset"
        gate = true
        params = { template = "templates/net-v2.yaml", stack = "shop-network", parameters = { Cidr = "10.0.0.0/16" } }
        [[steps]]
        id = "drill"
        kind = "command"
        gate = true
        covers = ["recovery-1"]
        params = { run = "true" }
        "#,
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let s = p.status();
    assert_eq!(step_field(&s, "same", "state"), "succeeded", "{s}");
    let will = step_field(&s, "resize", "will");
    assert!(will.contains("UPDATE change set flow-resize-"), "{will}");
    assert!(will.contains("Modify   Subnet") && will.contains("AWS::EC2::Subnet True"), "{will}");
}

#[test]
fn a_change_set_against_moto() {
    let p = project(&changeset_steps("net.yaml"));
    p.write("workflows/templates/net.yaml", NETWORK_V1);
    p.aws(&moto_url());
    // One moto serves the whole run: a stack name of this test's own.
    let stack = format!("shop-network-{}", std::process::id());
    let wf = p.read("workflows/aws.toml").replace("\"shop-network\"", &format!("\"{stack}\""));
    p.write("workflows/aws.toml", wf);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let will = step_field(&p.status(), "net", "will");
    assert!(
        will.contains("CREATE change set") && will.contains("Add      Vpc") && will.contains("Add      Subnet"),
        "{will}"
    );
    p.approve(&["net"]).expect(OK);
    // moto gives a stack made by a change set no Outputs: the step that needs one says so.
    let r = p.flow(&["run"]);
    r.expect(FAILED);
    assert!(
        r.stdout.contains("use-output: param references ${net.Endpoint}, but step `net` recorded no output `Endpoint`"),
        "{}",
        r.stdout
    );
    let s = p.status();
    assert_eq!(step_field(&s, "net", "state"), "succeeded", "{s}");
    let ev: serde_json::Value = serde_json::from_str(&step_field(&s, "net", "evidence")).unwrap();
    assert_eq!((ev["stack"].as_str(), ev["stack_status"].as_str()), (Some(stack.as_str()), Some("CREATE_COMPLETE")));
}

#[test]
fn editing_the_template_after_approval_voids_the_approval() {
    let aws = FakeAws::start();
    let p = project(&changeset_steps("net.yaml"));
    p.write("workflows/templates/net.yaml", NETWORK_V1);
    p.aws(&aws.url);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["net"]).expect(OK);

    // Someone edits the template after the approval: the approval no longer applies.
    p.write(
        "workflows/templates/net.yaml",
        NETWORK_V1.replace("Outputs:", "  Extra:\n    Type: AWS::EC2::InternetGateway\nOutputs:"),
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let s = p.status();
    assert_eq!(step_field(&s, "net", "state"), "waiting_approval");
    assert_eq!(step_field(&s, "net", "approval_void"), "what the step would do changed since it was approved");
    assert!(step_field(&s, "net", "will").contains("Add      Extra"));
    assert!(aws.with(|s| s.stacks["shop-network"].status.clone()) == "REVIEW_IN_PROGRESS", "nothing was executed");

    p.approve(&["net"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    assert_eq!(p.state_of("net"), "succeeded");
    assert!(aws.with(|s| s.stacks["shop-network"].template.contains("Extra")), "the approved template was applied");
}

#[test]
fn a_failing_resource_fails_the_step_with_its_reason() {
    let aws = FakeAws::start();
    let p = project(&changeset_steps("net.yaml"));
    p.write("workflows/templates/net.yaml", NETWORK_V1.replace("  Subnet:", "  BrokenSubnet:"));
    p.aws(&aws.url);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["net"]).expect(OK);
    let r = p.flow(&["run"]);
    r.expect(FAILED);
    assert!(
        r.stdout.contains("net: stack shop-network ended ROLLBACK_COMPLETE: BrokenSubnet (AWS::EC2::Subnet): Resource handler returned message: \"The subnet ID 'subnet-0broken' does not exist (Service: Ec2, Status Code: 400)\""),
        "{}",
        r.stdout
    );
    assert_eq!(state(&p.status(), "use-output"), "pending");
}

#[test]
fn the_shipped_templates_pass_cfn_lint() {
    let lint =
        std::env::var("FLOW_TEST_CFN_LINT").expect("FLOW_TEST_CFN_LINT is not set: run the tests with scripts/test");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/templates");
    let files: Vec<_> =
        ["network.yaml", "network-extend.yaml", "compute.yaml", "alarms.yaml", "resilience.yaml", "backup.yaml"]
            .iter()
            .map(|f| dir.join(f))
            .collect();
    let out = std::process::Command::new(lint).args(&files).output().expect("cfn-lint runs");
    assert!(
        out.status.success(),
        "cfn-lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The shipped templates through flow against moto: the network and alarms stacks are created,
/// the compute change set is previewed (moto cannot create its instances without real subnets).
#[test]
fn the_shipped_templates_work_against_moto() {
    let p = Project::new();
    p.write("specs/aws.md", "---\nregion: eu-west-1\n---\n# Recovery\n\n- RTO 2 hours\n");
    p.flow(&["plan", "specs/aws.md"]).expect(OK);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for t in ["network.yaml", "compute.yaml", "alarms.yaml"] {
        p.write(&format!("workflows/templates/{t}"), std::fs::read(root.join("workflows/templates").join(t)).unwrap());
    }
    let id = std::process::id();
    p.edit_steps(
        "aws",
        &format!(
            r#"
            [[steps]]
            id = "network"
            kind = "changeset"
            gate = true
            params = {{ template = "templates/network.yaml", stack = "ship-net-{id}", parameters = {{ VpcCidr = "10.0.0.0/16", PublicSubnetCidrs = ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"], PrivateSubnetCidrs = ["10.0.3.0/24", "10.0.4.0/24", "10.0.5.0/24"] }} }}
            [[steps]]
            id = "alarms"
            kind = "changeset"
            gate = true
            params = {{ template = "templates/alarms.yaml", stack = "ship-alarms-{id}", parameters = {{ LoadBalancerFullName = "app/shop/1", TargetGroupFullName = "targetgroup/shop/1", LatencyThresholdSeconds = 0.25, ErrorRateThresholdPct = 0.5, NotificationEmail = "ops@example.com" }} }}
            [[steps]]
            id = "compute"
            kind = "changeset"
            gate = true
            params = {{ template = "templates/compute.yaml", stack = "ship-compute-{id}", parameters = {{ VpcId = "vpc-1", PublicSubnetIds = ["subnet-1", "subnet-2", "subnet-3"], PrivateSubnetIds = ["subnet-4", "subnet-5", "subnet-6"], MinSize = 3, MaxSize = 6, DesiredCapacity = 3 }} }}
            [[steps]]
            id = "drill"
            kind = "command"
            gate = true
            needs = ["network", "alarms", "compute"]
            covers = ["recovery-1"]
            params = {{ run = "true" }}
            "#
        )
    );
    p.aws(&moto_url());
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let s = p.status();
    let network = step_field(&s, "network", "will");
    for expected in ["NatGatewayA", "NatGatewayB", "NatGatewayC", "AWS::EC2::NatGateway", "PrivateDefaultRouteC"] {
        assert!(network.contains(expected), "`{expected}` in\n{network}");
    }
    let compute = step_field(&s, "compute", "will");
    for expected in [
        "AutoScalingGroup",
        "AWS::AutoScaling::AutoScalingGroup",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "LaunchTemplate",
        "PrivateSubnetIds = subnet-4,subnet-5,subnet-6",
    ] {
        assert!(compute.contains(expected), "`{expected}` in\n{compute}");
    }
    assert!(step_field(&s, "alarms", "will").contains("RequestCountAnomalyAlarm"));
    assert!(
        step_field(&s, "alarms", "will").contains("note: 1 anomaly-detection alarm (ANOMALY_DETECTION_BAND): CloudWatch learns the band from the metric's history"),
        "{}",
        step_field(&s, "alarms", "will")
    );
    p.approve(&["network"]).expect(OK);
    p.approve(&["alarms"]).expect(OK);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let s = p.status();
    for step in ["network", "alarms"] {
        let ev: serde_json::Value = serde_json::from_str(&step_field(&s, step, "evidence")).unwrap();
        assert_eq!(ev["stack_status"], "CREATE_COMPLETE", "{step}: {s}");
    }
}

/// An endpoint that answers every call with an HTTP 500 page instead of an AWS error document:
/// the step fails with a sentence naming the call, the status, the endpoint and the start of
/// the body, not the SDK's debug dump.
#[test]
fn an_answer_that_is_not_aws_is_quoted_not_dumped() {
    use bytes::Bytes;
    use http_body_util::Full;
    let port = crate::serve::serve(|_req| async {
        let page = format!("<html>\n<body><h1>500 Internal Server Error</h1>{}</body></html>", "x".repeat(500));
        Ok(hyper::Response::builder().status(500).body(Full::new(Bytes::from(page))).unwrap())
    });
    let p = project(&quota_step("ec2", "L-1216C47A", 48));
    p.aws(&format!("http://127.0.0.1:{port}"));
    p.flow(&["run"]).expect(FAILED);
    let error = step_field(&p.status(), "quota", "error");
    let expected = format!(
        "preview failed: GetServiceQuota ec2/L-1216C47A: HTTP 500 from http://127.0.0.1:{port}: <html> <body><h1>500 Internal Server Error</h1>xxx"
    );
    assert!(error.starts_with(&expected), "{error}");
    assert!(error.len() < 300, "{} characters: {error}", error.len());
    for debug in ["SdkError", "ServiceError {", "raw:", "Response {"] {
        assert!(!error.contains(debug), "`{debug}` in {error}");
    }
}
