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

/// Counts one hit of a limit inside `tx`; a full window is a 429 and, since
/// the caller's transaction is dropped, counts nothing anywhere.
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

/// A 429 when a limit's window is already full, counting nothing: the
/// cheap early answer. Only [`hit_limit`], inside the transaction that
/// stores the request, decides that a request is within its limits.
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

pub(crate) async fn release_limit(tx: &mut Tx, slot: &RateSlot) -> Result<()> {
    tx.rate_release(&slot.key, slot.window_start).await?;
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
    let mut slots = Vec::with_capacity(budgets.len());
    for (name, subject, limit, window) in budgets {
        slots.push(hit_limit(svc, tx, name, subject, limit, window).await?);
    }
    Ok(slots)
}
