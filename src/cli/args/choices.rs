//! The subcommands' own subcommands (`flow drill`, `flow state`), the distributed-load
//! argument group, and the choices flags take.

use clap::Subcommand;

use super::*;

#[derive(Subcommand, Debug)]
pub enum Drill {
    /// Inject a fault while probing URL; measure downtime and recovery.
    #[command(after_help = DRILL_EXAMPLES)]
    Failover {
        /// The service's http:// or https:// URL, probed throughout.
        url: String,
        /// The fault: run by `sh -c` (it may block while the fault lasts).
        #[arg(long)]
        inject: String,
        /// Run after the measurement to undo the fault (never counted as recovery).
        #[arg(long)]
        recover: Option<String>,
        /// Time between probes.
        #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// How long each probe waits for an answer before it counts the service as down
        /// (default 1s, whatever the interval: probes overlap).
        #[arg(long, value_parser = humantime::parse_duration)]
        probe_timeout: Option<std::time::Duration>,
        /// How long to watch after the fault starts (longer when the fault outlasts it).
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Probes before the fault that must all answer, or nothing is injected.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        baseline: std::time::Duration,
        /// The longest outage allowed (exit 1 beyond it).
        #[arg(long, value_parser = humantime::parse_duration)]
        max_downtime: Option<std::time::Duration>,
        /// Background load (req/s) from the built-in generator while the drill runs.
        #[arg(long)]
        rate: Option<f64>,
        /// Print JSON instead of text (the fields the README documents).
        #[arg(long)]
        json: bool,
    },
    /// Restore by command; measure the time until PROBE answers (RTO) and the data lost (RPO).
    #[command(after_help = DRILL_EXAMPLES)]
    Restore {
        /// The restore: run by `sh -c`; it may print `::restore-point RFC3339` or `::metric rpo_s=N`.
        #[arg(long)]
        restore: String,
        /// The restored copy: an http(s):// URL or tcp://host:port.
        #[arg(long)]
        probe: String,
        /// Time between probes.
        #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// How long each probe waits for an answer (default 1s).
        #[arg(long, value_parser = humantime::parse_duration)]
        probe_timeout: Option<std::time::Duration>,
        /// The probe may answer before the restore starts (a copy restored over one that
        /// already serves); without it, such a drill fails: it would measure nothing.
        #[arg(long)]
        allow_probe_up_before: bool,
        /// How long the restore may take.
        #[arg(long, default_value = "4h", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Run after the measurement to delete the scratch copy.
        #[arg(long)]
        cleanup: Option<String>,
        /// The worst data loss the backup configuration allows.
        #[arg(long, value_parser = humantime::parse_duration)]
        worst_rpo: Option<std::time::Duration>,
        /// The longest restore allowed (exit 1 beyond it).
        #[arg(long, value_parser = humantime::parse_duration)]
        max_rto: Option<std::time::Duration>,
        /// The most data loss allowed (exit 1 beyond it).
        #[arg(long, value_parser = humantime::parse_duration)]
        max_rpo: Option<std::time::Duration>,
        /// Print JSON instead of text (the fields the README documents).
        #[arg(long)]
        json: bool,
    },
    /// Set CloudWatch alarms to ALARM; measure how long each notification takes to reach a
    /// subscriber of its SNS topic (a temporary SQS queue listens); set them back after.
    #[command(after_help = DRILL_EXAMPLES)]
    Alarm {
        /// Every metric alarm whose name starts with this (a stack's alarms: `STACK-`).
        #[arg(long, conflicts_with = "alarm", required_unless_present = "alarm")]
        prefix: Option<String>,
        /// An alarm by name (repeat for more).
        #[arg(long)]
        alarm: Vec<String>,
        /// The AWS region (default: AWS_REGION or the profile's).
        #[arg(long)]
        region: Option<String>,
        /// The longest a notification may take (exit 1 beyond it).
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        max_delay: std::time::Duration,
        /// How long to wait for the notifications (default: the bound plus a minute).
        #[arg(long, value_parser = humantime::parse_duration)]
        wait: Option<std::time::Duration>,
        /// Print JSON instead of text (the fields the README documents).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum StateAction {
    /// Copy a runbook from this store (--state) to another: a directory or s3://BUCKET/PREFIX.
    #[command(
        after_help = "Examples:\n  flow state export --to s3://team-bucket/flow -r launch\n  flow state export --to ../backup-state"
    )]
    Export {
        /// The store to copy to: a directory or s3://BUCKET/PREFIX.
        #[arg(long, value_name = "STATE")]
        to: String,
        /// Print JSON instead of text (the fields the README documents).
        #[arg(long)]
        json: bool,
    },
    /// Copy a runbook from another store into this one (--state).
    #[command(
        after_help = "Examples:\n  flow state import --from s3://team-bucket/flow -r launch\n  flow state import --from ../laptop/state"
    )]
    Import {
        /// The store to copy from: a directory or s3://BUCKET/PREFIX.
        #[arg(long, value_name = "STATE")]
        from: String,
        /// Print JSON instead of text (the fields the README documents).
        #[arg(long)]
        json: bool,
    },
}

/// What starts the workers of `flow loadtest --workers N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunnerKind {
    Local,
    Ecs,
    Kubernetes,
}

/// Where the workers of a distributed load test run and meet.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Distributed load (with --workers)")]
pub struct SpreadArgs {
    /// What starts the workers: processes here, ECS tasks on Fargate, or one Kubernetes Job
    /// with a pod per worker.
    #[arg(long, value_enum, default_value_t = RunnerKind::Local)]
    pub runner: RunnerKind,
    /// Where the workers meet the coordinator: a directory, or s3://BUCKET/PREFIX (needed by
    /// ecs and kubernetes). Default (local): a temporary directory, removed after.
    #[arg(long)]
    pub place: Option<String>,
    /// How long before the shared start the workers are started (default: local 1 s + 0.2 s
    /// a worker, ecs 120 s, kubernetes 60 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub worker_lead: Option<std::time::Duration>,
    /// ecs: the cluster.
    #[arg(long)]
    pub ecs_cluster: Option<String>,
    /// ecs: the task definition (family[:revision] or ARN) that runs flow's image.
    #[arg(long)]
    pub ecs_task_definition: Option<String>,
    /// ecs: a subnet, repeatable or comma-separated; workers are placed in them in turn.
    #[arg(long = "ecs-subnet", value_delimiter = ',')]
    pub ecs_subnets: Vec<String>,
    /// ecs: a security group for the tasks, repeatable.
    #[arg(long = "ecs-security-group", value_delimiter = ',')]
    pub ecs_security_groups: Vec<String>,
    /// ecs: give each task a public IP (subnets with an internet gateway and no NAT).
    #[arg(long)]
    pub ecs_assign_public_ip: bool,
    /// ecs: the container that runs flow (default: the task definition's first).
    #[arg(long)]
    pub ecs_container: Option<String>,
    /// kubernetes: flow's container image.
    #[arg(long)]
    pub k8s_image: Option<String>,
    /// kubernetes: the namespace (default: the context's, else `default`).
    #[arg(long)]
    pub k8s_namespace: Option<String>,
    /// kubernetes: the kubeconfig context (default: the current one).
    #[arg(long)]
    pub k8s_context: Option<String>,
    /// kubernetes: the pods' service account (its role reaches the S3 place).
    #[arg(long)]
    pub k8s_service_account: Option<String>,
    /// kubernetes: the kubeconfig (default: the first file of KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<String>,
}

impl SpreadArgs {
    /// The spread these flags ask for, or what is missing or out of place, naming the flag.
    pub fn spread(self, workers: usize) -> Result<crate::load::spread::Spread, crate::error::Error> {
        use crate::error::Error::Usage;
        use crate::load::spread::{LoadRunner, Spread};
        let runner =
            clap::ValueEnum::to_possible_value(&self.runner).map(|v| v.get_name().to_string()).unwrap_or_default();
        let need = |v: Option<String>, flag: &str| v.ok_or_else(|| Usage(format!("--runner {runner} needs {flag}")));
        let ecs_set = self.ecs_cluster.is_some() || self.ecs_task_definition.is_some() || !self.ecs_subnets.is_empty();
        let k8s_set = self.k8s_image.is_some() || self.k8s_namespace.is_some() || self.kubeconfig.is_some();
        let runner = match self.runner {
            RunnerKind::Local if ecs_set || k8s_set => {
                return Err(Usage(
                    "--ecs-* and --k8s-*/--kubeconfig flags need --runner ecs or --runner kubernetes".into(),
                ))
            }
            RunnerKind::Local => LoadRunner::Local,
            RunnerKind::Ecs => LoadRunner::Ecs(crate::domain::catalogue::EcsRunner {
                cluster: need(self.ecs_cluster.clone(), "--ecs-cluster")?,
                task_definition: need(self.ecs_task_definition.clone(), "--ecs-task-definition")?,
                subnets: self.ecs_subnets.clone(),
                security_groups: self.ecs_security_groups.clone(),
                assign_public_ip: self.ecs_assign_public_ip,
                container: self.ecs_container.clone(),
            }),
            RunnerKind::Kubernetes => LoadRunner::Kubernetes(crate::domain::catalogue::KubernetesRunner {
                image: need(self.k8s_image.clone(), "--k8s-image")?,
                namespace: self.k8s_namespace.clone(),
                context: self.k8s_context.clone(),
                service_account: self.k8s_service_account.clone(),
                kubeconfig: self.kubeconfig.clone(),
            }),
        };
        let touched = self.place.is_some() || self.worker_lead.is_some() || self.runner != RunnerKind::Local;
        if workers == 1 && touched {
            return Err(Usage("--runner, --place and --worker-lead spread a run over workers: add --workers N".into()));
        }
        let spread = Spread { workers, runner, place: self.place, lead: self.worker_lead };
        if workers > 1 {
            spread.check()?;
        }
        Ok(spread)
    }
}

/// How `flow graph` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
    Drawio,
}

/// Which AWS resources `flow graph --architecture` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Architecture {
    Current,
    Target,
}

/// How `flow spec` reads requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Extract {
    Builtin,
    Llm,
}

/// Which model `flow spec --extract llm` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    Openai,
    Bedrock,
}

impl From<Model> for crate::app::plan::Planner {
    fn from(m: Model) -> Self {
        match m {
            Model::Openai => crate::app::plan::Planner::Openai,
            Model::Bedrock => crate::app::plan::Planner::Bedrock,
        }
    }
}
