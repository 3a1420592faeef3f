//! A local stand-in for the AWS APIs `flow` calls, for `scripts/demo`: the test suite's
//! wire-protocol fakes (`tests/cli/fake_aws.rs`: Service Quotas over awsJson1.1, CloudFormation
//! over awsQuery) served on 127.0.0.1 until killed. moto cannot carry the launch runbook (no
//! quota increase requests, no stack outputs after a change set), so the demo uses these.
//!
//! `cargo run --example aws_emulator -- ENDPOINT_URL` prints the emulator's URL on its first
//! line. Quotas are seeded so that the vCPU quota falls short (one increase request, approved
//! when next polled); every stack's `EndpointURL` output is ENDPOINT_URL (the demo's app).

#[path = "../tests/cli/serve.rs"]
mod serve;

#[allow(dead_code)]
#[path = "../tests/cli/fake_aws.rs"]
mod fake_aws;

fn main() {
    let endpoint = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8080/".into());
    let aws = fake_aws::FakeAws::start();
    aws.set_quota("ec2", "L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", None, 8.0);
    aws.set_quota("elasticloadbalancing", "L-53DA6B97", "Application Load Balancers per Region", Some(50.0), 50.0);
    aws.set_quota("vpc", "L-FE5A380F", "NAT gateways per Availability Zone", None, 5.0);
    aws.set_quota("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs", Some(5.0), 5.0);
    aws.with(|s| {
        s.auto_approve = true;
        s.outputs.insert("EndpointURL".into(), endpoint);
    });
    println!("{}", aws.url);
    loop {
        std::thread::park();
    }
}
