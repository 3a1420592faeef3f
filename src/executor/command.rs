//! `command`: a shell command, always gated. Exit code, duration and the tails of stdout and
//! stderr are evidence; a stdout line `::metric NAME=VALUE` adds a numeric output and evidence
//! metric (how a custom drill script reports `rto_s=3600`).
//!
//! The command gets `FLOW_RUNBOOK`, `FLOW_STEP` and `FLOW_TOKEN` (the idempotency token) in its
//! environment. A command caught mid-run by a crash cannot be reconciled: flow cannot know
//! whether it ran, so it is handed to a person.

use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use tokio::io::AsyncReadExt;

use super::{typed, Ctx, Error, Executor, Outcome, Preview, Result};
use crate::domain::catalogue::CommandParams;

pub struct Command;

const TAIL: usize = 16 * 1024;

pub(crate) fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(TAIL);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// `sh -c RUN` with the step's identity in its environment (`FLOW_RUNBOOK`, `FLOW_STEP`,
/// `FLOW_TOKEN`), no stdin, output piped.
pub(crate) fn shell(ctx: &Ctx, run: &str, token: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(run)
        .env("FLOW_RUNBOOK", &ctx.runbook)
        .env("FLOW_STEP", &ctx.step)
        .env("FLOW_TOKEN", token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Run a command to its end, with `env` added; its exit code and the tails of its output, as
/// evidence (a command that cannot start says why).
pub(crate) async fn run_to_end(ctx: &Ctx, run: &str, token: &str, env: &[(&str, &str)]) -> Value {
    let mut cmd = shell(ctx, run, token);
    cmd.envs(env.iter().copied()).kill_on_drop(true);
    match cmd.output().await {
        Ok(o) => json!({
            "command": run,
            "exit_code": o.status.code().unwrap_or(-1),
            "stdout": tail(&o.stdout),
            "stderr": tail(&o.stderr),
        }),
        Err(e) => json!({"command": run, "error": format!("cannot start `sh -c {run}`: {e}")}),
    }
}

/// `::metric name=value` lines.
pub fn metrics(stdout: &str) -> Map<String, Value> {
    let mut m = Map::new();
    for line in stdout.lines() {
        if let Some(rest) = line.trim().strip_prefix("::metric ") {
            if let Some((k, v)) = rest.split_once('=') {
                if let Ok(n) = v.trim().parse::<f64>() {
                    let n = if n.fract() == 0.0 && n.abs() < 9e15 { json!(n as i64) } else { json!(n) };
                    m.insert(k.trim().to_string(), n);
                }
            }
        }
    }
    m
}

#[async_trait]
impl Executor for Command {
    async fn preview(&self, _ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview> {
        let p: CommandParams = typed(params)?;
        let mut a = format!("run in {}:\n  $ {}\n", p.cwd.as_deref().unwrap_or("."), p.run);
        for (k, v) in &p.env {
            a.push_str(&format!("  env {k}={v}\n"));
        }
        if let Some(t) = p.timeout_s {
            a.push_str(&format!("  timeout {t} s\n"));
        }
        Ok(Preview::Approve(a))
    }

    async fn submit(&self, ctx: &Ctx, params: &Map<String, Value>, token: &str) -> Result<Outcome> {
        let p: CommandParams = typed(params)?;
        let mut cmd = shell(ctx, &p.run, token);
        cmd.envs(&p.env).kill_on_drop(true);
        if let Some(cwd) = &p.cwd {
            cmd.current_dir(cwd);
        }
        let start = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return Err(Error::Step(format!("cannot start `sh -c {}`: {e}", p.run))),
        };
        let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(Error::Step("the command's output pipes were not set up".into()));
        };
        let io = async {
            let (mut o, mut e) = (Vec::new(), Vec::new());
            let _ = tokio::join!(out.read_to_end(&mut o), err.read_to_end(&mut e));
            let status = child.wait().await;
            (status, o, e)
        };
        let waited = match p.timeout_s {
            Some(t) => tokio::time::timeout(Duration::from_secs(t), io).await.map_err(|_| t),
            None => Ok(io.await),
        };
        let (status, stdout, stderr) = match waited {
            Ok(r) => r,
            Err(t) => return Err(Error::Step(format!("command did not finish within {t} s and was stopped"))),
        };
        let code = match status {
            Ok(s) => s.code().unwrap_or(-1),
            Err(e) => return Err(Error::Step(format!("waiting for the command: {e}"))),
        };
        let (stdout, stderr) = (tail(&stdout), tail(&stderr));
        let metrics = metrics(&stdout);
        let mut evidence = metrics.clone();
        evidence.insert("exit_code".into(), json!(code));
        evidence.insert("duration_ms".into(), json!(start.elapsed().as_millis() as u64));
        evidence.insert("stdout".into(), json!(stdout));
        evidence.insert("stderr".into(), json!(stderr));
        if code != p.expect_exit {
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
            return Err(Error::Step(format!(
                "command exited with {code} (expected {}){}",
                p.expect_exit,
                if last.is_empty() { String::new() } else { format!(": {last}") }
            )));
        }
        let mut outputs = metrics;
        outputs.insert("exit_code".into(), json!(code));
        Ok(Outcome::Done { outputs, evidence })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metric_lines() {
        let m = super::metrics("hello\n::metric rto_s=3600\n::metric bad=x\n  ::metric rpo_s = 120.5\n");
        assert_eq!(serde_json::Value::Object(m), serde_json::json!({"rto_s": 3600, "rpo_s": 120.5}));
    }
}
