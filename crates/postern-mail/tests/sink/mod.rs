//! A real SMTP server for tests: `smtp_sink.py` (aiosmtpd) in a child
//! process on a free port, saving each accepted message to a directory.
//! Shared with `crates/postern/tests` through `#[path]`.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) sink.
pub struct Sink {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Where accepted messages are saved.
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    child: Option<Child>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../postern-mail/tests/smtp_sink.py")
        .canonicalize()
        .expect("smtp_sink.py")
}

/// A port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Sink {
    /// Starts a sink on a free port; `args` are `smtp_sink.py` options
    /// (`--tempfail 1`, `--reject`, `--auth u:p`).
    pub fn start(args: &[&str]) -> Self {
        Self::start_on(0, args)
    }

    /// Starts a sink on `port` (0: a free one).
    pub fn start_on(port: u16, args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let dir = tmp.path().join("mail");
        let mut sink = Self {
            port,
            dir,
            _tmp: tmp,
            child: None,
        };
        sink.spawn(port, args);
        sink
    }

    fn spawn(&mut self, port: u16, args: &[&str]) {
        let mut child = Command::new("python3")
            .arg(script())
            .arg("--dir")
            .arg(&self.dir)
            .arg("--port")
            .arg(port.to_string())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(p) = line.trim().strip_prefix("PORT ") else {
            let _ = child.kill();
            panic!(
                "the SMTP sink did not start ({line:?}); install it with \
                 `python3 -m pip install aiosmtpd`"
            );
        };
        self.port = p.parse().unwrap();
        self.child = Some(child);
    }

    /// Starts again on the same port and directory (after [`Sink::stop`]).
    pub fn restart(&mut self, args: &[&str]) {
        self.stop();
        let port = self.port;
        self.spawn(port, args);
    }

    /// Kills the server: connections are refused until it restarts.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every accepted message, raw, in arrival order.
    pub fn messages(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = dir
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
            .collect()
    }

    /// Waits (up to `secs`) until at least `n` messages arrived.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let messages = self.messages();
            if messages.len() >= n || Instant::now() > deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The value of header `name` in a raw message (first occurrence, unfolded).
pub fn header(raw: &str, name: &str) -> Option<String> {
    let head = raw.split("\r\n\r\n").next().unwrap_or(raw);
    let mut lines = head.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        if n.eq_ignore_ascii_case(name) {
            let mut value = v.trim().to_owned();
            while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(next.trim());
                lines.next();
            }
            return Some(value);
        }
    }
    None
}

/// The names of the top-level headers of a raw message.
pub fn header_names(raw: &str) -> Vec<String> {
    let head = raw.split("\r\n\r\n").next().unwrap_or(raw);
    head.split("\r\n")
        .filter(|l| !l.starts_with([' ', '\t']))
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_owned()))
        .collect()
}
