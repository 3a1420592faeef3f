//! What people read, pinned: the text of `flow plan`, `flow run` and `flow status` for the
//! shipped launch spec, as insta snapshots (`tests/cli/snapshots/`) with the temp dir and the
//! times redacted. A change to this output shows up as a snapshot diff to review.

use crate::fake_aws::FakeAws;
use crate::support::Project;
use flow::exit::{OK, WAITING_APPROVAL};

fn redacted(p: &Project, text: &str) -> String {
    let dir = p.dir.path().display().to_string();
    let text = text.replace(&dir, "[dir]");
    // The fakes listen on a free port.
    let port = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    let text = port.replace_all(&text, "127.0.0.1:[port]").into_owned();
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").unwrap();
    // The actor is the OS user the tests run as.
    let me = regex::Regex::new(&format!(r"\b{}\b", regex::escape(&crate::support::me()))).unwrap();
    me.replace_all(&time.replace_all(&text, "[time]"), "[user]").into_owned()
}

#[test]
fn launch_plan_run_and_status_text() {
    let aws = FakeAws::start();
    let p = Project::new();
    p.with_launch_spec();
    let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/templates");
    p.write("workflows/templates/backup.yaml", std::fs::read(templates.join("backup.yaml")).unwrap());
    p.aws(&aws.url);
    let plan = p.flow(&["plan", "specs/launch.md"]);
    plan.expect(OK);
    insta::assert_snapshot!("plan", redacted(&p, &plan.stdout));

    // AWS played by the fakes: the first gates wait.
    let run = p.flow(&["run"]);
    run.expect(WAITING_APPROVAL);
    insta::assert_snapshot!("run", redacted(&p, &run.stdout));

    let status = p.flow(&["status"]);
    status.expect(OK);
    insta::assert_snapshot!("status-at-the-gate", redacted(&p, &status.stdout));

    p.approve(&["baseline-load", "--as", "ana", "--comment", "go"]).expect(OK);
    let status = p.flow(&["status"]);
    status.expect(OK);
    insta::assert_snapshot!("status-approved", redacted(&p, &status.stdout));
}
