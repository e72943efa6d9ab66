//! A tiny HTTP health probe for images without a shell or curl (the nginx
//! web image): `httpprobe [ADDR] [PATH]` GETs PATH on ADDR and exits 0 on a
//! 2xx answer, 1 otherwise. Defaults: 127.0.0.1:8080 and /healthz.
//! Built with plain `rustc` in deploy/docker/web.Dockerfile; std only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let path = args.next().unwrap_or_else(|| "/healthz".into());
    match probe(&addr, &path) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("httpprobe: {addr}{path} did not answer 2xx");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("httpprobe: {addr}{path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn probe(addr: &str, path: &str) -> std::io::Result<bool> {
    let target: SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")))?;
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    // "HTTP/1.1 200"
    Ok(head.starts_with(b"HTTP/1.") && head[9] == b'2')
}
