//! The spec-reading corpus: short requirement documents in the styles flow meets (Kiro/EARS,
//! SLO bullets, NFR tables with Target and Current columns, SLA pages, DR decision records,
//! mixed units and Unicode), each with what a careful reader finds in it, in a `.expect` file
//! beside it. One table test reads them all and compares both ways: every expected
//! requirement read with its kind, comparison, value, unit, lines and scope, and nothing read
//! that is not expected (no wrong target, no extra `other`, no unexpected diagnostic).
//!
//! `.expect` lines:
//!   req KIND OP VALUE UNIT LINE[,LINE...] [SCOPE...]
//!   other LINE | unread LINE | impossible LINE | conflict LINE LINE | ask LINE

use std::path::Path;

use flow::domain::spec::{self, Level, Spec};

#[derive(Debug, PartialEq)]
struct Want {
    kind: String,
    op: String,
    value: f64,
    unit: String,
    lines: Vec<usize>,
    scope: Option<String>,
}

#[derive(Default)]
struct Expect {
    reqs: Vec<Want>,
    others: Vec<usize>,
    unread: Vec<usize>,
    impossible: Vec<usize>,
    conflicts: Vec<(usize, usize)>,
    asks: Vec<usize>,
}

fn expect(text: &str) -> Expect {
    let mut e = Expect::default();
    let num = |s: &str| s.parse::<usize>().unwrap_or_else(|_| panic!("bad line number `{s}`"));
    for l in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w[0] {
            "req" => e.reqs.push(Want {
                kind: w[1].into(),
                op: w[2].into(),
                value: w[3].parse().unwrap(),
                unit: w[4].into(),
                lines: w[5].split(',').map(num).collect(),
                scope: (w.len() > 6).then(|| w[6..].join(" ")),
            }),
            "other" => e.others.push(num(w[1])),
            "unread" => e.unread.push(num(w[1])),
            "impossible" => e.impossible.push(num(w[1])),
            "conflict" => e.conflicts.push((num(w[1]), num(w[2]))),
            "ask" => e.asks.push(num(w[1])),
            other => panic!("unknown expectation `{other}` in `{l}`"),
        }
    }
    e
}

fn got(s: &Spec) -> Vec<Want> {
    s.requirements
        .iter()
        .filter(|r| r.kind.has_target())
        .map(|r| Want {
            kind: r.kind.to_string(),
            op: r.op.symbol().into(),
            value: r.value,
            unit: r.unit.symbol().into(),
            lines: r.all_lines(),
            scope: r.scope.clone(),
        })
        .collect()
}

fn same(a: &Want, b: &Want) -> bool {
    a.kind == b.kind
        && a.op == b.op
        && (a.value - b.value).abs() < 1e-6
        && a.unit == b.unit
        && a.lines == b.lines
        && a.scope == b.scope
}

#[test]
fn every_corpus_document_reads_as_expected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut docs: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    docs.retain(|p| p.extension().is_some_and(|x| x == "md"));
    docs.sort();
    assert!(docs.len() >= 40, "the corpus holds {} documents", docs.len());
    let (mut right, mut total, mut exact) = (0, 0, 0);
    let mut problems: Vec<String> = Vec::new();
    for doc in &docs {
        let name = doc.file_name().unwrap().to_string_lossy().to_string();
        let want = expect(&std::fs::read_to_string(doc.with_extension("expect")).unwrap());
        let s = match spec::parse_bytes(&name, &std::fs::read(doc).unwrap()) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{name}: refused: {e}"));
                total += want.reqs.len();
                continue;
            }
        };
        let mut bad = Vec::new();
        let have = got(&s);
        for w in &want.reqs {
            total += 1;
            if have.iter().any(|h| same(h, w)) {
                right += 1;
            } else {
                bad.push(format!("missed {w:?}"));
            }
        }
        for h in &have {
            if !want.reqs.iter().any(|w| same(h, w)) {
                bad.push(format!("read but not expected {h:?}"));
            }
        }
        let mut others: Vec<usize> = s.requirements.iter().filter(|r| !r.kind.has_target()).map(|r| r.line).collect();
        others.sort();
        let mut unread: Vec<usize> = s.unread.iter().map(|u| u.line).collect();
        unread.dedup();
        let errors = |f: &dyn Fn(&spec::Diagnostic) -> bool| -> Vec<&spec::Diagnostic> {
            s.diagnostics.iter().filter(|d| d.level == Level::Error && f(d)).collect()
        };
        let mut impossible: Vec<usize> =
            errors(&|d| d.message.starts_with("impossible")).iter().filter_map(|d| d.line).collect();
        impossible.sort();
        // A conflict is a question naming both lines; the other questions are asks.
        let mut conflicts: Vec<(usize, usize)> = s
            .questions
            .iter()
            .filter(|q| q.why.starts_with("two different targets"))
            .map(|q| (q.other_line.unwrap_or(0), q.line))
            .collect();
        conflicts.sort();
        let mut asks: Vec<usize> =
            s.questions.iter().filter(|q| !q.why.starts_with("two different targets")).map(|q| q.line).collect();
        asks.sort();
        for (what, g, w) in [
            ("other at lines", &others, &want.others),
            ("unread figures at lines", &unread, &want.unread),
            ("impossible at lines", &impossible, &want.impossible),
            ("questions at lines", &asks, &want.asks),
        ] {
            if g != w {
                bad.push(format!("{what} {g:?}, expected {w:?}"));
            }
        }
        if conflicts != want.conflicts {
            bad.push(format!("conflicts {conflicts:?}, expected {:?}", want.conflicts));
        }
        if bad.is_empty() {
            exact += 1;
        } else {
            problems.push(format!("{name}:\n    {}\n    unread: {:?}", bad.join("\n    "), s.unread));
        }
    }
    eprintln!("corpus: {right}/{total} requirements read right; {exact}/{} documents exactly as expected", docs.len());
    assert!(problems.is_empty(), "{} of {} documents differ:\n{}", problems.len(), docs.len(), problems.join("\n"));
}

/// Expectations for a real document (`tests/corpus-real/*.expect`), written by hand before flow
/// read it: `req KIND OP VALUE UNIT LINE`, `not LINE FIGURE # why`, `ask LINE # readings`.
struct Real {
    reqs: Vec<(String, String, f64, String, usize)>,
    /// Lines holding a figure with a unit flow measures (a time, a percentage, a rate) that is
    /// not a target.
    nots: Vec<usize>,
    asks: Vec<usize>,
}

fn real_expect(text: &str) -> Real {
    let measure = regex::Regex::new(
        r"(?i)%|‰|\d\s*(?:µs|us|ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hrs?|hours?|d|days?|weeks?)\b|/\s*(?:s|sec|second|min|minute)\b|per\s+(?:second|minute|hour)|\b(?:rps|qps|tps|req/s)\b|\d\s*(?:мс|сек|с\b|мин|час|ч\b|дн|дней|밀리초|초|분|시간|일|毫秒|秒|分|小时|小時|天)",
    )
    .unwrap();
    let mut e = Real { reqs: Vec::new(), nots: Vec::new(), asks: Vec::new() };
    for l in text.lines() {
        let body =
            if l.starts_with("req") { l.split(" #").next().unwrap_or(l) } else { l.split('#').next().unwrap_or(l) };
        let w: Vec<&str> = body.split_whitespace().collect();
        match w.first() {
            Some(&"req") => {
                e.reqs.push((w[1].into(), w[2].into(), w[3].parse().unwrap(), w[4].into(), w[5].parse().unwrap()))
            }
            Some(&"not") if measure.is_match(&w[2..].join(" ")) => e.nots.push(w[1].parse().unwrap()),
            Some(&"ask") => e.asks.push(w[1].parse().unwrap()),
            _ => {}
        }
    }
    e
}

/// Scores for a directory of real documents.
#[derive(Debug, Default)]
struct Score {
    docs: usize,
    expected: usize,
    right: usize,
    wrong: Vec<String>,
    guessed: usize,
    silent: Vec<String>,
    unplanned: Vec<String>,
    nothing: Vec<String>,
}

fn score_real(dir: &Path) -> Score {
    let mut docs: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    docs.retain(|p| p.extension().is_some_and(|x| x == "md") && !p.ends_with("README.md"));
    docs.sort();
    let mut sc = Score { docs: docs.len(), ..Score::default() };
    for doc in &docs {
        let name = doc.file_name().unwrap().to_string_lossy().to_string();
        let want = real_expect(&std::fs::read_to_string(doc.with_extension("expect")).unwrap());
        sc.expected += want.reqs.len();
        let s = match spec::parse_bytes(&name, &std::fs::read(doc).unwrap()) {
            Ok(s) => s,
            Err(e) => {
                sc.unplanned.push(format!("{name}: {e}"));
                continue;
            }
        };
        // A document that states no target, and is not expected to, has nothing to plan: that
        // refusal is the right answer, not a refused reading.
        match s.refusal(&name) {
            Some(e) if matches!(e.kind, spec::ErrorKind::NoRequirements { .. }) && want.reqs.is_empty() => {
                sc.nothing.push(name.clone())
            }
            Some(e) => sc.unplanned.push(format!("{name}: {e}")),
            None => {}
        }
        let read: Vec<_> = s.requirements.iter().filter(|r| r.kind.has_target()).collect();
        let mut used = vec![false; read.len()];
        for (kind, op, value, unit, line) in &want.reqs {
            let hit = read.iter().position(|r| {
                r.kind.to_string() == *kind
                    && r.op.symbol() == op
                    && r.unit.symbol() == unit
                    && (r.value - value).abs() <= 1e-6_f64.max(1e-3 * value.abs())
                    && r.all_lines().contains(line)
            });
            if let Some(i) = hit {
                sc.right += 1;
                used[i] = true;
            }
        }
        for (i, r) in read.iter().enumerate().filter(|(i, _)| !used[*i]) {
            let lines = r.all_lines();
            let on_target_line = lines.iter().any(|l| want.reqs.iter().any(|w| w.4 == *l));
            if lines.iter().any(|l| want.asks.contains(l)) && !on_target_line {
                sc.guessed += 1;
            } else if !on_target_line || lines.iter().any(|l| want.nots.contains(l)) {
                sc.wrong.push(format!("{name}: {} {} line {}", r.kind, r.target(), r.line));
            } else {
                // A second reading on a line that holds a target (a merge kept the stricter).
                let _ = i;
            }
        }
        let accounted = |l: usize| {
            s.unread.iter().any(|u| u.line == l)
                || s.questions.iter().any(|q| q.line == l || q.other_line == Some(l))
                || s.requirements.iter().any(|r| r.all_lines().contains(&l))
                || s.diagnostics.iter().any(|d| d.line == Some(l))
        };
        for l in want.nots.iter().filter(|l| !accounted(**l)) {
            sc.silent.push(format!("{name}: line {l}"));
        }
    }
    sc
}

/// Real requirement documents from public repositories (`tests/corpus-real/README.md` names
/// each source): the figures reached after working on the 36 documents, and on the 12 held back
/// until the end. A regression in reading shows here as a lower count or a wrong target.
#[test]
fn real_documents_read_without_a_wrong_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus-real");
    let main = score_real(&root);
    let held = score_real(&root.join("holdout"));
    println!("real corpus: {main:?}\nheld back: {held:?}");
    assert_eq!((main.docs, held.docs), (36, 12));
    assert!(main.wrong.is_empty(), "wrong targets: {:?}", main.wrong);
    assert!(main.right >= 98, "{} of {} targets right", main.right, main.expected);
    assert!(main.guessed <= 1 && main.silent.is_empty(), "{main:?}");
    assert!(main.unplanned.is_empty(), "refused: {:?}", main.unplanned);
    assert_eq!(main.nothing, ["42-k6-ratelimiter-example-summary.md"]);
    assert!(held.right >= 84 && held.wrong.is_empty() && held.guessed <= 3 && held.silent.is_empty(), "{held:?}");
    assert!(held.unplanned.is_empty() && held.nothing.is_empty(), "refused: {held:?}");
}
