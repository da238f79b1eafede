//! Where delivered mail goes.
//!
//! [`Transport`] is an enum rather than a trait object: each way of sending
//! is one variant with its own `deliver_*` function; SMTP lives in
//! [`crate::smtp`]. Every failure says whether trying again can help
//! ([`DeliveryError`]); the outbox worker does the retrying. Every success
//! says where the message went ([`Receipt`]).

use std::collections::VecDeque;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::Message;
use thiserror::Error;

use crate::message::OutgoingEmail;
use crate::smtp::{Reply, Smtp};

/// How many messages the development inbox keeps.
pub const DEV_INBOX_SIZE: usize = 50;

/// Why a delivery failed. The text is recorded in the outbox row and logged,
/// so it must never contain the recipient, subject, body, link or code.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// Trying again will not help (bad recipient, rejected by the server,
    /// unreadable payload): the message is given up.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// Trying again may help (server down, disk full): retried with backoff
    /// until the message expires.
    #[error("temporary failure: {0}")]
    Temporary(String),
}

/// One message on its way out.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// Outbox row id.
    pub outbox_id: &'a str,
    /// The decrypted email.
    pub email: &'a OutgoingEmail,
    /// The same email as a ready RFC 5322 message.
    pub message: &'a Message,
    /// Unix seconds at delivery (from the worker's clock).
    pub now: i64,
}

/// What a transport did with a delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// Printed to standard output and kept in the development inbox.
    Printed,
    /// Written to this `.eml` file.
    Written(PathBuf),
    /// Accepted by the SMTP server with this reply.
    Accepted(Reply),
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Printed => f.write_str("printed to standard output (POSTERN_MAIL=stdout)"),
            Self::Written(path) => write!(f, "written to {}", path.display()),
            Self::Accepted(reply) => write!(f, "accepted by the SMTP server: {reply}"),
        }
    }
}

/// A way of delivering mail (SPEC §4, `POSTERN_MAIL`).
#[derive(Debug, Clone)]
pub enum Transport {
    /// `stdout`: prints each email, link included, to standard output and
    /// keeps it in the development inbox (`/_dev/mail`).
    Stdout(DevInbox),
    /// `file:///dir`: writes one `.eml` per message into the directory.
    File(PathBuf),
    /// `smtp://`, `smtp+starttls://`, `smtps://`: a pool of SMTP connections.
    Smtp(Smtp),
}

impl Transport {
    /// Delivers one message.
    pub async fn deliver(&self, delivery: &Delivery<'_>) -> Result<Receipt, DeliveryError> {
        match self {
            Self::Stdout(inbox) => deliver_stdout(inbox, delivery),
            Self::File(dir) => deliver_file(dir, delivery).await,
            Self::Smtp(smtp) => {
                let bytes = delivery.message.formatted();
                smtp.send(delivery.message.envelope(), &bytes, &delivery.email.to)
                    .await
                    .map(Receipt::Accepted)
            }
        }
    }

    /// A short name for logs (`stdout`, `file`, `smtp`); never includes
    /// credentials.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stdout(_) => "stdout",
            Self::File(_) => "file",
            Self::Smtp(_) => "smtp",
        }
    }

    /// How many messages it is worth handing over at once: one per pooled
    /// connection for SMTP; one for the development transports, which keep
    /// messages in the order they were claimed (whole blocks on standard
    /// output, `.eml` files whose names sort by time).
    pub fn parallelism(&self) -> usize {
        match self {
            Self::Stdout(_) | Self::File(_) => 1,
            Self::Smtp(smtp) => smtp.settings().connections.max(1),
        }
    }

    /// The longest one delivery can take once started (connection and
    /// transaction timeouts for SMTP). The outbox starts no delivery that
    /// could outlast its lease.
    pub fn max_attempt(&self) -> Duration {
        match self {
            Self::Stdout(_) | Self::File(_) => Duration::from_secs(10),
            Self::Smtp(smtp) => smtp.settings().max_attempt(),
        }
    }

    /// Closes open connections (SMTP); call at shutdown.
    pub async fn close(&self) {
        if let Self::Smtp(smtp) = self {
            smtp.close().await;
        }
    }
}

fn deliver_stdout(inbox: &DevInbox, d: &Delivery<'_>) -> Result<Receipt, DeliveryError> {
    let rule = "=".repeat(72);
    let block = format!(
        "{rule}\nEmail (development transport, not sent)\nTo:      {}\nSubject: {}\n{rule}\n{}\n{rule}\n",
        d.email.to,
        d.email.subject,
        d.email.text.trim_end(),
    );
    // The inbox is the record that matters (it is what /_dev/mail shows):
    // a closed standard output is worth a warning, not a retry that would
    // record the message twice.
    inbox.record(d.email, d.now);
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(block.as_bytes()).and_then(|()| out.flush()) {
        tracing::warn!(outbox_id = d.outbox_id, error = %e, "could not print an email to standard output");
    }
    Ok(Receipt::Printed)
}

async fn deliver_file(dir: &Path, d: &Delivery<'_>) -> Result<Receipt, DeliveryError> {
    let io = |what: &str, e: std::io::Error| DeliveryError::Temporary(format!("{what}: {e}"));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io("creating the mail directory", e))?;
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_millis());
    // The id comes from our own database, but it becomes a file name:
    // keep only characters that cannot climb out of the directory.
    let id: String = d
        .outbox_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let name = format!("{millis}-{id}.eml");
    // Written under a dot-name that does not end in .eml, then renamed in
    // the same directory: rename is atomic, so a reader never sees half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    let bytes = d.message.formatted();
    write_private(&tmp, &bytes)
        .await
        .map_err(|e| io("writing the message", e))?;
    let path = dir.join(&name);
    if let Err(e) = tokio::fs::rename(&tmp, &path).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(io("renaming the message into place", e));
    }
    Ok(Receipt::Written(path))
}

/// Writes `bytes` to a new file readable by its owner only: the message holds
/// a live link.
async fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).await?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    Ok(())
}

/// One email kept by the development inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevMail {
    /// Its number in this inbox: 1 for the first email kept, then counting
    /// up (a stable name for `/_dev/mail/{id}.html`).
    pub id: u64,
    /// Recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// `text/plain` part.
    pub text: String,
    /// `text/html` part.
    pub html: String,
    /// Unix seconds when it was delivered.
    pub received_at: i64,
    /// The sign-in link found in the text, if any.
    pub link: Option<String>,
    /// The 6-digit code found in the text, if any.
    pub code: Option<String>,
}

/// The last [`DEV_INBOX_SIZE`] emails of the `stdout` transport, for the
/// `/_dev/mail` page and tests. Clones share one inbox.
#[derive(Debug, Clone, Default)]
pub struct DevInbox {
    mails: Arc<Mutex<VecDeque<DevMail>>>,
    kept: Arc<std::sync::atomic::AtomicU64>,
}

impl DevInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `email`, dropping the oldest message beyond [`DEV_INBOX_SIZE`].
    pub fn record(&self, email: &OutgoingEmail, received_at: i64) {
        let id = self.kept.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let mail = DevMail {
            id,
            to: email.to.clone(),
            subject: email.subject.clone(),
            link: find_link(&email.text),
            code: find_code(&email.text),
            text: email.text.clone(),
            html: email.html.clone(),
            received_at,
        };
        // A panic elsewhere while holding the lock cannot corrupt a VecDeque
        // of plain values, so a poisoned lock is still usable.
        let mut mails = self.mails.lock().unwrap_or_else(|e| e.into_inner());
        mails.push_front(mail);
        mails.truncate(DEV_INBOX_SIZE);
    }

    /// Every kept message, newest first.
    pub fn messages(&self) -> Vec<DevMail> {
        let mails = self.mails.lock().unwrap_or_else(|e| e.into_inner());
        mails.iter().cloned().collect()
    }

    /// The kept message numbered `id`, if it is still kept.
    pub fn message(&self, id: u64) -> Option<DevMail> {
        let mails = self.mails.lock().unwrap_or_else(|e| e.into_inner());
        mails.iter().find(|m| m.id == id).cloned()
    }

    /// The newest message sent to `to`, if any.
    pub fn latest_to(&self, to: &str) -> Option<DevMail> {
        let mails = self.mails.lock().unwrap_or_else(|e| e.into_inner());
        mails
            .iter()
            .find(|m| m.to.eq_ignore_ascii_case(to))
            .cloned()
    }
}

/// The first URL in `text` that carries a sign-in token.
fn find_link(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|word| word.trim_matches(|c: char| matches!(c, '<' | '>' | '(' | ')' | '"' | '\'')))
        .map(|word| word.trim_end_matches(['.', ',', ';', ':', '!', '?']))
        .find(|word| {
            (word.starts_with("https://") || word.starts_with("http://"))
                && (word.contains("/verify-email?token=")
                    || word.contains("?token=pml_")
                    || word.contains("&token=pml_"))
        })
        .map(str::to_owned)
}

/// The one-time code: the first line of `text` that is exactly six digits
/// (the templates put the code on a line of its own).
fn find_code(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|line| line.len() == 6 && line.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(n: usize) -> OutgoingEmail {
        OutgoingEmail {
            to: format!("user{n}@example.com"),
            from_name: None,
            subject: format!("Sign in to Acme: {n:06}"),
            text: format!(
                "Open this link:\n\nhttp://127.0.0.1:8080/verify-email?token=pml_abc{n}\n\n{n:06}\n"
            ),
            html: String::new(),
            locale: "en".into(),
        }
    }

    #[test]
    fn the_inbox_keeps_the_newest_fifty() {
        let inbox = DevInbox::new();
        let shared = inbox.clone();
        for n in 0..60 {
            shared.record(&email(n), n as i64);
        }
        let mails = inbox.messages();
        assert_eq!(mails.len(), DEV_INBOX_SIZE);
        assert_eq!(mails[0].to, "user59@example.com");
        assert_eq!(mails[49].to, "user10@example.com");
        assert_eq!(
            mails[0].link.as_deref(),
            Some("http://127.0.0.1:8080/verify-email?token=pml_abc59")
        );
        assert_eq!(mails[0].code.as_deref(), Some("000059"));
        assert_eq!(
            inbox.latest_to("USER12@example.com").unwrap().received_at,
            12
        );
    }

    #[test]
    fn links_and_codes_are_found_in_text() {
        let text = "See https://example.com/help.\nhttps://app.example/cb?state=x&token=pml_T0k.\n 654321 \n";
        assert_eq!(
            find_link(text).as_deref(),
            Some("https://app.example/cb?state=x&token=pml_T0k")
        );
        assert_eq!(find_code(text).as_deref(), Some("654321"));
        assert_eq!(find_link("no link here"), None);
        assert_eq!(find_code("1234567\n12345\nabcdef"), None);
    }
}
