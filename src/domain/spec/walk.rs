//! The Markdown walk ([`parse`]): units of text with their sources, headings, parent labels
//! and table headers, each split into sentences and read; questions numbered.

use std::collections::BTreeMap;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::*;
use crate::domain::quantity::{self, Class};
use crate::domain::reading::{self, Hints};
use crate::domain::requirement::{self, Kind, Op, Requirement, Source};

/// Byte ranges of the sentences of `text`.
pub(crate) fn sentences(text: &str) -> Vec<(usize, usize)> {
    const ABBREV: &[&str] = &["e.g", "i.e", "etc", "vs", "approx", "incl", "cf", "no", "fig", "min", "max"];
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..b.len() {
        if !matches!(b[i], b'.' | b'!' | b'?') || b.get(i + 1) != Some(&b' ') {
            continue;
        }
        let next = text[i + 2..].chars().next();
        if !next.is_some_and(|c| c.is_uppercase() || c.is_ascii_digit() || matches!(c, '(' | '"' | '*' | '`')) {
            continue;
        }
        let word = text[start..i].rsplit(' ').next().unwrap_or("").to_ascii_lowercase();
        if b[i] == b'.' && ABBREV.contains(&word.trim_start_matches('(')) {
            continue;
        }
        out.push((start, i + 1));
        start = i + 2;
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

/// A requirement before it has its id.
pub(crate) struct Found {
    pub(crate) kind: Kind,
    pub(crate) op: Op,
    pub(crate) value: f64,
    pub(crate) line: usize,
    pub(crate) text: String,
    pub(crate) scope: Option<String>,
    pub(crate) note: Option<String>,
}

pub fn parse(path: &str, text: &str) -> Result<Spec, Error> {
    if text.trim().is_empty() {
        return Err(Error { path: path.into(), line: None, kind: ErrorKind::Empty, source_line: None });
    }
    let text = &*targets_in_code(text);
    let line_starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let line_of = |off: usize| line_starts.partition_point(|&s| s <= off);
    let lines: Vec<&str> = text.lines().collect();
    let source_line = |line: usize| lines.get(line.wrapping_sub(1)).map(|s| excerpt(s.trim_end())).unwrap_or_default();

    let opts = Options::ENABLE_TABLES | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    // The document's title: a first heading that is its only H1 names no scope.
    let h1s = Parser::new_ext(text, opts)
        .filter(|e| matches!(e, Event::Start(Tag::Heading { level: HeadingLevel::H1, .. })))
        .count();
    let first_is_h1 = Parser::new_ext(text, opts)
        .find(|e| matches!(e, Event::Start(Tag::Heading { .. })))
        .is_some_and(|e| matches!(e, Event::Start(Tag::Heading { level: HeadingLevel::H1, .. })));

    let mut context = Context::new();
    let mut units: Vec<Unit> = Vec::new();
    let mut unread: Vec<Unread> = Vec::new();

    let mut heading = String::new();
    let mut heading_buf: Option<String> = None;
    let mut heading_text = Text::default();
    let mut in_code = false;
    // (level, text, what it gives what is under it)
    let mut headings: Vec<(HeadingLevel, String, Ctx)> = Vec::new();
    // A short paragraph ending in a colon ("Results:", "Targets for checkout:") leads the list
    // that follows it.
    let mut lead: Option<Ctx> = None;
    let mut seen_heading = false;
    let mut kiro_n: Option<(String, HeadingLevel)> = None;
    let mut in_context = false;
    let mut in_metadata = false;
    // Open lists: (ordered start, items seen so far, the parent item's labels and scope).
    let mut lists: Vec<OpenList> = Vec::new();
    let mut cur: Option<(Text, Option<(String, u64)>)> = None;
    let mut item_depth = 0usize;
    // Tables.
    let mut in_head = false;
    let mut header: Vec<(String, usize)> = Vec::new();
    let mut cols: Vec<Col> = Vec::new();
    let mut row: Vec<(String, usize)> = Vec::new();
    let mut row_line = 0usize;
    let mut cell: Option<(String, usize)> = None;
    // The cell being read has text that is not code.
    let mut cell_prose = false;

    // Nearest first: labels add up, the nearest scope and the nearest word on targets win.
    let context_of = |headings: &[(HeadingLevel, String, Ctx)], lists: &[OpenList]| -> Ctx {
        let mut out = Ctx::default();
        for c in lists.iter().rev().map(|l| &l.2).chain(headings.iter().rev().map(|h| &h.2)) {
            out.labels.extend(c.labels.iter().cloned());
            out.scope = out.scope.take().or_else(|| c.scope.clone());
            if out.say == Say::Nothing {
                out.say = c.say.clone();
            }
        }
        out
    };

    macro_rules! flush {
        () => {
            if let Some((t, kiro)) = cur.take() {
                if !t.text.trim().is_empty() {
                    let ctx = context_of(&headings, &lists);
                    units.push(Unit { kiro, ..Unit::prose(t, heading.clone(), in_context, ctx) });
                }
            }
        };
    }

    for (ev, range) in Parser::new_ext(text, opts).into_offset_iter() {
        let is_text = matches!(ev, Event::Text(_));
        match ev {
            Event::Start(Tag::MetadataBlock(_)) => in_metadata = true,
            Event::End(TagEnd::MetadataBlock(_)) => in_metadata = false,
            Event::Text(t) if in_metadata => {
                for l in t.lines() {
                    if let Some(c) = KEY_VALUE.captures(l) {
                        context.insert(context_key(&c["k"]), strip_value(&c["v"]));
                    }
                }
            }
            Event::Start(Tag::Heading { .. }) => {
                flush!();
                heading_buf = Some(String::new());
                heading_text = Text::default();
            }
            Event::End(TagEnd::Heading(level)) => {
                heading = heading_buf.take().unwrap_or_default().trim().to_string();
                in_context = is_context_heading(&heading);
                let kiro = KIRO_HEADING.captures(&heading);
                if let Some(c) = &kiro {
                    kiro_n = Some((c["n"].to_string(), level));
                } else if kiro_n.as_ref().is_some_and(|(_, l)| level <= *l) {
                    kiro_n = None;
                }
                let title = !seen_heading && first_is_h1 && h1s == 1;
                seen_heading = true;
                headings.retain(|(l, ..)| *l < level);
                // A heading that states a target ("## RTO: 4 hours") is read as one; it labels
                // nothing under it.
                let states = !in_context && quantity::figures(&heading, true).iter().any(|f| f.class != Class::Bare);
                lead = None;
                if states {
                    let ctx = context_of(&headings, &lists);
                    let parent = headings.last().map(|h| h.1.clone()).unwrap_or_default();
                    let text = std::mem::take(&mut heading_text);
                    units.push(Unit { heading_unit: true, ..Unit::prose(text, parent, in_context, ctx) });
                    // It still names what is under it ("Baseline — 1,000 TPS").
                    let scope = if title { None } else { scope_of(&heading) };
                    headings.push((level, heading.clone(), Ctx { say: say_of(&heading), scope, ..Ctx::default() }));
                } else {
                    // "Requirement 3: Stress test with 20 users": the title after the number scopes.
                    let named = KIRO_HEADING.find(&heading).map_or(heading.as_str(), |m| {
                        heading[m.end()..].trim_start_matches([':', '.', ' ', '-', '–', '—'])
                    });
                    let scope = if title || in_context { None } else { scope_of(named) };
                    headings.push((level, heading.clone(), Ctx { scope, ..ctx_of(&heading) }));
                }
            }
            Event::Start(Tag::List(start)) => {
                // The item this list is nested in labels its items ("- Latency (p99):").
                let ctx = match cur.as_ref() {
                    Some((t, _)) if item_depth > 0 => ctx_of(t.text.trim().trim_end_matches(':')),
                    _ if item_depth == 0 => lead.take().unwrap_or_default(),
                    _ => Ctx::default(),
                };
                flush!();
                lists.push((start, 0, ctx));
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
            }
            Event::Start(Tag::Item) => {
                flush!();
                item_depth += 1;
                let kiro = match (lists.last_mut(), &kiro_n) {
                    (Some((Some(start), seen, ..)), Some((n, _))) => {
                        *seen += 1;
                        Some((n.clone(), *start + *seen - 1))
                    }
                    (Some((_, seen, ..)), _) => {
                        *seen += 1;
                        None
                    }
                    _ => None,
                };
                cur = Some((Text::default(), kiro));
            }
            Event::End(TagEnd::Item) => {
                flush!();
                item_depth = item_depth.saturating_sub(1);
            }
            Event::Start(Tag::Paragraph) if item_depth == 0 => {
                flush!();
                lead = None;
                cur = Some((Text::default(), None));
            }
            Event::End(TagEnd::Paragraph) => {
                if item_depth == 0 {
                    let t = cur.as_ref().map(|(t, _)| t.text.trim().to_string()).unwrap_or_default();
                    // "Targets:", or a short line naming a kind ("Latency (p95)") above a list.
                    let named = t.split_whitespace().count() <= 6
                        && !t.ends_with(['.', '!', '?'])
                        && !context_labels(&t).is_empty()
                        && !quantity::figures(&t, true).iter().any(|f| f.class != Class::Bare);
                    lead = ((t.ends_with(':') && t.split_whitespace().count() <= 12) || named)
                        .then(|| ctx_of(t.trim_end_matches(':')));
                    flush!();
                } else if let Some((t, _)) = cur.as_mut() {
                    t.space();
                }
            }
            Event::Start(Tag::Table(_)) => {
                flush!();
                lead = None;
                header.clear();
                cols.clear();
            }
            Event::Start(Tag::TableHead) => {
                in_head = true;
                row.clear();
            }
            Event::End(TagEnd::TableHead) => {
                in_head = false;
                header = std::mem::take(&mut row);
                cols = header.iter().map(|(h, _)| classify(h)).collect();
                for (h, at) in &header {
                    not_prose(h, *at, "in a table header, which names a column", &line_of, &source_line, &mut unread);
                }
            }
            Event::Start(Tag::TableRow) => {
                row.clear();
                row_line = line_of(range.start);
            }
            Event::Start(Tag::TableCell) => {
                cell = Some((String::new(), range.start));
                cell_prose = false;
            }
            Event::End(TagEnd::TableCell) => {
                if let Some((c, at)) = cell.take() {
                    // A target cell that is only code (a k6 threshold expression) is not read; a
                    // name in code (`checkout`) still names its row.
                    let name_col = matches!(cols.get(row.len()), Some(Col::Id | Col::Scope | Col::Metric));
                    if cell_prose || in_head || name_col {
                        row.push((c.trim().to_string(), at));
                    } else {
                        not_prose(&c, at, IN_CODE, &line_of, &source_line, &mut unread);
                        row.push((String::new(), at));
                    }
                }
                if in_head {
                    row_line = line_of(range.start);
                }
            }
            Event::End(TagEnd::TableRow) => {
                table_row(TableRow {
                    header: &header,
                    cols: &cols,
                    row: &row,
                    line: row_line,
                    in_context,
                    heading: &heading,
                    ctx: context_of(&headings, &lists),
                    source: &source_line(row_line),
                    context: &mut context,
                    units: &mut units,
                    unread: &mut unread,
                });
                row.clear();
            }
            Event::Start(Tag::CodeBlock(_)) => {
                flush!();
                lead = None;
                in_code = true;
            }
            Event::End(TagEnd::CodeBlock) => in_code = false,
            Event::Text(t) if in_code => {
                // k6 thresholds ("✓ http_req_duration...: p(99)<200", "http_req_failed:
                // ['rate<0.01']") are pass criteria in any section but an example or alert.
                let found = k6_thresholds(&t);
                let mut code = t.to_string();
                for th in &found {
                    let mut ctx = context_of(&headings, &lists);
                    let results = matches!(&ctx.say, Say::NotTargets(why) if why.contains("measured results"));
                    if results || ctx.say == Say::Nothing {
                        ctx.say = Say::Targets;
                    }
                    if let Some(tag) = &th.tag {
                        ctx.scope = Some(tag.clone());
                    }
                    let mut text = Text::default();
                    for w in th.prose.split(' ') {
                        text.push(w, range.start + th.at);
                        text.space();
                    }
                    units.push(Unit { cell: true, ..Unit::prose(text, heading.clone(), in_context, ctx) });
                    code.replace_range(th.at..th.end, &" ".repeat(th.end - th.at));
                }
                not_prose(&code, range.start, IN_CODE, &line_of, &source_line, &mut unread)
            }
            Event::Html(t) | Event::InlineHtml(t) => {
                not_prose(&t, range.start, IN_HTML, &line_of, &source_line, &mut unread)
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading_buf.as_mut() {
                    h.push_str(&t);
                    heading_text.push(&t, range.start);
                } else if let Some((c, _)) = cell.as_mut() {
                    c.push_str(&t);
                    cell_prose |= is_text && !t.trim().is_empty();
                } else if let Some((s, _)) = cur.as_mut() {
                    s.push(&t, range.start);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((s, _)) = cur.as_mut() {
                    s.space();
                }
            }
            _ => {}
        }
    }
    flush!();

    // Context section: "Key: value" units.
    for u in units.iter().filter(|u| u.in_context) {
        if let Some(c) = KEY_VALUE.captures(&u.text.text) {
            context.insert(context_key(&c["k"]), strip_value(&c["v"]));
        }
    }

    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut reqs: Vec<Requirement> = Vec::new();
    let mut asked: Vec<Question> = Vec::new();
    // The first "multi-AZ" where no sentence says the service survives losing a zone.
    let mut multi_az: Option<(usize, String, Option<String>)> = None;
    let mut per_heading: BTreeMap<String, usize> = BTreeMap::new();
    for u in units.iter().filter(|u| !u.in_context) {
        let full = u.text.text.trim_end();
        let numeric_figure = |id: &str| {
            !id.starts_with(|c: char| c.is_ascii_alphabetic())
                && quantity::figures(full, true).first().is_some_and(|f| f.start <= 1 && f.class != Class::Bare)
        };
        let (explicit, body_at) = match (&u.table_id, &u.kiro, EXPLICIT_ID.captures(full)) {
            (Some(id), _, _) => (Some(id.clone()), 0),
            (None, _, Some(c)) if !numeric_figure(&c["id"]) && id_like(&c) => {
                (Some(c["id"].to_string()), c.get(0).unwrap().end())
            }
            (None, Some((n, k)), _) => (Some(format!("{n}.{k}")), 0),
            _ => (None, 0),
        };
        let body = &full[body_at..];
        let line_at = |pos: usize| line_of(u.text.src(body_at + pos));
        // "Checkout API: ...": the label before a colon scopes the unit.
        let own_scope = if u.cell {
            None
        } else {
            COLON_LABEL.captures(body).and_then(|c| {
                let label = &c["label"];
                let url = body[c.get(0).unwrap().end()..].starts_with("//")
                    || label.ends_with("http")
                    || label.ends_with("https");
                let figures = quantity::figures(label, true).iter().any(|f| f.class != Class::Bare);
                let ears = EARS.is_match(label) || label.split_whitespace().count() > 6;
                (!url && !figures && !ears).then(|| scope_of(label)).flatten()
            })
        };
        let labelled = own_scope.is_some();
        let scope = own_scope.or_else(|| u.scope.clone());
        let hints = Hints {
            labels: u.labels.clone(),
            bare_unit: u.bare_unit,
            op: u.op,
            condition: false,
            heading: u.heading_unit,
            long_window: u.long_window,
            column: u.column,
            targets: u.say == Say::Targets,
            not_targets: match &u.say {
                Say::NotTargets(why) => Some(why.clone()),
                _ => None,
            },
        };
        let spans = if u.cell { vec![(0, body.len())] } else { sentences(body) };
        let mut found: Vec<Found> = Vec::new();
        for (s, e) in spans {
            let sentence = body[s..e].trim();
            if sentence.is_empty() {
                continue;
            }
            let s = s + (body[s..e].len() - body[s..e].trim_start().len());
            let shown = excerpt(u.shown.as_deref().unwrap_or(sentence));
            let ears = EARS.find(sentence).filter(|_| !u.cell);
            let promise = ears.is_some() || requirement::is_promise(sentence);
            let scope = match (&ears, u.cell) {
                (None, false) if !labelled => {
                    SUBJECT.captures(sentence).and_then(|c| scope_of(&c["s"])).or_else(|| scope.clone())
                }
                (Some(m), false) if !labelled => {
                    EARS_SUBJECT.captures(m.as_str()).and_then(|c| scope_of(&c["s"])).or_else(|| scope.clone())
                }
                _ => scope.clone(),
            };
            let (cond_end, readings) = match ears {
                Some(m) => {
                    let cond = reading::read(&sentence[..m.end()], &Hints { condition: true, ..Hints::default() });
                    let resp = reading::read(&sentence[m.end()..], &hints);
                    (m.end(), vec![(0, cond), (m.end(), resp)])
                }
                None => (0, vec![(0, reading::read(sentence, &hints))]),
            };
            let mut any = false;
            let mut any_ask = false;
            let mut notes = Vec::new();
            let mut impossible = false;
            for (off, r) in readings {
                for f in r.found {
                    any = true;
                    found.push(Found {
                        kind: f.kind,
                        op: f.op,
                        value: f.value,
                        line: line_at(s + off + f.at),
                        text: shown.clone(),
                        scope: match (f.scope, &scope) {
                            (Some(own), Some(outer)) => Some(format!("{outer} {own}")),
                            (own, outer) => own.or_else(|| outer.clone()),
                        },
                        note: None,
                    });
                }
                for x in r.unread {
                    let line = line_at(s + off + x.at);
                    unread.push(Unread {
                        line,
                        text: source_line(line).trim().to_string(),
                        figure: x.figure,
                        why: x.why,
                    });
                }
                for a in r.asks {
                    any_ask = true;
                    let line = line_at(s + off + a.at);
                    let src = source_line(line);
                    asked.push(Question {
                        id: String::new(),
                        key: question_key(&format!("ask {}", a.why), &[&src]),
                        line,
                        other_line: None,
                        text: src.trim().to_string(),
                        why: a.why,
                        readings: a
                            .readings
                            .into_iter()
                            .map(|f| {
                                let mut r = Requirement::new("", f.kind, f.op, f.value, line, &shown);
                                r.scope = scope.clone();
                                r
                            })
                            .collect(),
                    });
                }
                for (at, why) in r.impossible {
                    impossible = true;
                    let line = line_at(s + off + at);
                    diagnostics.push(Diagnostic {
                        level: Level::Error,
                        line: Some(line),
                        other_line: None,
                        message: format!("impossible requirement: {why}"),
                        text: source_line(line),
                        refusal: Some(ErrorKind::Impossible(why)),
                    });
                }
                notes.extend(r.notes);
            }
            // Losing one Availability Zone; in a condition, only when the response keeps serving.
            let (cond, resp) = sentence.split_at(cond_end);
            let quiet = matches!(u.say, Say::NotTargets(_));
            let az = reading::AZ.find(resp).filter(|_| !quiet).map(|m| cond_end + m.start()).or_else(|| {
                reading::KEEP_SERVING.is_match(resp).then(|| reading::AZ.find(cond).map(|m| m.start())).flatten()
            });
            if az.is_none() && !quiet {
                if let Some(m) = reading::MULTI_AZ.find(sentence) {
                    multi_az.get_or_insert((line_at(s + m.start()), shown.clone(), scope.clone()));
                }
            }
            // Telling a person an alarm fired: its bound after the verb, else the default one.
            // A section of alerts holds thresholds, not targets; but whom an alert reaches, and
            // how fast, is said there too.
            let alerts = matches!(&u.say, Say::NotTargets(why) if why.contains(", a section of alerts,"));
            let notify =
                reading::NOTIFY.find(sentence).filter(|_| (!quiet || alerts) && reading::ALARM_WORD.is_match(sentence));
            if let Some(m) = notify {
                let within = reading::NOTIFY_WITHIN.captures(&sentence[m.end()..]);
                let bound = within.as_ref().and_then(|c| {
                    let n: f64 = c["n"].parse().ok()?;
                    Some(n * quantity::unit_seconds(&c["u"]))
                });
                // The bound is this reading's, not a latency's or a downtime's.
                if let Some(b) = bound {
                    let first = line_at(s);
                    let last = line_at(s + sentence.len().saturating_sub(1));
                    let of_sentence = |l: usize| l >= first && l <= last;
                    let seconds = requirement::Unit::Seconds;
                    found.retain(|f| !(of_sentence(f.line) && f.kind.unit() == seconds && (f.value - b).abs() < 1e-9));
                    let n = within.as_ref().map(|c| c["n"].to_string()).unwrap_or_default();
                    unread.retain(|x| !(of_sentence(x.line) && x.figure.starts_with(&n)));
                    asked.retain(|q| !(of_sentence(q.line) && q.readings.iter().any(|r| (r.value - b).abs() < 1e-9)));
                }
                any = true;
                found.push(Found {
                    kind: Kind::Notification,
                    op: Op::Le,
                    value: bound.unwrap_or(requirement::DEFAULT_NOTIFICATION_S),
                    line: line_at(s + m.start()),
                    text: shown.clone(),
                    scope: scope.clone(),
                    note: bound.is_none().then(|| {
                        format!(
                            "no bound written: flow holds notifications to {} minutes; write \"within N minutes\" to change it",
                            requirement::DEFAULT_NOTIFICATION_S / 60.0
                        )
                    }),
                });
            }
            if let Some(at) = az {
                any = true;
                found.push(Found {
                    kind: Kind::AzFailureTolerance,
                    op: Op::Eq,
                    value: 1.0,
                    line: line_at(s + at),
                    text: shown.clone(),
                    scope: scope.clone(),
                    note: None,
                });
            }
            for n in &notes {
                if !n.starts_with("a mean time") {
                    let line = line_at(s);
                    diagnostics.push(Diagnostic {
                        level: Level::Warning,
                        line: Some(line),
                        other_line: None,
                        message: n.clone(),
                        text: source_line(line),
                        refusal: None,
                    });
                }
            }
            if !any && !any_ask && !impossible && promise {
                found.push(Found {
                    kind: Kind::Other,
                    op: Op::Eq,
                    value: 1.0,
                    line: line_at(s),
                    text: shown.clone(),
                    scope: scope.clone(),
                    note: notes.first().cloned(),
                });
            }
        }
        if found.is_empty() {
            continue;
        }
        let base = match explicit {
            Some(id) => id,
            None => {
                let slug = slug(&u.heading);
                let slug = if slug.is_empty() { "req".to_string() } else { slug };
                let n = per_heading.entry(slug.clone()).or_insert(0);
                *n += 1;
                format!("{slug}-{n}")
            }
        };
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

    let reqs = merge(reqs, &mut diagnostics, &source_line);
    let reqs = chosen_tier(reqs, &source_line, &mut unread);
    // Ids must be unique: a later duplicate of an explicit id gets a suffix.
    let mut reqs = reqs;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in reqs.iter_mut() {
        let n = seen.entry(r.id.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            r.id = format!("{}-{}", r.id, n);
        }
    }
    let (reqs, mut questions) = conflicts(reqs, &source_line);
    questions.extend(asked);
    if let Some((line, shown, scope)) = multi_az.filter(|_| !reqs.iter().any(|r| r.kind == Kind::AzFailureTolerance)) {
        let src = source_line(line);
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
    Ok(Spec { requirements: reqs, context, diagnostics, unread, questions, llm: None })
}

/// A table of tiers (one row per tier, each its own target) is a set of promises, one per
/// tier, until the spec chooses one ("Default target: 99.95 % uptime (Enterprise tier)"): then
/// the other tiers' figures of that kind are a menu it did not pick, not its targets. The
/// chosen row joins the line that chose it. Only a line outside the table that names exactly
/// one tier, with that tier's figure, chooses.
pub(crate) fn chosen_tier(
    mut reqs: Vec<Requirement>,
    source_line: &dyn Fn(usize) -> String,
    unread: &mut Vec<Unread>,
) -> Vec<Requirement> {
    // Only a line that says "tier" can choose one: most specs pass this pass in one look.
    let choosers: Vec<usize> = (0..reqs.len()).filter(|&c| reqs[c].text.to_lowercase().contains("tier")).collect();
    if choosers.is_empty() {
        return reqs;
    }
    let in_table: Vec<bool> = reqs.iter().map(|r| source_line(r.line).trim_start().starts_with('|')).collect();
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
                text: source_line(r.line).trim().to_string(),
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
        let mut lines = reqs[c].all_lines();
        lines.extend(reqs[chosen].all_lines());
        lines.sort();
        lines.dedup();
        reqs[c].lines = lines;
        drop.push(chosen);
    }
    drop.sort();
    drop.dedup();
    for i in drop.into_iter().rev() {
        reqs.remove(i);
    }
    reqs
}

/// Text kept to show where a reading came from: a line or a sentence, at most `EXCERPT`
/// characters of it (a requirement or an unread figure of a megabyte-long line does not carry
/// the whole line).
pub(crate) const EXCERPT: usize = 400;

pub(crate) fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Question ids by line: `q-12`, and `q-12b` for a second on the same line.
pub(crate) fn number_questions(qs: &mut [Question]) {
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
