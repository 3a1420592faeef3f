//! Quantities in prose: numbers (1,200 / 1 200 / 1.2k / 10 000), their units (time, request
//! rates, percent, bandwidth), ranges ("40-60 rps"), nines ("four nines"), shares ("95 % of
//! requests"), and the comparison written before or after a figure ("must not exceed",
//! "no less than", "≤", "200 ms or less"), negation included.
//!
//! Everything here works on text [`normalize`]d first: every Unicode space is a plain space and
//! the minus sign is `-`. Offsets are byte offsets into that text.
//!
//! Files: here figures ([`figures`]: a number, its unit, a range, nines, a share, the
//! comparison after it); `units` (numbers and unit patterns); `compare` (tokens and the
//! comparison before a figure).

mod compare;
mod units;

pub use compare::*;
use units::*;
pub use units::{unit_hint, unit_seconds};

use super::requirement::Op;

/// What a figure's unit says it measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A duration, in seconds.
    Time,
    /// A rate of requests (connections, calls, messages...), per second.
    Rate,
    /// A percentage.
    Percent,
    /// Bytes or bits per second: never a request rate.
    Bandwidth,
    /// A number with no unit: only a table's header or label can give it one.
    Bare,
}

/// A number with its unit, where it stands in the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub start: usize,
    /// End of the number and its unit (and of a range's second bound).
    pub end: usize,
    /// In the class's canonical unit: seconds, per second, percent; as written when bare.
    pub value: f64,
    pub class: Class,
    /// Both bounds of a range, canonical, low to high.
    pub range: Option<(f64, f64)>,
    /// "four nines".
    pub nines: bool,
    /// "95 % of requests": where the share's noun ends.
    pub share_end: Option<usize>,
    /// A comparison written after the figure ("or less", "+", "max").
    pub suffix: Option<Cmp>,
}

impl Figure {
    pub fn text<'a>(&self, text: &'a str) -> &'a str {
        &text[self.start..self.end]
    }
}

/// A comparison as written: an operator, or "up to" (whose meaning depends on the direction
/// of what is measured: a ceiling for a latency, the capacity to reach for a rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Op(Op),
    UpTo,
}

/// Every Unicode space as ` `, runs of spaces as one, the minus sign (U+2212) as `-`.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !space && !out.is_empty() {
                out.push(' ');
            }
            space = true;
            continue;
        }
        space = false;
        out.push(if c == '\u{2212}' { '-' } else { c });
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// A range "40-60 rps", "2 to 3 seconds", "between 2 and 3 seconds" whose first bound (`v`,
/// ending at `end`) has no unit of its own: it takes the second's.
fn range(text: &str, start: usize, v: f64, end: usize, load: bool, suffix: Option<Cmp>) -> Option<Figure> {
    let j = RANGE_JOIN.find(&text[end..])?;
    let k = end + j.end();
    if !text.as_bytes().get(k).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let (v2, end2) = number(text, k);
    let (class, factor, uend) = unit(text, end2, load)?;
    let by_and = j.as_str().trim().eq_ignore_ascii_case("and");
    let before = text[..start].trim_end();
    let between = before.len() >= 7
        && before.is_char_boundary(before.len() - 7)
        && before[before.len() - 7..].eq_ignore_ascii_case("between");
    if by_and && !between {
        return None;
    }
    let (lo, hi) = ((v * factor).min(v2 * factor), (v * factor).max(v2 * factor));
    Some(Figure { start, end: uend, value: lo, class, range: Some((lo, hi)), nines: false, share_end: None, suffix })
}

/// Every figure in `text` (normalized), in order. `load_sentence`: the text speaks of load, so
/// a bare "per minute" after a number is a request rate.
pub fn figures(text: &str, load_sentence: bool) -> Vec<Figure> {
    let b = text.as_bytes();
    let respectively = text.to_ascii_lowercase().rfind("respectively");
    let mut out: Vec<Figure> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && (is_word_byte(b[i - 1]) || b[i - 1] == b'.' || b[i - 1] == b',')) {
            i += 1;
            continue;
        }
        let (mut v, mut end) = number(text, i);
        let mut start = i;
        // A minus sign only when written against the number after a space or an opening.
        if i >= 1 && b[i - 1] == b'-' && (i == 1 || matches!(b[i - 2], b' ' | b'(' | b':' | b'=' | b'<' | b'>')) {
            let before_space = text[..i - 1].trim_end();
            if !before_space.as_bytes().last().is_some_and(u8::is_ascii_digit) {
                v = -v;
                start = i - 1;
            }
        }
        let mut suffix = None;
        if b.get(end) == Some(&b'+') {
            suffix = Some(Cmp::Op(Op::Ge));
            end += 1;
        }
        let mut factor = 1.0;
        let mut fig = match unit(text, end, load_sentence) {
            Some((class, f, uend)) => {
                factor = f;
                Figure { start, end: uend, value: v * f, class, range: None, nines: false, share_end: None, suffix }
            }
            None => range(text, start, v, end, load_sentence, suffix).unwrap_or(Figure {
                start,
                end,
                value: v,
                class: Class::Bare,
                range: None,
                nines: false,
                share_end: None,
                suffix,
            }),
        };
        if fig.class == Class::Time && fig.range.is_none() {
            // "2 hours 30 minutes", "1h30m"; not "1 hour and 5 minutes respectively".
            let listing = respectively.is_some_and(|r| r >= fig.end);
            while let Some(c) = TIME_MORE
                .captures(&text[fig.end..])
                .filter(|c| ends_word(&text[fig.end + c.get(0).map_or(0, |m| m.end())..]))
            {
                let u = &c["u"];
                let f = unit_seconds(u);
                let whole = c.get(0).map_or("", |m| m.as_str());
                let attached = whole.trim_start().len() == c["n"].len() + u.len();
                let and = whole.trim_start().to_ascii_lowercase().starts_with("and");
                if f >= factor
                    || (and && listing)
                    || (!attached && matches!(u.to_lowercase().as_str(), "m" | "d" | "us"))
                {
                    break;
                }
                fig.value += c["n"].parse::<f64>().unwrap_or(0.0) * f;
                fig.end += whole.len();
                factor = f;
            }
        }
        if fig.class == Class::Percent {
            if let Some(m) = SHARE.find(&text[fig.end..]) {
                fig.share_end = Some(fig.end + m.end());
            }
        }
        if fig.suffix.is_none() {
            if let Some(c) = SUFFIX.captures(&text[fig.end..]) {
                fig.suffix = Some(if c.name("le").is_some() || c.name("max").is_some() {
                    Cmp::Op(Op::Le)
                } else if c.name("ge").is_some() || c.name("min").is_some() {
                    Cmp::Op(Op::Ge)
                } else {
                    Cmp::UpTo
                });
            }
        }
        i = fig.end.max(i + 1);
        out.push(fig);
    }
    for c in NINES.captures_iter(text) {
        let whole = c.get(0).expect("whole match");
        let start = c.name("n").map_or(whole.start(), |n| n.start());
        let n: i32 = match c["n"].to_ascii_lowercase().as_str() {
            "two" | "2" => 2,
            "three" | "3" => 3,
            "four" | "4" => 4,
            _ => 5,
        };
        let gap = 10f64.powi(2 - n) * if c.name("half").is_some() { 0.5 } else { 1.0 };
        let value = ((100.0 - gap) * 1e6).round() / 1e6;
        out.retain(|f| !(f.start >= start && f.start < whole.end()));
        out.push(Figure {
            start,
            end: whole.end(),
            value,
            class: Class::Percent,
            range: None,
            nines: true,
            share_end: None,
            suffix: None,
        });
    }
    out.sort_by_key(|f| f.start);
    out
}

#[cfg(test)]
mod tests;
