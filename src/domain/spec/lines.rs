//! The spec's lines: which line a byte offset is on, and a line as it is shown.

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

/// A spec's text by line.
pub(crate) struct Lines<'a> {
    /// The byte offset each line starts at.
    starts: Vec<usize>,
    lines: Vec<&'a str>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(text: &'a str) -> Lines<'a> {
        Lines {
            starts: std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect(),
            lines: text.lines().collect(),
        }
    }

    /// The 1-based line the byte at `offset` is on.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }

    /// Line `line` (1-based) as shown: without its line end, cut to [`EXCERPT`] characters;
    /// empty when there is no such line.
    pub(crate) fn source(&self, line: usize) -> String {
        self.lines.get(line.wrapping_sub(1)).map(|s| excerpt(s.trim_end())).unwrap_or_default()
    }
}
