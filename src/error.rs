//! The top-level error: every failure a command can end with, its message and its exit code.

use crate::domain::{spec, validate};
use crate::{exit, store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Spec(#[from] spec::Error),
    #[error("{0}")]
    Invalid(#[from] validate::Invalid),
    #[error("workflow {path}: {message}")]
    Workflow { path: String, message: String },
    #[error("{0}")]
    Store(#[from] store::Error),
    /// The verb does not apply (unknown step, not waiting, no runbook).
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Io(String),
    #[error("config {0}")]
    Config(String),
    /// The LLM provider could not be used (unreachable, refused, retries exhausted).
    #[error("planner: {0}")]
    Planner(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Spec(_) => exit::BAD_SPEC,
            Error::Invalid(_) | Error::Workflow { .. } => exit::BAD_PLAN,
            Error::Store(_) => exit::STATE,
            Error::Refused(_) => exit::REFUSED,
            Error::Io(_) => exit::INTERNAL,
            Error::Config(_) => exit::USAGE,
            Error::Planner(_) => exit::PLANNER,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
