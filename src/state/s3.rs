//! Shared team state on S3 (`--state s3://BUCKET/PREFIX`), behind the [`crate::state`]
//! traits, with S3's conditional writes doing what sled's store lock does locally.
//!
//! Layout under the prefix, per runbook `runbooks/<name>/`: `meta.json`, `plans/<version>.json`
//! (immutable), `events/<seq>.json`, `snapshot.json`, `llm/<seq>.json` (the planner's audit
//! trail), `lease.json`; and `cache/plan/<key>.json`, `cache/answer/<key>.json`.
//!
//! **Appends.** One object per append, at the key of its first event's sequence number (twenty
//! digits, so keys list in order), holding that batch of events, written with
//! `If-None-Match: *`. Every writer computes the next number from the last batch it read, so two
//! writers that read the same journal race for the same key: exactly one put succeeds, the
//! other gets 412 and reports [`Error::Conflict`] (the engine re-reads, decides again and
//! retries). A batch is one object, so it is all there or not at all.
//!
//! **The run lease** replaces the local run lock: `lease.json` names its holder (user, host,
//! process) and when it lapses. It is created with `If-None-Match: *`, taken over after it
//! lapsed with `If-Match` on the ETag that was read, renewed the same way while the run works,
//! and deleted at the end. A runner killed while holding it leaves it to lapse; the next one
//! takes it over then.
//!
//! The SDK is async and the journal traits are not: calls run on a small runtime of this
//! module's own, from a scoped thread, so they work inside or outside the command's runtime.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Clock;
use crate::domain::event::Event;
use crate::domain::plan::Plan;
use crate::domain::runbook::RunbookView;
use crate::state::{check_append, Backend, Error, Journal, RunLock, RunbookMeta, Snapshot};

/// How long a lease lasts without renewal (`FLOW_LEASE_S`, default 60 s); it is renewed every
/// third of that while its run works.
fn lease_ms() -> u64 {
    std::env::var("FLOW_LEASE_S").ok().and_then(|v| v.parse::<u64>().ok()).filter(|s| *s > 0).unwrap_or(60) * 1000
}

struct Inner {
    bucket: String,
    prefix: String,
    client: Client,
    /// Always `Some` until dropped.
    rt: Option<tokio::runtime::Runtime>,
    clock: Arc<dyn Clock>,
    holder: String,
    /// Who the credentials belong to (STS GetCallerIdentity): the identity every event records.
    identity: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside another runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The S3 backend.
#[derive(Clone)]
pub struct S3 {
    inner: Arc<Inner>,
}

use crate::aws::parse_s3_url as parse_url;

/// Who holds a lease, for messages: user@host (process id).
pub fn holder(actor: &str) -> String {
    format!("{actor}@{} (pid {})", crate::state::host(), std::process::id())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    holder: String,
    /// Unix milliseconds.
    expires_ms: u64,
}

/// An object's bytes and its ETag.
type Object = (Vec<u8>, Option<String>);

/// One failed call, for messages: the S3 error code or what went wrong.
enum Fail {
    /// 412: the condition did not hold.
    Precondition,
    NotFound,
    Other(String),
}

fn fail<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> Fail {
    use aws_smithy_runtime_api::client::result::SdkError;
    let status = match &e {
        SdkError::ServiceError(s) => Some(s.raw().status().as_u16()),
        SdkError::ResponseError(r) => Some(r.raw().status().as_u16()),
        _ => None,
    };
    let code = e.code().map(str::to_string);
    match (status, code.as_deref()) {
        (Some(412), _) | (_, Some("PreconditionFailed")) => Fail::Precondition,
        (Some(404), _) | (_, Some("NoSuchKey")) | (_, Some("NotFound")) => Fail::NotFound,
        _ => Fail::Other(match (code, e.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c,
            _ => std::error::Error::source(&e).map(crate::aws::chain).unwrap_or_else(|| e.to_string()),
        }),
    }
}

impl S3 {
    /// Connect to `s3://bucket/prefix` with the standard AWS chain (profiles, SSO, env,
    /// `AWS_ENDPOINT_URL`), checking that the bucket answers.
    pub fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<S3, Error> {
        S3::with_config(url, None, clock)
    }

    /// As [`S3::connect`], with this SDK config instead of the standard chain's.
    pub fn with_config(url: &str, conf: Option<aws_config::SdkConfig>, clock: Arc<dyn Clock>) -> Result<S3, Error> {
        let (bucket, prefix) = parse_url(url).ok_or_else(|| Error::Backend {
            path: url.into(),
            detail: "not an S3 URL: expected s3://BUCKET/PREFIX".into(),
        })?;
        let rt =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().map_err(|e| {
                Error::Backend { path: url.into(), detail: format!("cannot start the S3 runtime: {e}") }
            })?;
        let client = std::thread::scope(|s| {
            s.spawn(|| {
                rt.block_on(async {
                    let conf = match conf {
                        Some(c) => c,
                        None => aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await,
                    };
                    let region = conf.region().is_some();
                    let s3conf = aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build();
                    // Who acts on shared state is who AWS says the credentials belong to, not
                    // a name typed on the command line.
                    let identity = if region {
                        aws_sdk_sts::Client::new(&conf)
                            .get_caller_identity()
                            .send()
                            .await
                            .map(|o| o.arn().map(str::to_string))
                    } else {
                        Ok(None)
                    };
                    (Client::from_conf(s3conf), region, identity)
                })
            })
            .join()
        })
        .map_err(|_| Error::Backend { path: url.into(), detail: "the S3 client could not be made".into() })?;
        let (client, region, identity) = client;
        if !region {
            return Err(Error::Backend {
                path: url.into(),
                detail: "no AWS region: set AWS_REGION or a region in the AWS profile".into(),
            });
        }
        let identity = match identity {
            Ok(Some(arn)) => arn,
            Ok(None) => {
                return Err(Error::Backend { path: url.into(), detail: "STS GetCallerIdentity gave no ARN".into() })
            }
            Err(e) => {
                let why = match fail(e) {
                    Fail::Other(m) => m,
                    _ => "refused".into(),
                };
                return Err(Error::Backend {
                    path: url.into(),
                    detail: format!(
                        "cannot tell who you are on AWS (STS GetCallerIdentity): {why}; shared state records every event under the caller's identity"
                    ),
                });
            }
        };
        let s3 = S3 {
            inner: Arc::new(Inner { bucket, prefix, client, rt: Some(rt), clock, holder: holder(&identity), identity }),
        };
        let i = s3.inner.clone();
        s3.block(async move { i.client.head_bucket().bucket(&i.bucket).send().await.map_err(fail) }).map_err(|f| {
            s3.err(match f {
                Fail::NotFound => "no such bucket".into(),
                Fail::Precondition => "the bucket refused the request".into(),
                Fail::Other(m) => m,
            })
        })?;
        Ok(s3)
    }

    fn url(&self) -> String {
        let i = &self.inner;
        if i.prefix.is_empty() {
            format!("s3://{}", i.bucket)
        } else {
            format!("s3://{}/{}", i.bucket, i.prefix)
        }
    }

    fn err(&self, detail: impl Into<String>) -> Error {
        Error::Backend { path: self.url(), detail: detail.into() }
    }

    fn key(&self, rel: &str) -> String {
        if self.inner.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.inner.prefix)
        }
    }

    /// Run a future on this backend's runtime and wait for it.
    fn block<T: Send, F: Future<Output = T> + Send>(&self, f: F) -> T {
        let rt = self.inner.rt.as_ref().expect("the S3 runtime lives as long as the backend");
        std::thread::scope(|s| s.spawn(|| rt.block_on(f)).join().expect("an S3 call panicked"))
    }

    fn get_raw(&self, rel: &str) -> Result<Option<Object>, Error> {
        let (i, key) = (self.inner.clone(), self.key(rel));
        let r = self.block(async move {
            let out = i.client.get_object().bucket(&i.bucket).key(&key).send().await.map_err(fail)?;
            let etag = out.e_tag().map(str::to_string);
            let bytes = out.body.collect().await.map_err(|e| Fail::Other(e.to_string()))?.into_bytes().to_vec();
            Ok::<_, Fail>((bytes, etag))
        });
        match r {
            Ok(v) => Ok(Some(v)),
            Err(Fail::NotFound) => Ok(None),
            Err(Fail::Precondition) => Err(self.err(format!("reading {rel}: precondition failed"))),
            Err(Fail::Other(m)) => Err(self.err(format!("reading {rel}: {m}"))),
        }
    }

    fn get<T: serde::de::DeserializeOwned>(&self, rel: &str) -> Result<Option<T>, Error> {
        match self.get_raw(rel)? {
            None => Ok(None),
            Some((bytes, _)) => serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Corrupt {
                path: self.url(),
                tree: rel.into(),
                why: e.to_string(),
            }),
        }
    }

    /// Put; with a condition: `None` none, `Some(None)` only if absent, `Some(Some(etag))` only
    /// if it is still that version. `Ok(Some(etag))`: written, that is its ETag; `Ok(None)`: the
    /// condition did not hold.
    fn put_if(&self, rel: &str, body: Vec<u8>, cond: Option<Option<String>>) -> Result<Option<String>, Error> {
        let (i, key) = (self.inner.clone(), self.key(rel));
        let r = self.block(async move {
            let mut req = i
                .client
                .put_object()
                .bucket(&i.bucket)
                .key(&key)
                .content_type("application/json")
                .body(ByteStream::from(body));
            req = match cond {
                Some(None) => req.if_none_match("*"),
                Some(Some(etag)) => req.if_match(etag),
                None => req,
            };
            req.send().await.map_err(fail)
        });
        match r {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_string())),
            Err(Fail::Precondition) => Ok(None),
            Err(Fail::NotFound) => Err(self.err(format!("writing {rel}: no such bucket"))),
            Err(Fail::Other(m)) => Err(self.err(format!("writing {rel}: {m}"))),
        }
    }

    fn put<T: Serialize>(&self, rel: &str, v: &T) -> Result<(), Error> {
        let body = serde_json::to_vec(v).map_err(|e| self.err(e.to_string()))?;
        self.put_if(rel, body, None).map(|_| ())
    }

    fn delete(&self, rel: &str) -> Result<(), Error> {
        let (i, key) = (self.inner.clone(), self.key(rel));
        self.block(async move { i.client.delete_object().bucket(&i.bucket).key(&key).send().await.map_err(fail) })
            .map(|_| ())
            .or_else(|f| match f {
                Fail::NotFound => Ok(()),
                Fail::Precondition => Ok(()),
                Fail::Other(m) => Err(self.err(format!("deleting {rel}: {m}"))),
            })
    }

    /// Keys under `rel/` (relative to the prefix), in order; with `delimiter`, the common
    /// prefixes one level down instead.
    fn list(&self, rel: &str, delimiter: bool) -> Result<Vec<String>, Error> {
        let (i, base) = (self.inner.clone(), format!("{}/", self.key(rel)));
        let strip = if self.inner.prefix.is_empty() { 0 } else { self.inner.prefix.len() + 1 };
        let r = self.block(async move {
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut req = i.client.list_objects_v2().bucket(&i.bucket).prefix(&base);
                if delimiter {
                    req = req.delimiter("/");
                }
                if let Some(t) = &token {
                    req = req.continuation_token(t);
                }
                let page = req.send().await.map_err(fail)?;
                if delimiter {
                    out.extend(page.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_string)));
                } else {
                    out.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
                }
                match page.next_continuation_token() {
                    Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                    _ => break,
                }
            }
            Ok::<_, Fail>(out)
        });
        let keys = r.map_err(|f| {
            self.err(match f {
                Fail::Other(m) => format!("listing {rel}: {m}"),
                _ => format!("listing {rel}: refused"),
            })
        })?;
        Ok(keys.into_iter().map(|k| k[strip.min(k.len())..].to_string()).collect())
    }

    /// The batches of a runbook's journal: (first seq, key), in order.
    fn batches(&self, runbook: &str) -> Result<Vec<(u64, String)>, Error> {
        let dir = format!("runbooks/{runbook}/events");
        Ok(self
            .list(&dir, false)?
            .into_iter()
            .filter_map(|k| {
                let seq = k.rsplit('/').next()?.strip_suffix(".json")?.parse().ok()?;
                Some((seq, k))
            })
            .collect())
    }

    fn read_batch(&self, key: &str) -> Result<Vec<Event>, Error> {
        self.get::<Vec<Event>>(key)?.ok_or_else(|| self.err(format!("{key} vanished while it was read")))
    }

    fn next_seq(&self, runbook: &str) -> Result<u64, Error> {
        match self.batches(runbook)?.last() {
            None => Ok(1),
            Some((_, key)) => Ok(self.read_batch(key)?.last().map_or(1, |e| e.seq + 1)),
        }
    }

    fn lease_key(runbook: &str) -> String {
        format!("runbooks/{runbook}/lease.json")
    }

    /// Take the lease, or say who holds it.
    fn take_lease(&self, runbook: &str) -> Result<String, Error> {
        let key = Self::lease_key(runbook);
        let now = self.inner.clock.now_ms();
        let mine = Lease { holder: self.inner.holder.clone(), expires_ms: now + lease_ms() };
        let body = serde_json::to_vec(&mine).map_err(|e| self.err(e.to_string()))?;
        let cond = match self.get_raw(&key)? {
            None => None,
            Some((bytes, etag)) => {
                let held: Option<Lease> = serde_json::from_slice(&bytes).ok();
                if let Some(l) = held.filter(|l| l.expires_ms > now) {
                    return Err(Error::Leased {
                        runbook: runbook.into(),
                        holder: l.holder,
                        until: crate::clock::rfc3339(l.expires_ms),
                    });
                }
                Some(etag.unwrap_or_default())
            }
        };
        if let Some(etag) = self.put_if(&key, body, Some(cond))? {
            // The ETag of what was written, for renewals.
            return Ok(etag);
        }
        // Someone else took it between the read and the write.
        match self.get::<Lease>(&key)? {
            Some(l) => Err(Error::Leased {
                runbook: runbook.into(),
                holder: l.holder,
                until: crate::clock::rfc3339(l.expires_ms),
            }),
            None => Err(Error::Locked { runbook: runbook.into() }),
        }
    }
}

/// Holds a lease: renews it every third of its length, deletes it when dropped.
struct LeaseGuard {
    stop: Arc<AtomicBool>,
    renewer: Option<std::thread::JoinHandle<()>>,
    s3: S3,
    key: String,
    etag: Arc<Mutex<String>>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.renewer.take() {
            h.thread().unpark();
            let _ = h.join();
        }
        // Only our own lease is deleted.
        let etag = self.etag.lock().unwrap().clone();
        if let Ok(Some((_, Some(now)))) = self.s3.get_raw(&self.key) {
            if now == etag {
                let _ = self.s3.delete(&self.key);
            }
        }
    }
}

/// A session: reads and writes go straight to the bucket.
struct Session(S3);

impl Journal for Session {
    fn runbooks(&self) -> Result<Vec<RunbookMeta>, Error> {
        let mut out = Vec::new();
        for p in self.0.list("runbooks", true)? {
            let name = p.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_string();
            if let Some(m) = self.meta(&name)? {
                out.push(m);
            }
        }
        Ok(out)
    }
    fn meta(&self, name: &str) -> Result<Option<RunbookMeta>, Error> {
        self.0.get(&format!("runbooks/{name}/meta.json"))
    }
    fn put_meta(&mut self, meta: &RunbookMeta) -> Result<(), Error> {
        self.0.put(&format!("runbooks/{}/meta.json", meta.name), meta)
    }
    fn plan(&self, runbook: &str, version: u32) -> Result<Option<Plan>, Error> {
        let head = format!("{version:010}-");
        let keys: Vec<String> = self
            .0
            .list(&format!("runbooks/{runbook}/plans"), false)?
            .into_iter()
            .filter(|k| k.rsplit('/').next().is_some_and(|n| n.starts_with(&head)))
            .collect();
        if keys.len() <= 1 {
            return match keys.first() {
                Some(k) => self.0.get(k),
                None => Ok(None),
            };
        }
        // Writers raced for this version, or one died before recording it: the journal's
        // `plan_recorded` names the digest that counts.
        let digest = self.events_after(runbook, 0)?.into_iter().find_map(|e| match e.body {
            crate::domain::event::Body::PlanRecorded { version: v, digest, .. } if v == version => Some(digest),
            _ => None,
        });
        let Some(digest) = digest else { return Ok(None) };
        let want = format!("{head}{}.json", crate::domain::digest::short(&digest));
        match keys.iter().find(|k| k.ends_with(&want)) {
            Some(k) => self.0.get(k),
            None => Ok(None),
        }
    }
    fn put_plan(&mut self, runbook: &str, version: u32, plan: &Plan) -> Result<(), Error> {
        // Immutable, named by version and digest: a put that finds its object exists wrote
        // the same bytes before.
        let key =
            format!("runbooks/{runbook}/plans/{version:010}-{}.json", crate::domain::digest::short(&plan.digest()));
        let body = serde_json::to_vec(plan).map_err(|e| self.0.err(e.to_string()))?;
        self.0.put_if(&key, body, Some(None)).map(|_| ())
    }
    fn events_after(&self, runbook: &str, after: u64) -> Result<Vec<Event>, Error> {
        let batches = self.0.batches(runbook)?;
        let mut out = Vec::new();
        for (i, (first, key)) in batches.iter().enumerate() {
            // A batch ends before the next one starts: skip those wholly at or before `after`.
            if batches.get(i + 1).is_some_and(|(next, _)| *next <= after + 1) && *first <= after {
                continue;
            }
            out.extend(self.0.read_batch(key)?.into_iter().filter(|e| e.seq > after));
        }
        Ok(out)
    }
    fn append(&mut self, runbook: &str, events: &[Event]) -> Result<(), Error> {
        let Some(first) = events.first() else { return Ok(()) };
        check_append(runbook, first.seq, events)?;
        let body = serde_json::to_vec(events).map_err(|e| self.0.err(e.to_string()))?;
        let key = format!("runbooks/{runbook}/events/{:020}.json", first.seq);
        if self.0.put_if(&key, body, Some(None))?.is_some() {
            return Ok(());
        }
        // The key is taken. By this very batch, when a connection dropped after the put
        // reached S3 and the SDK sent it again: then the append happened, once.
        let winner = self.0.get::<Vec<Event>>(&key)?;
        if winner.as_deref() == Some(events) {
            return Ok(());
        }
        // Who moved the runbook, for the person whose command lost.
        let by = winner.and_then(|w| w.first().map(Event::who));
        let found = self.0.next_seq(runbook)?;
        Err(Error::Conflict { runbook: runbook.into(), expected: first.seq, found, by })
    }
    fn snapshot(&self, runbook: &str) -> Result<Option<RunbookView>, Error> {
        Ok(self.0.get::<Snapshot>(&format!("runbooks/{runbook}/snapshot.json"))?.and_then(Snapshot::current))
    }
    fn put_snapshot(&mut self, runbook: &str, view: &RunbookView) -> Result<(), Error> {
        self.0.put(&format!("runbooks/{runbook}/snapshot.json"), &Snapshot::of(view))
    }
    fn cached_plan(&self, key: &str) -> Result<Option<Plan>, Error> {
        self.0.get(&format!("cache/plan/{}.json", safe(key)))
    }
    fn cache_plan(&mut self, key: &str, plan: &Plan) -> Result<(), Error> {
        self.0.put(&format!("cache/plan/{}.json", safe(key)), plan)
    }
    fn cached_answer(&self, key: &str) -> Result<Option<Value>, Error> {
        self.0.get(&format!("cache/answer/{}.json", safe(key)))
    }
    fn cache_answer(&mut self, key: &str, answer: &Value) -> Result<(), Error> {
        self.0.put(&format!("cache/answer/{}.json", safe(key)), answer)
    }
    fn append_exchange(&mut self, runbook: &str, exchange: &Value) -> Result<(), Error> {
        let dir = format!("runbooks/{runbook}/llm");
        let body = serde_json::to_vec(exchange).map_err(|e| self.0.err(e.to_string()))?;
        for _ in 0..20 {
            let n = self.0.list(&dir, false)?.len() + 1;
            if self.0.put_if(&format!("{dir}/{n:010}.json"), body.clone(), Some(None))?.is_some() {
                return Ok(());
            }
        }
        Err(self.0.err(format!("{dir}: too many writers at once")))
    }
    fn exchanges(&self, runbook: &str) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        for k in self.0.list(&format!("runbooks/{runbook}/llm"), false)? {
            out.extend(self.0.get::<Value>(&k)?);
        }
        Ok(out)
    }
}

/// A cache key as an object name.
fn safe(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

impl Backend for S3 {
    fn open(&self) -> Result<Box<dyn Journal>, Error> {
        Ok(Box::new(Session(self.clone())))
    }

    fn identity(&self) -> Option<String> {
        Some(self.inner.identity.clone())
    }

    fn run_lock(&self, runbook: &str) -> Result<RunLock, Error> {
        let etag = Arc::new(Mutex::new(self.take_lease(runbook)?));
        let stop = Arc::new(AtomicBool::new(false));
        let key = S3::lease_key(runbook);
        let (s3, st, et, k) = (self.clone(), stop.clone(), etag.clone(), key.clone());
        let renewer = std::thread::spawn(move || {
            let every = Duration::from_millis(lease_ms() / 3);
            loop {
                std::thread::park_timeout(every);
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let lease = Lease { holder: s3.inner.holder.clone(), expires_ms: s3.inner.clock.now_ms() + lease_ms() };
                let Ok(body) = serde_json::to_vec(&lease) else { return };
                let current = et.lock().unwrap().clone();
                match s3.put_if(&k, body, Some(Some(current))) {
                    Ok(Some(e)) => *et.lock().unwrap() = e,
                    Ok(None) => {
                        tracing::error!("the lease on {k} was taken over by another runner");
                        return;
                    }
                    Err(e) => tracing::warn!("renewing the lease on {k}: {e}"),
                }
            }
        });
        Ok(RunLock::new(LeaseGuard { stop, renewer: Some(renewer), s3: self.clone(), key, etag }))
    }

    fn describe(&self) -> String {
        self.url()
    }

    fn run_holder(&self, runbook: &str) -> Result<Option<String>, Error> {
        let now = self.inner.clock.now_ms();
        Ok(self
            .get::<Lease>(&S3::lease_key(runbook))?
            .filter(|l| l.expires_ms > now)
            .map(|l| format!("{} until {}", l.holder, crate::clock::rfc3339(l.expires_ms))))
    }
}
