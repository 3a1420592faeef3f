//! One integration test binary: the real `flow` binary, run as processes against a real sled
//! store in a temp dir and real HTTP servers on loopback.

mod fake_aws;
mod fake_cloudwatch;
mod fake_drills;
mod fake_llm;
mod serve;
mod support;

mod alarm;
mod approvals;
mod assess;
mod aws;
mod corpus;
mod drill;
mod evidence;
mod hardening;
mod llm;
mod load;
mod mcp;
mod notify;
mod plan;
mod progress;
mod report;
mod run;
mod spec;
mod spread;
mod state;
mod text;
