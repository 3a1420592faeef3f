//! Specs: a Markdown file -> requirements with their source lines, plus the context (region,
//! stack, endpoint) the runbook targets.
//!
//! The walk collects "units" of text (a list item, a paragraph, a table row), each with the line
//! it starts on and the heading it sits under, then asks [`requirement::extract`] for figures.
//! Ids are explicit when the spec gives one (`REQ-3: ...`, `1.2 ...`, an `ID` table column),
//! Kiro-style (`Requirement 2` heading, third acceptance criterion -> `2.3`), or derived from
//! the heading and the order (`performance-2`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use regex::Regex;
use serde::Serialize;

use super::requirement::{self, Kind, Op, Requirement};

/// Where a runbook points: region, stack, endpoint and any other key the spec names.
pub type Context = BTreeMap<String, String>;

#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub requirements: Vec<Requirement>,
    pub context: Context,
}

/// What is wrong with a spec, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub path: String,
    pub line: Option<usize>,
    pub kind: ErrorKind,
    /// The offending source line, for display.
    pub source_line: Option<String>,
}

/// Two different targets for one kind, and where each was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub kind: String,
    pub first: Requirement,
    pub second: Requirement,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    Missing(String),
    NotUtf8,
    Empty,
    NoRequirements,
    Impossible(String),
    Conflict(Box<Conflict>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Missing(why) => write!(f, "cannot read spec {}: {why}", self.path)?,
            ErrorKind::NotUtf8 => write!(f, "spec is not UTF-8 text")?,
            ErrorKind::Empty => write!(f, "spec is empty")?,
            ErrorKind::NoRequirements => write!(
                f,
                "spec has no requirement: expected sentences such as \"handle 2,500 connections per second\" or \"THE SYSTEM SHALL ...\""
            )?,
            ErrorKind::Impossible(why) => write!(f, "impossible requirement: {why}")?,
            ErrorKind::Conflict(c) => write!(
                f,
                "two different targets for {}: {} ({}) here, but {} ({}) at line {}",
                c.kind,
                c.second.target(),
                c.second.id,
                c.first.target(),
                c.first.id,
                c.first.line
            )?,
        }
        if let Some(line) = self.line {
            write!(f, "\n  --> {}:{line}", self.path)?;
            if let Some(src) = &self.source_line {
                let w = line.to_string().len();
                write!(f, "\n{:w$} |\n{line} | {src}\n{:w$} |", "", "")?;
            }
        } else if !matches!(self.kind, ErrorKind::Missing(_)) {
            write!(f, "\n  --> {}", self.path)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Parse a spec from raw bytes; `path` is only used in messages.
pub fn parse_bytes(path: &str, bytes: &[u8]) -> Result<Spec, Error> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
            return Err(Error { path: path.into(), line: Some(line), kind: ErrorKind::NotUtf8, source_line: None });
        }
    };
    parse(path, text)
}

static EXPLICIT_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*\[?(?P<id>[A-Za-z][A-Za-z0-9]*-\d+(?:\.\d+)*|\d+\.\d+(?:\.\d+)*)\]?\s*(?:[:.)\-–—]\s*|\s+)")
        .unwrap()
});
static EARS_RESPONSE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*(?:when|if|while|where)\b.*?\b(?:shall|must)\b").unwrap());
static KIRO_HEADING: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)^\s*requirement\s+(?P<n>\d+)\b").unwrap());
static KEY_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(?P<k>[A-Za-z][A-Za-z0-9 _-]{0,40}?)\s*[:=]\s*(?P<v>\S.*?)\s*$").unwrap());

/// A text unit being collected: its text, start line, and Kiro position (heading number,
/// item number).
type Open = (String, usize, Option<(String, u64)>);

/// A piece of text that may hold a requirement.
#[derive(Debug)]
struct Unit {
    text: String,
    line: usize,
    heading: String,
    /// `Requirement N` heading number, and the item's 1-based position in an ordered list.
    kiro: Option<(String, u64)>,
    /// An id given in a table's ID column.
    table_id: Option<String>,
    in_context: bool,
}

fn is_context_heading(h: &str) -> bool {
    matches!(h.trim().to_ascii_lowercase().as_str(), "context" | "environment")
}

/// Canonical context keys: `region`, `stack`, `endpoint`; others lowercased with `_`.
pub fn context_key(k: &str) -> String {
    let k = k.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    match k.as_str() {
        "aws_region" | "region" => "region".into(),
        "stack" | "stack_name" | "cloudformation_stack" => "stack".into(),
        "endpoint" | "endpoint_url" | "url" | "app_url" | "service_url" => "endpoint".into(),
        _ => k,
    }
}

fn strip_value(v: &str) -> String {
    v.trim().trim_matches('`').trim_matches('"').trim_matches('\'').trim().to_string()
}

pub fn parse(path: &str, text: &str) -> Result<Spec, Error> {
    if text.trim().is_empty() {
        return Err(Error { path: path.into(), line: None, kind: ErrorKind::Empty, source_line: None });
    }
    let line_starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let line_of = |off: usize| line_starts.partition_point(|&s| s <= off);
    let lines: Vec<&str> = text.lines().collect();

    let mut context = Context::new();
    let mut units: Vec<Unit> = Vec::new();

    let opts = Options::ENABLE_TABLES | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut heading = String::new();
    let mut heading_buf: Option<String> = None;
    // `Requirement N` heading number, and that heading's level.
    let mut kiro_n: Option<(String, HeadingLevel)> = None;
    let mut in_context = false;
    let mut in_metadata = false;
    // Stack of open lists: (ordered start, items seen so far).
    let mut lists: Vec<(Option<u64>, u64)> = Vec::new();
    // Open text unit being collected: (text, start line, kiro position).
    let mut cur: Option<Open> = None;
    let mut item_depth = 0usize;
    // Tables.
    let mut in_head = false;
    let mut header: Vec<String> = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut row_line = 0usize;
    let mut cell: Option<String> = None;

    let flush = |cur: &mut Option<Open>, units: &mut Vec<Unit>, heading: &str, in_context: bool| {
        if let Some((t, line, kiro)) = cur.take() {
            let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
            if !t.is_empty() {
                units.push(Unit { text: t, line, heading: heading.to_string(), kiro, table_id: None, in_context });
            }
        }
    };

    for (ev, range) in Parser::new_ext(text, opts).into_offset_iter() {
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
                flush(&mut cur, &mut units, &heading, in_context);
                heading_buf = Some(String::new());
            }
            Event::End(TagEnd::Heading(level)) => {
                heading = heading_buf.take().unwrap_or_default().trim().to_string();
                in_context = is_context_heading(&heading);
                if let Some(c) = KIRO_HEADING.captures(&heading) {
                    kiro_n = Some((c["n"].to_string(), level));
                } else if kiro_n.as_ref().is_some_and(|(_, l)| level <= *l) {
                    kiro_n = None;
                }
            }
            Event::Start(Tag::List(start)) => {
                flush(&mut cur, &mut units, &heading, in_context);
                lists.push((start, 0));
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
            }
            Event::Start(Tag::Item) => {
                flush(&mut cur, &mut units, &heading, in_context);
                item_depth += 1;
                let kiro = match (lists.last_mut(), &kiro_n) {
                    (Some((Some(start), seen)), Some((n, _))) => {
                        *seen += 1;
                        Some((n.clone(), *start + *seen - 1))
                    }
                    (Some((_, seen)), _) => {
                        *seen += 1;
                        None
                    }
                    _ => None,
                };
                cur = Some((String::new(), line_of(range.start), kiro));
            }
            Event::End(TagEnd::Item) => {
                flush(&mut cur, &mut units, &heading, in_context);
                item_depth = item_depth.saturating_sub(1);
            }
            Event::Start(Tag::Paragraph) if item_depth == 0 => {
                flush(&mut cur, &mut units, &heading, in_context);
                cur = Some((String::new(), line_of(range.start), None));
            }
            Event::End(TagEnd::Paragraph) => {
                if item_depth == 0 {
                    flush(&mut cur, &mut units, &heading, in_context);
                } else if let Some((t, _, _)) = cur.as_mut() {
                    t.push(' ');
                }
            }
            Event::Start(Tag::Table(_)) => {
                flush(&mut cur, &mut units, &heading, in_context);
                header.clear();
            }
            Event::Start(Tag::TableHead) => {
                in_head = true;
                row.clear();
            }
            Event::End(TagEnd::TableHead) => {
                in_head = false;
                header = row.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
                row.clear();
            }
            Event::Start(Tag::TableRow) => {
                row.clear();
                row_line = line_of(range.start);
            }
            Event::Start(Tag::TableCell) => cell = Some(String::new()),
            Event::End(TagEnd::TableCell) => {
                if let Some(c) = cell.take() {
                    row.push(c.trim().to_string());
                }
                if in_head {
                    row_line = line_of(range.start);
                }
            }
            Event::End(TagEnd::TableRow) => {
                let id_col = header.iter().position(|h| h == "id");
                if in_context && row.len() >= 2 {
                    context.insert(context_key(&row[0]), strip_value(&row[1]));
                } else {
                    let text: Vec<&str> = row
                        .iter()
                        .enumerate()
                        .filter(|(i, c)| Some(*i) != id_col && !c.is_empty())
                        .map(|(_, c)| c.as_str())
                        .collect();
                    units.push(Unit {
                        text: text.join(" "),
                        line: row_line,
                        heading: heading.clone(),
                        kiro: None,
                        table_id: id_col.and_then(|i| row.get(i)).filter(|s| !s.is_empty()).cloned(),
                        in_context,
                    });
                }
                row.clear();
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading_buf.as_mut() {
                    h.push_str(&t);
                } else if let Some(c) = cell.as_mut() {
                    c.push_str(&t);
                } else if let Some((s, _, _)) = cur.as_mut() {
                    s.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((s, _, _)) = cur.as_mut() {
                    s.push(' ');
                }
            }
            _ => {}
        }
    }
    flush(&mut cur, &mut units, &heading, in_context);

    // Context section: "Key: value" units.
    for u in units.iter().filter(|u| u.in_context) {
        if let Some(c) = KEY_VALUE.captures(&u.text) {
            context.insert(context_key(&c["k"]), strip_value(&c["v"]));
        }
    }

    let err = |line: usize, kind: ErrorKind| Error {
        path: path.into(),
        line: Some(line),
        kind,
        source_line: lines.get(line.wrapping_sub(1)).map(|s| s.to_string()),
    };

    let mut reqs: Vec<Requirement> = Vec::new();
    let mut per_heading: BTreeMap<String, usize> = BTreeMap::new();
    for u in units.iter().filter(|u| !u.in_context) {
        let (explicit, body) = match (&u.table_id, &u.kiro, EXPLICIT_ID.captures(&u.text)) {
            (Some(id), _, _) => (Some(id.clone()), u.text.as_str()),
            (None, _, Some(c)) => (Some(c["id"].to_string()), &u.text[c.get(0).unwrap().end()..]),
            (None, Some((n, k)), None) => (Some(format!("{n}.{k}")), u.text.as_str()),
            _ => (None, u.text.as_str()),
        };
        // EARS: WHEN/IF/WHILE <trigger> THE SYSTEM SHALL <response>: only the response promises.
        let (promise, body) = match EARS_RESPONSE.find(body) {
            Some(m) => (true, &body[m.end()..]),
            None => (requirement::is_promise(body), body),
        };
        let found = requirement::extract(body).map_err(|e| err(u.line, ErrorKind::Impossible(e.0)))?;
        let found = if found.is_empty() {
            if !promise {
                continue;
            }
            vec![requirement::Found { kind: Kind::Other, op: Op::Eq, value: 1.0 }]
        } else {
            found
        };
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
            let id = if many && i > 0 { format!("{base}{}", (b'a' + i as u8) as char) } else { base.clone() };
            let unit = f.kind.unit();
            reqs.push(Requirement {
                id,
                kind: f.kind,
                op: f.op,
                value: f.value,
                unit,
                line: u.line,
                text: u.text.clone(),
            });
        }
    }

    if reqs.is_empty() {
        return Err(Error { path: path.into(), line: None, kind: ErrorKind::NoRequirements, source_line: None });
    }
    // Ids must be unique: a later duplicate of an explicit id gets a suffix.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in reqs.iter_mut() {
        let n = seen.entry(r.id.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            r.id = format!("{}-{}", r.id, n);
        }
    }
    for (i, b) in reqs.iter().enumerate() {
        if let Some(a) = reqs[..i].iter().find(|a| a.kind == b.kind && a.kind.is_measurable() && !a.same_target(b)) {
            return Err(err(
                b.line,
                ErrorKind::Conflict(Box::new(Conflict {
                    kind: b.kind.to_string(),
                    first: a.clone(),
                    second: b.clone(),
                })),
            ));
        }
    }
    Ok(Spec { requirements: reqs, context })
}

/// `"Performance & scale"` -> `performance-scale`.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(40).collect::<String>().trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids_kinds(spec: &Spec) -> Vec<(String, String, usize)> {
        spec.requirements.iter().map(|r| (r.id.clone(), r.kind.to_string(), r.line)).collect()
    }

    #[test]
    fn bullets_with_explicit_ids_and_front_matter() {
        let text = "---\nregion: eu-west-1\nstack: shop\n---\n# Launch\n\n- REQ-1: handle 2,500 connections per second\n- **REQ-2** average response under 250 ms\n";
        let s = parse("t.md", text).unwrap();
        assert_eq!(
            ids_kinds(&s),
            [("REQ-1".into(), "throughput".into(), 7), ("REQ-2".into(), "latency_avg".into(), 8)]
        );
        assert_eq!(s.context["region"], "eu-west-1");
        assert_eq!(s.context["stack"], "shop");
    }

    #[test]
    fn kiro_acceptance_criteria() {
        let text = "# Requirements\n\n## Requirement 1\n\n**User Story:** As an operator, I want speed.\n\n### Acceptance Criteria\n\n1. WHEN traffic peaks THEN THE SYSTEM SHALL take 2,500 connections per second and answer 99.5 % of requests successfully\n2. IF one availability zone fails THEN THE SYSTEM SHALL survive the loss of one AZ\n3. IF one availability zone fails THEN THE SYSTEM SHALL page the on-call engineer\n";
        let s = parse("k.md", text).unwrap();
        assert_eq!(
            ids_kinds(&s),
            [
                ("1.1".into(), "throughput".into(), 9),
                ("1.1b".into(), "success_rate".into(), 9),
                ("1.2".into(), "az_failure_tolerance".into(), 10),
                ("1.3".into(), "other".into(), 11)
            ]
        );
    }

    #[test]
    fn tables_paragraphs_and_context_section() {
        let text = "# Targets\n\n| ID | Requirement | Target |\n|----|----|----|\n| P-1 | p99 latency | under 900 ms |\n| P-2 | RTO | 2 hours |\n\n## Recovery\n\nThe data must not be older than an RPO of 10 minutes.\n\n## Context\n\n- Region: us-east-1\n- Endpoint URL: `http://127.0.0.1:8080/health`\n";
        let s = parse("t.md", text).unwrap();
        assert_eq!(
            ids_kinds(&s),
            [
                ("P-1".into(), "latency_p99".into(), 5),
                ("P-2".into(), "rto".into(), 6),
                ("recovery-1".into(), "rpo".into(), 10)
            ]
        );
        assert_eq!(s.context["endpoint"], "http://127.0.0.1:8080/health");
        assert_eq!(s.context["region"], "us-east-1");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("x.md", "# A\n\n- average response under -3 ms\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(matches!(e.kind, ErrorKind::Impossible(_)));
        let e = parse("x.md", "# A\n\n- RTO 2 h\n- RTO of 4 hours\n").unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(e.to_string().contains("two different targets for rto"), "{e}");
        assert_eq!(parse("x.md", "  \n").unwrap_err().kind, ErrorKind::Empty);
        assert_eq!(parse("x.md", "# Just a title\n\nHello.\n").unwrap_err().kind, ErrorKind::NoRequirements);
        let e = parse_bytes("x.md", b"# A\n\n- RTO \xff 2h\n").unwrap_err();
        assert_eq!((e.kind, e.line), (ErrorKind::NotUtf8, Some(3)));
    }

    #[test]
    fn same_target_twice_is_fine() {
        let s = parse("x.md", "- RTO 2 h\n- RTO of 120 minutes\n").unwrap();
        assert_eq!(s.requirements.len(), 2);
    }
}
