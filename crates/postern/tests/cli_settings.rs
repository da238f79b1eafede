//! `postern app create` and `app update` flags (SPEC §4: every per-app
//! setting of §1 has a flag on both), through the built binary.

mod cli_support;

use cli_support::*;
use serde_json::Value;

#[tokio::test]
async fn every_setting_can_be_given_at_creation() {
    let p = Postern::new().await;
    let created = p.create(&[
        "--name",
        "Intranet",
        "--redirect-uri",
        "https://intra.example/cb",
        "--post-logout-redirect-uri",
        "https://intra.example/bye",
        "--link-ttl",
        "5m",
        "--device-policy",
        "same_browser",
        "--session-max-age",
        "7d",
        "--no-signup",
        "--allowed-domain",
        "Example.COM",
        "--allowed-domain",
        "bücher.example",
        "--bind-ip-range",
        "--subject-type",
        "public",
        "--locale",
        "de",
        "--consent",
        "required",
        "--brand-name",
        "Intra",
        "--brand-logo-url",
        "https://intra.example/logo.png",
        "--brand-color",
        "#123abc",
        "--sender-name",
        "Intra Team",
        "--email-note",
        "Fragen? Schreiben Sie an it@intra.example.",
        "--link-requests-per-hour",
        "50",
        "--token-email",
        "--passkeys",
        "required_after_first_sign_in",
        "--disabled",
        "--owner",
        "Boss@Example.com",
        "--owner",
        "deputy@example.com",
        "--initiate-login-uri",
        "https://intra.example/login",
    ]);
    let (_, app) = p.show(created["client_id"].as_str().unwrap());
    // SPEC §3.5: the one shape of an app, durations as `5m`, `7d`.
    let expected = serde_json::json!({
        "client_id": created["client_id"],
        "name": "Intranet",
        "public": false,
        "first_party": false,
        "enabled": false,
        "owners": ["boss@example.com", "deputy@example.com"],
        "redirect_uris": ["https://intra.example/cb"],
        "post_logout_redirect_uris": ["https://intra.example/bye"],
        "initiate_login_uri": "https://intra.example/login",
        "settings": {
            "link_ttl": "5m",
            "session_max_age": "7d",
            "device_policy": "same_browser",
            "passkeys": "required_after_first_sign_in",
            "signup": false,
            "allowed_domains": ["example.com", "xn--bcher-kva.example"],
            "bind_ip_range": true,
            "subject_type": "public",
            "locale": "de",
            "consent": "required",
            "id_token_alg": "RS256",
            "token_email": true,
            "link_requests_per_hour": 50
        },
        "branding": {
            "name": "Intra",
            "logo_url": "https://intra.example/logo.png",
            "color": "#123abc",
            "sender_name": "Intra Team",
            "email_note": "Fragen? Schreiben Sie an it@intra.example."
        },
        "created_at": app["created_at"]
    });
    assert_eq!(app, expected);
}

#[tokio::test]
async fn app_update_changes_only_the_given_settings() {
    let p = Postern::new().await;
    let created = p.create(&[
        "--name",
        "Blog",
        "--redirect-uri",
        "https://blog.example/cb",
        "--brand-color",
        "#000000",
    ]);
    let id = created["client_id"].as_str().unwrap();
    let (_, before) = p.show(id);

    let stdout = p.ok(&[
        "app",
        "update",
        id,
        "--name",
        "Blog 2",
        "--link-ttl",
        "1h",
        "--no-signup",
        "--allowed-domain",
        "blog.example",
        "--consent",
        "skip",
        "--device-policy",
        "remote",
        "--redirect-uri",
        "https://blog.example/new-cb",
        "--redirect-uri",
        "https://blog.example/cb2",
        "--first-party",
        "--bind-ip-range",
        "--session-max-age",
        "1d",
        "--id-token-alg",
        "ES256",
        "--locale",
        "FR",
        "--token-email",
        "--enabled=false",
        "--owner",
        "Editor@Blog.example",
        "--initiate-login-uri",
        "https://blog.example/login",
    ]);
    let printed: Value = serde_json::from_str(&stdout).expect("update prints the app");
    let (_, after) = p.show(id);
    assert_eq!(printed, after);
    assert_eq!(after["name"], "Blog 2");
    let s = &after["settings"];
    assert_eq!(s["link_ttl"], "1h");
    assert_eq!(s["signup"], false);
    assert_eq!(s["allowed_domains"], serde_json::json!(["blog.example"]));
    assert_eq!(s["consent"], "skip");
    assert_eq!(s["device_policy"], "remote");
    assert_eq!(
        after["redirect_uris"],
        serde_json::json!(["https://blog.example/new-cb", "https://blog.example/cb2"])
    );
    assert_eq!(after["first_party"], true);
    assert_eq!(s["bind_ip_range"], true);
    assert_eq!(s["session_max_age"], "1d");
    assert_eq!(s["id_token_alg"], "ES256");
    assert_eq!(s["locale"], "fr");
    assert_eq!(s["token_email"], true);
    assert_eq!(after["enabled"], false);
    assert_eq!(after["owners"], serde_json::json!(["editor@blog.example"]));
    assert_eq!(after["initiate_login_uri"], "https://blog.example/login");
    assert_eq!(
        after["branding"]["color"], "#000000",
        "untouched settings stay"
    );
    assert_eq!(after["created_at"], before["created_at"]);

    // Every switch has a way back.
    p.ok(&[
        "app",
        "update",
        id,
        "--signup",
        "--clear-allowed-domains",
        "--third-party",
        "--no-bind-ip-range",
        "--session-max-age",
        "",
        "--consent",
        "default",
        "--brand-color",
        "",
        "--token-email=false",
        "--enabled",
        "--no-owners",
        "--initiate-login-uri",
        "",
    ]);
    let (_, reverted) = p.show(id);
    let s = &reverted["settings"];
    assert_eq!(s["signup"], true);
    assert_eq!(s["allowed_domains"], serde_json::json!([]));
    assert_eq!(reverted["first_party"], false);
    assert_eq!(s["bind_ip_range"], false);
    assert_eq!(s["session_max_age"], Value::Null);
    assert_eq!(s["consent"], Value::Null);
    assert_eq!(reverted["branding"]["color"], Value::Null);
    assert_eq!(s["token_email"], false);
    assert_eq!(reverted["enabled"], true);
    assert_eq!(reverted["owners"], serde_json::json!([]));
    assert_eq!(reverted["initiate_login_uri"], Value::Null);
    assert_eq!(s["link_ttl"], "1h", "settings not named stay");

    // On update, --owner replaces the list; --disabled is --enabled=false.
    p.ok(&["app", "update", id, "--owner", "a@blog.example"]);
    p.ok(&[
        "app",
        "update",
        id,
        "--owner",
        "b@blog.example",
        "--disabled",
    ]);
    let (_, replaced) = p.show(id);
    assert_eq!(replaced["owners"], serde_json::json!(["b@blog.example"]));
    assert_eq!(replaced["enabled"], false);
    p.ok(&["app", "update", id, "--name", "Blog 3"]);
    assert_eq!(
        p.show(id).1["owners"],
        serde_json::json!(["b@blog.example"]),
        "owners not named stay"
    );

    // --no-token-email is the other spelling of --token-email=false.
    p.ok(&["app", "update", id, "--token-email=true"]);
    assert_eq!(p.show(id).1["settings"]["token_email"], true);
    p.ok(&["app", "update", id, "--no-token-email"]);
    assert_eq!(p.show(id).1["settings"]["token_email"], false);
}

/// The new flags go through the API's one validation: bad values are
/// refused with the field named, and nothing is stored or changed.
#[tokio::test]
async fn owner_and_initiate_login_uri_flags_are_validated_like_the_api() {
    let p = Postern::new().await;
    let base = [
        "--name",
        "Shop",
        "--redirect-uri",
        "https://shop.example/cb",
    ];
    let cases: [(&[&str], &str); 3] = [
        (&["--owner", "not an address"], "owners"),
        (
            &["--initiate-login-uri", "ftp://shop.example/"],
            "initiate_login_uri",
        ),
        (&["--enabled=maybe"], "enabled"),
    ];
    for (extra, field) in cases {
        let mut args = vec!["app", "create"];
        args.extend_from_slice(&base);
        args.extend_from_slice(extra);
        let out = p.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} accepted");
        assert!(stderr.contains(field), "{extra:?}: {stderr}");
    }
    assert!(p.list().is_empty(), "nothing stored");
    let created = p.create(&base);
    let id = created["client_id"].as_str().unwrap();
    let (_, before) = p.show(id);
    for (extra, field) in [
        (["--owner", "two@ex@ample.com"], "owners"),
        (
            ["--initiate-login-uri", "http://shop.example/login"],
            "initiate_login_uri",
        ),
    ] {
        let mut args = vec!["app", "update", id];
        args.extend_from_slice(&extra);
        let stderr = p.fails(&args, 2);
        assert!(stderr.contains(field), "{extra:?}: {stderr}");
    }
    assert_eq!(p.show(id).1, before, "nothing changed");
}
