//! Black-box tests of the `postern` command line (SPEC §4): the built binary,
//! run in a temporary directory with a clean environment, against a fresh
//! database (SQLite by default, PostgreSQL with POSTERN_TEST_BACKEND=postgres).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use postern_core::crypto::sha256_b64;
use postern_store::{Backend, Queries as _, Store};
use postern_testkit::TestDb;
use serde_json::Value;

const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// The binary with a private database and working directory.
struct Postern {
    db: TestDb,
}

impl Postern {
    async fn new() -> Self {
        let db = TestDb::new().await;
        Self { db }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_postern"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("POSTERN_DATABASE_URL", &self.db.url)
            .current_dir(self.db.dir.path())
            .args(args);
        if postern_testkit::backend() == Backend::Postgres {
            let key_file = self.db.dir.path().join("master.key");
            std::fs::write(&key_file, MASTER_KEY).expect("write key file");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let private = std::fs::Permissions::from_mode(0o600);
                std::fs::set_permissions(&key_file, private).expect("chmod key file");
            }
            cmd.env("POSTERN_MASTER_KEY_FILE", key_file);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run postern")
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "postern {args:?} failed with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs a command that must fail with `code`; returns its stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "postern {args:?}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "postern {args:?} printed {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    /// `app create` with the given arguments; returns the parsed JSON object.
    fn create(&self, args: &[&str]) -> serde_json::Map<String, Value> {
        let mut all = vec!["app", "create"];
        all.extend_from_slice(args);
        let stdout = self.ok(&all);
        assert!(
            stdout.ends_with('\n') && stdout.lines().count() == 1,
            "one line: {stdout:?}"
        );
        match serde_json::from_str(&stdout).expect("JSON output") {
            Value::Object(map) => map,
            other => panic!("expected an object, got {other}"),
        }
    }

    fn show(&self, client_id: &str) -> (String, Value) {
        let stdout = self.ok(&["app", "show", client_id]);
        let json = serde_json::from_str(&stdout).expect("JSON output");
        (stdout, json)
    }

    fn list(&self) -> Vec<Value> {
        self.ok(&["app", "list"])
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect()
    }

    async fn store(&self) -> Store {
        Store::connect(&self.db.url).await.expect("connect")
    }
}

fn keys(map: &serde_json::Map<String, Value>) -> BTreeSet<&str> {
    map.keys().map(String::as_str).collect()
}

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
    ]);
    let (_, app) = p.show(created["client_id"].as_str().unwrap());
    // SPEC §3.5: the one shape of an app, durations as `5m`, `7d`.
    let expected = serde_json::json!({
        "client_id": created["client_id"],
        "name": "Intranet",
        "public": false,
        "first_party": false,
        "enabled": true,
        "owners": [],
        "redirect_uris": ["https://intra.example/cb"],
        "post_logout_redirect_uris": ["https://intra.example/bye"],
        "initiate_login_uri": null,
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
    assert_eq!(s["link_ttl"], "1h", "settings not named stay");

    // --no-token-email is the other spelling of --token-email=false.
    p.ok(&["app", "update", id, "--token-email=true"]);
    assert_eq!(p.show(id).1["settings"]["token_email"], true);
    p.ok(&["app", "update", id, "--no-token-email"]);
    assert_eq!(p.show(id).1["settings"]["token_email"], false);
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
async fn key_rotation_publishes_a_next_key_per_algorithm() {
    use postern_store::KeyQueries;
    let p = Postern::new().await;
    p.ok(&["keys", "rotate"]);
    let store = p.store().await;
    let keys = store.conn().await.unwrap().signing_keys().await.unwrap();
    let count = |state: &str| keys.iter().filter(|k| k.state == state).count();
    // First use creates the active keys; the rotation adds one `next` key per
    // algorithm that does not sign yet.
    assert_eq!(count("active"), 3, "{keys:?}");
    assert_eq!(count("next"), 3, "{keys:?}");
    for k in &keys {
        assert!(
            k.private_key.starts_with("v1."),
            "private keys are stored encrypted"
        );
    }
    // A second rotation while one is pending adds nothing.
    p.ok(&["keys", "rotate"]);
    let again = store.conn().await.unwrap().signing_keys().await.unwrap();
    assert_eq!(again.len(), 6);
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
