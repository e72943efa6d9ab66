//! Encryption in transit as the services do it (shared::tls), against a real
//! nats-server and redis-server started here with TLS only, on certificates
//! from deploy/scripts/gen-certs.sh (what `make setup` uses): the services'
//! connections work with the CA, a plaintext client is refused, a server
//! signed by another CA is refused. The production stack itself is checked
//! by the deployment test (deploy/scripts/deploy-test-tls.sh).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Only a guard against hanging forever on a broken server; the assertions
/// are about what the connection does, never how fast.
const GUARD: Duration = Duration::from_secs(30);

/// A scratch directory with a CA and server certificates (gen-certs.sh).
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn generate(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("bank-tls-{tag}-{}", testkit::unique()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/scripts/gen-certs.sh");
        let out = Command::new(script)
            .arg(&dir)
            .output()
            .expect("run gen-certs.sh");
        assert!(
            out.status.success(),
            "gen-certs.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Certs { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(program: &str, args: &[&str]) -> Server {
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program}: {e} (Debian: apt-get install nats-server redis-server)")
        });
    Server(child)
}

/// Waits until something listens on `port` (the server has started).
async fn listening(port: u16) {
    tokio::time::timeout(GUARD, async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("server listening");
}

fn nats_tls(certs: &Certs, port: u16) -> Server {
    let (cert, key) = (certs.path("nats.crt"), certs.path("nats.key"));
    spawn(
        "nats-server",
        &[
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--tls",
            "--tlscert",
            cert.to_str().unwrap(),
            "--tlskey",
            key.to_str().unwrap(),
        ],
    )
}

fn redis_tls(certs: &Certs, port: u16) -> Server {
    let path = |n: &str| certs.path(n).to_str().unwrap().to_owned();
    spawn(
        "redis-server",
        &[
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &path("redis.crt"),
            "--tls-key-file",
            &path("redis.key"),
            "--tls-ca-cert-file",
            &path("ca.crt"),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_over_tls_with_the_ca_plaintext_and_strangers_refused() {
    let certs = Certs::generate("nats");
    let other = Certs::generate("nats-other");
    let port = testkit::free_addr().port();
    let _server = nats_tls(&certs, port);
    listening(port).await;
    // "localhost": the host name the certificate is checked against.
    let url = format!("nats://localhost:{port}");

    let client = tokio::time::timeout(
        GUARD,
        shared::tls::nats_options_with(
            async_nats::ConnectOptions::new(),
            Some(certs.path("ca.crt")),
        )
        .connect(&url),
    )
    .await
    .expect("guard")
    .expect("TLS connection verified against the CA");
    client.publish("tls.test", "over tls".into()).await.unwrap();
    client.flush().await.expect("round trip over TLS");

    // A plaintext client: the server's answer to its CONNECT.
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut stream = BufReader::new(stream);
    let mut info = String::new();
    stream.read_line(&mut info).await.unwrap();
    assert!(info.contains("\"tls_required\":true"), "{info}");
    stream
        .get_mut()
        .write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    let _ = tokio::time::timeout(GUARD, stream.read_line(&mut answer)).await;
    // nats-server 2.9 closes the connection (TLS handshake error), newer
    // ones may say -ERR first; a PONG would mean plaintext was served.
    assert!(!answer.contains("PONG"), "plaintext answered: {answer:?}");

    // A server certificate from another CA is not trusted.
    let stranger = tokio::time::timeout(
        GUARD,
        shared::tls::nats_options_with(
            async_nats::ConnectOptions::new(),
            Some(other.path("ca.crt")),
        )
        .connect(&url),
    )
    .await
    .expect("guard");
    assert!(stranger.is_err(), "connected with the wrong CA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_with_the_ca_plaintext_and_strangers_refused() {
    let certs = Certs::generate("redis");
    let other = Certs::generate("redis-other");
    let port = testkit::free_addr().port();
    let _server = redis_tls(&certs, port);
    listening(port).await;
    // redis://, as in REDIS_URL: the CA turns it into TLS.
    let url = format!("redis://localhost:{port}");

    let ping = |client: redis::Client| async move {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    let client = shared::tls::redis_client_with(&url, Some(certs.path("ca.crt"))).unwrap();
    let pong = tokio::time::timeout(GUARD, ping(client))
        .await
        .expect("guard");
    assert_eq!(
        pong.expect("TLS connection verified against the CA"),
        "PONG"
    );

    let plain = redis::Client::open(url.as_str()).unwrap();
    let refused = tokio::time::timeout(GUARD, ping(plain))
        .await
        .expect("guard");
    assert!(refused.is_err(), "plaintext answered: {refused:?}");

    let stranger = shared::tls::redis_client_with(&url, Some(other.path("ca.crt"))).unwrap();
    let refused = tokio::time::timeout(GUARD, ping(stranger))
        .await
        .expect("guard");
    assert!(refused.is_err(), "connected with the wrong CA");
}
