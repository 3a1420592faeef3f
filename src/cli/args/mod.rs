//! The command line's flags (clap). Parsed here, resolved once in `cli::dispatch`, never read again.

mod choices;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use choices::*;

/// The exit codes, at the end of `flow --help` (the README's table says more of each).
const EXIT_CODES: &str = "Exit codes:
  0    done, or the command did what it was asked
  1    a step failed or was rejected; a load test's threshold failed; `report --check`: NO-GO
  2    bad command line, config file or load-test settings
  3    the spec cannot be used
  4    the plan or workflow file is invalid
  5    the verb does not apply (unknown step, not waiting, stale digest, another run active)
  6    the state store is busy, unreadable or corrupt
  7    the LLM planner could not be used
  8    a load test could not keep its schedule: its figures are not evidence
  10   blocked on a person: a step waits for approval
  11   waiting on something external; run again after the next poll time
  12   a step's executor is not built into this version
  70   an unexpected internal or I/O failure
  130  stopped by Ctrl-C while waiting for a model; nothing of that call recorded";

const SPEC_EXAMPLES: &str = "Examples:
  flow spec specs/launch.md                 requirements, figures not read (with why), questions
  flow spec specs/launch.md --json          the same as JSON
  flow spec specs/launch.md --extract llm   a model proposes too; only what its quote says is kept";

const PLAN_EXAMPLES: &str = "Examples:
  flow plan specs/launch.md                 the builtin planner, offline
  OPENAI_BASE_URL=http://127.0.0.1:8080/v1 flow plan specs/launch.md --planner openai --model qwen
  flow plan specs/launch.md --force         re-plan even if it discards evidence or approvals";

const RUN_EXAMPLES: &str = "Examples:
  flow run                  ready steps; stops at the first gates (exit 10)
  flow run --wait           keep polling quota requests and stack changes until done or a gate
  flow run -r launch --json";

const LOADTEST_EXAMPLES: &str = "Examples:
  flow loadtest http://127.0.0.1:8080/ --rate 2500 --duration 60s --warmup 10s \\
      --threshold 'rate>=2500' --threshold 'avg<250ms' --threshold 'success>=99.5%'
  flow loadtest https://app.example.com/health --connections 64 --duration 30s
  flow loadtest http://127.0.0.1:8080/ --stage 30s:500 --stage 1m:2500 --rate 2500 --duration 5m

Durations: 250ms, 10s, 5m, 2h, 1h 30m, 1day (a number and a unit; units combine).";

const DRILL_EXAMPLES: &str = "Examples:
  flow drill failover http://app.internal/health --inject './stop-az.sh us-east-1a' \\
      --recover './start-az.sh us-east-1a' --max-downtime 60s --rate 200
  flow drill restore --restore './restore-latest.sh' --probe tcp://10.0.3.7:5432 \\
      --max-rto 2h --max-rpo 10m --cleanup './drop-scratch.sh'
  flow drill alarm --prefix launch-alarms- --region eu-west-1 --max-delay 5m

Durations: 250ms, 10s, 5m, 2h, 1h 30m, 1day (a number and a unit; units combine).";

const REPORT_EXAMPLES: &str = "Examples:
  flow report                       writes <runbook>-report.html here and prints its path
  flow report --format md -o out/report.md
  flow report --check               GO (0), NO-GO (1) or UNDECIDED (10), for CI
  flow report --format junit -o report.xml";

const APPROVE_EXAMPLES: &str = "Examples:
  flow approve changeset-vpc                          on a terminal: shows the preview, asks
  flow approve changeset-vpc --digest 425674092c2c --comment \"reviewed with Ana\"";

#[derive(Parser, Debug)]
#[command(
    name = "flow",
    version,
    about = "Launch-readiness runbooks: spec -> plan -> gated, resumable run -> evidence",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Run as if flow was started in DIR: specs, workflows, state and flow.toml resolve there.
    #[arg(short = 'C', long = "directory", global = true, value_name = "DIR", help_heading = "Global options")]
    pub directory: Option<PathBuf>,
    /// Where state lives: a directory (sled store; default `state`) or `s3://BUCKET/PREFIX`
    /// (shared team state). Else `[state] url` in flow.toml.
    #[arg(long, global = true, env = "FLOW_STATE", help_heading = "Global options")]
    pub state: Option<String>,
    /// Who you are in the journal (default: the OS user); every event also records the host.
    #[arg(long = "as", global = true, env = "FLOW_ACTOR", value_name = "NAME", help_heading = "Global options")]
    pub actor: Option<String>,
    /// Runbook to act on (default: the only one in the store).
    #[arg(long, short = 'r', global = true, env = "FLOW_RUNBOOK", help_heading = "Global options")]
    pub runbook: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Which model to ask, for the commands that can ask one.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// Model (openai) or model id / inference profile (bedrock).
    #[arg(long)]
    pub model: Option<String>,
    /// AWS region for bedrock (else FLOW_BEDROCK_REGION, [bedrock] region, AWS_REGION).
    #[arg(long)]
    pub region: Option<String>,
    /// Ask the model even when it answered the same question before (a cached answer).
    #[arg(long)]
    pub no_cache: bool,
    /// How long one model answer may take (else FLOW_LLM_TIMEOUT, [planner] timeout; default
    /// 30m for a local or private base URL, 5m otherwise).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub llm_timeout: Option<std::time::Duration>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse a spec and show its requirements, context and diagnostics.
    #[command(after_help = SPEC_EXAMPLES)]
    Spec {
        /// The Markdown spec to read.
        file: PathBuf,
        /// builtin (the grammar alone), or llm: a model also proposes requirements, each kept
        /// only when its quote is on its line and the grammar reads the same target from it.
        #[arg(long, value_enum, default_value_t = Extract::Builtin)]
        extract: Extract,
        /// With --extract llm: openai (any OpenAI-compatible endpoint) or bedrock.
        #[arg(long, value_enum, default_value_t = Model::Openai)]
        planner: Model,
        #[command(flatten)]
        model: ModelArgs,
        /// Print JSON instead of text (the fields the README documents).
        #[arg(long)]
        json: bool,
    },
    /// Read what runs in the app's VPC (read-only) and list what threatens the requirements.
    #[command(
        after_help = "Examples:\n  flow assess --region eu-west-1               the region's only non-default VPC\n  flow assess specs/launch.md --vpc vpc-0abc   findings name the spec's requirements\n  flow assess --json --fleet-max 12            also: do the subnets hold 12 instances after an AZ loss?\n\nExit 0: no high finding; 1: a high finding, or what runs could not be read."
    )]
    Assess {
        /// A spec: its context gives `region` and `vpc`, and each finding names its requirements.
        spec: Option<PathBuf>,
        /// The app's VPC (default: the spec's `vpc`, else the region's only non-default VPC).
        #[arg(long)]
        vpc: Option<String>,
        /// The AWS region (default: the spec's `region`, AWS_REGION or the profile's).
        #[arg(long)]
        region: Option<String>,
        /// The fleet at its largest (instances): checks the private subnets hold it after an AZ loss.
        #[arg(long)]
        fleet_max: Option<u64>,
        /// Print JSON instead of text (the fields the README documents).
        #[arg(long)]
        json: bool,
    },
    /// Plan a spec: validate the DAG, write workflows/<name>.toml, record the version.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan {
        /// The Markdown spec to plan; the runbook is named after its file (`specs/launch.md`:
        /// `launch`).
        spec: PathBuf,
        /// builtin (offline), openai (any OpenAI-compatible endpoint) or bedrock.
        #[arg(long, value_enum, default_value_t = crate::app::plan::Planner::Builtin)]
        planner: crate::app::plan::Planner,
        #[command(flatten)]
        model: ModelArgs,
        /// Times an invalid answer is sent back for repair (default 2).
        #[arg(long)]
        repair_rounds: Option<u32>,
        /// With a model: do not ask it which requirements the spec states (the grammar's alone).
        #[arg(long)]
        no_extract: bool,
        /// Do not read what runs in the VPC the spec names; plan as for an empty account.
        #[arg(long)]
        no_assess: bool,
        /// Record the new version even if it discards evidence, approvals or an edit of the
        /// workflow file (without it, flow lists what would be lost and records nothing).
        #[arg(long)]
        force: bool,
        /// Where workflow files go.
        #[arg(long, env = "FLOW_WORKFLOWS", default_value = "workflows")]
        workflows: PathBuf,
        /// Print JSON instead of text (the fields the README documents).
        #[arg(long)]
        json: bool,
    },
    /// Run every ready step; stop at gates and long waits.
    #[command(after_help = RUN_EXAMPLES)]
    Run {
        /// Keep polling external waits until done or blocked on a person.
        #[arg(long)]
        wait: bool,
        /// Steps run at once, at most.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
        /// Print JSON instead of text (the fields the README documents).
        #[arg(long)]
        json: bool,
    },
    /// Load-test a URL: open model at a fixed rate, or closed model as fast as connections allow.
    #[command(after_help = LOADTEST_EXAMPLES)]
    Loadtest {
        /// The http:// or https:// URL every request goes to.
        url: String,
        /// Requests per second, scheduled whatever the server does (open model).
        #[arg(long)]
        rate: Option<f64>,
        /// How long to send, after the warm-up.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Connections (closed model), or the initial pool (open model).
        #[arg(long)]
        connections: Option<usize>,
        /// A new TCP (and TLS) connection per request.
        #[arg(long)]
        no_keepalive: bool,
        /// How long one request may take before it counts as an error.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Requests sent first at the same rate, not counted in the figures.
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        warmup: std::time::Duration,
        /// The HTTP method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// `Name: value`, repeatable.
        #[arg(long = "header")]
        headers: Vec<String>,
        /// The request body, sent as given.
        #[arg(long)]
        body: Option<String>,
        /// Statuses that count as success: codes and ranges, comma-separated (`200-299,304`).
        #[arg(long, default_value = "200-399")]
        success: String,
        /// Requests in flight at most (default: rate x timeout).
        #[arg(long)]
        max_in_flight: Option<usize>,
        /// `rate>=2500`, `avg<250ms`, `p99<1s`, `success>=99.5%`, repeatable.
        #[arg(long = "threshold")]
        thresholds: Vec<String>,
        /// Stop as soon as a success or error threshold fails (checked every second after warm-up).
        #[arg(long)]
        abort_on_fail: bool,
        /// Reach --rate linearly over this long first.
        #[arg(long, value_parser = humantime::parse_duration)]
        ramp: Option<std::time::Duration>,
        /// `DURATION:RATE`, repeatable: reach RATE linearly over DURATION, then the next stage; --rate after the last.
        #[arg(long = "stage")]
        stages: Vec<String>,
        /// Workers that share the schedule (each its part of the rate, from one start time);
        /// the verdict comes from their merged histograms.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        workers: u16,
        /// Print JSON instead of text (the fields the README documents).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        spread: Box<SpreadArgs>,
    },
    /// One worker of `flow loadtest --workers`: run the share its job file gives (started by
    /// the coordinator, not by people).
    #[command(hide = true)]
    LoadWorker {
        /// The job the coordinator wrote (a path or an s3:// URL): the worker's share and the
        /// shared start time.
        job: String,
    },
    /// Run a resilience drill once, outside a runbook: an AZ failover or a backup restore.
    #[command(after_help = DRILL_EXAMPLES)]
    Drill {
        #[command(subcommand)]
        drill: Drill,
    },
    /// The go/no-go report: every requirement with its verdict and evidence, every step.
    #[command(after_help = REPORT_EXAMPLES)]
    Report {
        /// html (one self-contained file), md (charts as SVG files beside it), json, junit.
        #[arg(long, value_enum, default_value_t = crate::report::Format::Html)]
        format: crate::report::Format,
        /// Write here (`-`: stdout). Default: html and md to RUNBOOK-report.html / .md in the
        /// project folder, json and junit to stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// The same as --format json.
        /// Print JSON instead of text (the fields the README documents).
        #[arg(long)]
        json: bool,
        /// Print the decision's headline and exit with its code: 0 GO, 1 NO-GO, 10 UNDECIDED
        /// (the evidence supports GO; the go/no-go gate waits for a person). With -o the report
        /// is written too.
        #[arg(long)]
        check: bool,
    },
    /// The plan's DAG with each step's state: Mermaid or Graphviz DOT.
    #[command(
        after_help = "Examples:\n  flow graph                 Mermaid, to paste into a Markdown file\n  flow graph --format dot | dot -Tsvg > plan.svg\n  flow graph --architecture current --vpc vpc-0abc --format drawio > current.drawio\n  flow graph --architecture target --format drawio > target.drawio"
    )]
    Graph {
        /// mermaid, dot (Graphviz), or drawio (with --architecture: draw.io's XML, AWS shapes).
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
        /// Draw AWS resources instead of the plan's steps: `current`, the app's VPC as `flow
        /// assess` reads it (read-only); `target`, what the runbook's change sets make of it.
        #[arg(long, value_enum)]
        architecture: Option<Architecture>,
        /// With --architecture: the app's VPC (default: the region's only non-default VPC).
        #[arg(long, requires = "architecture")]
        vpc: Option<String>,
        /// With --architecture: the AWS region (default: AWS_REGION or the profile's).
        #[arg(long, requires = "architecture")]
        region: Option<String>,
    },
    /// Serve the runbooks over the Model Context Protocol on stdio, for an AI assistant (it can
    /// plan, run and read; only people approve).
    #[command(after_help = "Examples:
  flow mcp -C /work/launch      what an assistant's MCP client starts, e.g.
  {\"mcpServers\": {\"flow\": {\"command\": \"flow\", \"args\": [\"mcp\", \"-C\", \"/work/launch\"]}}}")]
    Mcp,
    /// Steps, gates waiting and requirement verdicts.
    #[command(after_help = "Examples:\n  flow status\n  flow status -r launch --json")]
    Status {
        /// Print JSON instead of text (the fields the README documents).
        #[arg(long)]
        json: bool,
    },
    /// Approve what a gated step showed: the preview whose digest you give, or (on a terminal)
    /// the one printed for you to confirm.
    #[command(after_help = APPROVE_EXAMPLES)]
    Approve {
        /// The step waiting for approval (`flow status` lists them).
        step: String,
        /// The digest of the preview you reviewed, as `flow status` shows it (at least 8 hex
        /// digits); refused if the recorded preview is another. Required off a terminal.
        #[arg(long)]
        digest: Option<String>,
        /// Why you approve, kept in the journal and the report.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Settle a question the spec left open (`flow spec` and `flow status` list them): which
    /// reading holds, or none of them. `flow plan` then plans with the answer.
    #[command(
        after_help = "Examples:\n  flow answer q-12 --use 1 --comment \"the SLA page is the source\"\n  flow answer q-14 --none"
    )]
    Answer {
        /// The question (`q-12`).
        question: String,
        /// The reading that holds, numbered as listed (1, 2, ...).
        #[arg(long = "use", value_name = "N", conflicts_with = "none", required_unless_present = "none")]
        choice: Option<usize>,
        /// None of the readings: the figure is not a target.
        #[arg(long)]
        none: bool,
        /// Why, kept in the journal.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a gated step.
    #[command(after_help = "Examples:\n  flow reject changeset-vpc --reason \"the new CIDR overlaps the office VPN\"")]
    Reject {
        /// The step waiting for approval.
        step: String,
        /// Why, kept in the journal and the report.
        #[arg(long)]
        reason: String,
    },
    /// Run a failed or rejected step again.
    #[command(after_help = "Examples:\n  flow retry baseline-load && flow run")]
    Retry {
        /// The failed or rejected step (`flow status` lists them).
        step: String,
    },
    /// Mark a step as skipped (its requirements stay unverified).
    #[command(after_help = "Examples:\n  flow skip quota-nat --reason \"raised by hand in the console, ticket 4411\"")]
    Skip {
        /// The step to skip; steps that need it may then run.
        step: String,
        /// Why, kept in the journal and the report.
        #[arg(long)]
        reason: String,
    },
    /// Move a runbook with its whole history between this store and another.
    #[command(
        after_help = "Examples:\n  flow state export --to s3://team-bucket/flow\n  flow state import --from ../laptop/state -r launch"
    )]
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// The runbook's journal (`--llm`: the planner's requests and answers).
    #[command(after_help = "Examples:\n  flow log\n  flow log --llm --json | jq '.exchanges[0].answer'")]
    Log {
        /// The planner's exchanges with the model (request, answer, tokens, repairs) instead.
        #[arg(long)]
        llm: bool,
        /// Print JSON instead of text (the fields the README documents).
        #[arg(long)]
        json: bool,
    },
    /// Print the shell completion script: `source <(flow completions bash)`, or write it where
    /// the shell loads completions from.
    #[command(after_help = "Examples:\n  source <(flow completions bash)\n  flow completions zsh > ~/.zfunc/_flow")]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print flow's man page (roff): `flow man | man -l -`; with `--dir`, write `flow.1` and a
    /// `flow-COMMAND.1` page per command there.
    #[command(after_help = "Examples:\n  flow man | man -l -\n  flow man --dir ~/.local/share/man/man1")]
    Man {
        /// Where to write the pages (made if missing).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[cfg(test)]
mod tests;
