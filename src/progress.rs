//! Progress of long work, for whoever watches: load tests, drills, `run --wait` polling, model
//! calls. The CLI shows it as live bars on a terminal (nothing when piped or with `--json`);
//! everything else gets [`Silent`].

pub trait Progress: Send + Sync {
    /// `what` (a step, `planner`, `wait`) is under way; `line` says how far.
    fn show(&self, _what: &str, _line: &str) {}
    /// `what` is `pos` of `len` seconds through; `line` says the rest.
    fn bar(&self, what: &str, _pos: u64, _len: u64, line: &str) {
        self.show(what, line)
    }
    /// `what` is over.
    fn done(&self, _what: &str) {}
}

/// Shows nothing.
pub struct Silent;

impl Progress for Silent {}
