//! The OpenAPI 3.1 document served at `GET /openapi.json`, generated from
//! the handlers' `#[utoipa::path]` annotations and the types they return.
//!
//! Responses every handler shares are reusable components
//! ([`responses`]); the two that any request may get whatever its route —
//! `429` from the rate limits (every route but the probes) and `503` from
//! the request time limit — are added to every operation by [`Common`], so
//! no annotation can forget them. A unit test compares the document's
//! operations with [`crate::api_routes`], the table the router is built from.

use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::guard::UNMETERED;
use crate::responses;
use crate::routes::{accounts, auth, batches, holds, ops, reversals, system, transfers};

/// Adds the bearer scheme and the responses any request may get.
struct Common;

impl Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /v1/auth/login` or `/v1/auth/refresh`, \
                         in `Authorization: Bearer <token>` (never in the query string or a cookie)",
                    ))
                    .build(),
            ),
        );
        let reference = |name: &str| RefOr::Ref(Ref::new(format!("#/components/responses/{name}")));
        for (path, item) in openapi.paths.paths.iter_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let responses = &mut operation.responses.responses;
                if !UNMETERED.contains(&path.as_str()) {
                    responses
                        .entry("429".into())
                        .or_insert_with(|| reference("TooManyRequests"));
                }
                responses
                    .entry("503".into())
                    .or_insert_with(|| reference("Unavailable"));
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bank",
        description = "A money-transfer pipeline: transfers and batches are validated by the gateway, \
            queued in NATS JetStream and applied to a double-entry PostgreSQL ledger. Every error is an \
            RFC 9457 `application/problem+json`; money is always a decimal string, never a JSON number. \
            The notifier's WebSocket (`GET /v1/ws?access_token=&since=`) is a separate service, not \
            described here.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        auth::login,
        auth::refresh,
        auth::logout,
        auth::me,
        system::config,
        accounts::list,
        accounts::get,
        accounts::entries,
        transfers::create,
        transfers::list,
        transfers::get,
        reversals::create,
        holds::create,
        holds::list,
        holds::get,
        holds::capture,
        holds::void,
        batches::submit,
        batches::get,
        batches::payments,
        ops::recent,
        ops::timeline,
        ops::stats,
        ops::audit,
        system::healthz,
        system::readyz,
        system::metrics,
        openapi_json,
    ),
    components(
        schemas(shared::problem::Problem, shared::problem::FieldError),
        responses(
            responses::BadRequest,
            responses::Unauthorized,
            responses::Forbidden,
            responses::NotFound,
            responses::Conflict,
            responses::TooLarge,
            responses::UnsupportedMediaType,
            responses::Unprocessable,
            responses::TooManyRequests,
            responses::Internal,
            responses::Unavailable,
        ),
    ),
    modifiers(&Common),
    tags(
        (name = "auth", description = "Logging in, refreshing and revoking tokens"),
        (name = "accounts", description = "The caller's accounts and their entries"),
        (name = "transfers", description = "Moving money, idempotently; reversals (role `reverser`)"),
        (name = "holds", description = "Reserving money, then capturing, voiding or letting it expire"),
        (name = "batches", description = "Many payments in one upload"),
        (name = "ops", description = "Operators' views (role `ops`)"),
        (name = "system", description = "Probes, metrics, configuration and this document"),
    ),
)]
pub struct ApiDoc;

/// The document, serialized once.
pub fn document() -> &'static Result<Vec<u8>, String> {
    static DOCUMENT: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::to_vec(&ApiDoc::openapi()).map_err(|e| e.to_string()))
}

/// This document. Public: it describes the API, it grants nothing.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "system",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API", body = Object, content_type = "application/json"),
        (status = 500, response = responses::Internal),
    )
)]
pub async fn openapi_json() -> Response {
    match document() {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes.clone()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => {
            crate::error::ApiError::Internal(format!("OpenAPI document: {e}")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn doc() -> Value {
        let bytes = document().as_ref().expect("the document serializes");
        serde_json::from_slice(bytes).expect("the document is JSON")
    }

    /// The document names exactly the operations the router serves: none
    /// missing, none invented.
    #[test]
    fn paths_are_exactly_the_routers_routes() {
        let doc = doc();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, _) in item.as_object().expect("path item") {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let served: BTreeSet<(String, String)> = crate::operations()
            .into_iter()
            .map(|(m, p)| (m.as_str().to_owned(), p.to_owned()))
            .collect();
        assert_eq!(documented, served);
    }

    /// OpenAPI 3.1's shape: version, info, paths whose operations have unique
    /// ids and responses, every `$ref` resolving, errors as problem+json, and
    /// a bearer scheme behind every operation that needs a token.
    #[test]
    fn document_is_openapi_3_1() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let id = op["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_owned()), "operationId {id} twice");
                let responses = op["responses"].as_object().expect("responses");
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{method} {path}: no success response"
                );
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        let content = resolve(&doc, response)["content"].clone();
                        assert!(
                            content.get(responses::PROBLEM_JSON).is_some(),
                            "{method} {path} {status}: not problem+json"
                        );
                    }
                }
                let public = ["/v1/auth/login", "/v1/auth/refresh", "/v1/config"]
                    .contains(&path.as_str())
                    || !path.starts_with("/v1/");
                assert_eq!(
                    op.get("security").is_none(),
                    public,
                    "{method} {path}: security"
                );
                assert_eq!(
                    responses.contains_key("401"),
                    !public || path.starts_with("/v1/auth/"),
                    "{method} {path}: 401"
                );
            }
        }
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        for r in refs {
            let target = r
                .strip_prefix("#/")
                .map(|p| p.split('/').fold(&doc, |v, key| &v[key]));
            assert!(target.is_some_and(|t| !t.is_null()), "{r} does not resolve");
        }
    }

    fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str().and_then(|r| r.strip_prefix("#/")) {
            Some(path) => path.split('/').fold(doc, |v, key| &v[key]),
            None => v,
        }
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => collect_refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}
