//! `restore_drill`: restore a backup into a scratch copy and measure RTO and RPO.
//!
//! - **RTO**: from the start of the restore until the restored copy answers its probe
//!   (`http(s)://` or `tcp://`). By command: timed in-process. By AWS Backup: StartRestoreJob
//!   (idempotent by a token derived from the step's), polled as a `waiting` step like a quota
//!   request, then probed: the restore's own time (AWS's creation to completion) plus the time
//!   the copy took to answer.
//! - **RPO**, two figures: the worst case the backup configuration allows (the protecting plan's
//!   rules: continuous backup, else the widest gap of its schedule plus its start window; or
//!   `worst_rpo_s`), and the one measured from the restored copy (the restore's start against
//!   the restore point's time, both by AWS's clock for AWS Backup). The verdict uses the worse; a figure that cannot be known is said
//!   to be unknown, never guessed.
//! - **Cleanup** (a command, `FLOW_RESTORED_ARN` naming the copy) runs after the measurement;
//!   its result is in the evidence.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_backup::types::{RecoveryPointStatus, RestoreJobStatus};
use aws_sdk_backup::Client;
use serde_json::{json, Map, Value};

use super::failover::aws_token;
use super::watch::Watch;
use super::{obj, typed, Ctx, Error, Executor, Outcome, Preview, Result};
use crate::aws::{self, Aws, BACKUP};
use crate::clock::rfc3339;
use crate::domain::catalogue::{RestoreDrillParams, DRILL_INTERVAL_MS, PROBE_TIMEOUT_MS};
use crate::domain::requirement::fmt_num;
use crate::domain::{drill, metric};

pub struct RestoreDrill;

/// The restore may take this long unless told otherwise.
const TIMEOUT: Duration = Duration::from_secs(4 * 3600);
/// AWS Backup's continuous backup restores to within five minutes of any point.
pub const CONTINUOUS_RPO_S: f64 = 300.0;

struct Plan {
    p: RestoreDrillParams,
    probe: String,
    interval: Duration,
    /// How long each probe waits for an answer.
    probe_timeout: Duration,
    timeout: Duration,
}

fn plan(ctx: &Ctx, params: &Map<String, Value>) -> Result<Plan> {
    let p: RestoreDrillParams = typed(params)?;
    let probe = match &p.probe {
        Some(i) => i.get()?.clone(),
        None => ctx.context.get("restore_probe").cloned().ok_or_else(|| {
            Error::Step(
                "no probe for the restored copy: set `probe` in the step's params or `restore_probe` in the spec's context (an http(s):// URL or tcp://host:port)".into(),
            )
        })?,
    };
    let interval = Duration::from_millis(p.probe_interval_ms.unwrap_or(DRILL_INTERVAL_MS));
    let probe_timeout = Duration::from_millis(p.probe_timeout_ms.unwrap_or(PROBE_TIMEOUT_MS));
    Ok(Plan { probe, interval, probe_timeout, timeout: p.timeout_s.map(Duration::from_secs).unwrap_or(TIMEOUT), p })
}

/// Before the restore starts, the probe must not answer: it is meant to reach the scratch
/// copy, which does not exist yet. One that answers is probing something else (production,
/// most often), and the RTO it would give is 0 s of nothing. Refused, unless the step says
/// that is intended.
async fn nothing_answers_yet(d: &Plan) -> Result<Value> {
    let (up, detail) = super::watch::probe_once(&d.probe, d.probe_timeout).await?;
    if up && !d.p.allow_probe_up_before {
        return Err(Error::Step(format!(
            "{} already answers ({detail}) before the restore has started: the probe must reach the restored copy, \
             which does not exist yet (is it probing production?); nothing was restored. If a copy that already \
             serves is intended, set `allow_probe_up_before = true`",
            d.probe
        )));
    }
    Ok(json!({"up": up, "detail": detail}))
}

/// When the first answer arrived, in ms after the probes started.
fn answered(p: &drill::Probe) -> u64 {
    p.answered_ms.unwrap_or(p.at_ms)
}

/// `::restore-point RFC3339` in a restore command's output: the newest data it restored.
fn restore_point(stdout: &str) -> Option<u64> {
    stdout.lines().find_map(|l| {
        let t = l.trim().strip_prefix("::restore-point ")?;
        let at = humantime::parse_rfc3339_weak(t.trim()).ok()?;
        Some(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64)
    })
}

/// The worse of what the configuration allows and what was measured; and the evidence.
fn rpo(measured: Option<f64>, worst: Option<(f64, String)>, evidence: &mut Map<String, Value>) {
    evidence.insert("rpo_measured_s".into(), json!(measured));
    evidence.insert("rpo_worst_case_s".into(), json!(worst.as_ref().map(|w| w.0)));
    evidence.insert("rpo_worst_case_from".into(), json!(worst.as_ref().map(|w| w.1.clone())));
    let figures: Vec<f64> = measured.into_iter().chain(worst.map(|w| w.0)).collect();
    match figures.iter().copied().reduce(f64::max) {
        Some(r) => {
            evidence.insert(metric::RPO_S.into(), json!((r * 1000.0).round() / 1000.0));
        }
        None => {
            evidence.insert(
                "rpo_note".into(),
                json!("no RPO: neither a restore point nor a worst case from the backup configuration is known"),
            );
        }
    }
}

async fn cleanup(ctx: &Ctx, p: &RestoreDrillParams, token: &str, restored: &str) -> Value {
    match &p.cleanup {
        Some(run) => super::command::run_to_end(ctx, run, token, &[("FLOW_RESTORED_ARN", restored)]).await,
        None => Value::Null,
    }
}

fn secs(ms: u64) -> f64 {
    (ms as f64 / 1000.0 * 1000.0).round() / 1000.0
}

impl RestoreDrill {
    /// Restore by command: run it, probe until the copy answers.
    async fn by_command(&self, ctx: &Ctx, d: &Plan, token: &str) -> Result<Outcome> {
        let run = d.p.restore.clone().unwrap_or_default();
        let before = nothing_answers_yet(d).await?;
        let started_wall = ctx.clock.now_ms();
        let watch = Watch::start(&d.probe, d.interval, d.probe_timeout)?;
        let mut child = super::command::shell(ctx, &run, token)
            .env("FLOW_RESTORED_ARN", "")
            .spawn()
            .map_err(|e| Error::Step(format!("cannot start the restore `sh -c {run}`: {e}")))?;
        let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
        let collect = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let (mut o, mut e) = (Vec::new(), Vec::new());
            if let Some(s) = out.as_mut() {
                let _ = s.read_to_end(&mut o).await;
            }
            if let Some(s) = err.as_mut() {
                let _ = s.read_to_end(&mut e).await;
            }
            (o, e)
        });
        let mut exited: Option<i32> = None;
        let shown = super::Shown::new(ctx);
        let up_at = loop {
            shown.say(&format!("restoring: {:.1} s, {} not answering yet", watch.now_ms() as f64 / 1000.0, d.probe));
            if let Some(p) = watch.so_far().into_iter().find(|p| p.up) {
                break answered(&p);
            }
            if exited.is_none() {
                if let Ok(Some(status)) = child.try_wait() {
                    exited = Some(status.code().unwrap_or(-1));
                }
            }
            if let Some(code) = exited.filter(|c| *c != 0) {
                let (probes, _) = watch.stop().await;
                let (_, e) = collect.await.unwrap_or_default();
                let tail = super::command::tail(&e);
                let last = tail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
                return Err(Error::Step(format!(
                    "the restore command exited with {code} before {} answered ({} probes){}",
                    d.probe,
                    probes.len(),
                    if last.is_empty() { String::new() } else { format!(": {last}") }
                )));
            }
            if watch.now_ms() >= d.timeout.as_millis() as u64 {
                let _ = child.kill().await;
                let _ = watch.stop().await;
                return Err(Error::Step(format!(
                    "{} did not answer within {} s of the restore's start",
                    d.probe,
                    d.timeout.as_secs()
                )));
            }
            tokio::time::sleep(d.interval.min(Duration::from_millis(50))).await;
        };
        drop(shown);
        let (probes, _) = watch.stop().await;
        // The command may go on serving the copy: wait a little for it, then leave it be.
        let finished = tokio::time::timeout(Duration::from_secs(5), child.wait()).await.ok().and_then(|r| r.ok());
        let (stdout, stderr) = if finished.is_some() {
            let (o, e) = collect.await.unwrap_or_default();
            (super::command::tail(&o), super::command::tail(&e))
        } else {
            (String::new(), String::new())
        };
        let rto_s = secs(up_at);
        let mut evidence = obj(json!({
            metric::RTO_S: rto_s,
            "rto_restore_s": rto_s,
            "probe": d.probe,
            "probe_interval_ms": d.interval.as_millis() as u64,
            "timeline": drill::timeline(&probes),
            "restore": {"how": "command", "command": run, "exit_code": finished.map(|s| s.code().unwrap_or(-1)), "stdout": stdout, "stderr": stderr},
            "drill_started_at": rfc3339(started_wall),
            "probe_before_restore": before,
            "first_answer_ms": up_at,
            "first_answer_at": rfc3339(started_wall + up_at),
        }));
        let metrics = super::command::metrics(&stdout);
        let measured = restore_point(&stdout)
            .map(|at| secs(started_wall.saturating_sub(at)))
            .or_else(|| metrics.get(metric::RPO_S).and_then(Value::as_f64));
        rpo(measured, d.p.worst_rpo_s.map(|w| (w, "worst_rpo_s".to_string())), &mut evidence);
        evidence.insert("cleanup".into(), cleanup(ctx, &d.p, token, "").await);
        Ok(Outcome::Done { outputs: outputs(&evidence), evidence })
    }
}

fn outputs(evidence: &Map<String, Value>) -> Map<String, Value> {
    let mut o = Map::new();
    for k in [metric::RTO_S, metric::RPO_S] {
        if let Some(v) = evidence.get(k) {
            o.insert(k.into(), v.clone());
        }
    }
    o
}

/// The AWS Backup side of a drill.
struct Backup {
    client: Client,
    aws: Aws,
    vault: String,
    resource: String,
    role: String,
}

async fn backup(ctx: &Ctx, p: &RestoreDrillParams) -> Result<Backup> {
    let aws = aws::config(p.region.as_deref(), &ctx.context).await?;
    let get = |i: &Option<crate::domain::reference::Input<String>>| i.as_ref().map(|v| v.get().cloned()).transpose();
    let resource = match get(&p.resource_arn)? {
        Some(r) => r,
        None => ctx.context.get("backup_resource").cloned().ok_or_else(|| {
            Error::Step("no resource to restore: set `resource_arn` in the step's params or `backup_resource` (the ARN AWS Backup protects) in the spec's context".into())
        })?,
    };
    let role = get(&p.iam_role_arn)?
        .ok_or_else(|| Error::Step("AWS Backup restores need `iam_role_arn`, the role it restores with".into()))?;
    Ok(Backup { client: Client::new(&aws.conf), aws, vault: get(&p.backup_vault)?.unwrap_or_default(), resource, role })
}

/// A recovery point: (ARN, created at, Unix ms).
async fn recovery_point(b: &Backup, p: &RestoreDrillParams) -> Result<(String, Option<u64>)> {
    let out = b
        .client
        .list_recovery_points_by_resource()
        .resource_arn(&b.resource)
        .send()
        .await
        .map_err(|e| b.aws.error(BACKUP, format!("ListRecoveryPointsByResource {}", b.resource), &e))?;
    let ms = |d: Option<&aws_smithy_types::DateTime>| d.and_then(|d| d.to_millis().ok()).map(|m| m.max(0) as u64);
    let points = out.recovery_points();
    if let Some(arn) = &p.recovery_point_arn {
        let created =
            points.iter().find(|r| r.recovery_point_arn() == Some(arn.as_str())).and_then(|r| ms(r.creation_date()));
        return Ok((arn.clone(), created));
    }
    points
        .iter()
        .filter(|r| {
            r.status() == Some(&RecoveryPointStatus::Completed) && r.backup_vault_name().is_none_or(|v| v == b.vault)
        })
        .max_by_key(|r| ms(r.creation_date()))
        .map(|r| (r.recovery_point_arn().unwrap_or_default().to_string(), ms(r.creation_date())))
        .ok_or_else(|| Error::Step(format!("no completed recovery point of {} in vault {}", b.resource, b.vault)))
}

/// The worst data loss the protecting plan allows, and the rule that gives it.
async fn worst_case(b: &Backup, p: &RestoreDrillParams) -> Result<Option<(f64, String)>> {
    if let Some(w) = p.worst_rpo_s {
        return Ok(Some((w, "worst_rpo_s".into())));
    }
    let Some(plan_id) = p.backup_plan_id.as_ref().map(|i| i.get().cloned()).transpose()? else { return Ok(None) };
    let out = b
        .client
        .get_backup_plan()
        .backup_plan_id(&plan_id)
        .send()
        .await
        .map_err(|e| b.aws.error(BACKUP, format!("GetBackupPlan {plan_id}"), &e))?;
    let mut best: Option<(f64, String)> = None;
    for r in out.backup_plan().map(|p| p.rules()).unwrap_or_default() {
        let this = if r.enable_continuous_backup() == Some(true) {
            Some((CONTINUOUS_RPO_S, format!("plan {plan_id} rule {}: continuous backup", r.rule_name())))
        } else {
            r.schedule_expression().and_then(|expr| {
                let gap = drill::schedule_gap_s(expr)?;
                let window = r.start_window_minutes().unwrap_or(0) as f64 * 60.0;
                Some((
                    gap + window,
                    format!(
                        "plan {plan_id} rule {}: {expr}, start window {} min",
                        r.rule_name(),
                        fmt_num(window / 60.0)
                    ),
                ))
            })
        };
        if let Some(t) = this {
            if best.as_ref().is_none_or(|b| t.0 < b.0) {
                best = Some(t);
            }
        }
    }
    Ok(best)
}

fn waiting(ctx: &Ctx, handle: Value, polls: u64, note: String) -> Outcome {
    let backoff = (30_000u64 << polls.min(5)).min(600_000);
    Outcome::Wait { next_poll_at: ctx.clock.now_ms() + backoff, note, handle }
}

impl RestoreDrill {
    /// Start the restore job (idempotent by the token). `first`: this is the step's submit, not a
    /// reconcile after a crash (when the copy may well be answering by now).
    async fn start_backup(&self, ctx: &Ctx, d: &Plan, token: &str, first: bool) -> Result<Outcome> {
        let before = if first { nothing_answers_yet(d).await? } else { Value::Null };
        let b = backup(ctx, &d.p).await?;
        let (point, created) = recovery_point(&b, &d.p).await?;
        let worst = worst_case(&b, &d.p).await?;
        let started = ctx.clock.now_ms();
        let out = b
            .client
            .start_restore_job()
            .recovery_point_arn(&point)
            .set_metadata(Some(d.p.restore_metadata.clone().into_iter().collect()))
            .iam_role_arn(&b.role)
            .idempotency_token(aws_token(token))
            .send()
            .await
            .map_err(|e| b.aws.error(BACKUP, format!("StartRestoreJob {point}"), &e))?;
        let job = out.restore_job_id().unwrap_or_default().to_string();
        let handle = json!({
            "job": job, "recovery_point": point, "recovery_point_created_ms": created,
            "worst": worst, "drill_started_ms": started, "polls": 0, "probe_before_restore": before,
        });
        self.check_backup(ctx, d, &b, handle, true).await
    }

    /// Look at the restore job: waiting while it runs; probed and measured once it completed.
    async fn check_backup(&self, ctx: &Ctx, d: &Plan, b: &Backup, handle: Value, first: bool) -> Result<Outcome> {
        let job = handle["job"].as_str().unwrap_or_default().to_string();
        let polls = handle["polls"].as_u64().unwrap_or(0);
        // The first look waits briefly in-process; after that each `flow run` looks once.
        let tries = if first { 5 } else { 1 };
        for i in 0..tries {
            let j = b
                .client
                .describe_restore_job()
                .restore_job_id(&job)
                .send()
                .await
                .map_err(|e| b.aws.error(BACKUP, format!("DescribeRestoreJob {job}"), &e))?;
            match j.status() {
                Some(RestoreJobStatus::Completed) => return self.measure_backup(ctx, d, &handle, &j).await,
                Some(RestoreJobStatus::Aborted) | Some(RestoreJobStatus::Failed) => {
                    return Err(Error::Step(format!(
                        "restore job {job} {}: {}",
                        j.status().map(|s| s.as_str()).unwrap_or_default(),
                        j.status_message().unwrap_or("AWS Backup gave no reason")
                    )))
                }
                status => {
                    let started = handle["drill_started_ms"].as_u64().unwrap_or(0);
                    if ctx.clock.now_ms().saturating_sub(started) > d.timeout.as_millis() as u64 {
                        return Err(Error::Step(format!(
                            "restore job {job} did not complete within {} s",
                            d.timeout.as_secs()
                        )));
                    }
                    if i + 1 == tries {
                        let mut h = handle.clone();
                        h["polls"] = json!(polls + 1);
                        let note = format!(
                            "restore job {job} of {} is {}{}",
                            handle["recovery_point"].as_str().unwrap_or_default(),
                            status.map(|s| s.as_str()).unwrap_or("PENDING"),
                            j.percent_done().map(|p| format!(" ({p} done)")).unwrap_or_default()
                        );
                        return Ok(waiting(ctx, h, polls, note));
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        unreachable!("the loop returns on its last try")
    }

    async fn measure_backup(
        &self,
        ctx: &Ctx,
        d: &Plan,
        handle: &Value,
        j: &aws_sdk_backup::operation::describe_restore_job::DescribeRestoreJobOutput,
    ) -> Result<Outcome> {
        let ms = |t: Option<&aws_smithy_types::DateTime>| t.and_then(|d| d.to_millis().ok()).map(|m| m.max(0) as u64);
        let restore_s = match (ms(j.creation_date()), ms(j.completion_date())) {
            (Some(a), Some(b)) => secs(b.saturating_sub(a)),
            _ => 0.0,
        };
        let probing_started = ctx.clock.now_ms();
        let watch = Watch::start(&d.probe, d.interval, d.probe_timeout)?;
        let limit = d.timeout.as_millis() as u64;
        let up_at = tokio::select! {
            at = watch.first_up_after(0, d.interval.min(Duration::from_millis(50))) => Some(at),
            _ = tokio::time::sleep(Duration::from_millis(limit)) => None,
        };
        let (probes, _) = watch.stop().await;
        let Some(up_at) = up_at else {
            return Err(Error::Step(format!(
                "the restored copy at {} did not answer within {} s",
                d.probe,
                d.timeout.as_secs()
            )));
        };
        let probe_s = secs(up_at);
        let rto_s = ((restore_s + probe_s) * 1000.0).round() / 1000.0;
        let restored = j.created_resource_arn().unwrap_or_default().to_string();
        let point_ms = handle["recovery_point_created_ms"].as_u64().or_else(|| ms(j.recovery_point_creation_date()));
        let started = handle["drill_started_ms"].as_u64().unwrap_or(0);
        // Both times by AWS's clock when it gives them: the restore's start against the point's.
        let measured = point_ms.map(|p| secs(ms(j.creation_date()).unwrap_or(started).saturating_sub(p)));
        let worst: Option<(f64, String)> = serde_json::from_value(handle["worst"].clone()).ok().flatten();
        let mut evidence = obj(json!({
            metric::RTO_S: rto_s,
            "rto_restore_s": restore_s,
            "rto_probe_s": probe_s,
            "probe": d.probe,
            "probe_interval_ms": d.interval.as_millis() as u64,
            "timeline": drill::timeline(&probes),
            "restore": {
                "how": "aws_backup", "job": handle["job"], "recovery_point": handle["recovery_point"],
                "recovery_point_created_at": point_ms.map(rfc3339), "created_resource": restored,
            },
            "drill_started_at": rfc3339(started),
            "probe_before_restore": handle["probe_before_restore"],
            "first_answer_at": rfc3339(probing_started + up_at),
        }));
        rpo(measured, worst, &mut evidence);
        evidence.insert("cleanup".into(), cleanup(ctx, &d.p, "", &restored).await);
        Ok(Outcome::Done { outputs: outputs(&evidence), evidence })
    }
}

#[async_trait]
impl Executor for RestoreDrill {
    async fn preview(&self, ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview> {
        let d = plan(ctx, params)?;
        let mut a = match d.p.mode().map_err(|e| Error::Params(e.to_string()))? {
            "command" => format!(
                "restore by running:\n  $ {}\n  worst-case RPO: {}\n",
                d.p.restore.clone().unwrap_or_default(),
                d.p.worst_rpo_s
                    .map(|w| format!("{} s (worst_rpo_s)", fmt_num(w)))
                    .unwrap_or_else(|| "not given".into())
            ),
            _ => {
                let b = backup(ctx, &d.p).await?;
                let (point, created) = recovery_point(&b, &d.p).await?;
                let worst = worst_case(&b, &d.p).await?;
                let mut meta: Vec<String> = d.p.restore_metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
                meta.sort();
                format!(
                    "restore with AWS Backup in {}:\n  recovery point: {point}{}\n  of: {} (vault {})\n  into: {}\n  role: {}\n  worst-case RPO: {}\n",
                    b.aws.region,
                    created.map(|c| format!(" (taken {})", rfc3339(c))).unwrap_or_default(),
                    b.resource,
                    b.vault,
                    if meta.is_empty() { "(no restore metadata)".into() } else { meta.join(", ") },
                    b.role,
                    worst.map(|(s, from)| format!("{} s ({from})", fmt_num(s))).unwrap_or_else(|| "unknown (no plan given)".into())
                )
            }
        };
        a.push_str(&format!(
            "then probe the restored copy at {} every {} ms (each waits {} ms for an answer), up to {} s\n",
            d.probe,
            d.interval.as_millis(),
            d.probe_timeout.as_millis(),
            d.timeout.as_secs()
        ));
        if d.p.allow_probe_up_before {
            a.push_str("  the probe may answer before the restore starts (allow_probe_up_before)\n");
        } else {
            a.push_str(
                "  first checks that the probe does not answer yet: the copy does not exist before the restore\n",
            );
        }
        a.push_str(&match &d.p.cleanup {
            Some(c) => format!("then delete the scratch copy:\n  $ {c}\n"),
            None => "the scratch copy is left in place (no cleanup given)\n".into(),
        });
        Ok(Preview::Approve(a))
    }

    async fn submit(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Outcome> {
        let d = plan(ctx, params)?;
        match d.p.mode().map_err(|e| Error::Params(e.to_string()))? {
            "command" => self.by_command(ctx, &d, token).await,
            _ => self.start_backup(ctx, &d, token, true).await,
        }
    }

    async fn poll(&self, ctx: &Ctx, params: &Map<String, Value>, handle: &Value) -> Result<Outcome> {
        let d = plan(ctx, params)?;
        let b = backup(ctx, &d.p).await?;
        self.check_backup(ctx, &d, &b, handle.clone(), false).await
    }

    async fn reconcile(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Option<Outcome>> {
        let d = plan(ctx, params)?;
        match d.p.mode().map_err(|e| Error::Params(e.to_string()))? {
            // A command cannot be looked up: a person decides.
            "command" => Ok(None),
            // StartRestoreJob is idempotent by its token: the job started before the crash is found again.
            _ => self.start_backup(ctx, &d, token, false).await.map(Some),
        }
    }
}
