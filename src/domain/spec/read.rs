//! Pass 3 of [`super::parse`], reading: each unit split into sentences, each sentence read ([`reading::read`])
//! under what the walk found around it, into requirements not yet numbered ([`Found`]), and
//! what else the reading found ([`Findings`]): figures left unread with why, questions,
//! impossible figures, notes, and the first multi-AZ line.

use super::lines::{excerpt, Lines};
use super::*;
use crate::domain::quantity::{self, Class};
use crate::domain::reading::{self, Hints};
use crate::domain::requirement::{self, Kind, Op, Requirement};

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

/// What one unit states: the id it gives its requirements, if it gives one (`REQ-3: ...`, an
/// ID column, `Requirement N`), the heading derived ids come from, and the requirements.
pub(crate) struct Stated {
    pub(crate) id: Option<String>,
    pub(crate) heading: String,
    pub(crate) found: Vec<Found>,
}

/// What the reading found besides requirements, over the whole spec.
#[derive(Default)]
pub(crate) struct Findings {
    pub(crate) diagnostics: Vec<Diagnostic>,
    pub(crate) unread: Vec<Unread>,
    pub(crate) asked: Vec<Question>,
    /// The first "multi-AZ" where no sentence says the service survives losing a zone: line,
    /// text as shown, scope.
    pub(crate) multi_az: Option<(usize, String, Option<String>)>,
}

/// Where in the spec a position in a unit's body is.
struct Place<'a> {
    unit: &'a Unit,
    /// Where the body starts in the unit's text (after an explicit id).
    body_at: usize,
    lines: &'a Lines<'a>,
}

impl Place<'_> {
    fn line(&self, pos: usize) -> usize {
        self.lines.line_of(self.unit.text.src(self.body_at + pos))
    }
}

/// One sentence of a unit, and what it is read under.
struct Sentence<'a> {
    text: &'a str,
    /// Where it starts in the unit's body.
    at: usize,
    /// How its requirements are shown.
    shown: String,
    /// The scope of the unit (its colon label, else the table row, parent item or heading).
    scope: Option<String>,
    /// The unit has a colon label, which scopes every sentence of it.
    labelled: bool,
}

/// Read a unit (not in a context section).
pub(crate) fn read_unit(u: &Unit, lines: &Lines, f: &mut Findings) -> Stated {
    let full = u.text.text.trim_end();
    let numeric_figure = |id: &str| {
        !id.starts_with(|c: char| c.is_ascii_alphabetic())
            && quantity::figures(full, true).first().is_some_and(|f| f.start <= 1 && f.class != Class::Bare)
    };
    let (id, body_at) = match (&u.table_id, &u.kiro, EXPLICIT_ID.captures(full)) {
        (Some(id), _, _) => (Some(id.clone()), 0),
        (None, _, Some(c)) if !numeric_figure(&c["id"]) && id_like(&c) => {
            (Some(c["id"].to_string()), c.get(0).map_or(0, |m| m.end()))
        }
        (None, Some((n, k)), _) => (Some(format!("{n}.{k}")), 0),
        _ => (None, 0),
    };
    let body = &full[body_at..];
    let place = Place { unit: u, body_at, lines };
    // "Checkout API: ...": the label before a colon scopes the unit.
    let own_scope = if u.cell {
        None
    } else {
        COLON_LABEL.captures(body).and_then(|c| {
            let label = &c["label"];
            let after = c.get(0).map_or(body.len(), |m| m.end());
            let url = body[after..].starts_with("//") || label.ends_with("http") || label.ends_with("https");
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
        let text = body[s..e].trim();
        if text.is_empty() {
            continue;
        }
        let at = s + (body[s..e].len() - body[s..e].trim_start().len());
        let shown = excerpt(u.shown.as_deref().unwrap_or(text));
        let sentence = Sentence { text, at, shown, scope: scope.clone(), labelled };
        read_sentence(&sentence, &hints, &place, f, &mut found);
    }
    Stated { id, heading: u.heading.clone(), found }
}

fn read_sentence(s: &Sentence, hints: &Hints, place: &Place, f: &mut Findings, found: &mut Vec<Found>) {
    let u = place.unit;
    let sentence = s.text;
    let line_at = |pos: usize| place.line(s.at + pos);
    let source_line = |line: usize| place.lines.source(line);
    let ears = EARS.find(sentence).filter(|_| !u.cell);
    let promise = ears.is_some() || requirement::is_promise(sentence);
    // The sentence's subject ("The checkout API must ...") scopes it, unless a label does.
    let scope = match (&ears, u.cell) {
        (None, false) if !s.labelled => {
            SUBJECT.captures(sentence).and_then(|c| scope_of(&c["s"])).or_else(|| s.scope.clone())
        }
        (Some(m), false) if !s.labelled => {
            EARS_SUBJECT.captures(m.as_str()).and_then(|c| scope_of(&c["s"])).or_else(|| s.scope.clone())
        }
        _ => s.scope.clone(),
    };
    // An EARS sentence: its condition and its response read apart.
    let (cond_end, readings) = match ears {
        Some(m) => {
            let cond = reading::read(&sentence[..m.end()], &Hints { condition: true, ..Hints::default() });
            let resp = reading::read(&sentence[m.end()..], hints);
            (m.end(), vec![(0, cond), (m.end(), resp)])
        }
        None => (0, vec![(0, reading::read(sentence, hints))]),
    };
    let mut any = false;
    let mut any_ask = false;
    let mut notes = Vec::new();
    let mut impossible = false;
    for (off, r) in readings {
        for x in r.found {
            any = true;
            found.push(Found {
                kind: x.kind,
                op: x.op,
                value: x.value,
                line: line_at(off + x.at),
                text: s.shown.clone(),
                scope: match (x.scope, &scope) {
                    (Some(own), Some(outer)) => Some(format!("{outer} {own}")),
                    (own, outer) => own.or_else(|| outer.clone()),
                },
                note: None,
            });
        }
        for x in r.unread {
            let line = line_at(off + x.at);
            f.unread.push(Unread { line, text: source_line(line).trim().to_string(), figure: x.figure, why: x.why });
        }
        for a in r.asks {
            any_ask = true;
            let line = line_at(off + a.at);
            let src = source_line(line);
            f.asked.push(Question {
                id: String::new(),
                key: question_key(&format!("ask {}", a.why), &[&src]),
                line,
                other_line: None,
                text: src.trim().to_string(),
                why: a.why,
                readings: a
                    .readings
                    .into_iter()
                    .map(|x| {
                        let mut r = Requirement::new("", x.kind, x.op, x.value, line, &s.shown);
                        r.scope = scope.clone();
                        r
                    })
                    .collect(),
            });
        }
        for (at, why) in r.impossible {
            impossible = true;
            let line = line_at(off + at);
            f.diagnostics.push(Diagnostic {
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
    let az =
        reading::AZ.find(resp).filter(|_| !quiet).map(|m| cond_end + m.start()).or_else(|| {
            reading::KEEP_SERVING.is_match(resp).then(|| reading::AZ.find(cond).map(|m| m.start())).flatten()
        });
    if az.is_none() && !quiet {
        if let Some(m) = reading::MULTI_AZ.find(sentence) {
            f.multi_az.get_or_insert((line_at(m.start()), s.shown.clone(), scope.clone()));
        }
    }
    if notification(s, &scope, place, f, found) {
        any = true;
    }
    if let Some(at) = az {
        any = true;
        found.push(Found {
            kind: Kind::AzFailureTolerance,
            op: Op::Eq,
            value: 1.0,
            line: line_at(at),
            text: s.shown.clone(),
            scope: scope.clone(),
            note: None,
        });
    }
    for n in notes.iter().filter(|n| !n.starts_with("a mean time")) {
        let line = line_at(0);
        f.diagnostics.push(Diagnostic {
            level: Level::Warning,
            line: Some(line),
            other_line: None,
            message: n.clone(),
            text: source_line(line),
            refusal: None,
        });
    }
    // A promise with no figure flow can measure is still a requirement, of kind `other`.
    if !any && !any_ask && !impossible && promise {
        found.push(Found {
            kind: Kind::Other,
            op: Op::Eq,
            value: 1.0,
            line: line_at(0),
            text: s.shown.clone(),
            scope,
            note: notes.first().cloned(),
        });
    }
}

/// Telling a person an alarm fired: its bound after the verb, else the default one. A section
/// of alerts holds thresholds, not targets; but whom an alert reaches, and how fast, is said
/// there too. Whether the sentence states one; `scope` is the sentence's own.
fn notification(s: &Sentence, scope: &Option<String>, place: &Place, f: &mut Findings, found: &mut Vec<Found>) -> bool {
    let sentence = s.text;
    let say = &place.unit.say;
    let quiet = matches!(say, Say::NotTargets(_));
    let alerts = matches!(say, Say::NotTargets(why) if why.contains(", a section of alerts,"));
    let notify =
        reading::NOTIFY.find(sentence).filter(|_| (!quiet || alerts) && reading::ALARM_WORD.is_match(sentence));
    let Some(m) = notify else { return false };
    let line_at = |pos: usize| place.line(s.at + pos);
    let within = reading::NOTIFY_WITHIN.captures(&sentence[m.end()..]);
    let bound = within.as_ref().and_then(|c| {
        let n: f64 = c["n"].parse().ok()?;
        Some(n * quantity::unit_seconds(&c["u"]))
    });
    // The bound is this reading's, not a latency's or a downtime's.
    if let Some(b) = bound {
        let first = line_at(0);
        let last = line_at(sentence.len().saturating_sub(1));
        let of_sentence = |l: usize| l >= first && l <= last;
        let seconds = requirement::Unit::Seconds;
        found.retain(|x| !(of_sentence(x.line) && x.kind.unit() == seconds && (x.value - b).abs() < 1e-9));
        let n = within.as_ref().map(|c| c["n"].to_string()).unwrap_or_default();
        f.unread.retain(|x| !(of_sentence(x.line) && x.figure.starts_with(&n)));
        f.asked.retain(|q| !(of_sentence(q.line) && q.readings.iter().any(|r| (r.value - b).abs() < 1e-9)));
    }
    found.push(Found {
        kind: Kind::Notification,
        op: Op::Le,
        value: bound.unwrap_or(requirement::DEFAULT_NOTIFICATION_S),
        line: line_at(m.start()),
        text: s.shown.clone(),
        scope: scope.clone(),
        note: bound.is_none().then(|| {
            format!(
                "no bound written: flow holds notifications to {} minutes; write \"within N minutes\" to change it",
                requirement::DEFAULT_NOTIFICATION_S / 60.0
            )
        }),
    });
    true
}
