//! The message that waits in the outbox, and its RFC 5322 form.

use std::time::{Duration, SystemTime};

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};
use serde::{Deserialize, Serialize};

use crate::render::Rendered;
use crate::MailError;

/// An email as queued in the outbox (serialized to JSON, then encrypted).
/// Its `Debug` hides everything: subject and body carry live secrets, and
/// the recipient is personal data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingEmail {
    /// Normalized recipient address (no display name).
    pub to: String,
    /// The app's sender name; replaces the display name of the configured
    /// From address when set.
    pub from_name: Option<String>,
    /// Subject line.
    pub subject: String,
    /// `text/plain` part.
    pub text: String,
    /// `text/html` part.
    pub html: String,
    /// Language the email is written in (`"en"`).
    pub locale: String,
}

impl std::fmt::Debug for OutgoingEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutgoingEmail(..)")
    }
}

impl OutgoingEmail {
    /// An email to `to` with the content of `rendered`.
    pub fn new(to: &str, from_name: Option<&str>, locale: &str, rendered: Rendered) -> Self {
        Self {
            to: to.to_owned(),
            from_name: from_name.map(str::to_owned),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            locale: locale.to_owned(),
        }
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834 §5): tells mail systems not to
/// send vacation replies or other automatic answers to this message.
#[derive(Debug, Clone, Copy)]
pub struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        if s.trim().eq_ignore_ascii_case("auto-generated") {
            Ok(Self)
        } else {
            Err("only auto-generated is supported".into())
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// Parses a normalized recipient with lettre's address grammar, which
/// refuses CR, LF, spaces, display names and anything else that could add a
/// header or a second recipient.
pub fn parse_recipient(to: &str) -> Result<Mailbox, MailError> {
    let address: Address = to.parse().map_err(|_| MailError::InvalidRecipient)?;
    Ok(Mailbox::new(None, address))
}

/// Builds the RFC 5322 message: multipart/alternative (text, then HTML, so
/// clients prefer the HTML), the stable `message_id` (`<random@domain>`),
/// `Date` from `now`, `Auto-Submitted: auto-generated`, and `from` with its
/// display name replaced by the app's sender name when there is one.
/// An unparseable recipient is [`MailError::InvalidRecipient`].
pub fn build_message(
    email: &OutgoingEmail,
    message_id: &str,
    from: &Mailbox,
    now: i64,
) -> Result<Message, MailError> {
    let to = parse_recipient(&email.to)?;
    let from = match email.from_name.as_deref().map(single_line) {
        Some(name) if !name.is_empty() => Mailbox::new(Some(name), from.email.clone()),
        _ => from.clone(),
    };
    let date = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0));
    Ok(Message::builder()
        .from(from)
        .to(to)
        .subject(single_line(&email.subject))
        .date(date)
        .message_id(Some(single_line(message_id)))
        .header(AutoSubmitted)
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))?)
}

/// Header text on one line: control characters (CR and LF above all) become
/// spaces. Values are validated upstream; this is the last line of defence
/// against header injection.
fn single_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}
