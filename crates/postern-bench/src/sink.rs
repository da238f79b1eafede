//! The bench's own SMTP server: the server under test delivers its sign-in
//! emails here (`POSTERN_MAIL=smtp://127.0.0.1:PORT`), so mail costs what
//! real SMTP costs — a TCP round trip per command, the message on the wire —
//! without a file per message or a mail server competing for the cores.
//!
//! It accepts every message, counts it, and hands the raw message to the
//! virtual browser waiting for that recipient (if any); everything else is
//! dropped on arrival, so memory stays flat however long the run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Messages larger than this are refused (Postern's are a few KiB).
const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// Longest command line accepted (RFC 5321 §4.5.3.1.4 says 512).
const MAX_LINE: usize = 4096;

/// A running sink.
pub struct Sink {
    addr: SocketAddr,
    accepted: AtomicU64,
    waiters: Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>,
}

impl Sink {
    /// Listens on `addr` and serves every connection until the process ends.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Arc<Self>> {
        let listener = TcpListener::bind(addr).await?;
        let sink = Arc::new(Self {
            addr: listener.local_addr()?,
            accepted: AtomicU64::new(0),
            waiters: Mutex::new(HashMap::new()),
        });
        let shared = Arc::clone(&sink);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let sink = Arc::clone(&shared);
                tokio::spawn(async move {
                    // A connection that breaks mid-way is the client's
                    // business: Postern retries what was not accepted.
                    let _ = sink.session(stream).await;
                });
            }
        });
        Ok(sink)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Messages accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Registers interest in the next message to `recipient` (register
    /// before the request that sends it, so it cannot arrive unseen).
    pub fn expect(&self, recipient: &str) -> oneshot::Receiver<Vec<u8>> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(recipient.to_ascii_lowercase(), tx);
        rx
    }

    /// Drops the interest in `recipient` (its request failed).
    pub fn forget(&self, recipient: &str) {
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&recipient.to_ascii_lowercase());
    }

    fn deliver(&self, recipients: &[String], message: Vec<u8>) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        let found: Vec<_> = recipients
            .iter()
            .filter_map(|r| waiters.remove(r))
            .collect();
        drop(waiters);
        for tx in found {
            let _ = tx.send(message.clone());
        }
    }

    /// One SMTP session (RFC 5321): greeting, EHLO/HELO, then any number of
    /// MAIL/RCPT/DATA transactions (Postern reuses connections with RSET).
    async fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        write.write_all(b"220 postern-bench SMTP sink\r\n").await?;
        let mut line = Vec::with_capacity(256);
        let mut recipients: Vec<String> = Vec::new();
        loop {
            line.clear();
            if read_line(&mut reader, &mut line, MAX_LINE).await? == 0 {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&line);
            let command = text.trim_end();
            let verb = command
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                // Commands are read a line at a time, so pipelined ones
                // (RFC 2920) are answered in order like any others.
                "EHLO" => {
                    b"250-postern-bench\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SIZE 4194304\r\n"
                }
                "HELO" => b"250 postern-bench\r\n",
                "MAIL" => {
                    recipients.clear();
                    b"250 2.1.0 ok\r\n"
                }
                "RCPT" => match mailbox(command) {
                    Some(to) => {
                        recipients.push(to);
                        b"250 2.1.5 ok\r\n"
                    }
                    None => b"501 5.1.3 bad recipient\r\n",
                },
                "DATA" if recipients.is_empty() => b"503 5.5.1 no recipients\r\n",
                "DATA" => {
                    write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                    match read_data(&mut reader).await? {
                        Some(message) => {
                            self.deliver(&recipients, message);
                            recipients.clear();
                            b"250 2.0.0 queued\r\n"
                        }
                        None => b"552 5.3.4 message too big\r\n",
                    }
                }
                "RSET" => {
                    recipients.clear();
                    b"250 2.0.0 ok\r\n"
                }
                "NOOP" => b"250 2.0.0 ok\r\n",
                "QUIT" => {
                    write.write_all(b"221 2.0.0 bye\r\n").await?;
                    return Ok(());
                }
                _ => b"502 5.5.2 not implemented\r\n",
            };
            write.write_all(reply).await?;
        }
    }
}

/// Reads one line (up to `max` bytes, the rest of a longer line discarded).
async fn read_line(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let n = reader.read_until(b'\n', line).await?;
    line.truncate(max);
    Ok(n)
}

/// The message after DATA, dot-unstuffed (RFC 5321 §4.5.2), up to the lone
/// `.`; `None` when it was larger than [`MAX_MESSAGE`] (read and dropped).
async fn read_data(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut message = Vec::with_capacity(8 * 1024);
    let mut line = Vec::with_capacity(256);
    let mut too_big = false;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok((!too_big).then_some(message));
        }
        let body = line.strip_prefix(b".").unwrap_or(&line);
        if message.len() + body.len() > MAX_MESSAGE {
            too_big = true;
        }
        if !too_big {
            message.extend_from_slice(body);
        }
    }
}

/// The address of `RCPT TO:<a@b> ...`, lower-cased.
fn mailbox(command: &str) -> Option<String> {
    let start = command.find('<')? + 1;
    let len = command[start..].find('>')?;
    let address = &command[start..start + len];
    (!address.is_empty()).then(|| address.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn a_recipient_is_read_from_rcpt_to() {
        assert_eq!(
            mailbox("RCPT TO:<Bench-1@Bench.Example> NOTIFY=NEVER").as_deref(),
            Some("bench-1@bench.example")
        );
        assert_eq!(mailbox("RCPT TO:<>"), None);
        assert_eq!(mailbox("RCPT TO:bench@example"), None);
    }

    #[tokio::test]
    async fn a_message_reaches_the_browser_waiting_for_its_recipient_unstuffed() {
        let sink = Sink::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let waiting = sink.expect("b@bench.example");
        let mut smtp = TcpStream::connect(sink.addr()).await.unwrap();
        smtp.write_all(
            b"EHLO me\r\nMAIL FROM:<p@x>\r\nRCPT TO:<a@bench.example>\r\nRCPT TO:<B@bench.example>\r\n\
              DATA\r\nSubject: hi\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n",
        )
        .await
        .unwrap();
        let mut replies = String::new();
        smtp.read_to_string(&mut replies).await.unwrap();
        assert!(replies.contains("250 2.0.0 queued"), "{replies}");
        assert!(replies.ends_with("221 2.0.0 bye\r\n"), "{replies}");
        assert_eq!(
            waiting.await.unwrap(),
            b"Subject: hi\r\n\r\n.dot\r\nbody\r\n".to_vec()
        );
        assert_eq!(sink.accepted(), 1);
    }
}
