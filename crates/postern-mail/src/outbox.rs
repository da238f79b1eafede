//! The outbox: emails are queued in the caller's transaction, encrypted
//! under the master key, and delivered by a worker that any instance may
//! run (SPEC §2, §4).
//!
//! Delivery is at least once, and exactly once outside a crash between the
//! SMTP server's acceptance and the database commit. A message is queued
//! already leased to the instance whose request queued it ([`MailQueue`])
//! and handed to that instance's worker in memory once the transaction
//! commits, so delivering it costs one write (marking it sent, which
//! erases its content). Leases are short ([`LEASE_SECS`]) and renewed every
//! [`RENEW_EVERY`] for every message the worker holds, so the messages of
//! an instance that dies are due again within seconds and another instance
//! (or the restarted one) delivers them under the same `Message-ID`, which
//! lets mail systems drop a duplicate. On SQLite, where one process owns the
//! database, a starting server takes back every lease at once
//! ([`Outbox::take_back_leases`]).
//!
//! Messages nobody handed over (retries, a dead instance's messages, a
//! wake-up from another path) are claimed from the database: up to
//! [`BATCH`] due messages in one statement (on PostgreSQL with `FOR UPDATE
//! SKIP LOCKED`, so instances never claim the same message).
//!
//! Deliveries run concurrently, at most [`Transport::parallelism`] at a time
//! (one per pooled SMTP connection), each in its own task. Each outcome is
//! recorded as soon as it is known; outcomes that arrive while the previous
//! ones are being committed are committed together (one transaction, one
//! disk flush), so an acceptance reaches the database within one commit.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::Mailbox;
use postern_core::crypto::{random_array, random_id, random_token};
use postern_core::{Clock, Secrets};
use postern_store::{Backend, Defer, NewOutboxRow, OutboxMessage, Queries, Store, Writes};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::dkim::Dkim;
use crate::message::{build_message, parse_recipient, OutgoingEmail};
use crate::transport::{Delivery, DeliveryError, Receipt, Transport};
use crate::MailError;

/// How long a lease lasts without renewal: the longest a dead instance's
/// message waits before another instance may deliver it.
pub const LEASE_SECS: i64 = 10;
/// How often a worker renews the leases of the messages it holds.
pub const RENEW_EVERY: Duration = Duration::from_secs(3);
/// A held message whose lease ends sooner than this is not started (its
/// renewals are failing; it may be taken over).
const LEASE_MARGIN_SECS: i64 = 2;
/// Longest wait between two attempts at one message (SPEC §5: "retries come
/// at most 30 s apart").
pub const MAX_RETRY_DELAY_SECS: i64 = 30;
/// How often an idle worker looks for due messages it was not told about
/// (retries scheduled by other instances, a dead instance's messages). A
/// dead instance's fresh message is due [`LEASE_SECS`] after its request
/// and claimed at the next poll: 13 s, inside the 15 s issue 14 asks for
/// with room for the claim and the send on a busy machine (with 5 s it
/// came to 15.8 s once under load).
pub const SAFETY_POLL: Duration = Duration::from_secs(3);
/// Messages claimed per round trip: enough to keep every SMTP connection
/// busy between two claims at thousands of messages a second.
pub const BATCH: i64 = 128;
/// Messages a worker holds in memory at most (handed over or claimed, not
/// yet recorded). Past it, request handlers queue their messages unleased
/// in the database and the worker claims them as room frees up: when
/// requests come faster than the mail server takes messages, the backlog
/// waits in the database, not in this process's memory.
pub const MAX_HELD: usize = 4 * BATCH as usize;
/// How long a worker asked to stop without a deadline finishes its work.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The encryption context of an outbox payload: binds the ciphertext to its
/// row, so a payload copied onto another row does not decrypt.
fn context(outbox_id: &str) -> String {
    format!("outbox:{outbox_id}")
}

/// The encrypted row of `email`: id, fixed `Message-ID`, payload.
fn seal(
    secrets: &Secrets,
    email: &OutgoingEmail,
    from_domain: &str,
) -> Result<(String, String, String), MailError> {
    // Refuse a bad recipient now, while the caller can still answer for it.
    parse_recipient(&email.to)?;
    let id = random_id();
    let message_id = format!("<{}@{}>", random_token(18), message_id_domain(from_domain));
    let payload = secrets.encrypt(&context(&id), &serde_json::to_vec(email)?);
    Ok((id, message_id, payload))
}

/// Queues `email` for delivery at `now`, giving up at `expires_at` (the
/// expiry of the link it carries), for whichever worker claims it. Runs on
/// the caller's connection, so it commits or rolls back with the caller's
/// transaction (`&mut tx`). Request handlers use [`MailQueue::enqueue`],
/// which saves the claim.
///
/// The JSON of the email, recipient included, is encrypted under context
/// `outbox:{id}`: the database never holds the plain message. The
/// `Message-ID` (`<random@from_domain>`) is fixed now so that every attempt
/// carries the same one. Returns the outbox id. After committing, call
/// `notify_one()` on [`Outbox::waker`] so delivery starts at once.
pub async fn enqueue(
    conn: &mut impl Queries,
    secrets: &Secrets,
    email: &OutgoingEmail,
    now: i64,
    expires_at: i64,
    from_domain: &str,
) -> Result<String, MailError> {
    let (id, message_id, payload) = seal(secrets, email, from_domain)?;
    conn.insert_outbox(&id, &message_id, &payload, now, expires_at)
        .await?;
    Ok(id)
}

/// Counts of delivery results since start, for metrics. Read with
/// [`AtomicU64::load`].
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    /// Accepted by the transport and recorded.
    pub sent: AtomicU64,
    /// Failed temporarily; another attempt is scheduled.
    pub retried: AtomicU64,
    /// Given up (permanent refusal, expiry, undecryptable).
    pub gave_up: AtomicU64,
    /// An outcome the database could not record at once (retried).
    pub unrecorded: AtomicU64,
    /// Held messages whose lease another instance took over (not sent here).
    pub taken_over: AtomicU64,
    /// Messages handed back at shutdown without an attempt.
    pub handed_back: AtomicU64,
}

/// The lease this worker holds on a message it has not finished.
#[derive(Debug, Clone, Copy)]
struct Held {
    until: i64,
    /// A renewal found the lease gone (ran out and taken by another).
    lost: bool,
}

/// The messages a worker holds, by id, shared with its [`MailQueue`]s.
type HeldMap = Arc<Mutex<HashMap<String, Held>>>;

fn lock(held: &HeldMap) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
    held.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where request handlers queue email: in their transaction, leased to this
/// instance, then handed to its worker in memory ([`MailQueue::hand_over`])
/// after the commit. The default queue (no worker, in unit tests) queues
/// unleased rows and only wakes.
#[derive(Clone, Default)]
pub struct MailQueue {
    wake: Arc<Notify>,
    handoff: Option<Handoff>,
}

#[derive(Clone)]
struct Handoff {
    owner: Arc<str>,
    tx: mpsc::UnboundedSender<OutboxMessage>,
    held: HeldMap,
    /// Set when a message went to the database unleased for want of room.
    spilled: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for MailQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailQueue")
            .field("handoff", &self.handoff.is_some())
            .finish()
    }
}

/// A message written in a transaction not yet committed: give it to
/// [`MailQueue::hand_over`] after the commit (dropped, it is delivered
/// after its lease runs out).
#[derive(Debug)]
#[must_use = "hand the message over after committing"]
pub struct Queued {
    id: String,
    /// The message and its lease, when leased to this instance.
    message: Option<(OutboxMessage, i64)>,
}

impl Queued {
    /// The outbox row id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl MailQueue {
    /// Wakes the worker to look for due messages in the database.
    pub fn notify_one(&self) {
        self.wake.notify_one();
    }

    /// Queues `email` as [`enqueue`] does, leased to this instance's worker
    /// for [`LEASE_SECS`] with its first attempt counted.
    pub async fn enqueue(
        &self,
        conn: &mut impl Queries,
        secrets: &Secrets,
        email: &OutgoingEmail,
        now: i64,
        expires_at: i64,
        from_domain: &str,
    ) -> Result<Queued, MailError> {
        let (queued, row) = self.prepare(secrets, email, now, expires_at, from_domain)?;
        conn.insert_outbox_row(&row).await?;
        Ok(queued)
    }

    /// [`MailQueue::enqueue`] without the write: the sealed row for the
    /// caller's transaction to insert (a [`postern_store::Writes`]
    /// function, say), and the message to hand over after it commits.
    pub fn prepare(
        &self,
        secrets: &Secrets,
        email: &OutgoingEmail,
        now: i64,
        expires_at: i64,
        from_domain: &str,
    ) -> Result<(Queued, NewOutboxRow), MailError> {
        let (id, message_id, payload) = seal(secrets, email, from_domain)?;
        // Leased to this worker while it has room ([`MAX_HELD`]); else
        // unleased, for the worker to claim later.
        let lease = self
            .handoff
            .as_ref()
            .filter(|handoff| {
                let room = lock(&handoff.held).len() < MAX_HELD;
                if !room {
                    handoff.spilled.store(true, Ordering::Relaxed);
                }
                room
            })
            .map(|handoff| (handoff.owner.to_string(), now + LEASE_SECS));
        let message = lease.as_ref().map(|(_, lease_until)| {
            let message = OutboxMessage {
                id: id.clone(),
                message_id: message_id.clone(),
                payload: payload.clone(),
                attempts: 1,
                expires_at,
            };
            (message, *lease_until)
        });
        let row = NewOutboxRow {
            id: id.clone(),
            message_id,
            payload,
            now,
            expires_at,
            lease,
            meta: None,
        };
        Ok((Queued { id, message }, row))
    }

    /// Gives a committed message to the worker. A message whose
    /// transaction rolled back must not be handed over: drop it instead.
    pub fn hand_over(&self, queued: Queued) {
        match (queued.message, &self.handoff) {
            (Some((message, until)), Some(handoff)) => {
                // Held from now on, so its lease is renewed even while it
                // waits in the worker's queue.
                let id = message.id.clone();
                lock(&handoff.held).insert(id.clone(), Held { until, lost: false });
                if handoff.tx.send(message).is_err() {
                    // The worker has stopped: the lease runs out and another
                    // worker claims the message.
                    lock(&handoff.held).remove(&id);
                }
            }
            _ => self.wake.notify_one(),
        }
    }
}

/// `from_domain` if it can stand in a `Message-ID`, else `localhost`.
fn message_id_domain(from_domain: &str) -> &str {
    let ok = !from_domain.is_empty()
        && from_domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if ok {
        from_domain
    } else {
        "localhost"
    }
}

/// The delay before attempt `attempts + 1`: exponential from 1 s, capped at
/// [`MAX_RETRY_DELAY_SECS`], minus up to a quarter at random so that many
/// messages failing together do not retry in lock step. Always at least 1 s.
pub fn retry_delay(attempts: i64) -> i64 {
    let exponent = attempts.clamp(1, 6) - 1;
    let base = (1i64 << exponent).min(MAX_RETRY_DELAY_SECS);
    let jitter = i64::from(u32::from_le_bytes(random_array())) % (base / 4 + 1);
    (base - jitter).max(1)
}

/// What a delivery attempt came to, the label of
/// `postern_outbox_deliveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryResult {
    /// Handed over: the mail server accepted it (or the file or stdout
    /// transport wrote it).
    Sent,
    /// Failed for now (a 4xx reply, a connection error); tried again, or
    /// given up when the link it carries expires first.
    TemporaryFailure,
    /// Rejected for good (a 5xx reply, an unreadable stored message).
    PermanentFailure,
    /// Not attempted: the link it carries expired first.
    Expired,
}

impl DeliveryResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::Sent => "sent",
            DeliveryResult::TemporaryFailure => "temporary_failure",
            DeliveryResult::PermanentFailure => "permanent_failure",
            DeliveryResult::Expired => "expired",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The outbox worker's metrics. Clones count into the same series; the
/// default counts into series no registry shows until
/// [`OutboxMetrics::register`].
#[derive(Clone, Debug, Default)]
pub struct OutboxMetrics {
    deliveries: Family<ResultLabels, Counter>,
}

impl OutboxMetrics {
    /// Adds the series to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "outbox_deliveries",
            "Email delivery attempts by result (sent, temporary_failure, permanent_failure, expired)",
            self.deliveries.clone(),
        );
    }

    /// Attempts with `result` so far (tests).
    pub fn deliveries(&self, result: DeliveryResult) -> u64 {
        self.deliveries
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .get()
    }

    fn count(&self, result: DeliveryResult) {
        self.deliveries
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .inc();
    }
}

/// What became of one held message.
enum Outcome {
    Sent,
    Retry(i64),
    GaveUp,
    /// Not attempted: its lease was lost or is running out; whoever holds
    /// the message next delivers it.
    Skipped,
    /// Delivered or not, the database could not record it yet; the worker
    /// keeps the lease and records it again with the next renewal.
    Unrecorded,
}

/// Delivers the outbox. One per instance; instances share the work through
/// leases.
pub struct Outbox {
    worker: Arc<Worker>,
    wake: Arc<Notify>,
    queue: mpsc::UnboundedSender<OutboxMessage>,
    incoming: Mutex<Option<mpsc::UnboundedReceiver<OutboxMessage>>>,
}

/// What every delivery task needs.
#[derive(Clone)]
struct Worker {
    store: Store,
    secrets: Arc<Secrets>,
    transport: Transport,
    from: Mailbox,
    clock: Arc<dyn Clock>,
    owner: Arc<str>,
    dkim: Option<Arc<Dkim>>,
    held: HeldMap,
    /// Messages wait unleased in the database because [`MAX_HELD`] was
    /// reached: claim again as soon as there is room.
    spilled: Arc<std::sync::atomic::AtomicBool>,
    /// Outcomes the database refused, written again at each renewal.
    unrecorded: Arc<Mutex<Vec<(String, Mark)>>>,
    counters: Arc<DeliveryCounters>,
    metrics: OutboxMetrics,
}

impl Outbox {
    /// A worker delivering through `transport` from `from` (the configured
    /// `POSTERN_MAIL_FROM`). Its lease owner name is random per process.
    pub fn new(
        store: Store,
        secrets: Arc<Secrets>,
        transport: Transport,
        from: Mailbox,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (queue, incoming) = mpsc::unbounded_channel();
        Self {
            worker: Arc::new(Worker {
                store,
                secrets,
                transport,
                from,
                clock,
                owner: format!("{}-{}", std::process::id(), random_id()).into(),
                dkim: None,
                held: HeldMap::default(),
                spilled: Arc::default(),
                unrecorded: Arc::default(),
                counters: Arc::default(),
                metrics: OutboxMetrics::default(),
            }),
            wake: Arc::new(Notify::new()),
            queue,
            incoming: Mutex::new(Some(incoming)),
        }
    }

    /// Signs every message with `dkim` from now on.
    pub fn with_dkim(self, dkim: Arc<Dkim>) -> Self {
        let worker = Worker {
            dkim: Some(dkim),
            ..(*self.worker).clone()
        };
        Self {
            worker: Arc::new(worker),
            ..self
        }
    }

    /// Counts delivery attempts into `metrics` from now on.
    pub fn with_metrics(self, metrics: OutboxMetrics) -> Self {
        let worker = Worker {
            metrics,
            ..(*self.worker).clone()
        };
        Self {
            worker: Arc::new(worker),
            ..self
        }
    }

    /// The series delivery attempts are counted into.
    pub fn metrics(&self) -> &OutboxMetrics {
        &self.worker.metrics
    }

    /// Wakes the worker: call `notify_one()` after committing a message
    /// queued with [`enqueue`]. A wake-up sent while the worker is busy is
    /// kept, never lost.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// The queue request handlers give their messages to: leased to this
    /// worker and handed over in memory.
    pub fn queue(&self) -> MailQueue {
        MailQueue {
            wake: Arc::clone(&self.wake),
            handoff: Some(Handoff {
                owner: Arc::clone(&self.worker.owner),
                tx: self.queue.clone(),
                held: Arc::clone(&self.worker.held),
                spilled: Arc::clone(&self.worker.spilled),
            }),
        }
    }

    /// Delivery results since start (for metrics).
    pub fn counters(&self) -> Arc<DeliveryCounters> {
        Arc::clone(&self.worker.counters)
    }

    /// The transport this worker delivers through.
    pub fn transport(&self) -> &Transport {
        &self.worker.transport
    }

    /// On SQLite, where one process delivers from a database, ends every
    /// lease left by an earlier process (which died holding them), so its
    /// messages go out at once. Call before serving requests: leases this
    /// process takes afterwards must stay. Does nothing on PostgreSQL,
    /// where other instances hold live leases.
    pub async fn take_back_leases(&self) {
        let w = &self.worker;
        if w.store.backend() != Backend::Sqlite {
            return;
        }
        match w.store.take_back_outbox_leases().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                messages = n,
                "outbox: took back the leases of an earlier run"
            ),
            Err(e) => tracing::warn!(error = %e, "outbox: could not take back earlier leases"),
        }
    }

    /// [`Outbox::run_until`] with [`DEFAULT_GRACE`] to finish.
    pub async fn run(self, shutdown: impl Future) {
        self.run_until(async {
            shutdown.await;
            DEFAULT_GRACE
        })
        .await;
    }

    /// Delivers until `shutdown` completes, then finishes within the grace
    /// period it yields: delivers what was handed over, waits for the
    /// deliveries under way, and hands back the leases of anything left.
    ///
    /// Between messages it sleeps until one is handed over, until woken,
    /// until a retry this worker scheduled is due, or for [`SAFETY_POLL`],
    /// whichever comes first, and renews its leases every [`RENEW_EVERY`].
    /// Database errors are logged and retried.
    pub async fn run_until(self, shutdown: impl Future<Output = Duration>) {
        let w = Arc::clone(&self.worker);
        let Some(mut incoming) = self
            .incoming
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            tracing::error!("outbox: the worker runs once");
            return;
        };
        tracing::info!(transport = w.transport.kind(), "outbox worker started");
        let recorder = Recorder::start(w.store.clone());
        let (stop_renewing, renewing) = watch::channel(false);
        let renewer = tokio::spawn(renew_loop(Arc::clone(&w), renewing));
        let slots = Arc::new(Semaphore::new(w.transport.parallelism()));
        let mut tasks = JoinSet::new();
        let mut next_claim = Instant::now();
        let mut shutdown = std::pin::pin!(shutdown);
        let grace = loop {
            while let Some(done) = tasks.try_join_next() {
                self.finished(done, &mut next_claim);
            }
            if Instant::now() >= next_claim {
                next_claim = Instant::now() + SAFETY_POLL;
                match w.claim().await {
                    Ok(claimed) => {
                        if claimed.len() as i64 >= BATCH {
                            next_claim = Instant::now();
                        }
                        for m in claimed {
                            w.dispatch(m, &slots, &mut tasks, &recorder).await;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "outbox: could not claim messages"),
                }
                if let Some(grace) = ready(shutdown.as_mut()).await {
                    break grace;
                }
                continue;
            }
            tokio::select! {
                biased;
                grace = &mut shutdown => break grace,
                Some(m) = incoming.recv() => w.dispatch(m, &slots, &mut tasks, &recorder).await,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => self.finished(done, &mut next_claim),
                () = self.wake.notified() => next_claim = Instant::now(),
                () = tokio::time::sleep_until(next_claim) => {}
            }
        };
        // Stopping: what was handed over is delivered and what is under way
        // finished, within the grace.
        let finishing = async {
            while let Ok(m) = incoming.try_recv() {
                w.dispatch(m, &slots, &mut tasks, &recorder).await;
            }
            while let Some(done) = tasks.join_next().await {
                self.finished(done, &mut next_claim);
            }
        };
        if tokio::time::timeout(grace, finishing).await.is_err() {
            tracing::warn!("outbox: the shutdown grace ran out with deliveries under way");
            tasks.abort_all();
        }
        incoming.close();
        while incoming.try_recv().is_ok() {}
        let _ = stop_renewing.send(true);
        let _ = renewer.await;
        drop(recorder);
        w.write_unrecorded().await;
        // Hand back what is still held, so another instance (or the next
        // start) delivers it without waiting for the lease to run out.
        let left: Vec<String> = lock(&w.held).keys().cloned().collect();
        if !left.is_empty() {
            match w.store.release_outbox_leases(&w.owner, &left).await {
                Ok(n) => {
                    w.counters.handed_back.fetch_add(n, Ordering::Relaxed);
                    tracing::info!(messages = n, "outbox: handed back undelivered messages");
                }
                Err(e) => {
                    tracing::warn!(error = %e, messages = left.len(), "outbox: could not hand back leases; they run out by themselves")
                }
            }
        }
        w.transport.close().await;
        tracing::info!("outbox worker stopped");
    }

    fn finished(&self, done: Result<Outcome, tokio::task::JoinError>, next_claim: &mut Instant) {
        match done {
            Ok(Outcome::Retry(at)) => {
                let secs = u64::try_from(at - self.worker.clock.now()).unwrap_or(0);
                *next_claim = (*next_claim).min(Instant::now() + Duration::from_secs(secs));
            }
            // Messages wait in the database for room: refill once half of
            // it is free.
            Ok(_)
                if self.worker.spilled.load(Ordering::Relaxed)
                    && lock(&self.worker.held).len() <= MAX_HELD / 2 =>
            {
                *next_claim = Instant::now();
            }
            Ok(_) => {}
            // A panicking delivery keeps its lease until this process
            // ends; the message is delivered after that.
            Err(e) if e.is_panic() => tracing::error!(error = %e, "outbox: a delivery task failed"),
            Err(_) => {}
        }
    }

    /// Delivers every message due now; returns how many were sent. Messages
    /// that fail are rescheduled or given up as [`Outbox::run`] would.
    pub async fn drain_once(&self) -> Result<usize, MailError> {
        let w = &self.worker;
        let recorder = Recorder::start(w.store.clone());
        let slots = Arc::new(Semaphore::new(w.transport.parallelism()));
        let mut sent = 0;
        loop {
            let claimed = w.claim().await?;
            let full = claimed.len() as i64 >= BATCH;
            let mut tasks = JoinSet::new();
            for m in claimed {
                w.dispatch(m, &slots, &mut tasks, &recorder).await;
            }
            while let Some(done) = tasks.join_next().await {
                if let Ok(Outcome::Sent) = done {
                    sent += 1;
                }
            }
            if !full {
                return Ok(sent);
            }
        }
    }
}

/// Renews the worker's leases every [`RENEW_EVERY`] until `stop`.
async fn renew_loop(worker: Arc<Worker>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(RENEW_EVERY) => {}
        }
        worker.write_unrecorded().await;
        worker.renew().await;
    }
}

impl Worker {
    /// Claims up to [`BATCH`] due messages from the database and holds
    /// them (a message this worker already holds is not claimed twice).
    async fn claim(&self) -> Result<Vec<OutboxMessage>, MailError> {
        let now = self.clock.now();
        let until = now + LEASE_SECS;
        let room = MAX_HELD.saturating_sub(lock(&self.held).len());
        let limit = BATCH.min(room as i64);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let claimed = self
            .store
            .claim_outbox(now, &self.owner, until, limit)
            .await?;
        if (claimed.len() as i64) < limit {
            // Nothing more is due: what waited for room is claimed.
            self.spilled.store(false, Ordering::Relaxed);
        }
        let mut held = lock(&self.held);
        Ok(claimed
            .into_iter()
            .filter(|m| {
                // Held already (its renewals failed for a while and the
                // lease ran out): the held copy is delivered.
                let fresh = !held.contains_key(&m.id);
                if fresh {
                    held.insert(m.id.clone(), Held { until, lost: false });
                }
                fresh
            })
            .collect())
    }

    /// Extends the lease of every held message; marks those another
    /// instance took over, so they are not started here.
    async fn renew(&self) {
        let ids: Vec<String> = lock(&self.held).keys().cloned().collect();
        if ids.is_empty() {
            return;
        }
        let until = self.clock.now() + LEASE_SECS;
        match self
            .store
            .renew_outbox_leases(&self.owner, &ids, until)
            .await
        {
            Ok(kept) => {
                let kept: std::collections::HashSet<String> = kept.into_iter().collect();
                let mut held = lock(&self.held);
                for id in &ids {
                    if let Some(h) = held.get_mut(id) {
                        if kept.contains(id) {
                            h.until = until;
                        } else {
                            h.lost = true;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, messages = ids.len(), "outbox: could not renew leases");
            }
        }
    }

    /// Renews the lease of one held message now (it waited long); false
    /// if the lease is gone or the database did not answer.
    async fn renew_one(&self, id: &str, now: i64) -> bool {
        let until = now + LEASE_SECS;
        let ids = [id.to_owned()];
        match self
            .store
            .renew_outbox_leases(&self.owner, &ids, until)
            .await
        {
            Ok(kept) if !kept.is_empty() => {
                if let Some(h) = lock(&self.held).get_mut(id) {
                    h.until = until;
                }
                true
            }
            _ => false,
        }
    }

    /// Writes the outcomes the database refused earlier; a message is let
    /// go once its outcome is written.
    async fn write_unrecorded(&self) {
        let pending =
            std::mem::take(&mut *self.unrecorded.lock().unwrap_or_else(|e| e.into_inner()));
        for (id, mark) in pending {
            if write_one(&self.store, &id, &mark).await.is_ok() {
                lock(&self.held).remove(&id);
            } else {
                self.unrecorded
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((id, mark));
            }
        }
    }

    /// Starts delivering `m` in a task of `tasks` once a slot is free.
    async fn dispatch(
        self: &Arc<Self>,
        m: OutboxMessage,
        slots: &Arc<Semaphore>,
        tasks: &mut JoinSet<Outcome>,
        recorder: &Recorder,
    ) {
        // Never closed.
        let Ok(slot) = Arc::clone(slots).acquire_owned().await else {
            return;
        };
        let worker = Arc::clone(self);
        let recorder = recorder.clone();
        tasks.spawn(async move {
            let outcome = worker.handle(&m, slot, &recorder).await;
            match outcome {
                Outcome::Unrecorded => {}
                _ => {
                    lock(&worker.held).remove(&m.id);
                }
            }
            outcome
        });
    }

    /// Delivers one held message and records what happened. `slot` is
    /// given back once the outcome is recorded. Logs
    /// carry the outbox id and Message-ID only, never content.
    async fn handle(
        &self,
        m: &OutboxMessage,
        slot: OwnedSemaphorePermit,
        recorder: &Recorder,
    ) -> Outcome {
        let (id, message_id, attempts) = (m.id.as_str(), m.message_id.as_str(), m.attempts);
        let now = self.clock.now();
        let lease = lock(&self.held).get(id).copied();
        match lease {
            Some(Held { lost: false, until }) if until - now >= LEASE_MARGIN_SECS => {}
            Some(Held { lost: true, .. }) => {
                tracing::info!(
                    outbox_id = id,
                    message_id,
                    "another instance took this message over"
                );
                self.counters.taken_over.fetch_add(1, Ordering::Relaxed);
                return Outcome::Skipped;
            }
            Some(Held { .. }) if self.renew_one(id, now).await => {}
            _ => {
                // Renewals fail (the database is unreachable): leave it to
                // whoever claims it once the lease has run out.
                tracing::warn!(
                    outbox_id = id,
                    message_id,
                    "lease running out; not starting a delivery"
                );
                return Outcome::Skipped;
            }
        }
        if now >= m.expires_at {
            tracing::warn!(
                outbox_id = id,
                message_id,
                attempts,
                "email expired before delivery; giving up"
            );
            self.metrics.count(DeliveryResult::Expired);
            return self
                .record_failed(recorder, m, "expired before it could be delivered")
                .await;
        }
        let result = self.attempt(m, now).await;
        // The slot is held until the outcome is recorded: at any instant at
        // most one message per slot has been accepted and not yet recorded,
        // so a crash duplicates at most that many.
        let _slot = slot;
        self.metrics.count(match &result {
            Ok(_) => DeliveryResult::Sent,
            Err(DeliveryError::Permanent(_)) => DeliveryResult::PermanentFailure,
            Err(DeliveryError::Temporary(_)) => DeliveryResult::TemporaryFailure,
        });
        let now = self.clock.now();
        match result {
            Ok(receipt) => {
                let reply = match &receipt {
                    Receipt::Accepted(reply) => crate::smtp::scrub(&reply.to_string(), ""),
                    other => other.to_string(),
                };
                tracing::info!(outbox_id = id, message_id, attempts, %reply, "email delivered");
                self.record(recorder, id, Mark::Sent(now), Outcome::Sent)
                    .await
            }
            Err(DeliveryError::Permanent(reason)) => {
                tracing::warn!(outbox_id = id, message_id, attempts, error = %reason, "email rejected permanently; giving up");
                self.record_failed(recorder, m, &reason).await
            }
            Err(DeliveryError::Temporary(reason)) => {
                let next = now + retry_delay(attempts);
                if next >= m.expires_at {
                    tracing::warn!(outbox_id = id, message_id, attempts, error = %reason, "email could not be delivered before it expired; giving up");
                    let reason = format!("expired after failed attempts: {reason}");
                    return self.record_failed(recorder, m, &reason).await;
                }
                tracing::warn!(outbox_id = id, message_id, attempts, retry_in = next - now, error = %reason, "email delivery failed; will retry");
                self.record(
                    recorder,
                    id,
                    Mark::Retry(next, reason),
                    Outcome::Retry(next),
                )
                .await
            }
        }
    }

    /// Records `mark` and counts `outcome`; an outcome the database
    /// refuses is kept and written again with the next renewal.
    async fn record(&self, recorder: &Recorder, id: &str, mark: Mark, outcome: Outcome) -> Outcome {
        let counter = match outcome {
            Outcome::Sent => &self.counters.sent,
            Outcome::Retry(_) => &self.counters.retried,
            _ => &self.counters.gave_up,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match recorder.record(id, mark).await {
            Ok(()) => outcome,
            Err(mark) => {
                self.counters.unrecorded.fetch_add(1, Ordering::Relaxed);
                self.unrecorded
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((id.to_owned(), mark));
                Outcome::Unrecorded
            }
        }
    }

    /// Opens, builds, signs and hands one message to the transport.
    async fn attempt(&self, m: &OutboxMessage, now: i64) -> Result<Receipt, DeliveryError> {
        let plain = self
            .secrets
            .decrypt(&context(&m.id), &m.payload)
            .map_err(|_| {
                DeliveryError::Permanent("the stored message could not be decrypted".into())
            })?;
        let email: OutgoingEmail = serde_json::from_slice(&plain).map_err(|_| {
            DeliveryError::Permanent("the stored message is not a valid email".into())
        })?;
        let mut message =
            build_message(&email, &m.message_id, &self.from, now).map_err(|e| match e {
                MailError::InvalidRecipient => {
                    DeliveryError::Permanent("invalid recipient address".into())
                }
                _ => DeliveryError::Permanent("the message could not be built".into()),
            })?;
        if let Some(dkim) = &self.dkim {
            dkim.sign(&mut message, now);
        }
        self.transport
            .deliver(&Delivery {
                outbox_id: &m.id,
                email: &email,
                message: &message,
                now,
            })
            .await
    }

    async fn record_failed(&self, recorder: &Recorder, m: &OutboxMessage, reason: &str) -> Outcome {
        let mark = Mark::Failed(self.clock.now(), reason.to_owned());
        self.record(recorder, &m.id, mark, Outcome::GaveUp).await
    }
}

/// An outcome to write to the outbox row.
#[derive(Clone)]
enum Mark {
    /// Delivered at this time (erases the content).
    Sent(i64),
    /// Try again at this time; why this attempt failed.
    Retry(i64, String),
    /// Given up at this time (erases the content); why.
    Failed(i64, String),
}

/// One outcome on its way to the database, and who waits for it (given the
/// mark back if it could not be written).
type Pending = (String, Mark, oneshot::Sender<Option<Mark>>);

/// Writes outcomes as they come: whatever has queued up while the last
/// group was committing goes into one transaction, so an outcome waits for
/// at most one commit before its own. Clones share the writer, which stops
/// when the last clone is dropped.
#[derive(Clone)]
struct Recorder {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Recorder {
    /// Most outcomes in one transaction.
    const GROUP: usize = 256;

    fn start(store: Store) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
        tokio::spawn(async move {
            let mut group = Vec::with_capacity(Self::GROUP);
            while rx.recv_many(&mut group, Self::GROUP).await > 0 {
                let together = group.len() > 1 && write_group(&store, &group).await.is_ok();
                for (id, mark, done) in group.drain(..) {
                    // Alone, or again one by one when the group failed, so
                    // that one bad row does not sink the others.
                    let ok = together || write_one(&store, &id, &mark).await.is_ok();
                    let _ = done.send((!ok).then_some(mark));
                }
            }
        });
        Self { tx }
    }

    /// Records `mark` on the row `id`; gives the mark back when it could
    /// not be written (the error is logged).
    async fn record(&self, id: &str, mark: Mark) -> Result<(), Mark> {
        let (done, recorded) = oneshot::channel();
        if let Err(mpsc::error::SendError((_, mark, _))) = self.tx.send((id.to_owned(), mark, done))
        {
            return Err(mark);
        }
        match recorded.await {
            Ok(None) => Ok(()),
            Ok(Some(mark)) => Err(mark),
            // The writer task died with the mark: it is lost; the lease
            // then runs out and the message is delivered again.
            Err(_) => Ok(()),
        }
    }
}

async fn apply(
    conn: &mut impl Queries,
    id: &str,
    mark: &Mark,
) -> Result<(), postern_store::StoreError> {
    match mark {
        Mark::Sent(now) => conn.outbox_sent(id, *now).await,
        Mark::Retry(next, reason) => conn.outbox_retry(id, *next, reason).await,
        Mark::Failed(now, reason) => conn.outbox_failed(id, *now, reason).await,
    }
}

async fn write_group(store: &Store, group: &[Pending]) -> Result<(), ()> {
    // Deliveries, the common outcome, in one statement per second they
    // were recorded in; retries and failures one by one. On SQLite the
    // group joins the writer thread's next commit with the sign-ins'
    // transactions instead of queueing behind them.
    let mut sent: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut others = Vec::new();
    for (id, mark, _) in group {
        match mark {
            Mark::Sent(now) => sent.entry(*now).or_default().push(id.clone()),
            other => others.push((id.clone(), other.clone())),
        }
    }
    let written = store
        .write(async move |w: &mut Writes<'_>| {
            for (id, mark) in &others {
                match mark {
                    Mark::Sent(now) => w.defer_outbox_sent_all(&[id], *now),
                    Mark::Retry(next, reason) => w.defer_outbox_retry(id, *next, reason),
                    Mark::Failed(now, reason) => w.defer_outbox_failed(id, *now, reason),
                }
            }
            for (now, ids) in &sent {
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                w.defer_outbox_sent_all(&ids, *now);
            }
            Ok::<_, postern_store::StoreError>(())
        })
        .await;
    written.map_err(|e| {
        tracing::warn!(error = %e, messages = group.len(), "outbox: could not record a group of outcomes; recording one by one");
    })
}

async fn write_one(store: &Store, id: &str, mark: &Mark) -> Result<(), ()> {
    let result = async { apply(&mut store.conn().await?, id, mark).await };
    result.await.map_err(|e| {
        tracing::error!(outbox_id = id, error = %e, "outbox: could not record a delivery outcome");
    })
}

/// The output of `fut` if it has completed, without waiting for it.
async fn ready<F: Future>(fut: std::pin::Pin<&mut F>) -> Option<F::Output> {
    tokio::select! {
        biased;
        out = fut => Some(out),
        () = std::future::ready(()) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_up_to_thirty_seconds() {
        for _ in 0..200 {
            assert_eq!(retry_delay(1), 1);
            assert!((1..=2).contains(&retry_delay(2)));
            assert!((3..=4).contains(&retry_delay(3)));
            assert!((12..=16).contains(&retry_delay(5)));
            for attempts in [6, 7, 50, i64::MAX] {
                let d = retry_delay(attempts);
                assert!((23..=MAX_RETRY_DELAY_SECS).contains(&d), "{attempts}: {d}");
            }
        }
    }

    #[test]
    fn message_ids_use_a_safe_domain() {
        assert_eq!(message_id_domain("example.com"), "example.com");
        assert_eq!(message_id_domain(""), "localhost");
        assert_eq!(message_id_domain("a>b\r\nX: y"), "localhost");
    }
}
