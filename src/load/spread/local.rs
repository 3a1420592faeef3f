//! The `local` runner: workers as processes on this machine (`flow load-worker JOB`).

use std::path::PathBuf;

use async_trait::async_trait;

use super::{Ended, Runner};
use crate::load::Error;

pub struct Local {
    exe: PathBuf,
    /// Where each worker's output goes (`worker-K.log`).
    logs: PathBuf,
    children: Vec<(u32, Option<tokio::process::Child>)>,
}

impl Local {
    pub fn new(logs: PathBuf) -> Result<Local, Error> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::Runner(format!("finding flow's own program to start workers: {e}")))?;
        std::fs::create_dir_all(&logs).map_err(|e| Error::Runner(format!("creating {}: {e}", logs.display())))?;
        Ok(Local { exe, logs, children: vec![] })
    }

    fn log(&self, k: usize) -> PathBuf {
        self.logs.join(format!("worker-{k}.log"))
    }
}

#[async_trait]
impl Runner for Local {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn start(&mut self, jobs: &[String], _stop_by_ms: u64) -> Result<(), Error> {
        for (k, job) in jobs.iter().enumerate() {
            let unlogged = |e: std::io::Error| Error::Runner(format!("creating worker {k}'s log: {e}"));
            let log = std::fs::File::create(self.log(k)).map_err(unlogged)?;
            let mut cmd = tokio::process::Command::new(&self.exe);
            cmd.arg("load-worker")
                .arg(job)
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().map_err(|e| Error::Runner(e.to_string()))?)
                .stderr(log)
                .kill_on_drop(true);
            // SAFETY: between fork and exec only an async-signal-safe system call (prctl) is
            // made: the worker dies with its coordinator, even one killed with -9.
            unsafe {
                cmd.pre_exec(|| {
                    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                        .map_err(std::io::Error::from)
                });
            }
            let child =
                cmd.spawn().map_err(|e| Error::Runner(format!("starting worker {k} ({}): {e}", self.exe.display())))?;
            self.children.push((child.id().unwrap_or(0), Some(child)));
        }
        Ok(())
    }

    fn which(&self, k: usize) -> String {
        format!("pid {}", self.children.get(k).map_or(0, |c| c.0))
    }

    async fn poll(&mut self) -> Vec<(usize, Ended)> {
        let mut ended = Vec::new();
        for k in 0..self.children.len() {
            let status = match self.children[k].1.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(st))) => st,
                _ => continue,
            };
            self.children[k].1 = None;
            if status.success() {
                ended.push((k, Ended::Done));
                continue;
            }
            let log = std::fs::read_to_string(self.log(k)).unwrap_or_default();
            let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
            let why = match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
                (_, Some(sig)) => format!("was killed by signal {sig}"),
                (Some(c), _) if last.is_empty() => format!("exited with code {c}"),
                (Some(c), _) => format!("exited with code {c}: {last}"),
                _ => "ended abnormally".to_string(),
            };
            ended.push((k, Ended::Failed(why)));
        }
        ended
    }

    async fn stop(&mut self) {
        for (_, child) in &mut self.children {
            if let Some(c) = child.as_mut() {
                let _ = c.kill().await;
            }
            *child = None;
        }
    }
}
