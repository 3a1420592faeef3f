//! `flow status`: where each step stands, what it waits on, and the one command to run next.

use super::*;
use crate::app::status::Status;
use crate::domain::digest;
use crate::domain::lifecycle::{shown_as, State};

pub fn status(st: &Status) -> String {
    let mut out = format!("runbook {} (plan version {}, {})\n", st.runbook, st.version, st.workflow.display());
    if let Some(l) = &st.lease {
        out.push_str(&format!("lease: `flow run` by {l}\n"));
    }
    for rule in &st.policy {
        out.push_str(&format!("approval policy: {rule}\n"));
    }
    if let Some(d) = &st.workflow_edited {
        out.push_str(&format!(
            "note: the workflow file was edited since version {} ({}); `flow run` will validate and record it\n",
            st.version,
            diff(d)
        ));
    }
    if let Some(why) = &st.workflow_invalid {
        out.push_str(&format!(
            "warning: `flow run` will refuse the workflow file until it is fixed (or `flow plan` writes it again); the steps below are plan version {}:\n",
            st.version
        ));
        for line in why.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out.push_str(&format!("\n{:<22} {:<15} {:<17} {}\n", "STEP", "KIND", "STATE", "DETAIL"));
    for s in &st.steps {
        let mut detail = Vec::new();
        if let (Some(b), State::Pending | State::Ready) = (&s.blocked, s.state) {
            detail.push(b.clone());
        }
        if let Some(e) = &s.error {
            detail.push(e.clone());
        }
        if s.state == State::Failed {
            detail.push(next_for_failed(&s.id));
        }
        if let Some(r) = &s.reason {
            detail.push(r.clone());
        }
        if s.state == State::Waiting {
            detail.push(format!(
                "{} (next poll {})",
                s.note.clone().unwrap_or_default(),
                s.next_poll_at.clone().unwrap_or_default()
            ));
        }
        if let Some(a) = &s.approval {
            detail.push(format!("approved by {} at {}", shown_as(&a.by, a.as_name.as_deref()), a.at));
        } else if !s.approvals.is_empty() {
            let by: Vec<String> = s.approvals.iter().map(|a| shown_as(&a.by, a.as_name.as_deref())).collect();
            detail.push(format!("approved so far by {}", by.join(", ")));
        }
        if !s.missing.is_empty() {
            detail.push(format!("still needs {}", s.missing.join("; ")));
        }
        if let Some(flag) = &s.flag {
            detail.push(format!("! {flag}"));
        }
        if let Some(void) = &s.approval_void {
            detail.push(format!("approval void: {void}"));
        }
        if s.state == State::Succeeded && !s.outputs.is_empty() {
            detail.push(outputs(&s.outputs));
        }
        let row = format!("{:<22} {:<15} {:<17} {}", s.id, s.kind, s.state, detail.join("; "));
        out.push_str(row.trim_end());
        out.push('\n');
    }
    let waiting: Vec<_> = st.in_state(State::WaitingApproval).collect();
    if !waiting.is_empty() {
        out.push_str("\nwaiting for approval:\n");
        for s in waiting {
            out.push_str(&format!(
                "  {} ({}), will:\n",
                s.id,
                s.artifact_digest.as_deref().map(digest::short).unwrap_or("")
            ));
            for line in s.will.as_deref().unwrap_or_default().lines() {
                out.push_str(&format!("    {line}\n"));
            }
            let d = s.artifact_digest.as_deref().map(digest::short).unwrap_or("");
            out.push_str(&format!(
                "    -> flow approve {} --digest {d}   |   flow reject {} --reason ...\n",
                s.id, s.id
            ));
        }
    }
    if !st.questions.is_empty() {
        out.push('\n');
        out.push_str(&questions(&st.questions, Some(&st.runbook)));
    }
    out.push_str("\nrequirements:\n");
    for v in &st.requirements {
        let ev: Vec<String> = v.evidence.iter().map(|m| m.describe()).collect();
        let mut note = if v.measurable || !v.evidence.is_empty() { ev.join("; ") } else { v.unmeasured().into() };
        if let Some(why) = &v.why {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(why);
        }
        let row = format!("  {:<10} {:<12} {:<22} {:<18} {}", v.verdict, v.id, v.kind, v.target, note);
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out.push_str(&format!("\nnext: {}\n", next_command(st)));
    out
}

/// What to do next, from where the runbook stands.
fn next_command(st: &Status) -> String {
    let any = |state: State| st.steps.iter().any(|s| s.state == state);
    let started = st.steps.iter().any(|s| !matches!(s.state, State::Pending | State::Ready));
    if st.workflow_invalid.is_some() {
        format!("fix {} as the warning above says, then `flow run`", st.workflow.display())
    } else if !st.questions.is_empty() {
        "settle the questions above with `flow answer`, then `flow plan` again".into()
    } else if any(State::WaitingApproval) {
        "review what each waiting step will do, then `flow approve STEP --digest D` (or `flow reject`); then `flow run`"
            .into()
    } else if any(State::Failed) {
        "`flow retry STEP` after fixing the cause, or `flow skip STEP --reason ...`".into()
    } else if any(State::Waiting) {
        "`flow run --wait` polls what is pending outside until it is done or a gate waits".into()
    } else if !started {
        "`flow run` runs the ready steps and stops at the first gates. No AWS account to try it on? \
         `scripts/demo` (in flow's repository) runs this launch end to end on 127.0.0.1"
            .into()
    } else if st.steps.iter().all(|s| matches!(s.state, State::Succeeded | State::Skipped | State::Rejected)) {
        format!("`flow report` writes the go/no-go decision to {}-report.html", st.runbook)
    } else {
        "`flow run` runs the steps that are ready".into()
    }
}
