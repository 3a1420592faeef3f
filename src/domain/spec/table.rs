//! Tables: what a column means ([`Col`], from its header), a table's rows read as units.

use super::*;
use crate::domain::quantity::{self, Class};
use crate::domain::reading::{self, Label};
use crate::domain::requirement::Op;

/// Text being collected, with where each piece came from.
#[derive(Debug, Default, Clone)]
pub(crate) struct Text {
    pub(crate) text: String,
    /// (offset in `text`, offset in the source) at the start of each piece.
    pub(crate) anchors: Vec<(usize, usize)>,
}

impl Text {
    pub(crate) fn push(&mut self, piece: &str, src: usize) {
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

    pub(crate) fn space(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with(' ') {
            self.text.push(' ');
        }
    }

    /// The source offset of a text offset.
    pub(crate) fn src(&self, pos: usize) -> usize {
        let i = self.anchors.partition_point(|a| a.0 <= pos);
        match i.checked_sub(1).and_then(|i| self.anchors.get(i)) {
            Some(&(t, s)) => s + (pos - t),
            None => self.anchors.first().map_or(0, |a| a.1),
        }
    }
}

/// A piece of text that may hold requirements.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    pub(crate) text: Text,
    /// The heading it sits under (for ids).
    pub(crate) heading: String,
    /// `Requirement N` heading number, and the item's 1-based position in an ordered list.
    pub(crate) kiro: Option<(String, u64)>,
    /// An id given in a table's ID column.
    pub(crate) table_id: Option<String>,
    pub(crate) in_context: bool,
    /// Labels from the table column, parent item and headings, nearest first.
    pub(crate) labels: Vec<Label>,
    /// A scope from the table row, parent item or heading.
    pub(crate) scope: Option<String>,
    /// What the nearest heading, parent item or table that says anything says of its figures.
    pub(crate) say: Say,
    pub(crate) bare_unit: Option<(Class, f64)>,
    pub(crate) op: Option<Op>,
    /// A table cell: one phrase, not sentences; no colon label.
    pub(crate) cell: bool,
    /// A heading that states a figure ("## Scaling to 20k RPS").
    pub(crate) heading_unit: bool,
    /// The row's window column says days or weeks.
    pub(crate) long_window: bool,
    /// A table column names the kind of the figure.
    pub(crate) column: bool,
    /// How a table cell's requirement is shown.
    pub(crate) shown: Option<String>,
}

impl Unit {
    /// A paragraph, list item or heading: sentences, under `heading`.
    pub(crate) fn prose(text: Text, heading: String, in_context: bool, ctx: Ctx) -> Unit {
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
pub(crate) enum Col {
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
pub(crate) fn describes(header: &str) -> bool {
    words(header).iter().any(|w| ["description", "what", "details", "definition", "meaning"].contains(&w.as_str()))
}

pub(crate) fn words(h: &str) -> Vec<String> {
    quantity::tokens(&h.to_lowercase()).into_iter().map(|t| t.text).collect()
}

pub(crate) fn classify(header: &str) -> Col {
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
pub(crate) fn lookalike_table(header: &[(String, usize)]) -> Option<&'static str> {
    let any = |set: &[&str]| header.iter().any(|(h, _)| words(h).iter().any(|w| set.contains(&w.as_str())));
    if any(&["credit", "credits", "refund", "refunds", "penalty", "price", "cost", "compensation", "discount"]) {
        Some("service credits or compensation")
    } else if any(&["impact"]) && !any(&["rto", "rpo", "target", "objective"]) {
        Some("business impact")
    } else {
        None
    }
}

/// One table row, with its header and where it stands.
pub(crate) struct TableRow<'a> {
    pub(crate) header: &'a [(String, usize)],
    pub(crate) cols: &'a [Col],
    pub(crate) row: &'a [(String, usize)],
    pub(crate) line: usize,
    pub(crate) in_context: bool,
    pub(crate) heading: &'a str,
    pub(crate) ctx: Ctx,
    pub(crate) source: &'a str,
    pub(crate) context: &'a mut Context,
    pub(crate) units: &'a mut Vec<Unit>,
    pub(crate) unread: &'a mut Vec<Unread>,
}

pub(crate) fn table_row(t: TableRow<'_>) {
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
