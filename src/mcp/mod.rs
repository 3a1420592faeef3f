//! `flow mcp`: the runbook as a Model Context Protocol server over stdio (rmcp), so an AI
//! assistant can read and advance it while people decide.
//!
//! The tools call the same [`crate::app`] functions as the CLI and answer with the same
//! structs (as JSON, after a one-line summary). Nothing approves, rejects, retries, skips or
//! edits a workflow file: those stay with people, at the command line. When a gate waits, the
//! answer names the command a person runs (`flow approve STEP --runbook NAME`). Errors come back
//! as tool errors with the CLI's message and the name of its exit code. Logs go to stderr only:
//! stdout carries the protocol.

use std::path::PathBuf;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource, ResourceContents,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{schemars, tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde::{Deserialize, Serialize};

use crate::app::{self, Env};
use crate::domain::lifecycle::State;
use crate::engine::{Options, Quiet};
use crate::error::Error;

/// The instructions an assistant gets when it connects.
pub const INSTRUCTIONS: &str = "flow runs launch-readiness runbooks: Markdown requirement specs, planned into a DAG of steps \
(quota checks, CloudFormation change sets, load tests, failover and restore drills), run by an engine that stops at approval \
gates. You may read specs, plan, run ready steps and read status, journal, report and graph. You cannot approve, reject, \
retry or skip a step: a person does that at the command line (each answer that finds a gate waiting names the command). \
`run` returns at the first gate or long wait; call it again after a person has approved.";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookArg {
    /// The runbook (default: the only one in the state store).
    pub runbook: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepArg {
    /// The runbook (default: the only one in the state store).
    pub runbook: Option<String>,
    /// The step's id, as `status` lists it.
    pub step: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpecArg {
    /// Path of the Markdown spec, relative to where `flow mcp` runs.
    pub path: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessArg {
    /// A Markdown spec whose context names the region and the `vpc`, and whose requirements
    /// the findings name (relative to where `flow mcp` runs).
    #[serde(default)]
    pub spec: Option<String>,
    /// The app's VPC (default: the spec's `vpc`, else the region's only non-default VPC).
    #[serde(default)]
    pub vpc: Option<String>,
    /// The AWS region (default: the spec's, else AWS_REGION or the profile's).
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanArg {
    /// Path of the Markdown spec, relative to where `flow mcp` runs.
    pub spec: String,
    /// `builtin` (offline, the default), `openai` or `bedrock`.
    pub planner: Option<String>,
    /// The model, for an LLM planner.
    pub model: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalArg {
    /// The runbook (default: the only one in the state store).
    pub runbook: Option<String>,
    /// Only the last N events.
    pub last: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FormatArg {
    /// The runbook (default: the only one in the state store).
    pub runbook: Option<String>,
    /// report: `md` (default), `json`, `junit`, `html`; graph: `mermaid` (default) or `dot`.
    pub format: Option<String>,
}

/// A path an MCP client gives, confined to the project (the directory `flow mcp` serves,
/// `-C`): resolved, symlinks followed, and refused when it leads outside. Given back relative to
/// the project, as the CLI would be given it.
pub fn inside_project(given: &str) -> Result<PathBuf, Error> {
    let root =
        std::env::current_dir().and_then(|d| d.canonicalize()).map_err(|e| Error::io("the project directory", e))?;
    let asked = std::path::Path::new(given);
    let full = if asked.is_absolute() { asked.to_path_buf() } else { root.join(asked) };
    // `..` taken away by the letter first; then what exists is resolved, symlinks and all (a
    // file that is not there yet is judged by its folder, and reported as missing by the tool).
    let mut lexical = PathBuf::new();
    for c in full.components() {
        match c {
            std::path::Component::ParentDir => {
                lexical.pop();
            }
            std::path::Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let real = match lexical.canonicalize() {
        Ok(r) => r,
        Err(_) => match (lexical.parent().and_then(|p| p.canonicalize().ok()), lexical.file_name()) {
            (Some(dir), Some(name)) => dir.join(name),
            _ => lexical.clone(),
        },
    };
    match real.strip_prefix(&root) {
        Ok(rel) => Ok(rel.to_path_buf()),
        Err(_) => Err(Error::Refused(format!(
            "{given} is outside the project ({}): flow mcp reads and writes only inside it",
            root.display()
        ))),
    }
}

/// The MCP server: an [`Env`] and the tool table.
#[derive(Clone)]
pub struct Flow {
    env: Env,
    tool_router: ToolRouter<Flow>,
}

fn text(s: impl Into<String>) -> ContentBlock {
    ContentBlock::text(s.into())
}

/// Text for the assistant (and the person reading along) with every character that would act
/// instead of showing written out.
fn visible(s: &str) -> String {
    crate::domain::human::visible(s).into_owned()
}

/// A summary line for the assistant, then the document.
fn answer(summary: String, doc: &impl Serialize) -> Result<CallToolResult, ErrorData> {
    let json = serde_json::to_string_pretty(doc).unwrap_or_default();
    Ok(CallToolResult::success(vec![text(visible(&summary)), text(json)]))
}

/// A flow error as a tool error: the CLI's message, with its exit code's name.
fn refused(e: Error) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::error(vec![text(visible(&format!("error [{}]: {e}", e.code_name())))]))
}

/// How a person approves what waits: (step, digest of what it shows).
fn approve_hint(runbook: &str, waiting: &[(String, Option<String>)]) -> String {
    if waiting.is_empty() {
        return String::new();
    }
    let ids: Vec<&str> = waiting.iter().map(|(s, _)| s.as_str()).collect();
    let cmds: Vec<String> = waiting
        .iter()
        .map(|(s, d)| {
            let d = d.as_deref().map(crate::domain::digest::short).unwrap_or("DIGEST");
            format!("`flow approve {s} --digest {d} --runbook {runbook}`")
        })
        .collect();
    format!(
        " Waiting for a person's approval: {}. Only a person approves, at the command line, after reading what each will do: {}; then call `run` again.",
        ids.join(", "),
        cmds.join(", ")
    )
}

#[tool_router]
impl Flow {
    pub fn new(env: Env) -> Flow {
        Flow { env, tool_router: Self::tool_router() }
    }

    #[tool(
        description = "List the runbooks in the state store, with their plan version and spec.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn list_runbooks(&self) -> Result<CallToolResult, ErrorData> {
        let j = match self.env.open() {
            Ok(j) => j,
            Err(e) => return refused(e),
        };
        match j.runbooks() {
            Ok(all) => {
                let names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
                answer(format!("{} runbook(s): {}", all.len(), names.join(", ")), &all)
            }
            Err(e) => refused(e.into()),
        }
    }

    #[tool(
        description = "A runbook's status: each step's state, gates waiting with what they will do, void approvals, and every requirement's verdict with its evidence.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn status(&self, Parameters(a): Parameters<RunbookArg>) -> Result<CallToolResult, ErrorData> {
        match app::status::status(&self.env, a.runbook.as_deref()) {
            Ok(st) => {
                let waiting: Vec<(String, Option<String>)> =
                    st.in_state(State::WaitingApproval).map(|s| (s.id.clone(), s.artifact_digest.clone())).collect();
                let verdicts: Vec<String> = st.requirements.iter().map(|r| format!("{} {}", r.id, r.verdict)).collect();
                let summary = format!(
                    "runbook {} (plan version {}): {} steps; requirements: {}.{}",
                    st.runbook,
                    st.version,
                    st.steps.len(),
                    verdicts.join(", "),
                    approve_hint(&st.runbook, &waiting)
                );
                answer(summary, &st)
            }
            Err(e) => refused(e),
        }
    }

    #[tool(
        description = "One step: its state, what it will do (the artifact a person approves: change-set table, quota request, drill plan), its approval and its evidence.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn show_step(&self, Parameters(a): Parameters<StepArg>) -> Result<CallToolResult, ErrorData> {
        let st = match app::status::status(&self.env, a.runbook.as_deref()) {
            Ok(st) => st,
            Err(e) => return refused(e),
        };
        match st.step(&a.step) {
            Some(s) => {
                let hint = if s.state == State::WaitingApproval {
                    approve_hint(&st.runbook, &[(s.id.clone(), s.artifact_digest.clone())])
                } else {
                    String::new()
                };
                answer(format!("step {} ({}): {}.{hint}", s.id, s.kind, s.state), s)
            }
            None => {
                let ids: Vec<&str> = st.steps.iter().map(|s| s.id.as_str()).collect();
                refused(Error::Refused(format!(
                    "no step `{}` in runbook `{}`; its steps: {}",
                    a.step,
                    st.runbook,
                    ids.join(", ")
                )))
            }
        }
    }

    #[tool(
        description = "Read a spec: the requirements flow finds in it (kind, comparison, value, unit, lines, scope), its diagnostics (conflicts, impossible figures, missing statistics), the figures it did not read and why, and its context (region, stack, endpoint).",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn read_spec(&self, Parameters(a): Parameters<SpecArg>) -> Result<CallToolResult, ErrorData> {
        let path = match inside_project(&a.path) {
            Ok(p) => p,
            Err(e) => return refused(e),
        };
        match app::spec::read(&path) {
            Ok(s) => {
                let measurable = s.requirements.iter().filter(|r| r.kind.is_measurable()).count();
                let errors = s.diagnostics.iter().filter(|d| d.level == crate::domain::spec::Level::Error).count();
                let mut summary =
                    format!("{}: {} requirements ({measurable} measurable)", a.path, s.requirements.len());
                if errors > 0 {
                    summary.push_str(&format!("; {errors} error(s) that stop a plan"));
                }
                if !s.unread.is_empty() {
                    summary.push_str(&format!("; {} figure(s) not read as requirements", s.unread.len()));
                }
                answer(summary, &s)
            }
            Err(e) => refused(e.into()),
        }
    }

    #[tool(
        description = "Plan a spec into a validated DAG of steps (builtin planner, or an LLM: openai, bedrock), write its workflow file and record the version. Every side-effecting step is gated, whoever planned it. Re-planning a changed spec resets the changed steps (their approvals are void).",
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn plan(&self, Parameters(a): Parameters<PlanArg>) -> Result<CallToolResult, ErrorData> {
        let name = a.planner.as_deref().unwrap_or("builtin");
        let Ok(planner) = <app::plan::Planner as clap::ValueEnum>::from_str(name, false) else {
            return refused(Error::Usage(format!("planner `{name}`: expected builtin, openai or bedrock")));
        };
        let how = app::plan::How { planner, model: a.model, ..app::plan::How::default() };
        // The workflow file goes where the CLI would put it: the project's `workflows/`.
        let workflows = PathBuf::from(crate::config::env("FLOW_WORKFLOWS").unwrap_or_else(|| "workflows".into()));
        let spec = match inside_project(&a.spec) {
            Ok(p) => p,
            Err(e) => return refused(e),
        };
        match app::plan::plan(&self.env, &spec, &workflows, &how).await {
            Ok(p) => {
                let gates: Vec<&str> = p.steps.iter().filter(|s| s.gate).map(|s| s.id.as_str()).collect();
                let summary = if p.unchanged {
                    format!(
                        "runbook {}: plan unchanged (version {}{}); nothing was recorded and {} was left as it is.",
                        p.runbook,
                        p.version,
                        if p.kept_edit.is_some() { ", a person's edit of the workflow file" } else { "" },
                        p.workflow
                    )
                } else {
                    format!(
                        "runbook {}: plan version {} ({} steps, {} gated: {}) written to {}. `run` runs the ready steps and stops at the first gates.",
                        p.runbook,
                        p.version,
                        p.steps.len(),
                        gates.len(),
                        gates.join(", "),
                        p.workflow
                    )
                };
                answer(summary, &p)
            }
            Err(e) => refused(e),
        }
    }

    #[tool(
        description = "Run the runbook's ready steps (approved side effects included) until each is done, waits for a person's approval, or waits on something external. Never waits for days: it returns, saying what waits and the command a person runs to approve.",
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = true)
    )]
    async fn run(&self, Parameters(a): Parameters<RunbookArg>) -> Result<CallToolResult, ErrorData> {
        let opts = Options { keep_events: true, ..Options::default() };
        match app::run::run(&self.env, a.runbook.as_deref(), &opts, &Quiet).await {
            Ok(r) => {
                let waiting: Vec<(String, Option<String>)> = r
                    .steps
                    .iter()
                    .filter(|s| s.state == State::WaitingApproval)
                    .map(|s| (s.id.clone(), s.digest.clone()))
                    .collect();
                let failed: Vec<String> = r
                    .steps
                    .iter()
                    .filter(|s| matches!(s.state, State::Failed | State::Rejected))
                    .map(|s| format!("{}: {}", s.id, s.why.clone().unwrap_or_default()))
                    .collect();
                let outcome = serde_json::to_value(r.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let mut summary = format!("run of {}: {outcome} ({} events recorded).", r.runbook, r.events.len());
                if !failed.is_empty() {
                    summary.push_str(&format!(" Failed: {}.", failed.join("; ")));
                }
                if let Some(t) = &r.next_poll_at {
                    summary.push_str(&format!(" Something external is pending: call `run` again after {t}."));
                }
                summary.push_str(&approve_hint(&r.runbook, &waiting));
                answer(summary, &r)
            }
            Err(e) => refused(e),
        }
    }

    #[tool(
        description = "The runbook's journal: every transition, approval, retry and skip, with who and when.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn journal(&self, Parameters(a): Parameters<JournalArg>) -> Result<CallToolResult, ErrorData> {
        match app::log::log(&self.env, a.runbook.as_deref()) {
            Ok(mut l) => {
                if let Some(n) = a.last {
                    let skip = l.events.len().saturating_sub(n);
                    l.events.drain(..skip);
                }
                let lines: Vec<String> = l.events.iter().map(crate::report::text::event).collect();
                answer(format!("{} events of {}:\n{}", l.events.len(), l.runbook, lines.join("\n")), &l)
            }
            Err(e) => refused(e),
        }
    }

    #[tool(
        description = "The go/no-go report: GO only when every measurable requirement passes; each requirement with its verdict, the step that verified it and the figures. Formats: md (default), json, junit, html.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn report(&self, Parameters(a): Parameters<FormatArg>) -> Result<CallToolResult, ErrorData> {
        let r = match app::report::report(&self.env, a.runbook.as_deref()) {
            Ok(r) => r,
            Err(e) => return refused(e),
        };
        let summary = format!("runbook {}: {}", r.runbook, r.decision.headline);
        let name = a.format.as_deref().unwrap_or("md");
        let Ok(format) = <crate::report::Format as clap::ValueEnum>::from_str(name, false) else {
            return refused(Error::Usage(format!("report format `{name}`: expected md, json, junit or html")));
        };
        let graph = match format {
            crate::report::Format::Md => {
                app::report::graph(&self.env, a.runbook.as_deref(), crate::report::graph::Kind::Mermaid)
                    .unwrap_or_default()
            }
            _ => String::new(),
        };
        let body = crate::report::render(&r, format, &graph, "report").0;
        Ok(CallToolResult::success(vec![text(visible(&summary)), text(body)]))
    }

    #[tool(
        description = "Read what runs in the app's AWS VPC, read-only (Describe and List calls only): subnets and their free addresses, NAT gateways and the subnets they serve, instances, load balancers, alarms, databases and their backups, the quotas in use; and the findings that threaten the requirements (single instance, a NAT gateway for several AZs, a VPC too small, no load balancer, no backups ...), each with its evidence.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn assess(&self, Parameters(a): Parameters<AssessArg>) -> Result<CallToolResult, ErrorData> {
        let spec = match a.spec.as_deref().map(inside_project).transpose() {
            Ok(s) => s,
            Err(e) => return refused(e),
        };
        match app::assess::run(&self.env, spec.as_deref(), a.vpc.as_deref(), a.region.as_deref(), None).await {
            Ok(x) => {
                let high =
                    x.findings.iter().filter(|f| f.finding.severity == crate::domain::assess::Severity::High).count();
                let summary = format!("{}; {} findings ({high} high)", x.setup.summary(), x.findings.len());
                answer(summary, &x)
            }
            Err(e) => refused(e),
        }
    }

    #[tool(
        description = "The plan's DAG with each step's state: mermaid (default) or dot.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn graph(&self, Parameters(a): Parameters<FormatArg>) -> Result<CallToolResult, ErrorData> {
        let kind = match a.format.as_deref().unwrap_or("mermaid") {
            "mermaid" => crate::report::graph::Kind::Mermaid,
            "dot" => crate::report::graph::Kind::Dot,
            other => return refused(Error::Usage(format!("graph format `{other}`: expected mermaid or dot"))),
        };
        match app::report::graph(&self.env, a.runbook.as_deref(), kind) {
            Ok(g) => Ok(CallToolResult::success(vec![text(visible(&g))])),
            Err(e) => refused(e),
        }
    }
}

/// `flow://runbook/NAME/status`, `.../workflow`, `.../report`.
fn resource_uri(name: &str, what: &str) -> String {
    format!("flow://runbook/{name}/{what}")
}

impl Flow {
    fn read(&self, uri: &str) -> Result<(String, &'static str), Error> {
        let rest = uri.strip_prefix("flow://runbook/").ok_or_else(|| Error::Refused(format!("no resource {uri}")))?;
        let (name, what) = rest.split_once('/').ok_or_else(|| Error::Refused(format!("no resource {uri}")))?;
        match what {
            "status" => {
                let st = app::status::status(&self.env, Some(name))?;
                Ok((serde_json::to_string_pretty(&st).unwrap_or_default(), "application/json"))
            }
            "workflow" => {
                let j = self.env.open()?;
                let meta = app::pick_runbook(j.as_ref(), Some(name))?;
                drop(j);
                let text = std::fs::read_to_string(&meta.workflow)
                    .map_err(|e| Error::io(format!("reading {}", meta.workflow.display()), e))?;
                Ok((text, "application/toml"))
            }
            "report" => {
                let r = app::report::report(&self.env, Some(name))?;
                let graph = app::report::graph(&self.env, Some(name), crate::report::graph::Kind::Mermaid)?;
                Ok((crate::report::render(&r, crate::report::Format::Md, &graph, "report").0, "text/markdown"))
            }
            _ => Err(Error::Refused(format!("no resource {uri}: expected status, workflow or report"))),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Flow {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_server_info(Implementation::new("flow", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let all = self
            .env
            .open()
            .and_then(|j| Ok(j.runbooks()?))
            .map_err(|e| ErrorData::internal_error(format!("error [{}]: {e}", e.code_name()), None))?;
        let mut out = Vec::new();
        for m in all {
            for (what, mime, about) in [
                ("status", "application/json", "steps, gates waiting, verdicts"),
                ("workflow", "application/toml", "the workflow file people review"),
                ("report", "text/markdown", "the go/no-go report"),
            ] {
                out.push(
                    Resource::new(resource_uri(&m.name, what), format!("{} {what}", m.name))
                        .with_description(format!("runbook {}: {about}", m.name))
                        .with_mime_type(mime),
                );
            }
        }
        Ok(ListResourcesResult::with_all_items(out))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match self.read(&request.uri) {
            Ok((text, mime)) => {
                Ok(ReadResourceResult::new(
                    vec![ResourceContents::text(text, request.uri.clone()).with_mime_type(mime)],
                )
                .into())
            }
            Err(e) => Err(ErrorData::resource_not_found(format!("error [{}]: {e}", e.code_name()), None)),
        }
    }
}

/// Serve MCP over stdin and stdout until the client goes away.
pub async fn serve(env: Env) -> Result<(), Error> {
    use tokio::io::AsyncWriteExt;
    // rmcp serves on one pair of pipes; the gate stands between them and stdio, answering what
    // is not a well-formed request itself (so no client waits forever on a line it sent).
    let (to_server, server_in) = tokio::io::duplex(1 << 20);
    let (server_out, from_server) = tokio::io::duplex(1 << 20);
    let (lines, mut out) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = out.recv().await {
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    let copy_out = {
        let lines = lines.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut r = tokio::io::BufReader::new(from_server);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if lines.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        })
    };
    let gate = tokio::spawn(gate::run(tokio::io::stdin(), to_server, lines));
    let service = Flow::new(env).serve((server_in, server_out)).await.map_err(|e| Error::Io {
        what: "starting the MCP server".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let served = service.waiting().await;
    gate.abort();
    let _ = copy_out.await;
    let _ = writer.await;
    served.map_err(|e| Error::Io { what: "serving MCP".into(), source: std::io::Error::other(e.to_string()) })?;
    Ok(())
}

pub mod gate;
