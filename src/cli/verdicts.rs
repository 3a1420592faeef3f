//! The commands that end in a verdict: `flow report`, `flow drill`, `flow loadtest`; their
//! exit codes say the verdict.

use std::sync::Arc;

use super::*;
use crate::app::{self, Env};
use crate::domain::human::visible;
use crate::error::{Error, Result};
use crate::{exit, load};

/// `flow report`: render, then write to the file (and the charts beside it) or print. Without
/// `-o`, HTML and Markdown go to a file named after the runbook (a page of HTML is no use on a
/// terminal), JSON and JUnit to stdout; `-o -` prints any of them.
pub(super) fn report(
    env: &Env,
    rb: Option<&str>,
    format: crate::report::Format,
    output: Option<&std::path::Path>,
) -> Result<i32> {
    use crate::report::Format;
    let r = app::report::report(env, rb)?;
    let write = |path: &std::path::Path, text: &str| {
        std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    };
    let default = match format {
        Format::Md => Some(std::path::PathBuf::from(format!("{}-report.md", r.runbook))),
        Format::Html => Some(std::path::PathBuf::from(format!("{}-report.html", r.runbook))),
        Format::Json | Format::Junit => None,
    };
    let output = match output {
        Some(o) if o == std::path::Path::new("-") => None,
        Some(o) => Some(o.to_path_buf()),
        None => default,
    };
    let graph = match format {
        Format::Md => app::report::graph(env, rb, crate::report::graph::Kind::Mermaid)?,
        _ => String::new(),
    };
    let stem = output
        .as_deref()
        .and_then(|o| o.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "flow-report".into());
    let (text, files) = crate::report::render(&r, format, &graph, &stem);
    let dir = output
        .as_deref()
        .and_then(|o| o.parent())
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    for (name, svg) in &files {
        write(&dir.join(name), svg)?;
    }
    match output {
        Some(path) => {
            write(&path, &text)?;
            let charts = match format {
                Format::Html => format!(", {} charts inline", text.matches("<div class=\"chart\">").count()),
                Format::Md => format!(", {} charts beside it", files.len()),
                Format::Json | Format::Junit => String::new(),
            };
            eprintln!(
                "{}: {} ({} requirements{charts})",
                path.display(),
                visible(&r.decision.headline),
                r.requirements.len()
            );
        }
        None => out(&text),
    }
    Ok(decision_code(&r.decision))
}

/// `flow report --check`'s exit code: 0 GO, 1 NO-GO, 10 UNDECIDED.
pub(super) fn decision_code(d: &crate::domain::verdict::Decision) -> i32 {
    match d.word.as_str() {
        "GO" => exit::OK,
        "UNDECIDED" => exit::WAITING_APPROVAL,
        _ => exit::FAILED,
    }
}

pub(super) async fn drill(env: &Env, d: args::Drill) -> Result<i32> {
    use crate::app::drill as ad;
    use crate::domain::catalogue::StepKind;
    use serde_json::json;
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    let (kind, params, bounds, json) = match d {
        args::Drill::Failover {
            url,
            inject,
            recover,
            interval,
            probe_timeout,
            duration,
            baseline,
            max_downtime,
            rate,
            json,
        } => {
            let params = json!({
                "endpoint": url, "inject": inject, "recover": recover, "probe_interval_ms": ms(interval),
                "probe_timeout_ms": probe_timeout.map(ms), "duration_s": duration.as_secs().max(1),
                "baseline_s": baseline.as_secs(), "max_downtime_s": max_downtime.map(|d| d.as_secs_f64()), "rate": rate,
            });
            let bounds: Vec<(&'static str, f64)> =
                max_downtime.map(|d| (ad::DOWNTIME, d.as_secs_f64())).into_iter().collect();
            (StepKind::FailoverDrill, params, bounds, json)
        }
        args::Drill::Restore {
            restore,
            probe,
            interval,
            probe_timeout,
            allow_probe_up_before,
            timeout,
            cleanup,
            worst_rpo,
            max_rto,
            max_rpo,
            json,
        } => {
            let params = json!({
                "restore": restore, "probe": probe, "probe_interval_ms": ms(interval), "timeout_s": timeout.as_secs().max(1),
                "cleanup": cleanup, "worst_rpo_s": worst_rpo.map(|d| d.as_secs_f64()),
                "probe_timeout_ms": probe_timeout.map(ms), "allow_probe_up_before": allow_probe_up_before,
            });
            let mut bounds: Vec<(&'static str, f64)> = Vec::new();
            bounds.extend(max_rto.map(|d| (ad::RTO, d.as_secs_f64())));
            bounds.extend(max_rpo.map(|d| (ad::RPO, d.as_secs_f64())));
            (StepKind::RestoreDrill, params, bounds, json)
        }
        args::Drill::Alarm { prefix, alarm, region, max_delay, wait, json } => {
            let params = json!({
                "alarm_prefix": prefix, "alarms": if alarm.is_empty() { None } else { Some(alarm) }, "region": region,
                "max_delay_s": max_delay.as_secs_f64(), "wait_s": wait.map(|w| w.as_secs().max(1)),
            });
            (StepKind::AlarmDrill, params, vec![(ad::NOTIFICATION, max_delay.as_secs_f64())], json)
        }
    };
    let mut params = params.as_object().cloned().unwrap_or_default();
    params.retain(|_, v| !v.is_null());
    let (env, _bars) = with_bars(env, json);
    let report = ad::run(&env, kind, params, &bounds).await?;
    if json {
        print_json(&report);
    } else {
        out(&render::drill(&report));
    }
    Ok(if report.passed { exit::OK } else { exit::FAILED })
}

pub(super) async fn loadtest(s: load::Settings, spread: &load::spread::Spread, json: bool) -> Result<i32> {
    let bars = Arc::new(progress::Bars::new(json));
    // With workers, Ctrl-C is the coordinator's: it stops them all, wherever they run.
    let report = app::loadtest::run(s, spread, bars).await?;
    if json {
        print_json(&report);
    } else {
        out(&render::load(&report));
    }
    Ok(if !report.valid {
        exit::INVALID
    } else if !report.passed() {
        exit::FAILED
    } else {
        exit::OK
    })
}
