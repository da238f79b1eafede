//! The RFC 5322 message: headers, structure, and no header injection.

use postern_mail::message::parse_recipient;
use postern_mail::{build_message, MailError, Mailbox, OutgoingEmail};

fn email(to: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: to.into(),
        from_name: Some("Acme Corp".into()),
        subject: "Sign in to Acme: 123456".into(),
        text: "Open http://127.0.0.1:8080/verify-email?token=pml_x\n\n123456\n".into(),
        html: "<p>Sign in</p>".into(),
        locale: "en".into(),
    }
}

fn from() -> Mailbox {
    "Postern <no-reply@postern.example>".parse().unwrap()
}

fn formatted(email: &OutgoingEmail) -> String {
    let message = build_message(email, "<abc123@postern.example>", &from(), 1_700_000_000).unwrap();
    String::from_utf8(message.formatted()).unwrap()
}

/// The header block (before the first blank line), unfolded.
fn headers(raw: &str) -> String {
    raw.split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ")
}

#[test]
fn the_message_has_the_headers_mail_systems_expect() {
    let raw = formatted(&email("user@example.com"));
    let head = headers(&raw);
    assert!(
        head.contains("Message-ID: <abc123@postern.example>"),
        "{head}"
    );
    assert!(head.contains("Auto-Submitted: auto-generated"), "{head}");
    assert!(
        head.contains("Date: Tue, 14 Nov 2023 22:13:20 +0000"),
        "{head}"
    );
    assert!(head.contains("To: user@example.com"), "{head}");
    assert!(
        head.contains("From: \"Acme Corp\" <no-reply@postern.example>"),
        "{head}"
    );
    assert!(head.contains("Subject: Sign in to Acme: 123456"), "{head}");
    assert!(
        head.contains("Content-Type: multipart/alternative"),
        "{head}"
    );
    assert!(raw.contains("Content-Type: text/plain; charset=utf-8"));
    assert!(raw.contains("Content-Type: text/html; charset=utf-8"));
    // Text first, HTML last: clients show the last alternative they support.
    assert!(raw.find("text/plain").unwrap() < raw.find("text/html").unwrap());
}

#[test]
fn without_a_sender_name_the_configured_from_is_kept() {
    let mut e = email("user@example.com");
    e.from_name = None;
    assert!(headers(&formatted(&e)).contains("From: Postern <no-reply@postern.example>"));
    e.from_name = Some("   ".into());
    assert!(headers(&formatted(&e)).contains("From: Postern <no-reply@postern.example>"));
}

#[test]
fn hostile_recipients_are_refused() {
    let cases = [
        ("a@b.c\r\nBcc: x@y.z", "CRLF and a Bcc header"),
        ("a@b.c\nBcc: x@y.z", "bare LF"),
        ("a@b.c, x@y.z", "a second recipient"),
        ("Eve <a@b.c>", "a display name"),
        ("not an address", "no @"),
        ("", "empty"),
    ];
    for (to, why) in cases {
        assert!(
            matches!(
                build_message(&email(to), "<a@b>", &from(), 0),
                Err(MailError::InvalidRecipient)
            ),
            "{why}"
        );
        assert!(parse_recipient(to).is_err(), "{why}");
    }
}

#[test]
fn line_breaks_in_subject_or_sender_name_cannot_add_headers() {
    let mut e = email("user@example.com");
    e.subject = "Hi\r\nBcc: x@y.z".into();
    e.from_name = Some("Acme\r\nBcc: x@y.z".into());
    let raw = formatted(&e);
    for line in headers(&raw).split("\r\n") {
        assert!(!line.to_ascii_lowercase().starts_with("bcc:"), "{line}");
    }
}
