//! Planners turn a spec's requirements into a plan. Every plan, whoever made it, goes through
//! [`crate::domain::validate`] before it is written or recorded.

pub mod bedrock;
pub mod builtin;
pub mod extract;
pub mod llm;
pub mod openai;
