//! The pieces of HTTP under [`super::Api`]: bodies, query encoding, which
//! failures are worth a retry, and turning answers into values or problems.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use http::header::RETRY_AFTER;
use http::{HeaderMap, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use serde::de::DeserializeOwned;
use shared::backoff::Backoff;

use super::model::Answer;
use crate::error::{Failure, Problem};

/// A server's `Retry-After` is honoured up to this long.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(30);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A request body: empty, bytes, or streamed from a file.
pub type Body = BoxBody<Bytes, BoxError>;

/// A whole answer: status, headers and body.
pub struct Raw {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed()
}

/// A body streamed from `chunks` (a file being read).
pub fn streamed<S>(chunks: S) -> Body
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static,
{
    let frames = chunks.map_ok(Frame::data).map_err(BoxError::from);
    BodyExt::boxed(StreamBody::new(frames))
}

pub fn bad_request(e: http::Error) -> Failure {
    Failure::invalid(format!("cannot make the request: {e}"))
}

/// Percent-encodes a query component (RFC 3986 unreserved characters stay).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum TransportError {
    Connect(String),
    Timeout(Duration),
    Other(String),
}

impl TransportError {
    pub fn from_client(e: hyper_util::client::legacy::Error) -> Self {
        // The client's own message is generic ("client error (Connect)");
        // the cause is at the end of the source chain.
        let mut cause = e.to_string();
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = source {
            cause = s.to_string();
            source = s.source();
        }
        if e.is_connect() {
            Self::Connect(cause)
        } else {
            Self::Other(cause)
        }
    }

    pub fn describe(&self, base: &str) -> String {
        match self {
            Self::Connect(cause) => format!("{base}: cannot connect: {cause}"),
            Self::Timeout(limit) => {
                format!("{base}: no answer within {}s", limit.as_secs())
            }
            Self::Other(cause) => format!("{base}: request failed: {cause}"),
        }
    }
}

/// An id goes into a URL path: refuse anything that would change the path.
pub fn path_segment(id: &str) -> Result<&str, Failure> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(id)
    } else {
        Err(Failure::invalid(format!("{id:?} is not an id")))
    }
}

/// The server asks to come back later: unavailable, an identical request in
/// flight, or too many uploads at once.
pub fn retryable(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::CONFLICT
            | StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::GATEWAY_TIMEOUT
    )
}

pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(RETRY_AFTER_MAX))
}

/// First wait before retrying a request the server could not take: long
/// enough for a gateway restart's first half second.
const RETRY_DELAY_MIN: Duration = Duration::from_millis(500);
/// Longest wait between retries, so a command never sits silent for long.
const RETRY_DELAY_MAX: Duration = Duration::from_secs(8);

/// The wait before retry `attempt` (0-based): 0.5 s, 1 s, 2 s, … capped at 8 s.
pub fn backoff(attempt: u32) -> Duration {
    Backoff::delay_for(RETRY_DELAY_MIN, RETRY_DELAY_MAX, attempt)
}

pub fn decode<T: DeserializeOwned>(raw: Raw) -> Result<Answer<T>, Failure> {
    let status = raw.status;
    let replayed = raw
        .headers
        .get("idempotent-replayed")
        .is_some_and(|v| v.as_bytes() == b"true");
    if status.is_success() {
        let body = serde_json::from_slice(&raw.body).map_err(|e| {
            Failure::Server(Box::new(Problem {
                title: "Unexpected answer".into(),
                status: status.as_u16(),
                detail: format!("the server's answer is not what bankctl expects: {e}"),
                ..Problem::default()
            }))
        })?;
        return Ok(Answer { body, replayed });
    }
    let problem = Box::new(problem_from(status, &raw.body));
    if status.is_server_error() {
        return Err(Failure::Server(problem));
    }
    let hint = match status {
        StatusCode::UNAUTHORIZED => {
            Some("log in again: `bankctl login --username NAME` (or set BANKCTL_TOKEN)".into())
        }
        _ => None,
    };
    Err(Failure::Refused {
        problem,
        hint,
        file: None,
    })
}

/// The RFC 9457 body, or a problem made from the status and the text of a
/// body that is not one (a proxy's HTML page, say).
fn problem_from(status: StatusCode, bytes: &[u8]) -> Problem {
    if let Ok(mut p) = serde_json::from_slice::<Problem>(bytes)
        && !p.title.is_empty()
    {
        if p.status == 0 {
            p.status = status.as_u16();
        }
        return p;
    }
    let text = String::from_utf8_lossy(bytes);
    let detail: String = text.trim().chars().take(200).collect();
    Problem {
        title: status
            .canonical_reason()
            .unwrap_or("Unexpected status")
            .to_owned(),
        status: status.as_u16(),
        detail,
        ..Problem::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_read_or_made_up() {
        let body = br#"{"type":"t","title":"Invalid request","status":422,"detail":"d",
            "errors":[{"line":3,"field":"amount","message":"must be greater than zero"}]}"#;
        let p = problem_from(StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(p.errors[0].line, Some(3));
        assert_eq!(p.errors[0].field, "amount");
        let p = problem_from(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!((p.status, p.title.as_str()), (502, "Bad Gateway"));
    }

    #[test]
    fn ids_cannot_escape_the_path() {
        assert!(path_segment("3f1c0000-0000-4000-8000-000000000001").is_ok());
        assert!(path_segment("../ops").is_err());
        assert!(path_segment("a?b").is_err());
        assert!(path_segment("").is_err());
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(encode("12-x_y.z~"), "12-x_y.z~");
    }

    #[test]
    fn backoff_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(10), Duration::from_secs(8));
    }
}
