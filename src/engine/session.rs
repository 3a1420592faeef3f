//! The engine's journal session: opened while work keeps coming, closed when another process
//! queues for the store or the engine would wait; each opening folds in what others appended.
//! Events are staged per turn and committed in one conditional append.

use super::*;

pub(super) fn load_plan(j: &dyn Journal, runbook: &str, version: u32) -> Result<Plan> {
    j.plan(runbook, version)?.ok_or(Error::NoPlan { runbook: runbook.into(), version })
}

impl Engine<'_> {
    pub(super) fn look_at_everything(&mut self) {
        self.dirty = (0..self.plan.order.len()).collect();
        self.timers.clear();
        for (id, s) in &self.view.steps {
            if let (Phase::Waiting, Some(t)) = (s.phase, s.next_poll_at) {
                self.timers.push(Reverse((t, id.clone())));
            }
        }
    }

    pub(super) fn session(&mut self) -> Result<&mut Box<dyn Journal>> {
        if self.session.is_none() {
            let s = self.backend.open()?;
            let news = s.events_after(&self.meta.name, self.view.last_seq)?;
            self.session = Some(s);
            for e in news {
                self.absorb(&e)?;
            }
        }
        Ok(self.session.as_mut().expect("just opened"))
    }

    /// Hand the store back (writing a snapshot first when many events came since the last).
    pub(super) fn close(&mut self) {
        if let Some(mut s) = self.session.take() {
            if self.view.last_seq >= self.snapshot_seq + SNAPSHOT_EVERY {
                match s.put_snapshot(&self.meta.name, &self.view) {
                    Ok(()) => self.snapshot_seq = self.view.last_seq,
                    Err(e) => tracing::warn!("could not write a snapshot of the projection: {e}"),
                }
            }
        }
    }

    /// Fold one event into the view and mark what it may have made ready.
    fn absorb(&mut self, e: &Event) -> Result<()> {
        if let Body::PlanRecorded { version, .. } = &e.body {
            self.view.apply(e);
            let plan =
                load_plan(self.session.as_deref().expect("absorbing with a session"), &self.meta.name, *version)?;
            self.plan = Indexed::new(plan);
            self.look_at_everything();
            return Ok(());
        }
        let Some(id) = e.body.step() else {
            self.view.apply(e);
            return Ok(());
        };
        let before = self.view.step(id).phase;
        self.view.apply(e);
        let after = self.view.step(id);
        if let (Phase::Waiting, Some(t)) = (after.phase, after.next_poll_at) {
            self.timers.push(Reverse((t, id.to_string())));
        }
        let changed = before != after.phase;
        if let Some(&i) = self.plan.index.get(id) {
            self.dirty.insert(self.plan.rank[i]);
            if changed {
                for &d in &self.plan.dependents[i] {
                    self.dirty.insert(self.plan.rank[d]);
                }
            }
        }
        Ok(())
    }

    pub(super) fn event(&self, body: Body) -> Event {
        Event {
            seq: 0,
            at: rfc3339(self.clock.now_ms()),
            actor: self.actor.to_string(),
            as_name: self.as_name.map(str::to_string),
            host: crate::state::host().into(),
            body,
        }
    }

    /// Record `bodies` now, in one append.
    pub(super) fn record(&mut self, bodies: Vec<Body>) -> Result<()> {
        let staged: Vec<Event> = bodies.into_iter().map(|b| self.event(b)).collect();
        self.commit(staged)
    }

    pub(super) fn commit(&mut self, mut staged: Vec<Event>) -> Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        let first = self.view.next_seq();
        for (k, e) in staged.iter_mut().enumerate() {
            e.seq = first + k as u64;
        }
        let rb = self.meta.name.clone();
        self.session()?.append(&rb, &staged)?;
        for e in staged {
            self.absorb(&e)?;
            if self.notifier.is_some() {
                if let Some(n) = notify::about(&e, &self.plan.plan) {
                    if !self.view.notified.contains(&n.key) && !self.queued.iter().any(|q| q.key == n.key) {
                        self.queued.push(n);
                    }
                }
            }
            self.reporter.event(&e);
            if self.opts.keep_events {
                self.events.push(e);
            }
        }
        Ok(())
    }

    /// Someone else wrote first: fold the whole journal in again and look at everything.
    pub(super) fn reload(&mut self) -> Result<()> {
        let name = self.meta.name.clone();
        let s = self.session()?;
        let view = crate::state::project(s.as_ref(), &name)?;
        let plan = load_plan(s.as_ref(), &name, view.version)?;
        self.view = view;
        self.plan = Indexed::new(plan);
        self.look_at_everything();
        Ok(())
    }
}
