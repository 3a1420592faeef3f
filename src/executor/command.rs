//! `command`: a shell command, always gated. Exit code, duration and the tails of stdout and
//! stderr are evidence; a stdout line `::metric NAME=VALUE` adds a numeric output and evidence
//! metric (how a custom drill script reports `rto_s=3600`).
//!
//! The command gets `FLOW_RUNBOOK`, `FLOW_STEP` and `FLOW_TOKEN` (the idempotency token) in its
//! environment. A command caught mid-run by a crash cannot be reconciled: flow cannot know
//! whether it ran, so it is handed to a person.
//!
//! **Supervised**: each command runs in its own process group, and dies with flow (the kernel
//! sends it SIGKILL when flow's thread that started it goes, `kill -9` included). What it started
//! in turn may outlive it: its group and start time are kept in a file under the temporary
//! directory, and before a step's command runs again, or when a crash is reconciled, a group still
//! running from before is waited for (up to [`ORPHAN_WAIT`]), then stopped, and the person is
//! told: a second copy never starts beside the first.

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
/// `FLOW_TOKEN`), no stdin, output piped; in its own process group, killed when flow dies.
pub(crate) fn shell(ctx: &Ctx, run: &str, token: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(run)
        .env("FLOW_RUNBOOK", &ctx.runbook)
        .env("FLOW_STEP", &ctx.step)
        .env("FLOW_TOKEN", token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: between fork and exec only an async-signal-safe system call (prctl) is made.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    cmd
}

/// How long a command left running by a flow that was killed is waited for before it is stopped.
pub const ORPHAN_WAIT: Duration = Duration::from_secs(30);

/// A started command: its process group and when it started (clock ticks since boot, as
/// `/proc` gives them, so a reused process id is not mistaken for it).
#[derive(serde::Serialize, serde::Deserialize)]
struct Started {
    pgid: i32,
    since: u64,
    token: String,
}

fn record_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("flow-commands")
}

fn record_path(ctx: &Ctx) -> std::path::PathBuf {
    let key = crate::domain::digest::of_bytes(format!("{}\0{}", ctx.runbook, ctx.step).as_bytes());
    record_dir().join(format!("{}.json", crate::domain::digest::short(&key)))
}

/// When process `pid` started (field 22 of `/proc/PID/stat`), and its process group.
fn proc_stat(pid: i32) -> Option<(u64, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields count from after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(19)?.parse().ok()?, f.get(2)?.parse().ok()?))
}

/// The processes still alive in group `pgid` that started no earlier than `since`.
fn alive_in_group(pgid: i32, since: u64) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| proc_stat(*pid).is_some_and(|(start, group)| group == pgid && start >= since))
        .collect()
}

/// Note the command a step started (removed when it ends).
fn remember(ctx: &Ctx, child: &tokio::process::Child, token: &str) {
    let Some(pid) = child.id().map(|p| p as i32) else { return };
    let Some((since, _)) = proc_stat(pid) else { return };
    let _ = std::fs::create_dir_all(record_dir());
    if let Ok(text) = serde_json::to_vec(&Started { pgid: pid, since, token: token.into() }) {
        let _ = std::fs::write(record_path(ctx), text);
    }
}

fn forget(ctx: &Ctx) {
    let _ = std::fs::remove_file(record_path(ctx));
}

/// A command this step started before (in a flow that was killed) that is still running: wait
/// for it, stop it after [`ORPHAN_WAIT`], and say what happened. `None`: nothing was running.
async fn settle_orphan(ctx: &Ctx) -> Option<String> {
    let rec: Started = serde_json::from_slice(&std::fs::read(record_path(ctx)).ok()?).ok()?;
    if alive_in_group(rec.pgid, rec.since).is_empty() {
        forget(ctx);
        return None;
    }
    let start = Instant::now();
    while start.elapsed() < ORPHAN_WAIT {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if alive_in_group(rec.pgid, rec.since).is_empty() {
            forget(ctx);
            return Some(format!(
                "the command started before (token {}) was still running, as process group {}; flow waited {:.1} s for it to end",
                rec.token,
                rec.pgid,
                start.elapsed().as_secs_f64()
            ));
        }
    }
    let group = rustix::process::Pid::from_raw(rec.pgid);
    if let Some(g) = group {
        let _ = rustix::process::kill_process_group(g, rustix::process::Signal::TERM);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = rustix::process::kill_process_group(g, rustix::process::Signal::KILL);
    }
    forget(ctx);
    Some(format!(
        "the command started before (token {}) was still running after {} s, as process group {}: flow stopped it",
        rec.token,
        ORPHAN_WAIT.as_secs(),
        rec.pgid
    ))
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

/// Is this a metric name flow records (`rto_s`, `latency_p99_ms`): lowercase letters, digits and
/// `_`, starting with a letter, at most 64?
fn metric_name(k: &str) -> bool {
    k.len() <= 64
        && k.starts_with(|c: char| c.is_ascii_lowercase())
        && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `::metric name=value` lines (a name that is not one, or a value that is not a finite
/// number, is not a metric).
pub fn metrics(stdout: &str) -> Map<String, Value> {
    let mut m = Map::new();
    for line in stdout.lines() {
        if let Some(rest) = line.trim().strip_prefix("::metric ") {
            if let Some((k, v)) = rest.split_once('=').filter(|(k, _)| metric_name(k.trim())) {
                if let Ok(n) =
                    v.trim().parse::<f64>().map_err(|_| ()).and_then(|n| if n.is_finite() { Ok(n) } else { Err(()) })
                {
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
        // Never beside an earlier copy of itself that is still running.
        let before = settle_orphan(ctx).await;
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
        remember(ctx, &child, token);
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
        forget(ctx);
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
        if let Some(b) = before {
            evidence.insert("before".into(), json!(b));
        }
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

    /// After a crash mid-command flow cannot tell what it did, so a person decides; but a
    /// command still running from that flow is waited for (or stopped) first, and named.
    async fn reconcile(&self, ctx: &Ctx, _params: &Map<String, Value>, _token: &str) -> Result<Option<Outcome>> {
        match settle_orphan(ctx).await {
            None => Ok(None),
            Some(what) => Err(Error::Interrupted(what)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metric_lines() {
        let m = super::metrics(
            "hello\n::metric rto_s=3600\n::metric bad=x\n  ::metric rpo_s = 120.5\n::metric <script>x=1\n::metric inf_s=inf\n",
        );
        assert_eq!(serde_json::Value::Object(m), serde_json::json!({"rto_s": 3600, "rpo_s": 120.5}));
    }
}
