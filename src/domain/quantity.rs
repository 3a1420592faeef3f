//! Quantities in prose: numbers (1,200 / 1 200 / 1.2k / 10 000), their units (time, request
//! rates, percent, bandwidth), ranges ("40-60 rps"), nines ("four nines"), shares ("95 % of
//! requests"), and the comparison written before or after a figure ("must not exceed",
//! "no less than", "≤", "200 ms or less"), negation included.
//!
//! Everything here works on text [`normalize`]d first: every Unicode space is a plain space and
//! the minus sign is `-`. Offsets are byte offsets into that text.

use std::sync::LazyLock;

use regex::Regex;

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

fn re(p: &str) -> Regex {
    Regex::new(&format!("(?i){p}")).expect("static quantity pattern")
}

const RATE_NOUNS: &str = r"(?:requests?|reqs?|connections?|conns?|calls?|transactions?|txns?|hits?|messages?|msgs?|events?|operations?|ops|queries|query|orders?|writes?|reads?|jobs?|records?|logins?|checkouts?|searches|uploads?|payments?|sessions?|placements?|bookings?|purchases?|sign-?ups?|authentications?|auths?|tickets?|items?|documents?|emails?|notifications?|clicks?|views?|page-?views?|impressions?|packets?|batches?|tasks?|invocations?|executions?|lookups?|reservations?|submissions?|publishes|datapoints?|spans?|logs?|lines?|rows?|files?|images?|tokens?)";
const PER: &str = r"(?:\s*/\s*|\s+per\s+|\s+an?\s+|\s+each\s+)";

static RATE_LONG: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^(?:(?:new|http|https|successful|incoming|inbound|tcp|api|client|user)\s+)?{RATE_NOUNS}{PER}(?P<per>seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b"
    ))
});
static RATE_SHORT: LazyLock<Regex> = LazyLock::new(|| re(r"^(?P<per>rps|qps|tps|req/s|reqs/s|r/s|rpm|rph)\b"));
/// "1,500/min", "40/s": a count per unit of time written against the number.
static RATE_SLASH: LazyLock<Regex> = LazyLock::new(|| re(r"^/(?P<per>s|sec|second|m|min|minute|h|hr|hour)\b"));
/// Words that may stand between a number and its rate noun ("5,000 authentication requests
/// per second") but not these, which are units or say something else.
static NOT_BETWEEN: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:of|in|for|at|to|on|by|from|the|a|an|and|or|per|each|every|ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hrs?|hours?|d|days?|weeks?|percent|users?|concurrent)$",
    )
});
static RATE_BARE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:\s*/\s*|\s*per\s+|\s*an?\s+|\s*each\s+)(?P<per>second|sec|minute|min|hour)\b"));
static BANDWIDTH: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:[kmgt]i?b(?:it)?s?\s*/\s*(?:s|sec|min|h|day)\b|[kmgt]bps\b|bytes?\s*/\s*(?:s|min)\b|bits?\s*/\s*s\b|bps\b)",
    )
});
static PERCENT: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:%|percent\b|per\s*cent\b|pct\b)"));
/// Longest first; a unit must not run on into a letter (checked by [`ends_word`]), and may run
/// on into a digit ("1h30m").
const TIME_UNIT: &str = r"(?:nanoseconds?|nsecs?|ns|microseconds?|milliseconds?|millis|msecs?|ms|µs|μs|us|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|wks?)";
static TIME: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"^(?P<u>{TIME_UNIT})")));
static TIME_MORE: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"^\s*(?:and\s+)?(?P<n>\d+(?:\.\d+)?)\s*(?P<u>{TIME_UNIT})")));

/// Time units in Russian, Korean, Chinese and Japanese (a CJK unit may run on into a particle).
static TIME_INTL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:(?P<cyr>миллисекунд\w*|мс|секунд\w*|сек|с|минут\w*|мин|часа|часов|час|ч|дня|дней|день|дн|суток|сутки)|(?P<cjk>밀리초|초|분|시간|일|毫秒|秒鐘|秒钟|秒|分鐘|分钟|分|小時|小时|時間|天|日))",
    )
});

fn intl_seconds(u: &str) -> f64 {
    let u = u.to_lowercase();
    let p = |s: &str| u.starts_with(s);
    if p("милли") || u == "мс" || p("밀리") || p("毫") {
        0.001
    } else if p("сек") || u == "с" || p("초") || p("秒") {
        1.0
    } else if p("мин") || p("분") || p("分") {
        60.0
    } else if p("час") || u == "ч" || p("시간") || p("小") || p("時") {
        3600.0
    } else {
        86_400.0
    }
}

fn ends_word(rest: &str) -> bool {
    !rest.chars().next().is_some_and(char::is_alphabetic)
}
static RANGE_JOIN: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*(?:-|–|—|to|and)\s*"));
static NINES: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:^|[^\w.])(?P<n>two|three|four|five|2|3|4|5)(?P<half>\s+and\s+a\s+half|\.5)?\s+(?:nines|9s)\b")
});
static SHARE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*of\s+(?:(?:all|the|our|its|their|incoming|user|customer|api|http)\s+)*(?:requests|calls|responses|queries|transactions|operations|reads|writes|searches|page\s+loads|users|sessions|messages|checkouts|orders|logins|uploads|hits)\b",
    )
});
static SUFFIX: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*(?:or\s+(?P<le>less|lower|fewer|below|under|faster|shorter|sooner)\b|or\s+(?P<ge>more|higher|greater|above|over)\b|(?P<max>max(?:imum)?|at\s+most)\b|(?P<min>minimum|at\s+least)\b|or\s+better\b)",
    )
});

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Seconds in one of a time unit.
pub fn unit_seconds(u: &str) -> f64 {
    let u = u.to_lowercase();
    match u.as_str() {
        "ns" | "nsec" | "nsecs" => 1e-9,
        _ if u.starts_with("nano") => 1e-9,
        "µs" | "μs" | "us" => 1e-6,
        _ if u.starts_with("micro") => 1e-6,
        "ms" | "msec" | "msecs" => 0.001,
        _ if u.starts_with("milli") => 0.001,
        "s" | "sec" | "secs" => 1.0,
        _ if u.starts_with("second") => 1.0,
        "m" | "min" | "mins" => 60.0,
        _ if u.starts_with("minute") => 60.0,
        "h" | "hr" | "hrs" => 3600.0,
        _ if u.starts_with("hour") => 3600.0,
        "w" | "wk" | "wks" => 604_800.0,
        _ if u.starts_with("week") => 604_800.0,
        _ => 86_400.0,
    }
}

/// Per second, from the `per` word of a rate.
fn per_second(per: &str) -> f64 {
    let p = per.to_lowercase();
    if p == "rpm" || p.starts_with('m') {
        1.0 / 60.0
    } else if p == "rph" || p.starts_with('h') {
        1.0 / 3600.0
    } else {
        1.0
    }
}

/// A number at `i` (an ASCII digit): its value and where it ends. Groups of three by `,` or a
/// space, decimals by `.`, a `k`, `thousand` or `million` after it.
fn number(text: &str, i: usize) -> (f64, usize) {
    let b = text.as_bytes();
    let digits = |from: usize| -> usize {
        let mut j = from;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let mut end = digits(i);
    let mut s: String = text[i..end].to_string();
    if end - i <= 3 {
        for sep in [b',', b' '] {
            let mut j = end;
            let mut grouped = String::new();
            while j + 3 < b.len() + 1
                && b.get(j) == Some(&sep)
                && digits(j + 1) == j + 4
                && !(sep == b' ' && b.get(j + 4) == Some(&b'.'))
            {
                grouped.push_str(&text[j + 1..j + 4]);
                j += 4;
            }
            if !grouped.is_empty() {
                s.push_str(&grouped);
                end = j;
                break;
            }
        }
    }
    // "99,90 %", "1,5 s": a comma before one, two or four digits is a decimal comma.
    if s.len() == end - i && b.get(end) == Some(&b',') {
        let e = digits(end + 1);
        let n = e - (end + 1);
        if n > 0 && n != 3 && !matches!(b.get(e), Some(b',' | b'.')) {
            s.push('.');
            s.push_str(&text[end + 1..e]);
            end = e;
        }
    }
    if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
        let e = digits(end + 1);
        s.push_str(&text[end..e]);
        end = e;
    }
    let mut v: f64 = s.parse().unwrap_or(f64::NAN);
    let rest = &text[end..];
    let after_m = rest.get(1..).unwrap_or("");
    if (rest.starts_with('k') || rest.starts_with('K')) && !rest[1..].bytes().next().is_some_and(is_word_byte) {
        v *= 1000.0;
        end += 1;
    } else if rest.starts_with('M')
        && !after_m.bytes().next().is_some_and(is_word_byte)
        && unit(text, end + 1, false).is_some_and(|(c, _, _)| c == Class::Rate)
    {
        // "1M msgs/sec": a million, where a rate follows; "5M" alone stays five minutes.
        v *= 1e6;
        end += 1;
    } else {
        let lower: Vec<u8> = rest.bytes().take(10).map(|c| c.to_ascii_lowercase()).collect();
        for (w, m) in [(" thousand", 1e3), (" million", 1e6)] {
            if lower.starts_with(w.as_bytes()) && !lower.get(w.len()).is_some_and(|c| is_word_byte(*c)) {
                v *= m;
                end += w.len();
                break;
            }
        }
    }
    (v, end)
}

/// The unit after a number ending at `end`: class, canonical factor, where the unit ends.
fn unit(text: &str, end: usize, load_sentence: bool) -> Option<(Class, f64, usize)> {
    let rest = &text[end..];
    let spaced = rest.starts_with(' ');
    let hyphen = rest.starts_with('-') && rest[1..].chars().next().is_some_and(char::is_alphabetic);
    let at = if hyphen { 1 } else { rest.len() - rest.trim_start_matches(' ').len() };
    if at > 2 {
        return None;
    }
    let r = &rest[at..];
    let stop = |m: usize| end + at + m;
    if !hyphen && !spaced {
        if let Some(c) = RATE_SLASH.captures(r) {
            return Some((Class::Rate, per_second(&c["per"]), stop(c.get(0)?.end())));
        }
    }
    if !hyphen {
        if let Some(c) = RATE_LONG.captures(r) {
            return Some((Class::Rate, per_second(&c["per"]), stop(c.get(0)?.end())));
        }
        if let Some(c) = RATE_SHORT.captures(r) {
            return Some((Class::Rate, per_second(&c["per"]), stop(c.get(0)?.end())));
        }
        if let Some(m) = BANDWIDTH.find(r) {
            return Some((Class::Bandwidth, 1.0, stop(m.end())));
        }
        if let Some(m) = PERCENT.find(r) {
            return Some((Class::Percent, 1.0, stop(m.end())));
        }
    }
    if let Some(c) = TIME.captures(r).filter(|c| ends_word(&r[c.get(0).map_or(0, |m| m.end())..])) {
        let u = &c["u"];
        // `m`, `d` and `us` only written against the number: "5m", not "5 m".
        if (spaced || hyphen) && matches!(u.to_lowercase().as_str(), "m" | "d" | "us") {
            return None;
        }
        return Some((Class::Time, unit_seconds(u), stop(c.get(0)?.end())));
    }
    if let Some(c) = TIME_INTL.captures(r) {
        let m = c.get(0)?;
        if c.name("cjk").is_some() || ends_word(&r[m.end()..]) {
            return Some((Class::Time, intl_seconds(m.as_str()), stop(m.end())));
        }
    }
    if load_sentence && !hyphen {
        if let Some(c) = RATE_BARE.captures(&text[end..]) {
            return Some((Class::Rate, per_second(&c["per"]), end + c.get(0)?.end()));
        }
    }
    // "5,000 authentication requests per second": one or two words before the rate's noun.
    if spaced && !hyphen {
        let mut from = 0;
        for _ in 0..2 {
            let word_len = r[from..].find(|c: char| !(c.is_alphabetic() || c == '-')).unwrap_or(r.len() - from);
            let word = &r[from..from + word_len];
            if word.is_empty() || NOT_BETWEEN.is_match(word) || !r[from + word_len..].starts_with(' ') {
                break;
            }
            from += word_len + 1;
            if let Some(c) = RATE_LONG.captures(&r[from..]) {
                return Some((Class::Rate, per_second(&c["per"]), stop(from + c.get(0)?.end())));
            }
        }
    }
    None
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

static PAREN_UNIT: LazyLock<Regex> = LazyLock::new(|| re(r"\(\s*(?P<u>[^()]{1,20}?)\s*\)"));

/// The unit a header or label names without a number, as (class, canonical factor): a unit in
/// parentheses ("p95 target (ms)", "Error rate (%)"), or a request rate spelled out
/// ("Connections per second", "req/s").
pub fn unit_hint(text: &str) -> Option<(Class, f64)> {
    let t = normalize(text);
    let probe = |u: &str| -> Option<(Class, f64)> {
        let s = format!("1 {u}");
        figures(&s, true).into_iter().find(|f| f.start == 0 && f.class != Class::Bare).map(|f| (f.class, f.value))
    };
    for c in PAREN_UNIT.captures_iter(&t) {
        if let Some(u) = probe(&c["u"]) {
            return Some(u);
        }
    }
    tokens(&t)
        .iter()
        .filter(|w| w.text.chars().next().is_some_and(char::is_alphabetic))
        .find_map(|w| probe(&t[w.start..]).filter(|(c, _)| *c == Class::Rate))
}

/// A word or symbol of the text, with where it starts and ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// Words (lowercased; `-`, `'` and `/` kept inside one), comparison symbols, and the
/// punctuation that separates clauses.
pub fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c.is_alphanumeric() {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = it.peek() {
                let inner = matches!(d, '-' | '\'' | '’' | '/' | '.')
                    && text[j + d.len_utf8()..].chars().next().is_some_and(char::is_alphanumeric);
                if d.is_alphanumeric() || inner {
                    end = j + d.len_utf8();
                    it.next();
                } else {
                    break;
                }
            }
            out.push(Token { start: i, end, text: text[i..end].to_lowercase() });
        } else if matches!(c, '<' | '>' | '=' | '≤' | '≥' | '~') {
            let mut end = i + c.len_utf8();
            if let Some(&(j, '=')) = it.peek() {
                end = j + 1;
                it.next();
            }
            out.push(Token { start: i, end, text: text[i..end].to_string() });
        } else if matches!(c, ',' | ';' | ':' | '(' | ')' | '—' | '–') {
            out.push(Token { start: i, end: i + c.len_utf8(), text: c.to_string() });
        }
    }
    out
}

const NEGATIONS: &[&str] = &[
    "not",
    "never",
    "no",
    "cannot",
    "can't",
    "mustn't",
    "shouldn't",
    "won't",
    "doesn't",
    "don't",
    "isn't",
    "aren't",
    "wouldn't",
    "shan't",
    "can’t",
    "won’t",
    "don’t",
    "doesn’t",
];

/// Comparison phrases, longest first, with what they state.
fn phrase(words: &[&str]) -> Option<(Cmp, bool)> {
    // (phrase, comparison, prepositional: needs the figure right after it)
    const P: &[(&str, Cmp, bool)] = &[
        ("a maximum of", Cmp::Op(Op::Le), false),
        ("a minimum of", Cmp::Op(Op::Ge), false),
        ("less than", Cmp::Op(Op::Lt), false),
        ("lower than", Cmp::Op(Op::Lt), false),
        ("fewer than", Cmp::Op(Op::Lt), false),
        ("shorter than", Cmp::Op(Op::Lt), false),
        ("faster than", Cmp::Op(Op::Lt), false),
        ("sooner than", Cmp::Op(Op::Lt), false),
        ("at most", Cmp::Op(Op::Le), false),
        ("maximum of", Cmp::Op(Op::Le), false),
        ("capped at", Cmp::Op(Op::Le), false),
        ("limited to", Cmp::Op(Op::Le), false),
        ("down to", Cmp::Op(Op::Le), false),
        ("up to", Cmp::UpTo, false),
        ("more than", Cmp::Op(Op::Gt), false),
        ("greater than", Cmp::Op(Op::Gt), false),
        ("higher than", Cmp::Op(Op::Gt), false),
        ("longer than", Cmp::Op(Op::Gt), false),
        ("slower than", Cmp::Op(Op::Gt), false),
        ("older than", Cmp::Op(Op::Gt), false),
        ("at least", Cmp::Op(Op::Ge), false),
        ("minimum of", Cmp::Op(Op::Ge), false),
        ("under", Cmp::Op(Op::Lt), true),
        ("below", Cmp::Op(Op::Lt), true),
        ("within", Cmp::Op(Op::Le), true),
        ("over", Cmp::Op(Op::Gt), true),
        ("above", Cmp::Op(Op::Gt), true),
        ("beyond", Cmp::Op(Op::Gt), true),
        ("exceed", Cmp::Op(Op::Gt), false),
        ("exceeds", Cmp::Op(Op::Gt), false),
        ("exceeding", Cmp::Op(Op::Gt), false),
        ("exceeded", Cmp::Op(Op::Gt), false),
        ("max", Cmp::Op(Op::Le), false),
        ("maximum", Cmp::Op(Op::Le), false),
        ("min", Cmp::Op(Op::Ge), false),
        ("minimum", Cmp::Op(Op::Ge), false),
        ("<", Cmp::Op(Op::Lt), false),
        ("<=", Cmp::Op(Op::Le), false),
        ("=<", Cmp::Op(Op::Le), false),
        ("≤", Cmp::Op(Op::Le), false),
        (">", Cmp::Op(Op::Gt), false),
        (">=", Cmp::Op(Op::Ge), false),
        ("=>", Cmp::Op(Op::Ge), false),
        ("≥", Cmp::Op(Op::Ge), false),
    ];
    let joined = words.join(" ");
    P.iter().find(|(p, _, _)| *p == joined).map(|(_, c, prep)| (*c, *prep))
}

/// Words that may stand between a prepositional comparison and its figure.
const PREP_GAP: &[&str] = &["a", "an", "roughly", "about", "around", "approximately", "~", "just"];

/// Words that may stand between any comparison and its figure.
fn gap_word(t: &str) -> bool {
    !matches!(t, "," | ";" | ":" | "(" | ")" | "—" | "–" | "and" | "or" | "but")
}

/// Flip a comparison under negation: "not below" is `>=`, "no more than" is `<=`.
pub fn negate(op: Op) -> Op {
    match op {
        Op::Lt => Op::Ge,
        Op::Le => Op::Gt,
        Op::Gt => Op::Le,
        Op::Ge => Op::Lt,
        Op::Eq => Op::Eq,
    }
}

/// The comparison written before the token at `at` (a figure's first token): the nearest
/// phrase at most three words before it, flipped by a negation up to three words before the
/// phrase; `None` when none is written.
pub fn cmp_before(toks: &[Token], at: usize) -> Option<Cmp> {
    let lo = at.saturating_sub(8);
    // j: index just past the phrase's last token; the gap is toks[j..at].
    for j in (lo..=at).rev() {
        if j < at && !gap_word(&toks[j].text) {
            return None;
        }
        if at - j > 3 {
            return None;
        }
        for len in (1..=3).rev() {
            if j < len {
                continue;
            }
            let s = j - len;
            let words: Vec<&str> = toks[s..j].iter().map(|t| t.text.as_str()).collect();
            let Some((cmp, prep)) = phrase(&words) else { continue };
            if prep && !toks[j..at].iter().all(|t| PREP_GAP.contains(&t.text.as_str())) {
                // "under load", "within the region": not a comparison of this figure.
                continue;
            }
            let negated = (s.saturating_sub(3)..s)
                .rev()
                .take_while(|&k| gap_word(&toks[k].text))
                .any(|k| NEGATIONS.contains(&toks[k].text.as_str()) || toks[k].text.ends_with("n't"));
            return Some(match cmp {
                Cmp::Op(op) if negated => Cmp::Op(negate(op)),
                c => c,
            });
        }
    }
    None
}

/// The index of the first token at or after byte `pos`.
pub fn token_at(toks: &[Token], pos: usize) -> usize {
    toks.partition_point(|t| t.end <= pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> (f64, Class) {
        let t = normalize(text);
        let f = figures(&t, true);
        assert_eq!(f.iter().filter(|f| f.class != Class::Bare).count(), 1, "{text}: {f:?}");
        let f = f.into_iter().find(|f| f.class != Class::Bare).unwrap();
        (f.value, f.class)
    }

    #[test]
    fn numbers() {
        for (text, v) in [
            ("1,200 rps", 1200.0),
            ("1 200 rps", 1200.0),
            ("1\u{a0}200 rps", 1200.0),
            ("2\u{202f}500 req/s", 2500.0),
            ("10 000 requests per second", 10_000.0),
            ("1.2k connections per second", 1200.0),
            ("12k ops/s", 12_000.0),
            ("2.5 thousand requests per second", 2500.0),
            ("0.25 s", 0.25),
        ] {
            assert_eq!(one(text).0, v, "{text}");
        }
    }

    #[test]
    fn units() {
        let table: &[(&str, f64, Class)] = &[
            ("250 ms", 0.25, Class::Time),
            ("250\u{a0}ms", 0.25, Class::Time),
            ("1.5 sec", 1.5, Class::Time),
            ("5m", 300.0, Class::Time),
            ("2 hours 30 minutes", 9000.0, Class::Time),
            ("1h30m", 5400.0, Class::Time),
            ("a 15-minute window", 900.0, Class::Time),
            ("4 hrs", 14_400.0, Class::Time),
            ("7 days", 604_800.0, Class::Time),
            ("150,000 requests per minute", 2500.0, Class::Rate),
            ("36,000 requests per hour", 10.0, Class::Rate),
            ("9000 req/min", 150.0, Class::Rate),
            ("400 TPS", 400.0, Class::Rate),
            ("3,000 req/sec", 3000.0, Class::Rate),
            ("1 200 new connections/s", 1200.0, Class::Rate),
            ("50,000 messages per second", 50_000.0, Class::Rate),
            ("120k requests/min", 2000.0, Class::Rate),
            ("99.9 %", 99.9, Class::Percent),
            ("99.9 percent", 99.9, Class::Percent),
            ("250 MB/s", 250.0, Class::Bandwidth),
            ("10 Gbps", 10.0, Class::Bandwidth),
            ("four nines", 99.99, Class::Percent),
            ("three and a half nines", 99.95, Class::Percent),
        ];
        for (text, v, c) in table {
            let (got, class) = one(text);
            assert!((got - v).abs() < 1e-9 && class == *c, "{text}: {got} {class:?}");
        }
        let t = normalize("150,000 per minute");
        assert_eq!(figures(&t, true)[0].class, Class::Rate);
        assert_eq!(figures(&t, false)[0].class, Class::Bare, "a bare rate only in a sentence about load");
        assert_eq!(figures("5 m", true)[0].class, Class::Bare, "5 m is metres, if anything");
    }

    #[test]
    fn ranges_minus_and_dashes() {
        let f = &figures("40–60 rps", true)[0];
        assert_eq!((f.value, f.range), (40.0, Some((40.0, 60.0))));
        let f = &figures("between 2 and 3 seconds", true)[0];
        assert_eq!(f.range, Some((2.0, 3.0)));
        assert_eq!(figures("under -50 ms", true)[0].value, -0.05);
        assert_eq!(figures("RPO – 5 minutes", true)[0].value, 300.0);
        assert_eq!(figures("RTO - 1 hour", true)[0].value, 3600.0);
        assert_eq!(figures("downtime —60 s", true)[0].value, 60.0);
        let dates = figures("Accepted, 2026-09-14.", true);
        assert!(dates.iter().all(|f| f.class == Class::Bare), "{dates:?}");
    }

    #[test]
    fn shares_and_suffixes() {
        let t = "95 % of requests complete within 300 ms";
        let f = figures(t, true);
        assert_eq!(&t[f[0].end..f[0].share_end.unwrap()], " of requests");
        assert_eq!(figures("200 ms or less", true)[0].suffix, Some(Cmp::Op(Op::Le)));
        assert_eq!(figures("800 rps or more", true)[0].suffix, Some(Cmp::Op(Op::Ge)));
        assert_eq!(figures("2,500+ rps", true)[0].suffix, Some(Cmp::Op(Op::Ge)));
        assert_eq!(figures("250 ms max", true)[0].suffix, Some(Cmp::Op(Op::Le)));
    }

    fn cmp(text: &str) -> Option<Cmp> {
        let t = normalize(text);
        let f = figures(&t, true).into_iter().find(|f| f.class != Class::Bare).unwrap();
        let toks = tokens(&t);
        cmp_before(&toks, token_at(&toks, f.start))
    }

    #[test]
    fn comparisons_and_negation() {
        use Op::*;
        let table: &[(&str, Option<Cmp>)] = &[
            ("under 250 ms", Some(Cmp::Op(Lt))),
            ("at most 30 seconds", Some(Cmp::Op(Le))),
            ("≤ 80 ms", Some(Cmp::Op(Le))),
            ("≥ 99.5 %", Some(Cmp::Op(Ge))),
            (">= 99.5 %", Some(Cmp::Op(Ge))),
            ("may not be higher than 120 ms", Some(Cmp::Op(Le))),
            ("must not exceed 700 ms", Some(Cmp::Op(Le))),
            ("never more than 0.5 %", Some(Cmp::Op(Le))),
            ("must not drop below 800 rps", Some(Cmp::Op(Ge))),
            ("no less than 99.9 %", Some(Cmp::Op(Ge))),
            ("not below 99.95 %", Some(Cmp::Op(Ge))),
            ("no longer than 300 ms", Some(Cmp::Op(Le))),
            ("not to exceed 2 s", Some(Cmp::Op(Le))),
            ("capped at 0.05 %", Some(Cmp::Op(Le))),
            ("Max failover time 45 seconds", Some(Cmp::Op(Le))),
            ("up to 2,500 rps", Some(Cmp::UpTo)),
            ("in under 1 second", Some(Cmp::Op(Lt))),
            ("within an RTO of 2 hours", None),
            ("within 2 hours", Some(Cmp::Op(Le))),
            ("latency under load must be 300 ms", None),
            ("RTO: 4h", None),
            ("If the cache is not warm, latency under 300 ms", Some(Cmp::Op(Lt))),
        ];
        for (text, want) in table {
            assert_eq!(cmp(text), *want, "{text}");
        }
    }

    #[test]
    fn unit_hints() {
        assert_eq!(unit_hint("p95 target (ms)"), Some((Class::Time, 0.001)));
        assert_eq!(unit_hint("Error rate (%)"), Some((Class::Percent, 1.0)));
        assert_eq!(unit_hint("Connections per second"), Some((Class::Rate, 1.0)));
        assert_eq!(unit_hint("Throughput (rps)"), Some((Class::Rate, 1.0)));
        assert_eq!(unit_hint("Min"), None);
        assert_eq!(unit_hint("Latency (p99)"), None);
    }

    #[test]
    fn normalizing() {
        assert_eq!(normalize("  a\u{a0}\u{202f}b\n c\u{2212}1 "), "a b c-1");
    }
}
