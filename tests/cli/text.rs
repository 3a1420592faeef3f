//! What people read, pinned: the text of `flow plan`, `flow run` and `flow status` for the
//! shipped launch spec, as insta snapshots (`tests/cli/snapshots/`) with the temp dir and the
//! times redacted, and the Markdown report section by section. A change to this output shows up
//! as a snapshot diff to review.

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
    let text = me.replace_all(&time.replace_all(&text, "[time]"), "[user]").into_owned();
    // The journal names the host and the process that ran.
    let host = regex::Regex::new(r"(\[user\](?: \(as \w+\))?)@[A-Za-z0-9._-]+").unwrap();
    let pid = regex::Regex::new(r"\bpid \d+").unwrap();
    pid.replace_all(&host.replace_all(&text, "$1@[host]"), "pid [pid]").into_owned()
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

    // The report a board reads, a snapshot per section of its Markdown form.
    let report = p.flow(&["report", "--format", "md", "-o", "-"]);
    report.expect(OK);
    let md = redacted(&p, &report.stdout);
    let sections: Vec<&str> = md.split("\n## ").collect();
    let names: Vec<&str> = sections[1..].iter().map(|s| s.lines().next().unwrap_or("")).collect();
    assert_eq!(names, ["Requirements", "The plan", "Steps", "Journal"], "{md}");
    insta::assert_snapshot!("report-md-head", sections[0]);
    for (name, section) in names.iter().zip(&sections[1..]) {
        let name = format!("report-md-{}", name.to_lowercase().replace(' ', "-"));
        insta::assert_snapshot!(name, format!("## {section}"));
    }
}

#[test]
fn completions_complete_a_command_in_a_real_bash() {
    let p = Project::new();
    let r = p.flow(&["completions", "bash"]);
    r.expect(OK);
    p.write("flow.bash", &r.stdout);
    let complete = |words: &str, cword: usize, cur: &str, prev: &str| {
        let script = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; _flow flow '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            p.path("flow.bash").display()
        );
        let out = std::process::Command::new("bash").args(["--norc", "-c", &script]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(complete("flow appr", 1, "appr", "flow"), "approve\n");
    let drills = complete("flow drill ''", 2, "", "drill");
    assert!(drills.lines().any(|l| l == "failover") && drills.lines().any(|l| l == "restore"), "{drills}");
    // An unknown shell is a usage error naming the ones there are.
    let bad = p.flow(&["completions", "tcsh"]);
    bad.expect(flow::exit::USAGE);
    assert!(bad.stderr.contains("bash") && bad.stderr.contains("zsh"), "{}", bad.stderr);
}

#[test]
fn the_man_pages_are_roff_with_every_command() {
    let p = Project::new();
    let help = p.flow(&["--help"]);
    help.expect(OK);
    assert!(help.stdout.contains("\nGlobal options:\n  -C, --directory <DIR>"), "{}", help.stdout);
    assert!(help.stdout.contains("\nExit codes:\n  0    done"), "{}", help.stdout);
    let r = p.flow(&["man"]);
    r.expect(OK);
    assert!(r.stdout.contains(".TH flow 1"), "{}", r.stdout);
    for command in ["plan", "run", "approve", "report", "completions"] {
        assert!(r.stdout.contains(&format!("flow\\-{command}(1)")), "{command}: {}", r.stdout);
    }
    p.flow(&["man", "--dir", "man"]).expect(OK);
    let approve = p.read("man/flow-approve.1");
    assert!(approve.contains(".TH flow-approve 1") && approve.contains("\\-\\-digest"), "{approve}");
    assert!(p.read("man/flow.1").contains(".SH SUBCOMMANDS"));
    // Nothing else was made: no store for a command that needs none.
    assert!(!p.path("state").exists());
}

/// Every help page, pinned: a flag that loses its description or a command its examples shows
/// up as a snapshot diff (`every_argument_has_help_and_every_command_an_example` checks that
/// none is missing).
#[test]
fn every_help_page_is_pinned() {
    let p = Project::new();
    let pages = [
        "",
        "spec",
        "plan",
        "run",
        "loadtest",
        "drill",
        "drill failover",
        "drill restore",
        "drill alarm",
        "assess",
        "report",
        "graph",
        "mcp",
        "status",
        "approve",
        "answer",
        "reject",
        "retry",
        "skip",
        "state export",
        "state import",
        "log",
        "completions",
        "man",
    ];
    for page in pages {
        let mut args: Vec<&str> = page.split_whitespace().collect();
        args.push("--help");
        let r = p.flow(&args);
        r.expect(OK);
        let name = if page.is_empty() { "help".to_string() } else { format!("help-{}", page.replace(' ', "-")) };
        insta::assert_snapshot!(name, redacted(&p, &r.stdout));
    }
}

/// The workflow file edited into something `flow run` refuses: `flow status` says so and why
/// (it was silent), the param of the wrong type is named, and nothing is recorded.
#[test]
fn status_says_why_run_would_refuse_the_workflow_file() {
    let p = Project::new();
    p.with_launch_spec();
    p.flow(&["plan", "specs/launch.md"]).expect(OK);
    let fresh = p.flow(&["status"]);
    fresh.expect(OK);
    assert!(
        fresh.stdout.ends_with(
            "next: `flow run` runs the ready steps and stops at the first gates. No AWS account to try it on? \
             `scripts/demo` (in flow's repository) runs this launch end to end on 127.0.0.1\n"
        ),
        "{}",
        fresh.stdout
    );
    let good = p.read("workflows/launch.toml");
    p.write("workflows/launch.toml", good.replacen("duration_s = 60\n", "duration_s = \"sixty\"\n", 1));
    let st = p.flow(&["status"]);
    st.expect(OK);
    assert!(
        st.stdout.contains("warning: `flow run` will refuse the workflow file until it is fixed")
            && st.stdout.contains("step `baseline-load`: params invalid for kind `loadtest`: `duration_s`: invalid type: string \"sixty\", expected")
            && st.stdout.contains("next: fix workflows/launch.toml as the warning above says, then `flow run`"),
        "{}",
        st.stdout
    );
    let run = p.flow(&["run"]);
    run.expect(flow::exit::BAD_PLAN);
    assert!(run.stderr.contains("`duration_s`: invalid type"), "{}", run.stderr);
    // Broken TOML: the parse error, with its line.
    p.write("workflows/launch.toml", format!("{good}\ngarbage = [\n"));
    let st = p.flow(&["status"]);
    assert!(st.stdout.contains("TOML parse error at line"), "{}", st.stdout);
    // Put back: no warning, and nothing was recorded meanwhile.
    p.write("workflows/launch.toml", &good);
    let st = p.flow(&["status"]);
    assert!(
        !st.stdout.contains("warning") && st.stdout.starts_with("runbook launch (plan version 1,"),
        "{}",
        st.stdout
    );
}
