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
