//! Refusing new work before doing any: under overload most requests are
//! refused, so a refusal must cost next to nothing.
//!
//! The handlers check the backlog themselves (`Backlog::admit`), but only
//! after the request went through the quota guard, the bearer token, the
//! JSON body, validation and an audit record. In `make bench`'s overload
//! run (2× the sustained rate, open loop) most requests are refusals, so
//! that work took CPU the processors needed: the accepted rate fell well
//! below what the same machine sustains (README, Performance). This layer
//! runs outside the guard and answers the routes that queue work before
//! all that: while the backlog is over its shedding point (or every
//! publish slot is taken), the answer is the same `503` + `Retry-After`
//! at once.
//!
//! What such a request does not get: authentication, validation, a quota
//! charge or an audit row. It changed nothing and named nobody verified;
//! it is counted in `gateway_shed_total{reason}` and
//! `http_server_requests_total`. A client learns the same thing either way
//! (retry later), and a malformed request gets its `4xx` on the retry.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::backlog::{self, ShedReason};
use crate::guard;
use crate::state::SharedState;

/// Which refusals a route may answer before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Early {
    /// The backlog only: a batch's lines wait for publish slots instead.
    Backlog,
    /// The backlog, and publish slots all taken (one request, one publish).
    BacklogOrBusy,
}

/// The routes that queue work, with what each may be refused for.
#[derive(Clone)]
pub struct Routes {
    state: SharedState,
    routes: Arc<[(Method, &'static str, Early)]>,
}

impl Routes {
    pub fn new(state: SharedState, routes: Vec<(Method, &'static str, Early)>) -> Self {
        Self {
            state,
            routes: routes.into(),
        }
    }

    fn early(&self, request: &Request) -> Option<Early> {
        let path = request.extensions().get::<MatchedPath>()?.as_str();
        self.routes
            .iter()
            .find(|(method, p, _)| method == request.method() && *p == path)
            .map(|(_, _, early)| *early)
    }
}

/// The middleware (see the module docs); other routes pass untouched.
pub async fn layer(State(routes): State<Routes>, request: Request, next: Next) -> Response {
    let Some(early) = routes.early(&request) else {
        return next.run(request).await;
    };
    let state = &routes.state;
    let refusal = if let Some(retry_after) = state.backlog.refusal() {
        backlog::shed(ShedReason::Backlog, retry_after)
    } else if early == Early::BacklogOrBusy && state.publish_slots.available_permits() == 0 {
        backlog::shed(ShedReason::Busy, 1)
    } else {
        return next.run(request).await;
    };
    // Like every other answer, a refusal names its request (the guard,
    // which sets it elsewhere, has not run).
    let mut response = refusal.into_response();
    if let Ok(id) = HeaderValue::from_str(&guard::request_id(request.headers())) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}
