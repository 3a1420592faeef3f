//! Measured evidence as text: a load test's figures and verdicts, a drill's timeline and
//! verdicts.

use serde_json::Value;

use crate::domain::metric;

pub fn load(r: &crate::load::Report) -> String {
    let lat = |l: &crate::load::Latency| {
        format!(
            "mean {:.2}  p50 {:.2}  p90 {:.2}  p95 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ms",
            l.mean_ms, l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms
        )
    };
    let c = &r.counts;
    let mut out = format!(
        "throughput {:.1} req/s (successful answers)  success {:.3} %\n\
         rate       target {}  sent {:.1} req/s\n\
         requests   scheduled {}  sent {}  completed {}  ok {}  in flight {}  unsent {}\n\
         latency    {}   (from the intended send time)\n\
         service    {}   (from the actual send)\n",
        r.throughput_rps,
        r.success_rate_pct,
        r.target_rate.map(|t| format!("{t} req/s")).unwrap_or_else(|| "none (closed model)".into()),
        r.achieved_rate,
        c.scheduled,
        c.sent,
        c.completed,
        c.ok,
        c.in_flight,
        c.unsent,
        lat(&r.latency),
        lat(&r.uncorrected_latency)
    );
    if let Some(cm) = &r.connect_ms {
        out.push_str(&format!(
            "connect    {} connections  mean {:.2}  p99 {:.2} ms\n",
            r.connections_opened, cm.mean_ms, cm.p99_ms
        ));
    }
    let errors: Vec<String> = r.errors.iter().filter(|(_, v)| **v > 0).map(|(k, v)| format!("{k} {v}")).collect();
    out.push_str(&format!("errors     {}\n", if errors.is_empty() { "none".into() } else { errors.join("  ") }));
    out.push_str(&format!(
        "generator  {:.3} cores  RSS {:.1} MiB (peak {:.1})  send lag p99 {:.2} ms  scheduler lag p99 {:.2} ms\n",
        r.generator.cpu_cores,
        r.generator.rss_mib,
        r.generator.peak_rss_mib,
        r.generator.send_lag_ms.p99_ms,
        r.generator.scheduler_lag_p99_ms
    ));
    for w in &r.workers {
        out.push_str(&format!(
            "worker     {}: {}\n",
            w.worker,
            match &w.failed {
                Some(why) => format!("FAILED, {why}"),
                None => format!(
                    "target {}  sent {:.1} req/s  p99 {:.2} ms  {:.3} cores  scheduler lag p99 {:.2} ms{}",
                    w.target_rate.map(|t| format!("{t} req/s")).unwrap_or_else(|| "none".into()),
                    w.achieved_rate,
                    w.p99_ms,
                    w.cpu_cores,
                    w.scheduler_lag_p99_ms,
                    if w.behind { "  BEHIND its schedule" } else { "" }
                ),
            }
        ));
    }
    for w in &r.warnings {
        out.push_str(&format!("warning    {w}\n"));
    }
    if let Some(why) = &r.invalid_reason {
        out.push_str(&format!("INVALID    {why}\n"));
    }
    if let Some(why) = &r.unanswered {
        out.push_str(&format!("NO ANSWER  {why}\n"));
    }
    if r.aborted {
        out.push_str("aborted    a threshold failed during the run\n");
    }
    for v in &r.verdicts {
        out.push_str(&format!("threshold  {}\n", v.describe()));
    }
    out
}

/// A drill's figures, for a person.
pub fn drill(r: &crate::app::drill::DrillReport) -> String {
    use crate::domain::requirement::fmt_num;
    let e = &r.evidence;
    let num = |k: &str| e.get(k).and_then(Value::as_f64).map(fmt_num).unwrap_or_else(|| "unknown".into());
    let mut out = String::new();
    if r.drill == "failover_drill" {
        out.push_str(&format!(
            "downtime   {} s (longest outage)   recovered {}   time to recover {} s\n",
            num("downtime_s"),
            e.get("recovered").and_then(Value::as_bool).map(|b| if b { "yes" } else { "no" }).unwrap_or("unknown"),
            num("time_to_recover_s")
        ));
        out.push_str(&format!(
            "probes     {} every {} ms, {} % answered\n",
            num("probes"),
            num("probe_interval_ms"),
            num("probe_success_pct")
        ));
        for o in e.get("outages").and_then(Value::as_array).into_iter().flatten() {
            let at = |k: &str| {
                o.get(k).and_then(Value::as_f64).map(|ms| fmt_num(ms / 1000.0)).unwrap_or_else(|| "end".into())
            };
            out.push_str(&format!(
                "outage     {} s to {} s ({} s)\n",
                at("start_ms"),
                at("end_ms"),
                num_of(o, "duration_s")
            ));
        }
    } else if r.drill == "alarm_drill" {
        for a in e.get("alarms").and_then(Value::as_array).into_iter().flatten() {
            out.push_str(&format!(
                "alarm      {}: notified in {} s ({})\n",
                a.get("alarm").and_then(Value::as_str).unwrap_or_default(),
                num_of(a, "delay_s"),
                a.get("subject").and_then(Value::as_str).unwrap_or_default()
            ));
        }
        for f in e.get("findings").and_then(Value::as_array).into_iter().flatten() {
            out.push_str(&format!("finding    {}\n", f.as_str().unwrap_or_default()));
        }
        out.push_str(&format!(
            "slowest    {} s; every alarm set back, queue {} removed\n",
            num(metric::NOTIFICATION_DELAY_S),
            e.get("queue").and_then(Value::as_str).unwrap_or_default()
        ));
    } else {
        out.push_str(&format!("rto        {} s\n", num(metric::RTO_S)));
        out.push_str(&format!(
            "rpo        {} s (measured {}, worst case {})\n",
            num(metric::RPO_S),
            num("rpo_measured_s"),
            num("rpo_worst_case_s")
        ));
        if let Some(c) = e.get("cleanup").filter(|c| !c.is_null()) {
            out.push_str(&format!(
                "cleanup    exit {}\n",
                c.get("exit_code").map(Value::to_string).unwrap_or_else(|| "none".into())
            ));
        }
    }
    for b in &r.bounds {
        if b.metric == "recovered" {
            let back = if b.pass { "yes (pass)" } else { "no: still down when the watch ended (FAIL)" };
            out.push_str(&format!("bound      came back by itself: {back}\n"));
            continue;
        }
        // Every bound a drill holds is a time: said as people read one.
        use crate::domain::human;
        out.push_str(&format!(
            "bound      {} <= {}: {} ({})\n",
            human::metric_name(b.metric),
            human::duration_s(b.limit),
            b.measured.map(human::duration_s).unwrap_or_else(|| "unknown".into()),
            if b.pass { "pass" } else { "FAIL" }
        ));
    }
    out
}

fn num_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_f64).map(crate::domain::requirement::fmt_num).unwrap_or_default()
}
