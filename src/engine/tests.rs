//! The engine against an in-memory journal, fake executors and paused tokio time: crashes at
//! each point between intent, effect and outcome, reconciliation, voided approvals, stale
//! results, conflicting writers, the concurrency limit, long waits without real sleeps.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::*;
use crate::clock::Clock;
use crate::domain::lifecycle::{Outcome, Preview};
use crate::domain::notify::Notice;
use crate::executor::{self, Executor, Registry};
use crate::state::memory::Memory;
use crate::state::{Backend, RunbookMeta};

/// Time from tokio's clock, so paused time moves it.
struct TokioClock {
    base_ms: u64,
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        self.base_ms + self.start.elapsed().as_millis() as u64
    }
}

fn clock() -> Arc<dyn Clock> {
    Arc::new(TokioClock { base_ms: 1_800_000_000_000, start: tokio::time::Instant::now() })
}

/// The outside world the fake effects change: which tokens were carried out, how often.
#[derive(Default)]
struct World {
    done: Mutex<BTreeSet<String>>,
    effects: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    previews: AtomicUsize,
}

#[derive(Clone, Copy, PartialEq)]
enum Reconcile {
    /// Look the token up (like a quota request or a change set).
    ByToken,
    /// Cannot tell (like a shell command).
    Blind,
}

/// A scripted executor: its artifact, how long its effect takes, what it can reconcile.
struct Fake {
    world: Arc<World>,
    artifact: Arc<Mutex<String>>,
    effect_takes: Duration,
    preview_takes: Duration,
    reconcile: Reconcile,
    /// The first `submit` answers `Wait` until this long after it started; then polls finish.
    wait_for: Option<Duration>,
    clock: Arc<dyn Clock>,
}

impl Fake {
    async fn effect(&self, token: &str) -> Outcome {
        let n = self.world.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.world.max_in_flight.fetch_max(n, Ordering::SeqCst);
        // The effect happens at once; its answer takes a while.
        if self.world.done.lock().unwrap().insert(token.to_string()) {
            self.world.effects.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(self.effect_takes).await;
        self.world.in_flight.fetch_sub(1, Ordering::SeqCst);
        match self.wait_for {
            Some(d) => Outcome::Wait {
                next_poll_at: self.clock.now_ms() + d.as_millis() as u64,
                note: "not yet".into(),
                handle: json!({"token": token}),
            },
            None => done(token),
        }
    }
}

fn done(token: &str) -> Outcome {
    let m: Map<String, Value> = json!({"token": token, "n": 7}).as_object().cloned().unwrap_or_default();
    Outcome::Done { outputs: m.clone(), evidence: m }
}

#[async_trait]
impl Executor for Fake {
    async fn preview(&self, _ctx: &Ctx, params: &Map<String, Value>) -> executor::Result<Preview> {
        self.world.previews.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.preview_takes).await;
        Ok(Preview::Approve(format!("{} with {}", self.artifact.lock().unwrap(), Value::Object(params.clone()))))
    }
    async fn submit(&self, _ctx: &Ctx, _params: &Map<String, Value>, token: &str) -> executor::Result<Outcome> {
        Ok(self.effect(token).await)
    }
    async fn poll(&self, _ctx: &Ctx, _params: &Map<String, Value>, handle: &Value) -> executor::Result<Outcome> {
        Ok(done(handle["token"].as_str().unwrap_or_default()))
    }
    async fn reconcile(
        &self,
        _ctx: &Ctx,
        _params: &Map<String, Value>,
        token: &str,
    ) -> executor::Result<Option<Outcome>> {
        match self.reconcile {
            Reconcile::ByToken if self.world.done.lock().unwrap().contains(token) => Ok(Some(done(token))),
            // Never carried out: carrying it out now is safe.
            Reconcile::ByToken => Ok(Some(self.effect(token).await)),
            Reconcile::Blind => Ok(None),
        }
    }
}

/// One fake for every kind.
struct Fakes(Arc<Fake>);

impl Registry for Fakes {
    fn executor(&self, kind: StepKind) -> Option<Arc<dyn Executor>> {
        (kind != StepKind::RestoreDrill).then(|| self.0.clone() as Arc<dyn Executor>)
    }
}

struct Rig {
    notifier: Option<Arc<dyn Notifier>>,
    memory: Memory,
    fake: Arc<Fake>,
    clock: Arc<dyn Clock>,
    meta: RunbookMeta,
    opts: Options,
    policy: crate::domain::policy::Policy,
}

const RB: &str = "rb";

/// `(id, kind, gate, needs, params)`.
type StepDef<'a> = (&'a str, &'a str, bool, &'a [&'a str], Value);

impl Rig {
    fn new(steps: &[StepDef], reconcile: Reconcile) -> Rig {
        let memory = Memory::new();
        let clock = clock();
        let fake = Arc::new(Fake {
            world: Arc::default(),
            artifact: Arc::new(Mutex::new("do it".into())),
            effect_takes: Duration::from_millis(5),
            preview_takes: Duration::ZERO,
            reconcile,
            wait_for: None,
            clock: clock.clone(),
        });
        let plan = Plan::of(
            RB,
            steps
                .iter()
                .map(|(id, kind, gate, needs, params)| crate::domain::plan::Step {
                    id: id.to_string(),
                    kind: kind.to_string(),
                    description: String::new(),
                    needs: needs.iter().map(|s| s.to_string()).collect(),
                    covers: vec![],
                    gate: *gate,
                    params: params.as_object().cloned().unwrap_or_default(),
                })
                .collect(),
            vec![],
        );
        let meta = RunbookMeta {
            name: RB.into(),
            workflow: "/nowhere/rb.toml".into(),
            spec: "rb.md".into(),
            created_at: "t".into(),
            workflow_read: None,
        };
        let mut j = memory.open().unwrap();
        j.put_meta(&meta).unwrap();
        j.put_plan(RB, 1, &plan).unwrap();
        let ids = plan.steps.iter().map(|s| s.id.clone()).collect();
        let body = Body::PlanRecorded {
            version: 1,
            digest: plan.digest(),
            planner: "test".into(),
            source: "plan".into(),
            added: ids,
            removed: vec![],
            changed: vec![],
            reopened: vec![],
        };
        memory.append_next(RB, "planner", body);
        Rig {
            notifier: None,
            memory,
            fake,
            clock,
            meta,
            opts: Options { tick: Duration::from_millis(100), ..Options::default() },
            policy: Default::default(),
        }
    }

    fn fake_mut(&mut self) -> &mut Fake {
        Arc::get_mut(&mut self.fake).expect("not shared yet")
    }

    async fn run(&self) -> Result<Ran> {
        let fakes = Fakes(self.fake.clone());
        let parts = Parts {
            backend: &self.memory,
            executors: &fakes,
            clock: &self.clock,
            reporter: &Quiet,
            notifier: self.notifier.clone(),
            progress: Arc::new(crate::progress::Silent),
            actor: "engine",
            as_name: None,
            policy: &self.policy,
        };
        run(parts, &self.meta, &self.opts).await
    }

    fn view(&self) -> RunbookView {
        RunbookView::from_events(&self.memory.events(RB))
    }

    fn phase(&self, step: &str) -> Phase {
        self.view().step(step).phase
    }

    /// A person approves what the step shows now.
    fn approve(&self, step: &str) {
        let v = self.view();
        let s = v.step(step);
        let body = Body::Approved {
            step: step.into(),
            by: "ana".into(),
            comment: None,
            artifact_digest: s.artifact_digest.clone().unwrap(),
            params_digest: s.params_digest.clone().unwrap(),
            shown: None,
            as_name: None,
            complete: true,
            missing: vec![],
        };
        self.memory.append_next(RB, "ana", body);
    }

    fn names(&self, step: &str) -> Vec<&'static str> {
        self.memory.events(RB).iter().filter(|e| e.body.step() == Some(step)).map(|e| e.body.name()).collect()
    }
}

fn p() -> Value {
    json!({"run": "x"})
}

#[tokio::test(start_paused = true)]
async fn a_chain_runs_in_order_and_a_turn_is_one_commit() {
    let rig = Rig::new(
        &[
            ("a", "capacity_model", false, &[], p()),
            ("b", "capacity_model", false, &["a"], json!({"from": "${a.n}"})),
            ("c", "capacity_model", false, &["b"], p()),
        ],
        Reconcile::ByToken,
    );
    let ran = rig.run().await.unwrap();
    assert_eq!(ran.outcome, RunOutcome::Done);
    let order: Vec<(String, &str)> =
        ran.events.iter().filter_map(|e| e.body.step().map(|s| (s.to_string(), e.body.name()))).collect();
    let expect: Vec<(String, &str)> = ["a", "b", "c"]
        .iter()
        .flat_map(|s| [(s.to_string(), "submit_started"), (s.to_string(), "succeeded")])
        .collect();
    assert_eq!(order, expect);
    // b's params were resolved from a's output before its effect.
    let v = rig.view();
    assert_eq!(v.step("b").params_digest, Some(Resolved::new(json!({"from": 7}).as_object().unwrap().clone()).digest));
    // The plan, run_started, a's intent, a's outcome with b's intent, b's with c's, c's
    // outcome, run_finished: an outcome and the intent it unblocks share one commit.
    assert_eq!(rig.memory.appends(), 7);
    assert_eq!(rig.fake.world.effects.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_gate_waits_for_its_approval_and_the_effect_happens_once() {
    let rig = Rig::new(&[("g", "command", true, &[], p())], Reconcile::Blind);
    assert_eq!(rig.run().await.unwrap().outcome, RunOutcome::WaitingApproval);
    assert_eq!(rig.fake.world.effects.load(Ordering::SeqCst), 0, "nothing runs before its gate");
    rig.approve("g");
    assert_eq!(rig.run().await.unwrap().outcome, RunOutcome::Done);
    assert_eq!(rig.run().await.unwrap().outcome, RunOutcome::Done);
    assert_eq!(rig.fake.world.effects.load(Ordering::SeqCst), 1);
    assert_eq!(rig.names("g"), ["preview_started", "preview_recorded", "approved", "submit_started", "succeeded"]);
}

/// The process dies at each of the engine's appends in turn (that append never lands, nor any
/// after it in that run), in the run before the approval or the one after: whatever the moment,
/// the runbook ends done, every approval given is kept, and an effect that can be looked up by
/// its token happens exactly once.
#[tokio::test(start_paused = true)]
async fn a_crash_at_each_commit_is_recovered_without_repeating_the_effect() {
    for crash_at in 0..14 {
        let rig = Rig::new(
            &[
                ("a", "capacity_model", false, &[], p()),
                ("g", "quota", true, &["a"], p()),
                ("z", "probe", false, &["g"], p()),
            ],
            Reconcile::ByToken,
        );
        rig.memory.fail_appends_after(Some(crash_at));
        let (mut approvals, mut crashed) = (0, false);
        for _ in 0..10 {
            if rig.phase("g") == Phase::AwaitingApproval {
                rig.approve("g");
                approvals += 1;
            }
            match rig.run().await {
                Err(_) => {
                    crashed = true;
                    rig.memory.fail_appends_after(None);
                }
                Ok(r) if r.outcome == RunOutcome::Done => break,
                Ok(_) => {}
            }
        }
        let v = rig.view();
        assert!(["a", "g", "z"].iter().all(|s| v.step(s).phase == Phase::Succeeded), "crash at {crash_at}");
        assert_eq!(rig.fake.world.effects.load(Ordering::SeqCst), 3, "crash at {crash_at}: each effect once");
        let recorded = rig.memory.events(RB).iter().filter(|e| e.body.name() == "approved").count();
        assert_eq!(recorded, approvals, "crash at {crash_at}");
        let seqs: Vec<u64> = rig.memory.events(RB).iter().map(|e| e.seq).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "crash at {crash_at}: no gap, no double");
        if crash_at < 10 {
            assert!(crashed, "crash at {crash_at} happened");
        }
    }
}

/// Killed while the effect is under way (the run's future is dropped, its tasks with it): a
/// step whose effect can be looked up is reconciled, one that cannot is handed to a person.
#[tokio::test(start_paused = true)]
async fn killed_mid_effect_reconcile_or_interrupted() {
    for reconcile in [Reconcile::ByToken, Reconcile::Blind] {
        let mut rig = Rig::new(&[("g", "quota", true, &[], p())], reconcile);
        rig.fake_mut().effect_takes = Duration::from_secs(3600);
        rig.run().await.unwrap();
        rig.approve("g");
        let killed = tokio::time::timeout(Duration::from_secs(60), rig.run()).await;
        assert!(killed.is_err(), "the effect was still under way");
        assert_eq!(rig.phase("g"), Phase::Submitting);
        assert_eq!(rig.fake.world.effects.load(Ordering::SeqCst), 1);
        let ran = rig.run().await.unwrap();
        let v = rig.view();
        match reconcile {
            Reconcile::ByToken => {
                assert_eq!((ran.outcome, v.step("g").phase), (RunOutcome::Done, Phase::Succeeded));
            }
            Reconcile::Blind => {
                assert_eq!(
                    (ran.outcome, v.step("g").phase, v.step("g").interrupted),
                    (RunOutcome::Failed, Phase::Failed, true)
                );
                assert_eq!(v.step("g").error.as_deref(), Some(lifecycle::interrupted_message("g").as_str()));
            }
        }
        assert_eq!(rig.fake.world.effects.load(Ordering::SeqCst), 1, "never sent again");
    }
}

#[tokio::test(start_paused = true)]
async fn an_artifact_that_changed_since_the_approval_voids_it() {
    let rig = Rig::new(&[("g", "command", true, &[], p())], Reconcile::Blind);
    rig.run().await.unwrap();
    rig.approve("g");
    *rig.fake.artifact.lock().unwrap() = "do something else".into();
    assert_eq!(rig.run().await.unwrap().outcome, RunOutcome::WaitingApproval);
    let v = rig.view();
    assert_eq!(v.step("g").void_reason.as_deref(), Some(lifecycle::VOID_ARTIFACT));
    assert!(v.step("g").artifact.as_deref().unwrap().starts_with("do something else"));
    assert_eq!(rig.fake.world.effects.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_step_rejected_while_its_verify_ran_is_not_carried_out() {
    let mut rig = Rig::new(&[("g", "command", true, &[], p())], Reconcile::Blind);
    rig.fake_mut().preview_takes = Duration::from_secs(5);
    rig.run().await.unwrap();
    rig.approve("g");
    let memory = rig.memory.clone();
    let reject = async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        memory.append_next(
            RB,
            "bo",
            Body::Rejected { step: "g".into(), by: "bo".into(), as_name: None, reason: "not today".into() },
        );
    };
    let (ran, ()) = tokio::join!(rig.run(), reject);
    assert_eq!(ran.unwrap().outcome, RunOutcome::Failed);
    assert_eq!(rig.phase("g"), Phase::Rejected);
    assert!(rig.names("g").contains(&"outcome_discarded"), "{:?}", rig.names("g"));
    assert_eq!(rig.fake.world.effects.load(Ordering::SeqCst), 0);
}

/// Another writer appends while the engine holds its session: the engine's next append
/// conflicts, it folds the other's event in and decides again; nothing is lost or doubled.
#[tokio::test(start_paused = true)]
async fn a_conflicting_writer_is_folded_in() {
    let mut rig = Rig::new(
        &[
            ("a", "capacity_model", false, &[], p()),
            ("g", "command", true, &[], p()),
            ("b", "capacity_model", false, &["a"], p()),
        ],
        Reconcile::Blind,
    );
    rig.fake_mut().effect_takes = Duration::from_secs(2);
    // The session stays open while a's effect runs, so the engine does not see the skip
    // until its append conflicts with it.
    rig.opts.hold = Duration::from_secs(30);
    let memory = rig.memory.clone();
    let skip = async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        memory.append_next(RB, "bo", Body::Skipped { step: "g".into(), by: "bo".into(), reason: "by hand".into() })
    };
    let (ran, skipped) = tokio::join!(rig.run(), skip);
    assert_eq!(ran.unwrap().outcome, RunOutcome::Done);
    let events = rig.memory.events(RB);
    assert!(
        events.iter().any(|e| e.seq == skipped.seq && e.body.name() == "skipped"),
        "the other writer's event stays"
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(rig.names("a"), ["submit_started", "succeeded"], "not doubled");
    assert_eq!(rig.names("b"), ["submit_started", "succeeded"]);
    assert_eq!(rig.phase("g"), Phase::Skipped);
    assert_eq!(rig.fake.world.effects.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn at_most_jobs_effects_run_at_once() {
    let steps: Vec<(String, Value)> = (0..10).map(|i| (format!("s{i}"), p())).collect();
    let defs: Vec<StepDef> =
        steps.iter().map(|(id, v)| (id.as_str(), "capacity_model", false, &[][..], v.clone())).collect();
    let mut rig = Rig::new(&defs, Reconcile::ByToken);
    rig.fake_mut().effect_takes = Duration::from_secs(1);
    rig.opts.jobs = 3;
    let start = tokio::time::Instant::now();
    assert_eq!(rig.run().await.unwrap().outcome, RunOutcome::Done);
    assert_eq!(rig.fake.world.max_in_flight.load(Ordering::SeqCst), 3);
    assert_eq!(rig.fake.world.effects.load(Ordering::SeqCst), 10);
    // Four rounds of one (paused) second: ceil(10 / 3).
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(5), "{took:?}");
}

/// `--wait`: a step waiting an hour is polled when due; the hour passes on the paused clock.
#[tokio::test(start_paused = true)]
async fn wait_polls_when_due_without_sleeping_for_real() {
    let mut rig = Rig::new(&[("w", "capacity_model", false, &[], p())], Reconcile::ByToken);
    rig.fake_mut().wait_for = Some(Duration::from_secs(3600));
    let real = std::time::Instant::now();
    assert_eq!(rig.run().await.unwrap().outcome, RunOutcome::Waiting);
    rig.opts.wait = true;
    rig.opts.tick = Duration::from_secs(60);
    let start = rig.clock.now_ms();
    assert_eq!(rig.run().await.unwrap().outcome, RunOutcome::Done);
    assert!(rig.clock.now_ms() - start >= 3_500_000, "the clock moved past the poll time");
    assert!(real.elapsed() < Duration::from_secs(10), "no real waiting");
    assert_eq!(rig.names("w"), ["submit_started", "wait_scheduled", "succeeded"]);
}

#[tokio::test(start_paused = true)]
async fn a_kind_without_an_executor_blocks_and_the_rest_goes_on() {
    let rig = Rig::new(
        &[("r", "restore_drill", true, &[], json!({})), ("a", "capacity_model", false, &[], p())],
        Reconcile::ByToken,
    );
    let ran = rig.run().await.unwrap();
    assert_eq!(ran.outcome, RunOutcome::Unsupported);
    assert_eq!(rig.phase("a"), Phase::Succeeded);
    assert_eq!(rig.run().await.unwrap().outcome, RunOutcome::Unsupported);
    assert_eq!(rig.names("r"), ["blocked"], "blocked once, not at every run");
}

/// A notifier that keeps what it was asked to send, and can be made to fail.
#[derive(Default)]
struct Told {
    sent: Mutex<Vec<Notice>>,
    fail: bool,
}

#[async_trait]
impl Notifier for Told {
    async fn send(&self, n: &Notice) -> std::result::Result<(), crate::engine::Undelivered> {
        self.sent.lock().unwrap().push(n.clone());
        if self.fail {
            Err("HTTP 500 from the webhook".into())
        } else {
            Ok(())
        }
    }
}

#[tokio::test(start_paused = true)]
async fn each_notice_goes_once_and_a_failed_one_never_stops_the_run() {
    let mut rig = Rig::new(
        &[("g", "command", true, &[], p()), ("f", "capacity_model", false, &[], json!({"n": "${nowhere.n}"}))],
        Reconcile::Blind,
    );
    let told = Arc::new(Told::default());
    rig.notifier = Some(told.clone());
    rig.run().await.unwrap();
    rig.run().await.unwrap();
    let mut kinds: Vec<String> = told.sent.lock().unwrap().iter().map(|n| n.kind.clone()).collect();
    kinds.sort();
    assert_eq!(kinds, ["gate_waiting", "step_failed"], "once each, not again at the second run");
    let gate = told.sent.lock().unwrap().iter().find(|n| n.kind == "gate_waiting").cloned().unwrap();
    assert!(gate.text.contains("flow approve g --runbook rb"), "{}", gate.text);
    assert_eq!(rig.memory.events(RB).iter().filter(|e| e.body.name() == "notified").count(), 2);

    // A webhook that fails: journaled, logged, the run goes on to its outcome.
    let mut rig = Rig::new(&[("g", "command", true, &[], p())], Reconcile::Blind);
    let failing = Arc::new(Told { fail: true, ..Told::default() });
    rig.notifier = Some(failing.clone());
    assert_eq!(rig.run().await.unwrap().outcome, RunOutcome::WaitingApproval);
    let e = rig.memory.events(RB).into_iter().find(|e| e.body.name() == "notified").unwrap();
    assert_eq!(
        e.body,
        Body::Notified { key: "gate_waiting:g:4".into(), ok: false, error: Some("HTTP 500 from the webhook".into()) }
    );
}

#[tokio::test(start_paused = true)]
async fn a_done_runbook_tells_its_decision_once() {
    let mut rig = Rig::new(&[("a", "capacity_model", false, &[], p())], Reconcile::ByToken);
    let told = Arc::new(Told::default());
    rig.notifier = Some(told.clone());
    assert_eq!(rig.run().await.unwrap().outcome, RunOutcome::Done);
    assert_eq!(rig.run().await.unwrap().outcome, RunOutcome::Done);
    let sent = told.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].key, "completed:v1");
    let names: Vec<&str> = rig.memory.events(RB).iter().map(|e| e.body.name()).collect();
    let finished = names.iter().position(|n| *n == "run_finished").unwrap();
    assert!(names[..finished].contains(&"notified"), "delivered before the run ends: {names:?}");
}
