//! What a drill measures, from its probes: outage windows, the longest one (downtime), the time
//! to recover, whether the service came back, a compressed timeline; and the worst-case data
//! loss a backup schedule allows. Pure: the probing itself is in the executors.
//!
//! Probes go out on a fixed schedule, each timed by its *intended* send time, each with its own
//! timeout (probes overlap: a probe that is still waiting does not delay the next). A probe is
//! up when a good answer came within its timeout: a slow answer is a latency, not an outage. An
//! outage runs from the first failing probe's intended time to the moment the first good answer
//! after it arrived (a stalled service that answers everything at once when it resumes is down
//! until then, not until the first of those probes was sent): each edge is within one interval
//! of the truth.

use serde::{Deserialize, Serialize};

/// One probe: when it was due (ms after the probes started), and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub at_ms: u64,
    pub up: bool,
    /// When its answer arrived (ms after the probes started), for a probe that got one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_ms: Option<u64>,
    /// `200`, `503`, `timeout`, `refused` ...
    pub detail: String,
}

/// A window of failing probes (ms after the probes started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outage {
    pub start_ms: u64,
    /// The first probe that succeeded again; `None`: still down when the probes stopped.
    pub end_ms: Option<u64>,
    pub duration_s: f64,
}

/// A change of state in the probe timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub at_ms: u64,
    pub up: bool,
    pub detail: String,
}

/// What a failover drill's probes say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failover {
    /// The longest outage (s).
    pub downtime_s: f64,
    /// From the fault to the end of the last outage (s); 0 when nothing failed.
    pub time_to_recover_s: f64,
    /// The service answered again, and kept answering, by the time the probes stopped.
    pub recovered: bool,
    pub outages: Vec<Outage>,
    pub timeline: Vec<Change>,
    pub probes: usize,
    pub probe_success_pct: f64,
}

fn secs(ms: u64) -> f64 {
    (ms as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// The timeline compressed to its changes of state (the first probe is a change).
pub fn timeline(probes: &[Probe]) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    for p in probes {
        if out.last().is_none_or(|c| c.up != p.up) {
            out.push(Change { at_ms: p.at_ms, up: p.up, detail: p.detail.clone() });
        }
    }
    out
}

/// Outage windows, in order. `end_ms` is when the probes stopped.
pub fn outages(probes: &[Probe], end_ms: u64) -> Vec<Outage> {
    let mut out = Vec::new();
    let mut start: Option<u64> = None;
    for p in probes {
        match (p.up, start) {
            (false, None) => start = Some(p.at_ms),
            (true, Some(s)) => {
                let end = p.answered_ms.unwrap_or(p.at_ms).max(s);
                out.push(Outage { start_ms: s, end_ms: Some(end), duration_s: secs(end - s) });
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Outage { start_ms: s, end_ms: None, duration_s: secs(end_ms.saturating_sub(s)) });
    }
    out
}

/// Analyse a failover drill's probes; `fault_at_ms` is when the fault was injected, `end_ms`
/// when the probes stopped.
pub fn failover(probes: &[Probe], fault_at_ms: u64, end_ms: u64) -> Failover {
    let outages = outages(probes, end_ms);
    let downtime_s = outages.iter().map(|o| o.duration_s).fold(0.0, f64::max);
    let recovered = outages.last().is_none_or(|o| o.end_ms.is_some());
    let time_to_recover_s = match outages.last() {
        Some(Outage { end_ms: Some(e), .. }) => secs(e.saturating_sub(fault_at_ms)),
        Some(Outage { end_ms: None, .. }) => secs(end_ms.saturating_sub(fault_at_ms)),
        None => 0.0,
    };
    let up = probes.iter().filter(|p| p.up).count();
    Failover {
        downtime_s,
        time_to_recover_s,
        recovered,
        outages,
        timeline: timeline(probes),
        probes: probes.len(),
        probe_success_pct: if probes.is_empty() {
            0.0
        } else {
            (up as f64 * 100_000.0 / probes.len() as f64).round() / 1000.0
        },
    }
}

/// The longest time between two backups a schedule allows (s): AWS Backup's
/// `cron(minutes hours day-of-month month day-of-week year)` or `rate(N unit)`. `None` for a
/// schedule it cannot read (the drill then says the worst case is unknown, never guesses).
pub fn schedule_gap_s(expr: &str) -> Option<f64> {
    let e = expr.trim();
    if let Some(rate) = e.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        let (n, unit) = rate.trim().split_once(' ')?;
        let n: f64 = n.parse().ok()?;
        let per = match unit.trim().trim_end_matches('s') {
            "minute" => 60.0,
            "hour" => 3600.0,
            "day" => 86400.0,
            _ => return None,
        };
        return Some(n * per);
    }
    let fields: Vec<&str> = e.strip_prefix("cron(")?.strip_suffix(')')?.split_whitespace().collect();
    let [minutes, hours, dom, month, dow, ..] = fields[..] else { return None };
    // Gaps within a period of `len`, for a field: `*`, `*/n`, `a/n`, `a,b,c`, `a-b`, `a`.
    fn gap(field: &str, len: u32) -> Option<(u32, bool)> {
        let mut at: Vec<u32> = Vec::new();
        for part in field.split(',') {
            if part == "*" {
                return Some((1, true));
            }
            if let Some((from, step)) = part.split_once('/') {
                let step: u32 = step.parse().ok().filter(|s| *s > 0)?;
                let from: u32 = if from == "*" { 0 } else { from.parse().ok()? };
                at.extend((from..len).step_by(step as usize));
            } else if let Some((a, b)) = part.split_once('-') {
                at.extend(a.parse::<u32>().ok()?..=b.parse::<u32>().ok()?);
            } else {
                at.push(part.parse().ok()?);
            }
        }
        at.sort_unstable();
        at.dedup();
        let first = *at.first()?;
        let widest = at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0).max(first + len - at[at.len() - 1]);
        Some((widest, at.len() > 1))
    }
    let every_day = matches!(dom, "*" | "?") && matches!(month, "*") && matches!(dow, "*" | "?");
    if !every_day {
        // Some days only: at least a week apart in the worst case we can tell.
        return if matches!(dom, "*" | "?") && month == "*" { Some(7.0 * 86400.0) } else { None };
    }
    let (hour_gap, many_hours) = gap(hours, 24)?;
    let (minute_gap, many_minutes) = gap(minutes, 60)?;
    Some(if hours == "*" {
        minute_gap as f64 * 60.0
    } else if many_hours && !many_minutes {
        hour_gap as f64 * 3600.0
    } else if many_hours {
        // Several times an hour in several hours: the gap between the hours dominates.
        (hour_gap as f64 - 1.0) * 3600.0 + minute_gap as f64 * 60.0
    } else {
        86400.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probes(pattern: &str, every: u64) -> Vec<Probe> {
        pattern
            .chars()
            .enumerate()
            .map(|(i, c)| Probe {
                at_ms: i as u64 * every,
                up: c == '+',
                answered_ms: (c == '+').then_some(i as u64 * every + 1),
                detail: if c == '+' { "200" } else { "503" }.into(),
            })
            .collect()
    }

    #[test]
    fn a_stalled_service_is_down_until_its_first_answer_arrives() {
        // Stalled from 100 to 3,000 ms, probes every 100 ms with a 1 s timeout: those due
        // before 2,000 ms time out; those due after it are answered at 3,000 ms, when it
        // resumes. The outage ends when that first answer arrived, not when its probe went out.
        let p: Vec<Probe> = (0..40u64)
            .map(|i| {
                let at = i * 100;
                let (up, answered) = match at {
                    0 => (true, Some(1)),
                    a if a < 2000 => (false, None),
                    a if a < 3000 => (true, Some(3000)),
                    a => (true, Some(a + 1)),
                };
                Probe { at_ms: at, up, answered_ms: answered, detail: String::new() }
            })
            .collect();
        let f = failover(&p, 100, 4000);
        assert_eq!(f.outages.len(), 1);
        assert_eq!((f.outages[0].start_ms, f.outages[0].end_ms), (100, Some(3000)));
        assert_eq!(f.downtime_s, 2.9);
        // A slow but answering service (every answer 300 ms late, within the timeout) has no outage.
        let slow: Vec<Probe> = (0..20u64)
            .map(|i| Probe { at_ms: i * 100, up: true, answered_ms: Some(i * 100 + 300), detail: "200".into() })
            .collect();
        assert_eq!(failover(&slow, 100, 2000).downtime_s, 0.0);
    }

    #[test]
    fn outages_downtime_and_recovery() {
        // 100 ms apart: up, 2 down, up, 5 down, up.
        let p = probes("++--+-----++", 100);
        let f = failover(&p, 150, 1200);
        assert_eq!(f.outages.len(), 2);
        assert_eq!((f.outages[1].start_ms, f.outages[1].end_ms), (500, Some(1001)));
        assert_eq!(f.downtime_s, 0.501);
        assert_eq!(f.time_to_recover_s, 0.851, "from the fault at 150 ms to the answer at 1001 ms");
        assert!(f.recovered);
        assert_eq!(
            f.timeline.iter().map(|c| (c.at_ms, c.up)).collect::<Vec<_>>(),
            [(0, true), (200, false), (400, true), (500, false), (1000, true)]
        );
        assert_eq!(f.probe_success_pct, 41.667);
    }

    #[test]
    fn still_down_at_the_end_is_not_recovered() {
        let f = failover(&probes("+++---", 100), 250, 600);
        assert!(!f.recovered);
        assert_eq!(f.outages[0].end_ms, None);
        assert_eq!(f.downtime_s, 0.3);
        assert_eq!(f.time_to_recover_s, 0.35);
        let calm = failover(&probes("++++", 100), 100, 400);
        assert_eq!((calm.downtime_s, calm.time_to_recover_s, calm.recovered), (0.0, 0.0, true));
    }

    #[test]
    fn backup_schedules_and_their_worst_gap() {
        let cases = [
            ("cron(0 * ? * * *)", Some(3600.0)),
            ("cron(0 5 ? * * *)", Some(86400.0)),
            ("cron(0 */4 * * ? *)", Some(4.0 * 3600.0)),
            ("cron(0 0,6,18 * * ? *)", Some(12.0 * 3600.0)),
            ("cron(*/15 * * * ? *)", Some(900.0)),
            ("cron(0 3 ? * SUN *)", Some(7.0 * 86400.0)),
            ("rate(12 hours)", Some(43200.0)),
            ("cron(0 3 1 * ? *)", None),
            ("whenever", None),
        ];
        for (expr, gap) in cases {
            assert_eq!(schedule_gap_s(expr), gap, "{expr}");
        }
    }
}
