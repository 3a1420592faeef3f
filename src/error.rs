//! The top-level error: every failure a command can end with, its message and its exit code
//! ([`crate::exit`]). Each module has its own error type; this one wraps them and knows which
//! documented code each means.

use crate::domain::{lifecycle, spec, validate};
use crate::{clock, engine, exit, load};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Spec(#[from] spec::Error),
    #[error("{0}")]
    Invalid(#[from] validate::Invalid),
    #[error("{0}")]
    Workflow(#[from] crate::workflow::Error),
    #[error("{0}")]
    Journal(#[from] crate::state::Error),
    #[error("{0}")]
    Engine(#[from] engine::Error),
    /// The verb does not apply (unknown step, not waiting, no runbook).
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    Config(#[from] crate::config::Error),
    /// The command line asks for something it cannot have as given.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Clock(#[from] clock::Error),
    /// The LLM provider could not be used (unreachable, refused, retries exhausted).
    #[error("planner: {0}")]
    Planner(String),
    #[error("{0}")]
    Load(#[from] load::Error),
    /// A drill run from the command line failed (its fault or restore could not be carried out).
    #[error("drill: {0}")]
    Drill(crate::executor::Error),
    /// `flow assess` could not read what is running.
    #[error("assess: {0}")]
    Assess(crate::executor::Error),
    /// The person stopped the command (Ctrl-C) while it waited; what it was doing is not recorded.
    #[error("cancelled: {0}")]
    Cancelled(String),
}

impl From<lifecycle::Refusal> for Error {
    fn from(r: lifecycle::Refusal) -> Self {
        Error::Refused(r.to_string())
    }
}

impl Error {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { what: what.into(), source }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Spec(_) => exit::BAD_SPEC,
            Error::Workflow(crate::workflow::Error::Write { .. }) => exit::INTERNAL,
            Error::Invalid(_) | Error::Workflow(_) => exit::BAD_PLAN,
            Error::Journal(
                crate::state::Error::Locked { .. }
                | crate::state::Error::Leased { .. }
                | crate::state::Error::NoStore { .. },
            ) => exit::REFUSED,
            Error::Engine(engine::Error::Journal(
                crate::state::Error::Locked { .. } | crate::state::Error::Leased { .. },
            )) => exit::REFUSED,
            Error::Journal(_) | Error::Engine(_) => exit::STATE,
            Error::Refused(_) => exit::REFUSED,
            Error::Io { .. } => exit::INTERNAL,
            Error::Config(_) | Error::Clock(_) | Error::Usage(_) => exit::USAGE,
            Error::Planner(_) => exit::PLANNER,
            Error::Load(load::Error::Settings(_)) => exit::USAGE,
            Error::Load(load::Error::Target(_)) => exit::FAILED,
            Error::Load(load::Error::Generator(_)) => exit::INTERNAL,
            Error::Load(load::Error::Runner(_)) => exit::FAILED,
            Error::Load(load::Error::Cancelled(_)) => exit::CANCELLED,
            Error::Drill(_) | Error::Assess(_) => exit::FAILED,
            Error::Cancelled(_) => exit::CANCELLED,
        }
    }

    /// The exit code's name, for front ends that report it (`flow mcp`).
    pub fn code_name(&self) -> &'static str {
        exit::name(self.exit_code())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_documented_code() {
        let cases: Vec<(Error, i32, &str)> = vec![
            (load::Error::Settings("bad".into()).into(), exit::USAGE, "usage"),
            (load::Error::Target("cannot resolve x".into()).into(), exit::FAILED, "failed"),
            (load::Error::Generator("no thread".into()).into(), exit::INTERNAL, "internal"),
            (crate::state::Error::Locked { runbook: "rb".into() }.into(), exit::REFUSED, "refused"),
            (crate::state::Error::Busy { path: "s".into(), waited_ms: 1 }.into(), exit::STATE, "state"),
            (
                crate::state::Error::Conflict { runbook: "rb".into(), expected: 3, found: 4, by: None }.into(),
                exit::STATE,
                "state",
            ),
            (Error::Refused("no".into()), exit::REFUSED, "refused"),
            (crate::workflow::Error::Missing { path: "w.toml".into() }.into(), exit::BAD_PLAN, "bad_plan"),
            (
                crate::workflow::Error::Write {
                    what: "writing w.toml".into(),
                    source: std::io::Error::other("disk full"),
                }
                .into(),
                exit::INTERNAL,
                "internal",
            ),
            (crate::config::Error::Setting("timeout `x`".into()).into(), exit::USAGE, "usage"),
            (Error::Planner("down".into()), exit::PLANNER, "planner"),
        ];
        for (e, code, name) in cases {
            assert_eq!((e.exit_code(), e.code_name()), (code, name), "{e}");
        }
    }
}
