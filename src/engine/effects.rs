//! Effects and notices in flight: started after their intent is committed, awaited with the
//! store open briefly and then closed, landed as outcomes for the next turn to record; poll
//! times coming due; notices sent once each (their intent recorded first).

use super::*;

/// An effect's result, waiting to be recorded.
pub(super) struct Completed {
    pub(super) step: String,
    pub(super) start: Start,
    pub(super) finished: Finished,
}

/// Carry out one effect through its executor; a failure becomes the message to record.
async fn carry_out(exec: Arc<dyn Executor>, ctx: Ctx, params: Map<String, Value>, effect: Effect) -> Finished {
    let msg = |e: crate::executor::Error| lifecycle::Failure(e.to_string());
    match effect {
        Effect::Preview | Effect::Verify => Finished::Previewed(exec.preview(&ctx, &params).await.map_err(msg)),
        Effect::Submit { token } => Finished::Submitted(exec.submit(&ctx, &params, &token).await.map_err(msg)),
        Effect::Poll { handle } => Finished::Submitted(exec.poll(&ctx, &params, &handle).await.map_err(msg)),
        Effect::Reconcile { token } => match exec.reconcile(&ctx, &params, &token).await {
            Err(crate::executor::Error::Interrupted(found)) => Finished::Interrupted(found),
            other => Finished::Reconciled(other.map_err(msg)),
        },
    }
}

impl Engine<'_> {
    /// Start sending the queued notices (their intent recorded first: each goes once), and
    /// record how the finished ones went.
    pub(super) fn notices(&mut self) -> Result<()> {
        while let Some(r) = self.sending.try_join_next() {
            self.delivered(r)?;
        }
        let (Some(notifier), false) = (self.notifier.clone(), self.queued.is_empty()) else { return Ok(()) };
        let queued = std::mem::take(&mut self.queued);
        let bodies = queued
            .iter()
            .map(|n| Body::NotifyStarted { key: n.key.clone(), kind: n.kind.clone(), title: n.title.clone() })
            .collect();
        self.record(bodies)?;
        for n in queued {
            let to = notifier.clone();
            self.sending.spawn(async move {
                let r = to.send(&n).await;
                (n.key, r.err().map(|e| e.to_string()))
            });
        }
        Ok(())
    }

    pub(super) fn delivered(
        &mut self,
        r: std::result::Result<(String, Option<String>), tokio::task::JoinError>,
    ) -> Result<()> {
        let (key, error) = match r {
            Ok(x) => x,
            Err(e) => (String::new(), Some(format!("the notifier crashed: {e}"))),
        };
        if let Some(e) = &error {
            tracing::warn!("notice {key} not delivered: {e}");
        }
        self.record(vec![Body::Notified { key, ok: error.is_none(), error }])
    }

    /// Wait for the next effect to finish: briefly with the store open, then with it closed,
    /// looking at the store again every tick for what others recorded meanwhile.
    pub(super) async fn await_effects(&mut self) -> Result<()> {
        if self.session.is_some() {
            if let Ok(Some(joined)) = tokio::time::timeout(self.opts.hold, self.tasks.join_next_with_id()).await {
                self.land(joined);
                return Ok(());
            }
            self.close();
        }
        loop {
            tokio::select! {
                joined = self.tasks.join_next_with_id() => {
                    if let Some(joined) = joined {
                        self.land(joined);
                    }
                    return Ok(());
                }
                _ = tokio::time::sleep(self.opts.tick) => {
                    let seen = self.view.last_seq;
                    self.session()?;
                    if self.view.last_seq != seen {
                        // Someone approved, retried or re-planned: decide again now.
                        return Ok(());
                    }
                    self.close();
                }
            }
        }
    }

    pub(super) fn land(
        &mut self,
        joined: std::result::Result<(tokio::task::Id, (String, Finished)), tokio::task::JoinError>,
    ) {
        let (step, finished) = match joined {
            Ok((tid, r)) => {
                self.task_steps.remove(&tid);
                r
            }
            Err(e) => {
                let step = self.task_steps.remove(&e.id()).unwrap_or_default();
                (step, Finished::Submitted(Err(lifecycle::Failure(format!("the executor crashed: {e}")))))
            }
        };
        if let Some(start) = self.flights.remove(&step) {
            self.completed.push(Completed { step, start, finished });
        }
    }

    pub(super) fn due_timers(&mut self) {
        let now = self.clock.now_ms();
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((_, id))) = self.timers.pop() else { break };
            if let Some(&i) = self.plan.index.get(&id) {
                self.dirty.insert(self.plan.rank[i]);
            }
        }
    }

    pub(super) fn launch(&mut self, id: String, start: Start) {
        let Some(&i) = self.plan.index.get(&id) else { return };
        let Some(kind) = self.plan.kinds[i] else { return };
        let Some(exec) = self.executors.executor(kind) else { return };
        let ctx = self.ctx(&id, kind);
        let (effect, params) = (start.effect.clone(), start.params.params.clone());
        let step = id.clone();
        let handle = self.tasks.spawn(async move { (step, carry_out(exec, ctx, params, effect).await) });
        self.task_steps.insert(handle.id(), id.clone());
        self.flights.insert(id, start);
    }
}
