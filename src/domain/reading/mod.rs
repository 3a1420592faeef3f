//! Reading one sentence: which figure is which requirement.
//!
//! [`quantity`] finds the figures; this module finds the labels that say what a figure
//! measures ("p99", "average", "RTO", "error rate", "uptime", and the look-alikes that are not
//! targets: a mean time to recover, a support response time, a cache hit rate, a budget...),
//! then binds each figure to its nearest compatible label, whichever side it stands on, one
//! label per figure ("RTO 4 h, RPO 15 min" gives each its own). A figure no label explains is
//! not guessed: it is returned as unread, with the reason. A latency with no statistic is not
//! guessed either: it stays `other`, with a note naming what is missing.
//!
//! [`read`] goes in passes: the figures and what a bare number is (`figures`); under a section
//! of non-targets, only the figure the sentence calls its target; shares that are percentiles
//! (`figures`); today's figures; in an EARS condition, only a load; each figure bound to a
//! label (`bind`); each bound figure made a requirement, a question or an unread figure, and
//! repeated kinds scoped. `words` holds the label patterns, `clauses` the tone and the words
//! that make a figure not a target.

mod bind;
mod clauses;
mod figures;
#[cfg(test)]
mod tests;
mod words;

use bind::{bind, restated, Bound};
pub use clauses::*;
use figures::{figures, percentiles};
pub use words::*;

use std::sync::LazyLock;

use regex::Regex;

use super::quantity::{self, Class, Cmp, Figure, Token};
use super::requirement::{fmt_num, Kind, Op};

/// What a label says a figure measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// A latency statistic: `avg`, or a percentile as written (`99`, `99.9`, `50`).
    Stat(String),
    /// "latency", "response time": a latency, statistic unknown.
    Latency,
    /// "throughput", "load": a request rate (for bare numbers in tables).
    Throughput,
    Success,
    Error,
    Availability,
    Downtime,
    Rto,
    Rpo,
    /// A look-alike: why its figure is not a target, and the classes it claims.
    Ignore(&'static str, &'static [Class]),
}

impl Label {
    fn takes(&self, c: Class) -> bool {
        match self {
            Label::Stat(_) | Label::Latency | Label::Downtime | Label::Rto | Label::Rpo => c == Class::Time,
            Label::Success | Label::Error | Label::Availability => c == Class::Percent,
            Label::Throughput => c == Class::Rate,
            Label::Ignore(_, classes) => classes.contains(&c),
        }
    }

    fn sink(&self) -> bool {
        matches!(self, Label::Ignore(..))
    }
}

/// A label where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub label: Label,
}

/// What the context gives a sentence: labels from its heading, parent item or table column; a
/// unit for a table cell's bare number; a Min or Max column's comparison.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// Nearest first.
    pub labels: Vec<Label>,
    pub bare_unit: Option<(Class, f64)>,
    pub op: Option<Op>,
    /// The condition of an EARS sentence ("WHEN traffic reaches ..."): only a request rate in
    /// it is a requirement.
    pub condition: bool,
    /// The heading, parent item or table column says its figures are targets (Targets, SLOs,
    /// Requirements, Thresholds ...).
    pub targets: bool,
    /// The heading, parent item or table says its figures are not targets, and why (results,
    /// alerts, examples, estimates ...).
    pub not_targets: Option<String>,
    /// The text is a heading: a figure in it is a target only with a comparison or a commitment.
    pub heading: bool,
    /// The row's window column says days or weeks: a share of requests is an availability.
    pub long_window: bool,
    /// A table column names the kind ("| RPO |"): words beside the figure explain it, they do
    /// not make it something else.
    pub column: bool,
}

/// A requirement read from a sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    pub kind: Kind,
    pub op: Op,
    pub value: f64,
    /// Where its figure starts.
    pub at: usize,
    /// What it applies to, when the sentence says so right after it ("< 1 s for reads, < 3 s
    /// for writes").
    pub scope: Option<String>,
}

/// A figure that is not read as a requirement, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unread {
    pub at: usize,
    pub figure: String,
    pub why: String,
}

/// A figure flow is not sure how to read: the readings a person may choose from.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub at: usize,
    pub figure: String,
    pub why: String,
    pub readings: Vec<Read>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub found: Vec<Read>,
    pub unread: Vec<Unread>,
    /// Figures to ask a person about rather than guess.
    pub asks: Vec<Ask>,
    /// Figures that cannot be targets: where, and why.
    pub impossible: Vec<(usize, String)>,
    /// What a person should know about a figure kept as `other` (a missing statistic, a mean
    /// time to recover).
    pub notes: Vec<String>,
}

/// Read one sentence (normalized text).
pub fn read(text: &str, hints: &Hints) -> Reading {
    // "P95_Latency": an underscore joins words (same length, so offsets hold).
    let spaced;
    let text = if text.contains('_') {
        spaced = text.replace('_', " ");
        spaced.as_str()
    } else {
        text
    };
    let w = Words::new(text);
    let spans = labels(text);
    let (mut figs, lone_m) = figures(text, &w, &spans, hints);

    let mut out = Reading { unread: lone_m, ..Reading::default() };
    // Under a heading, parent item or table that says its figures are not targets (results,
    // alerts, examples ...): none is read, each is listed with why.
    let names_target = NAMES_TARGET.is_match(text) && !RESULT_WORDS.is_match(text);
    if let Some(why) = hints.not_targets.as_ref().filter(|_| !names_target) {
        // "p99: PASSES (213 ns vs 500 ns target)": the figure the sentence calls the target is
        // one; the others are what was measured.
        let (named, rest): (Vec<Figure>, Vec<Figure>) = figs.into_iter().partition(|f| called_target(text, f));
        for f in &rest {
            out.unread.push(Unread { at: f.start, figure: f.text(text).to_string(), why: why.clone() });
        }
        if named.is_empty() {
            return out;
        }
        figs = named;
    }
    let spans = percentiles(text, &w, spans, &mut figs);

    // Today's figures are not targets; their labels still count ("the current p99 is 850 ms;
    // it must come down to 400 ms": the 400 ms is the p99 too).
    let today = current_words(text, &spans);
    let current: Vec<bool> = figs.iter().map(|f| is_current(&w, &today, f.start, f.end)).collect();

    // The condition of an EARS sentence: a load figure in it is a throughput requirement;
    // anything else there is a trigger, not a target.
    if hints.condition {
        for (i, f) in figs.iter().enumerate() {
            if current[i] {
                out.unread.push(Unread { at: f.start, figure: f.text(text).to_string(), why: CURRENT_WHY.into() });
            } else if f.class == Class::Rate {
                push_rate(text, &w, &spans, f, &mut out);
            } else {
                out.unread.push(Unread {
                    at: f.start,
                    figure: f.text(text).to_string(),
                    why: "in the condition (WHEN/IF/WHILE ...), not a target".into(),
                });
            }
        }
        return out;
    }

    let restated = restated(text, &figs);
    let Bound { bound, taken } = bind(text, &w, &spans, &figs, &current);

    let tone = Tone::of(text);
    for (i, f) in figs.iter().enumerate() {
        let figure = f.text(text).to_string();
        if current[i] {
            out.unread.push(Unread { at: f.start, figure, why: CURRENT_WHY.into() });
            continue;
        }
        if restated[i] {
            let why = format!("restates {} before it", figs[i - 1].text(text));
            out.unread.push(Unread { at: f.start, figure, why });
            continue;
        }
        let label = match bound[i] {
            Some(usize::MAX) => {
                let as_label = match f.class {
                    Class::Rate | Class::Bandwidth => Label::Throughput,
                    _ => Label::Availability,
                };
                if let Some(why) = not_a_target(text, &w, f, &as_label, hints.column) {
                    out.unread.push(Unread { at: f.start, figure, why: why.into() });
                    continue;
                }
                let before = out.found.len();
                match f.class {
                    Class::Rate => push_rate(text, &w, &spans, f, &mut out),
                    Class::Bandwidth => out.unread.push(Unread {
                        at: f.start,
                        figure,
                        why: "a bandwidth (bytes or bits per second), not a request rate".into(),
                    }),
                    _ => push(text, &w.toks, f, &Label::Availability, hints, &mut out),
                }
                settle(text, &w, &tone, f, &as_label, hints, before, &mut out);
                continue;
            }
            Some(j) => spans[j].label.clone(),
            None => match hints.labels.iter().find(|l| l.takes(f.class)) {
                Some(l) => l.clone(),
                None => {
                    out.unread.push(Unread { at: f.start, figure, why: NO_LABEL.into() });
                    continue;
                }
            },
        };
        // "responses within 200 ms on average": a free statistic nearby says which latency.
        let label = match label {
            Label::Latency => w
                .near(&spans, f.start, f.end, MAX_DISTANCE)
                .into_iter()
                .filter(|&(j, _, _)| !taken[j] && matches!(spans[j].label, Label::Stat(_)))
                .min_by_key(|&(j, d, _)| (d, j))
                .map(|(j, _, _)| spans[j].label.clone())
                .or_else(|| hints.labels.iter().find(|l| matches!(l, Label::Stat(_))).cloned())
                .unwrap_or(Label::Latency),
            l => l,
        };
        if !label.sink() {
            if let Some(why) = not_a_target(text, &w, f, &label, hints.column) {
                // "Availability: TBD (e.g., 99.9 % monthly)": the example is a reading to offer.
                let before = out.found.len();
                if why.starts_with("an example") && TBD.is_match(text) {
                    push(text, &w.toks, f, &label, hints, &mut out);
                }
                if out.found.len() > before {
                    let readings = out.found.split_off(before);
                    let why = format!(
                        "the target is still to be decided (TBD); `{figure}` is its example: is it the target?"
                    );
                    out.asks.push(Ask { at: f.start, figure, why, readings });
                } else {
                    out.unread.push(Unread { at: f.start, figure, why: why.into() });
                }
                continue;
            }
        }
        // "99.9 % of requests succeed over a rolling 28-day window": a share of requests over
        // weeks is an availability objective; a load test of minutes is no evidence for it.
        let label = match label {
            Label::Success | Label::Error if hints.long_window || LONG_WINDOW.is_match(text) => Label::Availability,
            l => l,
        };
        let before = out.found.len();
        push(text, &w.toks, f, &label, hints, &mut out);
        settle(text, &w, &tone, f, &label, hints, before, &mut out);
    }
    // Two targets of one kind in a sentence, each saying what it applies to: scoped.
    let mut per_kind: std::collections::HashMap<Kind, usize> = std::collections::HashMap::new();
    for r in &out.found {
        *per_kind.entry(r.kind.clone()).or_default() += 1;
    }
    for r in out.found.iter_mut() {
        if per_kind.get(&r.kind).is_some_and(|&n| n > 1) {
            let k = figs.partition_point(|f| f.start < r.at);
            if let Some(f) = figs.get(k).filter(|f| f.start == r.at) {
                r.scope = scope_after(text, f);
            }
        }
    }
    out
}

/// "< 1 s for reads", "< 3s для write": what the words right after a figure apply it to.
fn scope_after(text: &str, f: &Figure) -> Option<String> {
    static FOR: LazyLock<Regex> = LazyLock::new(|| {
        re(
            r"^[^,;.()\d]{0,30}?(?:\(\s*)?\b(?:for|для|on|in|at)\s+(?:the\s+)?(?P<s>[\w-]+(?:\s+(?:users?|customers?|tiers?|plans?|requests?|calls?|operations?|endpoints?|paths?|queries|api|peak|load|traffic))?)",
        )
    });
    let c = FOR.captures(&text[f.end..])?;
    let s = c["s"].to_lowercase();
    (!matches!(s.as_str(), "a" | "an" | "at" | "each" | "every" | "all" | "any" | "least" | "most" | "under" | "or"))
        .then_some(s)
}

/// A figure just read (`out.found` grew past `before`) that its sentence does not make a
/// target is turned into a question: a wish ("stretch target"), an estimate ("± 10 min"), or a
/// figure stated with no comparison and no commitment outside a section of targets.
#[allow(clippy::too_many_arguments)]
fn settle(
    text: &str,
    w: &Words,
    tone: &Tone,
    f: &Figure,
    label: &Label,
    hints: &Hints,
    before: usize,
    out: &mut Reading,
) {
    if out.found.len() <= before {
        return;
    }
    let figure = f.text(text).to_string();
    let compared = f.suffix.is_some() || hints.op.is_some() || quantity::cmp_before(&w.toks, w.at(f.start)).is_some();
    let committed = hints.targets || tone.committed || named_at(text, f);
    // A label and its figure ("Peak: 3,000 req/s") is how specs are written; a figure that a
    // sentence states as a fact ("= 20,000 writes/s", "depends on", "would be"), a heading
    // or a range stated with no commitment is asked about.
    let named_objective = tone.objective && matches!(label, Label::Rto | Label::Rpo);
    let uncommitted = !(committed || compared || named_objective);
    let why = if let Some(m) = &tone.unsure {
        format!("`{figure}` is called \"{m}\": is it a target?")
    } else if text[..f.start].trim_end().ends_with('±') {
        format!("`±{figure}` is an estimate: is `{figure}` a target?")
    } else if let (true, Some(verb)) = (uncommitted, &tone.stated) {
        format!("`{figure}` is stated as a fact (\"{verb}\"), with no comparison and no commitment (must, target, SLO ...): is it a target?")
    } else if uncommitted && hints.heading {
        format!(
            "`{figure}` is in a heading, with no comparison and no commitment (must, target, SLO ...): is it a target?"
        )
    } else if f.range.is_some() && !(compared || RANGE_OK.is_match(text)) {
        format!("`{figure}` is a range with no comparison and no commitment: is it a target, and which bound?")
    } else {
        return;
    };
    let readings = out.found.split_off(before);
    out.asks.push(Ask { at: f.start, figure, why, readings });
}

/// A request rate, unless a rate limit explains it.
fn push_rate(text: &str, w: &Words, spans: &[Span], f: &Figure, out: &mut Reading) {
    let limit = w.near(spans, f.start, f.end, 4).into_iter().find(|&(j, _, _)| {
        let s = &spans[j];
        s.label.sink() && s.label.takes(Class::Rate)
    });
    if let Some(Span { label: Label::Ignore(why, _), .. }) = limit.map(|(j, _, _)| &spans[j]) {
        out.unread.push(Unread { at: f.start, figure: f.text(text).to_string(), why: (*why).into() });
        return;
    }
    push(text, &w.toks, f, &Label::Throughput, &Hints::default(), out);
}

/// A figure with its label: a requirement, or why not.
fn push(text: &str, toks: &[Token], f: &Figure, label: &Label, hints: &Hints, out: &mut Reading) {
    let figure = f.text(text).to_string();
    let at = f.start;
    let kind = match label {
        Label::Ignore(why, _) => {
            out.unread.push(Unread { at, figure, why: (*why).into() });
            if why.starts_with("a mean time") {
                out.notes.push((*why).into());
            }
            return;
        }
        Label::Latency => Kind::Other,
        Label::Stat(p) if p == "avg" => Kind::LatencyAvg,
        Label::Stat(p) => Kind::LatencyP(p.clone()),
        Label::Throughput => Kind::Throughput,
        Label::Success | Label::Error => Kind::SuccessRate,
        Label::Availability => Kind::Availability,
        Label::Downtime => Kind::FailoverDowntime,
        Label::Rto => Kind::Rto,
        Label::Rpo => Kind::Rpo,
    };
    let d = dir(label);
    let written = f.suffix.or_else(|| quantity::cmp_before(toks, quantity::token_at(toks, f.start)));
    let default = if d == Dir::Up { Op::Ge } else { Op::Le };
    let (op, value) = match f.range {
        Some((lo, hi)) => (default, if d == Dir::Up { lo } else { hi }),
        None => {
            let op = match written.or(hints.op.map(Cmp::Op)) {
                None | Some(Cmp::UpTo) | Some(Cmp::Op(Op::Eq)) => default,
                Some(Cmp::Op(op)) => op,
            };
            let consistent = match d {
                Dir::Up => matches!(op, Op::Ge | Op::Gt),
                Dir::Down => matches!(op, Op::Le | Op::Lt),
            };
            if !consistent {
                out.unread.push(Unread {
                    at,
                    figure,
                    why: format!(
                        "\"{} {}\" would be a {} for a {}, whose target is {}: not read",
                        op_words(op),
                        f.text(text),
                        if d == Dir::Up { "ceiling" } else { "floor" },
                        what(label),
                        if d == Dir::Up { "a floor" } else { "a ceiling" }
                    ),
                });
                return;
            }
            (op, f.value)
        }
    };
    // Impossible figures.
    let bad = match &kind {
        Kind::LatencyP(p) if !p.parse::<f64>().is_ok_and(|p| p > 0.0 && p < 100.0) => {
            Some(format!("percentile p{p} does not exist"))
        }
        Kind::LatencyAvg | Kind::LatencyP(_) | Kind::Other if value < 0.0 => {
            Some(format!("a latency of {} ms is impossible", fmt_num(value * 1000.0)))
        }
        Kind::SuccessRate | Kind::Availability if !(0.0..=100.0).contains(&value) => {
            Some(format!("a {} of {} % is impossible", what(label), fmt_num(value)))
        }
        Kind::Throughput if value <= 0.0 => Some(format!("a throughput of {} req/s is not a target", fmt_num(value))),
        Kind::FailoverDowntime | Kind::Rto | Kind::Rpo if value < 0.0 => {
            Some(format!("a {kind} of {} s is impossible", fmt_num(value)))
        }
        _ => None,
    };
    if let Some(why) = bad {
        out.impossible.push((at, why));
        return;
    }
    if *label == Label::Latency {
        // No statistic: flow does not guess one; a person says which (or none).
        let ms = (value * 1000.0 * 1e6).round() / 1e6;
        out.asks.push(Ask {
            at,
            figure: figure.clone(),
            why: format!("`{figure}` is a latency with no statistic: the average, the p95 or the p99?"),
            readings: [Kind::LatencyAvg, Kind::LatencyP("95".into()), Kind::LatencyP("99".into())]
                .into_iter()
                .map(|kind| Read { kind, op, value: ms, at, scope: None })
                .collect(),
        });
        return;
    }
    let (op, value) = match (label, &kind) {
        // error <= x  <=>  success >= 100 - x
        (Label::Error, _) => (if op == Op::Lt { Op::Gt } else { Op::Ge }, ((100.0 - value) * 1e9).round() / 1e9),
        (_, Kind::LatencyAvg | Kind::LatencyP(_)) => (op, (value * 1000.0 * 1e6).round() / 1e6),
        _ => (op, (value * 1e9).round() / 1e9),
    };
    out.found.push(Read { kind, op, value, at, scope: None });
}
