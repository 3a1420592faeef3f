//! Rendering the launch decision ([`model::Report`], built by `app::report`) for people and for CI: one
//! self-contained HTML file ([`html`]), Markdown with its charts beside it ([`markdown`]),
//! JUnit XML ([`junit`]); the DAG as Mermaid or DOT ([`graph`]); the charts ([`charts`]); journal
//! lines ([`text`]); what runs in AWS, as draw.io, Mermaid or DOT ([`architecture`]). Rendering
//! only: the callers write the files.

pub mod architecture;
pub mod charts;
pub mod graph;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod text;

use model::Report;

/// The formats `flow report` (and the MCP `report` tool) write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Html,
    Md,
    Json,
    Junit,
}

/// The report in `format`: its text, and for Markdown the chart files to write beside it
/// (name, SVG; named after `stem`). `graph` is the plan's DAG as Mermaid (Markdown embeds it).
/// The one place a format is dispatched; text a person reads shows every invisible character
/// that would act (JSON escapes its own).
pub fn render(r: &Report, format: Format, graph: &str, stem: &str) -> (String, Vec<(String, String)>) {
    let (text, files) = match format {
        Format::Json => return (serde_json::to_string_pretty(r).unwrap_or_default() + "\n", vec![]),
        Format::Junit => (junit::render(r), vec![]),
        Format::Html => (html::render(r), vec![]),
        Format::Md => markdown::render(r, graph, stem),
    };
    (crate::domain::human::visible(&text).into_owned(), files)
}
