//! The crates stay in their layers (docs/ARCHITECTURE.md): the services
//! know no HTTP, the web face no SQL, the domain neither. Read from
//! `cargo metadata`, so a dependency added anywhere in the graph, directly
//! or through another crate, fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Normal (non-dev, non-build) dependencies of every workspace package:
/// package name → (its direct dependencies, everything it pulls in).
type Graph = BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>;

fn runtime_dependencies() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // The graph of the machine's own platform: every platform's would need
    // crates this build never downloaded.
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()))
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc names its host");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    // Edges that are built into the crate itself: kind null ("normal").
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let id = node["id"].as_str().unwrap();
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| d["pkg"].as_str().unwrap())
            .collect();
        edges.insert(id, deps);
    }
    let mut graph = BTreeMap::new();
    for member in meta["workspace_members"].as_array().unwrap() {
        let root = member.as_str().unwrap();
        let direct = edges[root].iter().map(|d| name_of[d].to_owned()).collect();
        let mut seen = BTreeSet::new();
        let mut todo = vec![root];
        while let Some(id) = todo.pop() {
            for dep in edges.get(id).into_iter().flatten() {
                if seen.insert(name_of[dep].to_owned()) {
                    todo.push(dep);
                }
            }
        }
        graph.insert(name_of[root].to_owned(), (direct, seen));
    }
    graph
}

/// Whether a rule looks at every crate pulled in or only the direct ones.
#[derive(Clone, Copy)]
enum Reach {
    /// Anywhere in the graph below the crate.
    Anywhere,
    /// Named in the crate's own `[dependencies]` (the store uses sqlx, so
    /// everything above the store pulls it in; what matters is who calls it).
    Direct,
}

#[test]
fn each_crate_depends_only_on_what_its_layer_may_use() {
    let graph = runtime_dependencies();
    use Reach::*;
    // (crate, reach, what it must never depend on, why)
    let rules: &[(&str, Reach, &[&str], &str)] = &[
        (
            "postern-core",
            Anywhere,
            &["axum", "hyper", "http", "sqlx", "lettre", "postern-store"],
            "domain types and rules do no I/O",
        ),
        (
            "postern-store",
            Anywhere,
            &[
                "axum",
                "hyper",
                "http",
                "lettre",
                "postern-web",
                "postern-auth",
            ],
            "storage knows neither the web nor mail",
        ),
        (
            "postern-auth",
            Anywhere,
            &["axum", "axum-core", "hyper", "http", "tower", "postern-web"],
            "services know no HTTP: every face calls them with typed input",
        ),
        (
            "postern-web",
            Direct,
            &["sqlx", "sqlx-core"],
            "the web face reaches the database only through the services and the store",
        ),
        (
            "postern-web",
            Anywhere,
            &["postern-admin-web"],
            "the administration faces are mounted by the binary, beside the web crate",
        ),
        (
            "postern-admin-web",
            Direct,
            &["sqlx", "sqlx-core"],
            "the administration faces reach the database only through the services",
        ),
    ];
    let mut broken = Vec::new();
    for (krate, reach, forbidden, why) in rules {
        let (direct, anywhere) = graph
            .get(*krate)
            .unwrap_or_else(|| panic!("{krate} is a workspace member"));
        let deps = match reach {
            Anywhere => anywhere,
            Direct => direct,
        };
        for f in *forbidden {
            if deps.contains(*f) {
                broken.push(format!("{krate} depends on {f}: {why}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "layer rules broken:\n{}",
        broken.join("\n")
    );
}

/// rsa's private-key operations are not constant-time (RUSTSEC-2023-0071):
/// what signs with Postern's own keys — DKIM in `postern-mail`, JOSE in
/// `postern-core` — does it on aws-lc-rs. Read from `cargo tree` (the
/// graph as built: `cargo metadata` also lists sqlx's unbuilt MySQL driver,
/// which would bring rsa in). Passkeys' webauthn-rs pulls rsa in elsewhere
/// to verify signatures with public keys only (docs/ARCHITECTURE.md).
#[test]
fn nothing_that_signs_with_postern_keys_uses_the_rsa_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
        .args(["-p", "postern-mail", "-p", "postern-core"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("aws-lc-rs "), "the graph was read: {tree}");
    let rsa: Vec<&str> = tree.lines().filter(|l| l.starts_with("rsa ")).collect();
    assert!(rsa.is_empty(), "DKIM or JOSE pulls in {rsa:?}");
}
