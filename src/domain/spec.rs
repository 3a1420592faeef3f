//! Specs: a Markdown file -> requirements with their source lines, the context (region, stack,
//! endpoint) the runbook targets, and diagnostics for everything not read as a target.
//!
//! The walk collects "units" of text (a list item, a paragraph, a table cell under a target
//! column), each with where every piece of it came from, the headings it sits under, the label
//! of its parent list item and its table header. Each unit is split into sentences and each
//! sentence read by [`reading::read`]: the context gives it a statistic ("## Latency (p99)"), a
//! unit ("p95 target (ms)"), a comparison (a `Max` column) and a scope (the label before a
//! colon, the table row, the heading). Ids are explicit when the spec gives one (`REQ-3: ...`,
//! an `ID` column), Kiro-style (`Requirement 2`, third criterion -> `2.3`), or derived from the
//! heading and the order (`performance-2`).
//!
//! A readable document is never refused here: conflicts and impossible figures are error
//! diagnostics, and [`Spec::refusal`] is what `flow plan` refuses with.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::LazyLock;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use regex::Regex;
use serde::Serialize;

use super::quantity::{self, Class};
use super::reading::{self, Hints, Label};
use super::requirement::{self, fmt_num, Kind, Op, Requirement, Source};

/// Where a runbook points: region, stack, endpoint and any other key the spec names.
pub type Context = BTreeMap<String, String>;

#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub requirements: Vec<Requirement>,
    pub context: Context,
    /// Conflicts, impossible figures, missing statistics, restatements: each with its line.
    pub diagnostics: Vec<Diagnostic>,
    /// Every figure with a unit that is not read as a requirement, and why.
    pub unread: Vec<Unread>,
    /// What flow is not sure of and asks a person instead of guessing: two different targets
    /// for one thing, a latency with no statistic, a figure stated with no comparison or
    /// commitment. Each is settled once (`flow answer`); until then it is no requirement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<Question>,
    /// What a model proposed and what became of each proposal, when one was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<Extraction>,
}

/// What became of a model's proposals.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Extraction {
    pub provider: String,
    pub model: String,
    /// Proposals in the answer (readable or not).
    pub proposed: usize,
    /// Requirements added from proposals (their `source` is `llm`).
    pub kept: Vec<String>,
    /// Requirements flow read itself that the model read the same.
    pub agreed: Vec<String>,
    pub rejected: Vec<Rejected>,
    /// Lines where the model and flow read differently; flow's reading is used.
    pub disagreements: Vec<Disagreement>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejected {
    pub line: Option<usize>,
    pub quote: String,
    pub proposal: String,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disagreement {
    pub line: usize,
    pub quote: String,
    /// The model's reading.
    pub model: String,
    /// flow's reading of the line, which is the one used.
    pub builtin: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// `flow plan` refuses the spec.
    Error,
    Warning,
    Note,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub level: Level,
    /// The line it is about; none for the whole spec.
    pub line: Option<usize>,
    /// The other line of a conflict or a restatement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_line: Option<usize>,
    pub message: String,
    /// The source line, as written.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(skip)]
    refusal: Option<ErrorKind>,
}

/// A reading flow is not sure of: the candidates a person chooses from (or none of them).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Question {
    /// `q-LINE` (with a suffix when a line holds several): what `flow answer` names.
    pub id: String,
    /// What the answer is kept under: the question and the text of its lines, so an answer
    /// holds across re-plans while those lines are unchanged.
    pub key: String,
    pub line: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_line: Option<usize>,
    /// The source line, as written.
    pub text: String,
    /// What flow is not sure of, in words.
    pub why: String,
    /// The readings to choose from, numbered from 1 in `flow answer --use N`.
    pub readings: Vec<Requirement>,
}

/// A figure not read as a requirement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unread {
    pub line: usize,
    /// The source line, as written.
    pub text: String,
    pub figure: String,
    pub why: String,
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

#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    Missing(String),
    NotUtf8,
    Empty,
    /// Nothing to plan; how many figures were read as not targets.
    NoRequirements {
        unread: usize,
    },
    Impossible(String),
    /// Two different targets for one kind and scope; the message names both.
    Conflict(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Missing(why) => write!(f, "cannot read spec {}: {why}", self.path)?,
            ErrorKind::NotUtf8 => write!(f, "spec is not UTF-8 text")?,
            ErrorKind::Empty => write!(f, "spec is empty")?,
            ErrorKind::NoRequirements { unread } => {
                write!(f, "spec has no requirement, so there is nothing to plan")?;
                if *unread > 0 {
                    let s = if *unread == 1 { "" } else { "s" };
                    write!(
                        f,
                        ": {unread} figure{s} read as not targets (`flow spec {}` lists each with why)",
                        self.path
                    )?;
                }
                write!(f, "; a target reads like \"handle 2,500 connections per second\" or \"THE SYSTEM SHALL ...\"")?
            }
            ErrorKind::Impossible(why) => write!(f, "impossible requirement: {why}")?,
            ErrorKind::Conflict(message) => f.write_str(message)?,
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

impl Spec {
    /// Why this spec cannot be planned: its first error (a conflict, an impossible figure), or
    /// no requirement at all.
    pub fn refusal(&self, path: &str) -> Option<Error> {
        if let Some(d) = self.diagnostics.iter().find(|d| d.level == Level::Error) {
            return Some(Error {
                path: path.into(),
                line: d.line,
                kind: d.refusal.clone().unwrap_or_else(|| ErrorKind::Impossible(d.message.clone())),
                source_line: (!d.text.is_empty()).then(|| d.text.clone()),
            });
        }
        (self.requirements.is_empty() && self.questions.is_empty()).then(|| Error {
            path: path.into(),
            line: None,
            kind: ErrorKind::NoRequirements { unread: self.unread.len() },
            source_line: None,
        })
    }

    /// After requirements were added (grounded model proposals): the whole-spec warning again.
    pub fn recheck(&mut self) {
        self.diagnostics.retain(|d| !(d.line.is_none() && d.level == Level::Warning));
        if let Some(d) = whole_spec_warning(&self.requirements, self.questions.len()) {
            self.diagnostics.insert(0, d);
        }
    }

    /// Warnings a plan carries with it (nothing measurable, missing statistics).
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.level == Level::Warning)
    }

    /// Settle the questions a person answered (by key): the reading chosen becomes a
    /// requirement; "none of them" leaves the figure unread, with who said so.
    pub fn apply_answers(&mut self, answers: &BTreeMap<String, Answer>) {
        let mut open = Vec::new();
        for q in std::mem::take(&mut self.questions) {
            match answers.get(&q.key) {
                Some(Answer { choice: Some(n), by, .. }) if *n >= 1 && *n <= q.readings.len() => {
                    let mut r = q.readings[*n - 1].clone();
                    if r.id.is_empty() {
                        r.id = q.id.clone();
                    }
                    r.note = Some(format!("chosen by {by} (question {})", q.id));
                    if self.requirements.iter().any(|e| e.id == r.id) {
                        r.id = format!("{}-{}", r.id, q.id);
                    }
                    self.requirements.push(r);
                }
                Some(Answer { by, .. }) => self.unread.push(Unread {
                    line: q.line,
                    text: q.text.clone(),
                    figure: q.readings.first().map(|r| r.target()).unwrap_or_default(),
                    why: format!("not a target: answered by {by} (question {})", q.id),
                }),
                None => open.push(q),
            }
        }
        self.questions = open;
        self.requirements.sort_by_key(|r| r.line);
        self.unread.sort_by_key(|u| u.line);
    }
}

/// A person's answer to a question: the reading chosen (1-based), or none of them.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Answer {
    pub choice: Option<usize>,
    pub by: String,
    pub at: String,
}

/// An open list: its ordered start, the items seen so far, and what its parent item (or the
/// short paragraph ending in a colon that leads it) gives it.
type OpenList = (Option<u64>, u64, Ctx);

/// What a heading, a parent item or a table says about the figures under it.
#[derive(Debug, Clone, Default, PartialEq)]
enum Say {
    #[default]
    Nothing,
    /// "Targets", "SLOs", "Requirements", "Порог", "목표" ...
    Targets,
    /// "Results", "Alerts", "Examples", "Estimated breakdown" ...: why its figures are not targets.
    NotTargets(String),
}

/// What a heading or a parent item gives what is under it.
#[derive(Debug, Clone, Default)]
struct Ctx {
    labels: Vec<Label>,
    scope: Option<String>,
    say: Say,
}

/// Section words that say its figures are not targets, and what the section is.
static NOT_TARGET_SECTION: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    let r = |p: &str| Regex::new(&format!("(?i){p}")).expect("static section pattern");
    vec![
        (
            r(
                r"\b(?:results?|reports?|findings|benchmarks?|benchmarking|measurements?|observed|actuals?|progress|current\s+state|as-is|history|incidents?|post-?mortems?|baseline|iterations?|итерац\w*|summary\s+of\s+(?:the\s+)?(?:run|test)s?)\b|результат|прогресс|отч[её]т|결과|结果|測定|実測",
            ),
            "measured results",
        ),
        (r(r"\b(?:alerts?|alerting|alarms?|paging|burn[\s-]?rates?)\b|алерт|оповещ|알림|告警|报警"), "alerts"),
        (r(r"\b(?:examples?|samples?|illustrat\w*|terminology)\b|пример|терминолог|예시|용어|示例|术语"), "examples"),
        (
            r(r"\b(?:estimated?|estimates?|breakdown|timeline|assum\w+)\b|оценк|추정|估算|допущени"),
            "estimates or assumptions",
        ),
        (
            r(
                r"\b(?:error\s+budgets?|business\s+impact|impact\s+analysis|compensation|service\s+credits?|credits|penalt\w+|pricing)\b|бюджет\w*\s+ошибок|오류\s*예산|에러\s*버짓|错误预算",
            ),
            "budgets, business impact or compensation",
        ),
        (r(r"\b(?:auto[\s-]?scal\w*|scaling\s+polic\w*)\b"), "autoscaling settings"),
        (r(r"\b(?:do\s+not|don'?t|never|when\s+to|triggers?)\b|\bwhen\s*$"), "conditions for acting"),
        (r(r"\b(?:will|may|might|would)\s+(?:see|notice|observe|experience)\b"), "effects people will see"),
    ]
});

/// Section words that say its figures are targets.
static TARGET_SECTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:targets?|objectives?|slos?|slas?|requirements?|nfrs?|thresholds?|goals?|acceptance\s+criteria|non-functional|service\s+levels?|budgets?\s+we\s+commit)\b|цел[ьи]|порог|требован|목표|요구|目标|目標|要求|指标")
        .expect("static section pattern")
});

/// What a heading or a lead says about the figures under it: targets, not targets, or nothing
/// (both or neither).
fn say_of(text: &str) -> Say {
    let not = NOT_TARGET_SECTION.iter().find(|(rx, _)| rx.is_match(text));
    match (not, TARGET_SECTION.is_match(text)) {
        (Some((_, what)), false) => {
            Say::NotTargets(format!("under \"{}\", a section of {what}, not targets", text.trim()))
        }
        (None, true) => Say::Targets,
        _ => Say::Nothing,
    }
}

fn ctx_of(text: &str) -> Ctx {
    Ctx { labels: context_labels(text), scope: scope_of(text), say: say_of(text) }
}

/// Why a figure in a code block or in HTML is not read: flow reads prose, lists and tables.
pub const IN_CODE: &str = "in a code block, which flow does not read (only k6 thresholds there)";
pub const IN_HTML: &str = "in HTML, which flow does not read";

/// Figures with a unit in text flow does not read: each reported, none silently dropped.
fn not_prose(
    text: &str,
    at: usize,
    why: &str,
    line_of: &dyn Fn(usize) -> usize,
    source_line: &dyn Fn(usize) -> String,
    unread: &mut Vec<Unread>,
) {
    for f in quantity::figures(text, true).into_iter().filter(|f| f.class != Class::Bare) {
        let line = line_of(at + f.start);
        unread.push(Unread {
            line,
            text: source_line(line).trim().to_string(),
            figure: f.text(text).to_string(),
            why: why.into(),
        });
    }
}

/// What a person should know about the spec as a whole: nothing found, or nothing measurable.
fn whole_spec_warning(reqs: &[Requirement], questions: usize) -> Option<Diagnostic> {
    let message = if reqs.is_empty() && questions > 0 {
        "no requirement is certain yet: every target waits on an answer to a question below".to_string()
    } else if reqs.is_empty() {
        "no requirement found: expected sentences such as \"handle 2,500 connections per second\" or \"THE SYSTEM SHALL ...\"".to_string()
    } else if !reqs.iter().any(|r| r.kind.is_measurable()) {
        "nothing measurable: no step can verify any of these requirements, so a plan proves nothing".to_string()
    } else {
        return None;
    };
    Some(Diagnostic {
        level: Level::Warning,
        line: None,
        other_line: None,
        message,
        text: String::new(),
        refusal: None,
    })
}

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
/// EARS: WHEN/IF/WHILE/WHERE <condition> THE SYSTEM SHALL <response>.
static EARS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*(?:when|if|while|where)\b.*?\b(?:shall|must)\b").unwrap());
static KIRO_HEADING: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)^\s*requirement\s+(?P<n>\d+)\b").unwrap());
static KEY_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(?P<k>[A-Za-z][A-Za-z0-9 _-]{0,40}?)\s*[:=]\s*(?P<v>\S.*?)\s*$").unwrap());
/// A table cell that is a number alone ("≥ 99.9", "250"): its unit is the column's.
static BARE_CELL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\s<>≤≥=~*]*[\d][\d.,\s]*[\s*+]*(?:\([^()]*\)\s*)?$").unwrap());
/// "Checkout API: p99 under 300 ms": the label before a colon.
static COLON_LABEL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(?P<label>[^:]{1,60}?)\s*:\s+").unwrap());
/// "Tier-0 services have an RTO of ...": a sentence whose subject names what it is about.
static SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?P<s>[\w-]+(?:\s+[\w-]+){0,2}\s+(?:services?|systems?|databases?|apis?|workloads?|applications?|apps?|tiers?|components?|endpoints?|servers?|nodes?|clusters?|gateways?|portals?))\s+(?:have|has|must|shall|should|will|need|needs|require|requires|are|is|get|gets)\b").unwrap()
});
/// "... THE checkout service SHALL ...": the subject of an EARS response.
static EARS_SUBJECT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bthe\s+(?P<s>[\w-]+(?:\s+[\w-]+){0,2}?)\s+(?:shall|must)\b").unwrap());
static NUMBERING: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*(?:\d+(?:\.\d+)*\.?|[A-Z]\.)\s+").unwrap());
static PARENS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s*\([^)]*\)").unwrap());

/// Words that name a kind of requirement, a section or a statistic, not what it applies to.
const GENERIC: &[&str] = &[
    "a",
    "an",
    "the",
    "of",
    "for",
    "and",
    "&",
    "to",
    "in",
    "on",
    "with",
    "our",
    "its",
    "all",
    "per",
    "by",
    "at",
    "or",
    "api",
    "apis",
    "requirement",
    "requirements",
    "non-functional",
    "nonfunctional",
    "functional",
    "nfr",
    "nfrs",
    "performance",
    "latency",
    "latencies",
    "throughput",
    "capacity",
    "scale",
    "scalability",
    "scaling",
    "load",
    "traffic",
    "availability",
    "uptime",
    "reliability",
    "resilience",
    "resiliency",
    "recovery",
    "disaster",
    "dr",
    "backup",
    "backups",
    "restore",
    "restores",
    "data",
    "durability",
    "slo",
    "slos",
    "sla",
    "slas",
    "sli",
    "slis",
    "service",
    "services",
    "level",
    "levels",
    "objective",
    "objectives",
    "indicator",
    "indicators",
    "agreement",
    "target",
    "targets",
    "goal",
    "goals",
    "commitment",
    "commitments",
    "summary",
    "overview",
    "glossary",
    "definitions",
    "terms",
    "acceptance",
    "criteria",
    "introduction",
    "context",
    "environment",
    "error",
    "errors",
    "rate",
    "rates",
    "budget",
    "budgets",
    "success",
    "failure",
    "failures",
    "failover",
    "zone",
    "zones",
    "az",
    "azs",
    "response",
    "responses",
    "time",
    "times",
    "average",
    "mean",
    "median",
    "percentile",
    "percentiles",
    "statistics",
    "numbers",
    "metrics",
    "metric",
    "measures",
    "quality",
    "attributes",
    "operational",
    "operations",
    "production",
    "launch",
    "readiness",
    "go-live",
    "day",
    "user",
    "story",
    "notes",
    "appendix",
    "key",
    "main",
    "general",
    "overall",
    "system",
    "systems",
    "thresholds",
    "limits",
    "kpis",
    "table",
    "rto",
    "rpo",
    "downtime",
    "outage",
    "outages",
    "business",
    "continuity",
    "planning",
    "plan",
    "policy",
    "decision",
    "record",
    "status",
    "consequences",
    "rationale",
    "background",
    "monitoring",
    "alerting",
    "alarms",
    "notifications",
    "security",
    "cost",
    "costs",
    "credits",
    "credit",
    "support",
    "peak",
    "expected",
    "required",
    "minimum",
    "maximum",
    "max",
    "min",
    "monthly",
    "weekly",
    "daily",
    "yearly",
    "annual",
    "quarterly",
    "rolling",
    "value",
    "values",
    "connections",
    "connection",
    "requests",
    "request",
    "second",
    "seconds",
    "minute",
    "minutes",
    "hour",
    "hours",
    "sec",
    "ms",
    "rps",
    "tps",
    "qps",
    "successful",
    "successfully",
    "p50",
    "p90",
    "p95",
    "p99",
    "p999",
    "it",
    "its",
    "they",
    "this",
    "these",
    "we",
    "you",
    "scenario",
    "scenarios",
    "feature",
    "given",
    "background",
    "example",
    "examples",
];

/// What a piece of text is scoped to, if it names something beyond kinds and statistics: the
/// text as written (numbering and parentheses dropped).
pub fn scope_of(text: &str) -> Option<String> {
    let text = quantity::normalize(text);
    let shown =
        PARENS.replace_all(&NUMBERING.replace(&text, ""), "").trim().trim_matches(['*', '_', ':']).trim().to_string();
    let shown = match shown.split_once(' ') {
        Some((the, rest)) if the.eq_ignore_ascii_case("the") => rest.to_string(),
        _ => shown,
    };
    if scope_key(&shown).is_some() {
        return Some(shown);
    }
    // "RPS (read)", "p50 latency (cached)": with nothing else, the parentheses say what.
    let inner: Vec<&str> = PARENS.find_iter(&text).map(|m| m.as_str().trim().trim_matches(['(', ')'])).collect();
    let inner = inner.join(" ");
    let inner = inner.trim();
    (!inner.is_empty() && inner.len() <= 40 && scope_key(inner).is_some()).then(|| inner.to_string())
}

/// The words of a scope that decide whether two scopes are the same ("Checkout API" and
/// "checkout" are).
/// A scope's key; a scope that is only label words ("throughput" named in a Profile column)
/// is its own key.
fn scope_or_name(scope: &str) -> String {
    scope_key(scope).unwrap_or_else(|| scope.trim().to_lowercase())
}

pub fn scope_key(scope: &str) -> Option<String> {
    let spans = reading::labels(scope);
    let words: Vec<String> = quantity::tokens(scope)
        .into_iter()
        .filter(|t| t.text.chars().any(char::is_alphanumeric))
        .filter(|t| !spans.iter().any(|s| t.start < s.end && s.start < t.end))
        .map(|t| t.text)
        .filter(|w| !GENERIC.contains(&w.as_str()))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// "REQ-1 handle ...", "Perf-2: ...", "1.2 ...": an id; "Tier-0 services ...": a word.
fn id_like(c: &regex::Captures) -> bool {
    let sep = &c[0][c["id"].len() + c[0].find(&c["id"]).unwrap_or(0)..];
    let punctuated = sep.trim_start_matches([']', ' ']).starts_with([':', '.', ')', '-', '–', '—']);
    let letters: String = c["id"].chars().take_while(|ch| ch.is_ascii_alphabetic()).collect();
    punctuated || letters.is_empty() || letters.chars().all(|ch| ch.is_ascii_uppercase())
}

/// The one label of a heading or a parent item, when it has exactly one kind of label.
fn context_labels(text: &str) -> Vec<Label> {
    let mut ls: Vec<Label> = reading::labels(&quantity::normalize(text))
        .into_iter()
        .map(|s| s.label)
        .filter(|l| !matches!(l, Label::Ignore(..)))
        .collect();
    ls.dedup();
    if ls.len() == 1 {
        ls
    } else {
        // "Response time (p99)" and "p99 latency" merge; "RTO and RPO" is two: no hint.
        Vec::new()
    }
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

/// Text being collected, with where each piece came from.
#[derive(Debug, Default, Clone)]
struct Text {
    text: String,
    /// (offset in `text`, offset in the source) at the start of each piece.
    anchors: Vec<(usize, usize)>,
}

impl Text {
    fn push(&mut self, piece: &str, src: usize) {
        self.anchors.push((self.text.len(), src));
        for c in piece.chars() {
            if c.is_whitespace() {
                if !self.text.is_empty() && !self.text.ends_with(' ') {
                    self.text.push(' ');
                }
            } else {
                self.text.push(if c == '\u{2212}' { '-' } else { c });
            }
        }
    }

    fn space(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with(' ') {
            self.text.push(' ');
        }
    }

    /// The source offset of a text offset.
    fn src(&self, pos: usize) -> usize {
        let i = self.anchors.partition_point(|a| a.0 <= pos);
        match i.checked_sub(1).and_then(|i| self.anchors.get(i)) {
            Some(&(t, s)) => s + (pos - t),
            None => self.anchors.first().map_or(0, |a| a.1),
        }
    }
}

/// A piece of text that may hold requirements.
#[derive(Debug, Clone)]
struct Unit {
    text: Text,
    /// The heading it sits under (for ids).
    heading: String,
    /// `Requirement N` heading number, and the item's 1-based position in an ordered list.
    kiro: Option<(String, u64)>,
    /// An id given in a table's ID column.
    table_id: Option<String>,
    in_context: bool,
    /// Labels from the table column, parent item and headings, nearest first.
    labels: Vec<Label>,
    /// A scope from the table row, parent item or heading.
    scope: Option<String>,
    /// What the nearest heading, parent item or table that says anything says of its figures.
    say: Say,
    bare_unit: Option<(Class, f64)>,
    op: Option<Op>,
    /// A table cell: one phrase, not sentences; no colon label.
    cell: bool,
    /// A heading that states a figure ("## Scaling to 20k RPS").
    heading_unit: bool,
    /// The row's window column says days or weeks.
    long_window: bool,
    /// A table column names the kind of the figure.
    column: bool,
    /// How a table cell's requirement is shown.
    shown: Option<String>,
}

impl Unit {
    /// A paragraph, list item or heading: sentences, under `heading`.
    fn prose(text: Text, heading: String, in_context: bool, ctx: Ctx) -> Unit {
        Unit {
            text,
            heading,
            kiro: None,
            table_id: None,
            in_context,
            labels: ctx.labels,
            scope: ctx.scope,
            say: ctx.say,
            bare_unit: None,
            op: None,
            cell: false,
            heading_unit: false,
            long_window: false,
            column: false,
            shown: None,
        }
    }
}

/// A column of a table, as its header says.
#[derive(Debug, Clone, PartialEq)]
enum Col {
    Id,
    Target {
        labels: Vec<Label>,
        unit: Option<(Class, f64)>,
        op: Option<Op>,
        /// The header names it the target ("Target", "SLO", "Max"), not only its kind.
        named: bool,
    },
    /// Current, measured, baseline, budget...: not targets.
    NotTarget,
    Scope,
    Metric,
    Unit,
    Text,
}

/// A column that describes its row in prose ("Description", "Notes on the metric").
fn describes(header: &str) -> bool {
    words(header).iter().any(|w| ["description", "what", "details", "definition", "meaning"].contains(&w.as_str()))
}

fn words(h: &str) -> Vec<String> {
    quantity::tokens(&h.to_lowercase()).into_iter().map(|t| t.text).collect()
}

fn classify(header: &str) -> Col {
    const NOT_TARGET: &[&str] = &[
        "current",
        "currently",
        "measured",
        "achieved",
        "baseline",
        "typical",
        "budget",
        "actual",
        "actuals",
        "today",
        "observed",
        "previous",
        "last",
        "as-is",
        "status",
        "notes",
        "note",
        "comment",
        "comments",
        "rationale",
        "owner",
        "priority",
        "source",
        "how",
        "method",
        "measurement",
        "alert",
        "alarm",
        "warning",
        "forecast",
        "history",
        "window",
        "reaction",
        "severity",
        "channel",
        "escalation",
        "frequency",
        "окно",
        "реакция",
        "канал",
        "ожидается",
        "факт",
    ];
    const SCOPE: &[&str] = &[
        "service",
        "services",
        "component",
        "components",
        "endpoint",
        "endpoints",
        "system",
        "systems",
        "journey",
        "journeys",
        "feature",
        "features",
        "operation",
        "operations",
        "scope",
        "tier",
        "tiers",
        "workload",
        "workloads",
        "application",
        "applications",
        "app",
        "apps",
        "area",
        "path",
        "route",
        "routes",
        "database",
        "databases",
        "profile",
        "profiles",
        "scenario",
        "scenarios",
        "region",
        "regions",
        "plan",
        "plans",
        "test",
        "tests",
        "case",
        "cases",
    ];
    const TARGET: &[&str] = &[
        "target",
        "targets",
        "objective",
        "objectives",
        "slo",
        "sla",
        "threshold",
        "thresholds",
        "goal",
        "goals",
        "limit",
        "limits",
        "value",
        "values",
        "required",
        "must",
        "commitment",
        "acceptance",
        "max",
        "maximum",
        "min",
        "minimum",
        "upper",
        "lower",
        "measure",
        "criterion",
        "fit",
        "nfr",
        "порог",
        "цель",
        "целевое",
        "требование",
        "목표",
        "목표치",
        "目标",
        "目標",
        "阈值",
        "閾値",
        "objetivo",
        "meta",
        "seuil",
        "cible",
        "ziel",
        "zielwert",
    ];
    const METRIC: &[&str] = &[
        "metric",
        "metrics",
        "requirement",
        "requirements",
        "name",
        "sli",
        "slis",
        "indicator",
        "what",
        "attribute",
        "quality",
        "category",
        "description",
        "kpi",
        "parameter",
        "item",
        "percentile",
        "statistic",
        "aspect",
        "characteristic",
        "dimension",
        "метрика",
        "показатель",
        "операция",
        "지표",
        "항목",
        "指标",
        "指標",
        "项目",
        "métrica",
        "métrique",
        "kennzahl",
    ];
    let h = header.trim().to_lowercase();
    let w = words(&h);
    let has = |set: &[&str]| w.iter().any(|x| set.contains(&x.as_str()));
    if matches!(h.as_str(), "id" | "#" | "ref" | "req" | "req id" | "requirement id" | "key" | "no" | "no.") {
        return Col::Id;
    }
    // "Target (source)": a word in brackets qualifies the header; outside them it names the
    // column a target, and "source" does not make it a column of notes.
    let outer = words(&PARENS.replace_all(&h, " "));
    let named_outside = |set: &[&str]| outer.iter().any(|x| set.contains(&x.as_str()));
    if has(NOT_TARGET) && !(outer.len() < w.len() && named_outside(TARGET) && !named_outside(NOT_TARGET)) {
        return Col::NotTarget;
    }
    // "Maximum Downtime/Year": an allowance over a period, not a failover downtime.
    let per_period = h.contains("/year")
        || h.contains("/month")
        || h.contains("/yr")
        || h.contains("/mo")
        || has(&["annual", "annually", "monthly", "yearly", "quarterly"])
        || h.contains("per year")
        || h.contains("per month");
    // ("downtime/year" is one word to `words`.)
    if (h.contains("downtime") || h.contains("outage")) && per_period {
        return Col::NotTarget;
    }
    if has(&["unit", "units"]) {
        return Col::Unit;
    }
    let labels = context_labels(header);
    let op = if has(&["max", "maximum", "upper"]) {
        Some(Op::Le)
    } else if has(&["min", "minimum", "lower"]) {
        Some(Op::Ge)
    } else {
        None
    };
    if has(TARGET) || !labels.is_empty() {
        // "Value" holds figures but does not say they are targets; "Target", "SLO" do.
        let named =
            w.iter().any(|x| TARGET.contains(&x.as_str()) && !["value", "values", "measure"].contains(&x.as_str()));
        return Col::Target { labels, unit: quantity::unit_hint(header), op, named };
    }
    if has(SCOPE) {
        return Col::Scope;
    }
    if has(METRIC) {
        return Col::Metric;
    }
    Col::Text
}

/// A table's header says its figures are not targets (a service-credit table): what it is.
fn lookalike_table(header: &[(String, usize)]) -> Option<&'static str> {
    let any = |set: &[&str]| header.iter().any(|(h, _)| words(h).iter().any(|w| set.contains(&w.as_str())));
    if any(&["credit", "credits", "refund", "refunds", "penalty", "price", "cost", "compensation", "discount"]) {
        Some("service credits or compensation")
    } else if any(&["impact"]) && !any(&["rto", "rpo", "target", "objective"]) {
        Some("business impact")
    } else {
        None
    }
}

/// Byte ranges of the sentences of `text`.
fn sentences(text: &str) -> Vec<(usize, usize)> {
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
struct Found {
    kind: Kind,
    op: Op,
    value: f64,
    line: usize,
    text: String,
    scope: Option<String>,
    note: Option<String>,
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

/// A k6 threshold, as the prose flow reads: "p99 latency < 200 ms".
struct Threshold {
    /// Byte range in the code block of what it was read from.
    at: usize,
    end: usize,
    prose: String,
    /// The metric's tag ("cache:warm"), a scope.
    tag: Option<String>,
}

static K6_SUMMARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^[ \t]*[✓✗✔✘]?[ \t]*(?P<m>[a-z_][a-z0-9_]*)(?:\{(?P<tag>[^}\n]*)\})?\.*[ \t]*:[ \t]*(?P<e>(?:p\(\d+(?:\.\d+)?\)|avg|med|min|max|rate|count)[ \t]*(?:<=|>=|<|>|==)[ \t]*\d+(?:\.\d+)?)")
        .expect("static k6 pattern")
});
static K6_SCRIPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)['"]?(?P<m>[a-z_][a-z0-9_]*)(?:\{(?P<tag>[^}\n]*)\})?['"]?[ \t]*:[ \t]*\[(?P<e>[^\]\n]*)\]"#)
        .expect("static k6 pattern")
});
static K6_EXPR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?P<agg>p\((?P<p>\d+(?:\.\d+)?)\)|avg|med|min|max|rate|count)\s*(?P<op><=|>=|<|>|==)\s*(?P<v>\d+(?:\.\d+)?)",
    )
    .expect("static k6 pattern")
});

/// k6 thresholds in a code block, in its summary's form or its script's. Only those flow
/// measures: a duration's percentile or average (k6 writes milliseconds), a failure or error
/// rate, the request rate. A `checks` rate, a count or a maximum is left as code.
fn k6_thresholds(code: &str) -> Vec<Threshold> {
    let read = |metric: &str, expr: &str| -> Option<String> {
        let c = K6_EXPR.captures(expr)?;
        let op = &c["op"];
        let v: f64 = c["v"].parse().ok()?;
        let m = metric.to_ascii_lowercase();
        if m.contains("duration") || m.contains("latency") || m.contains("waiting") {
            let stat = match &c["agg"] {
                "avg" => "average".to_string(),
                "med" => "p50".to_string(),
                _ => format!("p{}", c.name("p")?.as_str()),
            };
            Some(format!("{stat} latency {op} {} ms", fmt_num(v)))
        } else if (m.contains("failed") || m.contains("error")) && &c["agg"] == "rate" && v <= 1.0 {
            Some(format!("error rate {op} {} %", fmt_num((v * 100.0 * 1e9).round() / 1e9)))
        } else if m == "http_reqs" && &c["agg"] == "rate" {
            Some(format!("throughput {op} {} requests per second", fmt_num(v)))
        } else {
            None
        }
    };
    let mut out = Vec::new();
    for c in K6_SUMMARY.captures_iter(code) {
        let (m, e) = (c.name("m").unwrap(), c.name("e").unwrap());
        if let Some(prose) = read(m.as_str(), e.as_str()) {
            let tag = c.name("tag").map(|t| t.as_str().to_string());
            out.push(Threshold { at: m.start(), end: e.end(), prose, tag });
        }
    }
    if out.is_empty() && code.contains("thresholds") {
        for c in K6_SCRIPT.captures_iter(code) {
            let (m, e) = (c.name("m").unwrap(), c.name("e").unwrap());
            for x in e.as_str().split(',') {
                if let Some(prose) = read(m.as_str(), x.trim().trim_matches(['\'', '"', '`'])) {
                    let tag = c.name("tag").map(|t| t.as_str().to_string());
                    out.push(Threshold { at: m.start(), end: e.end(), prose, tag });
                }
            }
        }
    }
    out
}

/// Plain `key: value` lines in a code block that a line just above it names as targets
/// ("**Regional Performance Targets**:" then a fence of "Europe:" / "- P95 Latency: < 180ms";
/// "**Service Level Agreement (SLA)**:" then YAML) are read as the nested list they are
/// written as: each line becomes a list item at its indentation, the fences blank lines (so
/// line numbers hold). Only a fence with no language or `text`, `yaml`, `yml`, `plain`, and
/// only when every line is such a line or a `-` item: code, k6 summaries and tables stay code.
fn targets_in_code(text: &str) -> std::borrow::Cow<'_, str> {
    const NAMES: &[&str] =
        &["target", "targets", "sla", "slo", "slos", "objectives", "requirements", "commitments", "thresholds"];
    if !text.contains("```") {
        return std::borrow::Cow::Borrowed(text);
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut changed = false;
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        let info = fence.trim_start_matches('`').trim().to_ascii_lowercase();
        let plain = fence.starts_with("```") && ["", "text", "yaml", "yml", "plain"].contains(&info.as_str());
        let named = plain && {
            let lead = out.iter().rev().find(|l| !l.trim().is_empty()).map(|l| l.to_lowercase()).unwrap_or_default();
            lead.trim_end().trim_end_matches('*').ends_with(':')
                && words(&lead).iter().any(|w| NAMES.contains(&w.as_str()))
        };
        if named {
            let close = (i + 1..lines.len()).find(|&j| lines[j].trim_start().starts_with("```"));
            if let Some(end) = close {
                let body = &lines[i + 1..end];
                let key_value = |l: &str| {
                    let t = l.trim().trim_start_matches("- ");
                    t.is_empty()
                        || t.ends_with(':') && !t.contains("://")
                        || t.split_once(": ").is_some_and(|(k, v)| {
                            !k.is_empty() && !k.contains(['=', '{', ';', '"']) && !v.trim().is_empty()
                        })
                };
                if !body.is_empty() && body.iter().all(|l| key_value(l)) {
                    out.push(String::new());
                    for l in body {
                        let t = l.trim().trim_start_matches("- ");
                        // A line that only names a group ("Europe:") heads the items under it.
                        out.push(if t.is_empty() {
                            String::new()
                        } else if t.ends_with(':') {
                            format!("###### {}", t.trim_end_matches(':'))
                        } else {
                            format!("- {t}")
                        });
                    }
                    out.push(String::new());
                    changed = true;
                    i = end + 1;
                    continue;
                }
            }
        }
        out.push(lines[i].to_string());
        i += 1;
    }
    if changed {
        std::borrow::Cow::Owned(out.join("\n"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// A table of tiers (one row per tier, each its own target) is a set of promises, one per
/// tier, until the spec chooses one ("Default target: 99.95 % uptime (Enterprise tier)"): then
/// the other tiers' figures of that kind are a menu it did not pick, not its targets. The
/// chosen row joins the line that chose it. Only a line outside the table that names exactly
/// one tier, with that tier's figure, chooses.
fn chosen_tier(
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
const EXCERPT: usize = 400;

fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
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
fn question_key(what: &str, texts: &[&str]) -> String {
    let mut s = String::from(what);
    for t in texts {
        s.push('\n');
        s.push_str(t.trim());
    }
    super::digest::of_bytes(s.as_bytes())
}

/// One table row, with its header and where it stands.
struct TableRow<'a> {
    header: &'a [(String, usize)],
    cols: &'a [Col],
    row: &'a [(String, usize)],
    line: usize,
    in_context: bool,
    heading: &'a str,
    ctx: Ctx,
    source: &'a str,
    context: &'a mut Context,
    units: &'a mut Vec<Unit>,
    unread: &'a mut Vec<Unread>,
}

fn table_row(t: TableRow<'_>) {
    let TableRow { header, cols, row, line, in_context, heading, ctx, source, context, units, unread } = t;
    let Ctx { labels, scope, say } = ctx;
    if in_context && row.len() >= 2 {
        context.insert(context_key(&row[0].0), strip_value(&row[1].0));
        return;
    }
    let at = |i: usize| row.get(i).map(|(c, _)| c.as_str()).filter(|c| !c.is_empty());
    let id = cols.iter().position(|c| *c == Col::Id).and_then(at).map(str::to_string);
    let unit = |labels: Vec<Label>, text: Text, scope: Option<String>, bare, op, shown, say: Say| Unit {
        text,
        heading: heading.to_string(),
        kiro: None,
        table_id: id.clone(),
        in_context,
        labels,
        scope,
        say,
        bare_unit: bare,
        op,
        cell: true,
        heading_unit: false,
        long_window: false,
        column: false,
        shown,
    };
    if let Some(what) = lookalike_table(header) {
        for (c, _) in row {
            let c = quantity::normalize(c);
            for f in quantity::figures(&c, false).iter().filter(|f| f.class != Class::Bare) {
                unread.push(Unread {
                    line,
                    text: source.trim().to_string(),
                    figure: f.text(&c).to_string(),
                    why: format!("a table of {what}: its figures are not targets"),
                });
            }
        }
        return;
    }
    // A cell with no digit in a target column names the row ("| Target | Threshold |" where
    // Target holds "API availability").
    let has_figure = |i: usize| {
        at(i).is_some_and(|c| {
            let c = quantity::normalize(c);
            BARE_CELL.is_match(&c) || quantity::figures(&c, true).iter().any(|f| f.class != Class::Bare)
        })
    };
    let named_target = cols.iter().any(|c| matches!(c, Col::Target { named: true, .. }));
    let targets: Vec<usize> = (0..cols.len())
        .filter(|&i| match &cols[i] {
            // Next to a column named as the target, a column named by its kind holds what was
            // measured ("| Latency | Target | Status |").
            Col::Target { named, .. } => (*named || !named_target) && has_figure(i),
            _ => false,
        })
        .collect();
    // Figures in columns that hold no targets (current, measured, notes ...) are listed, not
    // dropped.
    let mut skipped = |i: usize, why: String| {
        if let Some(c) = at(i) {
            let c = quantity::normalize(c);
            for f in quantity::figures(&c, true).iter().filter(|f| f.class != Class::Bare) {
                unread.push(Unread {
                    line,
                    text: source.trim().to_string(),
                    figure: f.text(&c).to_string(),
                    why: why.clone(),
                });
            }
        }
    };
    let col_name = |i: usize| header.get(i).map_or(String::new(), |h| h.0.clone());
    for (i, col) in cols.iter().enumerate() {
        // With a target column, a text column's figures (measurements beside it) are not read,
        // also in a row whose target cell is empty ("| p50 | — | — | 8.9ms |").
        let with_targets = !targets.is_empty() || cols.iter().any(|c| matches!(c, Col::Target { .. }));
        let unused = match col {
            Col::NotTarget => true,
            Col::Target { .. } => !targets.contains(&i) && has_figure(i),
            Col::Text => with_targets && has_figure(i),
            _ => false,
        };
        if unused {
            skipped(i, format!("in the column \"{}\", which holds no targets", col_name(i)));
        }
    }
    if targets.is_empty() && !cols.iter().any(|c| matches!(c, Col::Target { .. })) {
        // A row of figures of one kind, one per column ("| p95 | 515 ms | 316 ms |"), with no
        // column named as the target: measurements, not targets.
        let classes: Vec<Class> = (0..row.len())
            .filter(|&i| cols.get(i) != Some(&Col::NotTarget))
            .filter_map(|i| {
                let c = quantity::normalize(at(i)?);
                quantity::figures(&c, true).iter().find(|f| f.class != Class::Bare).map(|f| f.class)
            })
            .collect();
        let series = classes.iter().any(|c| classes.iter().filter(|d| *d == c).count() > 1);
        if series {
            for i in (0..row.len()).filter(|&i| cols.get(i) != Some(&Col::NotTarget)) {
                // "| Availability (SLO 99.5%) | thresholds 99% / 99.5% |": a cell that calls its
                // figure the target is read alone.
                let called = at(i).is_some_and(|c| {
                    let c = quantity::normalize(c);
                    quantity::figures(&c, true).iter().any(|f| f.class != Class::Bare && reading::called_target(&c, f))
                });
                if called {
                    let mut text = Text::default();
                    text.push(&row[i].0, row[i].1);
                    units.push(unit(labels.clone(), text, scope.clone(), None, None, None, say.clone()));
                } else {
                    skipped(i, "a row of values, one per column, with no column named as the target".into());
                }
            }
            return;
        }
        // No header says which column is the target: the row is one piece of text.
        let mut text = Text::default();
        for (i, (c, off)) in row.iter().enumerate() {
            if cols.get(i) != Some(&Col::Id) && cols.get(i) != Some(&Col::NotTarget) && !c.is_empty() {
                text.push(c, *off);
                text.space();
            }
        }
        if !text.text.trim().is_empty() {
            units.push(unit(labels, text, scope, None, None, None, say));
        }
        return;
    }
    // The cells that name the row's metric: a metric column (or, with none, any text column
    // and a target column without a figure), never a cell holding a measured figure.
    let named_metric = |i: usize| matches!(cols[i], Col::Target { .. }) && at(i).is_some() && !has_figure(i);
    let has_metric = (0..cols.len()).any(|i| cols[i] == Col::Metric || named_metric(i));
    let metric: Vec<usize> = (0..cols.len())
        .filter(|&i| match &cols[i] {
            Col::Metric => true,
            Col::Text => !has_metric,
            Col::Target { .. } => named_metric(i),
            _ => false,
        })
        .filter(|&i| {
            at(i).is_some_and(|c| {
                !quantity::figures(&quantity::normalize(c), false).iter().any(|f| f.class != Class::Bare)
            })
        })
        .collect();
    // "| RTO | 5-15 minutes | Maximum acceptable downtime |": the metric's own name is read
    // next to the figure, a description's words before it.
    let mut read_order = metric.clone();
    read_order.sort_by_key(|&i| !describes(&col_name(i)));
    let row_scope = cols
        .iter()
        .position(|c| *c == Col::Scope)
        .and_then(at)
        .map(str::to_string)
        .or_else(|| metric.iter().filter(|&&i| !describes(&col_name(i))).filter_map(|&i| at(i)).find_map(scope_of))
        .or(scope);
    let unit_col = cols.iter().position(|c| *c == Col::Unit).and_then(at).and_then(quantity::unit_hint);
    // "| Window | rolling 30 days |": the row's objective is measured over weeks.
    let long_window = (0..cols.len()).any(|i| {
        cols[i] == Col::NotTarget
            && words(&col_name(i)).iter().any(|w| ["window", "окно", "period", "период", "窗口"].contains(&w.as_str()))
            && at(i).is_some_and(|c| {
                let c = quantity::normalize(c);
                reading::LONG_WINDOW.is_match(&c)
                    || quantity::figures(&c, false).iter().any(|f| f.class == Class::Time && f.value >= 86_400.0)
            })
    });
    let metric_hint = metric.iter().filter_map(|&i| at(i)).find_map(quantity::unit_hint);
    for &i in &targets {
        let Some(value) = at(i) else { continue };
        let Col::Target { labels: col_labels, unit: col_unit, op, named } = &cols[i] else { continue };
        let mut text = Text::default();
        for &m in &read_order {
            // A column that says what its figures are ("| RPO target |") is not overridden by
            // words in other cells ("Hourly backups").
            if let Some(c) = at(m).filter(|_| col_labels.is_empty()) {
                text.push(c, row[m].1);
                text.space();
            }
        }
        let names: Vec<&str> = metric.iter().filter_map(|&m| at(m)).collect();
        text.push(value, row[i].1);
        let mut hints = col_labels.clone();
        hints.extend(labels.iter().cloned());
        let name =
            if names.is_empty() { header.get(i).map(|h| h.0.clone()).unwrap_or_default() } else { names.join(" ") };
        let shown = format!("{name}: {value}");
        let say = if *named { Say::Targets } else { say.clone() };
        let u = unit(hints, text, row_scope.clone(), unit_col.or(*col_unit).or(metric_hint), *op, Some(shown), say);
        units.push(Unit { long_window, column: !col_labels.is_empty(), ..u });
    }
}

/// The same target restated elsewhere (a summary table, a glossary) is one requirement with
/// all its lines; restated with a different strictness, the stricter is kept and noted.
fn merge(
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
fn conflicts(reqs: Vec<Requirement>, source_line: &dyn Fn(usize) -> String) -> (Vec<Requirement>, Vec<Question>) {
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
    fn lines_of_figures_in_a_paragraph() {
        let s = parse(
            "p.md",
            "# Search\n\nIt must serve 900 requests per second. Results\nmust arrive with a p95 under 350 ms.\n",
        )
        .unwrap();
        assert_eq!(s.requirements.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 4]);
    }

    #[test]
    fn sections_leads_and_columns_say_what_their_figures_are() {
        let doc = "# Checkout\n\n## Results\n\n| Metric | Value |\n|---|---|\n| p95 latency | 515 ms |\n\n\
                   ## Targets\n\nLatency (p95)\n\n- API: < 300 ms\n\n\
                   | Percentile | Latency | Target | Status |\n|---|---|---|---|\n| P99 | 2.3 ms | < 100 ms | ok |\n\n\
                   ## Alerts\n\n- Page when p99 latency exceeds 800 ms.\n";
        let s = parse("x.md", doc).unwrap();
        let got: Vec<(String, f64, usize)> =
            s.requirements.iter().map(|r| (r.kind.to_string(), r.value, r.line)).collect();
        assert_eq!(got, [("latency_p95".to_string(), 300.0, 13), ("latency_p99".to_string(), 100.0, 17)]);
        let why =
            |figure: &str| s.unread.iter().find(|u| u.figure == figure).map(|u| u.why.clone()).unwrap_or_default();
        assert!(why("515 ms").contains("\"Results\", a section of measured results"), "{:?}", s.unread);
        assert!(why("2.3 ms").contains("in the column \"Latency\""), "{:?}", s.unread);
        assert!(why("800 ms").contains("alerts"), "{:?}", s.unread);
    }

    #[test]
    fn zero_needs_no_unit_next_to_the_point_it_bounds() {
        let doc = "# DR\n\n| Data | RPO target | Method |\n|---|---|---|\n| Code | 0 (no data loss) | Git |\n\
                   | Orders | 1 hour | backups |\n\n## Ledger\n\n- RPO: 0 (synchronous replication)\n- Latency: 0\n";
        let s = parse("x.md", doc).unwrap();
        let got: Vec<(String, f64, usize)> =
            s.requirements.iter().map(|r| (r.kind.to_string(), r.value, r.line)).collect();
        assert_eq!(got, [("rpo".into(), 0.0, 5), ("rpo".into(), 3600.0, 6), ("rpo".into(), 0.0, 10)]);
    }

    #[test]
    fn a_column_named_target_with_a_remark_in_brackets_holds_targets() {
        let doc = "# Bus\n\n| Metric | Target (source) | Status |\n|---|---|---|\n| p99 latency | < 6 ms (issue 19) | proposed |\n";
        let s = parse("x.md", doc).unwrap();
        assert_eq!(s.requirements.len(), 1, "{:?}", s.unread);
        assert_eq!((s.requirements[0].kind.to_string(), s.requirements[0].value), ("latency_p99".into(), 6.0));
        // A column of notes stays one, whatever its brackets say.
        assert_eq!(classify("Source (target doc)"), Col::NotTarget);
        assert_eq!(classify("Current (target)"), Col::NotTarget);
    }

    #[test]
    fn the_metric_column_names_the_figure_before_its_description() {
        let doc = "# Keys\n\n| Metric | Target | Description |\n|---|---|---|\n\
                   | RTO (Recovery Time Objective) | 15 minutes | Maximum acceptable downtime |\n";
        let s = parse("x.md", doc).unwrap();
        assert_eq!(s.requirements.len(), 1);
        assert_eq!((s.requirements[0].kind.to_string(), s.requirements[0].scope.clone()), ("rto".into(), None));
    }

    #[test]
    fn k6_thresholds_are_read_in_a_results_section_and_nothing_else_in_the_summary() {
        let doc = "# Load test results\n\n```\nhttp_req_duration..: avg=32ms p(95)=88ms p(99)=141ms\n\
                   http_reqs..........: 120000  999.8/s\n\
                   ✓ http_req_failed....: rate<0.01\n\
                   ✗ http_req_duration..: p(95)<500  (312ms — PASS)\n\
                   ✓ checks.............: rate>0.99\n```\n\n## Script\n\n```js\n\
                   export const options = { thresholds: {\n  'http_req_duration{cache:warm}': ['p(50)<30', 'avg<20'],\n\
                   http_reqs: ['rate>1000', 'count>5'],\n} };\n```\n";
        let s = parse("x.md", doc).unwrap();
        let got: Vec<(String, String, f64, usize, Option<String>)> = s
            .requirements
            .iter()
            .map(|r| (r.kind.to_string(), r.op.symbol().to_string(), r.value, r.line, r.scope.clone()))
            .collect();
        let warm = Some("cache:warm".to_string());
        assert_eq!(
            got,
            [
                ("success_rate".into(), ">".into(), 99.0, 6, None),
                ("latency_p95".into(), "<".into(), 500.0, 7, None),
                ("latency_p50".into(), "<".into(), 30.0, 15, warm.clone()),
                ("latency_avg".into(), "<".into(), 20.0, 15, warm),
                ("throughput".into(), ">".into(), 1000.0, 16, Some("Script".into())),
            ]
        );
        // The summary's measurements and the result after a threshold stay what they are.
        let unread: Vec<&str> = s.unread.iter().map(|u| u.figure.as_str()).collect();
        assert!(unread.contains(&"999.8/s") && unread.contains(&"312ms"), "{unread:?}");
        assert!(s.unread.iter().all(|u| u.why == IN_CODE), "{:?}", s.unread);
    }

    #[test]
    fn a_figure_called_the_target_is_read_among_results() {
        let doc = "# Bench\n\n## Result\n\n- **p99 latency**: PASSES (213 ms vs 500 ms target)\n\n\
                   | Panel | Shows |\n|---|---|\n| Availability (SLO 99.5%) | colour at 99% / 99.5% |\n";
        let s = parse("x.md", doc).unwrap();
        let got: Vec<(String, f64, usize)> =
            s.requirements.iter().map(|r| (r.kind.to_string(), r.value, r.line)).collect();
        assert_eq!(got, [("latency_p99".into(), 500.0, 5), ("availability".into(), 99.5, 9)]);
        let unread: Vec<&str> = s.unread.iter().map(|u| u.figure.as_str()).collect();
        assert!(unread.contains(&"213 ms") && unread.contains(&"99%"), "{unread:?}");
    }

    #[test]
    fn every_figure_with_a_unit_is_read_or_listed() {
        let doc = "# Progress\n\n| Metric | NFR | Iter 3 |\n|---|---|---|\n| p95 latency | <500ms | 274ms |\n\
                   | p50 latency | — | 8.9ms |\n\n### Политика по бюджету ошибок\n\n\
                   | Расход за 30 дней | Действие |\n|---|---|\n| < 25% | релизы |\n| 100% | SEV-1 |\n\n- CPU: 500 m\n";
        let s = parse("x.md", doc).unwrap();
        assert_eq!(s.requirements.len(), 1);
        assert!(s.questions.is_empty(), "{:?}", s.questions);
        let why = |figure: &str| {
            s.unread
                .iter()
                .find(|u| u.figure == figure)
                .map(|u| u.why.clone())
                .unwrap_or_else(|| panic!("{figure}: {:?}", s.unread))
        };
        assert!(why("8.9ms").contains("\"Iter 3\", which holds no targets"));
        assert!(why("30 дней").contains("table header"));
        assert!(why("25%").contains("budgets"));
        assert!(why("500 m").contains("millicores"));
    }

    #[test]
    fn diagnostics_not_refusals() {
        let s = parse("x.md", "# A\n\n- average response under -3 ms\n- RTO 2 h\n").unwrap();
        let e = s.refusal("x.md").unwrap();
        assert_eq!(e.line, Some(3));
        assert!(matches!(e.kind, ErrorKind::Impossible(_)));
        // Two different targets: a question with both readings, not a refusal.
        let s = parse("x.md", "# A\n\n- RTO 2 h\n- RTO of 4 hours\n").unwrap();
        assert!(s.requirements.is_empty() && s.refusal("x.md").is_none());
        let q = &s.questions[0];
        assert_eq!((q.id.as_str(), q.line, q.other_line), ("q-4", 4, Some(3)));
        assert!(
            q.why.starts_with("two different targets for rto: <= 7200 s at line 3 and <= 14400 s at line 4"),
            "{}",
            q.why
        );
        assert_eq!(q.readings.iter().map(|r| r.value).collect::<Vec<_>>(), [7200.0, 14400.0]);
        // Answered: the chosen reading is the requirement.
        let mut answered = s.clone();
        let a = Answer { choice: Some(2), by: "ana".into(), at: "t".into() };
        answered.apply_answers(&BTreeMap::from([(q.key.clone(), a)]));
        assert_eq!((answered.requirements.len(), answered.requirements[0].value), (1, 14400.0));
        assert!(answered.questions.is_empty());
        assert_eq!(parse("x.md", "  \n").unwrap_err().kind, ErrorKind::Empty);
        let s = parse("x.md", "# Just a title\n\nHello.\n").unwrap();
        assert!(matches!(s.refusal("x.md").unwrap().kind, ErrorKind::NoRequirements { .. }));
        let e = parse_bytes("x.md", b"# A\n\n- RTO \xff 2h\n").unwrap_err();
        assert_eq!((e.kind, e.line), (ErrorKind::NotUtf8, Some(3)));
    }

    #[test]
    fn same_target_twice_is_one_requirement() {
        let s = parse("x.md", "- RTO 2 h\n- RTO of 120 minutes\n").unwrap();
        assert_eq!(s.requirements.len(), 1);
        assert_eq!(s.requirements[0].lines, [1, 2]);
        assert!(s.refusal("x.md").is_none());
    }

    #[test]
    fn key_value_lines_in_a_code_block_named_as_targets_are_read() {
        let doc = "# Perf\n\n**Regional Performance Targets**:\n```\nEurope:\n- P95 Latency: < 180ms\n\nAsia:\n- P95 Latency: < 200ms\n```\n\nMore text.\n";
        let s = parse("x.md", doc).unwrap();
        let got: Vec<(Option<&str>, f64, usize)> =
            s.requirements.iter().map(|r| (r.scope.as_deref(), r.value, r.line)).collect();
        assert_eq!(got, [(Some("Europe"), 180.0, 6), (Some("Asia"), 200.0, 9)]);
        // Code stays code: a language, a lead that names no targets, or a line that is not `key: value`.
        for doc in [
            "**Targets**:\n```js\np95: < 180ms\n```\n",
            "**Results**:\n```\np95: < 180ms\n```\n",
            "**Targets**:\n```\np95: < 180ms\ncheck(res, { ok: true })\n```\n",
        ] {
            let s = parse("x.md", doc);
            assert!(s.as_ref().map_or(true, |s| s.requirements.is_empty()), "{doc}: {s:?}");
        }
    }

    #[test]
    fn a_tier_the_spec_chooses_leaves_the_others_a_menu() {
        let table = "# Uptime\n\n| Tier | Target Uptime | Maximum Downtime/Month |\n|---|---|---|\n| Standard | 99.9% | 43m |\n| Enterprise | 99.95% | 21m |\n| Critical | 99.99% | 4m |\n";
        // Each tier its own promise while none is chosen (an SLA page for all customers) ...
        let all = parse("x.md", table).unwrap();
        let values: Vec<f64> = all.requirements.iter().map(|r| r.value).collect();
        assert_eq!(values, [99.9, 99.95, 99.99]);
        assert!(
            all.unread.iter().any(|u| u.line == 5 && u.figure == "43m"),
            "a downtime allowance per month is not a target"
        );
        // ... and one target once a line outside the table chooses a tier, with its figure.
        let chosen = parse("x.md", &format!("{table}\n**Default target: 99.95% uptime (Enterprise tier)**\n")).unwrap();
        let got: Vec<(f64, Vec<usize>)> = chosen.requirements.iter().map(|r| (r.value, r.all_lines())).collect();
        assert_eq!(got, [(99.95, vec![6, 9])]);
        assert!(chosen
            .unread
            .iter()
            .any(|u| u.line == 5 && u.why.contains("menu of tiers; line 9 chooses \"Enterprise\"")));
        // A line naming a tier with another figure chooses nothing.
        let other = parse("x.md", &format!("{table}\nDefault target: 99.5% uptime (Enterprise tier)\n")).unwrap();
        assert_eq!(other.requirements.iter().filter(|r| r.kind == Kind::Availability).count(), 4);
    }

    #[test]
    fn scopes_keep_targets_apart() {
        let s = parse("x.md", "# SLOs\n\n## Checkout API\n\n- p99 under 300 ms\n\n## Search API\n\n- p99 under 800 ms\n- checkout: p99 under 300 ms\n").unwrap();
        let got: Vec<(Option<&str>, f64)> = s.requirements.iter().map(|r| (r.scope.as_deref(), r.value)).collect();
        assert_eq!(got, [(Some("Checkout API"), 300.0), (Some("Search API"), 800.0)]);
        assert_eq!(s.requirements[0].lines, [5, 10]);
        assert!(s.refusal("x.md").is_none(), "{:?}", s.diagnostics);
    }

    #[test]
    fn a_notification_bound_is_read_after_its_verb() {
        let read = |t: &str| -> Vec<(Kind, f64)> {
            parse("x.md", t).unwrap().requirements.iter().map(|r| (r.kind.clone(), r.value)).collect()
        };
        assert_eq!(read("# Ops\n\n- Page on-call within 2 min of an alert.\n"), [(Kind::Notification, 120.0)]);
        // "within 10 minutes of an outage": the notification's bound, not a downtime target.
        assert_eq!(
            read("# Ops\n\n- The system shall notify the on-call engineer within 10 minutes of an outage alert.\n"),
            [(Kind::Notification, 600.0)]
        );
        let bare =
            parse("x.md", "# Ops\n\n- THE SYSTEM SHALL notify the on-call engineer when an alarm fires.\n").unwrap();
        assert_eq!((bare.requirements[0].kind.clone(), bare.requirements[0].value), (Kind::Notification, 300.0));
        assert!(bare.requirements[0].note.as_deref().unwrap_or_default().contains("no bound written"));
        // No person, or no alarm: not a notification requirement.
        assert!(!read("# Ops\n\n- Notify users by e-mail within 1 hour of an order.\n")
            .contains(&(Kind::Notification, 3600.0)));
        assert!(read("# Ops\n\n- Notify the on-call engineer within 5 minutes.\n")
            .iter()
            .all(|r| r.0 != Kind::Notification));
        // Measured, not promised: a results section is not read.
        assert!(read("# Results\n\n- We paged on-call within 3 minutes of the alert.\n")
            .iter()
            .all(|r| r.0 != Kind::Notification));
    }

    #[test]
    fn sentences_split() {
        let t = "It must serve 900 rps. Results must arrive e.g. fast. 99.9 % must succeed.";
        let got: Vec<&str> = sentences(t).into_iter().map(|(s, e)| &t[s..e]).collect();
        assert_eq!(got, ["It must serve 900 rps.", "Results must arrive e.g. fast.", "99.9 % must succeed."]);
    }
}
