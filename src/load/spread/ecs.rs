//! The `ecs` runner: one Fargate task per worker (ECS RunTask), the subnets taken in turn so
//! the load leaves from several AZs; the task definition runs flow's container image and the
//! worker's command (`load-worker s3://…/worker-K.job.json`) is the container's override.
//! DescribeTasks says how each ended; StopTask stops those still running.

use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, LaunchType, NetworkConfiguration,
    TaskOverride,
};
use aws_sdk_ecs::Client;

use super::{Ended, Runner};
use crate::aws::{Aws, ECS};
use crate::domain::catalogue::EcsRunner;
use crate::load::Error;

/// The run cannot have its workers: in AWS's (or the SDK's) words.
fn refused(e: impl std::fmt::Display) -> Error {
    Error::Runner(e.to_string())
}

pub struct Ecs {
    aws: Aws,
    client: Client,
    cluster: String,
    task_definition: String,
    subnets: Vec<String>,
    security_groups: Vec<String>,
    public_ip: bool,
    container: Option<String>,
    /// Worker k's task ARN and subnet, once RunTask answered; whether it has ended.
    tasks: Vec<(Option<String>, String, bool)>,
    /// Workers RunTask refused, with AWS's reason, for the next poll.
    refused: Vec<(usize, String)>,
}

impl Ecs {
    pub async fn new(conf: &EcsRunner) -> Result<Ecs, Error> {
        let aws = crate::aws::config(None, &Default::default()).await.map_err(refused)?;
        Ok(Ecs {
            client: Client::new(&aws.conf),
            aws,
            cluster: conf.cluster.clone(),
            task_definition: conf.task_definition.clone(),
            subnets: conf.subnets.clone(),
            security_groups: conf.security_groups.clone(),
            public_ip: conf.assign_public_ip,
            container: conf.container.clone(),
            tasks: vec![],
            refused: vec![],
        })
    }

    /// The container that runs flow: the one named, else the task definition's first.
    async fn container(&self) -> Result<String, Error> {
        if let Some(c) = &self.container {
            return Ok(c.clone());
        }
        let td = self.client.describe_task_definition().task_definition(&self.task_definition).send().await.map_err(
            |e| refused(self.aws.error(ECS, format!("DescribeTaskDefinition {}", self.task_definition), &e)),
        )?;
        td.task_definition()
            .and_then(|t| t.container_definitions().first())
            .and_then(|c| c.name())
            .map(str::to_string)
            .ok_or_else(|| refused(format!("task definition {} has no container", self.task_definition)))
    }
}

#[async_trait]
impl Runner for Ecs {
    fn kind(&self) -> &'static str {
        "ecs"
    }

    async fn start(&mut self, jobs: &[String], _stop_by_ms: u64) -> Result<(), Error> {
        let container = self.container().await?;
        let region = self.aws.region.clone();
        for (k, job) in jobs.iter().enumerate() {
            let subnet = self.subnets[k % self.subnets.len()].clone();
            let net = AwsVpcConfiguration::builder()
                .subnets(&subnet)
                .set_security_groups(Some(self.security_groups.clone()).filter(|g| !g.is_empty()))
                .assign_public_ip(if self.public_ip { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled })
                .build()
                .map_err(refused)?;
            let command = ContainerOverride::builder()
                .name(&container)
                .command("load-worker")
                .command(job)
                .environment(KeyValuePair::builder().name("AWS_REGION").value(&region).build())
                .build();
            let out = self
                .client
                .run_task()
                .cluster(&self.cluster)
                .task_definition(&self.task_definition)
                .launch_type(LaunchType::Fargate)
                .count(1)
                .started_by("flow-loadtest")
                .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(net).build())
                .overrides(TaskOverride::builder().container_overrides(command).build())
                .send()
                .await;
            let out = match out {
                Ok(o) => o,
                // Nothing started for this worker; the ones before it are stopped by the
                // coordinator, which reports this error.
                Err(e) => {
                    let call = format!("RunTask {} in cluster {}", self.task_definition, self.cluster);
                    return Err(refused(self.aws.error(ECS, call, &e)));
                }
            };
            let arn = out.tasks().first().and_then(|t| t.task_arn()).map(str::to_string);
            if arn.is_none() {
                let why = out.failures().first().and_then(|f| f.reason()).unwrap_or("no task and no reason given");
                self.refused.push((k, format!("was not started: RunTask: {why}")));
            }
            self.tasks.push((arn, subnet, false));
        }
        Ok(())
    }

    fn which(&self, k: usize) -> String {
        match self.tasks.get(k) {
            Some((Some(arn), subnet, _)) => {
                format!("task {} in {subnet}", arn.rsplit('/').next().unwrap_or(arn))
            }
            Some((None, subnet, _)) => format!("no task, in {subnet}"),
            None => "not started".into(),
        }
    }

    async fn poll(&mut self) -> Vec<(usize, Ended)> {
        let mut ended: Vec<(usize, Ended)> = self.refused.drain(..).map(|(k, why)| (k, Ended::Failed(why))).collect();
        let running: Vec<String> = self.tasks.iter().filter(|t| !t.2).filter_map(|t| t.0.clone()).collect();
        if running.is_empty() {
            return ended;
        }
        // DescribeTasks takes up to 100 tasks at once; a failed call is tried again next time.
        for batch in running.chunks(100) {
            let Ok(out) =
                self.client.describe_tasks().cluster(&self.cluster).set_tasks(Some(batch.to_vec())).send().await
            else {
                continue;
            };
            for t in out.tasks().iter().filter(|t| t.last_status() == Some("STOPPED")) {
                let Some(k) = self.tasks.iter().position(|x| x.0.as_deref() == t.task_arn()) else { continue };
                self.tasks[k].2 = true;
                let c = t.containers().first();
                let code = c.and_then(|c| c.exit_code());
                // A worker that ran to its end: its container exited 0, which stopped the task.
                let reason = t.stopped_reason().unwrap_or("");
                let how = if code == Some(0)
                    && (reason.is_empty() || reason.starts_with("Essential container in task exited"))
                {
                    Ended::Done
                } else {
                    let mut why = format!("stopped: {}", if reason.is_empty() { "no reason given" } else { reason });
                    if let Some(code) = code.filter(|c| *c != 0) {
                        why.push_str(&format!(" (exit code {code})"));
                    }
                    if let Some(r) = c.and_then(|c| c.reason()) {
                        why.push_str(&format!(": {r}"));
                    }
                    Ended::Failed(why)
                };
                ended.push((k, how));
            }
        }
        ended
    }

    async fn stop(&mut self) {
        for (arn, _, ended) in self.tasks.iter_mut().filter(|t| !t.2) {
            if let Some(arn) = arn {
                let _ = self
                    .client
                    .stop_task()
                    .cluster(&self.cluster)
                    .task(arn.as_str())
                    .reason("flow loadtest: the run is over")
                    .send()
                    .await;
            }
            *ended = true;
        }
    }
}
