//! One turn of the loop: the plan indexed for it ([`Indexed`]), the steps looked at again
//! asked what they should do ([`lifecycle`]), their events staged over a working copy of the
//! view ([`Shallow`]), and the effects to start ([`Turn`]).

use super::*;

/// The plan, indexed for the loop.
pub(super) struct Indexed {
    pub(super) plan: Plan,
    pub(super) index: HashMap<String, usize>,
    /// Position in dependency order, by step index; `order[rank]` is the step index.
    pub(super) rank: Vec<usize>,
    pub(super) order: Vec<usize>,
    pub(super) dependents: Vec<Vec<usize>>,
    pub(super) kinds: Vec<Option<StepKind>>,
    /// Per step, how many of its needs (in order) are known done in the recorded view: a need
    /// done stays done until the plan changes (which builds a new index), so a step with
    /// thousands of needs is not asked about all of them again each time one finishes.
    needs_done_upto: std::cell::RefCell<Vec<usize>>,
}

impl Indexed {
    pub(super) fn new(plan: Plan) -> Indexed {
        let index: HashMap<String, usize> =
            plan.steps.iter().enumerate().rev().map(|(i, s)| (s.id.clone(), i)).collect();
        let mut order: Vec<usize> =
            validate::topo_order(&plan).iter().filter_map(|id| index.get(*id).copied()).collect();
        // Steps the order leaves out (only in an invalid plan) still get a place.
        let placed: BTreeSet<usize> = order.iter().copied().collect();
        order.extend((0..plan.steps.len()).filter(|i| !placed.contains(i)));
        let mut rank = vec![0; plan.steps.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        let mut dependents = vec![Vec::new(); plan.steps.len()];
        for (i, s) in plan.steps.iter().enumerate() {
            for n in &s.needs {
                if let Some(&j) = index.get(n) {
                    dependents[j].push(i);
                }
            }
        }
        let kinds = plan.steps.iter().map(|s| StepKind::parse(&s.kind)).collect();
        let needs_done_upto = std::cell::RefCell::new(vec![0; plan.steps.len()]);
        Indexed { plan, index, rank, order, dependents, kinds, needs_done_upto }
    }

    /// Are step `i`'s needs all done: in the recorded view up to the mark, then in the turn's
    /// working view (`done`). The mark moves only on what is recorded.
    fn needs_done(&self, i: usize, recorded: &RunbookView, done: impl Fn(&str) -> bool) -> bool {
        let needs = &self.plan.steps[i].needs;
        let mut upto = self.needs_done_upto.borrow_mut();
        let mut k = upto[i];
        while k < needs.len() && recorded.step(&needs[k]).phase.satisfies_needs() {
            k += 1;
        }
        upto[i] = k;
        needs[k..].iter().all(|n| done(n))
    }
}

/// What one turn decided.
#[derive(Default)]
struct Turn {
    pub(super) staged: Vec<Event>,
    pub(super) starts: Vec<(String, Start)>,
    /// Ranks of steps that wait for a free slot.
    pub(super) kept: BTreeSet<usize>,
    pub(super) unsupported: Vec<String>,
}

/// A turn's working copy of the view: the steps it changed, over the engine's view.
#[derive(Default)]
struct Shallow {
    pub(super) changed: HashMap<String, StepView>,
}

impl Shallow {
    pub(super) fn step<'v>(&'v self, base: &'v RunbookView, id: &str) -> &'v StepView {
        self.changed.get(id).unwrap_or_else(|| base.step(id))
    }

    pub(super) fn output<'v>(&'v self, base: &'v RunbookView, step: &str, output: &str) -> Option<&'v Value> {
        match self.changed.get(step) {
            Some(s) => (s.phase == Phase::Succeeded).then(|| s.outputs.get(output)).flatten(),
            None => base.output(step, output),
        }
    }

    pub(super) fn apply(&mut self, base: &RunbookView, e: &Event) {
        if let Some(id) = e.body.step() {
            let s = self.changed.entry(id.to_string()).or_insert_with(|| base.step(id).clone());
            lifecycle::apply(s, &e.body, &e.at);
        }
    }
}

impl Engine<'_> {
    /// One turn: settle what finished, decide what changed, commit it all in one append, then
    /// start the effects. A conflicting append (someone else wrote first) folds their events
    /// in and decides again; nothing was started on the stale view.
    pub(super) fn turn(&mut self) -> Result<()> {
        for _ in 0..CONFLICTS {
            let dirty = std::mem::take(&mut self.dirty);
            let t = self.plan_turn(dirty);
            self.unsupported.extend(t.unsupported);
            match self.commit(t.staged) {
                Ok(()) => {
                    // Merged the small into the large: thousands of ready steps waiting for a
                    // slot are not copied again at every turn.
                    let mut kept = t.kept;
                    if kept.len() > self.dirty.len() {
                        std::mem::swap(&mut kept, &mut self.dirty);
                    }
                    self.dirty.extend(kept);
                    self.completed.clear();
                    for (id, start) in t.starts {
                        self.launch(id, start);
                    }
                    return Ok(());
                }
                Err(Error::Journal(crate::state::Error::Conflict { .. })) => self.reload()?,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Journal(crate::state::Error::Backend {
            path: self.backend.describe(),
            detail: format!("runbook `{}` kept moving under this run; run it again", self.meta.name),
        }))
    }

    /// Decide a turn against a working copy of the view: the events to record (in order), the
    /// effects to start once they are durable, and the steps left for a free slot.
    fn plan_turn(&self, mut dirty: BTreeSet<usize>) -> Turn {
        let now = self.clock.now_ms();
        let mut view = Shallow::default();
        let mut t = Turn::default();
        let stage = |view: &mut Shallow, t: &mut Turn, bodies: Vec<Body>| {
            for b in bodies {
                let e = self.event(b);
                view.apply(&self.view, &e);
                t.staged.push(e);
            }
        };
        for c in &self.completed {
            let sv = view.step(&self.view, &c.step);
            let d = lifecycle::settle(&self.meta.name, &c.step, sv, &c.start, c.finished.clone());
            stage(&mut view, &mut t, d.record);
            if let Some(start) = d.start {
                t.starts.push((c.step.clone(), start));
            }
            // What it unblocks is decided in this same turn, and committed with its outcome.
            if let Some(&i) = self.plan.index.get(&c.step) {
                dirty.extend(self.plan.dependents[i].iter().map(|&d| self.plan.rank[d]));
            }
        }
        let jobs = self.opts.jobs.max(1);
        while let Some(rank) = dirty.pop_first() {
            let i = self.plan.order[rank];
            let step = &self.plan.plan.steps[i];
            if self.flights.contains_key(&step.id) || t.starts.iter().any(|(id, _)| id == &step.id) {
                continue;
            }
            let Some(kind) = self.plan.kinds[i] else { continue };
            let situation = Situation {
                runbook: &self.meta.name,
                step,
                kind,
                view: view.step(&self.view, &step.id),
                needs_done: self.plan.needs_done(i, &self.view, |n| view.step(&self.view, n).phase.satisfies_needs()),
                executor: self.executors.executor(kind).is_some(),
                now_ms: now,
                policy: self.policy,
            };
            let resolve_params = || {
                let lookup = |s: &str, o: &str| view.output(&self.view, s, o);
                resolve(&step.params, &lookup).map(Resolved::new)
            };
            let Decision { record, start, unsupported } = lifecycle::decide(&situation, resolve_params);
            if unsupported {
                t.unsupported.push(step.id.clone());
            }
            if start.is_some() && self.flights.len() + t.starts.len() >= jobs {
                // No slot: this step (and the rest) wait for one; nothing of it is recorded.
                t.kept = std::mem::take(&mut dirty);
                t.kept.insert(rank);
                break;
            }
            if record.is_empty() && start.is_none() {
                continue;
            }
            let before = view.step(&self.view, &step.id).phase;
            stage(&mut view, &mut t, record);
            if before != view.step(&self.view, &step.id).phase {
                // Dependants may be ready now: look at them in this same turn.
                for &d in &self.plan.dependents[i] {
                    dirty.insert(self.plan.rank[d]);
                }
            }
            if let Some(start) = start {
                t.starts.push((step.id.clone(), start));
            }
        }
        t
    }

    pub(super) fn ctx(&self, id: &str, kind: StepKind) -> Ctx {
        let plan = &self.plan.plan;
        let covers = match self.plan.index.get(id) {
            Some(&i) => plan.requirements.iter().filter(|r| plan.steps[i].covers.contains(&r.id)).cloned().collect(),
            None => vec![],
        };
        Ctx {
            runbook: self.meta.name.clone(),
            step: id.into(),
            context: plan.context.clone(),
            workflow_dir: self.meta.workflow.parent().map(|p| p.to_path_buf()).unwrap_or_default(),
            clock: self.clock.clone(),
            verdicts: if kind.def().decision { verdict::verdicts(plan, &self.view) } else { vec![] },
            covers,
            progress: self.progress.clone(),
        }
    }
}
