//! A lane: one thread with its own runtime, connections, share of the schedule and
//! statistics shard; the open-model scheduler on a timerfd ([`Timer`]); the closed model.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use hdrhistogram::Histogram;

use super::http::{exchange, Conn, ErrorClass, Stamped, Target};
use super::*;

/// One lane: a thread with its own single-threaded runtime, connections, share of the
/// schedule and statistics shard. Nothing on the hot path crosses threads.
#[derive(Clone)]
pub(crate) struct Lane {
    pub(crate) id: usize,
    pub(crate) of: usize,
    pub(crate) settings: Arc<Settings>,
    pub(crate) target: Arc<Target>,
    pub(crate) rec: Arc<Recorder>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    /// This lane's share of the in-flight limit.
    pub(crate) limit: usize,
    pub(crate) ticks: Arc<Ticks>,
}

/// The open-model scheduler's wake-ups, at which fresh connections' answers are read.
pub(crate) struct Ticks {
    /// The lane's start, which `next` counts from.
    pub(crate) start: Instant,
    pub(crate) notify: tokio::sync::Notify,
    /// When the scheduler wakes next, in nanoseconds from the lane's start (`u64::MAX`: it
    /// will not, as in the closed model or once the schedule is over).
    pub(crate) next: AtomicU64,
}

impl Ticks {
    pub(crate) fn new(start: Instant) -> Ticks {
        Ticks { start, notify: tokio::sync::Notify::new(), next: AtomicU64::new(u64::MAX) }
    }

    /// Will the scheduler wake within `HARVEST_HORIZON` of `now`?
    pub(crate) fn soon(&self, now: Instant) -> bool {
        let horizon = now.saturating_duration_since(self.start) + HARVEST_HORIZON;
        self.next.load(Ordering::Relaxed) <= horizon.as_nanos() as u64
    }

    /// Until the scheduler's next wake-up (at once if none is coming).
    pub(crate) async fn wait(&self) {
        let next = self.notify.notified();
        if self.next.load(Ordering::Relaxed) != u64::MAX {
            next.await;
        }
    }

    /// The scheduler is awake: those waiting read their answers. It wakes next at `next`
    /// (`None`: never).
    pub(crate) fn tick(&self, next: Option<Instant>) {
        let at = next.map_or(u64::MAX, |t| t.saturating_duration_since(self.start).as_nanos() as u64);
        self.next.store(at, Ordering::Relaxed);
        self.notify.notify_waiters();
    }
}

/// A worker's connection, read buffer and request deadline, kept from one request to the
/// next.
pub(crate) struct Worker {
    pub(crate) conn: Option<Conn>,
    pub(crate) buf: BytesMut,
    pub(crate) stamped: Stamped,
    /// Reset for each request, never dropped: the runtime's timer wheel then always holds a
    /// deadline no later than the next one, and arming it does not wake the event loop (a
    /// fresh timeout per request would, a system call each time).
    pub(crate) deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Worker {
    pub(crate) fn new() -> Worker {
        Worker {
            conn: None,
            buf: BytesMut::with_capacity(4 * 1024),
            stamped: Stamped::default(),
            deadline: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }
}

/// What a lane's scheduler saw.
pub(crate) struct Schedule {
    pub(crate) scheduled: u64,
    pub(crate) unsent: u64,
    /// Tickets released but still queued when the schedule ended.
    pub(crate) queue: Option<async_channel::Receiver<Instant>>,
    /// Of those, the ones no worker was free to take before the run stopped (never sent).
    pub(crate) stranded: u64,
    pub(crate) lag: Histogram<u64>,
    pub(crate) aborted: bool,
}

impl Lane {
    /// One request, on the worker's connection (opened, or replaced, as needed).
    ///
    /// A fresh plain connection in the open model, when the scheduler wakes again within
    /// `HARVEST_HORIZON`, is kept out of the event loop once its request is out: its answer is
    /// read at that wake-up and timed by the kernel's arrival stamp, so a prompt answer costs
    /// no wake-up of its own. An answer not all there by then is waited for on the event loop.
    pub(crate) async fn one(&self, w: &mut Worker, intended: Instant) {
        let (settings, rec) = (&*self.settings, &*self.rec);
        let sent = Instant::now();
        rec.sending(self.id, intended);
        let (conn, buf, stamped) = (&mut w.conn, &mut w.buf, &mut w.stamped);
        let attempt = async {
            let mut written = 0;
            if conn.is_none() {
                let harvest = !settings.keepalive && !self.target.is_tls() && self.ticks.soon(sent);
                let (sock, early) = self
                    .target
                    .open(settings.keepalive, harvest)
                    .inspect_err(|_| rec.connect(self.id, sent.elapsed()))?;
                written = early;
                if harvest && early == self.target.request(false).len() {
                    // Connected, and the request is out.
                    rec.connect(self.id, sent.elapsed());
                    self.ticks.wait().await;
                    if let Some((a, stamp)) = stamped.answer(&sock, buf, self.target.is_head())? {
                        return Ok((a, stamp));
                    }
                    *conn = Some(self.target.finish(sock, early).await?);
                } else {
                    let c = self.target.finish(sock, early).await;
                    rec.connect(self.id, sent.elapsed());
                    *conn = Some(c?);
                }
            }
            let c = conn.as_mut().expect("connected above");
            exchange(c, &self.target, settings.keepalive, buf, written).await.map(|a| (a, None))
        };
        w.deadline.as_mut().reset(tokio::time::Instant::from_std(sent + settings.timeout));
        let result = tokio::select! {
            biased;
            r = attempt => Ok(r),
            _ = w.deadline.as_mut() => Err(()),
        };
        // A kernel stamp is wall-clock time: placed on the monotonic clock by how long ago it was.
        let now = Instant::now();
        let arrival = |stamp: Option<SystemTime>| match stamp {
            Some(t) => {
                now.checked_sub(SystemTime::now().duration_since(t).unwrap_or_default()).unwrap_or(now).clamp(sent, now)
            }
            None => now,
        };
        let result = result.map(|r| r.map(|(a, stamp)| (a, arrival(stamp))));
        let conn = &mut w.conn;
        let mut done = now;
        let r = match result {
            Ok(Ok((a, at))) => {
                done = at;
                if !a.reusable || !settings.keepalive {
                    *conn = None;
                }
                Result_::Status(a.status)
            }
            Ok(Err(e)) => {
                *conn = None;
                Result_::Failed(ErrorClass::of(&e))
            }
            Err(_) => {
                *conn = None;
                Result_::Failed(ErrorClass::Timeout)
            }
        };
        rec.record(self.id, settings, intended, Some(sent), done, r);
    }

    /// Run the lane on the calling thread until its part is done and what it sent has been
    /// answered (or a timeout has passed); what is still open then is dropped with the runtime.
    pub(crate) fn run(self) -> Result<Schedule, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Generator(format!("cannot start a load lane: {e}")))?;
        // The lane's work is a task, not the `block_on` future itself: waking that future goes
        // through the driver's eventfd (a system call per wake-up), waking a task does not.
        rt.block_on(async move {
            tokio::spawn(self.main()).await.map_err(|e| Error::Generator(format!("a load lane stopped: {e}")))
        })
    }

    pub(crate) async fn main(self) -> Schedule {
        let mut workers = tokio::task::JoinSet::new();
        let schedule = match self.settings.rate {
            Some(rate) => self.open(rate, &mut workers).await,
            None => self.closed(&mut workers).await,
        };
        // Let what was sent finish, up to one timeout.
        let grace = self.settings.timeout + Duration::from_millis(100);
        let _ = tokio::time::timeout(grace, async { while workers.join_next().await.is_some() {} }).await;
        // Tickets no worker took by then were never sent.
        let mut schedule = schedule;
        if let Some(queue) = schedule.queue.take() {
            while let Ok(intended) = queue.try_recv() {
                schedule.stranded += u64::from(intended >= self.rec.warm_end);
                self.rec.record(self.id, &self.settings, intended, None, intended, Result_::Failed(ErrorClass::Unsent));
            }
        }
        schedule
    }

    /// The closed model: this lane's share of the connections (`limit`), each sending its next request
    /// when the last is answered.
    pub(crate) async fn closed(&self, workers: &mut tokio::task::JoinSet<()>) -> Schedule {
        for _ in 0..self.limit {
            let lane = self.clone();
            workers.spawn(async move {
                let mut w = Worker::new();
                tokio::time::sleep_until(lane.start.into()).await;
                while Instant::now() < lane.end && !lane.stop.load(Ordering::Relaxed) {
                    lane.one(&mut w, Instant::now()).await;
                }
            });
        }
        tokio::time::sleep_until(self.end.into()).await;
        Schedule {
            scheduled: 0,
            unsent: 0,
            queue: None,
            stranded: 0,
            lag: hist(),
            aborted: self.stop.load(Ordering::Relaxed),
        }
    }

    /// The open model: release this lane's tickets (every `of`-th of the schedule) at their
    /// intended times, to workers that are added while tickets wait, up to the lane's share of
    /// the in-flight limit.
    pub(crate) async fn open(&self, rate: f64, workers: &mut tokio::task::JoinSet<()>) -> Schedule {
        let limit = self.limit;
        let (tx, rx) = async_channel::bounded::<Instant>(limit);
        // Workers waiting for a ticket.
        let idle = Arc::new(AtomicUsize::new(0));
        let spawn_worker = |workers: &mut tokio::task::JoinSet<()>| {
            let (lane, rx, idle) = (self.clone(), rx.clone(), idle.clone());
            workers.spawn(async move {
                let mut w = Worker::new();
                loop {
                    idle.fetch_add(1, Ordering::Relaxed);
                    let t = rx.recv().await;
                    idle.fetch_sub(1, Ordering::Relaxed);
                    let Ok(intended) = t else { break };
                    lane.one(&mut w, intended).await;
                }
            });
        };
        let initial = self.settings.connections.map(|c| c.div_ceil(self.of)).unwrap_or(4).min(limit).max(1);
        (0..initial).for_each(|_| spawn_worker(workers));
        let mut spawned = initial;
        let mut backlog: Option<Instant> = None;
        let timer = Timer::new();
        let stages = &self.settings.stages;
        // The next intended send time of the whole schedule (it integrates the staged rate);
        // this lane takes ticket k when k % of == id.
        let step = |at: Instant| next_gap(rate, stages, at.saturating_duration_since(self.start));
        let (mut next, mut k) = (self.start, 0usize);
        // Ticket k's time is the sum of k gaps, each rounded to a nanosecond: it may lie up to
        // k ns before its exact time, so one exactly at the end (rate x duration whole) would
        // be sent as one too many. Within that error of the end counts as at the end.
        let within = |next: Instant, k: usize| next + Duration::from_nanos(k as u64) < self.end;
        let mut out =
            Schedule { scheduled: 0, unsent: 0, queue: Some(rx.clone()), stranded: 0, lag: hist(), aborted: false };
        let skip = |next: &mut Instant, k: &mut usize| {
            while *k % self.of != self.id && within(*next, *k) {
                *next += step(*next);
                *k += 1;
            }
        };
        skip(&mut next, &mut k);
        while within(next, k) {
            timer.sleep_until(next).await;
            if self.stop.load(Ordering::Relaxed) {
                out.aborted = true;
                break;
            }
            let now = Instant::now();
            // Tickets left from earlier wake-ups, more than the workers free to take them, for
            // over a millisecond: every worker is waiting on the server, so add one (one per
            // wake-up: a lane that is merely busy would otherwise open connections it cannot
            // serve, and fall further behind).
            if tx.len() > idle.load(Ordering::Relaxed) {
                let since = *backlog.get_or_insert(now);
                if now.saturating_duration_since(since) >= BACKLOG_GRACE && spawned < limit {
                    spawn_worker(workers);
                    spawned += 1;
                }
            } else {
                backlog = None;
            }
            while next <= now && within(next, k) {
                let _ = out.lag.record((now.saturating_duration_since(next).as_micros() as u64).max(1));
                self.rec.scheduled.fetch_add(1, Ordering::Relaxed);
                let measured = next >= self.rec.warm_end;
                out.scheduled += measured as u64;
                if tx.try_send(next).is_err() {
                    // Never sent: a failure, and the run says it could not keep up.
                    out.unsent += measured as u64;
                    self.rec.record(self.id, &self.settings, next, None, next, Result_::Failed(ErrorClass::Unsent));
                }
                next += step(next);
                k += 1;
                skip(&mut next, &mut k);
            }
            // Fresh connections' answers that came in since the last wake-up are read now
            // (their workers run after this turn, before the next wait).
            self.ticks.tick(within(next, k).then_some(next));
            // The workers send what was released while the scheduler waits for the timer; when
            // the next ticket is already due it does not wait, so it lets them run first (a
            // yield costs the event loop a look at the system, a system call).
            if next <= Instant::now() {
                tokio::task::yield_now().await;
            }
        }
        self.ticks.tick(None);
        drop(tx);
        out
    }
}

/// A sleep precise to tens of microseconds: a timerfd on the lane's own event loop, where
/// the runtime's timer rounds up to whole milliseconds (a bias in every latency).
pub(crate) struct Timer(Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>);

impl Timer {
    pub(crate) fn new() -> Timer {
        use rustix::time::{timerfd_create, TimerfdClockId, TimerfdFlags};
        let fd = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC).ok();
        // SAFETY: the timer owns its descriptor, which is neither replaced nor closed while the
        // runtime has it registered (it is closed when the `AsyncFd` drops, after deregistering).
        Timer(fd.and_then(|fd| {
            unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.ok()
        }))
    }

    pub(crate) async fn sleep_until(&self, at: Instant) {
        use rustix::time::{timerfd_settime, Itimerspec, TimerfdTimerFlags, Timespec};
        let wait = at.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return;
        }
        let Some(fd) = &self.0 else {
            return tokio::time::sleep(wait).await;
        };
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        let value = Itimerspec { it_interval: zero, it_value: Timespec::try_from(wait).unwrap_or(zero) };
        if timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &value).is_err() {
            return tokio::time::sleep(wait).await;
        }
        // Arming the timer again resets its count of expirations, so it is never read (a
        // system call saved per wake-up): readiness is cleared by hand.
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return tokio::time::sleep_until(at.into()).await;
            };
            ready.clear_ready();
            if Instant::now() >= at {
                return;
            }
        }
    }
}

/// How many lanes a run uses: the closed model, one per core (fewer for fewer connections);
/// the open model, as many as the rate needs, no more than the cores. A lane carries tens of
/// thousands of keep-alive requests a second, fewer new connections; at a modest rate one lane
/// costs less CPU than two (in a one-off comparison by hand on 2 cores at 2,500 req/s with
/// keep-alive: about 0.085 core against 0.095), since every thread that sleeps and wakes pays.
pub(crate) fn lanes(s: &Settings) -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let want = match s.rate {
        Some(r) => (r / if s.keepalive { LANE_RATE_KEEPALIVE } else { LANE_RATE_NEW_CONNECTION }).ceil() as usize,
        None => s.connections.unwrap_or(64),
    };
    want.clamp(1, cores)
}

/// The open-model rate one lane is given before another is added.
pub(crate) const LANE_RATE_KEEPALIVE: f64 = 30_000.0;
pub(crate) const LANE_RATE_NEW_CONNECTION: f64 = 10_000.0;

/// Files kept for everything else when the open-files limit caps the requests in flight.
pub(crate) const FILES_RESERVED: usize = 64;

/// How long released tickets may outnumber free workers before the lane adds one.
pub(crate) const BACKLOG_GRACE: Duration = Duration::from_millis(1);
/// A fresh connection's answer is read at the scheduler's next wake-up when that comes within
/// this (at rates of about 1,000 req/s a lane and up, where wake-ups are what the generator's
/// CPU goes to); an answered request is then counted in flight for no longer than this.
pub(crate) const HARVEST_HORIZON: Duration = Duration::from_millis(1);
