//! Distributed load beyond local processes: the ecs runner's RunTask, DescribeTasks and
//! StopTask through the real SDK against moto, and the kubernetes runner against a fake API
//! server (below: the batch/v1 Job and v1 Pod shapes from the Kubernetes API reference,
//! written for these tests, not recorded from a cluster). The run's place is an S3 prefix in
//! moto. Moto runs no containers and the fake no pods, so each test does what the platform
//! would: it starts the command the runner asked for (`flow load-worker s3://…`) as a process
//! here, and for Kubernetes reports the pods' phases from those processes. Also: an abort on
//! a failed threshold stops every local worker.

use std::collections::BTreeMap;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Response;
use serde_json::{json, Value};

use crate::serve::serve;
use crate::state::bucket;
use crate::support::{block, moto_conf, moto_url, Project, Server};
use flow::exit::{CANCELLED, FAILED, INVALID, OK};

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

/// An ECS cluster with a Fargate task definition for flow's image, and two subnets of moto's
/// default VPC with its default security group.
fn ecs_account(cluster: &str) -> (Vec<String>, String) {
    use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode};
    block(async {
        // Moto moves a task on towards STOPPED each time it is described; a real task runs
        // until its container exits or it is stopped.
        let manual = json!({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000}});
        let r = reqwest::Client::new()
            .post(format!("{}/moto-api/state-manager/set-transition", moto_url()))
            .body(manual.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let (ecs, ec2) =
            (aws_sdk_ecs::Client::new(&moto_conf("eu-west-1")), aws_sdk_ec2::Client::new(&moto_conf("eu-west-1")));
        ecs.create_cluster().cluster_name(cluster).send().await.unwrap();
        ecs.register_task_definition()
            .family("flow-load")
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("1024")
            .memory("2048")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("flow")
                    .image("flow:test")
                    .cpu(1024)
                    .memory(2048)
                    .essential(true)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        // The default VPC's (other tests make VPCs of their own in this region).
        let default = aws_sdk_ec2::types::Filter::builder().name("default-for-az").values("true").build();
        let subnets = ec2.describe_subnets().filters(default).send().await.unwrap();
        let mut ids: Vec<String> = subnets.subnets().iter().filter_map(|s| s.subnet_id().map(str::to_string)).collect();
        ids.truncate(2);
        let vpc = subnets.subnets()[0].vpc_id().unwrap().to_string();
        let in_vpc = aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(vpc).build();
        let sgs = ec2.describe_security_groups().filters(in_vpc).send().await.unwrap();
        let sg = sgs.security_groups().iter().find(|g| g.group_name() == Some("default")).unwrap();
        (ids, sg.group_id().unwrap().to_string())
    })
}

/// The cluster's tasks: (ARN, last status, stopped reason, subnet, the container's command
/// and environment as overridden).
type Task = (String, String, String, String, Vec<String>, Vec<(String, String)>);

fn tasks(cluster: &str) -> Vec<Task> {
    block(async {
        let ecs = aws_sdk_ecs::Client::new(&moto_conf("eu-west-1"));
        let arns = ecs.list_tasks().cluster(cluster).send().await.unwrap().task_arns().to_vec();
        let mut arns_stopped = ecs
            .list_tasks()
            .cluster(cluster)
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
            .send()
            .await
            .unwrap()
            .task_arns()
            .to_vec();
        arns_stopped.extend(arns);
        if arns_stopped.is_empty() {
            return vec![];
        }
        let out = ecs.describe_tasks().cluster(cluster).set_tasks(Some(arns_stopped)).send().await.unwrap();
        out.tasks()
            .iter()
            .map(|t| {
                let o = t.overrides().and_then(|o| o.container_overrides().first());
                let subnet = t
                    .attachments()
                    .iter()
                    .flat_map(|a| a.details())
                    .find(|d| d.name() == Some("subnetId"))
                    .and_then(|d| d.value())
                    .unwrap_or_default();
                (
                    t.task_arn().unwrap_or_default().to_string(),
                    t.last_status().unwrap_or_default().to_string(),
                    t.stopped_reason().unwrap_or_default().to_string(),
                    subnet.to_string(),
                    o.map(|o| o.command().to_vec()).unwrap_or_default(),
                    o.map(|o| {
                        o.environment()
                            .iter()
                            .map(|e| {
                                (e.name().unwrap_or_default().to_string(), e.value().unwrap_or_default().to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                )
            })
            .collect()
    })
}

/// Two Fargate tasks, one per subnet, each run here as the platform would run its container:
/// their figures meet in S3 and merge into one valid verdict; every task is stopped at the end.
#[test]
fn ecs_tasks_run_the_workers_and_their_figures_merge() {
    let server = Server::start();
    let p = Project::alone();
    p.aws(&moto_url());
    let cluster = format!("load-{}", std::process::id());
    let (subnets, sg) = ecs_account(&cluster);
    let place = format!("s3://{}/runs/one", bucket());

    // A task definition that does not exist: refused before anything starts, in AWS's words.
    let r = p.flow(&[
        "loadtest",
        &server.url("/ok"),
        "--rate",
        "10",
        "--duration",
        "1s",
        "--workers",
        "2",
        "--runner",
        "ecs",
        "--ecs-cluster",
        &cluster,
        "--ecs-task-definition",
        "flow-missing",
        "--ecs-subnet",
        &subnets[0],
        "--place",
        &place,
    ]);
    assert_eq!(r.code, FAILED, "{}", r.stderr);
    assert!(r.stderr.contains("DescribeTaskDefinition flow-missing"), "{}", r.stderr);
    assert!(tasks(&cluster).is_empty());

    let url = server.url("/ok");
    let child = p.spawn(&[
        "loadtest",
        &url,
        "--rate",
        "100",
        "--duration",
        "2s",
        "--workers",
        "2",
        "--runner",
        "ecs",
        "--ecs-cluster",
        &cluster,
        "--ecs-task-definition",
        "flow-load",
        "--ecs-subnet",
        &subnets.join(","),
        "--ecs-security-group",
        &sg,
        "--place",
        &place,
        "--worker-lead",
        "8s",
        "--json",
    ]);
    let mut workers: BTreeMap<String, Child> = BTreeMap::new();
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        for (arn, status, _, _, command, env) in tasks(&cluster) {
            if status == "RUNNING" && !workers.contains_key(&arn) {
                let args: Vec<&str> = command.iter().map(String::as_str).collect();
                let mut c = p.cmd(&args);
                for (k, v) in &env {
                    c.env(k, v);
                }
                workers.insert(arn, c.spawn().unwrap());
            }
        }
        assert!(Instant::now() < deadline, "the run did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let r = json_of(&out);
    assert_eq!(out.status.code(), Some(OK), "{r}");
    assert_eq!((r["valid"].as_bool(), r["config"]["runner"].as_str()), (Some(true), Some("ecs")), "{r}");
    assert_eq!(r["counts"]["sent"], 200, "{}", r["counts"]);
    let seen = tasks(&cluster);
    assert_eq!(seen.len(), 2);
    for (k, (arn, status, reason, subnet, command, env)) in seen
        .iter()
        .filter(|t| t.4.last().is_some_and(|j| j.ends_with("worker-0.job.json")))
        .chain(seen.iter().filter(|t| t.4.last().is_some_and(|j| j.ends_with("worker-1.job.json"))))
        .enumerate()
    {
        assert_eq!(command, &["load-worker".to_string(), format!("{place}/worker-{k}.job.json")]);
        assert_eq!(env, &[("AWS_REGION".to_string(), "eu-west-1".to_string())]);
        assert_eq!(subnet, &subnets[k], "worker {k} in the k-th subnet");
        let id = arn.rsplit('/').next().unwrap();
        assert_eq!(r["workers"][k]["worker"], format!("worker {} of 2 (task {id} in {subnet})", k + 1));
        assert_eq!(r["workers"][k]["target_rate"], 50.0);
        // The coordinator stops every task it started once the run is over.
        assert_eq!((status.as_str(), reason.as_str()), ("STOPPED", "flow loadtest: the run is over"));
    }
    for (_, mut w) in workers {
        assert!(w.wait().unwrap().success());
    }

    // Ctrl-C while the tasks wait for the shared start: every task is stopped, nothing judged.
    let child = p.spawn(&[
        "loadtest",
        &url,
        "--rate",
        "10",
        "--duration",
        "60s",
        "--workers",
        "2",
        "--runner",
        "ecs",
        "--ecs-cluster",
        &cluster,
        "--ecs-task-definition",
        "flow-load",
        "--ecs-subnet",
        &subnets.join(","),
        "--ecs-security-group",
        &sg,
        "--place",
        &format!("{place}-2"),
        "--worker-lead",
        "60s",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tasks(&cluster).iter().filter(|t| t.1 == "RUNNING").count() < 2 {
        assert!(Instant::now() < deadline, "the tasks were never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let int = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(int.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(CANCELLED), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the 2 workers were stopped"));
    let all = tasks(&cluster);
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|t| t.1 == "STOPPED"), "{all:?}");
}

/// What the fake API server holds: the Jobs created, the pods' states the test reports, the
/// requests seen (method, path, bearer token).
#[derive(Default)]
struct Cluster {
    jobs: Vec<Value>,
    /// index -> (pod name, phase, container state)
    pods: BTreeMap<usize, (String, String, Value)>,
    requests: Vec<(String, String, String)>,
    deleted: Vec<String>,
}

fn kube_api(state: Arc<Mutex<Cluster>>) -> u16 {
    serve(move |req: hyper::Request<hyper::body::Incoming>| {
        let state = state.clone();
        async move {
            let (method, path) = (req.method().to_string(), req.uri().to_string());
            let token = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let mut s = state.lock().unwrap();
            s.requests.push((method.clone(), path.clone(), token));
            let (status, answer) = if method == "POST" && path == "/apis/batch/v1/namespaces/load/jobs" {
                let job: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                s.jobs.push(job.clone());
                (201, job)
            } else if method == "GET" && path.starts_with("/api/v1/namespaces/load/pods?labelSelector=flow%2Frun%3D") {
                let items: Vec<Value> = s
                    .pods
                    .iter()
                    .map(|(k, (name, phase, state))| {
                        json!({
                            "metadata": {"name": name, "annotations": {"batch.kubernetes.io/job-completion-index": k.to_string()}},
                            "status": {"phase": phase, "containerStatuses": [{"name": "flow", "state": state}]},
                        })
                    })
                    .collect();
                (200, json!({"kind": "PodList", "apiVersion": "v1", "items": items}))
            } else if method == "DELETE" && path.starts_with("/apis/batch/v1/namespaces/load/jobs/") {
                s.deleted.push(path.clone());
                (200, json!({"kind": "Status", "status": "Success"}))
            } else {
                (
                    404,
                    json!({"kind": "Status", "status": "Failure", "message": format!("{path} not found"), "code": 404}),
                )
            };
            Ok::<_, std::convert::Infallible>(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(answer.to_string())))
                    .unwrap(),
            )
        }
    })
}

/// A Job of three pods: two run their workers (here, as a kubelet would), the third cannot
/// pull its image. The run is invalid naming that pod and its reason, the two others' figures
/// are merged, every call carried the exec plugin's token, and the Job is deleted at the end.
#[test]
fn a_kubernetes_job_runs_the_workers_and_a_pod_that_never_starts_is_named() {
    let server = Server::start();
    let p = Project::alone();
    p.aws(&moto_url());
    let state = Arc::new(Mutex::new(Cluster::default()));
    let port = kube_api(state.clone());
    let credential =
        r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec"}}"#;
    p.write("token.sh", format!("echo '{credential}'\n"));
    let script = p.path("token.sh").display().to_string();
    p.write(
        "kubeconfig",
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: test\n  context:\n    cluster: fake\n    user: tester\n    namespace: load\n\
             users:\n- name: tester\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [\"{script}\"]\n"
        ),
    );
    let place = format!("s3://{}/runs/k8s", bucket());
    let kubeconfig = p.path("kubeconfig").display().to_string();
    let mut child = p.spawn(&[
        "loadtest",
        &server.url("/ok"),
        "--rate",
        "90",
        "--duration",
        "2s",
        "--workers",
        "3",
        "--runner",
        "kubernetes",
        "--k8s-image",
        "registry.example/flow:test",
        "--kubeconfig",
        &kubeconfig,
        "--place",
        &place,
        "--worker-lead",
        "8s",
        "--json",
    ]);
    let mut pods: Vec<(usize, Child)> = vec![];
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        let job = state.lock().unwrap().jobs.first().cloned();
        if let (Some(job), true) = (job, pods.is_empty()) {
            let name = job["metadata"]["name"].as_str().unwrap().to_string();
            let c = &job["spec"]["template"]["spec"]["containers"][0];
            let args: Vec<String> =
                c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
            let mut s = state.lock().unwrap();
            for k in 0..2 {
                let args: Vec<String> =
                    args.iter().map(|a| a.replace("$(JOB_COMPLETION_INDEX)", &k.to_string())).collect();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                pods.push((k, p.cmd(&args).spawn().unwrap()));
                s.pods.insert(k, (format!("{name}-{k}-abcde"), "Running".into(), json!({"running": {}})));
            }
            let waiting = json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"registry.example/flow:test\""}});
            s.pods.insert(2, (format!("{name}-2-fghij"), "Pending".into(), waiting));
        }
        for (k, c) in &mut pods {
            if let Some(st) = c.try_wait().unwrap() {
                let phase = if st.success() { "Succeeded" } else { "Failed" };
                let code = st.code().unwrap_or(137);
                let mut s = state.lock().unwrap();
                let pod = s.pods.get_mut(k).unwrap();
                pod.1 = phase.into();
                pod.2 =
                    json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }}});
            }
        }
        assert!(Instant::now() < deadline, "the run did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let r = json_of(&out);
    assert_eq!(out.status.code(), Some(INVALID), "{r}");
    assert_eq!(r["config"]["runner"], "kubernetes");
    let s = state.lock().unwrap();
    let job = &s.jobs[0];
    let name = job["metadata"]["name"].as_str().unwrap();
    assert_eq!(
        (job["spec"]["completions"].as_u64(), job["spec"]["completionMode"].as_str()),
        (Some(3), Some("Indexed"))
    );
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "registry.example/flow:test");
    assert_eq!(c["args"], json!(["load-worker", format!("{place}/worker-$(JOB_COMPLETION_INDEX).job.json")]));
    assert_eq!(c["env"], json!([{"name": "AWS_REGION", "value": "eu-west-1"}]));
    let why = r["invalid_reason"].as_str().unwrap();
    assert!(
        why.starts_with(&format!(
            "worker 3 of 3 (pod {name}-2-fghij) never started: ImagePullBackOff: Back-off pulling image"
        )),
        "{why}"
    );
    // The two pods that ran: their shares in full, merged.
    assert_eq!(r["counts"]["sent"], 120, "{}", r["counts"]);
    assert_eq!(r["workers"][0]["worker"], format!("worker 1 of 3 (pod {name}-0-abcde)"));
    assert_eq!(
        r["workers"][2]["failed"],
        "never started: ImagePullBackOff: Back-off pulling image \"registry.example/flow:test\""
    );
    assert!(s.requests.iter().all(|(_, _, t)| t == "Bearer from-exec"), "{:?}", s.requests);
    assert_eq!(s.deleted, [format!("/apis/batch/v1/namespaces/load/jobs/{name}?propagationPolicy=Background")]);
    drop(s);
    for (_, mut c) in pods {
        assert!(c.wait().unwrap().success());
    }

    // A kubeconfig that names a missing context: refused before anything starts.
    let r = p.flow(&[
        "loadtest",
        &server.url("/ok"),
        "--rate",
        "10",
        "--duration",
        "1s",
        "--workers",
        "2",
        "--runner",
        "kubernetes",
        "--k8s-image",
        "x",
        "--kubeconfig",
        &kubeconfig,
        "--k8s-context",
        "prod",
        "--place",
        &place,
    ]);
    assert_eq!(r.code, FAILED, "{}", r.stderr);
    assert!(r.stderr.contains("has no context `prod`"), "{}", r.stderr);
}

/// With --abort-on-fail, a success threshold failing on the merged figures stops every
/// worker early: the run is valid, failed and marked aborted.
#[test]
fn an_abort_on_a_failed_threshold_stops_every_worker() {
    let server = Server::start();
    let p = Project::alone();
    let r = p.flow(&[
        "loadtest",
        &server.url("/health"),
        "--rate",
        "40",
        "--duration",
        "30s",
        "--workers",
        "2",
        "--threshold",
        "success>=99%",
        "--abort-on-fail",
        "--json",
    ]);
    assert_eq!(r.code, FAILED, "{}", r.stderr);
    let v = r.json();
    assert_eq!((v["valid"].as_bool(), v["aborted"].as_bool()), (Some(true), Some(true)), "{v}");
    let sent = v["counts"]["sent"].as_u64().unwrap();
    assert!(sent < 40 * 15, "stopped well before the 30 s were up: {sent} sent");
    assert_eq!(v["workers"].as_array().unwrap().len(), 2);
    assert_eq!(v["success_rate_pct"], 0.0);
}
