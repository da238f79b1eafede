//! Writes a transaction sends together at its commit, and the statements
//! that fold several of a sign-in's writes into one.
//!
//! Each statement costs a round trip to the database (on SQLite a hop to
//! the connection's thread and back), and most of a sign-in's writes need
//! no answer: the history row, the session, the authorization code. A
//! [`Tx`] keeps those and sends them in one round trip right before its
//! `COMMIT`: on SQLite as one multi-statement text, on PostgreSQL as one
//! statement whose writes are data-modifying `WITH` parts. They run in the
//! order they were deferred, after every statement run directly, inside the
//! same transaction, so a failure still rolls back everything.

use sqlx::any::AnyArguments;
use sqlx::Arguments;

use crate::rows::{AuthorizationCode, LoginRequest, RateSlot, Session, SignInEvent};
use crate::{Backend, Result, StoreError, Tx};

/// A value bound to a statement.
#[derive(Debug, Clone)]
pub enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_owned()))
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(Some(v.clone()))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v)
    }
}
impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Self {
        Value::Text(v.clone())
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_owned))
    }
}

/// One statement with its values; its placeholders are `$1`… in order.
#[derive(Debug, Clone)]
pub struct Op {
    pub(crate) sql: String,
    pub(crate) args: Vec<Value>,
}

impl Op {
    pub(crate) fn new(sql: impl Into<String>, args: Vec<Value>) -> Self {
        Op {
            sql: sql.into(),
            args,
        }
    }

    /// Runs it alone; the rows it changed.
    pub(crate) async fn execute(self, conn: &mut sqlx::AnyConnection) -> Result<u64> {
        let args = arguments(self.args)?;
        Ok(sqlx::query_with(&self.sql, args)
            .execute(conn)
            .await
            .map_err(crate::queries::conflict)?
            .rows_affected())
    }

    /// Runs it alone; its first row mapped by `map`, if it returns one.
    pub(crate) async fn fetch_optional<T>(
        self,
        conn: &mut sqlx::AnyConnection,
        map: impl Fn(&sqlx::any::AnyRow) -> Result<T>,
    ) -> Result<Option<T>> {
        let args = arguments(self.args)?;
        sqlx::query_with(&self.sql, args)
            .fetch_optional(conn)
            .await?
            .as_ref()
            .map(map)
            .transpose()
    }
}

pub(crate) fn arguments<'q>(values: Vec<Value>) -> Result<AnyArguments<'q>> {
    let mut args = AnyArguments::default();
    for v in values {
        let added = match v {
            Value::Int(i) => args.add(i),
            Value::Text(t) => args.add(t),
        };
        added.map_err(|e| StoreError::Corrupt(e.to_string()))?;
    }
    Ok(args)
}

/// `sql` with every `$N` shifted by `offset`.
fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut n = String::new();
        while let Some(&(_, d)) = chars.peek() {
            if d.is_ascii_digit() {
                n.push(d);
                chars.next();
            } else {
                break;
            }
        }
        match n.parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&n),
        }
    }
    out
}

/// The statements waiting for a transaction's commit.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    ops: Vec<Op>,
}

impl Deferred {
    /// One round trip for every op: `None` when there is none.
    fn combine(&mut self, backend: Backend) -> Option<Op> {
        let ops = std::mem::take(&mut self.ops);
        if ops.len() <= 1 {
            return ops.into_iter().next();
        }
        let mut args = Vec::new();
        let mut parts = Vec::with_capacity(ops.len());
        for op in ops {
            parts.push(renumber(&op.sql, args.len()));
            args.extend(op.args);
        }
        let sql = match backend {
            // SQLite runs a text of several statements in one call, binding
            // `$N` by number in each.
            Backend::Sqlite => parts.join(";\n"),
            // PostgreSQL takes one statement per call with parameters; every
            // write but the last becomes a data-modifying WITH part. They
            // touch different rows, so their order does not matter.
            Backend::Postgres => {
                let last = parts.pop().expect("two or more");
                let with: Vec<String> = parts
                    .iter()
                    .enumerate()
                    .map(|(i, p)| format!("w{i} AS ({p})"))
                    .collect();
                format!("WITH {} {last}", with.join(", "))
            }
        };
        Some(Op { sql, args })
    }
}

/// Which live login request a sign-in consumes.
#[derive(Debug, Clone, Copy)]
pub enum Consume<'a> {
    /// The link request whose token hashes to this (a link opened).
    Token(&'a str),
    /// The link request with this id (its code was right).
    Id(&'a str),
    /// The link request with this id, approved on another device
    /// ([`crate::Queries::approve_remote`]).
    Approved(&'a str),
}

impl Tx {
    /// Sends the deferred writes now (commit does so itself).
    pub async fn flush(&mut self) -> Result<()> {
        if let Some(op) = self.deferred.combine(self.backend) {
            op.execute(&mut self.inner).await?;
        }
        Ok(())
    }
}

impl crate::sealed::Defer for Tx {
    fn defer_op(&mut self, op: Op) {
        self.deferred.ops.push(op);
    }
}
impl Defer for Tx {}

/// Writes whose answer nobody needs, sent in one round trip right before
/// the commit, in the order they were deferred and after every statement
/// run directly: on a [`Tx`] and in a [`crate::Writes`] function alike.
pub trait Defer: crate::sealed::Defer {
    /// [`crate::Queries::insert_session`], sent at commit.
    fn defer_session(&mut self, session: &Session) {
        self.defer_op(crate::queries::insert_session_op(session));
    }

    /// A headless session with the app's subject of its person
    /// ([`crate::Queries::insert_session`] then
    /// [`crate::SessionQueries::set_session_subject`], in one write), sent
    /// at commit.
    fn defer_headless_session(&mut self, session: &Session, subject: &str) {
        self.defer_op(crate::queries::insert_headless_session_op(session, subject));
    }

    /// [`crate::Queries::insert_sign_in_event`], sent at commit.
    fn defer_sign_in_event(&mut self, event: &SignInEvent) {
        self.defer_op(crate::queries::insert_event_op(event));
    }

    /// [`crate::Queries::insert_authorization_code`], sent at commit.
    fn defer_authorization_code(&mut self, code: &AuthorizationCode) {
        self.defer_op(crate::queries::insert_code_op(code));
    }

    /// [`crate::Queries::insert_login_request`], sent at commit.
    fn defer_login_request(&mut self, request: &LoginRequest) {
        self.defer_op(crate::queries::insert_login_request_op(request));
    }

    /// [`crate::Queries::insert_outbox_row`], sent at commit (its
    /// metadata with it, so nothing after it needs to see the row).
    fn defer_outbox(&mut self, row: &crate::NewOutboxRow) {
        self.defer_op(crate::queries::outbox_insert_op(row));
    }

    /// [`crate::Queries::rate_release`] of a slot, sent at commit.
    fn defer_rate_release(&mut self, slot: &RateSlot) {
        self.defer_op(crate::queries::rate_release_op(&[slot]));
    }

    /// [`crate::Queries::burn_browser_requests`], sent at commit (how many
    /// it burnt is not told).
    fn defer_burn_browser_requests(&mut self, client_id: &str, binding_hash: &str, now: i64) {
        self.defer_op(crate::queries::burn_browser_op(
            client_id,
            binding_hash,
            now,
        ));
    }

    /// [`crate::Queries::outbox_sent_all`], sent at commit.
    fn defer_outbox_sent_all(&mut self, ids: &[&str], now: i64) {
        if !ids.is_empty() {
            self.defer_op(crate::queries::outbox_sent_all_op(ids, now));
        }
    }

    /// [`crate::Queries::outbox_retry`], sent at commit.
    fn defer_outbox_retry(&mut self, id: &str, next_attempt_at: i64, error: &str) {
        self.defer_op(crate::queries::outbox_retry_op(id, next_attempt_at, error));
    }

    /// [`crate::Queries::outbox_failed`], sent at commit.
    fn defer_outbox_failed(&mut self, id: &str, now: i64, error: &str) {
        self.defer_op(crate::queries::outbox_failed_op(id, now, error));
    }

    /// [`crate::SessionQueries::insert_refresh_token`], sent at commit.
    fn defer_refresh_token(&mut self, token: &crate::RefreshToken) {
        self.defer_op(crate::sessions::insert_refresh_op(token));
    }

    /// [`crate::SessionQueries::set_code_family`], sent at commit.
    fn defer_code_family(&mut self, code_hash: &str, family_id: &str) {
        self.defer_op(crate::sessions::code_family_op(code_hash, family_id));
    }

    /// [`crate::Queries::complete_login_request`] of a request this
    /// transaction consumed itself (so it is certain to apply), sent at
    /// commit.
    fn defer_complete_login_request(&mut self, id: &str, now: i64) {
        self.defer_op(crate::queries::complete_login_request_op(id, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_shift_past_earlier_statements() {
        assert_eq!(
            renumber("UPDATE t SET a = $1 WHERE b = $2 AND c = $12", 3),
            "UPDATE t SET a = $4 WHERE b = $5 AND c = $15"
        );
        assert_eq!(renumber("SELECT $1", 0), "SELECT $1");
    }

    #[test]
    fn deferred_writes_become_one_statement_per_dialect() {
        let op = |sql: &str| Op::new(sql, vec![Value::from(1), Value::from("x")]);
        let mut d = Deferred {
            ops: vec![
                op("INSERT INTO a VALUES ($1, $2)"),
                op("DELETE FROM b WHERE x = $1 AND y = $2"),
            ],
        };
        let pg = d.combine(Backend::Postgres).unwrap();
        assert_eq!(
            pg.sql,
            "WITH w0 AS (INSERT INTO a VALUES ($1, $2)) DELETE FROM b WHERE x = $3 AND y = $4"
        );
        assert_eq!(pg.args.len(), 4);
        d.ops = vec![
            op("INSERT INTO a VALUES ($1, $2)"),
            op("DELETE FROM b WHERE x = $1 AND y = $2"),
        ];
        let sqlite = d.combine(Backend::Sqlite).unwrap();
        assert_eq!(
            sqlite.sql,
            "INSERT INTO a VALUES ($1, $2);\nDELETE FROM b WHERE x = $3 AND y = $4"
        );
        assert!(d.combine(Backend::Sqlite).is_none());
    }
}
