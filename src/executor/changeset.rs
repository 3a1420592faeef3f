//! `changeset`: a CloudFormation change set, reviewed, approved, executed.
//!
//! - preview: CreateChangeSet under a deterministic name (step + digest of template, parameters
//!   and type; CREATE for a new stack, UPDATE for an existing one), or find the one already made;
//!   wait for it; "no changes" is nothing to do; otherwise the artifact is a table of the changes
//!   (action, logical id, type, replacement) with the parameters and the template's digest, so
//!   editing the template after an approval voids it;
//! - submit: ExecuteChangeSet (the engine has checked the approval's digest against a fresh
//!   preview), then wait for the stack to settle; outputs become step outputs; a failure or
//!   rollback reports the first failing stack event's reason;
//! - reconcile: the change set's execution status says whether it was executed before a crash.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, ExecutionStatus, Parameter, Stack};
use aws_sdk_cloudformation::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::{json, Map, Value};

use super::{typed, Ctx, Error, Executor, Outcome, Preview, Result};
use crate::aws::{self, Aws, CLOUDFORMATION};
use crate::domain::catalogue::ChangesetParams;
use crate::domain::digest;
use crate::domain::requirement::fmt_num;

pub struct Changeset;

/// Everything a change set is made of, resolved.
struct Spec {
    client: Client,
    aws: Aws,
    stack: String,
    template_path: String,
    template: String,
    parameters: Vec<(String, String)>,
}

fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map(fmt_num).unwrap_or_else(|| n.to_string()),
        Value::Array(a) => a.iter().map(param_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

async fn spec(ctx: &Ctx, params: &Map<String, Value>) -> Result<Spec> {
    let p: ChangesetParams = typed(params)?;
    let stack =
        p.stack.clone().or_else(|| ctx.context.get("stack").cloned()).ok_or_else(|| {
            Error::Step("no stack name: set `stack` in the step's params or the spec's context".into())
        })?;
    let path = ctx.workflow_dir.join(&p.template);
    let template = std::fs::read_to_string(&path).map_err(|e| format!("template {}: {e}", path.display()))?;
    let mut parameters = Vec::new();
    for (k, v) in &p.parameters {
        parameters.push((k.clone(), param_text(v.get()?)));
    }
    let aws = aws::config(p.region.as_deref(), &ctx.context).await?;
    Ok(Spec { client: Client::new(&aws.conf), aws, stack, template_path: p.template, template, parameters })
}

async fn describe_stack(c: &Client, aws: &Aws, stack: &str) -> Result<Option<Stack>> {
    match c.describe_stacks().stack_name(stack).send().await {
        Ok(out) => Ok(out.stacks.unwrap_or_default().into_iter().next()),
        Err(e) if e.code() == Some("ValidationError") && e.message().is_some_and(|m| m.contains("does not exist")) => {
            Ok(None)
        }
        Err(e) => Err(aws.error(CLOUDFORMATION, format!("DescribeStacks {stack}"), &e).into()),
    }
}

/// A change set's state, all pages of changes included.
struct Described {
    status: String,
    reason: String,
    execution: String,
    /// (action, logical id, type, replacement)
    changes: Vec<(String, String, String, String)>,
}

async fn describe_change_set(c: &Client, aws: &Aws, stack: &str, name: &str) -> Result<Option<Described>> {
    let mut d =
        Described { status: String::new(), reason: String::new(), execution: String::new(), changes: Vec::new() };
    let mut token: Option<String> = None;
    loop {
        let out =
            c.describe_change_set().stack_name(stack).change_set_name(name).set_next_token(token.clone()).send().await;
        let out = match out {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_change_set_not_found_exception()) => return Ok(None),
            Err(e)
                if e.code() == Some("ValidationError") && e.message().is_some_and(|m| m.contains("does not exist")) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(aws.error(CLOUDFORMATION, format!("DescribeChangeSet {name}"), &e).into()),
        };
        d.status = out.status().map(|s| s.as_str().to_string()).unwrap_or_default();
        d.reason = out.status_reason().unwrap_or_default().to_string();
        d.execution = out.execution_status().map(|s| s.as_str().to_string()).unwrap_or_default();
        for ch in out.changes() {
            if let Some(rc) = ch.resource_change() {
                d.changes.push((
                    rc.action().map(|a| a.as_str().to_string()).unwrap_or_default(),
                    rc.logical_resource_id().unwrap_or_default().to_string(),
                    rc.resource_type().unwrap_or_default().to_string(),
                    rc.replacement().map(|r| r.as_str().to_string()).unwrap_or_else(|| "-".into()),
                ));
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(Some(d));
        }
    }
}

fn no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

fn stack_outputs(stack: &Stack) -> Map<String, Value> {
    stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), json!(o.output_value().unwrap_or_default()))))
        .collect()
}

/// The first failing stack event's reason (events come newest first).
async fn first_failure(c: &Client, aws: &Aws, stack: &str) -> String {
    match c.describe_stack_events().stack_name(stack).send().await {
        Ok(out) => out
            .stack_events()
            .iter()
            .rev()
            .find(|e| {
                e.resource_status().is_some_and(|s| s.as_str().ends_with("_FAILED"))
                    && e.resource_status_reason().is_some()
            })
            .map(|e| {
                format!(
                    "{} ({}): {}",
                    e.logical_resource_id().unwrap_or_default(),
                    e.resource_type().unwrap_or_default(),
                    e.resource_status_reason().unwrap_or_default()
                )
            })
            .unwrap_or_else(|| "no stack event names a failed resource".into()),
        Err(e) => aws.error(CLOUDFORMATION, format!("DescribeStackEvents {stack}"), &e).to_string(),
    }
}

impl Spec {
    fn kind(&self, stack: &Option<Stack>) -> ChangeSetType {
        match stack.as_ref().and_then(|s| s.stack_status()) {
            None => ChangeSetType::Create,
            Some(s) if s.as_str() == "REVIEW_IN_PROGRESS" => ChangeSetType::Create,
            Some(_) => ChangeSetType::Update,
        }
    }

    /// `flow-<step>-<digest>`: the same inputs give the same change set.
    fn name(&self, step: &str, kind: &ChangeSetType) -> String {
        let v = json!({"template": self.template, "parameters": self.parameters, "type": kind.as_str()});
        let name = format!("flow-{step}-{}", digest::short(&digest::of_json(&v)));
        name.chars().take(128).collect()
    }

    /// Find or create the change set and wait until CloudFormation has computed it.
    async fn prepared(&self, step: &str) -> Result<(String, ChangeSetType, Described)> {
        let stack = describe_stack(&self.client, &self.aws, &self.stack).await?;
        let kind = self.kind(&stack);
        let name = self.name(step, &kind);
        if describe_change_set(&self.client, &self.aws, &self.stack, &name).await?.is_none() {
            let params: Vec<Parameter> = self
                .parameters
                .iter()
                .map(|(k, v)| Parameter::builder().parameter_key(k).parameter_value(v).build())
                .collect();
            let created = self
                .client
                .create_change_set()
                .stack_name(&self.stack)
                .change_set_name(&name)
                .template_body(&self.template)
                .change_set_type(kind.clone())
                .set_parameters(Some(params))
                .capabilities(Capability::CapabilityIam)
                .capabilities(Capability::CapabilityNamedIam)
                .description(format!("flow step {step}"))
                .send()
                .await;
            if let Err(e) = created {
                if e.message().is_some_and(no_changes) {
                    let empty = Described {
                        status: "FAILED".into(),
                        reason: e.message().unwrap_or_default().into(),
                        execution: String::new(),
                        changes: vec![],
                    };
                    return Ok((name, kind, empty));
                }
                return Err(self
                    .aws
                    .error(CLOUDFORMATION, format!("CreateChangeSet {name} on {}", self.stack), &e)
                    .into());
            }
        }
        let mut pause = Duration::from_millis(250);
        for _ in 0..120 {
            let d = describe_change_set(&self.client, &self.aws, &self.stack, &name)
                .await?
                .ok_or_else(|| format!("change set {name} vanished"))?;
            let settled =
                d.status == ChangeSetStatus::CreateComplete.as_str() || d.status == ChangeSetStatus::Failed.as_str();
            if settled {
                return Ok((name, kind, d));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
        Err(Error::Step(format!("change set {name} was still being created after several minutes")))
    }

    /// A change set this step already made, under either type's name (executing a CREATE change
    /// set makes the stack exist, which turns the next preview into UPDATE).
    async fn existing(&self, step: &str) -> Result<Option<(String, Described)>> {
        for kind in [ChangeSetType::Create, ChangeSetType::Update] {
            let name = self.name(step, &kind);
            if let Some(d) = describe_change_set(&self.client, &self.aws, &self.stack, &name).await? {
                if d.execution == ExecutionStatus::ExecuteComplete.as_str()
                    || d.execution == ExecutionStatus::ExecuteInProgress.as_str()
                {
                    return Ok(Some((name, d)));
                }
            }
        }
        Ok(None)
    }

    fn artifact(&self, name: &str, kind: &ChangeSetType, d: &Described) -> String {
        let mut a = format!(
            "{} change set {name} on stack {} ({}):\n  template: {} ({})\n",
            kind.as_str(),
            self.stack,
            self.aws.region,
            self.template_path,
            digest::of_bytes(self.template.as_bytes())
        );
        let w = d.changes.iter().map(|c| c.1.len()).max().unwrap_or(0).max(11);
        let t = d.changes.iter().map(|c| c.2.len()).max().unwrap_or(0).max(4);
        a.push_str(&format!("  {:<8} {:<w$} {:<t$} {}\n", "ACTION", "LOGICAL ID", "TYPE", "REPLACEMENT"));
        for (action, id, ty, repl) in &d.changes {
            a.push_str(&format!("  {action:<8} {id:<w$} {ty:<t$} {repl}\n"));
        }
        if !self.parameters.is_empty() {
            a.push_str("  parameters:\n");
            for (k, v) in &self.parameters {
                a.push_str(&format!("    {k} = {v}\n"));
            }
        }
        let anomaly = self.template.matches("ANOMALY_DETECTION_BAND").count();
        if anomaly > 0 {
            a.push_str(&format!(
                "  note: {anomaly} anomaly-detection alarm{} (ANOMALY_DETECTION_BAND): CloudWatch learns the band from the metric's history; a metric with little history (a new load balancer) has no band yet, and such an alarm stays INSUFFICIENT_DATA until it has one (up to two weeks for a full model); the alarm drill names it while it does\n",
                if anomaly == 1 { "" } else { "s" }
            ));
        }
        a
    }

    /// Wait briefly for the stack to settle; hand back a `Wait` when it takes longer.
    async fn settle(&self, ctx: &Ctx, name: &str, polls: u64) -> Result<Outcome> {
        let mut pause = Duration::from_millis(200);
        for _ in 0..12 {
            let Some(stack) = describe_stack(&self.client, &self.aws, &self.stack).await? else {
                return Err(Error::Step(format!("stack {} disappeared", self.stack)));
            };
            let status = stack.stack_status().map(|s| s.as_str().to_string()).unwrap_or_default();
            if status == "CREATE_COMPLETE" || status == "UPDATE_COMPLETE" || status == "IMPORT_COMPLETE" {
                let outputs = stack_outputs(&stack);
                let mut evidence = outputs.clone();
                evidence.insert("stack".into(), json!(self.stack));
                evidence.insert("stack_status".into(), json!(status));
                evidence.insert("change_set".into(), json!(name));
                return Ok(Outcome::Done { outputs, evidence });
            }
            if status.contains("ROLLBACK") || status.ends_with("_FAILED") {
                let why = first_failure(&self.client, &self.aws, &self.stack).await;
                return Err(Error::Step(format!("stack {} ended {status}: {why}", self.stack)));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
        Ok(Outcome::Wait {
            next_poll_at: ctx.clock.now_ms() + 30_000,
            note: format!("stack {} is still being changed by {name}", self.stack),
            handle: json!({"change_set": name, "polls": polls}),
        })
    }
}

#[async_trait]
impl Executor for Changeset {
    async fn preview(&self, ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview> {
        let s = spec(ctx, params).await?;
        let (name, kind, d) = s.prepared(&ctx.step).await?;
        if d.status == ChangeSetStatus::Failed.as_str() {
            if no_changes(&d.reason) {
                let stack = describe_stack(&s.client, &s.aws, &s.stack).await?;
                let outputs = stack.as_ref().map(stack_outputs).unwrap_or_default();
                let mut evidence = outputs.clone();
                evidence.insert("stack".into(), json!(s.stack));
                evidence.insert("change_set".into(), json!("none: no changes"));
                return Ok(Preview::Nothing(Outcome::Done { outputs, evidence }));
            }
            return Err(Error::Step(format!("change set {name} failed: {}", d.reason)));
        }
        Ok(Preview::Approve(s.artifact(&name, &kind, &d)))
    }

    async fn submit(&self, ctx: &Ctx, params: &Map<String, Value>, _token: &str) -> Result<Outcome> {
        let s = spec(ctx, params).await?;
        let (name, d) = match s.existing(&ctx.step).await? {
            Some(x) => x,
            None => {
                let (name, _, d) = s.prepared(&ctx.step).await?;
                (name, d)
            }
        };
        if d.execution == ExecutionStatus::Available.as_str() {
            s.client
                .execute_change_set()
                .stack_name(&s.stack)
                .change_set_name(&name)
                .send()
                .await
                .map_err(|e| s.aws.error(CLOUDFORMATION, format!("ExecuteChangeSet {name}"), &e))?;
        } else if d.execution != ExecutionStatus::ExecuteComplete.as_str()
            && d.execution != ExecutionStatus::ExecuteInProgress.as_str()
        {
            return Err(Error::Step(format!(
                "change set {name} cannot be executed: it is {} ({})",
                d.execution, d.reason
            )));
        }
        s.settle(ctx, &name, 0).await
    }

    async fn poll(&self, ctx: &Ctx, params: &Map<String, Value>, handle: &Value) -> Result<Outcome> {
        let s = spec(ctx, params).await?;
        let name = handle.get("change_set").and_then(Value::as_str).unwrap_or_default().to_string();
        let polls = handle.get("polls").and_then(Value::as_u64).unwrap_or(0) + 1;
        s.settle(ctx, &name, polls).await
    }

    async fn reconcile(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Option<Outcome>> {
        // submit looks at the change set's execution status first: executed before the crash
        // means only waiting for the stack; still available means it was never executed.
        self.submit(ctx, params, token).await.map(Some)
    }
}
