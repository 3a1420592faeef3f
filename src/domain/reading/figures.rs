//! The first passes over a sentence: its figures, with what the words around a bare number
//! say it is, and the shares that are percentiles rather than figures.

use super::*;

/// The sentence's figures, with what the hints and the words around a bare number say it is
/// (the column's unit, a zero right after an RTO, a ratio after "success ratio"); a lone "m"
/// is unread (minutes, metres or millicores); other bare numbers are dropped.
pub(super) fn figures(text: &str, w: &Words, spans: &[Span], hints: &Hints) -> (Vec<Figure>, Vec<Unread>) {
    let load = spans.iter().any(|s| s.label == Label::Throughput);
    let mut figs: Vec<Figure> = quantity::figures(text, load);
    if let Some((class, factor)) = hints.bare_unit {
        for f in figs.iter_mut().filter(|f| f.class == Class::Bare) {
            f.class = class;
            f.value *= factor;
        }
    }
    // "| RPO | 0 (synchronous replication) |": zero needs no unit.
    if hints.labels.first().is_some_and(|l| l.takes(Class::Time)) {
        for f in figs.iter_mut().filter(|f| f.class == Class::Bare && f.value == 0.0 && f.start == 0) {
            f.class = Class::Time;
        }
    }
    // "RPO: 0", "an RPO of 0 (synchronous replication)": right after the point or time it
    // bounds, zero needs no unit either.
    for f in figs.iter_mut().filter(|f| f.class == Class::Bare && f.value == 0.0) {
        let named = spans.iter().any(|s| {
            matches!(s.label, Label::Rpo | Label::Rto | Label::Downtime)
                && s.end <= f.start
                && matches!(
                    text[s.end..f.start].trim().to_lowercase().as_str(),
                    "" | ":" | "=" | "-" | "–" | "of" | "is" | "target:" | "target of"
                )
        });
        if named {
            f.class = Class::Time;
        }
    }
    // "a success ratio of at least 0.999": a ratio is a percentage.
    for f in figs.iter_mut().filter(|f| f.class == Class::Bare && f.value > 0.0 && f.value <= 1.0) {
        let written = &text[f.start..f.end];
        let ratio = written.contains('.')
            && w.near(spans, f.start, f.end, 8).iter().any(|&(j, _, after)| {
                let s = &spans[j];
                let named = text[s.start..s.end].to_ascii_lowercase();
                !after
                    && s.end <= f.start
                    && matches!(s.label, Label::Success | Label::Error | Label::Availability)
                    && (named.contains("ratio") || named.contains("rate") || named.contains("availab"))
            });
        if ratio {
            f.class = Class::Percent;
            f.value = (f.value * 100.0 * 1e9).round() / 1e9;
        }
    }
    // "500 m": minutes, metres or millicores; flow does not guess which.
    let lone_m: Vec<Unread> = figs
        .iter()
        .filter(|f| f.class == Class::Bare)
        .filter(|f| {
            let after = text[f.end..].trim_start();
            after.starts_with('m') && !after[1..].starts_with(|c: char| c.is_alphanumeric())
        })
        .map(|f| Unread {
            at: f.start,
            figure: format!("{} m", &text[f.start..f.end]),
            why: "\"m\" may be minutes, metres or millicores: write \"min\" for minutes".into(),
        })
        .collect();
    figs.retain(|f| f.class != Class::Bare);
    (figs, lone_m)
}

/// "95 % of requests ... within 300 ms": a share beside a latency is its percentile, not a
/// figure; it becomes a statistic label. The labels, in order.
pub(super) fn percentiles(text: &str, w: &Words, spans: Vec<Span>, figs: &mut Vec<Figure>) -> Vec<Span> {
    let mut spans = spans;
    let mut shares = Vec::new();
    for (i, f) in figs.iter().enumerate() {
        let Some(share_end) = f.share_end else { continue };
        // "within 500 ms for 95 % of requests": the share after its latency.
        let before = i.checked_sub(1).map(|k| &figs[k]).filter(|g| g.class == Class::Time);
        if let Some(t) = before.filter(|t| matches!(text[t.end..f.start].trim(), "for" | "of" | "in" | "at")) {
            let _ = t;
            shares.push(i);
            spans.push(Span { start: f.start, end: share_end, label: Label::Stat(fmt_num(f.value)) });
            continue;
        }
        let Some(t) = figs.get(i + 1).filter(|g| g.class == Class::Time) else { continue };
        if w.distance(share_end, t.start) > 2 * MAX_DISTANCE {
            continue;
        }
        let k = spans.partition_point(|s| s.start < share_end);
        let between_success = spans[k..]
            .iter()
            .take_while(|s| s.start < t.start)
            .any(|s| s.end <= t.start && matches!(s.label, Label::Success | Label::Error));
        if !between_success {
            shares.push(i);
            spans.push(Span { start: f.start, end: share_end, label: Label::Stat(fmt_num(f.value)) });
        }
    }
    if !shares.is_empty() {
        let mut keep = vec![true; figs.len()];
        for i in shares {
            keep[i] = false;
        }
        let mut k = keep.into_iter();
        figs.retain(|_| k.next().unwrap_or(true));
    }
    spans.sort_by_key(|s| s.start);
    spans
}
