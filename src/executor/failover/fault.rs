//! The failover drill's AWS side: an FIS template shown and dry-run, an experiment's status
//! and the one a token started, a zonal shift found and cancelled, and the alarms that fired
//! during the fault.

use crate::aws::{ARC_ZONAL_SHIFT, FIS};
use crate::domain::requirement::fmt_num;
use crate::executor::{Ctx, Error, Result};
use aws_sdk_fis::types::{ActionsMode, ExperimentStatus, StartExperimentExperimentOptionsInput};
use serde_json::{json, Value};
use std::time::Duration;

use super::*;

pub(crate) async fn fis_template_text(c: &Clients, id: &str) -> Result<(String, Vec<String>)> {
    let out = c
        .fis()
        .get_experiment_template()
        .id(id)
        .send()
        .await
        .map_err(|e| c.aws.error(FIS, format!("GetExperimentTemplate {id}"), &e))?;
    let t = out.experiment_template.ok_or_else(|| Error::Step(format!("FIS returned no experiment template {id}")))?;
    let mut lines = vec![format!("  template: {id}{}", t.description().map(|d| format!(" ({d})")).unwrap_or_default())];
    let mut actions: Vec<_> = t.actions().map(|a| a.iter().collect::<Vec<_>>()).unwrap_or_default();
    actions.sort_by(|a, b| a.0.cmp(b.0));
    for (name, a) in actions {
        let mut params: Vec<String> =
            a.parameters().map(|p| p.iter().map(|(k, v)| format!("{k}={v}")).collect()).unwrap_or_default();
        params.sort();
        lines.push(format!("  action {name}: {} {}", a.action_id().unwrap_or_default(), params.join(" ")));
    }
    let mut targets: Vec<_> = t.targets().map(|a| a.iter().collect::<Vec<_>>()).unwrap_or_default();
    targets.sort_by(|a, b| a.0.cmp(b.0));
    for (name, tg) in targets {
        let mut tags: Vec<String> =
            tg.resource_tags().map(|t| t.iter().map(|(k, v)| format!("{k}={v}")).collect()).unwrap_or_default();
        tags.sort();
        let filters: Vec<String> =
            tg.filters().iter().map(|f| format!("{}={}", f.path().unwrap_or_default(), f.values().join("|"))).collect();
        lines.push(format!(
            "  target {name}: {} {} tags [{}] filters [{}] {}",
            tg.resource_type().unwrap_or_default(),
            tg.selection_mode().unwrap_or_default(),
            tags.join(", "),
            filters.join(", "),
            tg.resource_arns().join(", ")
        ));
    }
    let stops: Vec<String> = t
        .stop_conditions()
        .iter()
        .map(|s| format!("{} {}", s.source().unwrap_or_default(), s.value().unwrap_or_default()))
        .collect();
    lines.push(format!("  stop conditions: {}", if stops.is_empty() { "none".into() } else { stops.join(", ") }));
    Ok((t.role_arn().unwrap_or_default().to_string(), lines))
}

/// Resolve the template's targets without acting: an experiment in `skip-all` mode.
pub(crate) async fn fis_dry_run(c: &Clients, template: &str, step: &str, now_ms: u64) -> Result<Vec<String>> {
    let token = aws_token(&format!("{step}-dry-run-{now_ms}"));
    let started = c
        .fis()
        .start_experiment()
        .experiment_template_id(template)
        .client_token(token)
        .experiment_options(StartExperimentExperimentOptionsInput::builder().actions_mode(ActionsMode::SkipAll).build())
        .tags("flow-step", step)
        .tags("flow-purpose", "dry-run")
        .send()
        .await
        .map_err(|e| c.aws.error(FIS, format!("StartExperiment {template} (skip-all)"), &e))?;
    let id = started.experiment.and_then(|e| e.id).unwrap_or_default();
    // Targets resolve while the experiment initiates; wait for it to settle (briefly).
    for _ in 0..30 {
        let st = fis_status(c, &id).await?;
        if !matches!(st, ExperimentStatus::Pending | ExperimentStatus::Initiating) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut resolved = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = c
            .fis()
            .list_experiment_resolved_targets()
            .experiment_id(&id)
            .set_next_token(next.clone())
            .send()
            .await
            .map_err(|e| c.aws.error(FIS, format!("ListExperimentResolvedTargets {id}"), &e))?;
        for t in out.resolved_targets() {
            let mut info: Vec<String> =
                t.target_information().map(|i| i.values().cloned().collect()).unwrap_or_default();
            info.sort();
            resolved.push(format!(
                "{} {} {}",
                t.target_name().unwrap_or_default(),
                t.resource_type().unwrap_or_default(),
                info.join(" ")
            ));
        }
        next = out.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    resolved.sort();
    Ok(resolved)
}

pub(crate) async fn fis_status(c: &Clients, id: &str) -> Result<ExperimentStatus> {
    let out = c
        .fis()
        .get_experiment()
        .id(id)
        .send()
        .await
        .map_err(|e| c.aws.error(FIS, format!("GetExperiment {id}"), &e))?;
    Ok(out.experiment.and_then(|e| e.state).and_then(|s| s.status).unwrap_or(ExperimentStatus::Pending))
}

pub(crate) fn fis_terminal(s: &ExperimentStatus) -> bool {
    matches!(
        s,
        ExperimentStatus::Completed
            | ExperimentStatus::Stopped
            | ExperimentStatus::Failed
            | ExperimentStatus::Cancelled
    )
}

/// The experiment this drill started with `token`, if any: (id, status).
pub(crate) async fn fis_started(
    c: &Clients,
    template: &str,
    token: &str,
) -> Result<Option<(String, ExperimentStatus)>> {
    let mut next: Option<String> = None;
    loop {
        let out = c
            .fis()
            .list_experiments()
            .experiment_template_id(template)
            .set_next_token(next.clone())
            .send()
            .await
            .map_err(|e| c.aws.error(FIS, format!("ListExperiments {template}"), &e))?;
        for e in out.experiments() {
            if e.tags().and_then(|t| t.get("flow-token")).map(String::as_str) == Some(token) {
                let status = e.state().and_then(|s| s.status().cloned()).unwrap_or(ExperimentStatus::Pending);
                return Ok(Some((e.id().unwrap_or_default().to_string(), status)));
            }
        }
        next = out.next_token().map(str::to_string);
        if next.is_none() {
            return Ok(None);
        }
    }
}

/// The zonal shift this drill started with `token`, whatever its status now: (id, active).
pub(crate) async fn shift_started(c: &Clients, resource: &str, token: &str) -> Result<Option<(String, bool)>> {
    use aws_sdk_arczonalshift::types::ZonalShiftStatus;
    for status in [ZonalShiftStatus::Active, ZonalShiftStatus::Expired, ZonalShiftStatus::Canceled] {
        let active = status == ZonalShiftStatus::Active;
        let out = c
            .arc()
            .list_zonal_shifts()
            .resource_identifier(resource)
            .status(status)
            .send()
            .await
            .map_err(|e| c.aws.error(ARC_ZONAL_SHIFT, format!("ListZonalShifts {resource}"), &e))?;
        if let Some(s) = out.items().iter().find(|s| s.comment().contains(token)) {
            return Ok(Some((s.zonal_shift_id().to_string(), active)));
        }
    }
    Ok(None)
}

pub(crate) async fn cancel_shift(c: &Clients, id: &str) -> Result<()> {
    c.arc()
        .cancel_zonal_shift()
        .zonal_shift_id(id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| c.aws.error(ARC_ZONAL_SHIFT, format!("CancelZonalShift {id}"), &e).into())
}

pub(crate) fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The alarms of `prefix` (and the FIS template's stop-condition alarms) from the fault to now:
/// which fired, when, whether they came back to OK; and what that says about the drill. A
/// failure to read them is recorded as such, never as quiet alarms.
pub(crate) async fn alarms_during(
    ctx: &Ctx,
    d: &Plan,
    clients: Option<&Clients>,
    prefix: &str,
    template: Option<&str>,
    from_ms: u64,
    downtime_s: f64,
) -> Value {
    let read = async {
        let owned;
        let c = match clients {
            Some(c) => c,
            None => {
                owned = Clients::new(ctx, &d.p).await?;
                &owned
            }
        };
        let to_ms = wall_ms();
        let (mut fired, mut quiet) = crate::executor::alarm::history(&c.aws, prefix, from_ms, to_ms).await?;
        let mut stops = Vec::new();
        if let Some(t) = template {
            let out = c
                .fis()
                .get_experiment_template()
                .id(t)
                .send()
                .await
                .map_err(|e| c.aws.error(FIS, format!("GetExperimentTemplate {t}"), &e))?;
            for s in out.experiment_template.map(|t| t.stop_conditions).unwrap_or_default().unwrap_or_default() {
                if let Some(name) = s.value().and_then(|v| v.split_once(":alarm:")).map(|(_, n)| n.to_string()) {
                    stops.push(name);
                }
            }
        }
        for s in &stops {
            let known = fired.iter().any(|f| f["alarm"] == s.as_str()) || quiet.contains(s);
            if !known {
                let (f, q) = crate::executor::alarm::history(&c.aws, s, from_ms, to_ms).await?;
                fired.extend(f.into_iter().filter(|f| f["alarm"] == s.as_str()));
                quiet.extend(q.into_iter().filter(|q| q == s));
            }
        }
        Ok::<_, Error>((fired, quiet, stops))
    };
    match read.await {
        Ok((fired, quiet, stops)) => {
            let mut findings = Vec::new();
            for s in &stops {
                if !fired.iter().any(|f| f["alarm"] == s.as_str()) {
                    findings.push(format!(
                        "the experiment's stop condition, alarm {s}, never fired during the drill: it could not have stopped it"
                    ));
                }
            }
            if downtime_s > 0.0 && fired.is_empty() {
                findings.push(format!("the service was down {} s and no alarm fired", fmt_num(downtime_s)));
            }
            for f in &fired {
                if f["ok_at_s"].is_null() {
                    findings.push(format!(
                        "alarm {} was still in ALARM when the drill ended",
                        f["alarm"].as_str().unwrap_or_default()
                    ));
                }
            }
            json!({"prefix": prefix, "fired": fired, "quiet": quiet, "findings": findings})
        }
        Err(e) => {
            json!({"prefix": prefix, "error": e.to_string(), "findings": [format!("the alarms' history could not be read: {e}")]})
        }
    }
}
