//! A model's proposed requirements, held to the text. A proposal names a line and quotes it; it
//! is kept only when the quote is on that line and the builtin grammar reads the same kind and
//! value from the quote. Where the builtin reading of that line says something else (another
//! target, or that its figure is not a target), both are shown and the builtin one is used.

use serde::{Deserialize, Serialize};

use super::quantity::{self, Class};
use super::reading::{self, Hints};
use super::requirement::{fmt_num, Kind, Op, Requirement, Source, Unit};
use super::spec::{self, scope_key, scope_of, Spec};

/// One requirement as a model proposes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    pub line: usize,
    pub quote: String,
    pub kind: String,
    pub op: String,
    pub value: f64,
    pub unit: String,
    #[serde(default)]
    pub scope: String,
}

impl Proposal {
    fn shown(&self) -> String {
        format!("{} {} {} {}", self.kind, self.op, fmt_num(self.value), self.unit).trim_end().to_string()
    }
}

pub use super::spec::{Disagreement, Extraction, Rejected};

/// Text as compared: whitespace and Unicode spaces collapsed, emphasis and code marks gone,
/// lower case.
fn plain(text: &str) -> String {
    let t: String = text.chars().filter(|c| !matches!(c, '*' | '_' | '`')).collect();
    quantity::normalize(&t).to_lowercase()
}

fn op_of(s: &str) -> Option<Op> {
    Some(match s.trim() {
        "<" => Op::Lt,
        "<=" | "≤" => Op::Le,
        ">" => Op::Gt,
        ">=" | "≥" => Op::Ge,
        "==" | "=" => Op::Eq,
        _ => return None,
    })
}

/// A value and unit as the model wrote them, in the kind's unit.
fn in_unit(kind: &Kind, value: f64, unit: &str) -> Option<f64> {
    let want = match kind.unit() {
        Unit::Ms | Unit::Seconds => Class::Time,
        Unit::ReqPerSec => Class::Rate,
        Unit::Percent => Class::Percent,
        Unit::Bool => return None,
    };
    let text = format!("{} {}", fmt_num(value), unit.trim());
    let f = quantity::figures(&text, true).into_iter().next()?;
    if f.class != want || f.start != 0 {
        return None;
    }
    Some(if kind.unit() == Unit::Ms { f.value * 1000.0 } else { f.value })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

fn target(r: &Requirement) -> String {
    let scope = r.scope.as_deref().map(|s| format!(" [{s}]")).unwrap_or_default();
    if r.kind.has_target() && r.kind != Kind::AzFailureTolerance {
        format!("{} ({}{scope}): {} {} {} {}", r.id, r.kind, r.kind, r.op.symbol(), fmt_num(r.value), r.unit.symbol())
    } else {
        format!("{} ({}{scope})", r.id, r.kind)
    }
}

/// Words right before the quote that turn it around ("it is not required that p99 ...").
fn negated_before(line: &str, at: usize) -> bool {
    let before: Vec<&str> = line[..at].split_whitespace().rev().take(4).collect();
    before.iter().any(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        matches!(w, "not" | "no" | "never" | "without" | "nor") || w.ends_with("n't")
    })
}

/// The one line a proposal's quote is on: the line it names when the quote is there, else the
/// only line that holds it (a quote of 8 characters or more; a short one could be anywhere).
fn quote_line(p: &Proposal, plain_lines: &[String]) -> Option<usize> {
    let quote = plain(&p.quote);
    if quote.is_empty() {
        return None;
    }
    if p.line >= 1 && plain_lines.get(p.line - 1).is_some_and(|l| l.contains(&quote)) {
        return Some(p.line);
    }
    if quote.chars().count() < 8 {
        return None;
    }
    let mut on = plain_lines.iter().enumerate().filter(|(_, l)| l.contains(&quote)).map(|(i, _)| i + 1);
    match (on.next(), on.next()) {
        (Some(line), None) => Some(line),
        _ => None,
    }
}

/// flow's reasons for leaving a figure unread that say nothing about what it means.
const NOT_A_VETO: [&str; 3] = [reading::NO_LABEL, spec::IN_CODE, spec::IN_HTML];

/// Hold each proposal to the spec's text; add the kept ones to `spec` (source `llm`) and
/// record what became of every one in `spec.llm`.
pub fn ground(spec: &mut Spec, text: &str, provider: &str, model: &str, proposals: &[Proposal], malformed: &[String]) {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Extraction {
        provider: provider.into(),
        model: model.into(),
        proposed: proposals.len() + malformed.len(),
        ..Extraction::default()
    };
    for m in malformed {
        out.rejected.push(Rejected { line: None, quote: String::new(), proposal: String::new(), why: m.clone() });
    }
    let mut n = 0;
    let plain_lines: Vec<String> = lines.iter().map(|l| plain(l)).collect();
    for p in proposals {
        // A model's line numbers drift, its quote does not: a quote that is not on the line it
        // names but is on exactly one other line is that line's.
        let moved;
        let p = match quote_line(p, &plain_lines) {
            Some(line) if line != p.line => {
                moved = Proposal { line, ..p.clone() };
                &moved
            }
            _ => p,
        };
        let reject = |why: String| Rejected { line: Some(p.line), quote: p.quote.clone(), proposal: p.shown(), why };
        let kind = match p.kind.parse::<Kind>() {
            Ok(Kind::Other) => {
                out.rejected.push(reject("`other` has no target to verify".into()));
                continue;
            }
            Ok(k) => k,
            Err(e) => {
                out.rejected.push(reject(e.to_string()));
                continue;
            }
        };
        let Some(op) = op_of(&p.op) else {
            out.rejected.push(reject(format!("`{}` is not a comparison", p.op)));
            continue;
        };
        if p.line == 0 || p.line > lines.len() {
            out.rejected.push(reject(format!("line {} is not in the spec (it has {} lines)", p.line, lines.len())));
            continue;
        }
        let line_text = lines[p.line - 1];
        let (line, quote) = (plain(line_text), plain(&p.quote));
        let Some(at) = (!quote.is_empty()).then(|| line.find(&quote)).flatten() else {
            out.rejected.push(reject(format!("the quote is not on line {}", p.line)));
            continue;
        };
        let v = if kind == Kind::AzFailureTolerance {
            1.0
        } else {
            match in_unit(&kind, p.value, &p.unit) {
                Some(v) => v,
                None => {
                    out.rejected.push(reject(format!("`{}` is not a unit of {kind}", p.unit)));
                    continue;
                }
            }
        };
        // What flow itself read on that line.
        let same_line = spec.requirements.iter().find(|r| r.kind == kind && r.all_lines().contains(&p.line)).cloned();
        if let Some(r) = &same_line {
            if kind == Kind::AzFailureTolerance || (r.op == op && close(v, r.value)) {
                out.agreed.push(r.id.clone());
                continue;
            }
        }
        // The grammar must read the same from the quote.
        let (op, value) = if kind == Kind::AzFailureTolerance {
            if !reading::AZ.is_match(&quantity::normalize(&p.quote)) {
                out.rejected.push(reject("the quote does not speak of losing an Availability Zone".into()));
                continue;
            }
            (Op::Eq, 1.0)
        } else {
            // The model calls the quote a target: the grammar checks what it reads, not whether
            // the sentence commits to it.
            let r = reading::read(&quantity::normalize(&p.quote), &Hints { targets: true, ..Hints::default() });
            let Some(f) = r.found.iter().find(|f| f.kind == kind) else {
                let why = match (r.found.first(), r.unread.first()) {
                    (Some(f), _) => format!("the grammar reads {} from the quote, not {kind}", f.kind),
                    (None, Some(u)) => format!("the grammar does not read '{}' as a target: {}", u.figure, u.why),
                    (None, None) => format!("the grammar reads no {kind} target from the quote"),
                };
                out.rejected.push(reject(why));
                continue;
            };
            if !close(f.value, v) {
                let unit = kind.unit().symbol();
                out.rejected.push(reject(format!(
                    "the quote says {} {unit}, not {} {unit}",
                    fmt_num(f.value),
                    fmt_num(v)
                )));
                continue;
            }
            (f.op, f.value)
        };
        // The quote reads as the model says, but flow reads the whole line otherwise (its
        // statistic from a heading, a comparison, a figure of today): flow's reading is used.
        let disagree =
            |builtin: String| Disagreement { line: p.line, quote: p.quote.clone(), model: p.shown(), builtin };
        if let Some(r) = &same_line {
            out.disagreements.push(disagree(target(r)));
            continue;
        }
        if let Some(u) = spec
            .unread
            .iter()
            .find(|u| u.line == p.line && quote.contains(&plain(&u.figure)) && !NOT_A_VETO.contains(&u.why.as_str()))
        {
            out.disagreements.push(disagree(format!("'{}' is not a target: {}", u.figure, u.why)));
            continue;
        }
        if negated_before(&line, at) {
            out.rejected.push(reject("the words before the quote negate it".into()));
            continue;
        }
        let scope =
            (!p.scope.trim().is_empty() && line.contains(&plain(&p.scope))).then(|| scope_of(&p.scope)).flatten();
        let key = scope.as_deref().and_then(scope_key);
        // The same kind and scope elsewhere: a restatement, or a disagreement.
        if let Some(r) =
            spec.requirements.iter_mut().find(|r| r.kind == kind && r.scope.as_deref().and_then(scope_key) == key)
        {
            if r.op == op && close(r.value, value) {
                let mut all = r.all_lines();
                all.push(p.line);
                all.sort_unstable();
                all.dedup();
                r.lines = all;
                out.agreed.push(r.id.clone());
            } else {
                out.disagreements.push(disagree(format!("{} at line {}", target(r), r.line)));
            }
            continue;
        }
        n += 1;
        let mut id = format!("llm-{n}");
        while spec.requirements.iter().any(|r| r.id == id) {
            n += 1;
            id = format!("llm-{n}");
        }
        let shown =
            line_text.trim().trim_start_matches(['-', '*', '+', '>', '#', '|', ' ']).trim_end_matches(['|', ' ']);
        let mut r = Requirement::new(&id, kind, op, value, p.line, shown);
        r.scope = scope;
        r.source = Source::Llm;
        r.note = Some(format!(
            "proposed by {provider} {model} quoting \"{}\"; the grammar reads the same target from the quote",
            p.quote
        ));
        spec.unread.retain(|u| !(u.line == p.line && quote.contains(&plain(&u.figure))));
        spec.requirements.push(r);
        out.kept.push(id);
    }
    spec.recheck();
    spec.llm = Some(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::spec::parse;

    fn prop(line: usize, quote: &str, kind: &str, op: &str, value: f64, unit: &str) -> Proposal {
        Proposal {
            line,
            quote: quote.into(),
            kind: kind.into(),
            op: op.into(),
            value,
            unit: unit.into(),
            scope: String::new(),
        }
    }

    const TEXT: &str = "# Svc\n\n- p99 latency under 300 ms\n- The current p95 is 850 ms\n\n```\nRTO: 4 hours\n```\n";

    #[test]
    fn a_quote_on_one_other_line_is_that_lines() {
        let text = "# Svc\n\n```\nRTO: 4 hours\nRPO: 15 minutes\nRPO: 15 minutes\n```\n";
        let mut s = parse("x.md", text).unwrap();
        ground(
            &mut s,
            text,
            "openai",
            "m",
            &[
                prop(2, "RTO: 4 hours", "rto", "<=", 4.0, "h"),
                // On two lines: which one is not known.
                prop(2, "RPO: 15 minutes", "rpo", "<=", 15.0, "min"),
            ],
            &[],
        );
        let x = s.llm.clone().unwrap();
        assert_eq!(x.kept.len(), 1, "{x:?}");
        assert_eq!((s.requirements[0].kind.clone(), s.requirements[0].line), (Kind::Rto, 4));
        assert_eq!(x.rejected[0].why, "the quote is not on line 2");
    }

    #[test]
    fn only_a_quote_the_grammar_confirms_is_kept() {
        let mut s = parse("x.md", TEXT).unwrap();
        assert_eq!(s.requirements.len(), 1);
        ground(
            &mut s,
            TEXT,
            "openai",
            "m",
            &[
                // Agrees with flow's own reading.
                prop(3, "p99 latency under 300 ms", "latency_p99", "<", 300.0, "ms"),
                // The number changed.
                prop(7, "RTO: 4 hours", "rto", "<=", 2.0, "h"),
                // In a code block flow does not read: the grammar confirms it.
                prop(7, "RTO: 4 hours", "rto", "<=", 4.0, "h"),
                // A figure flow says is today's.
                prop(4, "p95 is 850 ms", "latency_p95", "<=", 850.0, "ms"),
                // Fabricated.
                prop(3, "p99 latency under 200 ms", "latency_p99", "<", 200.0, "ms"),
                prop(40, "RTO", "rto", "<=", 2.0, "h"),
            ],
            &["requirements[6] is not a proposal".into()],
        );
        let x = s.llm.clone().unwrap();
        assert_eq!(x.proposed, 7);
        assert_eq!(x.agreed, [s.requirements[0].id.clone()]);
        assert_eq!(x.kept, ["llm-1"]);
        let kept = &s.requirements[1];
        assert_eq!(
            (kept.kind.clone(), kept.op, kept.value, kept.line, kept.source),
            (Kind::Rto, Op::Le, 14400.0, 7, Source::Llm)
        );
        assert_eq!(x.disagreements.len(), 1);
        assert!(x.disagreements[0].builtin.contains("describes what is measured today"), "{x:?}");
        let whys: Vec<&str> = x.rejected.iter().map(|r| r.why.as_str()).collect();
        assert_eq!(
            whys,
            [
                "requirements[6] is not a proposal",
                "the quote says 14400 s, not 7200 s",
                "the quote is not on line 3",
                "line 40 is not in the spec (it has 8 lines)"
            ]
        );
        assert!(s.unread.iter().all(|u| u.line != 7));
    }

    #[test]
    fn a_different_target_on_the_same_line_is_a_disagreement() {
        let mut s = parse("x.md", TEXT).unwrap();
        ground(&mut s, TEXT, "openai", "m", &[prop(3, "p99 latency under 300 ms", "latency_p99", "<=", 0.3, "s")], &[]);
        let x = s.llm.unwrap();
        assert!(x.kept.is_empty() && x.agreed.is_empty());
        assert_eq!(x.disagreements[0].builtin, format!("{} (latency_p99): latency_p99 < 300 ms", s.requirements[0].id));
    }

    #[test]
    fn a_negated_quote_is_rejected() {
        let text = "# Svc\n\nIt is not required that the p99 latency stays under 300 ms.\n";
        let mut s = parse("x.md", text).unwrap();
        let before = s.requirements.len();
        ground(
            &mut s,
            text,
            "openai",
            "m",
            &[prop(3, "p99 latency stays under 300 ms", "latency_p99", "<", 300.0, "ms")],
            &[],
        );
        assert_eq!(s.requirements.len(), before);
        let x = s.llm.unwrap();
        assert!(x.kept.is_empty(), "{x:?}");
    }
}
