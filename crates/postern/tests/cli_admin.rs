//! The `postern` commands that change what the admin API changes (SPEC
//! §3.5, §4): apps, admin tokens and key rotation, each through the admin
//! services, printing the shapes of §3.5 and leaving an audit record whose
//! actor is `cli`.

mod cli_support;

use std::collections::BTreeSet;

use cli_support::*;
use postern_store::AdminQueries as _;
use serde_json::Value;

/// One JSON object per line.
fn objects(stdout: &str) -> Vec<serde_json::Map<String, Value>> {
    stdout
        .lines()
        .map(
            |line| match serde_json::from_str(line).expect("JSON line") {
                Value::Object(map) => map,
                other => panic!("expected an object, got {other}"),
            },
        )
        .collect()
}

#[tokio::test]
async fn cli_changes_print_the_spec_shapes_and_are_audited_as_cli() {
    let p = Postern::new().await;
    let created = p.create(&[
        "--name",
        "Shop",
        "--redirect-uri",
        "https://shop.example/cb",
    ]);
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    p.ok(&["app", "update", &client_id, "--name", "Shop 2"]);

    // SPEC §3.5: `{"id", "name", "token", "expires_at"}`, once.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let stdout = p.ok(&[
        "admin",
        "token",
        "create",
        "--name",
        "ci",
        "--expires",
        "90d",
    ]);
    let made = objects(&stdout);
    assert_eq!(made.len(), 1, "one line: {stdout:?}");
    let token = &made[0];
    assert_eq!(
        keys(token),
        BTreeSet::from(["id", "name", "token", "expires_at"])
    );
    assert_eq!(token["name"], "ci");
    assert!(token["token"].as_str().unwrap().starts_with("pat_"));
    let expires_at = token["expires_at"].as_i64().expect("unix seconds");
    let ninety_days = 90 * 86_400;
    assert!(
        (before + ninety_days..=before + ninety_days + 60).contains(&expires_at),
        "--expires 90d: {expires_at} from {before}"
    );
    let id = token["id"].as_str().unwrap().to_owned();

    // `list`: the same without `token`.
    let listed = objects(&p.ok(&["admin", "token", "list"]));
    assert_eq!(listed.len(), 1);
    assert_eq!(
        keys(&listed[0]),
        BTreeSet::from(["id", "name", "expires_at"])
    );
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["expires_at"], expires_at);

    // `revoke` takes the id; the token leaves the list.
    let out = p.run(&["admin", "token", "revoke", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    assert!(p.ok(&["admin", "token", "list"]).is_empty());
    p.fails(&["admin", "token", "revoke", &id], 1);

    p.ok(&["keys", "rotate"]);

    // Every change above is in the audit log, by `cli`, naming its target.
    let store = p.store().await;
    let log = store
        .conn()
        .await
        .unwrap()
        .audit_page(None, 100)
        .await
        .unwrap();
    let mut seen: Vec<(String, Option<String>)> = log
        .iter()
        .map(|r| {
            assert_eq!(r.actor, "cli", "{r:?}");
            assert_eq!(r.ip, None, "{r:?}");
            (r.action.clone(), r.target.clone())
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        ("admin_token.create".to_owned(), Some(id.clone())),
        ("admin_token.revoke".to_owned(), Some(id.clone())),
        ("app.create".to_owned(), Some(client_id.clone())),
        ("app.update".to_owned(), Some(client_id.clone())),
        ("keys.rotate".to_owned(), None),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    // The rotation's record names the keys it made, and they exist.
    let rotation = log.iter().find(|r| r.action == "keys.rotate").unwrap();
    let detail: Value = serde_json::from_str(rotation.detail.as_deref().unwrap()).unwrap();
    let kids = detail["kids"].as_array().expect("kids");
    assert_eq!(kids.len(), 3, "{detail}");
    let stored = {
        use postern_store::KeyQueries as _;
        store.conn().await.unwrap().signing_keys().await.unwrap()
    };
    for kid in kids {
        assert!(
            stored
                .iter()
                .any(|k| k.kid == kid.as_str().unwrap() && k.state == "next"),
            "{kid} is a next key"
        );
    }
    // No secret reaches the log.
    let text = format!("{log:?}");
    assert!(!text.contains(token["token"].as_str().unwrap()));
    assert!(!text.contains(created["client_secret"].as_str().unwrap()));
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
