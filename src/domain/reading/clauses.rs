//! Finding the labels of a sentence and the clauses around a figure: which labels stand
//! where, what a clause makes of a figure, how far apart two places are ([`Words`]).

use crate::domain::quantity::{self, Figure, Token};
use crate::domain::requirement::Op;
use regex::Regex;
use std::sync::LazyLock;

use super::*;

/// Every label in `text`, look-alikes first; a label inside a look-alike is dropped, and a
/// statistic next to a latency word is one label with it.
pub fn labels(text: &str) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for (rx, why, classes) in IGNORE.iter() {
        for m in rx.find_iter(text) {
            out.push(Span { start: m.start(), end: m.end(), label: Label::Ignore(why, classes) });
        }
    }
    let mut found: Vec<Span> = Vec::new();
    for rx in [&*STAT_P, &*STAT_NTH, &*STAT_PCTL] {
        for c in rx.captures_iter(text) {
            let m = c.get(0).expect("whole match");
            found.push(Span { start: m.start(), end: m.end(), label: Label::Stat(c["p"].to_string()) });
        }
    }
    for c in STAT_INTL.captures_iter(text) {
        let m = c.get(0).expect("whole match");
        let p = c.name("p").or(c.name("q")).map_or("", |p| p.as_str());
        found.push(Span { start: m.start(), end: m.end(), label: Label::Stat(p.to_string()) });
    }
    for m in STAT_MEDIAN.find_iter(text) {
        found.push(Span { start: m.start(), end: m.end(), label: Label::Stat("50".into()) });
    }
    for m in STAT_AVG.find_iter(text) {
        found.push(Span { start: m.start(), end: m.end(), label: Label::Stat("avg".into()) });
    }
    for (rx, label) in KINDS.iter().chain(KINDS_INTL.iter()) {
        for m in rx.find_iter(text) {
            found.push(Span { start: m.start(), end: m.end(), label: label.clone() });
        }
    }
    found.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    // A label overlapping a look-alike or a label kept before it is dropped. Look-alikes by
    // start with the furthest end so far; kept labels come in order of start.
    out.sort_by_key(|s| s.start);
    let mut reach = Vec::with_capacity(out.len());
    let mut far = 0;
    for o in &out {
        far = far.max(o.end);
        reach.push(far);
    }
    let ignores = out.len();
    let mut kept_end = 0;
    for s in found {
        let k = out[..ignores].partition_point(|o| o.start < s.end);
        let under_ignore = k > 0 && reach[k - 1] > s.start;
        if !under_ignore && kept_end <= s.start {
            kept_end = s.end;
            out.push(s);
        }
    }
    out.sort_by_key(|s| s.start);
    // "requests that do not return 5xx", "without errors": the successes.
    for s in out.iter_mut().filter(|s| s.label == Label::Error) {
        let mut from = s.start.saturating_sub(48);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        if NEGATED.is_match(&text[from..s.start]) {
            s.label = Label::Success;
        }
    }
    // "Severity 1 support requests receive a response within 1 hour": in a sentence about
    // support, a response is support's, not the service's latency.
    if out.iter().any(|s| matches!(s.label, Label::Ignore(why, _) if why.starts_with("a support response"))) {
        out.retain(|s| s.label != Label::Latency);
    }
    merge_adjacent(text, out)
}

/// "p99 latency", "response time (p95)", "recovery time objective (RTO)": one label.
pub(crate) fn merge_adjacent(text: &str, spans: Vec<Span>) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for s in spans {
        if let Some(last) = out.last_mut() {
            let between = &text[last.end.min(s.start)..s.start];
            let words = between.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).count();
            // Never across a figure: "RPO: 0 (no data loss)" is a label, its figure, a remark.
            let close =
                words <= 2 && !between.contains([',', ';', '.']) && !between.chars().any(|c| c.is_ascii_digit());
            let merged = match (&last.label, &s.label) {
                (Label::Stat(_), Label::Latency) => Some(last.label.clone()),
                (Label::Latency, Label::Stat(_)) => Some(s.label.clone()),
                (a, b) if a == b && !a.sink() => Some(a.clone()),
                _ => None,
            };
            if let (true, Some(label)) = (close, merged) {
                last.end = s.end;
                last.label = label;
                continue;
            }
        }
        out.push(s);
    }
    out
}

/// Words a clause reaches on each side of its figure, at most: a sentence with no punctuation
/// is not one clause of a hundred thousand words.
pub(crate) const CLAUSE_REACH: usize = 30;

/// A figure's clause: from the last clause break before it to the next one after it.
pub(crate) fn clause(text: &str, w: &Words, start: usize, end: usize) -> (usize, usize) {
    let toks = &w.toks;
    let (a, b) = (w.at(start), w.at(end));
    let lo = a.saturating_sub(CLAUSE_REACH);
    let window = if lo == 0 { 0 } else { toks[lo].start };
    let start_before = |a: usize| {
        toks[lo..a.clamp(lo, toks.len())]
            .iter()
            .rposition(|t| clause_break(&t.text))
            .map_or(window, |i| toks[lo + i].end)
    };
    // Inside "(e.g., 99.9 % monthly)" or "limits (login: 5/minute, signup: 3/minute)", the clause
    // is the one the parenthesis opens in.
    let open = text[window..start].rfind('(').map(|o| window + o).filter(|&o| !text[o..start].contains(')'));
    let from = match open {
        Some(o) => start_before(w.at(o)),
        None => start_before(a),
    };
    let hi = (b + CLAUSE_REACH).min(toks.len());
    let to = toks[b.min(toks.len())..hi]
        .iter()
        .position(|t| clause_break(&t.text))
        .map_or(if hi == toks.len() { text.len() } else { toks[hi].start }, |i| toks[b + i].start);
    (from, to.max(end))
}

/// Why a figure is not a target, from the words of its clause, if they say so.
pub(crate) fn not_a_target(
    text: &str,
    w: &Words,
    f: &Figure,
    kind_label: &Label,
    column: bool,
) -> Option<&'static str> {
    let (from, to) = clause(text, w, f.start, f.end);
    let c = &text[from..to];
    NOT_TARGET.iter().find_map(|(rx, why)| {
        // A downtime allowance is about downtime; replication lag about data loss.
        if why.starts_with("a downtime allowance") && !matches!(kind_label, Label::Downtime) {
            return None;
        }
        if why.starts_with("a replication lag") && column {
            return None;
        }
        if why.starts_with("a replication lag")
            && !matches!(kind_label, Label::Rpo | Label::Downtime | Label::Rto | Label::Latency | Label::Stat(_))
        {
            return None;
        }
        if why.starts_with("a satisfaction")
            && !matches!(kind_label, Label::Success | Label::Error | Label::Availability)
        {
            return None;
        }
        if why.starts_with("a per-client") && !matches!(kind_label, Label::Throughput) {
            return None;
        }
        if why.starts_with("a capacity per") && !matches!(kind_label, Label::Throughput) {
            return None;
        }
        // "injecting 1100 req/s (above the 1000 req/s SLO)": the SLO is named at its figure.
        if why.starts_with("a load the test") && (!matches!(kind_label, Label::Throughput) || named_at(text, f)) {
            return None;
        }
        if why.starts_with("a measured result") && COMMITTED.is_match(c) && !c.contains(['✅', '❌']) {
            return None;
        }
        rx.is_match(c).then_some(*why)
    })
}

/// "1000 req/s SLO", "a 300 ms target": the figure is named a target where it stands.
pub(crate) fn named_at(text: &str, f: &Figure) -> bool {
    static NAMED: LazyLock<Regex> =
        LazyLock::new(|| re(r"^\s*(?:\w+\s+)?(?:slos?|slas?|targets?|objectives?|goals?|requirements?)\b"));
    NAMED.is_match(&text[f.end..])
}

pub fn called_target(text: &str, f: &Figure) -> bool {
    let before = &text[..f.start];
    let mut from = before.len().saturating_sub(24);
    while !before.is_char_boundary(from) {
        from += 1;
    }
    TARGET_AFTER.is_match(&text[f.end..]) || TARGET_BEFORE.is_match(&before[from..])
}

/// Which way is better for a kind.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Dir {
    Up,
    Down,
}

pub(crate) fn dir(label: &Label) -> Dir {
    match label {
        Label::Throughput | Label::Success | Label::Availability => Dir::Up,
        _ => Dir::Down,
    }
}

/// The tokens of a sentence with running sums, so that the distance between two places and
/// whether a clause breaks between them cost a binary search, not a walk: reading stays linear
/// in the sentence's length.
pub(crate) struct Words {
    pub toks: Vec<Token>,
    /// `weight[i]`: the distance weight of `toks[..i]`.
    pub(crate) weight: Vec<usize>,
    /// `breaks[i]`: how many clause breaks are in `toks[..i]`.
    pub(crate) breaks: Vec<usize>,
}

impl Words {
    pub(crate) fn new(text: &str) -> Words {
        let toks = quantity::tokens(text);
        let mut weight = Vec::with_capacity(toks.len() + 1);
        let mut breaks = Vec::with_capacity(toks.len() + 1);
        let (mut w, mut b) = (0, 0);
        weight.push(0);
        breaks.push(0);
        for t in &toks {
            w += match t.text.as_str() {
                "," | "—" | "–" => 2,
                ";" => 4,
                ":" | "(" | ")" => 0,
                _ => 1,
            };
            b += usize::from(clause_break(&t.text));
            weight.push(w);
            breaks.push(b);
        }
        Words { toks, weight, breaks }
    }

    pub(crate) fn at(&self, pos: usize) -> usize {
        quantity::token_at(&self.toks, pos)
    }

    /// Words between two byte offsets, with clause punctuation weighing more.
    pub(crate) fn distance(&self, from: usize, to: usize) -> usize {
        let (a, b) = (self.at(from), self.at(to));
        self.weight[b.max(a)] - self.weight[a]
    }

    /// Does a clause break stand between two byte offsets?
    pub(crate) fn broken(&self, from: usize, to: usize) -> bool {
        let (a, b) = (self.at(from), self.at(to));
        self.breaks[b.max(a)] > self.breaks[a]
    }

    /// Labels within `max` of the figure at `start..end`: (index, distance, after the figure).
    /// `spans` is sorted by start; distance only grows away from the figure, so the walk stops
    /// at the first one too far.
    pub(crate) fn near(&self, spans: &[Span], start: usize, end: usize, max: usize) -> Vec<(usize, usize, bool)> {
        let mut out = Vec::new();
        let k = spans.partition_point(|s| s.start < end);
        for (j, s) in spans.iter().enumerate().skip(k) {
            let d = self.distance(end, s.start);
            if d > max {
                break;
            }
            out.push((j, d, true));
        }
        for j in (0..k).rev() {
            let s = &spans[j];
            if s.end > start {
                out.push((j, 0, false));
                continue;
            }
            let d = self.distance(s.end, start);
            if d <= max {
                out.push((j, d, false));
            } else if self.distance(s.start, start) > max + 20 {
                break;
            }
        }
        out
    }
}

pub(crate) const MAX_DISTANCE: usize = 10;

/// Why a figure with no label near it is not read.
pub const NO_LABEL: &str = "no label says what it measures";

pub(crate) const CURRENT_WHY: &str = "describes what is measured today, not a target";

pub(crate) fn clause_break(t: &str) -> bool {
    matches!(t, "," | ";" | "—" | "–" | "but" | "whereas" | "however" | "after")
}

/// Where the words that make a figure today's stand (outside labels): their ends, in order.
pub(crate) fn current_words(text: &str, labels: &[Span]) -> Vec<usize> {
    CURRENT
        .find_iter(text)
        .filter(|m| {
            let k = labels.partition_point(|l| l.end <= m.start());
            !labels[k..].iter().take_while(|l| l.start < m.end()).any(|l| m.start() < l.end)
        })
        .map(|m| m.end())
        .collect()
}

/// Is the figure at `start`..`end` described as today's, not a target? Either a word before it
/// in its clause ("the current p99 is 850 ms") or one right after it ("850 ms today").
pub(crate) fn is_current(w: &Words, current: &[usize], start: usize, end: usize) -> bool {
    let after = w.at(end);
    let trailing = w.toks[after.min(w.toks.len())..]
        .iter()
        .take_while(|t| !clause_break(&t.text) && t.text != ".")
        .take(3)
        .any(|t| CURRENT_AFTER.is_match(&t.text));
    // The nearest such word before the figure is the only one that can share its clause.
    let k = current.partition_point(|&e| e <= start);
    trailing || k.checked_sub(1).is_some_and(|k| !w.broken(current[k], start))
}

pub(crate) fn what(label: &Label) -> &'static str {
    match label {
        Label::Stat(_) | Label::Latency => "latency",
        Label::Throughput => "throughput",
        Label::Success => "success rate",
        Label::Error => "error rate",
        Label::Availability => "availability",
        Label::Downtime => "downtime",
        Label::Rto => "RTO",
        Label::Rpo => "RPO",
        Label::Ignore(..) => "figure",
    }
}

pub(crate) fn op_words(op: Op) -> &'static str {
    match op {
        Op::Lt => "below",
        Op::Le => "at most",
        Op::Gt => "above",
        Op::Ge => "at least",
        Op::Eq => "equal to",
    }
}

/// What a whole sentence says, found once: its commitment, a wish, a fact-stating verb.
pub(crate) struct Tone {
    pub(crate) committed: bool,
    /// "RTO", "recovery point objective": an objective by name.
    pub(crate) objective: bool,
    pub(crate) unsure: Option<String>,
    pub(crate) stated: Option<String>,
}

impl Tone {
    pub(crate) fn of(text: &str) -> Tone {
        Tone {
            committed: COMMITTED.is_match(text),
            objective: OBJECTIVE.is_match(text),
            unsure: UNSURE.find(text).map(|m| m.as_str().to_string()),
            stated: STATED.find(text).map(|m| m.as_str().trim().to_string()),
        }
    }
}
