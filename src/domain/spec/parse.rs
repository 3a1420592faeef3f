//! [`parse`]: a spec's text -> [`Spec`], as a pipeline of passes, each with its own types:
//!
//! 1. `walk` — the Markdown events -> [`Walked`] (units, context, figures in code and HTML);
//! 2. the context section's `Key: value` units join the context;
//! 3. `read` — each other unit -> [`Stated`] (requirements without ids) and [`Findings`]
//!    (unread figures, questions, impossible figures, notes, a multi-AZ line);
//! 4. [`numbered`] — ids: given, or derived from the heading and the order;
//! 5. [`settle`] — the same target merged, a tier chosen from a menu, ids made unique,
//!    conflicts turned into questions, the multi-AZ question, questions numbered, the whole
//!    spec's warning.

use std::collections::BTreeMap;

use super::lines::Lines;
use super::read::{read_unit, Findings, Stated};
use super::walk::{walk, Walked};
use super::*;
use crate::domain::requirement::{Kind, Op, Requirement, Source};

pub fn parse(path: &str, text: &str) -> Result<Spec, Error> {
    if text.trim().is_empty() {
        return Err(Error { path: path.into(), line: None, kind: ErrorKind::Empty, source_line: None });
    }
    let text = &*targets_in_code(text);
    let lines = Lines::new(text);
    let Walked { units, mut context, unread } = walk(text, &lines);
    // Context section: "Key: value" units.
    for u in units.iter().filter(|u| u.in_context) {
        if let Some(c) = KEY_VALUE.captures(&u.text.text) {
            context.insert(context_key(&c["k"]), strip_value(&c["v"]));
        }
    }
    let mut findings = Findings { unread, ..Findings::default() };
    let stated: Vec<Stated> =
        units.iter().filter(|u| !u.in_context).map(|u| read_unit(u, &lines, &mut findings)).collect();
    let reqs = numbered(stated);
    Ok(settle(reqs, findings, context, &lines))
}

/// Each unit's requirements with their ids: the unit's own, else `<heading slug>-<n>`
/// counted per heading; a unit with several gets `a`, `b`... after the first.
fn numbered(stated: Vec<Stated>) -> Vec<Requirement> {
    let mut per_heading: BTreeMap<String, usize> = BTreeMap::new();
    let mut reqs = Vec::new();
    for Stated { id, heading, found } in stated.into_iter().filter(|s| !s.found.is_empty()) {
        let base = id.unwrap_or_else(|| {
            let slug = slug(&heading);
            let slug = if slug.is_empty() { "req".to_string() } else { slug };
            let n = per_heading.entry(slug.clone()).or_insert(0);
            *n += 1;
            format!("{slug}-{n}")
        });
        let many = found.len() > 1;
        for (i, f) in found.into_iter().enumerate() {
            let id = if many && i > 0 { format!("{base}{}", (b'a' + (i as u8).min(25)) as char) } else { base.clone() };
            let unit = f.kind.unit();
            reqs.push(Requirement {
                id,
                kind: f.kind,
                op: f.op,
                value: f.value,
                unit,
                line: f.line,
                text: f.text,
                scope: f.scope,
                lines: Vec::new(),
                source: Source::Builtin,
                note: f.note,
            });
        }
    }
    reqs
}

/// The requirements as the whole spec has them, and what to ask and tell about them.
fn settle(reqs: Vec<Requirement>, findings: Findings, context: Context, lines: &Lines) -> Spec {
    let Findings { mut diagnostics, mut unread, asked, multi_az } = findings;
    let reqs = merge(reqs, &mut diagnostics, lines);
    let mut reqs = chosen_tier(reqs, lines, &mut unread);
    // Ids must be unique: a later duplicate of an explicit id gets a suffix.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in reqs.iter_mut() {
        let n = seen.entry(r.id.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            r.id = format!("{}-{}", r.id, n);
        }
    }
    let (reqs, mut questions) = conflicts(reqs, lines);
    questions.extend(asked);
    if let Some((line, shown, scope)) = multi_az.filter(|_| !reqs.iter().any(|r| r.kind == Kind::AzFailureTolerance)) {
        let src = lines.source(line);
        let mut r = Requirement::new("", Kind::AzFailureTolerance, Op::Eq, 1.0, line, &shown);
        r.scope = scope;
        questions.push(Question {
            id: String::new(),
            key: question_key("multi-az", &[&src]),
            line,
            other_line: None,
            text: src.trim().to_string(),
            why: "the service is spread over Availability Zones, but no line says it must survive losing one: is that a requirement?".into(),
            readings: vec![r],
        });
    }
    questions.sort_by_key(|q| q.line);
    number_questions(&mut questions);
    diagnostics.extend(whole_spec_warning(&reqs, questions.len()));
    diagnostics.sort_by_key(|d| (d.line.unwrap_or(0), d.level as u8));
    unread.sort_by_key(|u| u.line);
    unread.dedup_by(|a, b| a.line == b.line && a.figure == b.figure);
    Spec { requirements: reqs, context, diagnostics, unread, questions, llm: None }
}

/// Question ids by line: `q-12`, and `q-12b` for a second on the same line.
fn number_questions(qs: &mut [Question]) {
    let mut per_line: BTreeMap<usize, usize> = BTreeMap::new();
    for q in qs.iter_mut() {
        let n = per_line.entry(q.line).or_insert(0);
        *n += 1;
        q.id = if *n == 1 {
            format!("q-{}", q.line)
        } else {
            format!("q-{}{}", q.line, (b'a' + (*n as u8).min(26) - 1) as char)
        };
    }
}

/// What an answer is kept under: what is asked, and the text of the lines it is about.
pub(crate) fn question_key(what: &str, texts: &[&str]) -> String {
    let mut s = String::from(what);
    for t in texts {
        s.push('\n');
        s.push_str(t.trim());
    }
    crate::domain::digest::of_bytes(s.as_bytes())
}
