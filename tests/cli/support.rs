//! Test support: a temp project per test (specs, workflows, state), the real `flow` binary run
//! as a process, and a real HTTP server on loopback.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;

pub struct Project {
    pub dir: tempfile::TempDir,
    env: std::cell::RefCell<Vec<(String, String)>>,
    _turn: Turn,
}

/// Tests share the machine; load tests measure time, so they run alone: every project holds
/// the suite lock shared, an exclusive project holds it alone.
static SUITE: std::sync::RwLock<()> = std::sync::RwLock::new(());

thread_local! {
    /// Projects this thread holds: a second one must not queue behind a waiting writer.
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[allow(dead_code)]
enum Guard {
    Shared(std::sync::RwLockReadGuard<'static, ()>),
    Alone(std::sync::RwLockWriteGuard<'static, ()>),
    Nested,
}

struct Turn(#[allow(dead_code)] Guard);

impl Turn {
    fn shared() -> Turn {
        let held = HELD.with(|h| h.replace(h.get() + 1));
        Turn(if held > 0 { Guard::Nested } else { Guard::Shared(SUITE.read().unwrap_or_else(|e| e.into_inner())) })
    }

    fn alone() -> Turn {
        let held = HELD.with(|h| h.replace(h.get() + 1));
        assert_eq!(held, 0, "an exclusive project must be the thread's first");
        Turn(Guard::Alone(SUITE.write().unwrap_or_else(|e| e.into_inner())))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        HELD.with(|h| h.set(h.get() - 1));
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Project {
    pub fn new() -> Self {
        let turn = Turn::shared();
        Project { dir: tempfile::tempdir().expect("temp dir"), env: Default::default(), _turn: turn }
    }

    /// A project for a test that measures time: no other test runs meanwhile.
    pub fn alone() -> Self {
        let turn = Turn::alone();
        Project { dir: tempfile::tempdir().expect("temp dir"), env: Default::default(), _turn: turn }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> &Self {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    /// The shipped launch spec, copied in.
    pub fn with_launch_spec(&self) -> &Self {
        let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/launch.md");
        self.write("specs/launch.md", std::fs::read(spec).unwrap())
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_flow"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("FLOW_STATE", self.path("state"))
            .env("USER", "tester")
            .env("FLOW_WAIT_TICK_MS", "100")
            .env_remove("FLOW_RUNBOOK")
            .env_remove("FLOW_NOW")
            .stdin(Stdio::null());
        for (k, v) in self.env.borrow().iter() {
            c.env(k, v);
        }
        c
    }

    /// Set an environment variable for every flow process this project starts.
    pub fn env(&self, key: &str, value: &str) -> &Self {
        self.env.borrow_mut().push((key.into(), value.into()));
        self
    }

    /// Point AWS calls at `endpoint` with dummy credentials, no profile files, no IMDS.
    pub fn aws(&self, endpoint: &str) -> &Self {
        self.write("aws/config", "").write("aws/credentials", "");
        let (config, credentials) =
            (self.path("aws/config").display().to_string(), self.path("aws/credentials").display().to_string());
        for (k, v) in [
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", config.as_str()),
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
            ("AWS_MAX_ATTEMPTS", "2"),
        ] {
            self.env(k, v);
        }
        self
    }

    pub fn flow(&self, args: &[&str]) -> Run {
        self.cmd(args).output().expect("flow runs").into()
    }

    /// `flow approve STEP ARGS...` as a person who read `flow status` does it: with the digest
    /// of the preview it shows now (`00000000` when it shows none, for tests of refusals).
    pub fn approve(&self, args: &[&str]) -> Run {
        let digest = self.digest_of(args);
        let mut all = vec!["approve"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--digest", &digest]);
        self.flow(&all)
    }

    /// The short digest `flow status` shows for the step `args[0]` (with any `-r NAME` in `args`).
    pub fn digest_of(&self, args: &[&str]) -> String {
        let mut status = vec!["status", "--json"];
        if let Some(i) = args.iter().position(|a| *a == "-r" || *a == "--runbook") {
            status.extend_from_slice(&args[i..=i + 1]);
        }
        let r = self.flow(&status);
        let found = (r.code == 0)
            .then(|| r.json())
            .and_then(|v| {
                v["steps"].as_array()?.iter().find(|s| s["id"] == args[0])?["artifact_digest"]
                    .as_str()
                    .map(str::to_string)
            })
            .map(|d| d.trim_start_matches("sha256:")[..12].to_string());
        found.unwrap_or_else(|| "00000000".into())
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("flow starts")
    }

    pub fn status(&self) -> Value {
        let r = self.flow(&["status", "--json"]);
        r.expect(0);
        r.json()
    }

    pub fn state_of(&self, step: &str) -> String {
        step_field(&self.status(), step, "state")
    }

    /// Poll `flow status` until `pred` holds (or fail after 30 s).
    #[track_caller]
    pub fn wait_until(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let r = self.flow(&["status", "--json"]);
            if r.code == 0 {
                let v = r.json();
                if pred(&v) {
                    return v;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Replace the steps of the runbook's workflow file (as a person editing it would).
    pub fn edit_steps(&self, runbook: &str, steps_toml: &str) {
        let rel = format!("workflows/{runbook}.toml");
        let mut doc: toml::Table = toml::from_str(&self.read(&rel)).unwrap();
        let steps: toml::Table = toml::from_str(steps_toml).unwrap();
        doc.insert("steps".into(), steps["steps"].clone());
        self.write(&rel, toml::to_string(&doc).unwrap());
    }
}

/// How busy the machine is while a test measures time: a thread that asks for 1 ms sleeps and
/// records how late it wakes. A timing assertion adds what this saw to its tolerance, so it
/// holds on a busy machine (tests run beside a build) and stays tight on an idle one.
pub struct Noise {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<f64>>,
}

impl Noise {
    pub fn start() -> Noise {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut late = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                std::thread::sleep(Duration::from_millis(1));
                late.push((t.elapsed().as_secs_f64() * 1000.0 - 1.0).max(0.0));
            }
            late
        });
        Noise { stop, thread }
    }

    /// How late the wake-ups were (ms): (p50, p99).
    pub fn stop(self) -> (f64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let mut late = self.thread.join().unwrap_or_default();
        late.sort_by(f64::total_cmp);
        let at = |q: f64| {
            late.get(((late.len() as f64 * q) as usize).min(late.len().saturating_sub(1))).copied().unwrap_or(0.0)
        };
        (at(0.5), at(0.99))
    }
}

/// The OS user these tests run as: who flow records as the actor on local state.
pub fn me() -> String {
    let out = std::process::Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn step_field(status: &Value, step: &str, field: &str) -> String {
    let s = status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == step)
        .unwrap_or_else(|| panic!("no step {step}"));
    match &s[field] {
        Value::String(v) => v.clone(),
        other => other.to_string(),
    }
}

pub fn verdict(status: &Value, req: &str) -> String {
    let r = status["requirements"].as_array().unwrap().iter().find(|r| r["id"] == req).unwrap();
    r["verdict"].as_str().unwrap().to_string()
}

pub use crate::serve::serve;

/// A real HTTP/1.1 server on 127.0.0.1: `/ok`, `/slow?ms=N`, `/health` (503 until healthy),
/// `/flaky` (every 10th request answers 500), `/hang` (never answers), and, for drills,
/// `/unless?path=F` (503 while the file F exists), `/if?path=F` (503 until it exists),
/// `/stall-if?path=F` (no answer while it exists); [`Server::stall`] holds every answer back
/// for a while.
pub struct Server {
    pub port: u16,
    healthy: Arc<AtomicBool>,
    stall_until: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
    /// How long each `/slow` answer was really held back (ms), as the server saw it.
    pub delays: Arc<std::sync::Mutex<Vec<f64>>>,
}

impl Server {
    pub fn start() -> Server {
        let healthy = Arc::new(AtomicBool::new(false));
        let stall_until: Arc<std::sync::Mutex<Option<tokio::time::Instant>>> = Default::default();
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let delays: Arc<std::sync::Mutex<Vec<f64>>> = Default::default();
        let (h, stall, n, ds) = (healthy.clone(), stall_until.clone(), count.clone(), delays.clone());
        let port = serve(move |req| handle(req, h.clone(), stall.clone(), n.clone(), ds.clone()));
        Server { port, healthy, stall_until, delays }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn set_healthy(&self, v: bool) {
        self.healthy.store(v, Ordering::SeqCst);
    }

    /// Hold every answer back for `d` from now.
    pub fn stall(&self, d: Duration) {
        *self.stall_until.lock().unwrap() = Some(tokio::time::Instant::now() + d);
    }
}

async fn handle(
    req: Request<Incoming>,
    healthy: Arc<AtomicBool>,
    stall: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
    count: Arc<std::sync::atomic::AtomicU64>,
    delays: Arc<std::sync::Mutex<Vec<f64>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let until = *stall.lock().unwrap();
    if let Some(until) = until {
        tokio::time::sleep_until(until).await;
    }
    let file = || req.uri().query().and_then(|q| q.strip_prefix("path=")).map(|p| std::path::Path::new(p).exists());
    let status = match req.uri().path() {
        "/ok" => 200,
        // Down (503) while the file exists: a shell command can take the service down.
        "/unless" => {
            if file() == Some(true) {
                503
            } else {
                200
            }
        }
        // Up only once the file exists: a restore command can bring the copy up.
        "/if" => {
            if file() == Some(true) {
                200
            } else {
                503
            }
        }
        // Hangs while the file exists: a hung service, for probes that time out.
        "/stall-if" => {
            while file() == Some(true) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            200
        }
        "/slow" => {
            let ms = req.uri().query().and_then(|q| q.strip_prefix("ms=")).and_then(|v| v.parse().ok()).unwrap_or(1000);
            // A precise delay: the async timer would round it up to the next millisecond tick.
            let t = std::time::Instant::now();
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from_millis(ms))).await;
            delays.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
            200
        }
        "/health" if healthy.load(Ordering::SeqCst) => 200,
        "/health" => 503,
        "/flaky" if count.fetch_add(1, Ordering::SeqCst) % 10 == 9 => 500,
        "/flaky" => 200,
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            200
        }
        _ => 404,
    };
    Ok(Response::builder().status(status).body(Full::new(Bytes::from_static(b"hello\n"))).unwrap())
}

/// A step's state, or "" while the step is not in the recorded plan yet (for polling).
pub fn state(status: &Value, step: &str) -> String {
    status["steps"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == step))
        .and_then(|s| s["state"].as_str())
        .unwrap_or("")
        .to_string()
}

/// Wait for a `flow run --wait` child to exit (or fail after 60 s); its exit code.
pub fn wait_exit(child: &mut std::process::Child) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(start.elapsed() < Duration::from_secs(60), "flow run --wait did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The moto server scripts/test started for this run.
pub fn moto_url() -> String {
    std::env::var("FLOW_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!("FLOW_TEST_MOTO_URL is not set: run the tests with scripts/test, which installs and starts the moto AWS emulator")
    })
}

/// The AWS SDK's configuration for moto in `region`, for tests that seed or read it.
pub fn moto_conf(region: &str) -> aws_config::SdkConfig {
    let creds = aws_credential_types::Credentials::new("testing", "testing", None, None, "test");
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .endpoint_url(moto_url())
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .build()
}

/// Run `f` to its end on a runtime of its own (tests are not async).
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// RFC 3339 time `secs` from now, for FLOW_NOW.
pub fn later(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(secs)).to_string()
}

/// Text with every figure replaced by `#`: for snapshots of output whose numbers are measured.
pub fn figures_masked(text: &str) -> String {
    regex::Regex::new(r"\d+(?:\.\d+)?").unwrap().replace_all(text, "#").into_owned()
}

/// Open an HTML file in headless Chromium (tests/browser/check.py) and say what it saw: console
/// errors, network requests, the rendered text and counts of drawn shapes; a screenshot to `shot`.
pub fn browse(page: &Path, shot: &Path) -> serde_json::Value {
    let python = std::env::var("FLOW_TEST_PYTHON").expect("FLOW_TEST_PYTHON: run the tests with scripts/test");
    let chromium = std::env::var("FLOW_TEST_CHROMIUM").expect("FLOW_TEST_CHROMIUM: run the tests with scripts/test");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(python)
        .arg(root.join("tests/browser/check.py"))
        .arg(chromium)
        .arg(page)
        .arg(shot)
        .output()
        .unwrap();
    assert!(out.status.success(), "check.py: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
