//! Postern's email (SPEC §2, §3.1, §4).
//!
//! * [`render`]: the sign-in and no-account emails, each a subject plus a
//!   text and an HTML part from one context, in English, German and French
//!   (the `mail` section of [`postern_core::i18n`]'s catalogues).
//! * [`message`]: the queued [`OutgoingEmail`] and its RFC 5322 form.
//! * [`outbox`]: [`enqueue`] inside the caller's transaction (encrypted under
//!   the master key), and the [`Outbox`] worker that delivers with retries.
//! * [`transport`]: where mail goes (`stdout` with the [`DevInbox`], `file`,
//!   SMTP through [`smtp`]), and [`dkim`] signing.

pub mod dkim;
pub mod message;
pub mod outbox;
pub mod render;
pub mod smtp;
pub mod transport;

pub use dkim::Dkim;
pub use lettre::message::Mailbox;
pub use message::{build_message, OutgoingEmail};
pub use outbox::{
    enqueue, DeliveryCounters, DeliveryResult, MailQueue, Outbox, OutboxMetrics, Queued,
};
pub use render::{render_no_account, render_sign_in, Brand, NoAccountEmail, Rendered, SignInEmail};
pub use smtp::{Reply, Security, Smtp, SmtpSettings};
pub use transport::{Delivery, DeliveryError, DevInbox, DevMail, Receipt, Transport};

use thiserror::Error;

/// A failure to prepare, queue or deliver an email.
#[derive(Debug, Error)]
pub enum MailError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] postern_store::StoreError),
    /// A template failed to render.
    #[error("email template failed to render: {0}")]
    Render(#[from] askama::Error),
    /// The recipient is not a single valid address (permanent).
    #[error("invalid recipient address")]
    InvalidRecipient,
    /// The message could not be assembled.
    #[error("message could not be built: {0}")]
    Build(#[from] lettre::error::Error),
    /// The email could not be serialized for the outbox.
    #[error("email could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
}
