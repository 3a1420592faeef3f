//! The pure core: no I/O, no clock, no async. Spec reading, the plan model and its validation,
//! the step lifecycle and the journal's projection, capacity arithmetic, digests, verdicts.
//!
//! Arrows point one way: `event` <- `lifecycle` <- `runbook`; `reference` <- `catalogue` <-
//! `plan` <- `validate`; `requirement` <- `spec`; `metric` is read by all who name evidence.

pub mod assess;
pub mod capacity;
pub mod catalogue;
pub mod digest;
pub mod drill;
pub mod event;
pub mod grounding;
pub mod human;
pub mod lifecycle;
pub mod metric;
pub mod network;
pub mod notify;
pub mod plan;
pub mod policy;
pub mod quantity;
pub mod reading;
pub mod reference;
pub mod replan;
pub mod requirement;
pub mod runbook;
pub mod spec;
pub mod validate;
pub mod verdict;
