//! Reading a batch upload as it streams in: CSV and NDJSON line by line,
//! JSON as one document, every payment checked by `shared::batch_line`
//! (the reader bankctl runs on a file before sending it). Only the compact
//! validated payments are kept, never the raw file; reading stops at the
//! first `shared::batch_line::ERRORS_MAX` errors.

use axum::body::Body;
use futures::StreamExt;
use shared::batch_line::{BYTES_MAX, Format, Lines, Payment};
use shared::transfer_body::{TransferBody, Wording};

use crate::error::ApiError;

/// Bytes per upload (the router's body limit for `POST /v1/batches`).
pub const BODY_MAX: usize = BYTES_MAX;

/// A batch as one JSON document (`application/json`); a payment's line
/// is its index + 1.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct JsonBatch {
    #[schema(min_items = 1, max_items = 100000)]
    pub payments: Vec<TransferBody>,
}

/// Reads and validates the whole upload. Any invalid line refuses the batch.
pub async fn read(body: Body, format: Format) -> Result<Vec<Payment>, ApiError> {
    let mut lines = Lines::new(format, Wording::Api);
    let mut payments = Vec::new();
    let mut stream = body.into_data_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::MalformedBody(format!("upload interrupted: {e}")))?;
        total += chunk.len();
        if total > BODY_MAX {
            return Err(ApiError::TooLarge(format!(
                "a batch upload is at most {BODY_MAX} bytes"
            )));
        }
        pending.extend_from_slice(&chunk);
        if format == Format::Json {
            continue; // one document: parsed at the end
        }
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|b| *b == b'\n') {
            payments.extend(lines.line(&pending[start..start + pos]));
            start += pos + 1;
            if lines.full() {
                return Err(ApiError::Validation(lines.into_errors()));
            }
        }
        pending.drain(..start);
    }
    match format {
        Format::Json => {
            let doc: JsonBatch = serde_json::from_slice(&pending).map_err(|e| {
                ApiError::MalformedBody(format!("expected {{\"payments\": [...]}}: {e}"))
            })?;
            for (i, body) in doc.payments.iter().enumerate() {
                payments.extend(lines.payment(i as u64 + 1, body));
                if lines.full() {
                    break;
                }
            }
        }
        _ if !pending.is_empty() => payments.extend(lines.line(&pending)),
        _ => {}
    }
    lines.finish().map_err(ApiError::Validation)?;
    if payments.is_empty() {
        return Err(ApiError::field("body", "the batch has no payments"));
    }
    Ok(payments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_name_line_and_field() {
        let csv = "from_account,to_account,amount,currency,reference\n\
                   a11ce000-0000-4000-8000-000000000001,b0b00000-0000-4000-8000-000000000001,1.00,EUR,ok\n\
                   a11ce000-0000-4000-8000-000000000001,b0b00000-0000-4000-8000-000000000001,0,EUR,\n";
        match read(Body::from(csv), Format::Csv).await {
            Err(ApiError::Validation(errors)) => {
                assert_eq!(errors.len(), 1);
                assert_eq!(
                    (errors[0].line, errors[0].field.as_str()),
                    (Some(3), "amount")
                );
            }
            other => panic!("{other:?}"),
        }
        let ok = "from_account,to_account,amount,currency\n\
                  a11ce000-0000-4000-8000-000000000001,b0b00000-0000-4000-8000-000000000001,1.00,EUR";
        let payments = read(Body::from(ok), Format::Csv).await.unwrap();
        assert_eq!(payments.len(), 1);
        assert_eq!(payments[0].line, 2);
    }
}
