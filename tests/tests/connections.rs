//! Connection limits (issue 19, "honest under overload"): past
//! `GATEWAY_MAX_CONNECTIONS` a new connection is answered `503` with
//! `Retry-After` and closed, except the liveness probe and the metrics
//! scrape; a connection that sends no request within
//! `HEADER_READ_TIMEOUT_MS` (a silent client, an idle keep-alive) is
//! closed, which frees its slot. The notifier's
//! WebSockets count against `NOTIFIER_MAX_CONNECTIONS` for as long as they
//! are open. Nothing here measures how fast.

use std::time::Duration;

use system_tests::Stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX: usize = 2;
const HEADER_TIMEOUT: Duration = Duration::from_millis(400);
/// How long a silent connection may stay open at most before the test fails
/// (the timeout, plus a busy machine's slack).
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Everything the server sends until it closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(CLOSE_WAIT, stream.read_to_end(&mut got))
        .await
        .expect("the gateway closes the connection")
        .expect("read");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn connections_past_the_cap_are_refused_and_silent_ones_are_closed() {
    let stack = Stack::start_with(|g| {
        g.connections = shared::listen::Limits {
            max_connections: MAX,
            header_read_timeout: HEADER_TIMEOUT,
        };
    })
    .await;
    let addr = stack.api.trim_start_matches("http://").to_owned();
    // The readiness checks' pooled connection closes once idle too long.
    tokio::time::sleep(HEADER_TIMEOUT * 3).await;

    let mut silent = Vec::new();
    for _ in 0..MAX {
        silent.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    // Past the cap: refused once the request's head is in, whatever it asks.
    let mut extra = TcpStream::connect(&addr).await.expect("connect");
    extra
        .write_all(b"GET /v1/accounts HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = read_to_close(&mut extra).await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole response");
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert!(head.contains("retry-after: 1"), "{head}");
    assert!(head.contains("application/problem+json"), "{head}");
    let problem: serde_json::Value = serde_json::from_str(body).expect("problem+json");
    assert_eq!(problem["status"], 503);
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or("")
            .ends_with("/connections")
    );

    // A full server is alive (a liveness probe must not restart it) and
    // still scraped (its figures matter most now) but not ready (a load
    // balancer sends new clients elsewhere).
    for (path, status) in [("/healthz", "200"), ("/metrics", "200"), ("/readyz", "503")] {
        let mut probe = TcpStream::connect(&addr).await.expect("connect");
        probe
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let answer = read_to_close(&mut probe).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{path}: {answer}"
        );
        if path == "/metrics" {
            // The scrape shows the refusal above, counted while full.
            assert!(
                answer.contains("http_server_connections_refused_total{answered=\"yes\"}"),
                "{answer}"
            );
        }
    }

    // The silent connections are closed without an answer...
    for mut s in silent {
        let got = read_to_close(&mut s).await;
        assert!(!got.contains("200 OK"), "{got}");
    }
    // ...which frees their slots: a client is served again.
    let client = reqwest::Client::new();
    testkit::eventually(CLOSE_WAIT, "a served request", || async {
        let r = client
            .get(format!("{}/healthz", stack.api))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    stack.stop().await;
}

#[tokio::test]
async fn a_request_sent_slowly_within_the_deadline_is_served() {
    let stack = Stack::start_with(|g| {
        g.connections.header_read_timeout = Duration::from_secs(5);
    })
    .await;
    let addr = stack.api.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.write_all(b"host: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    stack.stop().await;
}

#[tokio::test]
async fn open_websockets_count_against_the_notifiers_cap() {
    let stack = Stack::start_adjusted(
        |_| {},
        |n| {
            n.connections = shared::listen::Limits {
                max_connections: 1,
                header_read_timeout: HEADER_TIMEOUT,
            }
        },
    )
    .await;
    // The readiness check's idle connection to the notifier closes first.
    let token = stack.login("alice").await;
    let ws = testkit::eventually(CLOSE_WAIT, "a WebSocket", || async {
        stack.try_connect_ws(&token).await.ok()
    })
    .await;
    // The socket is upgraded (hyper is done with it) and still holds the
    // only slot.
    assert_eq!(stack.try_connect_ws(&token).await.err(), Some(503));
    ws.close().await;
    testkit::eventually(CLOSE_WAIT, "the slot back", || async {
        stack.try_connect_ws(&token).await.ok()
    })
    .await;
    stack.stop().await;
}
