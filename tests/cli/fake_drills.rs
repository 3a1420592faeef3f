//! The drills' AWS services, for what moto lacks (and for faults that really happen), over the
//! real restJson1 wire protocol so the AWS SDK's own serialization and parsing run:
//!
//! - **FIS**: GetExperimentTemplate, StartExperiment (idempotent by client token, with tags and
//!   `actionsMode`), GetExperiment, StopExperiment, ListExperiments, ListExperimentResolvedTargets.
//!   An experiment run with `run-all` lasts its template's duration in real time and calls the
//!   fault hook (`fault(true)` at the start, `fault(false)` at the end or when stopped), so a
//!   local service really goes down. moto serves FIS too, but its experiments end on their own
//!   after a few reads and touch nothing.
//! - **ARC zonal shift** (not in moto): GetManagedResource, StartZonalShift, CancelZonalShift,
//!   ListZonalShifts (by resource and status); a shift calls the fault hook too.
//! - **AWS Backup** (moto has plans and vaults, but no recovery points or restore jobs):
//!   ListRecoveryPointsByResource, ListProtectedResources (the resources with a recovery
//!   point), GetBackupPlan, StartRestoreJob (idempotent by token),
//!   DescribeRestoreJob; a job completes after its set time and then calls the restore hook
//!   (which brings the scratch copy up).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::{json, Value};

use crate::fake_aws::State;

pub type Hook = Arc<dyn Fn(bool) + Send + Sync>;

#[derive(Clone)]
pub struct FisTemplate {
    pub id: String,
    pub duration: Duration,
    /// (target name, resource type, ARNs)
    pub targets: Vec<(String, String, Vec<String>)>,
}

pub struct Experiment {
    pub id: String,
    pub template: String,
    pub token: String,
    pub tags: Value,
    pub run_all: bool,
    pub ends: Instant,
    pub stopped: bool,
    pub over: bool,
}

pub struct Shift {
    pub id: String,
    pub resource: String,
    pub away_from: String,
    pub comment: String,
    pub status: String,
}

pub struct RecoveryPoint {
    pub arn: String,
    pub resource: String,
    pub vault: String,
    pub created: SystemTime,
}

pub struct RestoreJob {
    pub id: String,
    pub token: String,
    pub recovery_point: String,
    pub created: SystemTime,
    pub ready: Instant,
    pub done: bool,
}

/// (rule name, schedule expression, start window minutes, continuous)
pub type Rule = (String, String, u32, bool);

#[derive(Default)]
pub struct Drills {
    pub templates: Vec<FisTemplate>,
    /// For a template nobody set up (the demo's, made by a change set): this long.
    pub default_duration: Option<Duration>,
    pub experiments: Vec<Experiment>,
    pub fault: Option<Hook>,
    /// (resource ARN, name, zones)
    pub resources: Vec<(String, String, Vec<String>)>,
    pub shifts: Vec<Shift>,
    pub recovery_points: Vec<RecoveryPoint>,
    pub plans: Vec<(String, Vec<Rule>)>,
    pub jobs: Vec<RestoreJob>,
    pub restore_takes: Duration,
    pub restored: Option<Hook>,
    /// The alarm every template names as its stop condition (default `errors`).
    pub stop_alarm: Option<String>,
}

impl Drills {
    /// How many experiments were started to act (not dry runs).
    pub fn run_all_starts(&self) -> usize {
        self.experiments.iter().filter(|e| e.run_all).count()
    }
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

fn ok(v: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

fn error(status: u16, kind: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", kind)
        .body(Full::new(Bytes::from(json!({"message": message}).to_string())))
        .unwrap()
}

/// `%3A` and friends, as the SDK encodes path and query values.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(q: Option<&str>, key: &str) -> Option<String> {
    q?.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| unescape(v)))
}

/// Bring experiments and jobs up to date with the clock (hooks run outside the lock).
fn tick(d: &mut Drills) -> Vec<Box<dyn FnOnce() + Send>> {
    let mut hooks: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
    let now = Instant::now();
    for e in d.experiments.iter_mut().filter(|e| e.run_all && !e.over) {
        if e.stopped || now >= e.ends {
            e.over = true;
            if let Some(f) = d.fault.clone() {
                hooks.push(Box::new(move || f(false)));
            }
        }
    }
    for j in d.jobs.iter_mut().filter(|j| !j.done && now >= j.ready) {
        j.done = true;
        if let Some(f) = d.restored.clone() {
            hooks.push(Box::new(move || f(true)));
        }
    }
    hooks
}

fn experiment_json(e: &Experiment) -> Value {
    let status = if e.stopped {
        "stopped"
    } else if e.over || !e.run_all {
        "completed"
    } else {
        "running"
    };
    json!({
        "id": e.id, "arn": format!("arn:aws:fis:eu-west-1:123456789012:experiment/{}", e.id),
        "experimentTemplateId": e.template, "state": {"status": status, "reason": status},
        "tags": e.tags, "experimentOptions": {"actionsMode": if e.run_all { "run-all" } else { "skip-all" }},
    })
}

fn template_of(d: &Drills, id: &str) -> Option<FisTemplate> {
    d.templates.iter().find(|t| t.id == id).cloned().or_else(|| {
        d.default_duration.map(|duration| FisTemplate {
            id: id.into(),
            duration,
            targets: vec![(
                "instances".into(),
                "aws:ec2:instance".into(),
                vec!["arn:aws:ec2:eu-west-1:123456789012:instance/i-0demo".into()],
            )],
        })
    })
}

/// Serve a FIS, ARC or Backup request; `None` when the path is none of theirs.
pub fn handle(
    method: &str,
    path: &str,
    q: Option<&str>,
    body: &[u8],
    st: &Arc<Mutex<State>>,
) -> Option<Response<Full<Bytes>>> {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let parts: Vec<String> = path.trim_matches('/').split('/').map(unescape).collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let mut state = st.lock().unwrap();
    let hooks = tick(&mut state.drills);
    let d = &mut state.drills;
    // A fault that starts (true) or ends (false) with this request.
    let mut fault: Option<bool> = None;
    let resp = match (method, &parts[..]) {
        // ---- FIS ----
        ("GET", ["experimentTemplates", id]) => match template_of(d, id) {
            Some(t) => {
                let targets: serde_json::Map<String, Value> = t
                    .targets
                    .iter()
                    .map(|(n, ty, arns)| {
                        (n.clone(), json!({"resourceType": ty, "resourceArns": arns, "selectionMode": "ALL"}))
                    })
                    .collect();
                ok(json!({"experimentTemplate": {
                    "id": t.id, "description": "AZ power interruption (fake)", "roleArn": "arn:aws:iam::123456789012:role/fis",
                    "targets": targets,
                    "actions": {"stop-instances": {"actionId": "aws:ec2:stop-instances",
                        "parameters": {"startInstancesAfterDuration": format!("PT{}S", t.duration.as_secs())}, "targets": {"Instances": "instances"}}},
                    "stopConditions": [{"source": "aws:cloudwatch:alarm", "value": format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{}", d.stop_alarm.as_deref().unwrap_or("errors"))}],
                }}))
            }
            None => error(404, "ResourceNotFoundException", &format!("Experiment template {id} does not exist")),
        },
        ("POST", ["experiments"]) => {
            let template = body["experimentTemplateId"].as_str().unwrap_or_default().to_string();
            let token = body["clientToken"].as_str().unwrap_or_default().to_string();
            match (d.experiments.iter().find(|e| e.token == token), template_of(d, &template)) {
                (Some(e), _) => ok(json!({"experiment": experiment_json(e)})),
                (None, None) => {
                    error(404, "ResourceNotFoundException", &format!("Experiment template {template} does not exist"))
                }
                (None, Some(t)) => {
                    let run_all = body["experimentOptions"]["actionsMode"].as_str() != Some("skip-all");
                    let now = Instant::now();
                    let e = Experiment {
                        id: format!("EXP{}", d.experiments.len() + 1),
                        template,
                        token,
                        tags: body["tags"].clone(),
                        run_all,
                        ends: now + if run_all { t.duration } else { Duration::ZERO },
                        stopped: false,
                        over: !run_all,
                    };
                    let v = experiment_json(&e);
                    if run_all {
                        fault = Some(true);
                    }
                    d.experiments.push(e);
                    ok(json!({"experiment": v}))
                }
            }
        }
        ("GET", ["experiments", id]) => match d.experiments.iter().find(|e| e.id == *id) {
            Some(e) => ok(json!({"experiment": experiment_json(e)})),
            None => error(404, "ResourceNotFoundException", &format!("Experiment {id} does not exist")),
        },
        ("DELETE", ["experiments", id]) => match d.experiments.iter_mut().find(|e| e.id == *id) {
            Some(e) => {
                if !e.over {
                    e.stopped = true;
                    e.over = true;
                    fault = Some(false);
                }
                ok(json!({"experiment": experiment_json(e)}))
            }
            None => error(404, "ResourceNotFoundException", &format!("Experiment {id} does not exist")),
        },
        ("GET", ["experiments"]) => {
            let template = query(q, "experimentTemplateId");
            let list: Vec<Value> = d
                .experiments
                .iter()
                .filter(|e| template.as_ref().is_none_or(|t| &e.template == t))
                .map(experiment_json)
                .collect();
            ok(json!({"experiments": list}))
        }
        ("GET", ["experiments", id, "resolvedTargets"]) => {
            let template = d.experiments.iter().find(|e| e.id == *id).map(|e| e.template.clone()).unwrap_or_default();
            let targets: Vec<Value> = template_of(d, &template)
                .map(|t| t.targets)
                .unwrap_or_default()
                .into_iter()
                .flat_map(|(n, ty, arns)| {
                    arns.into_iter()
                        .map(move |a| json!({"targetName": n, "resourceType": ty, "targetInformation": {"arn": a}}))
                })
                .collect();
            ok(json!({"resolvedTargets": targets}))
        }
        // ---- ARC zonal shift ----
        ("GET", ["managedresources", arn]) => match d.resources.iter().find(|r| r.0 == *arn) {
            Some((arn, name, zones)) => {
                let weights: serde_json::Map<String, Value> = zones.iter().map(|z| (z.clone(), json!(1.0))).collect();
                let shifts: Vec<Value> = d
                    .shifts
                    .iter()
                    .filter(|s| &s.resource == arn && s.status == "ACTIVE")
                    .map(|s| json!({"zonalShiftId": s.id, "resourceIdentifier": s.resource, "awayFrom": s.away_from, "comment": s.comment,
                        "expiryTime": 2.0e9, "startTime": 1.7e9, "appliedStatus": "APPLIED"}))
                    .collect();
                ok(
                    json!({"arn": arn, "name": name, "appliedWeights": weights, "zonalShifts": shifts, "autoshifts": []}),
                )
            }
            None => error(404, "ResourceNotFoundException", &format!("no managed resource {arn}")),
        },
        ("POST", ["zonalshifts"]) => {
            let s = Shift {
                id: format!("shift-{}", d.shifts.len() + 1),
                resource: body["resourceIdentifier"].as_str().unwrap_or_default().into(),
                away_from: body["awayFrom"].as_str().unwrap_or_default().into(),
                comment: body["comment"].as_str().unwrap_or_default().into(),
                status: "ACTIVE".into(),
            };
            let v = json!({"zonalShiftId": s.id, "resourceIdentifier": s.resource, "awayFrom": s.away_from, "comment": s.comment,
                "expiryTime": 2.0e9, "startTime": 1.7e9, "status": "ACTIVE"});
            d.shifts.push(s);
            fault = Some(true);
            ok(v)
        }
        ("DELETE", ["zonalshifts", id]) => match d.shifts.iter_mut().find(|s| s.id == *id) {
            Some(s) => {
                let was = s.status == "ACTIVE";
                s.status = "CANCELED".into();
                if was {
                    fault = Some(false);
                }
                ok(
                    json!({"zonalShiftId": s.id, "resourceIdentifier": s.resource, "awayFrom": s.away_from, "comment": s.comment,
                    "expiryTime": 2.0e9, "startTime": 1.7e9, "status": "CANCELED"}),
                )
            }
            None => error(404, "ResourceNotFoundException", &format!("no zonal shift {id}")),
        },
        ("GET", ["zonalshifts"]) => {
            let (resource, status) = (query(q, "resourceIdentifier"), query(q, "status"));
            let items: Vec<Value> = d
                .shifts
                .iter()
                .filter(|s| resource.as_ref().is_none_or(|r| &s.resource == r) && status.as_ref().is_none_or(|st| &s.status == st))
                .map(|s| json!({"zonalShiftId": s.id, "resourceIdentifier": s.resource, "awayFrom": s.away_from, "comment": s.comment,
                    "expiryTime": 2.0e9, "startTime": 1.7e9, "status": s.status}))
                .collect();
            ok(json!({"items": items}))
        }
        // ---- AWS Backup ----
        // A resource is protected once it has a recovery point.
        ("GET", ["resources"]) => {
            let mut arns: Vec<&str> = d.recovery_points.iter().map(|p| p.resource.as_str()).collect();
            arns.sort();
            arns.dedup();
            let results: Vec<Value> = arns
                .iter()
                .map(|a| json!({"ResourceArn": a, "ResourceType": if a.contains(":rds:") { "RDS" } else { "EC2" }}))
                .collect();
            ok(json!({"Results": results}))
        }
        ("GET", ["resources", arn, "recovery-points"]) => {
            let points: Vec<Value> = d
                .recovery_points
                .iter()
                .filter(|p| p.resource == *arn)
                .map(|p| json!({"RecoveryPointArn": p.arn, "CreationDate": epoch(p.created), "Status": "COMPLETED", "BackupVaultName": p.vault}))
                .collect();
            ok(json!({"RecoveryPoints": points}))
        }
        ("GET", ["backup", "plans", id]) => match d.plans.iter().find(|p| p.0 == *id) {
            Some((id, rules)) => {
                let rules: Vec<Value> = rules
                    .iter()
                    .map(|(name, expr, window, continuous)| json!({"RuleName": name, "TargetBackupVaultName": "vault",
                        "ScheduleExpression": expr, "StartWindowMinutes": window, "EnableContinuousBackup": continuous, "RuleId": name}))
                    .collect();
                ok(json!({"BackupPlanId": id, "BackupPlan": {"BackupPlanName": id, "Rules": rules}}))
            }
            None => error(404, "ResourceNotFoundException", &format!("no backup plan {id}")),
        },
        ("PUT", ["restore-jobs"]) => {
            let token = body["IdempotencyToken"].as_str().unwrap_or_default().to_string();
            if let Some(j) = d.jobs.iter().find(|j| !token.is_empty() && j.token == token) {
                ok(json!({"RestoreJobId": j.id}))
            } else {
                let j = RestoreJob {
                    id: format!("job-{}", d.jobs.len() + 1),
                    token,
                    recovery_point: body["RecoveryPointArn"].as_str().unwrap_or_default().into(),
                    created: SystemTime::now(),
                    ready: Instant::now() + d.restore_takes,
                    done: false,
                };
                let v = json!({"RestoreJobId": j.id});
                d.jobs.push(j);
                ok(v)
            }
        }
        ("GET", ["restore-jobs", id]) => match d.jobs.iter().find(|j| j.id == *id) {
            Some(j) => {
                let created_point =
                    d.recovery_points.iter().find(|p| p.arn == j.recovery_point).map(|p| epoch(p.created));
                let mut v = json!({"RestoreJobId": j.id, "RecoveryPointArn": j.recovery_point, "CreationDate": epoch(j.created),
                    "Status": if j.done { "COMPLETED" } else { "RUNNING" }, "PercentDone": if j.done { "100%" } else { "40%" },
                    "RecoveryPointCreationDate": created_point});
                if j.done {
                    v["CompletionDate"] = json!(epoch(j.created) + d.restore_takes.as_secs_f64());
                    v["CreatedResourceArn"] = json!(format!("arn:aws:rds:eu-west-1:123456789012:db:restored-{}", j.id));
                }
                ok(v)
            }
            None => error(404, "ResourceNotFoundException", &format!("no restore job {id}")),
        },
        _ => return None,
    };
    let hook = state.drills.fault.clone();
    drop(state);
    for h in hooks {
        h();
    }
    if let (Some(on), Some(f)) = (fault, hook) {
        f(on);
    }
    Some(resp)
}
