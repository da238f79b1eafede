//! Rate limits and code budgets of SPEC §2: one keyed counter per subject
//! and window, counted inside the caller's transaction.

use super::*;
/// The row key of a limit's subject: its name and a keyed hash of the
/// subject (addresses and IPs are never stored in plain).
pub(crate) fn rate_key(svc: &Services, name: &str, subject: &str) -> String {
    format!(
        "{name}:{}",
        svc.secrets.keyed_hash(purpose::RATE, subject.as_bytes())
    )
}

/// The start of the fixed window that holds `now`.
pub(crate) fn window_start(now: i64, window: i64) -> i64 {
    now - now.rem_euclid(window)
}

/// One limit: its name, the subject it counts, the hits a window allows
/// and the window's length in seconds.
pub(crate) type Limit<'a> = (&'static str, &'a str, i64, i64);

/// Counts one hit of every limit inside `tx`, in one statement; a full
/// window is a 429 (the first full one's wait) and, since the caller's
/// transaction is dropped, counts nothing anywhere. Returns the slots in
/// the order of `limits`. `refused` hears the name of the limit that
/// refused (for metrics).
pub(crate) async fn hit_limits(
    svc: &Services,
    tx: &mut Tx,
    limits: &[Limit<'_>],
    refused: impl FnOnce(&'static str),
) -> Result<Vec<RateSlot>> {
    let hits = LimitHits::new(svc, limits);
    let counted = tx.rate_hits(&hits.hits()).await?;
    hits.decide(&counted).map_err(|(i, e)| {
        refused(limits[i].0);
        e
    })
}

/// The hits of a set of limits, ready to count where the transaction
/// runs ([`Writes::rate_hits`] on the store's writer): keys hashed and
/// windows fixed beforehand, and the decision on what came back.
#[derive(Debug)]
pub(crate) struct LimitHits {
    slots: Vec<RateSlot>,
    limits: Vec<(i64, i64)>,
    now: i64,
}

impl LimitHits {
    pub(crate) fn new(svc: &Services, limits: &[Limit<'_>]) -> Self {
        let now = svc.now();
        Self {
            slots: limits
                .iter()
                .map(|(name, subject, _, window)| RateSlot {
                    key: rate_key(svc, name, subject),
                    window_start: window_start(now, *window),
                })
                .collect(),
            limits: limits.iter().map(|l| (l.2, l.3)).collect(),
            now,
        }
    }

    /// `(key, window_start, limit)` of each limit, in order.
    pub(crate) fn hits(&self) -> Vec<(&str, i64, i64)> {
        self.slots
            .iter()
            .zip(&self.limits)
            .map(|(slot, (limit, _))| (slot.key.as_str(), slot.window_start, *limit))
            .collect()
    }

    /// The slot limit `i` counts in.
    pub(crate) fn slot(&self, i: usize) -> &RateSlot {
        &self.slots[i]
    }

    /// The slots when every limit counted; else the index of the first
    /// that did not and its 429 (the wait until its window ends).
    pub(crate) fn decide(self, counted: &[bool]) -> Result<Vec<RateSlot>, (usize, AuthError)> {
        if let Some(i) = counted.iter().position(|ok| !ok) {
            let (_, window) = self.limits[i];
            return Err((
                i,
                AuthError::RateLimited {
                    retry_after: self.slots[i].window_start + window - self.now,
                },
            ));
        }
        Ok(self.slots)
    }
}

/// A 429 when a limit's window is already full, counting nothing: the
/// cheap early answer, one read for every limit. Only [`hit_limits`],
/// inside the transaction that stores the request, decides that a request
/// is within its limits. `refused` hears the name of the limit that
/// refused (for metrics).
pub(crate) async fn peek_limits(
    svc: &Services,
    conn: &mut postern_store::Conn,
    limits: &[Limit<'_>],
    refused: impl FnOnce(&'static str),
) -> Result<()> {
    let now = svc.now();
    let keys: Vec<(String, i64)> = limits
        .iter()
        .map(|(name, subject, _, window)| {
            (rate_key(svc, name, subject), window_start(now, *window))
        })
        .collect();
    let refs: Vec<(&str, i64)> = keys.iter().map(|(k, w)| (k.as_str(), *w)).collect();
    let counts = conn.rate_counts(&refs).await?;
    for ((count, limit), (_, window_start)) in counts.iter().zip(limits).zip(&keys) {
        if *count >= limit.2 {
            refused(limit.0);
            return Err(AuthError::RateLimited {
                retry_after: window_start + limit.3 - now,
            });
        }
    }
    Ok(())
}

/// One limit counted inside `tx` (the passkey paths, which count one
/// limit at a time); [`hit_limits`] counts several in one statement.
pub(crate) async fn hit_limit(
    svc: &Services,
    tx: &mut Tx,
    name: &str,
    subject: &str,
    limit: i64,
    window: i64,
) -> Result<RateSlot> {
    let now = svc.now();
    let window_start = window_start(now, window);
    let key = rate_key(svc, name, subject);
    if !tx.rate_hit(&key, window_start, limit).await? {
        return Err(AuthError::RateLimited {
            retry_after: window_start + window - now,
        });
    }
    Ok(RateSlot { key, window_start })
}

/// [`peek_limits`] for one limit.
pub(crate) async fn peek_limit(
    svc: &Services,
    conn: &mut postern_store::Conn,
    name: &str,
    subject: &str,
    limit: i64,
    window: i64,
) -> Result<()> {
    let now = svc.now();
    let window_start = window_start(now, window);
    let key = rate_key(svc, name, subject);
    if conn.rate_count(&key, window_start).await? >= limit {
        return Err(AuthError::RateLimited {
            retry_after: window_start + window - now,
        });
    }
    Ok(())
}

/// Gives back every slot, in one statement.
pub(crate) async fn release_limits(tx: &mut Tx, slots: &[RateSlot]) -> Result<()> {
    let slots: Vec<&RateSlot> = slots.iter().collect();
    tx.rate_releases(&slots).await?;
    Ok(())
}

/// Spends one try of every code budget (SPEC §2): per address per hour and
/// per day, and per IP (an IPv6 /64) per hour when the IP is the person's
/// (a headless app that does not pass `ip` would otherwise let anyone
/// exhaust its server's budget for all its users). Returns the slots to
/// give back after a right answer.
pub(crate) async fn spend_code_budgets(
    svc: &Services,
    tx: &mut Tx,
    email: &str,
    who: &Requester,
) -> Result<Vec<RateSlot>> {
    let ip = postern_core::net::rate_limit_subject(who.ip);
    let mut budgets = vec![
        ("code-email-hour", email, CODE_TRIES_PER_EMAIL_HOUR, HOUR),
        ("code-email-day", email, CODE_TRIES_PER_EMAIL_DAY, DAY),
    ];
    if who.ip_known {
        budgets.push(("code-ip-hour", ip.as_str(), CODE_TRIES_PER_IP_HOUR, HOUR));
    }
    hit_limits(svc, tx, &budgets, |_| {}).await
}
