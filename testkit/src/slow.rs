//! A server that answers late: a TCP proxy that holds each chunk of the
//! server's replies for a while before passing it on.
//!
//! Why: "Redis is slow" must be a fact a test can rely on. A client
//! timeout of zero is not one: tokio's timer fires on the next millisecond
//! tick, and a local Redis often answers before it.

use std::net::SocketAddr;
use std::time::Duration;

use redis::{ConnectionAddr, IntoConnectionInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest chunk passed on at once.
const CHUNK: usize = 64 * 1024;

/// The URL of a proxy in front of the test Redis ([`crate::redis_url`]) that
/// holds every reply for `delay`: a Redis that takes `delay` to answer each
/// call (a pipelined call's replies may share one wait). The proxy runs on
/// the caller's runtime and ends with it.
pub async fn slow_redis(delay: Duration) -> String {
    let url = crate::redis_url();
    let info = url.as_str().into_connection_info().expect("REDIS_URL");
    let ConnectionAddr::Tcp(host, port) = info.addr() else {
        panic!("slow_redis needs a plain TCP REDIS_URL, not {url}");
    };
    let target = format!("{host}:{port}");
    let proxy = slow_proxy(target.clone(), delay).await;
    assert!(
        url.contains(&target),
        "REDIS_URL {url} must spell its host:port for slow_redis"
    );
    url.replacen(&target, &proxy.to_string(), 1)
}

/// Listens on a loopback port and forwards each connection to `target`,
/// requests at once, replies `delay` late.
pub async fn slow_proxy(target: String, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(forward(client, target.clone(), delay));
        }
    });
    addr
}

async fn forward(client: TcpStream, target: String, delay: Duration) {
    let Ok(server) = TcpStream::connect(&target).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = tokio::io::copy(&mut client_read, &mut server_write);
    let replies = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            tokio::time::sleep(delay).await;
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = requests => {}
        () = replies => {}
    }
}
