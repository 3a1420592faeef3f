//! Time, behind a trait so tests and dry runs can move it. `FLOW_NOW` (RFC 3339) makes the
//! process start at that instant and run forward from there.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A start time that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The system clock, optionally shifted so that it read `start` when the process began.
pub struct Shifted {
    base_ms: u64,
    started: Instant,
}

impl Shifted {
    pub fn system() -> Self {
        Shifted { base_ms: system_ms(), started: Instant::now() }
    }

    pub fn from_env() -> Result<Self, Error> {
        match std::env::var("FLOW_NOW") {
            Ok(v) if !v.is_empty() => {
                let t = humantime::parse_rfc3339_weak(&v)
                    .map_err(|e| Error(format!("FLOW_NOW=`{v}` is not an RFC 3339 time: {e}")))?;
                let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
                Ok(Shifted { base_ms: ms, started: Instant::now() })
            }
            _ => Ok(Self::system()),
        }
    }
}

impl Clock for Shifted {
    fn now_ms(&self) -> u64 {
        self.base_ms + self.started.elapsed().as_millis() as u64
    }
}

pub fn system_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// Unix ms -> RFC 3339 (UTC, seconds).
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}
