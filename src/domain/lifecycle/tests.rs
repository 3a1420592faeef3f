//! The lifecycle's rules, one transition at a time.

use serde_json::json;

use super::*;
use crate::domain::catalogue::StepKind;
use crate::domain::plan::Step;
use crate::domain::policy::Policy;
use crate::domain::reference::OutputRef;

fn step(kind: &str, gate: bool) -> Step {
    Step {
        id: "s".into(),
        kind: kind.into(),
        description: String::new(),
        needs: vec![],
        covers: vec![],
        gate,
        params: Map::new(),
    }
}

fn step_s() -> Step {
    step("command", true)
}

fn ana() -> Who {
    Who::new("ana", None)
}

fn params(d: &str) -> Resolved {
    Resolved { params: Map::new(), digest: d.into() }
}

struct Case {
    kind: StepKind,
    step: Step,
    view: StepView,
    needs_done: bool,
    executor: bool,
    now: u64,
}

impl Case {
    fn new(kind: StepKind, gate: bool) -> Case {
        Case {
            kind,
            step: step(kind.name(), gate),
            view: StepView::default(),
            needs_done: true,
            executor: true,
            now: 10,
        }
    }
    fn with(mut self, bodies: &[Body]) -> Case {
        for b in bodies {
            apply(&mut self.view, b, "t");
        }
        self
    }
    fn decide(&self, digest: &str) -> Decision {
        let s = Situation {
            runbook: "rb",
            step: &self.step,
            kind: self.kind,
            view: &self.view,
            needs_done: self.needs_done,
            executor: self.executor,
            now_ms: self.now,
            policy: &Policy::default(),
        };
        decide(&s, || Ok(params(digest)))
    }
}

fn approved(a: &str, p: &str) -> Body {
    Body::Approved {
        step: "s".into(),
        by: "ana".into(),
        comment: None,
        artifact_digest: a.into(),
        params_digest: p.into(),
        shown: None,
        as_name: None,
        complete: true,
        missing: vec![],
    }
}
fn previewed(artifact: &str, p: &str) -> Body {
    Body::PreviewRecorded {
        step: "s".into(),
        artifact: artifact.into(),
        artifact_digest: digest::of_bytes(artifact.as_bytes()),
        params_digest: p.into(),
    }
}
fn submitted(attempt: u32, p: &str) -> Body {
    Body::SubmitStarted { step: "s".into(), attempt, token: token("rb", "s", p, attempt), params_digest: p.into() }
}
fn done() -> Outcome {
    Outcome::Done { outputs: Map::new(), evidence: Map::new() }
}

/// decide: (case, params digest now) -> (events recorded, effect).
#[test]
fn decide_table() {
    let a = digest::of_bytes(b"run x");
    let cases: Vec<(&str, Case, Vec<&str>, Option<Effect>)> = vec![
        ("gated idle previews", Case::new(StepKind::Command, true), vec!["preview_started"], Some(Effect::Preview)),
        (
            "ungated idle submits with the first token",
            Case::new(StepKind::CapacityModel, false),
            vec!["submit_started"],
            Some(Effect::Submit { token: token("rb", "s", "p", 1) }),
        ),
        (
            "needs not done: nothing",
            {
                let mut c = Case::new(StepKind::Command, true);
                c.needs_done = false;
                c
            },
            vec![],
            None,
        ),
        (
            "a preview cut short runs again, same attempt",
            Case::new(StepKind::Command, true).with(&[Body::PreviewStarted { step: "s".into(), attempt: 3 }]),
            vec!["preview_started"],
            Some(Effect::Preview),
        ),
        (
            "awaiting approval: nothing",
            Case::new(StepKind::Command, true).with(&[previewed("run x", "p")]),
            vec![],
            None,
        ),
        (
            "approved with the same params verifies",
            Case::new(StepKind::Command, true).with(&[previewed("run x", "p"), approved(&a, "p")]),
            vec![],
            Some(Effect::Verify),
        ),
        (
            "approved with other params: void, preview again",
            Case::new(StepKind::Command, true).with(&[previewed("run x", "old"), approved(&a, "old")]),
            vec!["approval_voided", "preview_started"],
            Some(Effect::Preview),
        ),
        (
            "approved, needs reset by a plan change: wait for them",
            {
                let mut c = Case::new(StepKind::Command, true).with(&[approved(&a, "p")]);
                c.needs_done = false;
                c
            },
            vec![],
            None,
        ),
        (
            "side effect caught submitting: reconcile by its token",
            Case::new(StepKind::Command, true).with(&[submitted(2, "p")]),
            vec![],
            Some(Effect::Reconcile { token: token("rb", "s", "p", 2) }),
        ),
        (
            "read-only kind caught submitting: submit again, same token",
            Case::new(StepKind::Probe, false).with(&[submitted(2, "p")]),
            vec!["submit_started"],
            Some(Effect::Submit { token: token("rb", "s", "p", 2) }),
        ),
        (
            "waiting, not due",
            Case::new(StepKind::Probe, false).with(&[Body::WaitScheduled {
                step: "s".into(),
                next_poll_at: 11,
                note: String::new(),
                handle: json!(1),
            }]),
            vec![],
            None,
        ),
        (
            "waiting, due: poll with the handle",
            Case::new(StepKind::Probe, false).with(&[Body::WaitScheduled {
                step: "s".into(),
                next_poll_at: 10,
                note: String::new(),
                handle: json!(1),
            }]),
            vec![],
            Some(Effect::Poll { handle: json!(1) }),
        ),
        (
            "done: nothing",
            Case::new(StepKind::Probe, false).with(&[Body::Succeeded {
                step: "s".into(),
                outputs: Map::new(),
                evidence: Map::new(),
            }]),
            vec![],
            None,
        ),
        (
            "failed: nothing until a retry",
            Case::new(StepKind::Probe, false).with(&[Body::Failed {
                step: "s".into(),
                error: "x".into(),
                interrupted: false,
            }]),
            vec![],
            None,
        ),
        (
            "retried with its approval: verify again",
            Case::new(StepKind::Command, true).with(&[
                previewed("run x", "p"),
                approved(&a, "p"),
                submitted(1, "p"),
                Body::Failed { step: "s".into(), error: "x".into(), interrupted: true },
                Body::RetryRequested { step: "s".into(), by: "ana".into(), keep_approval: true },
            ]),
            vec![],
            Some(Effect::Verify),
        ),
        (
            "skipped: nothing",
            Case::new(StepKind::Command, true).with(&[Body::Skipped {
                step: "s".into(),
                by: "a".into(),
                reason: "r".into(),
            }]),
            vec![],
            None,
        ),
    ];
    for (what, case, events, effect) in cases {
        let d = case.decide("p");
        let names: Vec<&str> = d.record.iter().map(Body::name).collect();
        assert_eq!(names, events, "{what}");
        assert_eq!(d.start.map(|s| s.effect), effect, "{what}");
    }
}

#[test]
fn attempts_count_up_and_tokens_follow_them() {
    let c = Case::new(StepKind::CapacityModel, false).with(&[
        submitted(1, "p"),
        Body::Failed { step: "s".into(), error: "x".into(), interrupted: false },
        Body::RetryRequested { step: "s".into(), by: "a".into(), keep_approval: true },
    ]);
    let d = c.decide("p");
    assert_eq!(d.start.as_ref().map(|s| s.attempt), Some(2));
    assert_eq!(d.record, vec![submitted(2, "p")]);
}

#[test]
fn without_an_executor_a_step_is_blocked_once() {
    let mut c = Case::new(StepKind::FailoverDrill, true);
    c.executor = false;
    let d = c.decide("p");
    assert!(d.unsupported && d.start.is_none());
    assert_eq!(d.record, vec![Body::Blocked { step: "s".into(), reason: unsupported_reason(StepKind::FailoverDrill) }]);
    let c = c.with(&d.record);
    let again = c.decide("p");
    assert!(again.unsupported && again.record.is_empty(), "not recorded twice");
}

#[test]
fn a_reference_without_a_value_fails_the_step() {
    let c = Case::new(StepKind::Probe, false);
    let s = Situation {
        runbook: "rb",
        step: &c.step,
        kind: c.kind,
        view: &c.view,
        needs_done: true,
        executor: true,
        now_ms: 0,
        policy: &Policy::default(),
    };
    let d = decide(&s, || Err(OutputRef { step: "m".into(), output: "n".into() }));
    assert_eq!(
        d.record,
        vec![Body::Failed {
            step: "s".into(),
            error: "param references ${m.n}, but step `m` recorded no output `n`".into(),
            interrupted: false
        }]
    );
    assert!(d.start.is_none());
}

fn start(effect: Effect, attempt: u32) -> Start {
    Start { effect, attempt, params: params("p") }
}

/// settle: (view, effect started, result) -> (events recorded, next effect).
#[test]
fn settle_table() {
    let preview = |v: &StepView, f| settle("rb", "s", v, &start(Effect::Preview, 1), f);
    let previewing =
        Case::new(StepKind::Command, true).with(&[Body::PreviewStarted { step: "s".into(), attempt: 1 }]).view;
    let d = preview(&previewing, Finished::Previewed(Ok(Preview::Approve("run x".into()))));
    assert_eq!(d.record, vec![previewed("run x", "p")]);
    let d = preview(&previewing, Finished::Previewed(Ok(Preview::Nothing(done()))));
    assert_eq!(d.record[0].name(), "succeeded");
    let d = preview(&previewing, Finished::Previewed(Err("AccessDenied".into())));
    assert_eq!(
        d.record,
        vec![Body::Failed { step: "s".into(), error: "preview failed: AccessDenied".into(), interrupted: false }]
    );

    // Verify: the same artifact goes on to submit; another one voids the approval.
    let a = digest::of_bytes(b"run x");
    let approved_view = Case::new(StepKind::Command, true).with(&[previewed("run x", "p"), approved(&a, "p")]).view;
    let verify = |f| settle("rb", "s", &approved_view, &start(Effect::Verify, 1), f);
    let d = verify(Finished::Previewed(Ok(Preview::Approve("run x".into()))));
    assert_eq!(d.record, vec![submitted(1, "p")]);
    assert_eq!(d.start.map(|s| s.effect), Some(Effect::Submit { token: token("rb", "s", "p", 1) }));
    let d = verify(Finished::Previewed(Ok(Preview::Approve("run y".into()))));
    let names: Vec<&str> = d.record.iter().map(Body::name).collect();
    assert_eq!(names, ["approval_voided", "preview_recorded"]);
    assert_eq!(d.record[0], Body::ApprovalVoided { step: "s".into(), reason: VOID_ARTIFACT.into() });
    assert!(d.start.is_none());

    // Verify after a retry of a submitted attempt: a new attempt, a new token.
    let retried = Case::new(StepKind::Command, true)
        .with(&[
            previewed("run x", "p"),
            approved(&a, "p"),
            submitted(1, "p"),
            Body::Failed { step: "s".into(), error: "x".into(), interrupted: false },
            Body::RetryRequested { step: "s".into(), by: "a".into(), keep_approval: true },
        ])
        .view;
    let d = settle(
        "rb",
        "s",
        &retried,
        &start(Effect::Verify, 1),
        Finished::Previewed(Ok(Preview::Approve("run x".into()))),
    );
    assert_eq!(d.record, vec![submitted(2, "p")]);

    // Submit and reconcile.
    let submitting = Case::new(StepKind::Command, true).with(&[submitted(1, "p")]).view;
    let sub = |effect: Effect, f| settle("rb", "s", &submitting, &start(effect, 1), f);
    let tok = || Effect::Submit { token: "t".into() };
    assert_eq!(sub(tok(), Finished::Submitted(Ok(done()))).record[0].name(), "succeeded");
    let wait = Outcome::Wait { next_poll_at: 99, note: "n".into(), handle: json!({"id": 1}) };
    assert_eq!(
        sub(tok(), Finished::Submitted(Ok(wait))).record,
        vec![Body::WaitScheduled { step: "s".into(), next_poll_at: 99, note: "n".into(), handle: json!({"id": 1}) }]
    );
    assert_eq!(
        sub(tok(), Finished::Submitted(Err("boom".into()))).record,
        vec![Body::Failed { step: "s".into(), error: "boom".into(), interrupted: false }]
    );
    let rec = || Effect::Reconcile { token: "t".into() };
    assert_eq!(sub(rec(), Finished::Reconciled(Ok(Some(done())))).record[0].name(), "succeeded");
    assert_eq!(
        sub(rec(), Finished::Reconciled(Ok(None))).record,
        vec![Body::Failed { step: "s".into(), error: interrupted_message("s"), interrupted: true }]
    );
}

#[test]
fn a_result_for_a_step_that_moved_on_is_kept_aside() {
    let a = digest::of_bytes(b"run x");
    // Rejected while its verify ran: no submit.
    let rejected = Case::new(StepKind::Command, true)
        .with(&[
            previewed("run x", "p"),
            approved(&a, "p"),
            Body::Rejected { step: "s".into(), by: "b".into(), as_name: None, reason: "no".into() },
        ])
        .view;
    let d = settle(
        "rb",
        "s",
        &rejected,
        &start(Effect::Verify, 1),
        Finished::Previewed(Ok(Preview::Approve("run x".into()))),
    );
    assert!(d.start.is_none());
    assert_eq!(d.record.iter().map(Body::name).collect::<Vec<_>>(), ["outcome_discarded"]);
    // Reset by a plan change while it was submitting: the old attempt's outcome is not its.
    let reset = Case::new(StepKind::Command, true).with(&[submitted(1, "p")]).view.restarted(2);
    let d = settle("rb", "s", &reset, &start(Effect::Submit { token: "t".into() }, 1), Finished::Submitted(Ok(done())));
    match &d.record[..] {
        [Body::OutcomeDiscarded { effect, result, .. }] => {
            assert_eq!((effect.as_str(), result.as_str()), ("submit", "done"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn verbs_apply_only_where_they_mean_something() {
    let a = digest::of_bytes(b"run x");
    let waiting = Case::new(StepKind::Command, true).with(&[previewed("run x", "p")]).view;
    let seen = Seen::Digest(digest::short(&a).to_string());
    let mut want = approved(&a, "p");
    if let Body::Approved { shown, .. } = &mut want {
        *shown = Some(digest::short(&a).to_string());
    }
    assert_eq!(
        approve(&step_s(), &waiting, State::WaitingApproval, Some("p"), &ana(), None, &seen, &Policy::default()),
        Ok(want)
    );
    // A digest other than the one recorded: what was read is not what would be approved.
    let other = Seen::Digest("0123456789ab".into());
    assert!(matches!(
        approve(&step_s(), &waiting, State::WaitingApproval, Some("p"), &ana(), None, &other, &Policy::default()),
        Err(Refusal::NotWhatWasShown { .. })
    ));
    assert!(matches!(
        approve(
            &step_s(),
            &waiting,
            State::WaitingApproval,
            Some("p"),
            &ana(),
            None,
            &Seen::Digest("ab".into()),
            &Policy::default()
        ),
        Err(Refusal::BadDigest { .. })
    ));
    assert_eq!(
        approve(
            &step_s(),
            &waiting,
            State::WaitingApproval,
            Some("q"),
            &ana(),
            None,
            &Seen::Confirmed(a.clone()),
            &Policy::default()
        )
        .unwrap_err()
        .to_string(),
        "step `s`: its params changed since the preview was shown; run `flow run` to preview it again"
    );
    let idle = StepView::default();
    assert_eq!(
        approve(&step_s(), &idle, State::Pending, None, &ana(), None, &Seen::Confirmed(a.clone()), &Policy::default())
            .unwrap_err()
            .to_string(),
        "step `s` is not waiting for approval (it is pending)"
    );
    assert!(reject("s", &waiting, State::WaitingApproval, &Who::new("b", None), "no").is_ok());
    assert_eq!(
        retry("s", None, &waiting, State::WaitingApproval, "b").unwrap_err().to_string(),
        "step `s` has not failed (it is waiting_approval)"
    );
    let running = Case::new(StepKind::Command, true).with(&[submitted(1, "p")]).view;
    assert!(matches!(skip("s", &running, State::Running, "b", "r"), Err(Refusal::Running { .. })));
    let skipped = Case::new(StepKind::Command, true)
        .with(&[Body::Skipped { step: "s".into(), by: "b".into(), reason: "r".into() }])
        .view;
    assert_eq!(skip("s", &skipped, State::Skipped, "b", "r").unwrap_err().to_string(), "step `s` is already skipped");
}

#[test]
fn a_rejection_is_final_for_what_was_shown() {
    let a = digest::of_bytes(b"run x");
    // alice approves, bob rejects: the later no voids the earlier yes.
    let c = Case::new(StepKind::Command, true).with(&[
        previewed("run x", "p"),
        approved(&a, "p"),
        Body::Rejected { step: "s".into(), by: "bob".into(), as_name: None, reason: "wrong database".into() },
    ]);
    assert_eq!((c.view.phase, c.view.approval.is_none()), (Phase::Rejected, true));
    assert_eq!(c.view.void_reason.as_deref(), Some("rejected by bob"));
    // A retry starts over from the preview and needs a new approval.
    let again = retry("s", Some(StepKind::Command), &c.view, State::Rejected, "carl").unwrap();
    let c = c.with(&[again]);
    assert_eq!(c.view.phase, Phase::Idle);
    assert_eq!(c.decide("p").start.map(|s| s.effect), Some(Effect::Preview));
}

#[test]
fn an_approval_short_of_the_policy_is_partial() {
    let policy: Policy = toml::from_str("[[approval]]\nkinds = [\"command\"]\nmin_approvers = 2\n").unwrap();
    let a = digest::of_bytes(b"run x");
    let seen = Seen::Digest(digest::short(&a).to_string());
    let mut c = Case::new(StepKind::Command, true).with(&[previewed("run x", "p")]);
    let first = approve(&step_s(), &c.view, State::WaitingApproval, Some("p"), &ana(), None, &seen, &policy).unwrap();
    assert!(
        matches!(&first, Body::Approved { complete: false, missing, .. } if missing == &["1 more approver (1 of 2)"])
    );
    c = c.with(&[first]);
    assert_eq!((c.view.phase, c.view.approvals.len()), (Phase::AwaitingApproval, 1));
    // The same person again does not count twice.
    assert!(matches!(
        approve(&step_s(), &c.view, State::WaitingApproval, Some("p"), &ana(), None, &seen, &policy),
        Err(Refusal::AlreadyApprovedBy { .. })
    ));
    let second =
        approve(&step_s(), &c.view, State::WaitingApproval, Some("p"), &Who::new("bob", None), None, &seen, &policy)
            .unwrap();
    c = c.with(&[second]);
    assert_eq!(c.view.phase, Phase::Approved);
    // Approved under one approver, a policy asking for two now holds it back before its effect.
    let one = Case::new(StepKind::Command, true).with(&[previewed("run x", "p"), approved(&a, "p")]);
    let s = Situation {
        runbook: "rb",
        step: &one.step,
        kind: one.kind,
        view: &one.view,
        needs_done: true,
        executor: true,
        now_ms: 0,
        policy: &policy,
    };
    let d = decide(&s, || Ok(params("p")));
    assert_eq!(
        d.record,
        vec![Body::ApprovalIncomplete { step: "s".into(), missing: vec!["1 more approver (1 of 2)".into()] }]
    );
    assert!(d.start.is_none());
    let back = one.with(&d.record);
    assert_eq!(back.view.phase, Phase::AwaitingApproval);
}

#[test]
fn a_retried_drill_is_approved_again() {
    let a = digest::of_bytes(b"run x");
    let failed = Case::new(StepKind::FailoverDrill, true)
        .with(&[
            previewed("run x", "p"),
            approved(&a, "p"),
            submitted(1, "p"),
            Body::Failed { step: "s".into(), error: "x".into(), interrupted: true },
        ])
        .view;
    let again = retry("s", Some(StepKind::FailoverDrill), &failed, State::Failed, "ana").unwrap();
    let mut v = failed.clone();
    apply(&mut v, &again, "t");
    assert_eq!((v.phase, v.approval.is_none(), v.void_reason.as_deref()), (Phase::Idle, true, Some(VOID_ONE_RUN)));
    let kept = retry("s", Some(StepKind::Command), &failed, State::Failed, "ana").unwrap();
    let mut v = failed;
    apply(&mut v, &kept, "t");
    assert_eq!(v.phase, Phase::Approved, "a command's approval stays bound to its digests");
}

#[test]
fn status_says_why_an_approval_is_void() {
    let a = digest::of_bytes(b"run x");
    let v = Case::new(StepKind::Command, true).with(&[previewed("run x", "p"), approved(&a, "p")]).view;
    assert_eq!(void_reason(&v, Some("p"), false), None);
    assert_eq!(void_reason(&v, Some("q"), false).as_deref(), Some(VOID_PARAMS));
    assert_eq!(void_reason(&v, Some("p"), true).as_deref(), Some(VOID_EDIT_PENDING));
    let restarted = v.restarted(3);
    assert_eq!(void_reason(&restarted, None, false).as_deref(), Some("step definition changed in plan version 3"));
    assert_eq!(state(&restarted, false), State::Pending);
    assert_eq!(state(&v, true), State::Ready);
}

/// A step walked through its life by the rules alone (decide, settle, the operator verbs),
/// each event they give applied in turn and the transition it makes noted as (phase before,
/// event, phase after).
struct Walk {
    case: Case,
    seen: std::collections::BTreeSet<(&'static str, &'static str, &'static str)>,
}

impl Walk {
    fn new(kind: StepKind, gate: bool) -> Walk {
        Walk { case: Case::new(kind, gate), seen: Default::default() }
    }
    fn record(&mut self, bodies: &[Body]) {
        for b in bodies {
            let from = self.case.view.phase.name();
            apply(&mut self.case.view, b, "t");
            self.seen.insert((from, b.name(), self.case.view.phase.name()));
        }
    }
    /// decide with the params digest `p` now: its events recorded, its effect started.
    fn decide(&mut self, p: &str) -> Option<Start> {
        let d = self.case.decide(p);
        self.record(&d.record);
        d.start
    }
    /// An effect's result settled: its events recorded, the next effect if any.
    fn settle(&mut self, started: &Start, f: Finished) -> Option<Start> {
        let d = settle("rb", "s", &self.case.view, started, f);
        self.record(&d.record);
        d.start
    }
    fn state(&self) -> State {
        state(&self.case.view, true)
    }
    fn verb(&mut self, r: Result<Body, Refusal>) {
        let b = r.unwrap_or_else(|e| panic!("{e}"));
        self.record(&[b]);
    }
    fn approve(&mut self, seen: &Seen) {
        let step = self.case.step.clone();
        let (view, st) = (self.case.view.clone(), self.state());
        self.verb(approve(&step, &view, st, Some("p"), &ana(), None, seen, &Policy::default()));
    }
}

/// Every transition of a step's life under the default policy, walked with the rules alone;
/// one that the walks never make, or one they make that is not listed here, fails the test (so
/// a new rule is a new line here, and docs/ARCHITECTURE.md's lifecycle says the same). The
/// approval policy's own transitions (a partial approval, `approval_incomplete`) are walked in
/// `an_approval_short_of_the_policy_is_partial`.
#[test]
fn every_transition_is_walked() {
    const LISTED: [(&str, &str, &str); 20] = [
        ("idle", "preview_started", "previewing"),
        ("previewing", "preview_recorded", "awaiting approval"),
        ("previewing", "succeeded", "succeeded"),
        ("previewing", "failed", "failed"),
        ("awaiting approval", "approved", "approved"),
        ("awaiting approval", "rejected", "rejected"),
        ("approved", "approval_voided", "idle"),
        ("idle", "preview_recorded", "awaiting approval"),
        ("approved", "submit_started", "submitting"),
        ("idle", "submit_started", "submitting"),
        ("submitting", "wait_scheduled", "waiting"),
        ("waiting", "wait_scheduled", "waiting"),
        ("waiting", "succeeded", "succeeded"),
        ("submitting", "succeeded", "succeeded"),
        ("submitting", "failed", "failed"),
        ("failed", "retry_requested", "approved"),
        ("failed", "retry_requested", "idle"),
        ("rejected", "retry_requested", "idle"),
        ("failed", "skipped", "skipped"),
        ("awaiting approval", "skipped", "skipped"),
    ];
    let mut seen = std::collections::BTreeSet::new();
    let a = digest::of_bytes(b"run x");
    let approve_x = Seen::Digest(a.clone());

    // Gated: preview, approve, verify, submit, wait, poll, done.
    let mut w = Walk::new(StepKind::Command, true);
    let s = w.decide("p").unwrap();
    w.settle(&s, Finished::Previewed(Ok(Preview::Approve("run x".into()))));
    w.approve(&approve_x);
    let s = w.decide("p").unwrap();
    let s = w.settle(&s, Finished::Previewed(Ok(Preview::Approve("run x".into())))).unwrap();
    let wait = Outcome::Wait { next_poll_at: 5, note: "pending".into(), handle: json!({"id": 1}) };
    w.settle(&s, Finished::Submitted(Ok(wait.clone())));
    let poll = w.decide("p").unwrap();
    w.settle(&poll, Finished::Submitted(Ok(wait)));
    let poll = w.decide("p").unwrap();
    w.settle(&poll, Finished::Submitted(Ok(done())));
    assert_eq!(w.state(), State::Succeeded);
    seen.append(&mut w.seen);

    // Gated: the artifact changed at verify (void, shown again); then it fails, is retried with
    // its approval, fails again and is skipped.
    let mut w = Walk::new(StepKind::Command, true);
    let s = w.decide("p").unwrap();
    w.settle(&s, Finished::Previewed(Ok(Preview::Approve("run x".into()))));
    w.approve(&approve_x);
    let s = w.decide("p").unwrap();
    w.settle(&s, Finished::Previewed(Ok(Preview::Approve("run y".into()))));
    w.approve(&Seen::Digest(digest::of_bytes(b"run y")));
    let s = w.decide("p").unwrap();
    let s = w.settle(&s, Finished::Previewed(Ok(Preview::Approve("run y".into())))).unwrap();
    w.settle(&s, Finished::Submitted(Err("AccessDenied".into())));
    let (view, st) = (w.case.view.clone(), w.state());
    w.verb(retry("s", Some(StepKind::Command), &view, st, "ana"));
    assert_eq!(w.case.view.phase, Phase::Approved, "the approval stays for a command");
    let s = w.decide("p").unwrap();
    let s = w.settle(&s, Finished::Previewed(Ok(Preview::Approve("run y".into())))).unwrap();
    w.settle(&s, Finished::Submitted(Err("AccessDenied".into())));
    let (view, st) = (w.case.view.clone(), w.state());
    w.verb(skip("s", &view, st, "ana", "done by hand"));
    seen.append(&mut w.seen);

    // Rejected, retried from the preview; the preview fails; retried; nothing to approve.
    let mut w = Walk::new(StepKind::Command, true);
    let s = w.decide("p").unwrap();
    w.settle(&s, Finished::Previewed(Ok(Preview::Approve("run x".into()))));
    let (view, st) = (w.case.view.clone(), w.state());
    w.verb(reject("s", &view, st, &ana(), "not today"));
    let (view, st) = (w.case.view.clone(), w.state());
    w.verb(retry("s", Some(StepKind::Command), &view, st, "ana"));
    let s = w.decide("p").unwrap();
    w.settle(&s, Finished::Previewed(Err("no such stack".into())));
    let (view, st) = (w.case.view.clone(), w.state());
    w.verb(retry("s", Some(StepKind::Command), &view, st, "ana"));
    let s = w.decide("p").unwrap();
    w.settle(&s, Finished::Previewed(Ok(Preview::Nothing(done()))));
    seen.append(&mut w.seen);

    // Ungated: submitted at once, done; and a gate skipped while it waits.
    let mut w = Walk::new(StepKind::CapacityModel, false);
    let s = w.decide("p").unwrap();
    w.settle(&s, Finished::Submitted(Ok(done())));
    seen.append(&mut w.seen);
    let mut w = Walk::new(StepKind::Command, true);
    let s = w.decide("p").unwrap();
    w.settle(&s, Finished::Previewed(Ok(Preview::Approve("run x".into()))));
    let (view, st) = (w.case.view.clone(), w.state());
    w.verb(skip("s", &view, st, "ana", "not needed"));
    seen.append(&mut w.seen);

    let listed: std::collections::BTreeSet<_> = LISTED.into_iter().collect();
    let never: Vec<_> = listed.difference(&seen).collect();
    let unlisted: Vec<_> = seen.difference(&listed).collect();
    assert!(
        never.is_empty() && unlisted.is_empty(),
        "listed but never walked: {never:?}\nwalked but not listed: {unlisted:?}"
    );
}
