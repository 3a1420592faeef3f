//! The plan's DAG as a picture: Mermaid (pastes into a GitHub comment) or Graphviz DOT. Each
//! step shows its kind and its state as a word (and a colour), gates are marked, and the
//! requirements a step verifies label it.

use crate::domain::lifecycle::State;
use crate::domain::plan::Plan;
use crate::domain::runbook::RunbookView;

/// (fill, text) per state, colour-blind-safe; the state's word is always in the label.
fn colours(s: State) -> (&'static str, &'static str) {
    match s {
        State::Succeeded | State::Skipped => ("#0072b2", "#ffffff"),
        State::Failed | State::Rejected => ("#d55e00", "#ffffff"),
        State::WaitingApproval => ("#f0e442", "#1a1a1a"),
        State::Running | State::Waiting => ("#56b4e9", "#1a1a1a"),
        State::Ready | State::Pending => ("#eeeeee", "#1a1a1a"),
    }
}

fn label(plan: &Plan, view: &RunbookView, i: usize) -> (String, State) {
    let s = &plan.steps[i];
    let state = view.state(s);
    let gate = if s.gated() { " [gate]" } else { "" };
    let covers = if s.covers.is_empty() { String::new() } else { format!("\\nverifies {}", s.covers.join(", ")) };
    (format!("{}{gate}\\n{} · {}{covers}", s.id, s.kind, state), state)
}

/// How the plan's DAG is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mermaid,
    Dot,
}

/// The DAG in `kind`.
pub fn draw(kind: Kind, plan: &Plan, view: &RunbookView) -> String {
    match kind {
        Kind::Mermaid => mermaid(plan, view),
        Kind::Dot => dot(plan, view),
    }
}

pub fn mermaid(plan: &Plan, view: &RunbookView) -> String {
    let mut out = String::from("flowchart TD\n");
    let node = |id: &str| id.replace('-', "_");
    for (i, s) in plan.steps.iter().enumerate() {
        let (text, state) = label(plan, view, i);
        out.push_str(&format!(
            "  {}[\"{}\"]:::{}\n",
            node(&s.id),
            text.replace("\\n", "<br/>").replace('"', "'"),
            state.name()
        ));
    }
    for s in &plan.steps {
        for n in &s.needs {
            out.push_str(&format!("  {} --> {}\n", node(n), node(&s.id)));
        }
    }
    for st in [
        State::Pending,
        State::Ready,
        State::Running,
        State::WaitingApproval,
        State::Waiting,
        State::Succeeded,
        State::Failed,
        State::Skipped,
        State::Rejected,
    ] {
        let (fill, text) = colours(st);
        out.push_str(&format!("  classDef {} fill:{fill},color:{text},stroke:#333\n", st.name()));
    }
    out
}

pub fn dot(plan: &Plan, view: &RunbookView) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];\n",
        plan.runbook
    );
    for (i, s) in plan.steps.iter().enumerate() {
        let (text, state) = label(plan, view, i);
        let (fill, font) = colours(state);
        let border = if s.gated() { ", penwidth=2.5" } else { "" };
        out.push_str(&format!(
            "  \"{}\" [label=\"{}\", fillcolor=\"{fill}\", fontcolor=\"{font}\"{border}];\n",
            s.id,
            text.replace('"', "'")
        ));
    }
    for s in &plan.steps {
        for n in &s.needs {
            out.push_str(&format!("  \"{n}\" -> \"{}\";\n", s.id));
        }
    }
    out.push_str("}\n");
    out
}
