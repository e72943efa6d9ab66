//! The gateway's connection limits (issue 19, "honest under overload"):
//! past `GATEWAY_MAX_CONNECTIONS` a new connection is answered `503` with
//! `Retry-After` and closed; a connection that sends no request within
//! `HEADER_READ_TIMEOUT_MS` (a silent client, an idle keep-alive) is closed,
//! which frees its slot. Nothing here measures how fast.

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
        g.connections = gateway::listen::Limits {
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
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
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
