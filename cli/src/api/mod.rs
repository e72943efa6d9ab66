//! The HTTP client of the gateway's v1 API.
//!
//! Every write carries an idempotency key, so any request that failed in
//! transit, or got `503`/`409`/`429` (the server says "retry"), is simply
//! sent again, up to `--retries` times: a retry can never move money twice.
//! Errors become [`Failure`]s that carry the server's RFC 9457 problem.
//!
//! HTTP is hyper's client with rustls (ring); see `Cargo.toml` for why not
//! reqwest.

use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{Method, Request, Uri};
use http_body_util::BodyExt;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Failure;

mod model;
mod wire;

pub use model::{Accepted, Account, Answer, Batch, LoginResponse, Page, Payment, Transfer};
pub use wire::{Body, streamed};
use wire::{
    Raw, TransportError, backoff, bad_request, decode, empty, encode, full, path_segment,
    retry_after, retryable,
};

/// Time for one ordinary request (not a batch upload, which may be large).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest page of batch outcomes the API serves (`PAYMENTS_PAGE_MAX`).
pub const PAGE_MAX: u32 = 1000;
const AGENT: &str = concat!("bankctl/", env!("CARGO_PKG_VERSION"));

pub struct Api {
    http: Client<HttpsConnector<HttpConnector>, Body>,
    base: String,
    /// The token, or why there is none.
    token: Result<String, String>,
    retries: u32,
}

/// One request, made again for each attempt (a streamed body is consumed
/// by sending it).
struct Call {
    request: Request<Body>,
    /// `None`: no overall time limit (uploads).
    timeout: Option<Duration>,
}

impl Api {
    pub fn new(base: &str, token: Result<String, String>, retries: u32) -> Result<Self, Failure> {
        let base = base.trim_end_matches('/').to_owned();
        let valid = (base.starts_with("http://") || base.starts_with("https://"))
            && base.parse::<Uri>().is_ok();
        if !valid {
            return Err(Failure::invalid(format!(
                "--api must be an http:// or https:// URL, not {base:?}"
            )));
        }
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let provider = rustls::crypto::ring::default_provider();
        let builder =
            match HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
                Ok(b) => b,
                // No system certificates (a bare container): plain HTTP still
                // works, and an https:// API fails with a certificate error.
                Err(_) => HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder_with_provider(provider.into())
                        .with_safe_default_protocol_versions()
                        .map_err(|e| Failure::invalid(format!("TLS setup: {e}")))?
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                ),
            };
        let https = builder
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self {
            http,
            base,
            token,
            retries,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Result<&str, Failure> {
        self.token
            .as_deref()
            .map_err(|why| Failure::invalid(why.to_owned()))
    }

    /// A request to `path` (`query` pairs are percent-encoded), with the
    /// bearer token when `auth`.
    fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        auth: bool,
    ) -> Result<http::request::Builder, Failure> {
        let mut url = format!("{}{path}", self.base);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode(k));
            url.push('=');
            url.push_str(&encode(v));
        }
        let uri: Uri = url
            .parse()
            .map_err(|e| Failure::invalid(format!("bad URL {url:?}: {e}")))?;
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(USER_AGENT, AGENT);
        if auth {
            builder = builder.header(AUTHORIZATION, format!("Bearer {}", self.token()?));
        }
        Ok(builder)
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Call, Failure> {
        let request = self
            .request(Method::GET, path, query, true)?
            .body(empty())
            .map_err(bad_request)?;
        Ok(Call {
            request,
            timeout: Some(REQUEST_TIMEOUT),
        })
    }

    fn post_json(
        &self,
        path: &str,
        key: Option<&str>,
        body: &Value,
        auth: bool,
    ) -> Result<Call, Failure> {
        let mut builder = self
            .request(Method::POST, path, &[], auth)?
            .header(CONTENT_TYPE, "application/json");
        if let Some(k) = key {
            builder = builder.header("Idempotency-Key", k);
        }
        let bytes = serde_json::to_vec(body).map_err(|e| Failure::invalid(e.to_string()))?;
        let request = builder.body(full(bytes)).map_err(bad_request)?;
        Ok(Call {
            request,
            timeout: Some(REQUEST_TIMEOUT),
        })
    }

    /// Sends once and reads the whole answer.
    async fn once(&self, call: Call) -> Result<Raw, TransportError> {
        let exchange = async {
            let response = self
                .http
                .request(call.request)
                .await
                .map_err(TransportError::from_client)?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| TransportError::Other(format!("the answer was cut off: {e}")))?
                .to_bytes();
            Ok(Raw {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match call.timeout {
            Some(limit) => tokio::time::timeout(limit, exchange)
                .await
                .unwrap_or(Err(TransportError::Timeout(limit))),
            None => exchange.await,
        }
    }

    /// Sends the request `build` makes, again after a transient failure.
    /// `build` is called once per attempt (a streamed body cannot be reused).
    async fn send(&self, build: &dyn Fn() -> Result<Call, Failure>) -> Result<Raw, Failure> {
        let mut attempt = 0;
        loop {
            let last = attempt >= self.retries;
            let wait = match self.once(build()?).await {
                Ok(r) if retryable(r.status) && !last => {
                    let wait = retry_after(&r.headers).unwrap_or_else(|| backoff(attempt));
                    self.note(&format!("{} from the server", r.status), wait);
                    wait
                }
                Ok(r) => return Ok(r),
                Err(e) if !last => {
                    let wait = backoff(attempt);
                    self.note(&e.describe(&self.base), wait);
                    wait
                }
                Err(e) => return Err(Failure::Transport(e.describe(&self.base))),
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    fn note(&self, what: &str, wait: Duration) {
        crate::output::warn(&format!(
            "bankctl: {what}; retrying in {:.1}s",
            wait.as_secs_f64()
        ));
    }

    /// Sends with retries and decodes a 2xx JSON body, or the problem.
    async fn call<T: DeserializeOwned>(
        &self,
        build: &dyn Fn() -> Result<Call, Failure>,
    ) -> Result<Answer<T>, Failure> {
        decode(self.send(build).await?)
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<LoginResponse, Failure> {
        let body = serde_json::json!({"username": username, "password": password});
        let build = || self.post_json("/v1/auth/login", None, &body, false);
        Ok(self.call(&build).await?.body)
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, Failure> {
        Ok(self.call(&|| self.get("/v1/accounts", &[])).await?.body)
    }

    pub async fn create_transfer(
        &self,
        key: &str,
        body: &Value,
    ) -> Result<Answer<Transfer>, Failure> {
        let build = || self.post_json("/v1/transfers", Some(key), body, true);
        self.call(&build).await
    }

    pub async fn transfer(&self, id: &str) -> Result<Transfer, Failure> {
        let path = format!("/v1/transfers/{}", path_segment(id)?);
        Ok(self.call(&|| self.get(&path, &[])).await?.body)
    }

    /// `POST path` with an Idempotency-Key (holds, reversals): the JSON answer.
    pub async fn post_keyed(
        &self,
        path: &str,
        key: &str,
        body: &Value,
    ) -> Result<Answer<Value>, Failure> {
        let build = || self.post_json(path, Some(key), body, true);
        self.call(&build).await
    }

    /// `GET path`: the JSON answer.
    pub async fn get_value(&self, path: &str) -> Result<Value, Failure> {
        Ok(self.call(&|| self.get(path, &[])).await?.body)
    }

    /// `POST /v1/batches` with a body made by `body` (one per attempt).
    /// No overall timeout: a large file takes as long as it takes, and the
    /// gateway bounds the request itself.
    pub async fn submit_batch(
        &self,
        key: &str,
        mode: &str,
        content_type: &str,
        body: &dyn Fn() -> Result<Body, Failure>,
    ) -> Result<Answer<Accepted>, Failure> {
        let build = || {
            let request = self
                .request(Method::POST, "/v1/batches", &[("mode", mode)], true)?
                .header("Idempotency-Key", key)
                .header(CONTENT_TYPE, content_type)
                .body(body()?)
                .map_err(bad_request)?;
            Ok(Call {
                request,
                timeout: None,
            })
        };
        self.call(&build).await
    }

    /// `GET path` if it answers right now: one attempt, no retries, no
    /// notes. For what is only shown, never decided on.
    async fn peek<T: DeserializeOwned>(&self, path: &str) -> Option<T> {
        let raw = self.once(self.get(path, &[]).ok()?).await.ok()?;
        decode::<T>(raw).ok().map(|a| a.body)
    }

    /// The caller's user id, if the API says so at once.
    pub async fn peek_me(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Me {
            id: String,
        }
        self.peek::<Me>("/v1/me").await.map(|me| me.id)
    }

    /// The batch, if it can be read at once (progress shown while an upload
    /// is still being queued, before the batch exists).
    pub async fn peek_batch(&self, id: &str) -> Option<Batch> {
        let path = format!("/v1/batches/{}", path_segment(id).ok()?);
        self.peek(&path).await
    }

    pub async fn batch(&self, id: &str) -> Result<Batch, Failure> {
        let path = format!("/v1/batches/{}", path_segment(id)?);
        Ok(self.call(&|| self.get(&path, &[])).await?.body)
    }

    pub async fn batch_payments(
        &self,
        id: &str,
        status: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<Payment>, Failure> {
        let path = format!("/v1/batches/{}/payments", path_segment(id)?);
        let limit = PAGE_MAX.to_string();
        let mut query = vec![("limit", limit.as_str())];
        if let Some(s) = status {
            query.push(("status", s));
        }
        if let Some(c) = cursor {
            query.push(("cursor", c));
        }
        Ok(self.call(&|| self.get(&path, &query)).await?.body)
    }
}
