//! `POST /v1/transfers/{id}/reversals` (role `reverser`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use ledger::audit::Record;
use serde::Deserialize;
use shared::messages::TransferView;
use utoipa::ToSchema;

use crate::audit;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, PathId, idempotency_key, parse_transfer_id};
use crate::guard::RequestMeta;
use crate::responses as r;
use crate::state::SharedState;
use crate::submit_reversal::{self, Reversal};

/// A reversal: why (mandatory), and how much (omitted: what is left).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReversalBody {
    #[schema(value_type = String, pattern = r"^[0-9]+(\.[0-9]+)?$", example = "5.00")]
    pub amount: Option<serde_json::Value>,
    /// 1 to 200 characters, shown to operators and kept in the audit trail.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200)]
    pub reason: Option<String>,
}

/// Reverses a committed transfer, fully or partly: a new transfer from its
/// payee back to its payer, linked by `reverses`. `202` once queued; the
/// ledger rejects it if the reversals would exceed the original
/// (`reversal_exceeds_original`), the original is not committed
/// (`original_not_committed`) or the payee lacks the money
/// (`insufficient_funds`).
#[utoipa::path(
    post,
    path = "/v1/transfers/{id}/reversals",
    operation_id = "reverseTransfer",
    tag = "transfers",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The transfer to reverse"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "The client's name for this reversal: a retry reverses once"),
    ),
    request_body = ReversalBody,
    responses(
        (status = 202, description = "Queued (or, replayed, its current state)", body = TransferView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 409, response = r::Conflict),
        (status = 413, response = r::TooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    meta: RequestMeta,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Result<JsonBody<ReversalBody>, ApiError>,
) -> Result<Response, ApiError> {
    let mut record = Record::new("transfer.reversed", "refused")
        .actor(caller.id.to_string())
        .role(caller.role.as_str());
    let result = async {
        caller.require_reverser()?;
        let original = parse_transfer_id(&id)?;
        record.target = Some(original.to_string());
        let JsonBody(body) = body?;
        let mut errors = Vec::new();
        let key = idempotency_key(&headers).map_err(|e| {
            if let ApiError::Validation(mut v) = e {
                errors.append(&mut v);
            }
        });
        let amount = match body.amount {
            None => Some(None),
            Some(serde_json::Value::String(s)) => Some(Some(s)),
            Some(_) => {
                errors.push(shared::problem::FieldError {
                    field: "amount".into(),
                    message: "must be a decimal string such as \"12.34\"".into(),
                    line: None,
                });
                None
            }
        };
        let reason = submit_reversal::check_reason(body.reason.as_deref(), &mut errors);
        let (Ok(key), Some(amount), Some(reason)) = (key, amount, reason) else {
            return Err(ApiError::Validation(errors));
        };
        record.detail = serde_json::json!({
            "amount": amount.clone().unwrap_or_else(|| "rest".into()),
            "reason": reason,
        });
        let (response, reversal) =
            submit_reversal::submit(&state, caller, &key, original, Reversal { amount, reason })
                .await?;
        if let serde_json::Value::Object(map) = &mut record.detail {
            map.insert("reversal_id".into(), reversal.to_string().into());
        }
        Ok(response)
    }
    .await;
    state
        .audit
        .record(meta.stamp(audit::outcome(record, &result)));
    result
}
