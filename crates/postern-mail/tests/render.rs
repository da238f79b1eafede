//! The emails read right, in every language, and escape what they must.

use postern_mail::{render_no_account, render_sign_in, Brand, NoAccountEmail, SignInEmail};

const LINK: &str = "http://127.0.0.1:8080/verify-email?token=pml_AbC-123_xyz";
const IGNORE: &str = "If you didn't request this, you can safely ignore this email.";
const IGNORE_HTML: &str = "If you didn&#39;t request this, you can safely ignore this email.";

fn brand(name: &str) -> Brand<'_> {
    Brand {
        app_name: name,
        logo_url: Some("https://acme.example/logo.png"),
        color: Some("#ff6600"),
        note: None,
        header: None,
    }
}

fn sign_in<'a>(locale: &'a str, name: &'a str, ttl: i64) -> SignInEmail<'a> {
    SignInEmail {
        locale,
        brand: brand(name),
        link: LINK,
        code: "123456",
        link_ttl: ttl,
    }
}

#[test]
fn the_sign_in_email_carries_link_code_expiry_and_ignore_line() {
    let r = render_sign_in(&sign_in("en", "Acme", 900)).unwrap();
    assert_eq!(r.subject, "Sign in to Acme: 123456");
    for line in [
        "Sign in to Acme",
        LINK,
        "123456",
        "This link will expire in 15 minutes.",
        IGNORE,
    ] {
        assert!(
            r.text.contains(line),
            "text part lacks {line:?}:\n{}",
            r.text
        );
    }
    for line in [
        "Sign in to Acme",
        LINK,
        "123456",
        "This link will expire in 15 minutes.",
        IGNORE_HTML,
    ] {
        assert!(
            r.html.contains(line),
            "HTML part lacks {line:?}:\n{}",
            r.html
        );
    }
    assert!(r.html.contains(&format!("href=\"{LINK}\"")));
    assert!(r.html.contains("background-color:#ff6600"));
    assert!(r.html.contains("src=\"https://acme.example/logo.png\""));
    assert!(r.html.contains("<html lang=\"en\">"));
    // No remote fonts, no scripts, nothing fetched but the app's own logo.
    for banned in ["<script", "@import", "<link", "url("] {
        assert!(!r.html.contains(banned), "HTML part contains {banned:?}");
    }
    // The text part is plain text.
    assert!(!r.text.contains('<'));
}

#[test]
fn the_expiry_follows_the_link_lifetime() {
    let cases = [
        (60, "This link will expire in 1 minute."),
        (900, "This link will expire in 15 minutes."),
        (3600, "This link will expire in 1 hour."),
        (7200, "This link will expire in 2 hours."),
        (86_400, "This link will expire in 24 hours."),
    ];
    for (ttl, sentence) in cases {
        let r = render_sign_in(&sign_in("en", "Acme", ttl)).unwrap();
        assert!(r.text.contains(sentence), "{ttl} s: {}", r.text);
        assert!(r.html.contains(sentence), "{ttl} s");
    }
}

#[test]
fn app_names_are_escaped_in_html_and_kept_in_text() {
    for (name, escaped) in [
        (
            "<script>alert(1)</script>",
            "&#60;script&#62;alert(1)&#60;/script&#62;",
        ),
        ("Tom & Jerry", "Tom &#38; Jerry"),
        ("\"quoted\" app", "&#34;quoted&#34; app"),
    ] {
        let r = render_sign_in(&sign_in("en", name, 900)).unwrap();
        assert!(
            r.html.contains(escaped),
            "{name:?} not escaped as {escaped:?}"
        );
        assert!(!r.html.contains(name), "{name:?} appears raw in HTML");
        assert!(
            r.text.contains(&format!("Sign in to {name}")),
            "{name:?} in text"
        );
        assert_eq!(r.subject, format!("Sign in to {name}: 123456"));

        let r = render_no_account(&NoAccountEmail {
            locale: "en",
            brand: brand(name),
            email: "a@b.example",
        })
        .unwrap();
        assert!(r.html.contains(escaped));
        assert!(!r.html.contains(name));
    }
}

#[test]
fn each_language_has_its_own_subject_and_sentences() {
    let cases = [
        (
            "de-CH",
            "Bei Acme anmelden: 123456",
            "Dieser Link läuft in 15 Minuten ab.",
            "de",
        ),
        (
            "fr",
            "Connexion à Acme : 123456",
            "Ce lien expirera dans 15 minutes.",
            "fr",
        ),
        (
            "en-GB",
            "Sign in to Acme: 123456",
            "This link will expire in 15 minutes.",
            "en",
        ),
        (
            "pt-BR",
            "Sign in to Acme: 123456",
            "This link will expire in 15 minutes.",
            "en",
        ),
    ];
    for (locale, subject, expiry, lang) in cases {
        let r = render_sign_in(&sign_in(locale, "Acme", 900)).unwrap();
        assert_eq!(r.subject, subject, "{locale}");
        assert!(r.text.contains(expiry), "{locale}: {}", r.text);
        assert!(
            r.text.contains(LINK) && r.text.contains("123456"),
            "{locale}"
        );
        assert!(
            r.html.contains(&format!("<html lang=\"{lang}\">")),
            "{locale}"
        );
    }
}

#[test]
fn the_emails_language_is_picked_as_the_pages_pick_theirs() {
    // postern_core::locale::pick, the pages' negotiator too: region
    // subtags and case are tolerated, an unsupported language is English.
    let cases = [
        ("de-CH", "Bei Acme anmelden: 123456"),
        ("FR_fr", "Connexion à Acme : 123456"),
        ("it", "Sign in to Acme: 123456"),
    ];
    for (locale, subject) in cases {
        let r = render_sign_in(&sign_in(locale, "Acme", 900)).unwrap();
        assert_eq!(r.subject, subject, "{locale}");
    }
}

#[test]
fn the_no_account_email_has_no_link_and_no_code() {
    for (locale, subject) in [
        ("en", "Sign in to Acme"),
        ("de", "Bei Acme anmelden"),
        ("fr", "Connexion à Acme"),
    ] {
        let r = render_no_account(&NoAccountEmail {
            locale,
            brand: brand("Acme"),
            email: "bob@example.com",
        })
        .unwrap();
        assert_eq!(r.subject, subject);
        assert!(r.text.contains("bob@example.com"));
        for part in [&r.text, &r.html] {
            assert!(!part.contains("token="), "{locale}");
            assert!(!part.contains("verify-email"), "{locale}");
        }
        if locale == "en" {
            assert!(r
                .text
                .contains("there is no account for this address at Acme"));
            assert!(r.text.contains(IGNORE));
            assert!(r.html.contains(IGNORE_HTML));
        }
    }
}

#[test]
fn the_apps_note_is_in_every_language_escaped_with_its_line_breaks() {
    let note = "Questions? <help@acme.example>\nThe Acme team & friends";
    for locale in ["en", "de", "fr"] {
        let with_note = Brand {
            note: Some(note),
            ..brand("Acme")
        };
        let sign_in = render_sign_in(&SignInEmail {
            brand: with_note,
            ..sign_in(locale, "Acme", 900)
        })
        .unwrap();
        let no_account = render_no_account(&NoAccountEmail {
            locale,
            brand: with_note,
            email: "bob@example.com",
        })
        .unwrap();
        for r in [&sign_in, &no_account] {
            assert!(
                r.text
                    .contains("Questions? <help@acme.example>\nThe Acme team & friends\n"),
                "{locale}: the text part keeps the note as written:\n{}",
                r.text
            );
            assert!(
                r.html.contains(
                    "Questions? &#60;help@acme.example&#62;<br>The Acme team &#38; friends"
                ),
                "{locale}: the HTML part escapes it and keeps the line break:\n{}",
                r.html
            );
            assert!(!r.html.contains("<help@"), "{locale}");
        }
    }
    let r = render_sign_in(&sign_in("en", "Acme", 900)).unwrap();
    assert!(!r.text.contains("Questions?"), "no note, no paragraph");
}

#[test]
fn the_html_email_opens_with_the_apps_name_logo_and_colour() {
    let r = render_sign_in(&sign_in("en", "Acme Notes", 900)).unwrap();
    let header_end = r.html.find("<h1").expect("a heading");
    let header = &r.html[..header_end];
    assert!(header.contains(">Acme Notes</td>"), "{header}");
    assert!(
        header.contains("src=\"https://acme.example/logo.png\""),
        "{header}"
    );
    assert!(header.contains("border-top:4px solid #ff6600"), "{header}");
}
