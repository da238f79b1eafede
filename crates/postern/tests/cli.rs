//! Black-box tests of the `postern` command line (SPEC §4): the built binary,
//! run in a temporary directory with a clean environment, against a fresh
//! database (SQLite by default, PostgreSQL with POSTERN_TEST_BACKEND=postgres).

mod cli_support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use cli_support::*;
use postern_core::crypto::sha256_b64;
use postern_store::Queries as _;

#[tokio::test]
async fn migrate_prepares_a_fresh_database() {
    let p = Postern::new().await;
    let out = p.run(&["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("migrations applied"));
    assert!(
        p.store().await.ready().await.unwrap(),
        "every migration is applied"
    );
    // Running it again is harmless.
    p.ok(&["migrate"]);
}

#[tokio::test]
async fn a_confidential_app_gets_a_secret_shown_once_and_stored_only_as_a_hash() {
    let p = Postern::new().await;
    let created = p.create(&[
        "--name",
        "Shop",
        "--redirect-uri",
        "https://shop.example/cb",
    ]);
    assert_eq!(
        keys(&created),
        BTreeSet::from(["client_id", "client_secret"])
    );
    let client_id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    assert!(client_id.len() >= 22, "{client_id}");
    assert!(secret.starts_with("pcs_") && secret.len() >= 40, "{secret}");

    let (text, app) = p.show(client_id);
    assert_eq!(app["client_id"], client_id);
    assert_eq!(app["name"], "Shop");
    let s = &app["settings"];
    assert_eq!(
        app["redirect_uris"],
        serde_json::json!(["https://shop.example/cb"])
    );
    assert_eq!(app["public"], false);
    assert_eq!(app["first_party"], false);
    assert_eq!(app["enabled"], true);
    assert_eq!(app["owners"], serde_json::json!([]));
    assert_eq!(s["link_ttl"], "15m");
    assert_eq!(s["device_policy"], "any");
    assert_eq!(s["signup"], true);
    assert_eq!(s["subject_type"], "pairwise");
    assert_eq!(s["id_token_alg"], "RS256");
    assert_eq!(s["locale"], "en");

    let hash = sha256_b64(secret.as_bytes());
    for listing in [text, p.ok(&["app", "list"])] {
        assert!(
            !listing.contains(secret),
            "the secret is never shown again: {listing}"
        );
        assert!(!listing.contains(&hash), "nor its hash: {listing}");
        assert!(!listing.contains("secret"), "{listing}");
    }

    let store = p.store().await;
    let now = postern_core::Clock::now(&postern_core::SystemClock);
    let stored = store
        .conn()
        .await
        .unwrap()
        .app_secret_hashes(client_id, now)
        .await
        .unwrap();
    assert_eq!(
        stored,
        vec![hash],
        "only the SHA-256 of the secret is stored"
    );
}

#[tokio::test]
async fn a_public_app_has_no_secret() {
    let p = Postern::new().await;
    let created = p.create(&[
        "--name",
        "SPA",
        "--redirect-uri",
        "http://127.0.0.1:3000/cb",
        "--public",
        "--first-party",
        "--id-token-alg",
        "EdDSA",
    ]);
    assert_eq!(keys(&created), BTreeSet::from(["client_id"]));
    let client_id = created["client_id"].as_str().unwrap();
    let (_, app) = p.show(client_id);
    assert_eq!(app["public"], true);
    assert_eq!(app["first_party"], true);
    assert_eq!(app["settings"]["id_token_alg"], "EdDSA");
    let store = p.store().await;
    let hashes = store
        .conn()
        .await
        .unwrap()
        .app_secret_hashes(
            client_id,
            postern_core::Clock::now(&postern_core::SystemClock),
        )
        .await
        .unwrap();
    assert!(hashes.is_empty(), "{hashes:?}");
}

#[tokio::test]
async fn bad_input_is_refused_and_stores_nothing() {
    let p = Postern::new().await;
    let uri = "https://ok.example/cb";
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "link ttl too short",
            &["--name", "A", "--redirect-uri", uri, "--link-ttl", "30s"],
            "between 1 minute and 24 hours",
        ),
        (
            "link ttl too long",
            &["--name", "A", "--redirect-uri", uri, "--link-ttl", "2d"],
            "between 1 minute and 24 hours",
        ),
        (
            "http redirect on a public host",
            &["--name", "A", "--redirect-uri", "http://app.example/cb"],
            "must use https",
        ),
        (
            "fragment in redirect",
            &["--name", "A", "--redirect-uri", "https://app.example/cb#x"],
            "fragment",
        ),
        (
            "bad post-logout uri",
            &[
                "--name",
                "A",
                "--redirect-uri",
                uri,
                "--post-logout-redirect-uri",
                "nope",
            ],
            "not an absolute URL",
        ),
        (
            "empty name",
            &["--name", "", "--redirect-uri", uri],
            "needs a name",
        ),
        (
            "bad colour",
            &["--name", "A", "--redirect-uri", uri, "--brand-color", "red"],
            "#1a2b3c",
        ),
        (
            "http logo",
            &[
                "--name",
                "A",
                "--redirect-uri",
                uri,
                "--brand-logo-url",
                "http://x.example/l.png",
            ],
            "https",
        ),
        (
            "bad domain",
            &[
                "--name",
                "A",
                "--redirect-uri",
                uri,
                "--allowed-domain",
                "nodot",
            ],
            "allowed domain",
        ),
        (
            "header injection in sender",
            &[
                "--name",
                "A",
                "--redirect-uri",
                uri,
                "--sender-name",
                "a\r\nBcc: x@evil.example",
            ],
            "branding text",
        ),
        (
            "zero limit",
            &[
                "--name",
                "A",
                "--redirect-uri",
                uri,
                "--link-requests-per-hour",
                "0",
            ],
            "at least 1",
        ),
        (
            "unparsable duration",
            &["--name", "A", "--redirect-uri", uri, "--link-ttl", "soon"],
            "invalid duration",
        ),
        (
            "unknown policy",
            &[
                "--name",
                "A",
                "--redirect-uri",
                uri,
                "--device-policy",
                "never",
            ],
            "never",
        ),
        ("no redirect uri", &["--name", "A"], "--redirect-uri"),
    ];
    for (what, args, message) in cases {
        let mut all = vec!["app", "create"];
        all.extend_from_slice(args);
        let stderr = p.fails(&all, 2);
        assert!(stderr.contains(message), "{what}: {stderr}");
    }
    assert!(p.list().is_empty(), "no failed create stored an app");

    let created = p.create(&["--name", "Kept", "--redirect-uri", uri]);
    let id = created["client_id"].as_str().unwrap();
    let (before, _) = p.show(id);
    let updates: &[(&str, &[&str], &str)] = &[
        (
            "link ttl too short",
            &["--link-ttl", "30s"],
            "between 1 minute",
        ),
        (
            "http redirect",
            &[
                "--redirect-uri",
                "http://app.example/cb",
                "--name",
                "Renamed",
            ],
            "must use https",
        ),
        (
            "empty locale",
            &["--locale", "", "--no-signup"],
            "invalid locale",
        ),
    ];
    for (what, args, message) in updates {
        let mut all = vec!["app", "update", id];
        all.extend_from_slice(args);
        let stderr = p.fails(&all, 2);
        assert!(stderr.contains(message), "{what}: {stderr}");
    }
    let (after, _) = p.show(id);
    assert_eq!(before, after, "failed updates change nothing");

    let stderr = p.fails(&["app", "show", "no-such-app"], 1);
    assert!(
        stderr.contains("no app with client_id \"no-such-app\""),
        "{stderr}"
    );
    let stderr = p.fails(&["app", "update", "no-such-app", "--link-ttl", "5m"], 1);
    assert!(stderr.contains("no app"), "{stderr}");
    assert_eq!(p.list().len(), 1);
}

#[tokio::test]
async fn app_list_prints_one_json_object_per_app() {
    let p = Postern::new().await;
    assert!(
        p.ok(&["app", "list"]).is_empty(),
        "a fresh database has no apps"
    );
    let a = p.create(&["--name", "First", "--redirect-uri", "https://a.example/cb"]);
    let b = p.create(&[
        "--name",
        "Second",
        "--redirect-uri",
        "https://b.example/cb",
        "--public",
    ]);
    let listed = p.list();
    let ids: BTreeSet<&str> = listed
        .iter()
        .map(|app| app["client_id"].as_str().unwrap())
        .collect();
    let expected = BTreeSet::from([
        a["client_id"].as_str().unwrap(),
        b["client_id"].as_str().unwrap(),
    ]);
    assert_eq!(ids, expected);
    let names: BTreeSet<&str> = listed
        .iter()
        .map(|app| app["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["First", "Second"]));
    let text = p.ok(&["app", "list"]);
    assert!(!text.contains(a["client_secret"].as_str().unwrap()));
}

#[tokio::test]
async fn configuration_mistakes_stop_every_command() {
    let p = Postern::new().await;
    // The stdout-mail rule of SPEC §4 applies to every subcommand.
    let out = p
        .command(&["migrate"])
        .env("POSTERN_PUBLIC_URL", "https://auth.example.com")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("POSTERN_MAIL"));

    let out = p
        .command(&["migrate"])
        .env("POSTERN_BIND", "everywhere")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("POSTERN_BIND"));

    let out = p
        .command(&["--config", "missing.toml", "migrate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));

    // Unknown variables are warned about, not fatal.
    let out = p
        .command(&["migrate"])
        .env("POSTERN_DATABASE_URI", "x")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("did you mean POSTERN_DATABASE_URL?"),
        "{stderr}"
    );
}

#[tokio::test]
async fn flags_override_the_environment_and_the_config_file() {
    let p = Postern::new().await;
    let dir: PathBuf = p.db.dir.path().to_owned();
    std::fs::write(
        dir.join("postern.toml"),
        "database_url = \"mysql://wrong/one\"\n",
    )
    .unwrap();
    // The config file alone is refused…
    let out = p
        .command(&["migrate"])
        .env_remove("POSTERN_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("database_url in"));
    // …the environment overrides it…
    p.ok(&["migrate"]);
    // …and the flag overrides the environment.
    let out = p
        .command(&["--database-url", &p.db.url, "app", "list"])
        .env("POSTERN_DATABASE_URL", "mysql://wrong/two")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn new_client_ids_are_hex_and_ids_that_look_like_flags_still_work() {
    let p = Postern::new().await;
    for _ in 0..5 {
        let created = p.create(&["--name", "Hex", "--redirect-uri", "https://app.example/cb"]);
        let id = created["client_id"].as_str().unwrap();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }
    // Ids made by older versions were base64url and could start with '-'.
    p.ok(&["migrate"]);
    let mut settings = postern_core::AppSettings {
        redirect_uris: vec!["https://app.example/cb".into()],
        ..Default::default()
    };
    postern_core::App::validate("Dash", &mut settings).unwrap();
    let app = postern_core::App {
        client_id: "-GFbukSsdOJv3-7tq0bWAA".into(),
        name: "Dash".into(),
        settings,
        created_at: 1,
        updated_at: 1,
    };
    let store = p.store().await;
    store
        .conn()
        .await
        .unwrap()
        .insert_app(&app, None)
        .await
        .unwrap();
    let (out, _) = p.show("-GFbukSsdOJv3-7tq0bWAA");
    assert!(out.contains("Dash"), "{out}");
    p.ok(&[
        "app",
        "update",
        "-GFbukSsdOJv3-7tq0bWAA",
        "--name",
        "Dashed",
    ]);
    assert!(p.show("-GFbukSsdOJv3-7tq0bWAA").0.contains("Dashed"));
}
