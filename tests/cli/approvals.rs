//! Approvals that mean exactly what was seen: bound to the digest a person reviewed (refused
//! when another preview was recorded meanwhile; shown and confirmed on a terminal), nothing
//! hidden by control characters, a rejection that sticks, identities the backend vouches for
//! (the OS user locally, the AWS caller on S3: `--as` only adds a display name), and approval
//! policies: distinct approvers, not the author alone, enforced on moto's S3 with two IAM users.

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::state::{bucket, on};
use crate::support::{me, moto_url, step_field, Project};
use flow::exit::{BAD_PLAN, OK, REFUSED, USAGE, WAITING_APPROVAL};

const SPEC: &str = "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n";

fn command_runbook(p: &Project, run: &str) {
    p.write("specs/drill.md", SPEC);
    p.flow(&["plan", "specs/drill.md"]).expect(OK);
    p.edit_steps(
        "drill",
        &format!(
            r#"
            [[steps]]
            id = "deploy"
            kind = "command"
            gate = true
            covers = ["recovery-1", "recovery-2"]
            params = {{ run = "{run}" }}
            "#
        ),
    );
}

fn events(p: &Project) -> Vec<Value> {
    let r = p.flow(&["log", "--json"]);
    r.expect(OK);
    r.json()["events"].as_array().unwrap().clone()
}

/// Run flow on a pseudo-terminal, answer `answer` at its `[y/N]` prompt; everything it wrote.
fn on_a_terminal(p: &Project, args: &[&str], answer: &str) -> (i32, String) {
    let size = nix::pty::Winsize { ws_row: 40, ws_col: 200, ws_xpixel: 0, ws_ypixel: 0 };
    let pty = nix::pty::openpty(Some(&size), None).expect("a pseudo-terminal");
    let fd = |f: &std::os::fd::OwnedFd| Stdio::from(f.try_clone().unwrap());
    let mut child = p.cmd(args).stdin(fd(&pty.slave)).stdout(fd(&pty.slave)).stderr(fd(&pty.slave)).spawn().unwrap();
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let (mut out, mut buf, mut answered) = (Vec::new(), [0u8; 4096], false);
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if !answered && String::from_utf8_lossy(&out).contains("[y/N]") {
            master.write_all(format!("{answer}\n").as_bytes()).unwrap();
            answered = true;
        }
    }
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&out).into_owned())
}

/// The reviewer reads `flow status` (digest D1); meanwhile the workflow file is edited and
/// another `flow run` records a new preview (D2). Approving D1 is refused, naming D2; D2 is
/// approved after it is read; without a digest, a terminal shows it and asks, and off a
/// terminal the digest is required.
#[test]
fn an_approval_binds_to_the_preview_that_was_read() {
    let p = Project::new();
    command_runbook(&p, "echo deploy v1.2.3");
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let read = p.digest_of(&["deploy"]);
    let status = p.flow(&["status"]).stdout;
    assert!(status.contains(&format!("-> flow approve deploy --digest {read}")), "{status}");
    // Meanwhile: the file is edited and a CI job's `flow run` records the new preview.
    let wf = p.read("workflows/drill.toml").replace("echo deploy v1.2.3", "echo DROP-DATABASE > dropped.txt");
    p.write("workflows/drill.toml", wf);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let now = p.digest_of(&["deploy"]);
    assert_ne!(read, now);
    let r = p.flow(&["approve", "deploy", "--digest", &read]);
    assert_eq!(r.code, REFUSED, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("the preview recorded now ({now}) is not the one you reviewed ({read})")),
        "{}",
        r.stderr
    );
    assert!(!events(&p).iter().any(|e| e["event"] == "approved"), "nothing was approved");
    // Off a terminal, no digest: refused, saying how.
    let r = p.flow(&["approve", "deploy"]);
    assert_eq!(r.code, USAGE, "{}", r.stderr);
    assert!(r.stderr.contains("needs the digest of the preview you reviewed"), "{}", r.stderr);
    // On a terminal: it shows what it would approve; "n" approves nothing, "y" approves that.
    let (code, shown) = on_a_terminal(&p, &["approve", "deploy"], "n");
    assert_eq!(code, REFUSED, "{shown}");
    assert!(shown.contains(&format!("`deploy` will ({now}):")) && shown.contains("DROP-DATABASE"), "{shown}");
    let (code, shown) = on_a_terminal(&p, &["approve", "deploy", "--comment", "read it"], "y");
    assert_eq!(code, OK, "{shown}");
    let approved = events(&p).into_iter().find(|e| e["event"] == "approved").unwrap();
    let shown = approved["shown"].as_str().unwrap();
    assert!(shown.starts_with(&now) && shown.ends_with(", shown on a terminal and confirmed"), "{shown}");
    assert!(approved["artifact_digest"].as_str().unwrap().contains(&now));
}

#[test]
fn text_that_hides_itself_is_shown_and_refused() {
    let p = Project::new();
    // In a workflow file: refused by the validator, naming the field.
    command_runbook(&p, "rm -rf /tmp/x #\\u001b[1K\\r      $ echo hello-world");
    let r = p.flow(&["run"]);
    assert_eq!(r.code, BAD_PLAN, "{}", r.stderr);
    assert!(
        r.stderr.contains("step `deploy`: param `run` holds a control character (\\e at character 16)"),
        "{}",
        r.stderr
    );
    // From a command's output, a spec line: shown escaped in status, log, spec and plan.
    command_runbook(&p, "printf 'ok\\\\033[2J\\\\033]0;pwned\\\\007' >&2; exit 1");
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["deploy"]).expect(OK);
    let run = p.flow(&["run"]);
    assert!(!run.stderr.contains('\u{1b}') && !run.stdout.contains('\u{1b}'), "{}", run.stderr);
    for out in [p.flow(&["status"]).stdout, p.flow(&["log"]).stdout] {
        assert!(out.contains("ok\\e[2J\\e]0;pwned\\x07"), "{out}");
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out}");
    }
    p.write("specs/rtl.md", "# Recovery\n\n- RTO 2 hours \u{202e}sruoh 4\u{202c}\n- RPO 10 minutes\n");
    for cmd in [vec!["spec", "specs/rtl.md"], vec!["plan", "specs/rtl.md"]] {
        let out = p.flow(&cmd).stdout;
        assert!(out.contains("<U+202E>sruoh 4<U+202C>") && !out.contains('\u{202e}'), "{out}");
    }
    p.flow(&["report", "-r", "drill", "-o", "r.html"]).expect(OK);
    assert!(!p.read("r.html").contains('\u{1b}'), "the report shows them escaped too");
}

/// approve (alice), reject (bob: wrong database), retry: the step does not run on alice's
/// approval; it is shown again and needs a new one.
#[test]
fn a_rejection_sticks() {
    let p = Project::new();
    command_runbook(&p, "echo ran >> ran.txt");
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["deploy", "--as", "alice"]).expect(OK);
    // Approving again names who approved and when, instead of asking for it once more.
    let again = p.approve(&["deploy"]);
    assert_eq!(again.code, REFUSED, "{}", again.stderr);
    let said = regex::Regex::new(
        r"step `deploy` is already approved by \S+ \(as alice\)|step `deploy` is already approved by \S+ at \d{4}-",
    )
    .unwrap();
    assert!(said.is_match(&again.stderr), "{}", again.stderr);
    p.flow(&["reject", "deploy", "--as", "bob", "--reason", "wrong database: do not run"]).expect(OK);
    let r = p.flow(&["retry", "deploy", "--as", "carl"]);
    r.expect(OK);
    assert!(r.stdout.contains("from its preview: it needs a new approval"), "{}", r.stdout);
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    assert!(!p.path("ran.txt").exists(), "the rejected step did not run on the earlier approval");
    let s = p.status();
    assert_eq!(step_field(&s, "deploy", "state"), "waiting_approval");
    assert!(step_field(&s, "deploy", "approval_void").contains("rejected by"), "{s}");
    p.approve(&["deploy"]).expect(OK);
    p.flow(&["run"]).expect(OK);
    assert_eq!(p.read("ran.txt"), "ran\n");
}

/// Locally the actor is the OS user: `--as` adds a display name beside it, and cannot replace it.
#[test]
fn as_is_a_display_name_not_an_identity() {
    let p = Project::new();
    command_runbook(&p, "true");
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["deploy", "--as", "alice"]).expect(OK);
    let approved = events(&p).into_iter().find(|e| e["event"] == "approved").unwrap();
    let me = me();
    assert_eq!((approved["actor"].as_str(), approved["by"].as_str()), (Some(me.as_str()), Some(me.as_str())));
    assert_eq!(approved["as"], "alice");
    let log = p.flow(&["log"]).stdout;
    assert!(log.contains(&format!("approved by {me} (as alice)")), "{log}");
    let status = p.flow(&["status"]).stdout;
    assert!(status.contains(&format!("approved by {me} (as alice) at")), "{status}");
}

static USERS: AtomicUsize = AtomicUsize::new(0);

/// An IAM user in moto with an access key: (its ARN, key id, secret).
fn iam_user(name: &str) -> (String, String, String) {
    let name = format!("{name}-{}-{}", std::process::id(), USERS.fetch_add(1, Ordering::SeqCst));
    let python = std::env::var("FLOW_TEST_PYTHON").expect("FLOW_TEST_PYTHON: run the tests with scripts/test");
    let script = r#"
import boto3, json, sys
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
u = iam.create_user(UserName=sys.argv[2])["User"]
k = iam.create_access_key(UserName=sys.argv[2])["AccessKey"]
print(json.dumps([u["Arn"], k["AccessKeyId"], k["SecretAccessKey"]]))
"#;
    let out = std::process::Command::new(python).args(["-c", script, &moto_url(), &name]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    (v[0].clone(), v[1].clone(), v[2].clone())
}

/// A working directory on the bucket acting as an IAM user.
fn as_user(b: &str, user: &(String, String, String)) -> Project {
    let p = on(b, &moto_url());
    p.env("AWS_ACCESS_KEY_ID", &user.1).env("AWS_SECRET_ACCESS_KEY", &user.2);
    p
}

const TWO_PERSON: &str = "[[approval]]\nkinds = [\"command\"]\nmin_approvers = 2\nnot_author = true\n";

/// On shared state the actor is the AWS caller: a second approval by the same identity does
/// not count twice, `--as` cannot pass one identity off as another, and a two-person change
/// runs once two identities approved it.
#[test]
fn two_people_approve_on_shared_state() {
    let b = bucket();
    let author = on(&b, &moto_url());
    let (alice, bob) = (iam_user("alice"), iam_user("bob"));
    let (a, o) = (as_user(&b, &alice), as_user(&b, &bob));
    for p in [&author, &a, &o] {
        p.write("flow.toml", TWO_PERSON);
    }
    command_runbook(&author, "echo once >> ran.txt");
    author.flow(&["run"]).expect(WAITING_APPROVAL);
    let status = author.flow(&["status"]).stdout;
    assert!(status.contains("approval policy: command: 2 distinct approvers; not its author alone"), "{status}");

    // alice approves: partial.
    let r = a.approve(&["deploy"]);
    r.expect(OK);
    assert!(r.stdout.contains("the approval policy still needs 1 more approver (1 of 2)"), "{}", r.stdout);
    author.flow(&["run"]).expect(WAITING_APPROVAL);
    assert!(!author.path("ran.txt").exists());
    // alice again, this time saying she is bob: the same identity, refused.
    let r = a.approve(&["deploy", "--as", "bob"]);
    assert_eq!(r.code, REFUSED, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("{} approved `deploy` already", alice.0)), "{}", r.stderr);
    // bob approves: two identities; it runs, once.
    o.approve(&["deploy", "--comment", "second pair of eyes"]).expect(OK);
    author.flow(&["run"]).expect(OK);
    assert_eq!(author.read("ran.txt"), "once\n");
    let evs = events(&author);
    let approvers: Vec<&str> =
        evs.iter().filter(|e| e["event"] == "approved").map(|e| e["actor"].as_str().unwrap()).collect();
    assert_eq!(approvers, [alice.0.as_str(), bob.0.as_str()]);
    assert!(evs.iter().any(|e| e["event"] == "policy_recorded"), "the policy in force is journaled");
}

/// Whoever planned or last recorded a step cannot be its only approver; a stricter policy
/// applies to a step approved under a looser one before its effect.
#[test]
fn the_author_cannot_approve_alone_and_a_stricter_policy_applies_at_once() {
    let b = bucket();
    let author = on(&b, &moto_url());
    let alice = iam_user("alice");
    let a = as_user(&b, &alice);
    let rule = "[[approval]]\nkinds = [\"command\"]\nnot_author = true\n";
    author.write("flow.toml", rule);
    a.write("flow.toml", rule);
    command_runbook(&author, "echo once >> ran.txt");
    author.flow(&["run"]).expect(WAITING_APPROVAL);
    let me = author.status()["you"].as_str().unwrap().to_string();
    assert!(me.starts_with("arn:aws:"), "the identity is the AWS caller: {me}");
    let r = author.approve(&["deploy", "--as", "someone-else"]);
    r.expect(OK);
    assert!(
        r.stdout.contains(&format!("still needs an approver other than {me}, who planned or last edited it")),
        "{}",
        r.stdout
    );
    author.flow(&["run"]).expect(WAITING_APPROVAL);
    assert!(!author.path("ran.txt").exists(), "the author alone is not enough");
    a.approve(&["deploy"]).expect(OK);

    // Before it runs, the policy gets stricter: two approvers and one of them the release lead.
    let stricter =
        format!("{rule}min_approvers = 2\n[[approval]]\nkinds = [\"command\"]\nrequire = [\"*:user/lead-*\"]\n");
    author.write("flow.toml", &stricter);
    author.flow(&["run"]).expect(WAITING_APPROVAL);
    assert!(!author.path("ran.txt").exists(), "held back by the stricter policy");
    let s = author.status();
    assert!(step_field(&s, "deploy", "missing").contains("an approval by *:user/lead-*"), "{s}");
    let lead = iam_user("lead");
    let l = as_user(&b, &lead);
    l.write("flow.toml", &stricter);
    l.approve(&["deploy"]).expect(OK);
    author.flow(&["run"]).expect(OK);
    assert_eq!(author.read("ran.txt"), "once\n");
}
