//! The HTTP/1.1 server loop: accepts connections up to a cap, gives each a
//! header-read deadline, and shuts down gracefully.
//!
//! `axum::serve` sets no timer, so hyper waits forever for a request head:
//! a connection that sends half a head stays open as long as its sender
//! likes, and enough of them exhaust the file descriptors (slowloris). This
//! loop serves the same router with hyper directly, with:
//!
//! * [`HEADER_READ_TIMEOUT`]: the whole request head must arrive within 10 s
//!   of the connection opening (or of the previous answer on a kept-alive
//!   connection), else the connection is closed;
//! * a cap on open connections ([`ServeOptions::max_connections`]): at the
//!   cap the loop stops accepting, so further clients wait in the kernel's
//!   backlog until a connection closes rather than being refused;
//! * the whole-request deadline of
//!   [`request_deadline`](crate::middleware::request_deadline), in the router.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tower::ServiceExt as _;

/// How long a client has to send a complete request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections open at once when `POSTERN_MAX_CONNECTIONS` is not set: well
/// under the usual soft limit of 1024 open files, leaving room for the
/// database pool, SMTP connections and files.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// How the server treats connections.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops
/// accepting, lets in-flight requests finish and closes idle connections
/// (graceful shutdown). Each request carries `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    // Connection tasks watch `stopping`; each holds a clone of `open`, so
    // `closed` yields `None` once the last one has finished.
    let (stop, stopping) = watch::channel(false);
    let (open, mut closed) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let mut stopping = stopping.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => log_connection_end(result, peer),
                () = async {
                    // The guard `wait_for` returns must not live across an await.
                    let _ = stopping.wait_for(|s| *s).await;
                } => {
                    conn.as_mut().graceful_shutdown();
                    log_connection_end(conn.await, peer);
                }
            }
            drop((slot, open));
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(open);
    let _ = closed.recv().await;
    Ok(())
}

fn log_connection_end(result: hyper::Result<()>, peer: SocketAddr) {
    if let Err(e) = result {
        // Timeouts, resets and malformed requests: the client's doing.
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}

/// After a failed `accept`: errors about one connection are skipped; others
/// (out of file descriptors) are logged, then accepting pauses a second so
/// the loop does not spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "could not accept a connection; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
