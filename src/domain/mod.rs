//! The pure core: no I/O, no clock, no async. Spec parsing, the plan model and its validation,
//! the step state machine and its journal projection, capacity arithmetic, digests, verdicts.

pub mod capacity;
pub mod catalogue;
pub mod digest;
pub mod plan;
pub mod requirement;
pub mod runbook;
pub mod spec;
pub mod validate;
pub mod verdict;
