//! Pass 1 of [`super::parse`], the Markdown walk: pulldown-cmark's events -> [`Walked`], the units of text that
//! may hold requirements (a list item, a paragraph, a heading that states a figure, a table
//! row's cells, a k6 threshold), each with where every piece of it came from, the headings it
//! sits under, the label of its parent list item and its table header; the context (front
//! matter, a context section, a context table); and the figures in code and HTML, unread.
//!
//! The walk is a [`Walker`] fed one event at a time; what it keeps between events is split by
//! what it follows: [`Headings`], [`Lists`] (and the paragraph or item being collected) and
//! [`Table`].

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::lines::Lines;
use super::*;
use crate::domain::quantity::{self, Class};

/// What the walk gives the reading pass.
#[derive(Default)]
pub(crate) struct Walked {
    pub(crate) units: Vec<Unit>,
    pub(crate) context: Context,
    pub(crate) unread: Vec<Unread>,
}

/// Walk `text` (Markdown with tables and YAML front matter).
pub(crate) fn walk(text: &str, lines: &Lines) -> Walked {
    let opts = Options::ENABLE_TABLES | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    // The document's title: a first heading that is its only H1 names no scope.
    let h1s = Parser::new_ext(text, opts)
        .filter(|e| matches!(e, Event::Start(Tag::Heading { level: HeadingLevel::H1, .. })))
        .count();
    let first_is_h1 = Parser::new_ext(text, opts)
        .find(|e| matches!(e, Event::Start(Tag::Heading { .. })))
        .is_some_and(|e| matches!(e, Event::Start(Tag::Heading { level: HeadingLevel::H1, .. })));
    let mut w = Walker {
        lines,
        out: Walked::default(),
        headings: Headings { titled: first_is_h1 && h1s == 1, ..Headings::default() },
        lists: Lists::default(),
        table: Table::default(),
        in_metadata: false,
        in_code: false,
    };
    for (ev, range) in Parser::new_ext(text, opts).into_offset_iter() {
        w.event(ev, range.start);
    }
    w.flush();
    w.out
}

/// The headings above the text being walked.
#[derive(Default)]
struct Headings {
    /// The nearest heading's text (units take it for their ids).
    current: String,
    /// The heading being collected, as text and with its sources.
    collecting: Option<(String, Text)>,
    /// The open headings: level, text, and what each gives what is under it.
    open: Vec<(HeadingLevel, String, Ctx)>,
    /// The document has a title (its first heading is its only H1), not yet passed.
    titled: bool,
    seen: bool,
    /// A `Requirement N` heading's number and level, while under it.
    kiro: Option<(String, HeadingLevel)>,
    /// Under a context heading ("Context", "Environment"): key-value lines, not targets.
    in_context: bool,
}

/// The lists being walked and the paragraph or item being collected.
#[derive(Default)]
struct Lists {
    open: Vec<OpenList>,
    item_depth: usize,
    /// The text being collected, and its `Requirement N` number and position.
    cur: Option<(Text, Option<(String, u64)>)>,
    /// A short paragraph ending in a colon ("Results:", "Targets for checkout:") leads the
    /// list that follows it.
    lead: Option<Ctx>,
}

/// The table being walked.
#[derive(Default)]
struct Table {
    in_head: bool,
    header: Vec<(String, usize)>,
    cols: Vec<Col>,
    row: Vec<(String, usize)>,
    row_line: usize,
    cell: Option<(String, usize)>,
    /// The cell being read has text that is not code.
    cell_prose: bool,
}

struct Walker<'a> {
    lines: &'a Lines<'a>,
    out: Walked,
    headings: Headings,
    lists: Lists,
    table: Table,
    in_metadata: bool,
    in_code: bool,
}

impl Walker<'_> {
    fn event(&mut self, ev: Event<'_>, at: usize) {
        let is_text = matches!(ev, Event::Text(_));
        match ev {
            Event::Start(Tag::MetadataBlock(_)) => self.in_metadata = true,
            Event::End(TagEnd::MetadataBlock(_)) => self.in_metadata = false,
            Event::Text(t) if self.in_metadata => {
                for l in t.lines() {
                    if let Some(c) = KEY_VALUE.captures(l) {
                        self.out.context.insert(context_key(&c["k"]), strip_value(&c["v"]));
                    }
                }
            }
            Event::Start(Tag::Heading { .. }) => {
                self.flush();
                self.headings.collecting = Some((String::new(), Text::default()));
            }
            Event::End(TagEnd::Heading(level)) => self.heading(level),
            Event::Start(Tag::List(start)) => self.list(start),
            Event::End(TagEnd::List(_)) => {
                self.lists.open.pop();
            }
            Event::Start(Tag::Item) => self.item(),
            Event::End(TagEnd::Item) => {
                self.flush();
                self.lists.item_depth = self.lists.item_depth.saturating_sub(1);
            }
            Event::Start(Tag::Paragraph) if self.lists.item_depth == 0 => {
                self.flush();
                self.lists.lead = None;
                self.lists.cur = Some((Text::default(), None));
            }
            Event::End(TagEnd::Paragraph) => self.paragraph_end(),
            Event::Start(Tag::Table(_)) => {
                self.flush();
                self.lists.lead = None;
                self.table.header.clear();
                self.table.cols.clear();
            }
            Event::Start(Tag::TableHead) => {
                self.table.in_head = true;
                self.table.row.clear();
            }
            Event::End(TagEnd::TableHead) => self.table_head_end(),
            Event::Start(Tag::TableRow) => {
                self.table.row.clear();
                self.table.row_line = self.lines.line_of(at);
            }
            Event::Start(Tag::TableCell) => {
                self.table.cell = Some((String::new(), at));
                self.table.cell_prose = false;
            }
            Event::End(TagEnd::TableCell) => self.cell_end(at),
            Event::End(TagEnd::TableRow) => self.row_end(),
            Event::Start(Tag::CodeBlock(_)) => {
                self.flush();
                self.lists.lead = None;
                self.in_code = true;
            }
            Event::End(TagEnd::CodeBlock) => self.in_code = false,
            Event::Text(t) if self.in_code => self.code(&t, at),
            Event::Html(t) | Event::InlineHtml(t) => self.not_prose(&t, at, IN_HTML),
            Event::Text(t) | Event::Code(t) => self.text(t, at, is_text),
            Event::SoftBreak | Event::HardBreak => {
                if let Some((s, _)) = self.lists.cur.as_mut() {
                    s.space();
                }
            }
            _ => {}
        }
    }

    /// What the open lists and headings give the text here. Nearest first: labels add up, the
    /// nearest scope and the nearest word on targets win.
    fn ctx(&self) -> Ctx {
        let mut out = Ctx::default();
        let lists = self.lists.open.iter().rev().map(|l| &l.2);
        for c in lists.chain(self.headings.open.iter().rev().map(|h| &h.2)) {
            out.labels.extend(c.labels.iter().cloned());
            out.scope = out.scope.take().or_else(|| c.scope.clone());
            if out.say == Say::Nothing {
                out.say = c.say.clone();
            }
        }
        out
    }

    /// The text being collected, as a unit (when it has any).
    fn flush(&mut self) {
        if let Some((t, kiro)) = self.lists.cur.take() {
            if !t.text.trim().is_empty() {
                let unit = Unit::prose(t, self.headings.current.clone(), self.headings.in_context, self.ctx());
                self.out.units.push(Unit { kiro, ..unit });
            }
        }
    }

    fn not_prose(&mut self, text: &str, at: usize, why: &str) {
        not_prose(text, at, why, self.lines, &mut self.out.unread);
    }

    fn heading(&mut self, level: HeadingLevel) {
        let (collected, heading_text) = self.headings.collecting.take().unwrap_or_default();
        let h = &mut self.headings;
        h.current = collected.trim().to_string();
        let heading = h.current.clone();
        h.in_context = is_context_heading(&heading);
        let in_context = h.in_context;
        if let Some(c) = KIRO_HEADING.captures(&heading) {
            h.kiro = Some((c["n"].to_string(), level));
        } else if h.kiro.as_ref().is_some_and(|(_, l)| level <= *l) {
            h.kiro = None;
        }
        let title = !h.seen && h.titled;
        h.seen = true;
        h.open.retain(|(l, ..)| *l < level);
        // A heading that states a target ("## RTO: 4 hours") is read as one; it labels nothing
        // under it.
        let states = !in_context && quantity::figures(&heading, true).iter().any(|f| f.class != Class::Bare);
        self.lists.lead = None;
        if states {
            let parent = self.headings.open.last().map(|h| h.1.clone()).unwrap_or_default();
            let unit = Unit::prose(heading_text, parent, in_context, self.ctx());
            self.out.units.push(Unit { heading_unit: true, ..unit });
            // It still names what is under it ("Baseline — 1,000 TPS").
            let scope = if title { None } else { scope_of(&heading) };
            let ctx = Ctx { say: say_of(&heading), scope, ..Ctx::default() };
            self.headings.open.push((level, heading, ctx));
        } else {
            // "Requirement 3: Stress test with 20 users": the title after the number scopes.
            let named = KIRO_HEADING
                .find(&heading)
                .map_or(heading.as_str(), |m| heading[m.end()..].trim_start_matches([':', '.', ' ', '-', '–', '—']));
            let scope = if title || in_context { None } else { scope_of(named) };
            let ctx = Ctx { scope, ..ctx_of(&heading) };
            self.headings.open.push((level, heading, ctx));
        }
    }

    fn list(&mut self, start: Option<u64>) {
        // The item this list is nested in labels its items ("- Latency (p99):").
        let l = &mut self.lists;
        let ctx = match l.cur.as_ref() {
            Some((t, _)) if l.item_depth > 0 => ctx_of(t.text.trim().trim_end_matches(':')),
            _ if l.item_depth == 0 => l.lead.take().unwrap_or_default(),
            _ => Ctx::default(),
        };
        self.flush();
        self.lists.open.push((start, 0, ctx));
    }

    fn item(&mut self) {
        self.flush();
        let l = &mut self.lists;
        l.item_depth += 1;
        // In an ordered list under `Requirement N`, the item's position makes its id.
        let kiro = match (l.open.last_mut(), &self.headings.kiro) {
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
        l.cur = Some((Text::default(), kiro));
    }

    fn paragraph_end(&mut self) {
        if self.lists.item_depth > 0 {
            if let Some((t, _)) = self.lists.cur.as_mut() {
                t.space();
            }
            return;
        }
        let t = self.lists.cur.as_ref().map(|(t, _)| t.text.trim().to_string()).unwrap_or_default();
        // "Targets:", or a short line naming a kind ("Latency (p95)") above a list.
        let named = t.split_whitespace().count() <= 6
            && !t.ends_with(['.', '!', '?'])
            && !context_labels(&t).is_empty()
            && !quantity::figures(&t, true).iter().any(|f| f.class != Class::Bare);
        self.lists.lead = ((t.ends_with(':') && t.split_whitespace().count() <= 12) || named)
            .then(|| ctx_of(t.trim_end_matches(':')));
        self.flush();
    }

    fn table_head_end(&mut self) {
        let t = &mut self.table;
        t.in_head = false;
        t.header = std::mem::take(&mut t.row);
        t.cols = t.header.iter().map(|(h, _)| classify(h)).collect();
        for (h, at) in t.header.clone() {
            self.not_prose(&h, at, "in a table header, which names a column");
        }
    }

    fn cell_end(&mut self, at: usize) {
        if let Some((c, cell_at)) = self.table.cell.take() {
            // A target cell that is only code (a k6 threshold expression) is not read; a name
            // in code (`checkout`) still names its row.
            let t = &self.table;
            let name_col = matches!(t.cols.get(t.row.len()), Some(Col::Id | Col::Scope | Col::Metric));
            if t.cell_prose || t.in_head || name_col {
                self.table.row.push((c.trim().to_string(), cell_at));
            } else {
                self.not_prose(&c, cell_at, IN_CODE);
                self.table.row.push((String::new(), cell_at));
            }
        }
        if self.table.in_head {
            self.table.row_line = self.lines.line_of(at);
        }
    }

    fn row_end(&mut self) {
        let ctx = self.ctx();
        let t = &self.table;
        table_row(TableRow {
            header: &t.header,
            cols: &t.cols,
            row: &t.row,
            line: t.row_line,
            in_context: self.headings.in_context,
            heading: &self.headings.current,
            ctx,
            source: &self.lines.source(t.row_line),
            context: &mut self.out.context,
            units: &mut self.out.units,
            unread: &mut self.out.unread,
        });
        self.table.row.clear();
    }

    /// A code block's text: its k6 thresholds ("✓ http_req_duration...: p(99)<200",
    /// "http_req_failed: ['rate<0.01']") are pass criteria in any section but an example or
    /// an alert; its other figures are unread.
    fn code(&mut self, t: &str, at: usize) {
        let mut code = t.to_string();
        for th in &k6_thresholds(t) {
            let mut ctx = self.ctx();
            let results = matches!(&ctx.say, Say::NotTargets(why) if why.contains("measured results"));
            if results || ctx.say == Say::Nothing {
                ctx.say = Say::Targets;
            }
            if let Some(tag) = &th.tag {
                ctx.scope = Some(tag.clone());
            }
            let mut text = Text::default();
            for w in th.prose.split(' ') {
                text.push(w, at + th.at);
                text.space();
            }
            let unit = Unit::prose(text, self.headings.current.clone(), self.headings.in_context, ctx);
            self.out.units.push(Unit { cell: true, ..unit });
            code.replace_range(th.at..th.end, &" ".repeat(th.end - th.at));
        }
        self.not_prose(&code, at, IN_CODE)
    }

    /// Text or inline code: to the heading, the table cell or the item being collected.
    fn text(&mut self, t: CowStr<'_>, at: usize, is_text: bool) {
        if let Some((h, text)) = self.headings.collecting.as_mut() {
            h.push_str(&t);
            text.push(&t, at);
        } else if let Some((c, _)) = self.table.cell.as_mut() {
            c.push_str(&t);
            self.table.cell_prose |= is_text && !t.trim().is_empty();
        } else if let Some((s, _)) = self.lists.cur.as_mut() {
            s.push(&t, at);
        }
    }
}
