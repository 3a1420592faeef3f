//! What a run is asked ([`Ask`]) and what it runs ([`Settings`]): flags and step params
//! checked by one set of rules; the staged rate and its gaps.

use std::time::Duration;

use super::threshold::Threshold;
use super::*;

/// What a person (`flow loadtest` flags) or a step (`loadtest` params) asks of a run, before it
/// is checked: [`Settings::resolve`] checks both with the same rules.
#[derive(Debug, Clone)]
pub struct Ask {
    pub url: String,
    pub rate: Option<f64>,
    pub duration: Duration,
    pub connections: Option<usize>,
    pub keepalive: bool,
    pub timeout: Option<Duration>,
    pub warmup: Duration,
    pub method: Option<String>,
    /// `Name: value`.
    pub headers: Vec<String>,
    pub body: Option<String>,
    /// Statuses that count as success, such as `200-299,304`.
    pub success: Option<String>,
    pub max_in_flight: Option<usize>,
    pub thresholds: Vec<Threshold>,
    pub abort_on_fail: bool,
    /// Reach `rate` linearly over this long first.
    pub ramp: Option<Duration>,
    /// `DURATION:RATE` stages.
    pub stages: Vec<String>,
}

impl Ask {
    pub fn new(url: impl Into<String>, duration: Duration) -> Ask {
        Ask {
            url: url.into(),
            rate: None,
            duration,
            connections: None,
            keepalive: true,
            timeout: None,
            warmup: Duration::ZERO,
            method: None,
            headers: vec![],
            body: None,
            success: None,
            max_in_flight: None,
            thresholds: vec![],
            abort_on_fail: false,
            ramp: None,
            stages: vec![],
        }
    }
}

/// Everything a run needs, resolved from flags or step params.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: url::Url,
    pub rate: Option<f64>,
    pub duration: Duration,
    pub connections: Option<usize>,
    pub keepalive: bool,
    pub timeout: Duration,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Inclusive status ranges that count as success (default 200-399).
    pub success: Vec<(u16, u16)>,
    pub warmup: Duration,
    pub max_in_flight: Option<usize>,
    pub thresholds: Vec<Threshold>,
    pub abort_on_fail: bool,
    /// Open model only: reach each stage's rate linearly over its duration, starting from
    /// `ramp_from`; after the last stage, `rate` holds.
    pub stages: Vec<(Duration, f64)>,
}

/// The arrival rate at `t` into the run.
pub fn rate_at(base: f64, stages: &[(Duration, f64)], t: Duration) -> f64 {
    let (mut from, mut t0) = (1.0_f64, Duration::ZERO);
    for (d, to) in stages {
        let end = t0 + *d;
        if t < end {
            let x = (t - t0).as_secs_f64() / d.as_secs_f64().max(1e-9);
            return (from + (to - from) * x).max(1.0);
        }
        from = *to;
        t0 = end;
    }
    base
}

/// Time from `t` to the next request: where the rate's integral from `t` reaches one request
/// (in steps of at most 1 ms, so a ramp that starts slow is not skipped over).
pub fn next_gap(base: f64, stages: &[(Duration, f64)], t: Duration) -> Duration {
    let mut owed = 1.0_f64;
    let mut gap = 0.0_f64;
    loop {
        let r = rate_at(base, stages, t + Duration::from_secs_f64(gap));
        let dt = (1.0 / r).min(0.001);
        if r * dt >= owed {
            return Duration::from_secs_f64(gap + owed / r);
        }
        owed -= r * dt;
        gap += dt;
    }
}

impl Settings {
    pub fn new(url: url::Url, duration: Duration) -> Settings {
        Settings {
            url,
            rate: None,
            duration,
            connections: None,
            keepalive: true,
            timeout: Duration::from_secs(10),
            method: "GET".into(),
            headers: vec![],
            body: vec![],
            success: vec![(200, 399)],
            warmup: Duration::ZERO,
            max_in_flight: None,
            thresholds: vec![],
            abort_on_fail: false,
            stages: vec![],
        }
    }

    /// Check what was asked, once, with the same rules for flags and step params.
    pub fn resolve(a: Ask) -> Result<Settings, Error> {
        let bad = Error::Settings;
        let url: url::Url = a.url.parse().map_err(|e| bad(format!("url `{}`: {e}", a.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!("url `{url}`: the scheme must be http or https")));
        }
        if a.duration.is_zero() {
            return Err(bad("the duration must be longer than 0".into()));
        }
        if let Some(r) = a.rate {
            crate::domain::catalogue::check_rate("the rate", r).map_err(|e| bad(e.0))?;
        }
        if a.warmup >= a.duration {
            return Err(bad(format!(
                "the warm-up ({}) must be shorter than the duration ({})",
                humantime::format_duration(a.warmup),
                humantime::format_duration(a.duration)
            )));
        }
        let mut s = Settings::new(url, a.duration);
        s.rate = a.rate;
        s.connections = a.connections;
        s.keepalive = a.keepalive;
        if let Some(t) = a.timeout {
            s.timeout = t;
        }
        s.warmup = a.warmup;
        if let Some(m) = a.method {
            s.method = m;
        }
        s.headers = a
            .headers
            .iter()
            .map(|h| {
                h.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| bad(format!("header `{h}`: expected `Name: value`")))
            })
            .collect::<Result<_, _>>()?;
        s.body = a.body.unwrap_or_default().into_bytes();
        if let Some(ok) = &a.success {
            s.success = parse_statuses(ok)?;
        }
        s.max_in_flight = a.max_in_flight;
        s.thresholds = a.thresholds;
        s.abort_on_fail = a.abort_on_fail;
        if let (Some(r), Some(d)) = (a.rate, a.ramp) {
            s.stages.push((d, r));
        }
        for st in &a.stages {
            s.stages.push(parse_stage(st)?);
        }
        if !s.stages.is_empty() && a.rate.is_none() {
            return Err(bad("--ramp and --stage shape an open model: give --rate too".into()));
        }
        Ok(s)
    }

    pub(crate) fn ok(&self, status: u16) -> bool {
        self.success.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }

    /// Requests in flight at most: the connections of the closed model; for the open model,
    /// `max_in_flight` or enough for the rate while every request runs to its timeout.
    pub fn in_flight_limit(&self) -> usize {
        match self.rate {
            Some(r) => self.max_in_flight.unwrap_or_else(|| ((r * self.timeout.as_secs_f64()).ceil() as usize).max(16)),
            None => self.connections.unwrap_or(64).max(1),
        }
    }
}

/// Parse a stage: `30s:1000` (reach 1,000 req/s over 30 s).
pub fn parse_stage(s: &str) -> Result<(Duration, f64), Error> {
    let bad = |m: String| Error::Settings(format!("stage `{s}`: {m}"));
    let (d, r) = s.split_once(':').ok_or_else(|| bad("expected DURATION:RATE, such as 30s:1000".into()))?;
    let d = humantime::parse_duration(d.trim()).map_err(|e| bad(e.to_string()))?;
    let r: f64 = r.trim().parse().map_err(|_| bad(format!("`{r}` is not a rate")))?;
    crate::domain::catalogue::check_rate("the rate", r).map_err(|e| bad(e.0))?;
    if d.is_zero() {
        return Err(bad("the duration must be longer than 0".into()));
    }
    Ok((d, r))
}

/// Parse `200-299,304` into inclusive ranges.
pub(crate) fn parse_statuses(s: &str) -> Result<Vec<(u16, u16)>, Error> {
    s.split(',')
        .map(|part| {
            let part = part.trim();
            let bad =
                || Error::Settings(format!("success statuses: `{part}` is not a status or a range such as 200-299"));
            match part.split_once('-') {
                Some((a, b)) => Ok((a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?)),
                None => {
                    let v = part.parse().map_err(|_| bad())?;
                    Ok((v, v))
                }
            }
        })
        .collect()
}
