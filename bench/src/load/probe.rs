//! An outside client's view of shedding in the overload run: one blocking
//! connection on its own OS thread, a request every [`INTERVAL`], each
//! answer timed from the moment its request was written.
//!
//! Why beside the generator's own figure (`shed_ms`): the generator shares
//! the two cores with everything it loads, and in the overload run it is
//! short of CPU itself (its lag alone reached p99 93–223 ms), so its figure
//! mixes the gateway's answer with the generator's own wait to read it. A
//! thread asleep in a blocking read is woken by the kernel when the answer
//! arrives, as a client elsewhere would be. It still shares the machine:
//! what it sees is how long a gateway on a saturated machine takes to
//! answer, without the generator's backlog. Reported, not judged: the
//! target is about every excess request, the generator's.
//!
//! Its requests carry no valid token: while the gateway sheds, the `503`
//! comes before any authentication (`gateway/src/shed_early.rs`); between
//! shedding spells the answer is a `401`. Neither changes anything; only
//! `503`/`429` answers are timed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::Latency;
use super::recorder::{new_hist, record};

/// One request per this long (20 a second: a sample, not more load).
const INTERVAL: Duration = Duration::from_millis(50);
/// Longest wait for an answer, or to connect, before starting over.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The probe while it runs.
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Mutex<Histogram<u64>>>,
}

/// A running probe against the gateway at `gateway`.
pub fn start(gateway: SocketAddr) -> Probe {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || run(gateway, &flag));
    Probe { stop, thread }
}

impl Probe {
    /// Stops the probe: its shed answers' latencies (`None`: it saw none).
    pub fn finish(self) -> Option<Latency> {
        self.stop.store(true, Ordering::SeqCst);
        let h = self.thread.join().ok()?;
        let h = h.into_inner().unwrap_or_else(|e| e.into_inner());
        (!h.is_empty()).then(|| Latency::from_hist(&h))
    }
}

fn run(gateway: SocketAddr, stop: &AtomicBool) -> Mutex<Histogram<u64>> {
    let shed = new_hist();
    let request = request();
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::Relaxed) {
        let next = Instant::now() + INTERVAL;
        if conn.is_none() {
            conn = connect(gateway).ok();
        }
        if let Some(c) = conn.as_mut() {
            let sent = Instant::now();
            match exchange(c, &request) {
                Ok(503 | 429) => record(&shed, sent.elapsed()),
                Ok(_) => {}
                // Closed or stuck: a fresh connection next time.
                Err(_) => conn = None,
            }
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    shed
}

fn connect(gateway: SocketAddr) -> std::io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect_timeout(&gateway, IO_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    Ok(BufReader::new(stream))
}

/// A transfer request the gateway cannot take: no valid token.
fn request() -> Vec<u8> {
    let body = r#"{"from_account":"00000000-0000-0000-0000-000000000001","to_account":"00000000-0000-0000-0000-000000000002","amount":"1.00","currency":"EUR"}"#;
    format!(
        "POST /v1/transfers HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer probe\r\n\
         Idempotency-Key: bench-probe\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Writes `request` and reads the whole answer: its status.
fn exchange(conn: &mut BufReader<TcpStream>, request: &[u8]) -> std::io::Result<u16> {
    conn.get_mut().write_all(request)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP answer");
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let mut length = 0usize;
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Err(bad());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().map_err(|_| bad())?;
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body)?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    /// Two answers on one kept-alive connection: each is read whole, so
    /// the second status is the second answer's, not the first one's body.
    #[test]
    fn answers_are_read_whole_on_one_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            for answer in [
                "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 12\r\n\r\nHTTP/1.1 200",
                "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n",
            ] {
                let _ = s.read(&mut buf).unwrap();
                s.write_all(answer.as_bytes()).unwrap();
            }
        });
        let mut conn = connect(addr).unwrap();
        let request = request();
        assert_eq!(exchange(&mut conn, &request).unwrap(), 503);
        assert_eq!(exchange(&mut conn, &request).unwrap(), 401);
        server.join().unwrap();
    }
}
