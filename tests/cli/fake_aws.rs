//! Small stateful AWS services on loopback for what the moto emulator lacks, over the real wire
//! protocols, so the AWS SDK's own serialization and parsing run:
//!
//! - **Service Quotas** (awsJson1.1: `X-Amz-Target: ServiceQuotasV20190624.<Op>`, JSON bodies):
//!   GetServiceQuota, GetAWSDefaultServiceQuota, ListServiceQuotas, RequestServiceQuotaIncrease,
//!   ListRequestedServiceQuotaChangeHistoryByQuota, GetRequestedServiceQuotaChange. The test
//!   sets applied values and moves requests between statuses; filed requests are counted, and a
//!   filing can be made to answer slowly (to kill flow between filing and recording).
//! - **CloudFormation** (awsQuery: form-encoded POST, XML answers): CreateChangeSet,
//!   DescribeChangeSet, ExecuteChangeSet, DescribeStacks, DescribeStackEvents. It models what moto
//!   does not: stack Outputs after a change set (a literal `Value:`, else `<output>-value`),
//!   Modify with Replacement on UPDATE (`True` when a changed resource's block changes
//!   `CidrBlock` or `AvailabilityZone`), rollback with a failed resource event (any resource whose
//!   logical id starts with `Broken`), and a stack that settles one DescribeStacks later.
//!   Templates are read with a line scanner that knows two-space-indented YAML sections.
//! - FIS, ARC zonal shift and AWS Backup (restJson1): in `fake_drills`.
//! - CloudWatch alarms (rpc-v2-cbor), whose actions publish to moto's SNS: in `fake_cloudwatch`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};

#[derive(Default)]
pub struct State {
    /// (service, code) -> (name, applied value); absent applied -> NoSuchResource, default used.
    pub applied: BTreeMap<(String, String), (String, f64)>,
    pub defaults: BTreeMap<(String, String), (String, f64)>,
    pub requests: Vec<QuotaRequest>,
    pub filed: usize,
    pub file_delay_ms: u64,
    pub stacks: BTreeMap<String, Stack>,
    /// Stack output values to give instead of made-up ones (the demo's endpoint URL).
    pub outputs: BTreeMap<String, String>,
    /// Requests answer APPROVED when next asked (the demo's days-later support ticket).
    pub auto_approve: bool,
    /// (stack, change set name)
    pub change_sets: BTreeMap<(String, String), ChangeSet>,
    pub create_change_set_calls: usize,
    /// FIS, ARC zonal shift and AWS Backup.
    pub drills: crate::fake_drills::Drills,
    /// CloudWatch alarms (rpc-v2-cbor), apart: an alarm's action publishes while unlocked.
    pub cloudwatch: Arc<Mutex<crate::fake_cloudwatch::Alarms>>,
}

#[derive(Clone)]
pub struct QuotaRequest {
    pub id: String,
    pub service: String,
    pub code: String,
    pub desired: f64,
    pub status: String,
}

#[derive(Clone, Default)]
pub struct Stack {
    pub status: String,
    pub template: String,
    /// Status it reaches at the next DescribeStacks.
    pub pending: Option<String>,
    pub outputs: Vec<(String, String)>,
    pub events: Vec<(String, String, String, String)>,
}

#[derive(Clone)]
pub struct ChangeSet {
    pub kind: String,
    pub template: String,
    pub status: String,
    pub reason: String,
    pub execution: String,
    pub changes: Vec<(String, String, String, String)>,
    pub parameters: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct FakeAws {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

impl FakeAws {
    pub fn start() -> FakeAws {
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let port = crate::serve::serve(move |req| handle(req, st.clone()));
        FakeAws { url: format!("http://127.0.0.1:{port}"), state }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn set_quota(&self, service: &str, code: &str, name: &str, applied: Option<f64>, default: f64) {
        self.with(|s| {
            let k = (service.to_string(), code.to_string());
            s.defaults.insert(k.clone(), (name.into(), default));
            match applied {
                Some(v) => s.applied.insert(k, (name.into(), v)),
                None => s.applied.remove(&k),
            };
        });
    }

    pub fn set_request_status(&self, status: &str) {
        self.with(|s| s.requests.iter_mut().for_each(|r| r.status = status.into()));
    }
}

fn text(status: u16, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder().status(status).header("content-type", content_type).body(Full::new(Bytes::from(body))).unwrap()
}

async fn handle(req: Request<Incoming>, st: Arc<Mutex<State>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_string);
    let (method, path, query) =
        (req.method().to_string(), req.uri().path().to_string(), req.uri().query().map(str::to_string));
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if path.starts_with(crate::fake_cloudwatch::PATH) {
        let cw = st.lock().unwrap().cloudwatch.clone();
        if let Some(r) = crate::fake_cloudwatch::handle(&path, &body, &cw).await {
            return Ok(r);
        }
    }
    if target.is_none() && path != "/" {
        if let Some(r) = crate::fake_drills::handle(&method, &path, query.as_deref(), &body, &st) {
            return Ok(r);
        }
    }
    Ok(match target {
        Some(t) => quotas(&t, &body, &st).await,
        None => cloudformation(&body, &st),
    })
}

// ---- Service Quotas (awsJson1.1) ----

fn json_error(kind: &str, message: &str) -> Response<Full<Bytes>> {
    text(400, "application/x-amz-json-1.1", json!({"__type": kind, "message": message}).to_string())
}

fn quota_json(service: &str, code: &str, name: &str, value: f64) -> Value {
    json!({"ServiceCode": service, "QuotaCode": code, "QuotaName": name, "Value": value, "Adjustable": true,
           "QuotaArn": format!("arn:aws:servicequotas:eu-west-1:123456789012:{service}/{code}")})
}

fn request_json(r: &QuotaRequest) -> Value {
    json!({"Id": r.id, "CaseId": format!("case-{}", r.id), "ServiceCode": r.service, "QuotaCode": r.code,
           "DesiredValue": r.desired, "Status": r.status, "Created": 1764000000.0, "Requester": "flow-test"})
}

async fn quotas(target: &str, body: &[u8], st: &Arc<Mutex<State>>) -> Response<Full<Bytes>> {
    let op = target.rsplit('.').next().unwrap_or_default();
    let input: Value = serde_json::from_slice(body).unwrap_or(json!({}));
    let key = (
        input["ServiceCode"].as_str().unwrap_or_default().to_string(),
        input["QuotaCode"].as_str().unwrap_or_default().to_string(),
    );
    let ok = |v: Value| text(200, "application/x-amz-json-1.1", v.to_string());
    if op == "RequestServiceQuotaIncrease" {
        // File first, answer later: a kill in between leaves a filed request flow never saw.
        let (r, delay) = {
            let mut s = st.lock().unwrap();
            s.filed += 1;
            let r = QuotaRequest {
                id: format!("req-{}", s.filed),
                service: key.0.clone(),
                code: key.1.clone(),
                desired: input["DesiredValue"].as_f64().unwrap_or(0.0),
                status: "PENDING".into(),
            };
            s.requests.push(r.clone());
            (r, s.file_delay_ms)
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        return ok(json!({"RequestedQuota": request_json(&r)}));
    }
    let s = st.lock().unwrap();
    if key.0 == "denied" {
        return json_error(
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: servicequotas:GetServiceQuota",
        );
    }
    match op {
        "GetServiceQuota" => match s.applied.get(&key) {
            Some((name, v)) => ok(json!({"Quota": quota_json(&key.0, &key.1, name, *v)})),
            None => json_error(
                "NoSuchResourceException",
                "The request failed because the specified service quota does not have an applied value.",
            ),
        },
        "GetAWSDefaultServiceQuota" => match s.defaults.get(&key) {
            Some((name, v)) => ok(json!({"Quota": quota_json(&key.0, &key.1, name, *v)})),
            None => json_error(
                "NoSuchResourceException",
                "The request failed because the specified service does not exist.",
            ),
        },
        "ListServiceQuotas" => {
            let q: Vec<Value> = s
                .defaults
                .iter()
                .filter(|((svc, _), _)| *svc == key.0)
                .map(|((svc, code), (name, v))| quota_json(svc, code, name, *v))
                .collect();
            ok(json!({"Quotas": q}))
        }
        "ListRequestedServiceQuotaChangeHistoryByQuota" => {
            let r: Vec<Value> =
                s.requests.iter().filter(|r| r.service == key.0 && r.code == key.1).map(request_json).collect();
            ok(json!({"RequestedQuotas": r}))
        }
        "GetRequestedServiceQuotaChange" => {
            match s.requests.iter().find(|r| r.id == input["RequestId"].as_str().unwrap_or_default()) {
                Some(r) if s.auto_approve => ok(
                    json!({"RequestedQuota": request_json(&QuotaRequest { status: "APPROVED".into(), ..r.clone() })}),
                ),
                Some(r) => ok(json!({"RequestedQuota": request_json(r)})),
                None => json_error("NoSuchResourceException", "no such request"),
            }
        }
        _ => json_error("UnknownOperationException", op),
    }
}

// ---- CloudFormation (awsQuery) ----

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn xml_ok(action: &str, result: &str) -> Response<Full<Bytes>> {
    text(
        200,
        "text/xml",
        format!(
            "<{action}Response xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
}

fn xml_error(code: &str, message: &str) -> Response<Full<Bytes>> {
    text(
        400,
        "text/xml",
        format!(
            "<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>fake</RequestId></ErrorResponse>",
            esc(message)
        ),
    )
}

/// Top-level section entries of a two-space-indented YAML template: name -> block text.
fn section(template: &str, name: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut inside = false;
    for line in template.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            inside = line.trim_end() == format!("{name}:");
            continue;
        }
        if !inside {
            continue;
        }
        if line.len() > 2
            && line.starts_with("  ")
            && !line.starts_with("   ")
            && line.trim_end().ends_with(':')
            && !line.trim_start().starts_with('#')
        {
            out.push((line.trim().trim_end_matches(':').to_string(), String::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(line.trim());
            last.1.push('\n');
        }
    }
    out
}

fn resource_type(block: &str) -> String {
    block.lines().find_map(|l| l.strip_prefix("Type:")).map(|t| t.trim().to_string()).unwrap_or_default()
}

fn cfn_arn(stack: &str) -> String {
    format!("arn:aws:cloudformation:eu-west-1:123456789012:stack/{stack}/fake")
}

fn cloudformation(body: &[u8], st: &Arc<Mutex<State>>) -> Response<Full<Bytes>> {
    let form: BTreeMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let action = form.get("Action").cloned().unwrap_or_default();
    let stack = form.get("StackName").cloned().unwrap_or_default();
    let cs_name = form.get("ChangeSetName").cloned().unwrap_or_default();
    let mut s = st.lock().unwrap();
    match action.as_str() {
        "DescribeStacks" => {
            let Some(stk) = s.stacks.get_mut(&stack) else {
                return xml_error("ValidationError", &format!("Stack with id {stack} does not exist"));
            };
            let shown = stk.clone();
            if let Some(next) = stk.pending.take() {
                stk.status = next;
            }
            let outputs: String = if shown.status.ends_with("_COMPLETE") && !shown.status.contains("ROLLBACK") {
                shown
                    .outputs
                    .iter()
                    .map(|(k, v)| {
                        format!("<member><OutputKey>{k}</OutputKey><OutputValue>{}</OutputValue></member>", esc(v))
                    })
                    .collect()
            } else {
                String::new()
            };
            xml_ok(
                "DescribeStacks",
                &format!(
                    "<Stacks><member><StackName>{stack}</StackName><StackId>{}</StackId><CreationTime>2026-11-25T00:00:00Z</CreationTime><StackStatus>{}</StackStatus><Outputs>{outputs}</Outputs></member></Stacks>",
                    cfn_arn(&stack),
                    shown.status
                ),
            )
        }
        "DescribeStackEvents" => {
            let Some(stk) = s.stacks.get(&stack) else {
                return xml_error("ValidationError", &format!("Stack with id {stack} does not exist"));
            };
            let events: String = stk
                .events
                .iter()
                .rev()
                .enumerate()
                .map(|(i, (id, ty, status, reason))| {
                    format!(
                        "<member><StackId>{}</StackId><EventId>e{i}</EventId><StackName>{stack}</StackName><LogicalResourceId>{id}</LogicalResourceId><ResourceType>{ty}</ResourceType><Timestamp>2026-11-25T00:00:0{}Z</Timestamp><ResourceStatus>{status}</ResourceStatus><ResourceStatusReason>{}</ResourceStatusReason></member>",
                        cfn_arn(&stack),
                        i % 10,
                        esc(reason)
                    )
                })
                .collect();
            xml_ok("DescribeStackEvents", &format!("<StackEvents>{events}</StackEvents>"))
        }
        "CreateChangeSet" => {
            s.create_change_set_calls += 1;
            let template = form.get("TemplateBody").cloned().unwrap_or_default();
            let kind = form.get("ChangeSetType").cloned().unwrap_or_else(|| "UPDATE".into());
            let mut parameters = Vec::new();
            for i in 1.. {
                let Some(k) = form.get(&format!("Parameters.member.{i}.ParameterKey")) else { break };
                parameters.push((
                    k.clone(),
                    form.get(&format!("Parameters.member.{i}.ParameterValue")).cloned().unwrap_or_default(),
                ));
            }
            let new = section(&template, "Resources");
            let changes: Vec<(String, String, String, String)> = if kind == "CREATE" {
                if s.stacks.get(&stack).is_some_and(|k| k.status != "REVIEW_IN_PROGRESS") {
                    return xml_error("ValidationError", &format!("Stack [{stack}] already exists and cannot be created again with the changeSet [{cs_name}]."));
                }
                s.stacks
                    .entry(stack.clone())
                    .or_insert_with(|| Stack { status: "REVIEW_IN_PROGRESS".into(), ..Default::default() });
                new.iter().map(|(id, b)| ("Add".into(), id.clone(), resource_type(b), "-".into())).collect()
            } else {
                let Some(old) = s.stacks.get(&stack) else {
                    return xml_error("ValidationError", &format!("Stack [{stack}] does not exist"));
                };
                let before = section(&old.template, "Resources");
                let mut ch = Vec::new();
                for (id, b) in &new {
                    match before.iter().find(|(i, _)| i == id) {
                        None => ch.push(("Add".into(), id.clone(), resource_type(b), "-".into())),
                        Some((_, ob)) if ob != b => {
                            let changed: Vec<&str> = b.lines().filter(|l| !ob.lines().any(|o| o == *l)).collect();
                            let replace =
                                changed.iter().any(|l| l.starts_with("CidrBlock") || l.starts_with("AvailabilityZone"));
                            ch.push((
                                "Modify".into(),
                                id.clone(),
                                resource_type(b),
                                if replace { "True" } else { "False" }.into(),
                            ));
                        }
                        _ => {}
                    }
                }
                for (id, b) in &before {
                    if !new.iter().any(|(i, _)| i == id) {
                        ch.push(("Remove".into(), id.clone(), resource_type(b), "-".into()));
                    }
                }
                ch
            };
            let (status, reason) = if changes.is_empty() {
                ("FAILED", "The submitted information didn't contain changes. Submit different information to create a change set.")
            } else {
                ("CREATE_COMPLETE", "")
            };
            s.change_sets.insert(
                (stack.clone(), cs_name.clone()),
                ChangeSet {
                    kind,
                    template,
                    status: status.into(),
                    reason: reason.into(),
                    execution: if changes.is_empty() { "UNAVAILABLE" } else { "AVAILABLE" }.into(),
                    changes,
                    parameters,
                },
            );
            xml_ok("CreateChangeSet", &format!("<Id>arn:aws:cloudformation:eu-west-1:123456789012:changeSet/{cs_name}/fake</Id><StackId>{}</StackId>", cfn_arn(&stack)))
        }
        "DescribeChangeSet" => {
            let Some(cs) = s.change_sets.get(&(stack.clone(), cs_name.clone())) else {
                return xml_error("ChangeSetNotFound", &format!("ChangeSet [{cs_name}] does not exist"));
            };
            let changes: String = cs
                .changes
                .iter()
                .map(|(a, id, ty, r)| {
                    let repl = if r == "-" { String::new() } else { format!("<Replacement>{r}</Replacement>") };
                    format!("<member><Type>Resource</Type><ResourceChange><Action>{a}</Action><LogicalResourceId>{id}</LogicalResourceId><ResourceType>{ty}</ResourceType>{repl}</ResourceChange></member>")
                })
                .collect();
            let params: String = cs
                .parameters
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<member><ParameterKey>{k}</ParameterKey><ParameterValue>{}</ParameterValue></member>",
                        esc(v)
                    )
                })
                .collect();
            xml_ok(
                "DescribeChangeSet",
                &format!(
                    "<ChangeSetName>{cs_name}</ChangeSetName><StackName>{stack}</StackName><StackId>{}</StackId><Status>{}</Status><StatusReason>{}</StatusReason><ExecutionStatus>{}</ExecutionStatus><Parameters>{params}</Parameters><Changes>{changes}</Changes>",
                    cfn_arn(&stack),
                    cs.status,
                    esc(&cs.reason),
                    cs.execution
                ),
            )
        }
        "ExecuteChangeSet" => {
            let Some(cs) = s.change_sets.get_mut(&(stack.clone(), cs_name.clone())) else {
                return xml_error("ChangeSetNotFound", &format!("ChangeSet [{cs_name}] does not exist"));
            };
            if cs.execution != "AVAILABLE" {
                return xml_error(
                    "InvalidChangeSetStatus",
                    &format!("ChangeSet [{cs_name}] cannot be executed in its current status of [{}]", cs.execution),
                );
            }
            cs.execution = "EXECUTE_COMPLETE".into();
            let cs = cs.clone();
            let create = cs.kind == "CREATE";
            let resources = section(&cs.template, "Resources");
            let broken = resources.iter().find(|(id, _)| id.starts_with("Broken")).cloned();
            let stk = s.stacks.entry(stack.clone()).or_default();
            let verb = if create { "CREATE" } else { "UPDATE" };
            stk.status = format!("{verb}_IN_PROGRESS");
            stk.events.clear();
            match broken {
                Some((id, b)) => {
                    stk.pending = Some(if create { "ROLLBACK_COMPLETE" } else { "UPDATE_ROLLBACK_COMPLETE" }.into());
                    stk.events.push((id.clone(), resource_type(&b), format!("{verb}_IN_PROGRESS"), String::new()));
                    stk.events.push((
                        id,
                        resource_type(&b),
                        format!("{verb}_FAILED"),
                        "Resource handler returned message: \"The subnet ID 'subnet-0broken' does not exist (Service: Ec2, Status Code: 400)\"".into(),
                    ));
                    stk.events.push((
                        stack.clone(),
                        "AWS::CloudFormation::Stack".into(),
                        "ROLLBACK_IN_PROGRESS".into(),
                        "The following resource(s) failed to create: [Broken].".into(),
                    ));
                }
                None => {
                    stk.pending = Some(format!("{verb}_COMPLETE"));
                    stk.template = cs.template.clone();
                    let overrides = s.outputs.clone();
                    let stk = s.stacks.entry(stack.clone()).or_default();
                    stk.outputs = section(&cs.template, "Outputs")
                        .into_iter()
                        .map(|(k, b)| {
                            if let Some(v) = overrides.get(&k) {
                                return (k, v.clone());
                            }
                            let literal = b
                                .lines()
                                .find_map(|l| l.strip_prefix("Value:"))
                                .map(|v| v.trim().trim_matches('"').to_string());
                            let v = match literal {
                                Some(v) if !v.starts_with('!') => v,
                                _ => format!("{}-value", k.to_lowercase()),
                            };
                            (k, v)
                        })
                        .collect();
                }
            }
            xml_ok("ExecuteChangeSet", "")
        }
        _ => xml_error("InvalidAction", &format!("unknown action {action}")),
    }
}
