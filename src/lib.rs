//! `flow`: launch-readiness runbooks.
//!
//! Markdown specs -> requirements with their source lines -> a planner -> a validated task DAG
//! (written to `workflows/`, every version kept in the sled store) -> an engine that runs each
//! step and stops at human approval gates -> evidence-backed verdicts.
//!
//! # Layout
//!
//! - [`domain`]: the pure core (spec parsing, plan model and validation, step state machine and
//!   journal projection, capacity arithmetic, digests, verdicts). No I/O.
//! - [`planner`]: planners; [`planner::builtin`] is the offline default.
//! - [`engine`]: the run loop, the only layer that acts: intent, effect, outcome.
//! - [`executor`]: one executor per step kind (preview / submit / poll / reconcile).
//! - [`ops`]: runbook operations over the store (plan versions, operator verbs).
//! - [`store`]: sled, opened briefly per command or transition.
//! - [`workflow`]: the reviewable TOML workflow files.
//! - [`cli`], [`exit`], [`error`], [`clock`]: the command line, its exit codes and errors, time.

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
pub mod ops;
pub mod planner;
pub mod store;
pub mod workflow;
