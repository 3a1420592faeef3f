//! Numbers and their units: the patterns of rate, time, share and bandwidth units (English,
//! and time units in Russian, Korean, Chinese and Japanese), a number's value as written
//! (`2,500`, `1.5k`, `3 million`), the unit after it, and the unit a header names.

use std::sync::LazyLock;

use regex::Regex;

use super::*;

pub(super) fn re(p: &str) -> Regex {
    Regex::new(&format!("(?i){p}")).expect("static quantity pattern")
}

pub(super) const RATE_NOUNS: &str = r"(?:requests?|reqs?|connections?|conns?|calls?|transactions?|txns?|hits?|messages?|msgs?|events?|operations?|ops|queries|query|orders?|writes?|reads?|jobs?|records?|logins?|checkouts?|searches|uploads?|payments?|sessions?|placements?|bookings?|purchases?|sign-?ups?|authentications?|auths?|tickets?|items?|documents?|emails?|notifications?|clicks?|views?|page-?views?|impressions?|packets?|batches?|tasks?|invocations?|executions?|lookups?|reservations?|submissions?|publishes|datapoints?|spans?|logs?|lines?|rows?|files?|images?|tokens?)";
pub(super) const PER: &str = r"(?:\s*/\s*|\s+per\s+|\s+an?\s+|\s+each\s+)";

pub(super) static RATE_LONG: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^(?:(?:new|http|https|successful|incoming|inbound|tcp|api|client|user)\s+)?{RATE_NOUNS}{PER}(?P<per>seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b"
    ))
});
pub(super) static RATE_SHORT: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?P<per>rps|qps|tps|req/s|reqs/s|r/s|rpm|rph)\b"));
/// "1,500/min", "40/s": a count per unit of time written against the number.
pub(super) static RATE_SLASH: LazyLock<Regex> =
    LazyLock::new(|| re(r"^/(?P<per>s|sec|second|m|min|minute|h|hr|hour)\b"));
/// Words that may stand between a number and its rate noun ("5,000 authentication requests
/// per second") but not these, which are units or say something else.
pub(super) static NOT_BETWEEN: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:of|in|for|at|to|on|by|from|the|a|an|and|or|per|each|every|ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hrs?|hours?|d|days?|weeks?|percent|users?|concurrent)$",
    )
});
pub(super) static RATE_BARE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:\s*/\s*|\s*per\s+|\s*an?\s+|\s*each\s+)(?P<per>second|sec|minute|min|hour)\b"));
pub(super) static BANDWIDTH: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:[kmgt]i?b(?:it)?s?\s*/\s*(?:s|sec|min|h|day)\b|[kmgt]bps\b|bytes?\s*/\s*(?:s|min)\b|bits?\s*/\s*s\b|bps\b)",
    )
});
pub(super) static PERCENT: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:%|percent\b|per\s*cent\b|pct\b)"));
/// Longest first; a unit must not run on into a letter (checked by [`ends_word`]), and may run
/// on into a digit ("1h30m").
pub(super) const TIME_UNIT: &str = r"(?:nanoseconds?|nsecs?|ns|microseconds?|milliseconds?|millis|msecs?|ms|µs|μs|us|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|wks?)";
pub(super) static TIME: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"^(?P<u>{TIME_UNIT})")));
pub(super) static TIME_MORE: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"^\s*(?:and\s+)?(?P<n>\d+(?:\.\d+)?)\s*(?P<u>{TIME_UNIT})")));

/// Time units in Russian, Korean, Chinese and Japanese (a CJK unit may run on into a particle).
pub(super) static TIME_INTL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:(?P<cyr>миллисекунд\w*|мс|секунд\w*|сек|с|минут\w*|мин|часа|часов|час|ч|дня|дней|день|дн|суток|сутки)|(?P<cjk>밀리초|초|분|시간|일|毫秒|秒鐘|秒钟|秒|分鐘|分钟|分|小時|小时|時間|天|日))",
    )
});

pub(super) fn intl_seconds(u: &str) -> f64 {
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

pub(super) fn ends_word(rest: &str) -> bool {
    !rest.chars().next().is_some_and(char::is_alphabetic)
}
pub(super) static RANGE_JOIN: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*(?:-|–|—|to|and)\s*"));
pub(super) static NINES: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:^|[^\w.])(?P<n>two|three|four|five|2|3|4|5)(?P<half>\s+and\s+a\s+half|\.5)?\s+(?:nines|9s)\b")
});
pub(super) static SHARE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*of\s+(?:(?:all|the|our|its|their|incoming|user|customer|api|http)\s+)*(?:requests|calls|responses|queries|transactions|operations|reads|writes|searches|page\s+loads|users|sessions|messages|checkouts|orders|logins|uploads|hits)\b",
    )
});
pub(super) static SUFFIX: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*(?:or\s+(?P<le>less|lower|fewer|below|under|faster|shorter|sooner)\b|or\s+(?P<ge>more|higher|greater|above|over)\b|(?P<max>max(?:imum)?|at\s+most)\b|(?P<min>minimum|at\s+least)\b|or\s+better\b)",
    )
});

pub(super) fn is_word_byte(b: u8) -> bool {
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
pub(super) fn per_second(per: &str) -> f64 {
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
pub(super) fn number(text: &str, i: usize) -> (f64, usize) {
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
pub(super) fn unit(text: &str, end: usize, load_sentence: bool) -> Option<(Class, f64, usize)> {
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

pub(super) static PAREN_UNIT: LazyLock<Regex> = LazyLock::new(|| re(r"\(\s*(?P<u>[^()]{1,20}?)\s*\)"));

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
