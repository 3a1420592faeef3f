//! `flow mcp` driven as a child process by a real MCP client (rmcp's client side, over stdio):
//! initialize, tools and resources, status, plan and run, a resource read, the error path; no
//! tool or argument can approve anything, and a plan made through MCP gets the same gates as
//! one made on the CLI. One exchange is also scripted as raw JSON-RPC lines, to pin the wire.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use rmcp::model::{CallToolRequestParams, CallToolResult, ReadResourceRequestParams};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::ServiceExt;
use serde_json::{json, Map, Value};

use crate::support::Project;
use flow::exit::OK;

const RECOVERY: &str = "# Recovery\n\n- RTO 2 hours\n- RPO 10 minutes\n";

async fn client(p: &Project) -> RunningService<RoleClient, ()> {
    let mut cmd = tokio::process::Command::from(p.cmd(&["mcp"]));
    cmd.stderr(Stdio::null());
    let transport = TokioChildProcess::new(cmd).expect("flow mcp starts");
    ().serve(transport).await.expect("the MCP handshake")
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

async fn call(c: &RunningService<RoleClient, ()>, tool: &str, a: Value) -> CallToolResult {
    c.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args(a)))
        .await
        .expect("the call is answered")
}

/// Call one tool from a fresh `flow mcp` (for tests that are not async): (a tool error?, the
/// answer's text).
pub fn call_tool(p: &Project, tool: &str, a: Value) -> (bool, String) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let c = client(p).await;
        let r = call(&c, tool, a).await;
        let _ = c.cancel().await;
        (r.is_error == Some(true), texts(&r).join("\n"))
    })
}

/// The text blocks of an answer.
fn texts(r: &CallToolResult) -> Vec<String> {
    r.content.iter().filter_map(|b| b.as_text().map(|t| t.text.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assistant_plans_runs_and_stops_at_the_gate() {
    let aws = crate::fake_aws::FakeAws::start();
    let p = Project::new();
    p.write("specs/dr.md", RECOVERY);
    let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/templates");
    p.write("workflows/templates/backup.yaml", std::fs::read(templates.join("backup.yaml")).unwrap());
    p.aws(&aws.url);
    let c = client(&p).await;
    let info = c.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().map(|i| i.name.as_str()), Some("flow"));
    assert!(info.instructions.as_deref().unwrap_or_default().contains("You cannot approve"));

    // The tools, their annotations, and nothing that approves.
    let tools = c.list_all_tools().await.unwrap();
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        ["assess", "graph", "journal", "list_runbooks", "plan", "read_spec", "report", "run", "show_step", "status"]
    );
    for t in &tools {
        let a = t.annotations.as_ref().expect("annotations");
        let read_only = !matches!(t.name.as_ref(), "plan" | "run");
        assert_eq!(a.read_only_hint, Some(read_only), "{}", t.name);
        assert_eq!(a.destructive_hint, Some(!read_only), "{}", t.name);
        let props: Vec<String> = t
            .input_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        for prop in &props {
            assert!(
                ["runbook", "step", "path", "spec", "planner", "model", "workflows", "last", "format", "vpc", "region"]
                    .contains(&prop.as_str()),
                "tool {} takes `{prop}`",
                t.name
            );
        }
    }
    for forbidden in ["approve", "reject", "retry", "skip", "edit_workflow"] {
        let r = c.call_tool(CallToolRequestParams::new(forbidden.to_string())).await;
        assert!(r.is_err() || r.as_ref().is_ok_and(|r| r.is_error == Some(true)), "{forbidden} must not exist: {r:?}");
    }

    let spec = call(&c, "read_spec", json!({"path": "specs/dr.md"})).await;
    assert_eq!(texts(&spec)[0], "specs/dr.md: 2 requirements (2 measurable)");

    let planned = call(&c, "plan", json!({"spec": "specs/dr.md"})).await;
    assert_ne!(planned.is_error, Some(true), "{:?}", texts(&planned));
    assert!(texts(&planned)[0].starts_with("runbook dr: plan version 1 (3 steps, 3 gated"), "{:?}", texts(&planned));
    let doc: Value = serde_json::from_str(&texts(&planned)[1]).unwrap();

    // The same spec planned on the CLI: the same steps and the same gates.
    let cli = Project::new();
    cli.write("specs/dr.md", RECOVERY);
    let on_cli = cli.flow(&["plan", "specs/dr.md", "--json"]);
    on_cli.expect(OK);
    let gates = |v: &Value| -> Vec<(String, bool)> {
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["id"].as_str().unwrap().into(), s["gate"].as_bool().unwrap()))
            .collect()
    };
    assert_eq!(gates(&doc), gates(&on_cli.json()));

    let ran = call(&c, "run", json!({})).await;
    let summary = &texts(&ran)[0];
    assert!(summary.starts_with("run of dr: waiting_approval"), "{summary}");
    assert!(
        summary.contains("Only a person approves, at the command line, after reading what each will do: `flow approve changeset-backup --digest ")
            && summary.contains(" --runbook dr`"),
        "{summary}"
    );

    let step = call(&c, "show_step", json!({"step": "changeset-backup"})).await;
    assert!(texts(&step)[0].starts_with("step changeset-backup (changeset): waiting_approval."), "{:?}", texts(&step));

    let status = call(&c, "status", json!({"runbook": "dr"})).await;
    assert!(texts(&status)[0].contains("recovery-1 unverified"), "{:?}", texts(&status));

    // Resources: the same read-only views.
    let resources = c.list_all_resources().await.unwrap();
    let uris: Vec<String> = resources.iter().map(|r| r.uri.clone()).collect();
    assert_eq!(uris, ["flow://runbook/dr/status", "flow://runbook/dr/workflow", "flow://runbook/dr/report"]);
    let read = c.read_resource(ReadResourceRequestParams::new("flow://runbook/dr/status")).await.unwrap();
    let body = serde_json::to_value(&read).unwrap();
    let st: Value = serde_json::from_str(body["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(st["runbook"], "dr");
    let wf = c.read_resource(ReadResourceRequestParams::new("flow://runbook/dr/workflow")).await.unwrap();
    assert!(serde_json::to_value(&wf).unwrap()["contents"][0]["text"].as_str().unwrap().contains("[[steps]]"));

    // Errors: the CLI's words, with the exit code's name.
    let missing = call(&c, "show_step", json!({"step": "nope"})).await;
    assert_eq!(missing.is_error, Some(true));
    assert!(texts(&missing)[0].starts_with("error [refused]: no step `nope` in runbook `dr`"), "{:?}", texts(&missing));
    let bad = call(&c, "read_spec", json!({"path": "specs/none.md"})).await;
    assert_eq!(texts(&bad)[0], "error [bad_spec]: cannot read spec specs/none.md: no such file");
    let wrong = call(&c, "report", json!({"format": "pdf"})).await;
    assert!(
        texts(&wrong)[0].starts_with("error [usage]: report format `pdf`: expected md, json, junit or html"),
        "{:?}",
        texts(&wrong)
    );
    // A person approves on the CLI while the assistant stays connected; the assistant runs on.
    p.approve(&["changeset-backup", "--as", "ana"]).expect(OK);
    let again = call(&c, "run", json!({"runbook": "dr"})).await;
    assert!(!texts(&again)[0].contains("changeset-backup"), "{:?}", texts(&again));
    let done = call(&c, "show_step", json!({"step": "changeset-backup"})).await;
    assert!(texts(&done)[0].starts_with("step changeset-backup (changeset): succeeded."), "{:?}", texts(&done));
    let journal = call(&c, "journal", json!({"last": 50})).await;
    assert!(
        texts(&journal)[0].contains("changeset-backup: approved by ") && texts(&journal)[0].contains("(as ana)"),
        "{:?}",
        texts(&journal)
    );
    c.cancel().await.unwrap();
}

/// Newline-delimited JSON-RPC over a child's stdin and stdout.
struct Wire {
    stdin: std::process::ChildStdin,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Wire {
    fn tell(&mut self, msg: &Value) {
        writeln!(self.stdin, "{msg}").unwrap();
    }

    fn ask(&mut self, msg: Value) -> Value {
        self.tell(&msg);
        loop {
            let line = self.lines.next().expect("an answer").unwrap();
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if v.get("id") == msg.get("id") {
                return v;
            }
        }
    }
}

/// The wire, pinned: newline-delimited JSON-RPC 2.0 on stdin and stdout.
#[test]
fn the_wire_format() {
    let p = Project::new();
    p.write("specs/dr.md", RECOVERY);
    p.flow(&["plan", "specs/dr.md"]).expect(OK);
    // Started elsewhere, as MCP clients do, and pointed at the project with -C.
    let dir = p.path("").display().to_string();
    let mut child = p
        .cmd(&["-C", &dir, "mcp"])
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut w =
        Wire { stdin: child.stdin.take().unwrap(), lines: BufReader::new(child.stdout.take().unwrap()).lines() };
    let init = w.ask(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}));
    assert_eq!(init["jsonrpc"], "2.0");
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "flow");
    assert!(
        init["result"]["capabilities"]["tools"].is_object() && init["result"]["capabilities"]["resources"].is_object()
    );
    w.tell(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let listed = w.ask(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let status = listed["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == "status").unwrap().clone();
    assert_eq!(status["annotations"]["readOnlyHint"], true);
    assert_eq!(status["inputSchema"]["properties"]["runbook"]["type"], json!(["string", "null"]));
    let spec = w.ask(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "read_spec", "arguments": {"path": "specs/dr.md"}}}));
    assert_eq!(spec["result"]["content"][0]["text"], "specs/dr.md: 2 requirements (2 measurable)", "{spec}");
    let called = w.ask(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "status", "arguments": {"runbook": "ghost"}}}));
    assert_eq!(called["result"]["isError"], true);
    assert_eq!(called["result"]["content"][0]["type"], "text");
    assert_eq!(called["result"]["content"][0]["text"], "error [refused]: no runbook `ghost`; known runbooks: dr");
    drop(w);
    assert!(child.wait().unwrap().success(), "flow mcp ends when its client goes away");

    let nowhere = p.flow(&["-C", "no/such/dir", "mcp"]);
    nowhere.expect(flow::exit::USAGE);
    assert_eq!(nowhere.stderr.trim(), "error: cannot enter directory no/such/dir: no such directory");
}
