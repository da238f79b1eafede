//! The `postern` binary under test (cli.rs and its siblings): run in a
//! temporary directory with a clean environment, against a fresh database
//! (SQLite by default, PostgreSQL with POSTERN_TEST_BACKEND=postgres).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::process::{Command, Output};

use postern_store::{Backend, Store};
use postern_testkit::TestDb;
use serde_json::Value;

pub const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// The binary with a private database and working directory.
pub struct Postern {
    pub db: TestDb,
}

impl Postern {
    pub async fn new() -> Self {
        let db = TestDb::new().await;
        Self { db }
    }

    pub fn command(&self, args: &[&str]) -> Command {
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

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run postern")
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
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
    pub fn fails(&self, args: &[&str], code: i32) -> String {
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
    pub fn create(&self, args: &[&str]) -> serde_json::Map<String, Value> {
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

    pub fn show(&self, client_id: &str) -> (String, Value) {
        let stdout = self.ok(&["app", "show", client_id]);
        let json = serde_json::from_str(&stdout).expect("JSON output");
        (stdout, json)
    }

    pub fn list(&self) -> Vec<Value> {
        self.ok(&["app", "list"])
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect()
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.db.url).await.expect("connect")
    }
}

pub fn keys(map: &serde_json::Map<String, Value>) -> BTreeSet<&str> {
    map.keys().map(String::as_str).collect()
}
