//! What people read, pinned: the text of `flow plan`, `flow run` and `flow status` for the
//! shipped launch spec, as insta snapshots (`tests/cli/snapshots/`) with the temp dir and the
//! times redacted. A change to this output shows up as a snapshot diff to review.

use crate::support::Project;
use flow::exit::{OK, UNSUPPORTED};

fn redacted(p: &Project, text: &str) -> String {
    let dir = p.dir.path().display().to_string();
    let text = text.replace(&dir, "[dir]");
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").unwrap();
    time.replace_all(&text, "[time]").into_owned()
}

#[test]
fn launch_plan_run_and_status_text() {
    let p = Project::new();
    p.with_launch_spec();
    let plan = p.flow(&["plan", "specs/launch.md"]);
    plan.expect(OK);
    insta::assert_snapshot!("plan", redacted(&p, &plan.stdout));

    // No AWS here: the first gates wait, the drills' steps are blocked.
    let run = p.flow(&["run"]);
    run.expect(UNSUPPORTED);
    insta::assert_snapshot!("run", redacted(&p, &run.stdout));

    let status = p.flow(&["status"]);
    status.expect(OK);
    insta::assert_snapshot!("status-at-the-gate", redacted(&p, &status.stdout));

    p.flow(&["approve", "baseline-load", "--as", "ana", "--comment", "go"]).expect(OK);
    let status = p.flow(&["status"]);
    status.expect(OK);
    insta::assert_snapshot!("status-approved", redacted(&p, &status.stdout));
}
