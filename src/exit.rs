//! Exit codes: the contract scripts and CI rely on. Documented in the README.

/// Done: every step succeeded or was skipped (or the command did what it was asked).
pub const OK: i32 = 0;
/// A step failed or was rejected.
pub const FAILED: i32 = 1;
/// Bad command line (clap's own code).
pub const USAGE: i32 = 2;
/// The spec cannot be used: missing, unreadable, empty, not UTF-8, no requirement, impossible
/// value, conflicting targets.
pub const BAD_SPEC: i32 = 3;
/// The plan or workflow file is invalid.
pub const BAD_PLAN: i32 = 4;
/// The verb does not apply: unknown step, step not waiting for that, no such runbook, another
/// `flow run` is working on the runbook.
pub const REFUSED: i32 = 5;
/// The state store is busy, unreadable or corrupt.
pub const STATE: i32 = 6;
/// The LLM planner could not be used: unreachable, refused, or retries exhausted.
pub const PLANNER: i32 = 7;
/// A load test could not send on schedule: its figures are not to be trusted.
pub const INVALID: i32 = 8;
/// Blocked on a human: a step waits for approval.
pub const WAITING_APPROVAL: i32 = 10;
/// Waiting on something external; run again after the next poll time.
pub const WAITING: i32 = 11;
/// A step's executor is not built into this version of flow.
pub const UNSUPPORTED: i32 = 12;
/// A bug or an I/O failure flow did not expect.
pub const INTERNAL: i32 = 70;
/// Stopped by Ctrl-C while it waited (on a model): nothing of the interrupted work was recorded.
pub const CANCELLED: i32 = 130;

/// The name of a code, as the README's table gives it (for front ends that report it).
pub fn name(code: i32) -> &'static str {
    match code {
        OK => "ok",
        FAILED => "failed",
        USAGE => "usage",
        BAD_SPEC => "bad_spec",
        BAD_PLAN => "bad_plan",
        REFUSED => "refused",
        STATE => "state",
        PLANNER => "planner",
        INVALID => "invalid",
        WAITING_APPROVAL => "waiting_approval",
        WAITING => "waiting",
        UNSUPPORTED => "unsupported",
        CANCELLED => "cancelled",
        _ => "internal",
    }
}
