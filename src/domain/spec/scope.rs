//! What a heading, a parent item or a colon label says about the figures under it ([`Ctx`]),
//! the sections that hold no targets, scopes and context keys.

use std::sync::LazyLock;

use regex::Regex;

use super::*;
use crate::domain::quantity::{self, Class};
use crate::domain::reading::{self, Label};
use crate::domain::requirement::Requirement;

/// An open list: its ordered start, the items seen so far, and what its parent item (or the
/// short paragraph ending in a colon that leads it) gives it.
pub(crate) type OpenList = (Option<u64>, u64, Ctx);

/// What a heading, a parent item or a table says about the figures under it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Say {
    #[default]
    Nothing,
    /// "Targets", "SLOs", "Requirements", "Порог", "목표" ...
    Targets,
    /// "Results", "Alerts", "Examples", "Estimated breakdown" ...: why its figures are not targets.
    NotTargets(String),
}

/// What a heading or a parent item gives what is under it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ctx {
    pub(crate) labels: Vec<Label>,
    pub(crate) scope: Option<String>,
    pub(crate) say: Say,
}

/// Section words that say its figures are not targets, and what the section is.
pub(crate) static NOT_TARGET_SECTION: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
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
pub(crate) static TARGET_SECTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:targets?|objectives?|slos?|slas?|requirements?|nfrs?|thresholds?|goals?|acceptance\s+criteria|non-functional|service\s+levels?|budgets?\s+we\s+commit)\b|цел[ьи]|порог|требован|목표|요구|目标|目標|要求|指标")
        .expect("static section pattern")
});

/// What a heading or a lead says about the figures under it: targets, not targets, or nothing
/// (both or neither).
pub(crate) fn say_of(text: &str) -> Say {
    let not = NOT_TARGET_SECTION.iter().find(|(rx, _)| rx.is_match(text));
    match (not, TARGET_SECTION.is_match(text)) {
        (Some((_, what)), false) => {
            Say::NotTargets(format!("under \"{}\", a section of {what}, not targets", text.trim()))
        }
        (None, true) => Say::Targets,
        _ => Say::Nothing,
    }
}

pub(crate) fn ctx_of(text: &str) -> Ctx {
    Ctx { labels: context_labels(text), scope: scope_of(text), say: say_of(text) }
}

/// Why a figure in a code block or in HTML is not read: flow reads prose, lists and tables.
pub const IN_CODE: &str = "in a code block, which flow does not read (only k6 thresholds there)";
pub const IN_HTML: &str = "in HTML, which flow does not read";

/// Figures with a unit in text flow does not read: each reported, none silently dropped.
pub(crate) fn not_prose(text: &str, at: usize, why: &str, lines: &super::lines::Lines, unread: &mut Vec<Unread>) {
    for f in quantity::figures(text, true).into_iter().filter(|f| f.class != Class::Bare) {
        let line = lines.line_of(at + f.start);
        unread.push(Unread {
            line,
            text: lines.source(line).trim().to_string(),
            figure: f.text(text).to_string(),
            why: why.into(),
        });
    }
}

/// What a person should know about the spec as a whole: nothing found, or nothing measurable.
pub(crate) fn whole_spec_warning(reqs: &[Requirement], questions: usize) -> Option<Diagnostic> {
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
pub(crate) fn scope_or_name(scope: &str) -> String {
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
pub(crate) fn id_like(c: &regex::Captures) -> bool {
    let sep = &c[0][c["id"].len() + c[0].find(&c["id"]).unwrap_or(0)..];
    let punctuated = sep.trim_start_matches([']', ' ']).starts_with([':', '.', ')', '-', '–', '—']);
    let letters: String = c["id"].chars().take_while(|ch| ch.is_ascii_alphabetic()).collect();
    punctuated || letters.is_empty() || letters.chars().all(|ch| ch.is_ascii_uppercase())
}

/// The one label of a heading or a parent item, when it has exactly one kind of label.
pub(crate) fn context_labels(text: &str) -> Vec<Label> {
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

pub(crate) fn is_context_heading(h: &str) -> bool {
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

pub(crate) fn strip_value(v: &str) -> String {
    v.trim().trim_matches('`').trim_matches('"').trim_matches('\'').trim().to_string()
}
