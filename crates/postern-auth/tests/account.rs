//! The account page's rules on a testkit database, without HTTP: what
//! `/account` says of a person's sessions and sign-ins.

mod support;

use postern_auth::account;
use postern_core::i18n::{self, fill};
use support::*;

#[tokio::test]
async fn the_account_page_words_sessions_and_sign_ins_in_the_readers_language() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let mut browser = Browser::at("192.0.2.1");
    env.sign_in(&app, &mut browser, "ann@example.com").await;
    let mut other = Browser::at("192.0.2.2");
    env.sign_in(&app, &mut other, "ann@example.com").await;
    let here = env.accounts(&browser).await.remove(0).live;
    let overview = account::overview(&env.svc, &here.user.id).await.unwrap();

    let t = i18n::strings("de");
    let a = i18n::account::strings("de");
    let (sessions, history) = overview.lines(t, &here.session.id, None);
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let mine: Vec<_> = sessions.iter().filter(|s| s.this_browser).collect();
    assert_eq!(mine.len(), 1, "only the asking browser's session is marked");
    assert_eq!(mine[0].id, here.session.id);
    let ips: Vec<_> = sessions.iter().filter_map(|s| s.ip.clone()).collect();
    assert!(
        ips.contains(&fill(a.ip_address, &[("ip", "192.0.2.1")])),
        "no GeoIP database: the address alone, in German: {ips:?}"
    );
    assert!(
        sessions.iter().all(|s| s.through.is_none()),
        "browser sessions"
    );
    assert_eq!(sessions[0].browser, t.describe_browser(Some("test")));

    assert_eq!(history.len(), 2);
    for e in &history {
        assert_eq!(e.app, app.app.display_name());
        assert_eq!(e.method, a.method_link, "an email link");
        assert_eq!(e.outcome, a.outcome_success);
    }
}

#[test]
fn the_account_sign_in_returns_only_to_the_account_page_or_the_panel() {
    let cases = [
        (None, "/account", "nothing asked"),
        (Some("/admin"), "/admin", "the panel"),
        (
            Some("/admin/apps/notes"),
            "/admin/apps/notes",
            "a panel page",
        ),
        (Some("/administrator"), "/account", "only the panel's paths"),
        (
            Some("https://evil.example/admin"),
            "/account",
            "no other site",
        ),
        (
            Some("//evil.example/admin/"),
            "/account",
            "protocol-relative",
        ),
    ];
    for (asked, expected, why) in cases {
        assert_eq!(
            account::back_after_sign_in(asked.map(str::to_owned)),
            expected,
            "{why}"
        );
    }
}
