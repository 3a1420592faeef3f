//! The `flow` command line: parse flags ([`args`]), resolve them once into the app's inputs,
//! call [`crate::app`], render text or JSON from the same struct ([`render`]). Human output on
//! stdout (the run's events on stderr); `--json` prints exactly one JSON document on stdout.
//!
//! Files: here `main`, the shared output helpers and the run's event lines; `dispatch` (each
//! command), `verdicts` (report, drill and loadtest, whose exit codes are verdicts).

pub mod args;
pub mod progress;
pub mod render;

mod dispatch;
mod verdicts;

use std::io::IsTerminal;
use std::sync::Arc;

use clap::Parser;
use serde::Serialize;

use self::args::{Cli, Command, Extract, StateAction};
use crate::app::{self, Env};
use crate::clock::Shifted;
use crate::domain::event::Event;
use crate::domain::human::visible;
use crate::engine::Reporter;
use crate::error::{Error, Result};
use crate::exit;
use dispatch::*;
use verdicts::*;

/// Run the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit::USAGE } else { exit::OK };
        }
    };
    init_tracing();
    // Completions and the man page need no store and no config.
    match &cli.command {
        Command::Completions { shell } => {
            let mut cmd = <args::Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "flow", &mut std::io::stdout());
            return exit::OK;
        }
        Command::Man { dir } => {
            return match man(dir.as_deref()) {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::USAGE
                }
            };
        }
        _ => {}
    }
    if let Some(dir) = &cli.directory {
        if let Err(e) = std::env::set_current_dir(dir) {
            let why =
                if e.kind() == std::io::ErrorKind::NotFound { "no such directory".to_string() } else { e.to_string() };
            eprintln!("error: cannot enter directory {}: {why}", dir.display());
            return exit::USAGE;
        }
    }
    let clock = match Shifted::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", visible(&e.to_string()));
            return exit::USAGE;
        }
    };
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(clock);
    let display = match cli.actor.as_deref().map(str::trim) {
        Some("") => {
            eprintln!("error: --as needs a name");
            return exit::USAGE;
        }
        Some(a) => Some(a.to_string()),
        None => None,
    };
    let config = match crate::config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", visible(&e.to_string()));
            return exit::USAGE;
        }
    };
    let state = match cli.state.clone().filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => config.state.url.clone().unwrap_or_else(|| "state".into()),
    };
    // Only the commands that start a store may create one: a mistyped --state leaves nothing.
    let creates = match &cli.command {
        Command::Plan { .. } | Command::Mcp | Command::State { action: StateAction::Import { .. } } => true,
        // A model's answer is cached in the store.
        Command::Spec { extract, .. } => *extract == Extract::Llm,
        _ => false,
    };
    let backend = match app::state::backend(&state, clock.clone(), creates) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {}", visible(&e.to_string()));
            return e.exit_code();
        }
    };
    // Who acts is who the state's backend can vouch for (the AWS caller on S3), else the OS
    // user; `--as` only adds a display name beside it.
    let actor = backend.identity().unwrap_or_else(app::os_user);
    let env = Env {
        backend,
        actor,
        display,
        policy: config.policy(),
        clock,
        executors: Arc::new(crate::executor::Builtin),
        notifier: None,
        progress: Arc::new(crate::progress::Silent),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::INTERNAL;
        }
    };
    match rt.block_on(dispatch(&env, cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", visible(&e.to_string()));
            e.exit_code()
        }
    }
}

/// The man pages: `flow.1` on stdout, or it and one page per command in `dir`.
fn man(dir: Option<&std::path::Path>) -> Result<()> {
    let cmd = <args::Cli as clap::CommandFactory>::command();
    let render = |c: clap::Command, title: &str| -> Result<Vec<u8>> {
        let mut page = Vec::new();
        clap_mangen::Man::new(c).title(title).render(&mut page).map_err(|e| Error::io("writing the man page", e))?;
        Ok(page)
    };
    let Some(dir) = dir else {
        let page = render(cmd, "flow")?;
        return std::io::Write::write_all(&mut std::io::stdout(), &page)
            .map_err(|e| Error::io("writing the man page", e));
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let write = |name: &str, page: Vec<u8>| {
        let path = dir.join(name);
        std::fs::write(&path, page).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    };
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("flow-{}", sub.get_name());
        write(&format!("{name}.1"), render(sub.clone(), &name)?)?;
    }
    write("flow.1", render(cmd, "flow")?)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOW_LOG").unwrap_or_else(|_| {
        // The AWS SDK's own warnings (no IMDS off EC2, a profile it skipped) are noise for a
        // person; what failed reaches them as flow's error. So are async-openai's error lines
        // (it logs an error body it cannot read, which flow then reads and reports).
        "warn,aws_config=error,aws_smithy_runtime=error,rmcp=error,async_openai=off".into()
    });
    let ansi = std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// Text for a person on stdout, with every character that would act on the terminal instead
/// of showing written out ([`visible`]).
fn out(text: &str) {
    print!("{}", visible(text));
}

/// One JSON document on stdout, written as it is serialized (a long run's report is large).
fn print_json(v: &impl Serialize) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = serde_json::to_writer_pretty(&mut out, v);
    let _ = writeln!(out);
    let _ = out.flush();
}

/// The run's events, one line each on stderr (nothing with `--json`), above the bars.
struct Lines {
    quiet: bool,
    bars: Arc<progress::Bars>,
}

impl Reporter for Lines {
    fn event(&self, e: &Event) {
        if !self.quiet {
            self.bars.line(&visible(&render::event(e)));
        }
    }
}

/// An env whose long work shows bars on a terminal (unless `quiet`).
fn with_bars(env: &Env, quiet: bool) -> (Env, Arc<progress::Bars>) {
    let bars = Arc::new(progress::Bars::new(quiet));
    let mut env = env.clone();
    env.progress = bars.clone();
    (env, bars)
}

/// Work that waits on a model, stopped by Ctrl-C. The work records to the state store only
/// between model calls (never across an await), so dropping it at Ctrl-C leaves no trace of the
/// call under way: no exchange, no cache entry, no plan version.
async fn or_cancel<T>(work: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::select! {
        r = work => Ok(r),
        _ = tokio::signal::ctrl_c() => Err(Error::Cancelled(
            "stopped while waiting for the model; nothing of this call was recorded".into(),
        )),
    }
}
