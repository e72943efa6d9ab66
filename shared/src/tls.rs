//! Encryption in transit to NATS and Redis, switched on by a CA file.
//!
//! Development talks plaintext to the services on localhost; production
//! (deploy/compose.prod.yaml, deploy/k8s) sets one variable per service:
//!
//! - `NATS_CA_FILE`: TLS is required (a `nats://` URL included) and the
//!   server's certificate must chain to this PEM CA.
//! - `REDIS_CA_FILE`: TLS (a `redis://` URL is taken as `rediss://`), the
//!   server's certificate must chain to this PEM CA and name the URL's host.
//!
//! PostgreSQL needs nothing here: sqlx reads libpq's own `PGSSLMODE` and
//! `PGSSLROOTCERT` (or `?sslmode=verify-full&sslrootcert=...` in the URL).
//!
//! The file is read when the variable is set: a missing or unreadable CA is
//! a connection error, never a silent fallback to plaintext.

use std::path::PathBuf;

/// The PEM CA NATS servers must chain to (TLS required when set).
pub const NATS_CA_FILE: &str = "NATS_CA_FILE";
/// The PEM CA Redis servers must chain to (TLS when set).
pub const REDIS_CA_FILE: &str = "REDIS_CA_FILE";

fn ca_file(name: &str) -> Option<PathBuf> {
    crate::config::var(name).map(PathBuf::from)
}

/// `options` with TLS required and `NATS_CA_FILE` as the only trusted root,
/// when that variable is set; unchanged otherwise.
pub fn nats_options(options: async_nats::ConnectOptions) -> async_nats::ConnectOptions {
    nats_options_with(options, ca_file(NATS_CA_FILE))
}

/// [`nats_options`] with the CA given instead of read from the environment.
pub fn nats_options_with(
    options: async_nats::ConnectOptions,
    ca: Option<PathBuf>,
) -> async_nats::ConnectOptions {
    match ca {
        Some(path) => options.require_tls(true).add_root_certificates(path),
        None => options,
    }
}

/// A Redis client for `url`: over TLS verified against `REDIS_CA_FILE` when
/// that variable is set, as `redis::Client::open` would make it otherwise.
pub fn redis_client(url: &str) -> redis::RedisResult<redis::Client> {
    redis_client_with(url, ca_file(REDIS_CA_FILE))
}

/// [`redis_client`] with the CA given instead of read from the environment.
pub fn redis_client_with(url: &str, ca: Option<PathBuf>) -> redis::RedisResult<redis::Client> {
    let Some(path) = ca else {
        return redis::Client::open(url);
    };
    let root = std::fs::read(&path).map_err(|e| {
        redis::RedisError::from((
            redis::ErrorKind::Io,
            "REDIS_CA_FILE unreadable",
            format!("{}: {e}", path.display()),
        ))
    })?;
    // A scheme change only: user, password, host, port and database stay.
    let url = match url.strip_prefix("redis://") {
        Some(rest) => format!("rediss://{rest}"),
        None => url.to_owned(),
    };
    redis::Client::build_with_tls(
        url.as_str(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root),
        },
    )
}

/// Why a service could not connect to NATS.
#[derive(Debug, thiserror::Error)]
pub enum NatsConnectError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// `url` has its password redacted.
    #[error("connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
}

/// Connects a service to NATS as the server's permissions expect it
/// (deploy/nats/users.conf): its own user (the URL's `user:password`, or
/// `NATS_USER`/`NATS_PASSWORD`), its own reply-inbox prefix, TLS when
/// `NATS_CA_FILE` is set; retries until the server first answers.
pub async fn nats_connect(
    name: &str,
    url: &str,
    inbox_prefix: &str,
) -> Result<async_nats::Client, NatsConnectError> {
    let (credentials, addr) = crate::config::nats_credentials(url)?;
    let mut options = nats_options(async_nats::ConnectOptions::new())
        .name(name)
        .custom_inbox_prefix(inbox_prefix);
    if let Some((user, password)) = credentials {
        options = options.user_and_password(user, password);
    }
    options
        .retry_on_initial_connect()
        .connect(&addr)
        .await
        .map_err(|source| NatsConnectError::Connect {
            url: crate::config::redact_url(url),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_without_a_ca() {
        let client = redis_client_with("redis://127.0.0.1:6379", None).unwrap();
        assert!(matches!(
            client.get_connection_info().addr(),
            redis::ConnectionAddr::Tcp(..)
        ));
    }

    #[test]
    fn a_ca_turns_redis_into_rediss() {
        let dir = std::env::temp_dir().join(format!("bank-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.crt");
        // Any PEM certificate parses here; the handshake is what verifies it.
        std::fs::write(&ca, TEST_CA).unwrap();
        let client = redis_client_with("redis://u:p@redis:6379/0", Some(ca)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        match client.get_connection_info().addr() {
            redis::ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                ..
            } => {
                assert_eq!((host.as_str(), *port, *insecure), ("redis", 6379, false));
            }
            other => panic!("not TLS: {other:?}"),
        }
    }

    #[test]
    fn a_missing_ca_is_an_error_not_plaintext() {
        let missing = PathBuf::from("/nonexistent/ca.crt");
        assert!(redis_client_with("redis://127.0.0.1:6379", Some(missing)).is_err());
    }

    /// A throwaway self-signed CA (openssl req -x509 -newkey ec ...), only
    /// parsed, never trusted by anything.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBgzCCASmgAwIBAgIUGBq0nyxH4OEJONsFjtCLmCqMizswCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMYmFuay10ZXN0LWNhMB4XDTI2MTEzMDE1NDkzMVoXDTM2MTEy
NzE1NDkzMVowFzEVMBMGA1UEAwwMYmFuay10ZXN0LWNhMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEWWnw/3LvVNGAvTo1A4iSIUOd9ZzCkEnYk1O9n/1LWEaeNA3E
pMywZCVkhx+wNIIvnQW5iZky8QmY8gvW7ynnT6NTMFEwHQYDVR0OBBYEFIsFR8QI
o4R93ad78fKUZ0Smr4LuMB8GA1UdIwQYMBaAFIsFR8QIo4R93ad78fKUZ0Smr4Lu
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgdRLxo4BRRpH6bff+
rwX+2yfsDX75nR5AnBW9P+7g/vICIQDP1lpfmHDhkPeKaQeuMV6dKqGlZbLOtIKw
GtMxbG+O2A==
-----END CERTIFICATE-----
";
}
