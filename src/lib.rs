//! `flow`: launch-readiness runbooks.
//!
//! Markdown specs -> requirements with their source lines -> a planner -> a validated task DAG
//! (written to `workflows/`, every version kept in the state store) -> an engine that runs each
//! step and stops at human approval gates -> evidence-backed verdicts.
//!
//! # Layout
//!
//! - [`domain`]: the pure core (spec reading, plan model and validation, the step lifecycle,
//!   the journal's projection, capacity arithmetic, digests, verdicts). No I/O.
//! - [`app`]: what every front end calls (plan, run, status, the operator verbs, log), returning
//!   typed structs.
//! - [`cli`]: the command line over [`app`]: flags, dispatch, text and JSON rendering;
//!   [`mcp`]: the same over the Model Context Protocol, for AI assistants (never approving).
//! - [`engine`]: the run loop, the only layer that acts: intent, effect, outcome.
//! - [`state`]: the state behind every command, as traits; [`state::sled`] and [`state::s3`]
//!   implement them, and [`state::conformance`] is what each must pass.
//! - [`executor`]: one executor per step kind (preview / submit / poll / reconcile), found
//!   through a registry.
//! - [`planner`]: planners; [`planner::builtin`] is the offline default.
//! - [`load`]: the load generator; [`aws`]: AWS clients and errors.
//! - [`report`]: the go/no-go report's model and its renderings (HTML, Markdown, JUnit, JSON);
//!   the DAG as Mermaid or DOT.
//! - [`progress`]: long work's progress, for the CLI's live bars.
//! - [`webhook`]: the notifier the engine tells when gates wait, steps fail, runbooks finish.
//! - [`workflow`], [`config`]: the reviewable TOML workflow files, `flow.toml`.
//! - [`exit`], [`error`], [`clock`]: exit codes, the top-level error, time.

pub mod app;
pub mod aws;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod executor;
pub mod exit;
pub mod load;
pub mod mcp;
pub mod planner;
pub mod progress;
pub mod report;
pub mod state;
pub mod webhook;
pub mod workflow;

/// Every arrow points down: a layer never names a layer above it (tests at the end of a file,
/// after `#[cfg(test)]`, may use anything; so may doc comments).
#[cfg(test)]
mod layers {
    use std::path::Path;

    const FRONT: [&str; 3] = ["app", "cli", "mcp"];

    /// (layer, what it must not name besides the front ends)
    const RULES: [(&str, &[&str]); 8] = [
        (
            "domain",
            &[
                "engine", "executor", "planner", "load", "state", "report", "aws", "webhook", "workflow", "config",
                "progress",
            ],
        ),
        ("aws", &["engine", "executor", "planner", "load", "state", "report"]),
        ("state", &["engine", "executor", "planner", "load", "report"]),
        ("load", &["engine", "executor", "planner", "state", "report"]),
        ("report", &["engine", "executor", "planner", "state"]),
        ("planner", &["engine", "executor", "state", "report"]),
        ("executor", &["engine", "state", "report"]),
        ("engine", &["report"]),
    ];

    fn files(p: &Path, out: &mut Vec<std::path::PathBuf>) {
        if p.is_dir() {
            for e in std::fs::read_dir(p).unwrap() {
                files(&e.unwrap().path(), out);
            }
        } else if p.is_file() && p.extension().is_some_and(|e| e == "rs") {
            out.push(p.to_path_buf());
        }
    }

    #[test]
    fn no_layer_names_one_above_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut wrong = Vec::new();
        for (layer, above) in RULES {
            let mut found = Vec::new();
            files(&src.join(layer), &mut found);
            files(&src.join(format!("{layer}.rs")), &mut found);
            assert!(!found.is_empty(), "no files for layer {layer}");
            for f in found {
                let text = std::fs::read_to_string(&f).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or("");
                for (n, line) in code.lines().enumerate() {
                    if line.trim_start().starts_with("//") {
                        continue;
                    }
                    for up in FRONT.iter().chain(above.iter()) {
                        if line.contains(&format!("crate::{up}::"))
                            || line.contains(&format!("crate::{up}}}"))
                            || line.contains(&format!("crate::{{{up}"))
                        {
                            wrong.push(format!("{}:{}: {layer} names {up}: {}", f.display(), n + 1, line.trim()));
                        }
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "arrows back up:\n{}", wrong.join("\n"));
    }
}
