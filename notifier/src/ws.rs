//! `GET /v1/ws?access_token=…&since=…`: one user's live events.
//!
//! The token is checked before the upgrade (a 401 problem otherwise) and is
//! never logged. On connect the client gets what it missed since `since` (or
//! `{"type":"resync"}` when that is impossible), then `{"type":"ready","id"}`,
//! then live events. The socket closes when the token expires (4001), when
//! its session is revoked (4003: logout, password change, user disabled),
//! when the client is too slow to keep up (1013), or on shutdown (1001).
//! A revoked session's token is refused at connect (401), and so is every
//! token while the revocation list is not in sync with Redis (503: a
//! revocation could be unknown here), and while this notifier is not
//! subscribed to the event feed (503: live events could be missed).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared::problem::Problem;
use tracing::Instrument;
use uuid::Uuid;

use crate::events::{self, Catchup, EventId};
use crate::hub::Push;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct WsParams {
    access_token: Option<String>,
    since: Option<String>,
}

const RESYNC: &str = r#"{"type":"resync"}"#;

/// Largest message accepted from a client: the protocol is server-to-client,
/// so anything bigger than a control frame is abuse.
const CLIENT_MESSAGE_MAX_BYTES: usize = 4096;
/// The socket's read buffer, allocated whole for every socket: tungstenite's
/// default (128 KiB) made an idle socket cost the notifier ~139 KiB, for a
/// protocol whose client sends only control frames. Events are written
/// eagerly (write buffer 0): each is flushed at once anyway.
const READ_BUFFER_BYTES: usize = CLIENT_MESSAGE_MAX_BYTES;

pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<WsParams>, axum::extract::rejection::QueryRejection>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-query",
            "Malformed query",
            "bad query string",
        )
        .into_response();
    };
    if !state.config.allowed_origins.is_empty() {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        if !origin.is_some_and(|o| state.config.allowed_origins.iter().any(|a| a == o)) {
            return Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                "origin not allowed",
            )
            .into_response();
        }
    }
    let claims = match params
        .access_token
        .as_deref()
        .map(|t| state.config.keys.verify(t))
    {
        Some(Ok(c)) => c,
        _ => {
            return Problem::unauthorized("a valid access_token query parameter is required")
                .into_response();
        }
    };
    let unavailable = if !state.revocations.is_live() {
        Some("cannot check for revoked sessions; retry shortly")
    } else if !state.hub.is_subscribed() {
        // Its catch-up could miss an event relayed before the subscription.
        Some("not following events yet; retry shortly")
    } else {
        None
    };
    if let Some(detail) = unavailable {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        )
        .retry_after(1)
        .into_response();
    }
    if state.revocations.claims_revoked(&claims) {
        return Problem::unauthorized("the session was ended; log in again").into_response();
    }
    let session_of = SessionOf {
        user: claims.sub,
        sid: claims.sid,
        started_ms: shared::revocation::session_started_ms(&claims),
    };
    let since = match params.since.as_deref() {
        None | Some("") => None,
        Some(text) => match EventId::parse(text) {
            Some(id) => Some(id),
            None => {
                return Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation",
                    "Invalid request",
                    "since must be an event id this server sent",
                )
                .into_response();
            }
        },
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return (e.status(), e.body_text()).into_response(),
    };
    let expires_in = Duration::from_secs(claims.exp.saturating_sub(shared::auth::unix_now()));
    ws.max_message_size(CLIENT_MESSAGE_MAX_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .on_upgrade(move |socket| session(state, socket, session_of, since, expires_in))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}

/// Whose socket it is, for revocations.
#[derive(Clone, Copy)]
struct SessionOf {
    user: Uuid,
    sid: Uuid,
    started_ms: u64,
}

/// Close code of a socket whose session was revoked (application range).
const CLOSE_REVOKED: u16 = 4003;

async fn session(
    state: Arc<AppState>,
    mut socket: WebSocket,
    of: SessionOf,
    since: Option<EventId>,
    expires_in: Duration,
) {
    let user = of.user;
    // Before the catch-up: a revocation during it is not missed.
    let mut revoked = state.revocations.subscribe();
    if state.revocations.is_revoked(of.user, of.sid, of.started_ms) {
        close(&mut socket, CLOSE_REVOKED, "session revoked").await;
        return;
    }
    let (conn, mut rx) = state.hub.register(user, state.config.queue_max);
    let mut redis = state.redis.clone();
    let catchup = events::catch_up(
        &mut redis,
        &state.config.redis_prefix,
        user,
        since.as_ref(),
        state.config.queue_max,
    )
    .await;
    let mut last = match catchup {
        Ok(Catchup::Replay { last, events }) => {
            let mut ok = true;
            for e in events {
                metrics::counter!("notifier_events_sent_total", "kind" => "replay").increment(1);
                if socket.send(Message::Text(e.into())).await.is_err() {
                    ok = false;
                    break;
                }
            }
            if !ok {
                state.hub.unregister(user, conn);
                return;
            }
            last
        }
        Ok(Catchup::Resync { last }) => {
            metrics::counter!("notifier_resyncs_total", "cause" => "gap").increment(1);
            let _ = socket.send(Message::Text(RESYNC.into())).await;
            last
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the replay buffer");
            state.hub.unregister(user, conn);
            close(&mut socket, close_code::AGAIN, "events unavailable; retry").await;
            return;
        }
    };
    let ready = format!(r#"{{"type":"ready","id":"{last}"}}"#);
    if socket.send(Message::Text(ready.into())).await.is_err() {
        state.hub.unregister(user, conn);
        return;
    }

    let mut shutdown = state.shutdown.clone();
    let mut ping = tokio::time::interval(state.config.ping_interval);
    ping.tick().await;
    let mut awaiting_pong = false;
    let expiry = tokio::time::sleep(expires_in);
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            _ = shutdown.wait() => {
                close(&mut socket, close_code::AWAY, "server shutting down").await;
                break;
            }
            _ = &mut expiry => {
                close(&mut socket, 4001, "token expired").await;
                break;
            }
            r = revoked.recv() => {
                let ended = match r {
                    Ok(r) => r.ends(of.user, of.sid, of.started_ms),
                    // Missed some: ask the list itself.
                    Err(_) => state.revocations.is_revoked(of.user, of.sid, of.started_ms),
                };
                if ended {
                    metrics::counter!("notifier_revoked_closes_total").increment(1);
                    close(&mut socket, CLOSE_REVOKED, "session revoked").await;
                    break;
                }
            }
            push = rx.recv() => match push {
                Some(Push::Event { epoch, seq, text, traceparent }) => {
                    if *epoch != *last.epoch {
                        // Redis lost its data: ids restarted.
                        if socket.send(Message::Text(RESYNC.into())).await.is_err() { break; }
                        last = EventId { epoch: epoch.to_string(), seq: 0 };
                    }
                    if seq <= last.seq {
                        continue; // already sent by the replay
                    }
                    last.seq = seq;
                    metrics::counter!("notifier_events_sent_total", "kind" => "live").increment(1);
                    let span = tracing::info_span!(
                        "push",
                        otel.name = "websocket push",
                        otel.kind = "producer",
                        messaging.system = "websocket",
                        enduser.id = %user,
                    );
                    shared::telemetry::continue_from(&span, traceparent.as_deref());
                    let sent = socket
                        .send(Message::Text(Utf8Bytes::from(&*text)))
                        .instrument(span)
                        .await;
                    if sent.is_err() { break; }
                }
                Some(Push::Resync) => {
                    metrics::counter!("notifier_resyncs_total", "cause" => "server").increment(1);
                    if socket.send(Message::Text(RESYNC.into())).await.is_err() { break; }
                }
                None => {
                    // The hub dropped us: we fell too far behind.
                    close(&mut socket, close_code::AGAIN, "too slow; reconnect with since").await;
                    break;
                }
            },
            _ = ping.tick() => {
                if awaiting_pong {
                    tracing::debug!(%user, "no pong; closing");
                    break;
                }
                awaiting_pong = true;
                if socket.send(Message::Ping(Default::default())).await.is_err() { break; }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Pong(_))) => awaiting_pong = false,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                // The protocol is server-to-client; anything else is ignored.
                Some(Ok(_)) => awaiting_pong = false,
            },
        }
    }
    state.hub.unregister(user, conn);
}
