//! Evidence metric names, spelled once: what a step records, what a requirement's verdict
//! reads, what a later step may reference (`${peak-load.latency_p99_ms}`).

pub const THROUGHPUT_RPS: &str = "throughput_rps";
pub const SUCCESS_RATE_PCT: &str = "success_rate_pct";
pub const AVAILABILITY_PCT: &str = "availability_pct";
pub const LATENCY_AVG_MS: &str = "latency_avg_ms";
pub const LATENCY_P50_MS: &str = "latency_p50_ms";
pub const LATENCY_P90_MS: &str = "latency_p90_ms";
pub const LATENCY_P95_MS: &str = "latency_p95_ms";
pub const LATENCY_P99_MS: &str = "latency_p99_ms";
pub const LATENCY_P999_MS: &str = "latency_p999_ms";
pub const LATENCY_MAX_MS: &str = "latency_max_ms";
pub const AZ_FAILURE_TOLERATED: &str = "az_failure_tolerated";
pub const FAILOVER_DOWNTIME_S: &str = "failover_downtime_s";
pub const RTO_S: &str = "rto_s";
pub const RPO_S: &str = "rpo_s";
/// The slowest alarm's time from its state change to the message reaching a subscriber.
pub const NOTIFICATION_DELAY_S: &str = "notification_delay_s";

/// The metric of a latency percentile as written (`99`, `99.9`): `latency_p99_ms`, `latency_p999_ms`.
pub fn latency_p(p: &str) -> String {
    format!("latency_p{}_ms", p.replace('.', ""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentile_names() {
        assert_eq!(super::latency_p("99"), super::LATENCY_P99_MS);
        assert_eq!(super::latency_p("99.9"), super::LATENCY_P999_MS);
    }
}
