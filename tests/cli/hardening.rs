//! Probed as an attacker and as a careless user would: MCP kept inside the project and answering
//! every malformed line, runbooks that cannot collide or wander, commands that do not outlive a
//! killed run unseen, mistyped paths that create nothing, raw HTML and hidden metrics in reports,
//! a spec that is a device.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{state, step_field, Project};
use flow::exit::{BAD_SPEC, FAILED, OK, REFUSED, STATE, WAITING_APPROVAL};

/// `flow mcp` in the project, spoken to line by line.
struct Mcp {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Mcp {
    fn start(p: &Project) -> Mcp {
        let mut child =
            p.cmd(&["mcp"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let mut m = Mcp { child, stdin, lines: BufReader::new(stdout).lines() };
        let init = m.send(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}}})
            .to_string(),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "flow");
        writeln!(m.stdin, "{}", json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).unwrap();
        m
    }

    /// Send one line; the next answer.
    fn send(&mut self, line: &str) -> Value {
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
        let answer = self.lines.next().expect("an answer, not silence").unwrap();
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"))
    }

    fn call(&mut self, id: u64, tool: &str, args: Value) -> Value {
        self.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
                .to_string(),
        )
    }
}

/// Every line that is not a well-formed request gets an answer: parse error, invalid request,
/// invalid params; a 60 MB line too. The server goes on serving after each.
#[test]
fn mcp_answers_every_malformed_line() {
    let p = Project::new();
    let mut m = Mcp::start(&p);
    let code = |v: &Value| v["error"]["code"].as_i64();
    assert_eq!(code(&m.send("{not json")), Some(-32700));
    assert_eq!(code(&m.send(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#)), Some(-32600));
    let old = m.send(r#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#);
    assert_eq!((code(&old), old["id"].as_i64()), (Some(-32600), Some(7)));
    assert_eq!(code(&m.send(r#"{"jsonrpc":"2.0","id":8,"method":42}"#)), Some(-32600));
    assert_eq!(code(&m.send(r#"{"jsonrpc":"2.0","id":9,"method":"tools/list","params":"all"}"#)), Some(-32600));
    let typed = m.call(10, "journal", json!({"last": "ten"}));
    assert_eq!(code(&typed), Some(-32602), "{typed}");
    assert!(typed["error"]["message"].as_str().unwrap().contains("invalid params for tool `journal`"), "{typed}");
    let unknown = m.call(11, "plan", json!({"spec": "specs/x.md", "workflows": "/tmp"}));
    assert_eq!(code(&unknown), Some(-32602), "the workflows argument is gone: {unknown}");
    let huge = format!(r#"{{"jsonrpc":"2.0","id":12,"method":"ping","params":{{"pad":"{}"}}}}"#, "x".repeat(60 << 20));
    let big = m.send(&huge);
    assert_eq!(code(&big), Some(-32600), "{}", big.to_string().chars().take(300).collect::<String>());
    // And it still serves.
    let pong = m.send(r#"{"jsonrpc":"2.0","id":13,"method":"ping"}"#);
    assert_eq!(pong["id"], 13);
    assert!(pong.get("result").is_some(), "{pong}");
    drop(m.stdin);
    let out = m.child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Error(") && !stderr.contains("{ "), "no Debug dumps: {stderr}");
}

/// Paths an MCP client gives stay inside the project, symlinks followed.
#[test]
fn mcp_stays_inside_the_project() {
    let p = Project::new();
    p.write("specs/dr.md", "# Recovery\n\n- RTO 2 hours\n");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("notes.md"), "- RTO 1 hour (secret figure)\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("notes.md"), p.path("specs/link.md")).unwrap();
    let mut m = Mcp::start(&p);
    for (id, path) in [(1, "/etc/passwd".to_string()), (2, "../../etc/passwd".into()), (3, "specs/link.md".into())] {
        let r = m.call(id, "read_spec", json!({"path": path}));
        let text = r["result"]["content"][0]["text"].as_str().unwrap_or_default().to_string();
        assert_eq!(r["result"]["isError"], true, "{path}: {r}");
        assert!(text.contains("is outside the project"), "{path}: {text}");
        assert!(!text.contains("root:") && !text.contains("secret"), "{path}: nothing of it comes back: {text}");
    }
    let r = m.call(4, "plan", json!({"spec": "/etc/hosts"}));
    assert_eq!(r["result"]["isError"], true, "{r}");
    let ok = m.call(5, "read_spec", json!({"path": "specs/dr.md"}));
    assert_eq!(ok["result"]["content"][0]["text"], "specs/dr.md: 1 requirements (1 measurable)");
}

/// Two spec files whose names give the same runbook do not take over each other's history;
/// a name with non-ASCII letters keeps them.
#[test]
fn runbooks_do_not_collide() {
    let p = Project::new();
    p.write("orders/launch.md", "# Recovery\n\n- RTO 2 hours\n");
    p.write("search/launch.md", "# Recovery\n\n- RTO 4 hours\n");
    p.flow(&["plan", "orders/launch.md"]).expect(OK);
    let r = p.flow(&["plan", "search/launch.md"]);
    assert_eq!(r.code, REFUSED, "{}", r.stderr);
    assert!(
        r.stderr.contains("runbook `launch` belongs to orders/launch.md, not search/launch.md")
            && r.stderr.contains("`flow plan search/launch.md --runbook NAME`"),
        "{}",
        r.stderr
    );
    p.flow(&["plan", "search/launch.md", "--runbook", "search-launch"]).expect(OK);
    p.write("specs/Zahlungsübersicht.md", "# Recovery\n\n- RTO 2 hours\n");
    let j = p.flow(&["plan", "specs/Zahlungsübersicht.md", "--json"]).json();
    assert_eq!(j["runbook"], "zahlungsübersicht");
}

/// A copied project runs its own workflow file, not the original's.
#[test]
fn a_copied_project_runs_its_own_workflow() {
    let p = Project::new();
    p.write("specs/dr.md", "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n");
    p.flow(&["plan", "specs/dr.md"]).expect(OK);
    p.edit_steps(
        "dr",
        r#"
        [[steps]]
        id = "restore"
        kind = "command"
        gate = true
        covers = ["recovery-1", "recovery-2"]
        params = { run = "echo original > where.txt" }
        "#,
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    let copy = Project::new();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", p.path("").display()))
        .arg(copy.path(""))
        .status();
    assert!(status.unwrap().success());
    let wf = copy.read("workflows/dr.toml").replace("echo original", "echo copy");
    copy.write("workflows/dr.toml", wf);
    copy.flow(&["run"]).expect(WAITING_APPROVAL);
    let will = step_field(&copy.status(), "restore", "will");
    assert!(will.contains("echo copy > where.txt"), "{will}");
    copy.approve(&["restore"]).expect(OK);
    copy.flow(&["run"]).expect(OK);
    assert_eq!(copy.read("where.txt"), "copy\n");
    assert!(!p.path("where.txt").exists(), "the original was not touched");
}

fn gone(pid: u32) -> bool {
    // A process that died but was not reaped yet is a zombie: gone all the same.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.contains(") Z ")).unwrap_or(true)
}

/// A command dies with the `flow run` that started it (kill -9 included); what it left running
/// in the background is waited for before anyone is told to retry, and named.
#[test]
fn commands_do_not_outlive_a_killed_run_unseen() {
    let p = Project::new();
    p.write("specs/dr.md", "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n");
    p.flow(&["plan", "specs/dr.md"]).expect(OK);
    p.edit_steps(
        "dr",
        r#"
        [[steps]]
        id = "deploy"
        kind = "command"
        gate = true
        covers = ["recovery-1", "recovery-2"]
        params = { run = "echo $$ > sh.pid; (sleep 1.5; echo child done >> runs.txt) & echo start >> runs.txt; wait" }
        "#,
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["deploy"]).expect(OK);
    let mut run = p.spawn(&["run"]);
    p.wait_until("the command running", |s| state(s, "deploy") == "running" && p.read("runs.txt").contains("start"));
    run.kill().unwrap();
    run.wait().unwrap();
    let sh: u32 = p.read("sh.pid").trim().parse().unwrap();
    let t = std::time::Instant::now();
    while !gone(sh) && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(sh), "the command's shell died with flow");
    // The background part is still running: the next run waits for it and says so.
    let r = p.flow(&["run"]);
    assert_eq!(r.code, FAILED, "{}", r.stdout);
    let err = step_field(&p.status(), "deploy", "error");
    assert!(
        err.contains("cannot tell whether it happened")
            && err.contains("was still running, as process group")
            && err.contains("flow waited"),
        "{err}"
    );
    assert_eq!(step_field(&p.status(), "deploy", "interrupted"), "true");
    assert_eq!(p.read("runs.txt"), "start\nchild done\n", "waited for, and never started a second time");
}

#[test]
fn mistyped_paths_create_nothing() {
    let p = Project::new();
    let typo = p.path("no-such-state");
    let r = p.flow(&["--state", &typo.display().to_string(), "status"]);
    assert_eq!(r.code, REFUSED, "{}", r.stderr);
    assert!(r.stderr.contains("no runbook yet: there is no state store at"), "{}", r.stderr);
    assert!(!typo.exists(), "a read created nothing");
    let r = p.flow(&["state", "import", "--from", &p.path("typo2").display().to_string()]);
    assert_eq!(r.code, REFUSED, "{}", r.stderr);
    assert!(!p.path("typo2").exists());
    let r = p.flow(&["--state", "/etc/passwd", "status"]);
    assert_eq!(r.code, STATE, "{}", r.stderr);
    assert!(r.stderr.contains("/etc/passwd: not a directory"), "{}", r.stderr);
    let r = p.flow(&["spec", "/dev/zero"]);
    assert_eq!(r.code, BAD_SPEC, "{}", r.stderr);
    assert!(r.stderr.contains("larger than 16 MiB"), "{}", r.stderr);
    // A first plan in a new project writes the templates its change sets use.
    p.write("specs/dr.md", "# Recovery\n\n- RTO 2 hours\n");
    let plan = p.flow(&["plan", "specs/dr.md"]);
    plan.expect(OK);
    assert!(p.read("workflows/templates/backup.yaml").contains("AWS::Backup::BackupVault"));
    assert!(plan.stderr.contains("wrote workflows/templates/backup.yaml"), "{}", plan.stderr);
}

/// What people and commands write reaches the Markdown report as text, not HTML.
#[test]
fn the_markdown_report_renders_no_html_it_was_given() {
    let p = Project::new();
    p.write("specs/dr.md", "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n");
    p.flow(&["plan", "specs/dr.md"]).expect(OK);
    p.edit_steps(
        "dr",
        r#"
        [[steps]]
        id = "restore"
        kind = "command"
        gate = true
        covers = ["recovery-1", "recovery-2"]
        params = { run = "echo '<img src=x onerror=alert(1)>' >&2; echo '::metric <script>x=1'; exit 2" }
        "#,
    );
    p.flow(&["run"]).expect(WAITING_APPROVAL);
    p.approve(&["restore", "--as", "<b>mallory</b>", "--comment", "<script>alert(1)</script>"]).expect(OK);
    p.flow(&["run"]).expect(FAILED);
    p.flow(&["report", "--format", "md", "-o", "r.md"]).expect(OK);
    let md = p.read("r.md");
    for raw in ["<script>", "<img", "<b>mallory"] {
        let outside_fences: String = md.split("```").step_by(2).collect();
        assert!(!outside_fences.contains(raw), "`{raw}` reaches the Markdown as HTML:\n{md}");
    }
    assert!(md.contains("&lt;img src=x onerror=alert(1)&gt;"), "{md}");
}
