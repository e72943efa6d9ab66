//! The first thing every API request meets: it gets a request id and its
//! client address, its bearer token is verified once, and it is counted
//! against the per-user, per-IP and per-role quotas (`429` when over).
//!
//! Health, readiness and metrics are not counted: probes and scrapers must
//! never be throttled.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{Caller, RevokedToken};
use crate::quotas::Spend;
use crate::state::SharedState;

/// Longest client-supplied `X-Request-Id` kept (else a new one is made).
const REQUEST_ID_LEN_MAX: usize = 128;
/// Paths never counted against a quota (so never `429`).
pub const UNMETERED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Where a request came from, for the audit trail.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub ip: String,
    pub request_id: String,
}

impl RequestMeta {
    /// `record` with this request's address and id.
    pub fn stamp(&self, mut record: ledger::audit::Record) -> ledger::audit::Record {
        record.ip = Some(self.ip.clone());
        record.request_id = Some(self.request_id.clone());
        record
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestMeta>()
            .cloned()
            .unwrap_or_else(|| RequestMeta {
                ip: "unknown".into(),
                request_id: Uuid::new_v4().to_string(),
            }))
    }
}

pub async fn middleware(
    State(state): State<SharedState>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = request_id(request.headers());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = client_ip(request.headers(), peer, state.trusted_proxy_hops);
    // Verified here once; the `Caller` extractor reuses it. A revoked
    // session's token is remembered as such: every route that needs a
    // caller answers it `401`, public ones serve it as anonymous.
    let mut caller = Caller::from_headers(request.headers(), &state.keys).ok();
    let spend = Spend::of(request.method(), request.uri().path());
    if let Some(c) = caller {
        match check_session(&state, &c, spend) {
            Ok(()) => {
                request.extensions_mut().insert(c);
            }
            Err(ApiError::Revoked) => {
                request.extensions_mut().insert(RevokedToken);
                caller = None;
            }
            Err(e) => {
                let mut response = e.into_response();
                if let Ok(v) = HeaderValue::from_str(&request_id) {
                    response.headers_mut().insert("x-request-id", v);
                }
                return response;
            }
        }
    }
    request.extensions_mut().insert(RequestMeta {
        ip: ip.clone(),
        request_id: request_id.clone(),
    });
    let metered = !UNMETERED.contains(&request.uri().path());
    let mut response = match metered {
        true => match state.rate_limiter.check(
            &state.redis_link,
            caller.map(|c| (c.id, c.role)),
            &ip,
            spend,
        ) {
            Ok(()) => next.run(request).await,
            Err(e) => e.into_response(),
        },
        false => next.run(request).await,
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// A revoked session's token gets `401`. While this replica's revocation
/// list is not in sync with Redis, a revocation made elsewhere may be
/// unknown here: money-moving requests are refused (`503`, fail closed),
/// reads go on with what is known.
fn check_session(state: &SharedState, caller: &Caller, spend: Spend) -> Result<(), ApiError> {
    if caller.revoked(&state.revocations) {
        metrics::counter!("gateway_revoked_tokens_total").increment(1);
        return Err(ApiError::Revoked);
    }
    if spend != Spend::Read && !state.revocations.is_live() {
        metrics::counter!("gateway_revocations_unavailable_total").increment(1);
        return Err(ApiError::Unavailable(
            "cannot check for revoked sessions (Redis unavailable); money-moving requests wait"
                .into(),
        ));
    }
    Ok(())
}

/// The caller's `X-Request-Id` when it is short visible ASCII (a proxy's
/// id correlates its logs with ours), else a new UUID.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= REQUEST_ID_LEN_MAX
                && v.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::new_v4().to_string())
}

/// The client's address. With `hops` trusted proxies in front, each of
/// which appends the address it received from to `X-Forwarded-For`, the
/// client is the entry `hops` from the end; entries further left were
/// written by the client and are ignored. With none, the peer address.
pub fn client_ip(headers: &HeaderMap, peer: Option<IpAddr>, hops: usize) -> String {
    let peer = peer.map(canonical);
    let forwarded = (hops > 0)
        .then(|| {
            let entries: Vec<&str> = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .collect();
            let index = entries.len().checked_sub(hops)?;
            entries.get(index)?.parse::<IpAddr>().ok().map(canonical)
        })
        .flatten();
    forwarded
        .or(peer)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) counts as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn client_address() {
        let peer = Some("10.0.0.9".parse().unwrap());
        // No trusted proxy: a client cannot pick its address.
        assert_eq!(client_ip(&headers(&["1.2.3.4"]), peer, 0), "10.0.0.9");
        // One proxy: the entry it appended.
        assert_eq!(
            client_ip(&headers(&["6.6.6.6, 1.2.3.4"]), peer, 1),
            "1.2.3.4"
        );
        // Two proxies, and several header lines.
        assert_eq!(
            client_ip(&headers(&["6.6.6.6, 1.2.3.4", "10.0.0.2"]), peer, 2),
            "1.2.3.4"
        );
        // Fewer entries than proxies or garbage: the peer.
        assert_eq!(client_ip(&headers(&[]), peer, 1), "10.0.0.9");
        assert_eq!(client_ip(&headers(&["nonsense"]), peer, 1), "10.0.0.9");
        assert_eq!(
            client_ip(
                &HeaderMap::new(),
                Some("::ffff:1.2.3.4".parse().unwrap()),
                0
            ),
            "1.2.3.4"
        );
        assert_eq!(client_ip(&HeaderMap::new(), None, 0), "unknown");
    }

    #[test]
    fn request_ids() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(
            "x-request-id",
            HeaderValue::from_str(&"x".repeat(200)).unwrap(),
        );
        assert_eq!(request_id(&h).len(), 36);
        h.insert("x-request-id", HeaderValue::from_static("has space"));
        assert_ne!(request_id(&h), "has space");
    }
}
