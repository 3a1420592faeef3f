//! Requirements read twice merged into one, and conflicting targets found.

use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::domain::requirement::{fmt_num, Kind, Op, Requirement};

/// The same target restated elsewhere (a summary table, a glossary) is one requirement with
/// all its lines; restated with a different strictness, the stricter is kept and noted.
pub(crate) fn merge(
    reqs: Vec<Requirement>,
    diagnostics: &mut Vec<Diagnostic>,
    source_line: &dyn Fn(usize) -> String,
) -> Vec<Requirement> {
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
        let mut lines = e.all_lines();
        if !lines.contains(&r.line) {
            lines.push(r.line);
        }
        e.lines = if lines.len() > 1 { lines } else { Vec::new() };
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
                text: source_line(r.line),
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
pub(crate) fn conflicts(
    reqs: Vec<Requirement>,
    source_line: &dyn Fn(usize) -> String,
) -> (Vec<Requirement>, Vec<Question>) {
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
        let texts: Vec<String> = readings.iter().map(|r| source_line(r.line)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        questions.push(Question {
            id: String::new(),
            key: question_key(&format!("conflict {}", first.kind), &refs),
            line: second.line,
            other_line: Some(first.line),
            text: source_line(second.line).trim().to_string(),
            why,
            readings,
        });
    }
    let kept = reqs.into_iter().zip(questioned).filter(|(_, q)| !q).map(|(r, _)| r).collect();
    (kept, questions)
}
