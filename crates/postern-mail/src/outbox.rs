//! The outbox: emails are queued in the caller's transaction, encrypted
//! under the master key, and delivered by a worker that any instance may
//! run (SPEC §2, §4).
//!
//! Delivery is at least once: a message is leased for [`LEASE_SECS`],
//! delivered, then marked sent (which erases its content). An instance that
//! dies mid-delivery leaves a lease that runs out, and another instance
//! delivers the message again under the same `Message-ID`, so mail systems
//! can drop the duplicate. Outside such a crash, delivery is exactly once:
//! on PostgreSQL, instances claim with `FOR UPDATE SKIP LOCKED`, and a
//! worker starts no delivery that could outlast its lease
//! ([`Transport::max_attempt`]), so a lease never runs out under a message
//! still being sent.
//!
//! The worker claims up to [`BATCH`] due messages in one statement and
//! delivers them concurrently, at most [`Transport::parallelism`] at a time
//! (one per pooled SMTP connection). Each outcome is recorded as soon as it
//! is known, by one statement on its own row; outcomes that arrive while
//! the previous ones are being committed are committed together (group
//! commit: one transaction, one disk flush, instead of one per message).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use postern_core::crypto::{random_array, random_id, random_token};
use postern_core::{Clock, Secrets};
use postern_store::{OutboxMessage, Queries, Store};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::dkim::Dkim;
use crate::message::{build_message, parse_recipient, OutgoingEmail};
use crate::transport::{Delivery, DeliveryError, Receipt, Transport};
use crate::MailError;

/// How long a claimed message is reserved for this worker.
pub const LEASE_SECS: i64 = 60;
/// Longest wait between two attempts at one message (SPEC §5: "retries come
/// at most 30 s apart").
pub const MAX_RETRY_DELAY_SECS: i64 = 30;
/// How often an idle worker looks for due messages it was not told about
/// (retries scheduled by other instances, a missed wake-up).
pub const SAFETY_POLL: Duration = Duration::from_secs(5);
/// Messages claimed per round trip: enough to keep every SMTP connection
/// busy between two claims at thousands of messages a second.
pub const BATCH: i64 = 128;

/// The encryption context of an outbox payload: binds the ciphertext to its
/// row, so a payload copied onto another row does not decrypt.
fn context(outbox_id: &str) -> String {
    format!("outbox:{outbox_id}")
}

/// Queues `email` for delivery at `now`, giving up at `expires_at` (the
/// expiry of the link it carries). Runs on the caller's connection, so it
/// commits or rolls back with the caller's transaction (`&mut tx`).
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
    // Refuse a bad recipient now, while the caller can still answer for it.
    parse_recipient(&email.to)?;
    let id = random_id();
    let message_id = format!("<{}@{}>", random_token(18), message_id_domain(from_domain));
    let payload = secrets.encrypt(&context(&id), &serde_json::to_vec(email)?);
    conn.insert_outbox(&id, &message_id, &payload, now, expires_at)
        .await?;
    Ok(id)
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

/// What became of one claimed message.
enum Outcome {
    Sent,
    Retry(i64),
    GaveUp,
    /// Delivered or not, the database could not record it; the lease will
    /// run out and the message be tried again.
    Unrecorded,
}

/// Delivers the outbox. One per instance; instances share the work through
/// leases.
pub struct Outbox {
    worker: Arc<Worker>,
    wake: Arc<Notify>,
}

/// What every delivery task needs; shared by the tasks of a batch.
#[derive(Clone)]
struct Worker {
    store: Store,
    secrets: Arc<Secrets>,
    transport: Transport,
    from: Mailbox,
    clock: Arc<dyn Clock>,
    owner: String,
    dkim: Option<Arc<Dkim>>,
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
        Self {
            worker: Arc::new(Worker {
                store,
                secrets,
                transport,
                from,
                clock,
                owner: format!("{}-{}", std::process::id(), random_id()),
                dkim: None,
                metrics: OutboxMetrics::default(),
            }),
            wake: Arc::new(Notify::new()),
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
            wake: self.wake,
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
            wake: self.wake,
        }
    }

    /// The series delivery attempts are counted into.
    pub fn metrics(&self) -> &OutboxMetrics {
        &self.worker.metrics
    }

    /// Wakes the worker: call `notify_one()` after committing a message.
    /// A wake-up sent while the worker is busy is kept, never lost.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// The transport this worker delivers through.
    pub fn transport(&self) -> &Transport {
        &self.worker.transport
    }

    /// Runs until `shutdown` completes: delivers what is due, then sleeps
    /// until woken, until a retry this worker scheduled is due, or for
    /// [`SAFETY_POLL`], whichever comes first. A batch in progress is
    /// finished before exiting. Database errors are logged and retried.
    pub async fn run(self, shutdown: impl Future) {
        let mut shutdown = std::pin::pin!(shutdown);
        tracing::info!(
            transport = self.worker.transport.kind(),
            "outbox worker started"
        );
        'outer: loop {
            let mut next_retry: Option<i64> = None;
            loop {
                match self.deliver_batch().await {
                    Ok(batch) => {
                        next_retry = min_opt(next_retry, batch.next_retry);
                        if batch.claimed < BATCH {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "outbox: could not claim messages");
                        break;
                    }
                }
                // Between batches, stop if asked (without waiting for it).
                if is_ready(shutdown.as_mut()).await {
                    break 'outer;
                }
            }
            let mut wait = SAFETY_POLL;
            if let Some(at) = next_retry {
                let secs = u64::try_from(at - self.worker.clock.now()).unwrap_or(0);
                wait = wait.min(Duration::from_secs(secs));
            }
            tokio::select! {
                _ = &mut shutdown => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        self.worker.transport.close().await;
        tracing::info!("outbox worker stopped");
    }

    /// Delivers every message due now; returns how many were sent. Messages
    /// that fail are rescheduled or given up as [`Outbox::run`] would.
    pub async fn drain_once(&self) -> Result<usize, MailError> {
        let mut sent = 0;
        loop {
            let batch = self.deliver_batch().await?;
            sent += batch.sent;
            if batch.claimed < BATCH {
                return Ok(sent);
            }
        }
    }

    /// Claims up to [`BATCH`] due messages and delivers them, at most
    /// [`Transport::parallelism`] at once, each in its own task (so that
    /// building, signing and recording use every core).
    async fn deliver_batch(&self) -> Result<Batch, MailError> {
        let worker = &self.worker;
        let now = worker.clock.now();
        // Long enough to start deliveries for a while and finish each one.
        let lease_until = now + LEASE_SECS.max(worker.longest_attempt() + 15);
        let claimed = worker
            .store
            .claim_outbox(now, &worker.owner, lease_until, BATCH)
            .await?;
        let mut batch = Batch {
            claimed: claimed.len() as i64,
            ..Batch::default()
        };
        if claimed.is_empty() {
            return Ok(batch);
        }
        let recorder = Recorder::start(worker.store.clone());
        let slots = Arc::new(Semaphore::new(worker.transport.parallelism()));
        let mut tasks = JoinSet::new();
        for message in claimed {
            // Never closed.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let worker = Arc::clone(worker);
            let recorder = recorder.clone();
            tasks.spawn(async move { worker.handle(&message, lease_until, slot, &recorder).await });
            // Collect finished tasks as we go, so the set stays small.
            while let Some(done) = tasks.try_join_next() {
                batch.add(done);
            }
        }
        while let Some(done) = tasks.join_next().await {
            batch.add(done);
        }
        Ok(batch)
    }
}

impl Worker {
    /// [`Transport::max_attempt`] in whole seconds, rounded up.
    fn longest_attempt(&self) -> i64 {
        let longest = self.transport.max_attempt().as_secs_f64().ceil();
        // Timeouts are seconds to minutes; the cast cannot overflow.
        longest as i64
    }

    /// Delivers one claimed message and records what happened. `slot` is
    /// given back as soon as the transport is done, before recording. Logs
    /// carry the outbox id and Message-ID only, never content.
    async fn handle(
        &self,
        m: &OutboxMessage,
        lease_until: i64,
        slot: OwnedSemaphorePermit,
        recorder: &Recorder,
    ) -> Outcome {
        let (id, message_id, attempts) = (m.id.as_str(), m.message_id.as_str(), m.attempts);
        let now = self.clock.now();
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
        // A delivery that could still be running when the lease ends might
        // meet another instance's delivery of the same message: leave it
        // for the next claim instead.
        if now.saturating_add(self.longest_attempt()) >= lease_until {
            tracing::debug!(
                outbox_id = id,
                message_id,
                "lease too short to start a delivery; released"
            );
            let reason = "not attempted before its lease ran short; will retry";
            return recorder
                .record(id, Mark::Retry(now, reason.into()))
                .await
                .map_or(Outcome::Unrecorded, |()| Outcome::Retry(now));
        }
        let result = self.attempt(m, now).await;
        drop(slot);
        self.metrics.count(match &result {
            Ok(_) => DeliveryResult::Sent,
            Err(DeliveryError::Permanent(_)) => DeliveryResult::PermanentFailure,
            Err(DeliveryError::Temporary(_)) => DeliveryResult::TemporaryFailure,
        });
        let now = self.clock.now();
        let recorded = match result {
            Ok(receipt) => {
                let reply = match &receipt {
                    Receipt::Accepted(reply) => crate::smtp::scrub(&reply.to_string(), ""),
                    other => other.to_string(),
                };
                tracing::info!(outbox_id = id, message_id, attempts, %reply, "email delivered");
                recorder
                    .record(id, Mark::Sent(now))
                    .await
                    .map(|()| Outcome::Sent)
            }
            Err(DeliveryError::Permanent(reason)) => {
                tracing::warn!(outbox_id = id, message_id, attempts, error = %reason, "email rejected permanently; giving up");
                return self.record_failed(recorder, m, &reason).await;
            }
            Err(DeliveryError::Temporary(reason)) => {
                let next = now + retry_delay(attempts);
                if next >= m.expires_at {
                    tracing::warn!(outbox_id = id, message_id, attempts, error = %reason, "email could not be delivered before it expired; giving up");
                    let reason = format!("expired after failed attempts: {reason}");
                    return self.record_failed(recorder, m, &reason).await;
                }
                tracing::warn!(outbox_id = id, message_id, attempts, retry_in = next - now, error = %reason, "email delivery failed; will retry");
                let recorded = recorder.record(id, Mark::Retry(next, reason)).await;
                recorded.map(|()| Outcome::Retry(next))
            }
        };
        recorded.unwrap_or(Outcome::Unrecorded)
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
        let recorded = recorder.record(&m.id, mark).await;
        recorded.map_or(Outcome::Unrecorded, |()| Outcome::GaveUp)
    }
}

/// An outcome to write to the outbox row.
enum Mark {
    /// Delivered at this time (erases the content).
    Sent(i64),
    /// Try again at this time; why this attempt failed.
    Retry(i64, String),
    /// Given up at this time (erases the content); why.
    Failed(i64, String),
}

/// One outcome on its way to the database, and who waits for it.
type Pending = (String, Mark, oneshot::Sender<bool>);

/// Writes the outcomes of one batch: whatever has queued up while the last
/// group was committing goes into one transaction. Clones share the writer,
/// which stops when the last clone is dropped.
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
                    let _ = done.send(ok);
                }
            }
        });
        Self { tx }
    }

    /// Records `mark` on the row `id`; an error is logged and leaves the
    /// message to be tried again when its lease runs out.
    async fn record(&self, id: &str, mark: Mark) -> Result<(), ()> {
        let (done, recorded) = oneshot::channel();
        let sent = self.tx.send((id.to_owned(), mark, done)).is_ok();
        if sent && recorded.await == Ok(true) {
            Ok(())
        } else {
            Err(())
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
    let result = async {
        let mut tx = store.begin().await?;
        for (id, mark, _) in group {
            apply(&mut tx, id, mark).await?;
        }
        tx.commit().await?;
        Ok::<_, postern_store::StoreError>(())
    };
    result.await.map_err(|e| {
        tracing::warn!(error = %e, messages = group.len(), "outbox: could not record a group of outcomes; recording one by one");
    })
}

async fn write_one(store: &Store, id: &str, mark: &Mark) -> Result<(), ()> {
    let result = async { apply(&mut store.conn().await?, id, mark).await };
    result.await.map_err(|e| {
        tracing::error!(outbox_id = id, error = %e, "outbox: could not record a delivery outcome");
    })
}

#[derive(Default)]
struct Batch {
    claimed: i64,
    sent: usize,
    next_retry: Option<i64>,
}

impl Batch {
    fn add(&mut self, done: Result<Outcome, tokio::task::JoinError>) {
        match done {
            Ok(Outcome::Sent) => self.sent += 1,
            Ok(Outcome::Retry(at)) => self.next_retry = min_opt(self.next_retry, Some(at)),
            Ok(Outcome::GaveUp | Outcome::Unrecorded) => {}
            // A panicking delivery leaves its lease to run out; the message
            // is tried again then.
            Err(e) => tracing::error!(error = %e, "outbox: a delivery task failed"),
        }
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether `fut` has completed, without waiting for it.
async fn is_ready<F: Future>(fut: std::pin::Pin<&mut F>) -> bool {
    tokio::select! {
        biased;
        _ = fut => true,
        () = std::future::ready(()) => false,
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
