//! Delivery by SMTP (SPEC §4, `POSTERN_MAIL=smtp://…`): a small pool of
//! connections, each opened on a `TCP_NODELAY` socket and reused.
//!
//! * `smtp://host:port` speaks plain SMTP (meant for a relay on loopback).
//! * `smtp+starttls://host:587` requires STARTTLS: a server that does not
//!   offer it is refused, never written to in clear (RFC 3207 leaves the
//!   choice to the client; opportunistic TLS can be stripped).
//! * `smtps://host:465` is TLS from the first byte (RFC 8314).
//!
//! Certificates are checked against the Mozilla roots (`webpki-roots`) with
//! rustls on aws-lc-rs. The user name comes from the URL and the password
//! from the configuration (`POSTERN_SMTP_PASSWORD[_FILE]`); AUTH PLAIN or
//! LOGIN, whichever the server offers.
//!
//! Why not lettre's own pooled transport: its sockets leave Nagle's algorithm
//! on, and lettre writes a message body and its final `.` in two writes, so
//! every message waits for the server's delayed ACK (~40 ms on Linux), and
//! its transport sends one message at a time per call. Here at most
//! [`SmtpSettings::connections`] transactions run at once, each on its own
//! connection, over lettre's connection API ([`AsyncSmtpConnection`]).
//!
//! Where the server offers PIPELINING (RFC 2920), a transaction's RSET,
//! MAIL, RCPT and DATA go out in one write and their replies are read in
//! order: two round trips per message instead of five. lettre does not
//! record that extension, so each new connection asks with an EHLO of its
//! own before authenticating.
//!
//! Every failure says whether trying again can help: a 5xx reply to the
//! message is [`DeliveryError::Permanent`]; 4xx replies, network errors,
//! timeouts and anything that goes wrong while connecting, greeting,
//! securing or authenticating (problems of the server or the configuration,
//! not of the message) are [`DeliveryError::Temporary`]. Error texts are
//! scrubbed of addresses, links and codes before anyone sees them.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::Error as SmtpError;
use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret as _, SecretString};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::transport::DeliveryError;

/// Default number of connections (and so of messages in flight),
/// `POSTERN_SMTP_CONNECTIONS`: twice round four's 8, which under load left
/// mail at half the rate link requests came in (docs/PERFORMANCE.md, round
/// six), and under the 20 connections some servers accept in all (Exim's
/// `smtp_accept_max`). It is also the most a crash can send twice.
pub const DEFAULT_CONNECTIONS: usize = 16;
/// Default limit on opening a connection: TCP, greeting, EHLO, TLS, AUTH.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit on one whole mail transaction (RSET to the final reply).
/// RFC 5321 §4.5.3.2 allows servers minutes; our messages are a few KiB,
/// and the outbox lease is 60 s.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections idle longer than this are closed rather than reused
/// (servers drop idle clients after a few minutes; RFC 5321 §4.5.3.2.7).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// After a failed connection attempt, messages fail at once (with the same
/// error) for this long instead of each waiting for its own attempt.
const DOWN_HOLD: Duration = Duration::from_secs(1);
/// Longest server text kept in an error.
const MAX_ERROR_TEXT: usize = 300;

/// How the connection is secured (the scheme of the URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: no TLS at all.
    Plain,
    /// `smtp+starttls://`: STARTTLS, required.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Tls,
}

/// Where and how to deliver by SMTP.
#[derive(Clone)]
pub struct SmtpSettings {
    /// Server host name or IP address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Plain, STARTTLS (required) or implicit TLS.
    pub security: Security,
    /// User name for AUTH, if any.
    pub user: Option<String>,
    /// Password for AUTH (with `user`).
    pub password: Option<SecretString>,
    /// Our name in `EHLO` (a host name or an IP address).
    pub hello_name: String,
    /// Connections kept open, and messages in flight, at most.
    pub connections: usize,
    /// Limit on opening one connection.
    pub connect_timeout: Duration,
    /// Limit on one mail transaction.
    pub command_timeout: Duration,
    /// Idle connections older than this are closed instead of reused.
    pub idle_timeout: Duration,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}

/// Why an SMTP URL was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct SmtpUrlError(&'static str);

impl SmtpSettings {
    /// Settings from `smtp://[user@]host[:25]`, `smtp+starttls://[user@]host[:587]`
    /// or `smtps://[user@]host[:465]` (the user name percent-decoded) and a
    /// password kept apart from the URL. A password still in the URL is
    /// refused: the configuration moves it out.
    pub fn from_url(url: &url::Url, password: Option<SecretString>) -> Result<Self, SmtpUrlError> {
        let (security, default_port) = match url.scheme() {
            "smtp" => (Security::Plain, 25),
            "smtp+starttls" => (Security::StartTls, 587),
            "smtps" => (Security::Tls, 465),
            _ => return Err(SmtpUrlError("use smtp://, smtp+starttls:// or smtps://")),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(SmtpUrlError("the SMTP URL needs a host"))?;
        // IPv6 literals come bracketed from the URL.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if url.password().is_some() {
            return Err(SmtpUrlError(
                "the SMTP password must be given apart from the URL",
            ));
        }
        let user = (!url.username().is_empty()).then(|| {
            percent_decode_str(url.username())
                .decode_utf8_lossy()
                .into_owned()
        });
        Ok(Self {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            user,
            password,
            hello_name: "localhost".to_owned(),
            connections: DEFAULT_CONNECTIONS,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        })
    }

    /// The URL shown in logs: scheme, user, host and port, never a password.
    pub fn display_url(&self) -> String {
        let scheme = match self.security {
            Security::Plain => "smtp",
            Security::StartTls => "smtp+starttls",
            Security::Tls => "smtps",
        };
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{user}{host}:{}", self.port)
    }

    /// The longest one delivery can take once it starts: opening a
    /// connection plus one transaction.
    pub fn max_attempt(&self) -> Duration {
        self.connect_timeout + self.command_timeout
    }
}

/// What the server answered to a message it accepted (or to a rejected one,
/// inside [`DeliveryError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code (`250`).
    pub code: u16,
    /// The reply text, lines joined with spaces (`2.0.0 Ok: queued as 4Xk`).
    pub text: String,
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

impl From<&Response> for Reply {
    fn from(r: &Response) -> Self {
        Self {
            code: r.code().to_string().parse().unwrap_or(0),
            text: r.message().collect::<Vec<_>>().join(" "),
        }
    }
}

/// An SMTP server and a pool of open connections to it. Clones share the
/// pool.
#[derive(Clone)]
pub struct Smtp {
    inner: Arc<Inner>,
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Smtp")
            .field(&self.inner.settings.display_url())
            .finish()
    }
}

struct Inner {
    settings: SmtpSettings,
    hello: ClientId,
    credentials: Option<Credentials>,
    /// For `smtps://`.
    tls: Option<tokio_rustls::TlsConnector>,
    /// For `smtp+starttls://`.
    starttls: Option<TlsParameters>,
    /// One permit per connection: bounds the transactions in flight.
    permits: Semaphore,
    /// Open connections waiting for a message, most recently used last.
    idle: Mutex<VecDeque<IdleConnection>>,
    /// The last failed connection attempt and its error, while the server
    /// is unreachable.
    down: Mutex<Option<(Instant, String)>>,
}

struct IdleConnection {
    conn: Connection,
    since: Instant,
}

/// An open connection and whether its server offers PIPELINING.
struct Connection {
    smtp: AsyncSmtpConnection,
    pipelining: bool,
}

/// A connection problem, before any message was handed over.
struct SetupError(String);

impl Smtp {
    /// A transport for `settings`; connects lazily.
    pub fn new(settings: SmtpSettings) -> Result<Self, SmtpUrlError> {
        let hello = match settings.hello_name.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => ClientId::Ipv4(ip),
            Ok(IpAddr::V6(ip)) => ClientId::Ipv6(ip),
            Err(_) => ClientId::Domain(settings.hello_name.clone()),
        };
        let credentials =
            match (&settings.user, &settings.password) {
                (Some(user), Some(password)) => Some(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_owned(),
                )),
                (Some(_), None) => return Err(SmtpUrlError(
                    "the SMTP URL names a user but no password is set (POSTERN_SMTP_PASSWORD_FILE)",
                )),
                (None, Some(_)) => return Err(SmtpUrlError(
                    "an SMTP password is set but the SMTP URL names no user (smtps://user@host)",
                )),
                (None, None) => None,
            };
        let (tls, starttls) = match settings.security {
            Security::Plain => (None, None),
            Security::Tls => (Some(tls_connector()?), None),
            Security::StartTls => {
                let params = TlsParameters::builder(settings.host.clone())
                    .certificate_store(CertificateStore::WebpkiRoots)
                    .build_rustls()
                    .map_err(|_| SmtpUrlError("could not set up TLS for the SMTP server"))?;
                (None, Some(params))
            }
        };
        let connections = settings.connections.max(1);
        Ok(Self {
            inner: Arc::new(Inner {
                hello,
                credentials,
                tls,
                starttls,
                permits: Semaphore::new(connections),
                idle: Mutex::new(VecDeque::new()),
                down: Mutex::new(None),
                settings,
            }),
        })
    }

    /// The settings this transport runs with.
    pub fn settings(&self) -> &SmtpSettings {
        &self.inner.settings
    }

    /// Delivers `message` (RFC 5322 bytes) to the recipients of `envelope`
    /// and returns the server's final reply. `recipient` is scrubbed from
    /// any error text. Waits for a free connection; opens one when none is
    /// idle; returns the connection to the pool unless it broke.
    pub async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
        recipient: &str,
    ) -> Result<Reply, DeliveryError> {
        let inner = &*self.inner;
        // The semaphore is never closed.
        let _permit = inner.permits.acquire().await.ok();
        let temporary = |SetupError(e)| DeliveryError::Temporary(e);
        let (mut conn, mut reused) = self.checkout().await.map_err(temporary)?;
        let timeout = inner.settings.command_timeout;
        loop {
            let sent = tokio::time::timeout(timeout, transaction(&mut conn, envelope, message));
            return match sent.await {
                Ok(Ok(response)) => {
                    self.checkin(conn);
                    Ok(Reply::from(&response))
                }
                // A pipelined RSET is the liveness check of a reused
                // connection: a dead one fails there, before anything of
                // the message went out, and a new connection takes over.
                Ok(Err(TxFailure::Smtp(Step::Reset, e))) if reused && e.status().is_none() => {
                    conn = self.open().await.map_err(temporary)?;
                    reused = false;
                    continue;
                }
                Ok(Err(failure)) => {
                    // A refusal leaves the connection usable (the next
                    // message starts with RSET); a broken stream does not.
                    let usable = match &failure {
                        TxFailure::Unsupported(_) => true,
                        TxFailure::Smtp(_, e) => e.status().is_some(),
                    };
                    if usable && !conn.smtp.has_broken() {
                        self.checkin(conn);
                    }
                    Err(classify(&failure, recipient))
                }
                Err(_) => Err(DeliveryError::Temporary(format!(
                    "the SMTP server did not complete the transaction within {} s",
                    timeout.as_secs()
                ))),
            };
        }
    }

    /// Opens a connection and checks it (greeting, EHLO, TLS, AUTH), then
    /// closes it; for `postern mail test` style checks.
    pub async fn check_connection(&self) -> Result<(), DeliveryError> {
        let mut conn = self
            .open()
            .await
            .map_err(|SetupError(e)| DeliveryError::Temporary(e))?;
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.smtp.quit()).await;
        Ok(())
    }

    /// Closes idle connections politely (QUIT). Connections in use are
    /// closed when their transaction ends and they are dropped.
    pub async fn close(&self) {
        let idle: Vec<IdleConnection> = {
            let mut idle = lock(&self.inner.idle);
            idle.drain(..).collect()
        };
        for mut c in idle {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.conn.smtp.quit()).await;
        }
    }

    /// An idle connection that still answers (RSET, or with PIPELINING the
    /// transaction's own RSET), or a new one; and whether it was idle.
    async fn checkout(&self) -> Result<(Connection, bool), SetupError> {
        let inner = &*self.inner;
        loop {
            let candidate = lock(&inner.idle).pop_back();
            let Some(IdleConnection { mut conn, since }) = candidate else {
                break;
            };
            if since.elapsed() > inner.settings.idle_timeout {
                // Older ones are further front: drop them all.
                let stale: Vec<IdleConnection> = lock(&inner.idle).drain(..).collect();
                drop(stale);
                drop(conn);
                break;
            }
            if conn.pipelining {
                return Ok((conn, true));
            }
            // RSET clears any transaction state a refusal left behind and
            // proves the server is still there before the message is sent:
            // a dead connection is found here, with nothing handed over.
            let reset = conn.smtp.command(Rset);
            let reset = tokio::time::timeout(inner.settings.command_timeout, reset);
            if matches!(reset.await, Ok(Ok(_))) {
                return Ok((conn, true));
            }
        }
        Ok((self.open().await?, false))
    }

    fn checkin(&self, conn: Connection) {
        lock(&self.inner.idle).push_back(IdleConnection {
            conn,
            since: Instant::now(),
        });
    }

    /// Opens, secures and authenticates one connection, within the connect
    /// timeout. While the server is known to be unreachable, fails at once.
    async fn open(&self) -> Result<Connection, SetupError> {
        let inner = &*self.inner;
        if let Some((at, error)) = &*lock(&inner.down) {
            if at.elapsed() < DOWN_HOLD {
                return Err(SetupError(error.clone()));
            }
        }
        let timeout = inner.settings.connect_timeout;
        let result = match tokio::time::timeout(timeout, self.open_inner()).await {
            Ok(result) => result,
            Err(_) => Err(SetupError(format!(
                "could not connect to the SMTP server {} within {} s",
                inner.settings.display_url(),
                timeout.as_secs()
            ))),
        };
        let mut down = lock(&inner.down);
        match &result {
            Ok(_) => *down = None,
            Err(SetupError(e)) => *down = Some((Instant::now(), e.clone())),
        }
        result
    }

    async fn open_inner(&self) -> Result<Connection, SetupError> {
        let inner = &*self.inner;
        let s = &inner.settings;
        let server = s.display_url();
        let tcp = TcpStream::connect((s.host.as_str(), s.port))
            .await
            .map_err(|e| {
                SetupError(format!(
                    "could not connect to the SMTP server {server}: {e}"
                ))
            })?;
        // Without it every message waits ~40 ms for a delayed ACK: the body
        // and the final "." go out as two small writes.
        tcp.set_nodelay(true)
            .map_err(|e| SetupError(format!("could not set up the connection to {server}: {e}")))?;
        let stream: Box<dyn AsyncTokioStream> = match &inner.tls {
            Some(connector) => {
                let name =
                    rustls::pki_types::ServerName::try_from(s.host.clone()).map_err(|_| {
                        SetupError(format!("{} is not a valid TLS server name", s.host))
                    })?;
                let tls = connector.connect(name, tcp).await.map_err(|e| {
                    SetupError(format!("TLS with the SMTP server {server} failed: {e}"))
                })?;
                Box::new(TlsStream(tls))
            }
            None => Box::new(tcp),
        };
        let setup = |what: &str, e: SmtpError| {
            SetupError(format!(
                "{what} with the SMTP server {server} failed: {}",
                scrub(&e.to_string(), "")
            ))
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &inner.hello)
            .await
            .map_err(|e| setup("the greeting", e))?;
        if let Some(params) = &inner.starttls {
            // Required, never opportunistic: without STARTTLS the message
            // would cross the network in clear.
            if !conn.can_starttls() {
                let _ = conn.quit().await;
                return Err(SetupError(format!(
                    "the SMTP server {server} does not offer STARTTLS, which smtp+starttls:// \
                     requires; nothing was sent"
                )));
            }
            conn.starttls(params.clone(), &inner.hello)
                .await
                .map_err(|e| setup("STARTTLS", e))?;
        }
        // lettre keeps only the extensions it uses; ask again (before
        // AUTH, which a repeated EHLO could reset) for PIPELINING.
        let pipelining = conn
            .command(Ehlo::new(inner.hello.clone()))
            .await
            .map_err(|e| setup("EHLO", e))?
            .message()
            .any(|line| {
                line.split_whitespace()
                    .next()
                    .is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))
            });
        if let Some(credentials) = &inner.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| setup("authentication", e))?;
        }
        Ok(Connection {
            smtp: conn,
            pipelining,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data behind the lock: a panic elsewhere cannot leave it torn.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The SMTP step that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The RSET that starts a pipelined transaction.
    Reset,
    MailFrom,
    RcptTo,
    Data,
    Message,
}

impl Step {
    fn command(self) -> &'static str {
        match self {
            Self::Reset => "RSET",
            Self::MailFrom => "MAIL FROM",
            Self::RcptTo => "RCPT TO",
            Self::Data => "DATA",
            Self::Message => "the message",
        }
    }

    fn refused(self) -> &'static str {
        match self {
            Self::Reset => "the SMTP server refused to reset the connection",
            Self::MailFrom => "the SMTP server refused the sender",
            Self::RcptTo => "the SMTP server refused the recipient",
            Self::Data => "the SMTP server refused to take the message",
            Self::Message => "the SMTP server refused the message",
        }
    }
}

/// How a transaction failed.
enum TxFailure {
    /// The message needs an extension this server lacks; nothing was sent.
    Unsupported(&'static str),
    /// A command was refused, timed out or lost its connection.
    Smtp(Step, SmtpError),
}

/// One mail transaction (RFC 5321 §3.3): MAIL, RCPT for each recipient,
/// DATA and the message; with PIPELINING, RSET first and all four commands
/// in one write ([`pipelined`]). Unlike lettre's `send`, a refusal does not
/// close the connection.
async fn transaction(
    conn: &mut Connection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<Response, TxFailure> {
    let info = conn.smtp.server_info();
    let mut params = Vec::new();
    let non_ascii_address = envelope
        .to()
        .iter()
        .chain(envelope.from())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii_address {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err(TxFailure::Unsupported(
                "the address needs SMTPUTF8, which the SMTP server does not offer",
            ));
        }
        params.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err(TxFailure::Unsupported(
                "the message needs 8BITMIME, which the SMTP server does not offer",
            ));
        }
        params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let mail = Mail::new(envelope.from().cloned(), params);
    let at = |step: Step| move |e: SmtpError| TxFailure::Smtp(step, e);
    let smtp = &mut conn.smtp;
    if conn.pipelining {
        pipelined(smtp, mail, envelope).await?;
    } else {
        smtp.command(mail).await.map_err(at(Step::MailFrom))?;
        for to in envelope.to() {
            smtp.command(Rcpt::new(to.clone(), vec![]))
                .await
                .map_err(at(Step::RcptTo))?;
        }
        smtp.command(Data).await.map_err(at(Step::Data))?;
    }
    smtp.message(message).await.map_err(at(Step::Message))
}

/// RSET, MAIL, every RCPT and DATA in one write (RFC 2920 §3.1), then
/// their replies in order; `Ok` once DATA was accepted. Every reply is
/// read even after a refusal, so the connection stays in step for the
/// next message. Should the server accept DATA after refusing a
/// recipient, the connection is abandoned: ending the data would deliver
/// an empty message to the others.
async fn pipelined(
    smtp: &mut AsyncSmtpConnection,
    mail: Mail,
    envelope: &Envelope,
) -> Result<(), TxFailure> {
    let mut batch = format!("{Rset}{mail}");
    let mut steps = vec![Step::Reset, Step::MailFrom];
    for to in envelope.to() {
        batch.push_str(&Rcpt::new(to.clone(), vec![]).to_string());
        steps.push(Step::RcptTo);
    }
    batch.push_str(&Data.to_string());
    steps.push(Step::Data);
    // `command` writes the whole batch and reads the first reply.
    let mut first = Some(smtp.command(batch).await);
    let mut refused = None;
    for step in steps {
        let reply = match first.take() {
            Some(reply) => reply,
            None => smtp.read_response().await,
        };
        match reply {
            Ok(_) if step == Step::Data => {
                return match refused {
                    None => Ok(()),
                    Some(failure) => {
                        smtp.abort().await;
                        Err(failure)
                    }
                };
            }
            Ok(_) => {}
            // No reply at all: the stream is broken or out of step.
            Err(e) if e.status().is_none() => return Err(TxFailure::Smtp(step, e)),
            Err(e) => {
                refused.get_or_insert(TxFailure::Smtp(step, e));
            }
        }
    }
    // The loop returns on DATA's reply unless it was a refusal, which is
    // then in `refused`; the fallback only keeps this free of a panic.
    Err(refused.unwrap_or(TxFailure::Unsupported(
        "the SMTP server gave no reply to DATA",
    )))
}

/// Sorts a failed transaction into permanent (a 5xx reply, or a message
/// this server can never take) and temporary (4xx, lost connection), with
/// a text free of addresses, links and codes.
fn classify(failure: &TxFailure, recipient: &str) -> DeliveryError {
    let (step, e) = match failure {
        TxFailure::Unsupported(why) => return DeliveryError::Permanent((*why).to_owned()),
        TxFailure::Smtp(step, e) => (*step, e),
    };
    match e.status() {
        Some(code) => {
            let text = std::error::Error::source(e)
                .map(ToString::to_string)
                .unwrap_or_default();
            let text = format!("{}: {code} {}", step.refused(), scrub(&text, recipient));
            // A refused RSET says nothing about the message.
            if e.is_permanent() && step != Step::Reset {
                DeliveryError::Permanent(text)
            } else {
                DeliveryError::Temporary(text)
            }
        }
        None => DeliveryError::Temporary(format!(
            "the connection to the SMTP server failed during {}: {}",
            step.command(),
            scrub(&e.to_string(), recipient)
        )),
    }
}

/// Server text made safe to record and log: one line, at most
/// [`MAX_ERROR_TEXT`] characters, with anything that looks like an email
/// address (or is the recipient), a sign-in token or a 6-digit code replaced.
/// Servers quote the recipient in RCPT replies ("550 5.1.1 <bob@x>: unknown").
pub fn scrub(text: &str, recipient: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let recipient = recipient.to_ascii_lowercase();
    let local = recipient.split('@').next().unwrap_or_default();
    let words: Vec<String> = one_line
        .split_whitespace()
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let bare = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            if word.contains('@')
                || (!recipient.is_empty() && lower.contains(&recipient))
                || (local.len() >= 3 && lower.contains(local))
            {
                "[address]".to_owned()
            } else if lower.contains("pml_")
                || lower.contains("token=")
                || (bare.len() == 6 && bare.bytes().all(|b| b.is_ascii_digit()))
            {
                "[redacted]".to_owned()
            } else {
                word.to_owned()
            }
        })
        .collect();
    let mut out = words.join(" ");
    if out.chars().count() > MAX_ERROR_TEXT {
        out = out.chars().take(MAX_ERROR_TEXT).collect::<String>() + "…";
    }
    out
}

/// A rustls client for `smtps://`: Mozilla roots, aws-lc-rs, TLS 1.2+.
fn tls_connector() -> Result<tokio_rustls::TlsConnector, SmtpUrlError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| SmtpUrlError("could not set up TLS for the SMTP server"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// An implicit-TLS stream handed to lettre, which needs its own trait.
#[derive(Debug)]
struct TlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_security_port_and_user() {
        let cases = [
            ("smtp://127.0.0.1:2525", Security::Plain, 2525, None),
            ("smtp://relay.local", Security::Plain, 25, None),
            (
                "smtp+starttls://mail.example.com",
                Security::StartTls,
                587,
                None,
            ),
            (
                "smtps://postern%40example.com@mail.example.com",
                Security::Tls,
                465,
                Some("postern@example.com"),
            ),
        ];
        for (url, security, port, user) in cases {
            let s = SmtpSettings::from_url(&url.parse().unwrap(), None).unwrap();
            assert_eq!(
                (s.security, s.port, s.user.as_deref()),
                (security, port, user),
                "{url}"
            );
        }
        let s = SmtpSettings::from_url(&"smtps://u@[::1]:465".parse().unwrap(), None).unwrap();
        assert_eq!(s.host, "::1");
        assert_eq!(s.display_url(), "smtps://u@[::1]:465");
        assert!(SmtpSettings::from_url(&"smtps://u:p@h".parse().unwrap(), None).is_err());
        assert!(SmtpSettings::from_url(&"http://h".parse().unwrap(), None).is_err());
    }

    #[test]
    fn user_and_password_go_together() {
        let url = "smtps://u@mail.example.com".parse().unwrap();
        let s = SmtpSettings::from_url(&url, None).unwrap();
        assert!(Smtp::new(s).is_err());
        let url = "smtps://mail.example.com".parse().unwrap();
        let s = SmtpSettings::from_url(&url, Some(SecretString::from("p"))).unwrap();
        assert!(Smtp::new(s).is_err());
        let url = "smtps://u@mail.example.com".parse().unwrap();
        let s = SmtpSettings::from_url(&url, Some(SecretString::from("p"))).unwrap();
        assert!(format!("{s:?}").contains("redacted"));
        assert!(!format!("{s:?}").contains("\"p\""));
        assert!(Smtp::new(s).is_ok());
    }

    #[test]
    fn error_text_keeps_no_address_link_or_code() {
        let text = "5.1.1 <Alice.Smith@Example.com>: Recipient address rejected:\r\n \
                    User unknown alice.smith https://x/verify-email?token=pml_abc 482913 queued";
        let out = scrub(text, "alice.smith@example.com");
        for leak in ["Alice", "alice", "example", "pml_", "482913", "\r", "\n"] {
            assert!(!out.contains(leak), "{leak:?} in {out:?}");
        }
        assert!(out.contains("Recipient address rejected"), "{out}");
        assert!(scrub(&"x".repeat(1000), "").chars().count() <= MAX_ERROR_TEXT + 1);
    }
}
