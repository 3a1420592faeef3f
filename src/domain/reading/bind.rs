//! Binding: which label each figure is, and which figures restate the one before them.

use super::*;

/// "99.7 % (2.5 nines)": the nines restate the figure before them.
pub(super) fn restated(text: &str, figs: &[Figure]) -> Vec<bool> {
    (0..figs.len())
        .map(|i| {
            figs[i].nines
                && i > 0
                && figs[i - 1].class == Class::Percent
                && text[figs[i - 1].end..figs[i].start].trim() == "("
        })
        .collect()
}

/// Each figure's label (an index into the spans; `usize::MAX`: the figure explains itself),
/// and which labels are taken.
pub(super) struct Bound {
    pub(super) bound: Vec<Option<usize>>,
    pub(super) taken: Vec<bool>,
}

/// Bind each figure to a label: figures that explain themselves, "respectively" in order, a
/// look-alike's parentheses, then the nearest compatible label (one figure per label, a
/// look-alike takes any), then today's figure's label, then a list's.
pub(super) fn bind(text: &str, w: &Words, spans: &[Span], figs: &[Figure], current: &[bool]) -> Bound {
    let mut bound: Vec<Option<usize>> = vec![None; figs.len()];
    let mut taken = vec![false; spans.len()];
    // Figures that explain themselves: request rates, bandwidth, nines.
    for (i, f) in figs.iter().enumerate() {
        match f.class {
            Class::Rate | Class::Bandwidth => bound[i] = Some(usize::MAX),
            Class::Percent if f.nines => bound[i] = Some(usize::MAX),
            _ => {}
        }
    }
    // "The RTO and RPO are 1 hour and 5 minutes respectively": in order.
    if text.to_ascii_lowercase().contains("respectively") {
        let ls: Vec<usize> = (0..spans.len()).filter(|&j| !spans[j].label.sink()).collect();
        let fs: Vec<usize> = (0..figs.len()).filter(|&i| bound[i].is_none()).collect();
        if ls.len() == fs.len()
            && fs.len() > 1
            && ls.iter().zip(&fs).all(|(&j, &i)| spans[j].label.takes(figs[i].class))
        {
            for (&j, &i) in ls.iter().zip(&fs) {
                bound[i] = Some(j);
                taken[j] = true;
            }
        }
    }
    // "the relevant budget (1% for availability, 5% for latency)": a look-alike's parentheses
    // hold its own figures.
    for (j, sp) in spans.iter().enumerate().filter(|(_, sp)| sp.label.sink()) {
        let rest = &text[sp.end..];
        let Some(open) =
            rest.strip_prefix(' ').unwrap_or(rest).strip_prefix('(').map(|_| sp.end + rest.find('(').unwrap_or(0))
        else {
            continue;
        };
        let reach = &text[open..text.len().min(open + 200)];
        let reach = &text[open..open + reach.char_indices().last().map_or(0, |(i, c)| i + c.len_utf8())];
        let close = reach.find(')').map_or(open + reach.len(), |c| open + c);
        let k = figs.partition_point(|f| f.start <= open);
        for (i, f) in figs.iter().enumerate().skip(k).take_while(|(_, f)| f.start < close) {
            if bound[i].is_none() && f.end <= close && sp.label.takes(f.class) {
                bound[i] = Some(j);
            }
        }
    }
    // The rest: nearest compatible label first, one figure per label (look-alikes take any).
    let mut pairs: Vec<(usize, bool, usize, usize)> = Vec::new();
    for (i, f) in figs.iter().enumerate() {
        if bound[i].is_some() {
            continue;
        }
        for (j, d, after) in w.near(spans, f.start, f.end, MAX_DISTANCE) {
            if spans[j].label.takes(f.class) {
                pairs.push((d, after, j, i));
            }
        }
    }
    pairs.sort();
    for (_, _, j, i) in pairs {
        if bound[i].is_some() || (taken[j] && !spans[j].label.sink()) {
            continue;
        }
        bound[i] = Some(j);
        taken[j] = true;
    }

    for i in 0..figs.len() {
        if bound[i].is_none() {
            // A label of today's figure of the same class, earlier in the sentence.
            let earlier = (0..i).rev().find(|&k| current[k] && figs[k].class == figs[i].class && bound[k].is_some());
            bound[i] = earlier.and_then(|k| bound[k]);
        }
        // "p99 < 1 s for reads, < 3 s for writes": the next figure of a list shares the label
        // when both say what they apply to.
        if bound[i].is_none() && i > 0 && bound[i - 1].is_some_and(|j| j != usize::MAX) {
            let k = i - 1;
            let near = figs[k].class == figs[i].class && w.distance(figs[k].end, figs[i].start) <= 6;
            let scoped = scope_after(text, &figs[k]).is_some() && scope_after(text, &figs[i]).is_some();
            // "<= 300 ms (P95); <= 500 ms at 2x peak": a second compared figure, right after.
            let compared = |g: &Figure| g.suffix.is_some() || quantity::cmp_before(&w.toks, w.at(g.start)).is_some();
            let stat = matches!(bound[k].map(|j| &spans[j].label), Some(Label::Stat(_)));
            if near && (scoped || (stat && compared(&figs[k]) && compared(&figs[i]))) {
                bound[i] = bound[k];
            }
        }
    }

    Bound { bound, taken }
}
