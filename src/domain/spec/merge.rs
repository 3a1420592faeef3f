//! Requirements read twice merged into one, a tier chosen from a menu of tiers, and
//! conflicting targets found.

use std::collections::{BTreeMap, HashMap};

use super::lines::Lines;
use super::*;
use crate::domain::requirement::{fmt_num, Kind, Op, Requirement};

/// The same target restated elsewhere (a summary table, a glossary) is one requirement with
/// all its lines; restated with a different strictness, the stricter is kept and noted.
pub(crate) fn merge(reqs: Vec<Requirement>, diagnostics: &mut Vec<Diagnostic>, lines: &Lines) -> Vec<Requirement> {
    // The first earlier requirement of the same kind, value and direction whose scope fits
    // (equal, or either unscoped), found by index rather than by comparing every pair.
    type Key = (Kind, i64, u8);
    let key = |r: &Requirement| -> Key {
        let way = match r.op {
            Op::Lt | Op::Le => 0,
            Op::Gt | Op::Ge => 1,
            Op::Eq => 2,
        };
        (r.kind.clone(), (r.value * 1e6).round() as i64, way)
    };
    let mut any_scope: HashMap<Key, usize> = HashMap::new();
    let mut by_scope: HashMap<(Key, Option<String>), usize> = HashMap::new();
    let mut out: Vec<Requirement> = Vec::new();
    for r in reqs {
        let k = key(&r);
        let scope = r.scope.as_deref().map(scope_or_name);
        let twin = if !r.kind.has_target() {
            None
        } else if r.scope.is_none() {
            any_scope.get(&k).copied()
        } else {
            let same = by_scope.get(&(k.clone(), scope.clone())).copied();
            let unscoped = by_scope.get(&(k.clone(), None)).copied();
            same.into_iter().chain(unscoped).min()
        };
        let Some(e) = twin.map(|i| &mut out[i]) else {
            any_scope.entry(k.clone()).or_insert(out.len());
            by_scope.entry((k, scope)).or_insert(out.len());
            out.push(r);
            continue;
        };
        let mut all = e.all_lines();
        if !all.contains(&r.line) {
            all.push(r.line);
        }
        e.lines = if all.len() > 1 { all } else { Vec::new() };
        if e.scope.is_none() && r.scope.is_some() {
            e.scope = r.scope.clone();
            let i = twin.unwrap_or_default();
            by_scope.entry((k, scope)).or_insert(i);
        }
        if e.op != r.op && r.line != e.line {
            let stricter = if matches!(r.op, Op::Lt | Op::Gt) { r.op } else { e.op };
            diagnostics.push(Diagnostic {
                level: Level::Note,
                line: Some(r.line),
                other_line: Some(e.line),
                message: format!(
                    "restates {} ({} at line {}) as {} {} {}; the stricter {} {} {} is kept",
                    e.id,
                    e.target(),
                    e.line,
                    r.op.symbol(),
                    fmt_num(r.value),
                    r.unit.symbol(),
                    stricter.symbol(),
                    fmt_num(r.value),
                    r.unit.symbol()
                ),
                text: lines.source(r.line),
                refusal: None,
            });
            e.op = stricter;
        }
    }
    out
}

/// Two (or more) different targets of one kind for the same scope: not a refusal but a
/// question naming every line, each target a reading to choose; they are left out of the
/// requirements until a person answers.
pub(crate) fn conflicts(reqs: Vec<Requirement>, lines: &Lines) -> (Vec<Requirement>, Vec<Question>) {
    // Requirements of one kind and one scope with more than one target: one question.
    let mut buckets: BTreeMap<(Kind, Option<String>), Vec<usize>> = BTreeMap::new();
    for (i, b) in reqs.iter().enumerate().filter(|(_, b)| b.kind.has_target()) {
        buckets.entry((b.kind.clone(), b.scope.as_deref().map(scope_or_name))).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> =
        buckets.into_values().filter(|g| g.iter().any(|&k| !reqs[k].same_target(&reqs[g[0]]))).collect();
    groups.sort();
    let mut questioned = vec![false; reqs.len()];
    let mut questions = Vec::new();
    for g in groups {
        let mut g = g;
        g.sort();
        g.dedup();
        // A requirement restating one of the group's targets belongs to it too.
        let readings: Vec<Requirement> = g.iter().map(|&k| reqs[k].clone()).collect();
        for &k in &g {
            questioned[k] = true;
        }
        let (first, second) = (&readings[0], &readings[1]);
        let scope = first.scope.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
        let why = format!(
            "two different targets for {}{scope}: {} at line {} and {} at line {}{}: which holds?",
            first.kind,
            first.target(),
            first.line,
            second.target(),
            second.line,
            if readings.len() > 2 { format!(" (and {} more)", readings.len() - 2) } else { String::new() }
        );
        let texts: Vec<String> = readings.iter().map(|r| lines.source(r.line)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        questions.push(Question {
            id: String::new(),
            key: question_key(&format!("conflict {}", first.kind), &refs),
            line: second.line,
            other_line: Some(first.line),
            text: lines.source(second.line).trim().to_string(),
            why,
            readings,
        });
    }
    let kept = reqs.into_iter().zip(questioned).filter(|(_, q)| !q).map(|(r, _)| r).collect();
    (kept, questions)
}

/// A table of tiers (one row per tier, each its own target) is a set of promises, one per
/// tier, until the spec chooses one ("Default target: 99.95 % uptime (Enterprise tier)"): then
/// the other tiers' figures of that kind are a menu it did not pick, not its targets. The
/// chosen row joins the line that chose it. Only a line outside the table that names exactly
/// one tier, with that tier's figure, chooses.
pub(crate) fn chosen_tier(mut reqs: Vec<Requirement>, lines: &Lines, unread: &mut Vec<Unread>) -> Vec<Requirement> {
    // Only a line that says "tier" can choose one: most specs pass this pass in one look.
    let choosers: Vec<usize> = (0..reqs.len()).filter(|&c| reqs[c].text.to_lowercase().contains("tier")).collect();
    if choosers.is_empty() {
        return reqs;
    }
    let in_table: Vec<bool> = reqs.iter().map(|r| lines.source(r.line).trim_start().starts_with('|')).collect();
    let mut drop: Vec<usize> = Vec::new();
    for c in choosers {
        if in_table[c] {
            continue;
        }
        let text = reqs[c].text.to_lowercase();
        let tiers: Vec<usize> = (0..reqs.len())
            .filter(|&i| i != c && in_table[i] && reqs[i].kind == reqs[c].kind)
            .filter(|&i| reqs[i].scope.as_deref().is_some_and(|s| !s.is_empty()))
            .collect();
        if tiers.len() < 2 {
            continue;
        }
        let named: Vec<usize> = tiers
            .iter()
            .copied()
            .filter(|&i| {
                let tier = reqs[i].scope.as_deref().unwrap_or_default().to_lowercase();
                text.contains(&format!("{tier} tier")) || text.contains(&format!("tier: {tier}"))
            })
            .collect();
        let [chosen] = named[..] else { continue };
        if !reqs[chosen].same_target(&reqs[c]) {
            continue;
        }
        for &i in &tiers {
            if i == chosen {
                continue;
            }
            let r = &reqs[i];
            unread.push(Unread {
                line: r.line,
                text: lines.source(r.line).trim().to_string(),
                figure: r.target(),
                why: format!(
                    "the tier \"{}\" in a menu of tiers; line {} chooses \"{}\"",
                    r.scope.as_deref().unwrap_or_default(),
                    reqs[c].line,
                    reqs[chosen].scope.as_deref().unwrap_or_default()
                ),
            });
            drop.push(i);
        }
        let mut joined = reqs[c].all_lines();
        joined.extend(reqs[chosen].all_lines());
        joined.sort();
        joined.dedup();
        reqs[c].lines = joined;
        drop.push(chosen);
    }
    drop.sort();
    drop.dedup();
    for i in drop.into_iter().rev() {
        reqs.remove(i);
    }
    reqs
}
