//! The `kubernetes` runner: one Job with a pod per worker (Indexed completions: pod K runs
//! `load-worker …/worker-K.job.json` through `$(JOB_COMPLETION_INDEX)`), created through the
//! API server the kubeconfig names, read as kubectl reads it: `--kubeconfig`, else the first
//! file of `KUBECONFIG`, else `~/.kube/config`; the current context unless one is named; a
//! bearer token (inline, `tokenFile` or an `exec` plugin such as `aws eks get-token`) or a
//! client certificate; the cluster's CA. The Job's `activeDeadlineSeconds` ends every pod
//! at the run's end plus grace even if the coordinator is gone; deleting it stops them early.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Ended, Runner};
use crate::domain::catalogue::KubernetesRunner;
use crate::load::Error;

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    #[serde(default)]
    clusters: Vec<NamedCluster>,
    #[serde(default)]
    users: Vec<NamedUser>,
}

#[derive(Debug, Deserialize)]
struct NamedContext {
    name: String,
    context: Context,
}
#[derive(Debug, Deserialize)]
struct Context {
    cluster: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}
#[derive(Debug, Deserialize)]
struct NamedCluster {
    name: String,
    cluster: Cluster,
}
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: String,
    #[serde(default)]
    certificate_authority_data: Option<String>,
    #[serde(default)]
    certificate_authority: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
}
#[derive(Debug, Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: User,
}
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct User {
    #[serde(default)]
    token: Option<String>,
    #[serde(default, rename = "tokenFile")]
    token_file: Option<String>,
    #[serde(default)]
    client_certificate_data: Option<String>,
    #[serde(default)]
    client_key_data: Option<String>,
    #[serde(default)]
    client_certificate: Option<String>,
    #[serde(default)]
    client_key: Option<String>,
    #[serde(default)]
    exec: Option<Exec>,
}
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Exec {
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Option<Vec<EnvVar>>,
    #[serde(default)]
    api_version: Option<String>,
}
#[derive(Debug, Deserialize)]
struct EnvVar {
    name: String,
    value: String,
}

/// Why the Kubernetes API cannot be used for a run.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig cannot be found, read or used (which file, which entry, why).
    #[error("{0}")]
    Config(String),
    #[error("the kubeconfig's exec plugin `{command}`{why}")]
    Exec { command: String, why: String },
    #[error("{what}: no answer from {server}: {why}")]
    Unreachable { what: String, server: String, why: String },
    /// The API server answered with an error (its own Status message where it gave one).
    #[error("{what}: HTTP {status}: {message}")]
    Refused { what: String, status: u16, message: String },
    /// The workers' jobs cannot make a Job.
    #[error("{0}")]
    Job(String),
}

impl From<KubeError> for Error {
    fn from(e: KubeError) -> Error {
        Error::Runner(e.to_string())
    }
}

/// The API server to talk to, as the kubeconfig's context says.
pub struct Api {
    pub server: String,
    pub namespace: String,
    http: reqwest::Client,
    token: Option<String>,
}

fn file_or_data(
    data: &Option<String>,
    file: &Option<String>,
    what: &str,
    at: &std::path::Path,
) -> Result<Option<Vec<u8>>, KubeError> {
    if let Some(d) = data {
        return base64::engine::general_purpose::STANDARD
            .decode(d.trim())
            .map(Some)
            .map_err(|e| KubeError::Config(format!("{}: {what}-data: {e}", at.display())));
    }
    match file {
        Some(f) => {
            let path = at.parent().unwrap_or(std::path::Path::new(".")).join(f);
            std::fs::read(&path)
                .map(Some)
                .map_err(|e| KubeError::Config(format!("{}: {what} {}: {e}", at.display(), path.display())))
        }
        None => Ok(None),
    }
}

/// Where kubectl would read the kubeconfig from.
fn kubeconfig_path(given: Option<&str>) -> Result<PathBuf, KubeError> {
    if let Some(p) = given {
        return Ok(PathBuf::from(p));
    }
    if let Some(first) =
        std::env::var("KUBECONFIG").ok().and_then(|v| v.split(':').find(|p| !p.is_empty()).map(PathBuf::from))
    {
        return Ok(first);
    }
    let home = std::env::var("HOME")
        .map_err(|_| KubeError::Config("no kubeconfig: set KUBECONFIG or HOME, or give --kubeconfig".into()))?;
    Ok(PathBuf::from(home).join(".kube/config"))
}

impl Api {
    /// The API server, namespace and credentials of `context` (default: the current one) in
    /// the kubeconfig at `path` (default: as kubectl finds it); `namespace` overrides the
    /// context's.
    pub async fn connect(path: Option<&str>, context: Option<&str>, namespace: Option<&str>) -> Result<Api, KubeError> {
        let at = kubeconfig_path(path)?;
        let text = std::fs::read_to_string(&at)
            .map_err(|e| KubeError::Config(format!("reading the kubeconfig {}: {e}", at.display())))?;
        let conf: Config = serde_yaml_ng::from_str(&text)
            .map_err(|e| KubeError::Config(format!("the kubeconfig {}: {e}", at.display())))?;
        let name = context.map(str::to_string).or(conf.current_context.clone()).ok_or_else(|| {
            KubeError::Config(format!("the kubeconfig {} has no current context: name one", at.display()))
        })?;
        let ctx = conf
            .contexts
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.context)
            .ok_or_else(|| KubeError::Config(format!("the kubeconfig {} has no context `{name}`", at.display())))?;
        let cluster = conf.clusters.iter().find(|c| c.name == ctx.cluster).map(|c| &c.cluster).ok_or_else(|| {
            KubeError::Config(format!(
                "the kubeconfig {} has no cluster `{}` (context `{name}`)",
                at.display(),
                ctx.cluster
            ))
        })?;
        let user = match &ctx.user {
            Some(u) => Some(conf.users.iter().find(|x| &x.name == u).map(|x| &x.user).ok_or_else(|| {
                KubeError::Config(format!("the kubeconfig {} has no user `{u}` (context `{name}`)", at.display()))
            })?),
            None => None,
        };
        let mut http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        if let Some(ca) = file_or_data(
            &cluster.certificate_authority_data,
            &cluster.certificate_authority,
            "certificate-authority",
            &at,
        )? {
            let certs = reqwest::Certificate::from_pem_bundle(&ca)
                .map_err(|e| KubeError::Config(format!("{}: the cluster's CA: {e}", at.display())))?;
            for c in certs {
                http = http.add_root_certificate(c);
            }
        }
        if cluster.insecure_skip_tls_verify {
            http = http.danger_accept_invalid_certs(true);
        }
        let mut token = None;
        if let Some(u) = user {
            let cert = file_or_data(&u.client_certificate_data, &u.client_certificate, "client-certificate", &at)?;
            let key = file_or_data(&u.client_key_data, &u.client_key, "client-key", &at)?;
            if let (Some(mut cert), Some(key)) = (cert, key) {
                cert.push(b'\n');
                cert.extend_from_slice(&key);
                let id = reqwest::Identity::from_pem(&cert)
                    .map_err(|e| KubeError::Config(format!("{}: the client certificate: {e}", at.display())))?;
                http = http.identity(id);
            }
            token = match (&u.token, &u.token_file, &u.exec) {
                (Some(t), _, _) => Some(t.clone()),
                (None, Some(f), _) => Some(
                    std::fs::read_to_string(f)
                        .map_err(|e| KubeError::Config(format!("{}: tokenFile {f}: {e}", at.display())))?
                        .trim()
                        .to_string(),
                ),
                (None, None, Some(x)) => Some(exec_token(x).await?),
                _ => None,
            };
        }
        let http = http.build().map_err(|e| KubeError::Config(format!("the Kubernetes API client: {e}")))?;
        let namespace = namespace.map(str::to_string).or(ctx.namespace.clone()).unwrap_or_else(|| "default".into());
        Ok(Api { server: cluster.server.trim_end_matches('/').to_string(), namespace, http, token })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value, KubeError> {
        let url = format!("{}{path}", self.server);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.to_string());
        }
        let what = format!("{method} {path}");
        let resp = req.send().await.map_err(|e| KubeError::Unreachable {
            what: what.clone(),
            server: self.server.clone(),
            why: crate::aws::chain(&e),
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            // The API server's own Status message where it gave one.
            let msg = v["message"].as_str().map(str::to_string).unwrap_or_else(|| text.chars().take(200).collect());
            return Err(KubeError::Refused { what, status: status.as_u16(), message: msg });
        }
        Ok(v)
    }
}

fn exec(x: &Exec, why: String) -> KubeError {
    KubeError::Exec { command: x.command.clone(), why }
}

/// A token from a kubeconfig `exec` plugin (ExecCredential on its stdout).
async fn exec_token(x: &Exec) -> Result<String, KubeError> {
    let api = x.api_version.clone().unwrap_or_else(|| "client.authentication.k8s.io/v1".into());
    let info = json!({"apiVersion": api, "kind": "ExecCredential", "spec": {"interactive": false}});
    let mut cmd = tokio::process::Command::new(&x.command);
    cmd.args(&x.args).env("KUBERNETES_EXEC_INFO", info.to_string()).stdin(std::process::Stdio::null());
    for e in x.env.iter().flatten() {
        cmd.env(&e.name, &e.value);
    }
    let out = cmd.output().await.map_err(|e| exec(x, format!(": {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(exec(x, format!(" failed: {}", err.trim())));
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| exec(x, format!(" printed no ExecCredential: {e}")))?;
    v["status"]["token"].as_str().map(str::to_string).ok_or_else(|| exec(x, " gave no token".into()))
}

pub struct Kube {
    conf: KubernetesRunner,
    api: Option<Api>,
    region: Option<String>,
    job: String,
    workers: usize,
    /// Worker k's pod name once seen; whether it has ended.
    pods: Vec<(Option<String>, bool)>,
}

impl Kube {
    pub fn new(conf: &KubernetesRunner, region: Option<String>) -> Kube {
        let job = format!("flow-load-{}", crate::clock::system_ms());
        Kube { conf: conf.clone(), api: None, region, job, workers: 0, pods: vec![] }
    }

    /// The Job that runs `jobs` (one pod per index), ending by itself `deadline_s` from now.
    fn manifest(&self, jobs: &[String], deadline_s: u64) -> Result<Value, KubeError> {
        let KubernetesRunner { image, service_account, .. } = &self.conf;
        let first = jobs.first().ok_or_else(|| KubeError::Job("no worker to start".into()))?;
        let arg =
            first.strip_suffix("worker-0.job.json").map(|p| format!("{p}worker-$(JOB_COMPLETION_INDEX).job.json"));
        let arg = arg.ok_or_else(|| KubeError::Job(format!("{first}: not a worker's job")))?;
        let n = jobs.len();
        let mut env = vec![];
        if let Some(r) = &self.region {
            env.push(json!({"name": "AWS_REGION", "value": r}));
        }
        let mut pod = json!({
            "restartPolicy": "Never",
            "containers": [{"name": "flow", "image": image, "args": ["load-worker", arg], "env": env}],
        });
        if let Some(sa) = service_account {
            pod["serviceAccountName"] = json!(sa);
        }
        let labels: BTreeMap<&str, &str> =
            [("app.kubernetes.io/managed-by", "flow"), ("flow/run", self.job.as_str())].into();
        Ok(json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": self.job, "labels": labels},
            "spec": {
                "completionMode": "Indexed",
                "completions": n,
                "parallelism": n,
                "backoffLimit": 0,
                "activeDeadlineSeconds": deadline_s,
                "ttlSecondsAfterFinished": 3600,
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        }))
    }
}

#[async_trait]
impl Runner for Kube {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    async fn start(&mut self, jobs: &[String], stop_by_ms: u64) -> Result<(), Error> {
        let KubernetesRunner { namespace, context, kubeconfig, .. } = &self.conf;
        let api = Api::connect(kubeconfig.as_deref(), context.as_deref(), namespace.as_deref()).await?;
        let deadline_s = stop_by_ms.saturating_sub(crate::clock::system_ms()) / 1000 + 30;
        let manifest = self.manifest(jobs, deadline_s)?;
        api.call(reqwest::Method::POST, &format!("/apis/batch/v1/namespaces/{}/jobs", api.namespace), Some(&manifest))
            .await?;
        self.workers = jobs.len();
        self.pods = vec![(None, false); jobs.len()];
        self.api = Some(api);
        Ok(())
    }

    fn which(&self, k: usize) -> String {
        match self.pods.get(k).and_then(|p| p.0.as_ref()) {
            Some(pod) => format!("pod {pod}"),
            None => format!("index {k} of job {}", self.job),
        }
    }

    async fn poll(&mut self) -> Vec<(usize, Ended)> {
        let Some(api) = &self.api else { return vec![] };
        let path = format!("/api/v1/namespaces/{}/pods?labelSelector=flow%2Frun%3D{}", api.namespace, self.job);
        let Ok(list) = api.call(reqwest::Method::GET, &path, None).await else { return vec![] };
        let mut ended = vec![];
        for pod in list["items"].as_array().into_iter().flatten() {
            let index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"].as_str();
            let Some(k) = index.and_then(|i| i.parse::<usize>().ok()).filter(|k| *k < self.workers) else { continue };
            let name = pod["metadata"]["name"].as_str().unwrap_or("?").to_string();
            self.pods[k].0 = Some(name);
            if self.pods[k].1 {
                continue;
            }
            let state = &pod["status"]["containerStatuses"][0]["state"];
            let how = match pod["status"]["phase"].as_str() {
                Some("Succeeded") => Some(Ended::Done),
                Some("Failed") => {
                    let t = &state["terminated"];
                    let mut why = format!(
                        "failed: {}",
                        t["reason"].as_str().or(pod["status"]["reason"].as_str()).unwrap_or("no reason given")
                    );
                    if let Some(c) = t["exitCode"].as_i64() {
                        why.push_str(&format!(" (exit code {c})"));
                    }
                    if let Some(m) = t["message"].as_str().or(pod["status"]["message"].as_str()) {
                        why.push_str(&format!(": {}", m.trim()));
                    }
                    Some(Ended::Failed(why))
                }
                // A pod that cannot start says why while it waits (an image that cannot be pulled).
                _ => match state["waiting"]["reason"].as_str() {
                    Some(
                        r @ ("ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "CreateContainerConfigError"),
                    ) => {
                        let m = state["waiting"]["message"].as_str().unwrap_or("");
                        Some(Ended::Failed(format!(
                            "never started: {r}{}",
                            if m.is_empty() { String::new() } else { format!(": {m}") }
                        )))
                    }
                    _ => None,
                },
            };
            if let Some(how) = how {
                self.pods[k].1 = true;
                ended.push((k, how));
            }
        }
        ended
    }

    async fn stop(&mut self) {
        if let Some(api) = &self.api {
            let path =
                format!("/apis/batch/v1/namespaces/{}/jobs/{}?propagationPolicy=Background", api.namespace, self.job);
            let _ = api.call(reqwest::Method::DELETE, &path, None).await;
        }
        self.api = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_runs_one_pod_per_worker_each_reading_its_own_job() {
        let conf = KubernetesRunner {
            image: "registry.example/flow:1".into(),
            namespace: None,
            context: None,
            service_account: Some("flow-load".into()),
            kubeconfig: None,
        };
        let k = Kube::new(&conf, Some("eu-west-1".into()));
        let jobs: Vec<String> = (0..3).map(|i| format!("s3://b/run/worker-{i}.job.json")).collect();
        let m = k.manifest(&jobs, 90).unwrap();
        assert_eq!(m["spec"]["completions"], 3);
        assert_eq!(m["spec"]["parallelism"], 3);
        assert_eq!(m["spec"]["completionMode"], "Indexed");
        assert_eq!(m["spec"]["backoffLimit"], 0);
        assert_eq!(m["spec"]["activeDeadlineSeconds"], 90);
        let pod = &m["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "flow-load");
        assert_eq!(
            pod["containers"][0]["args"],
            json!(["load-worker", "s3://b/run/worker-$(JOB_COMPLETION_INDEX).job.json"])
        );
        assert_eq!(pod["containers"][0]["env"][0]["value"], "eu-west-1");
    }
}
