//! Accepting connections: a cap on how many are open at once, and a
//! deadline for each request's headers (which also closes idle keep-alive
//! connections).
//!
//! Why not `axum::serve`: it accepts every connection and never times one
//! out. In `make bench`'s overload run the open-loop client kept ~4,600
//! connections open to the gateway, which held 160–206 MiB for them; a
//! client that opens sockets and sends nothing would keep each one forever.
//! The gateway and the notifier both serve through here; a notifier's
//! WebSocket keeps its slot for as long as it is open.
//!
//! Past the cap a new connection gets the same kind of refusal as a shed
//! request (`503`, problem+json, `Retry-After`) as soon as its request's
//! head has arrived, and is closed (except the liveness probe and the
//! metrics scrape, see [`refuse`]): nothing of the request is parsed or
//! handled, so it costs next to nothing and changes nothing. Refusals in
//! progress are bounded too; beyond that bound a connection is closed
//! unanswered. Served connections get `ConnectInfo` as before and shut
//! down gracefully: on the signal, listening stops, idle connections close
//! and in-flight requests finish.
//!
//! HTTP/1.1 only. `axum::serve` also took cleartext HTTP/2 with prior
//! knowledge, which nothing here uses (browsers speak HTTP/2 only over TLS,
//! which the proxy in front terminates), and which hyper's auto-detection
//! would let a silent client hold open: it waits for the first bytes with
//! no deadline, before the header timeout starts.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::config::{self, ConfigError};
use crate::problem::Problem;
use crate::shutdown::Shutdown;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use metrics::Gauge;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt as _;

/// Refusals being written at once; beyond it, a connection over the cap is
/// closed without an answer (a flood must not grow another queue).
const REFUSALS_MAX: usize = 256;
/// How long a refused client has to send its request's head and hang up.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Bytes of an unwanted request's head read before the refusal is sent
/// (and as many again after it, see [`refuse`]).
const REFUSAL_DRAIN_BYTES: usize = 16 * 1024;

/// The liveness probe's request line, answered [`ALIVE`] even when full.
const LIVENESS_REQUEST: &[u8] = b"GET /healthz ";
/// The metrics scrape's request line, answered with the metrics even when
/// full. As long as [`LIVENESS_REQUEST`]: [`refuse`] compares one prefix.
const METRICS_REQUEST: &[u8] = b"GET /metrics ";
const _: () = assert!(METRICS_REQUEST.len() == LIVENESS_REQUEST.len());
const ALIVE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncache-control: no-store\r\n\
connection: close\r\ncontent-length: 3\r\n\r\nok\n";

/// How many connections a server serves, and how long it waits for them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections served at once, upgraded ones (WebSockets)
    /// included (`GATEWAY_MAX_CONNECTIONS`, `NOTIFIER_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Time a client has to send a request's headers, counted from
    /// connecting or from the previous response (`HEADER_READ_TIMEOUT_MS`):
    /// a keep-alive connection idle for longer is closed.
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    /// 8,192 connections. Each open connection holds about 26 KiB in the
    /// gateway (hyper's read and write buffers, mostly; 4,600 connections
    /// took 160 MiB in `make bench`'s overload run), so the cap keeps the
    /// gateway near 250 MiB, inside its 512 MiB container limit, while
    /// nginx in front opens at most 4,096. A lower cap costs more than it
    /// saves when clients open a connection per concurrent request: at
    /// 1,024 that overload run accepted 3,333/s instead of 5,119/s, every
    /// refused connection being replaced by a new one (README, Security).
    /// 10 s for headers: a browser sends them at once, and an idle
    /// keep-alive connection must not keep its slot for long.
    fn default() -> Self {
        Self {
            max_connections: 8_192,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// The cap from `max_var` (else `default_max`) and the deadline from
    /// `HEADER_READ_TIMEOUT_MS` (else the default's).
    pub fn from_env(max_var: &str, default_max: usize) -> Result<Self, ConfigError> {
        let default_timeout = Self::default().header_read_timeout.as_millis() as u64;
        Ok(Self {
            max_connections: config::parse(max_var, default_max)?,
            header_read_timeout: config::millis("HEADER_READ_TIMEOUT_MS", default_timeout)?,
        })
    }
}

/// Serves `app` on `listener` until `shutdown`, then waits for the
/// connections' in-flight requests to finish (an upgraded connection, a
/// WebSocket, is its handler's to close: it is not waited for).
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: Shutdown) {
    // Bounded so that any configured number is a valid permit count.
    let max = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let open = Arc::new(Semaphore::new(max as usize));
    let serving = Arc::new(Semaphore::new(max as usize));
    let refusals = Arc::new(Semaphore::new(REFUSALS_MAX));
    let refusal: Arc<[u8]> = refusal_bytes().into();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut stop = shutdown.clone();
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            let Ok(slot) = refusals.clone().try_acquire_owned() else {
                metrics::counter!("http_server_connections_refused_total", "answered" => "no")
                    .increment(1);
                continue;
            };
            metrics::counter!("http_server_connections_refused_total", "answered" => "yes")
                .increment(1);
            let refusal = refusal.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(REFUSAL_TIMEOUT, refuse(stream, &refusal)).await;
                drop(slot);
            });
            continue;
        };
        let service = app
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        // Held while hyper serves the connection (not by an upgraded socket,
        // which its handler closes on shutdown): what shutdown waits for.
        // Never short: a connection task holds one only while its socket
        // holds one of `open`'s, and both have `max` permits.
        let Ok(serving) = serving.clone().try_acquire_owned() else {
            continue;
        };
        let stream = Counted::new(stream, permit);
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stop.wait() => {
                    // Finish the request in flight, take no other.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::trace!(%peer, error = %e, "connection ended");
            }
            drop(serving);
        });
    }
    drop(listener);
    // Every connection task holds a permit until it ends: all of them back
    // means every request in flight has been answered.
    let _ = serving.acquire_many(max).await;
}

/// A served socket, counted until it closes: after an upgrade (a WebSocket)
/// hyper is done with the connection but the socket lives on, and still
/// holds its slot.
struct Counted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    open: Gauge,
}

impl Counted {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit) -> Self {
        let open = metrics::gauge!("http_server_connections_open");
        open.increment(1.0);
        Self {
            stream,
            _permit: permit,
            open,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The answer to a connection over the cap, built once.
fn refusal_bytes() -> Vec<u8> {
    let problem = Problem::new(
        503u16,
        "connections",
        "Too many connections",
        "the server is serving as many connections as it allows; nothing was read, retry in 1 s",
    )
    .retry_after(1);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    [head.into_bytes(), body].concat()
}

/// Reads the request's head, answers, then reads (and drops) what else the
/// client sends until it hangs up. An answer before the request would be
/// an unsolicited response, which clients treat as a broken connection
/// rather than a `503`; closing with unread bytes would reset the
/// connection and could destroy the answer before it was read.
///
/// The answer is the refusal, except to `GET /healthz`: a full server is
/// alive (a liveness probe failing here would restart it at the worst
/// moment), and to `GET /metrics`: a full server is when operators most
/// need its figures (the shedding, the open connections), and a scrape
/// refused then leaves a gap in exactly that part of the dashboard.
/// `/readyz` gets the refusal, so a load balancer sends new clients
/// elsewhere until connections free up. Both exceptions stay within the
/// refusals' bound ([`REFUSALS_MAX`]); `/metrics` is internal (the proxy
/// in front does not route it).
async fn refuse(mut stream: TcpStream, refusal: &[u8]) {
    let mut buf = [0u8; 4096];
    let mut read = 0;
    // The request line's start, and the last bytes read to find the
    // head's end across reads.
    let mut start: Vec<u8> = Vec::with_capacity(LIVENESS_REQUEST.len());
    let mut window: Vec<u8> = Vec::with_capacity(buf.len() + 3);
    while read < REFUSAL_DRAIN_BYTES {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        read += n;
        let room = LIVENESS_REQUEST.len() - start.len();
        start.extend_from_slice(&buf[..n.min(room)]);
        window.extend_from_slice(&buf[..n]);
        if window.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        window.drain(..window.len().saturating_sub(3));
    }
    let metrics;
    let answer = if start == LIVENESS_REQUEST {
        ALIVE
    } else if start == METRICS_REQUEST {
        metrics = metrics_answer(&crate::metrics::render());
        &metrics
    } else {
        refusal
    };
    if stream.write_all(answer).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    while read < 2 * REFUSAL_DRAIN_BYTES {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => read += n,
        }
    }
}

/// A whole `200` carrying `text` in Prometheus's text format, closing.
fn metrics_answer(text: &str) -> Vec<u8> {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {}\r\ncache-control: no-store\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        crate::metrics::CONTENT_TYPE,
        text.len()
    );
    [head.as_bytes(), text.as_bytes()].concat()
}

/// Per-connection errors (the peer already gone) are skipped; others (out
/// of file descriptors) pause accepting for a moment instead of spinning.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; pausing 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_one_complete_http_response() {
        let bytes = refusal_bytes();
        let text = String::from_utf8(bytes).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains("\r\nretry-after: 1\r"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let problem: Problem = serde_json::from_str(body).expect("problem+json");
        assert_eq!(problem.status, 503);
        assert!(problem.kind.ends_with("/connections"));
    }

    #[test]
    fn the_metrics_answer_is_one_complete_http_response() {
        let text = "# TYPE x counter\nx 1\n";
        let bytes = metrics_answer(text);
        let answer = String::from_utf8(bytes).expect("utf-8");
        let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}", text.len())));
        assert_eq!(body, text);
    }
}
