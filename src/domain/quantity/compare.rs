//! Comparisons as written: the text as tokens, the comparison phrase before a figure
//! ("no more than", "at least", "<="), and negation flipping it.

use super::*;
use crate::domain::requirement::Op;

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
