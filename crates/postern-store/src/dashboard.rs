//! The administration dashboard's numbers (SPEC §3.5, issue 12): sign-ins
//! by outcome since a moment, sign-ins per hour, live sessions and the
//! outbox's waiting and given-up messages. Counted in SQL, so the panel
//! never walks the history to draw a chart.

use sqlx::Row;

use crate::Result;

/// `IN ($k, $k+1, …)` for `n` values starting at placeholder `k`.
fn placeholders(start: usize, n: usize) -> String {
    (0..n)
        .map(|i| format!("${}", start + i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The dashboard's counts. `within`: only these apps' (an owner's view);
/// an empty list counts nothing.
#[allow(async_fn_in_trait)]
pub trait DashboardQueries {
    /// Sign-in events at or after `since`, per outcome.
    async fn outcome_counts(
        &mut self,
        since: i64,
        within: Option<&[String]>,
    ) -> Result<Vec<(String, i64)>>;
    /// Sign-in events at or after `since` per hour (the hour's start, unix
    /// seconds) and whether they succeeded.
    async fn hourly_sign_ins(
        &mut self,
        since: i64,
        within: Option<&[String]>,
    ) -> Result<Vec<(i64, bool, i64)>>;
    /// Sessions neither revoked, past their cap, nor idle since before
    /// `idle_since`.
    async fn live_session_count(
        &mut self,
        now: i64,
        idle_since: i64,
        within: Option<&[String]>,
    ) -> Result<i64>;
    /// Outbox messages waiting, and given up.
    async fn outbox_counts(&mut self) -> Result<(i64, i64)>;
}

impl<C: crate::Connection> DashboardQueries for C {
    async fn outcome_counts(
        &mut self,
        since: i64,
        within: Option<&[String]>,
    ) -> Result<Vec<(String, i64)>> {
        let apps = within.unwrap_or_default();
        if within.is_some() && apps.is_empty() {
            return Ok(Vec::new());
        }
        let filter = if within.is_some() {
            format!(" AND client_id IN ({})", placeholders(2, apps.len()))
        } else {
            String::new()
        };
        let sql = format!(
            "SELECT outcome, COUNT(*) AS n FROM sign_in_events WHERE at >= $1{filter} GROUP BY outcome"
        );
        let mut q = sqlx::query(&sql).bind(since);
        for a in apps {
            q = q.bind(a);
        }
        q.fetch_all(self.raw())
            .await?
            .iter()
            .map(|r| Ok((r.try_get("outcome")?, r.try_get("n")?)))
            .collect()
    }

    async fn hourly_sign_ins(
        &mut self,
        since: i64,
        within: Option<&[String]>,
    ) -> Result<Vec<(i64, bool, i64)>> {
        let apps = within.unwrap_or_default();
        if within.is_some() && apps.is_empty() {
            return Ok(Vec::new());
        }
        let filter = if within.is_some() {
            format!(" AND client_id IN ({})", placeholders(2, apps.len()))
        } else {
            String::new()
        };
        // Integer division on both databases (BIGINT / BIGINT).
        let sql = format!(
            "SELECT (at / 3600) * 3600 AS hour, CASE WHEN outcome = 'success' THEN 1 ELSE 0 END AS ok, \
             COUNT(*) AS n FROM sign_in_events WHERE at >= $1{filter} GROUP BY 1, 2"
        );
        let mut q = sqlx::query(&sql).bind(since);
        for a in apps {
            q = q.bind(a);
        }
        q.fetch_all(self.raw())
            .await?
            .iter()
            .map(|r| {
                let ok: i32 = r.try_get("ok")?;
                Ok((r.try_get("hour")?, ok == 1, r.try_get("n")?))
            })
            .collect()
    }

    async fn live_session_count(
        &mut self,
        now: i64,
        idle_since: i64,
        within: Option<&[String]>,
    ) -> Result<i64> {
        let apps = within.unwrap_or_default();
        if within.is_some() && apps.is_empty() {
            return Ok(0);
        }
        let filter = if within.is_some() {
            let list = placeholders(3, apps.len());
            format!(
                " AND (s.client_id IN ({list}) OR EXISTS (SELECT 1 FROM authorization_codes c \
                 WHERE c.session_id = s.id AND c.client_id IN ({list})))"
            )
        } else {
            String::new()
        };
        let sql = format!(
            "SELECT COUNT(*) FROM sessions s WHERE s.revoked_at IS NULL AND s.expires_at > $1 \
             AND s.last_seen_at >= $2{filter}"
        );
        let mut q = sqlx::query_scalar(&sql).bind(now).bind(idle_since);
        for a in apps {
            q = q.bind(a);
        }
        Ok(q.fetch_one(self.raw()).await?)
    }

    async fn outbox_counts(&mut self) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN sent_at IS NULL AND failed_at IS NULL THEN 1 ELSE 0 END), 0) AS pending, \
             COALESCE(SUM(CASE WHEN failed_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS failed FROM outbox",
        )
        .fetch_one(self.raw())
        .await?;
        Ok((row.try_get("pending")?, row.try_get("failed")?))
    }
}
