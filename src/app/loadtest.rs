//! `flow loadtest`: the built-in generator run once, outside a runbook, its progress shown
//! through the front end's [`Progress`] (one clock: the bar's position is the run's second).

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::load;
use crate::progress::Progress;

/// Run the load test `s` (spread over workers when `spread` has more than one:
/// [`load::spread::coordinate`]), showing a live line (rate, ok/errors
/// per second, p50/p99 so far, the thresholds as they stand) on `progress`.
pub async fn run(
    s: load::Settings,
    spread: &load::spread::Spread,
    progress: Arc<dyn Progress>,
) -> Result<load::Report> {
    let live = load::LiveLine::new(s.rate, s.thresholds.clone());
    let len = s.duration.as_secs();
    let p = progress.clone();
    let tick: Arc<dyn Fn(Duration, load::Live) + Send + Sync> = Arc::new(move |t, l| {
        p.bar("loadtest", t.as_secs().min(len), len, &live.line(t, &l));
    });
    let report =
        if spread.workers > 1 { load::spread::coordinate(s, spread, tick).await } else { load::run(s, tick).await };
    progress.done("loadtest");
    report.map_err(Error::Load)
}
