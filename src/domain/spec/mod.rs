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
//!
//! Files: here the spec's types; `parse` ([`parse`], the pipeline of passes: `walk`, `read`,
//! numbering, settling), `walk` (the Markdown walk), `read` (sentences read), `lines`,
//! `table`, `scope`, `words` (patterns and keyword families as data), `code` (k6 and code
//! blocks), `merge` (restated targets, tiers, conflicts).

mod code;
mod lines;
mod merge;
mod parse;
mod read;
mod scope;
mod table;
mod walk;
mod words;

pub(crate) use code::*;
pub(crate) use merge::*;
pub use parse::parse;
pub(crate) use parse::question_key;
pub use scope::*;
pub(crate) use table::*;
pub(crate) use words::*;

use std::collections::BTreeMap;

use serde::Serialize;

use super::requirement::Requirement;

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

/// What is wrong with a spec, and where: its message, then a rustc-style pointer at the line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}", self.message(), self.pointer())]
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

impl Error {
    /// What is wrong, in one sentence (naming the file where the pointer will not).
    fn message(&self) -> String {
        match &self.kind {
            ErrorKind::Missing(why) => format!("cannot read spec {}: {why}", self.path),
            ErrorKind::NotUtf8 => "spec is not UTF-8 text".into(),
            ErrorKind::Empty => "spec is empty".into(),
            ErrorKind::NoRequirements { unread } => {
                let listed = match unread {
                    0 => String::new(),
                    n => format!(
                        ": {n} figure{} read as not targets (`flow spec {}` lists each with why)",
                        if *n == 1 { "" } else { "s" },
                        self.path
                    ),
                };
                format!(
                    "spec has no requirement, so there is nothing to plan{listed}; a target reads like \
                     \"handle 2,500 connections per second\" or \"THE SYSTEM SHALL ...\""
                )
            }
            ErrorKind::Impossible(why) => format!("impossible requirement: {why}"),
            ErrorKind::Conflict(message) => message.clone(),
        }
    }

    /// Where: `--> path:line` and the line itself, or the file alone.
    fn pointer(&self) -> String {
        match (self.line, &self.source_line) {
            (Some(line), Some(src)) => {
                let w = line.to_string().len();
                format!("\n  --> {}:{line}\n{:w$} |\n{line} | {src}\n{:w$} |", self.path, "", "")
            }
            (Some(line), None) => format!("\n  --> {}:{line}", self.path),
            (None, _) if matches!(self.kind, ErrorKind::Missing(_)) => String::new(),
            (None, _) => format!("\n  --> {}", self.path),
        }
    }
}

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
mod tests;
