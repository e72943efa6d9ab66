//! `<binary> healthcheck`: the container HEALTHCHECK without curl or a shell.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the probe waits for an answer: a container whose service cannot
/// answer `/healthz` within this is reported unhealthy.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// GETs `/healthz` on `addr` (a listen address; `0.0.0.0` means localhost)
/// and exits 0 on `200`, 1 otherwise.
pub async fn probe(addr: &str) -> ExitCode {
    let Ok(mut target) = addr.parse::<SocketAddr>() else {
        eprintln!("healthcheck: invalid address {addr}");
        return ExitCode::FAILURE;
    };
    if target.ip().is_unspecified() {
        target.set_ip([127, 0, 0, 1].into());
    }
    let check = async {
        let mut stream = TcpStream::connect(target).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head.starts_with(b"HTTP/1.1 200"))
    };
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        other => {
            eprintln!("healthcheck: {target} not healthy ({other:?})");
            ExitCode::FAILURE
        }
    }
}
