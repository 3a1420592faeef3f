//! Rendering the launch decision ([`crate::app::report::Report`]) for people and for CI: one
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
pub mod text;
