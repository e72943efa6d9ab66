//! The notifier against the real Redis: sockets and readiness wait for the
//! event subscription, and a socket opened before it is told to resync.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use shared::auth::{JwtKeys, Role};
use tower::ServiceExt;
use uuid::Uuid;

use super::*;
use crate::hub::{Hub, Push};

const WAIT: Duration = Duration::from_secs(10);

async fn status(app: &Router, uri: &str) -> (StatusCode, bool) {
    let request = Request::get(uri).body(Body::empty()).expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    let retry_after = response.headers().contains_key(header::RETRY_AFTER);
    (response.status(), retry_after)
}

#[tokio::test]
async fn sockets_wait_for_the_event_subscription() {
    let redis = testkit::TestRedis::new();
    let url = testkit::redis_url();
    let keys = JwtKeys::new(&[("k1".into(), "notifier-test-secret-0123456789abcdef".into())])
        .expect("keys");
    let user = Uuid::new_v4();
    let (token, _) = keys.issue(user, Role::Customer).expect("token");
    let config = Config {
        addr: ([127, 0, 0, 1], 0).into(),
        redis_url: url.clone(),
        redis_prefix: redis.prefix.clone(),
        keys,
        queue_max: 8,
        ping_interval: Duration::from_secs(20),
        allowed_origins: Vec::new(),
        connections: shared::listen::Limits::default(),
    };
    let client = shared::tls::redis_client(&url).expect("client");
    let connection = redis::aio::ConnectionManager::new(client)
        .await
        .expect("Redis");
    let revocations = shared::revocation::Revocations::start(&url, &redis.prefix);
    assert!(revocations.wait_live(WAIT).await, "revocation list live");
    let (stop, shutdown) = shared::shutdown::channel();
    let hub = Arc::new(Hub::default());
    let state = Arc::new(AppState {
        config,
        hub: hub.clone(),
        redis: connection,
        shutdown: shutdown.clone(),
        revocations,
    });
    let app = router(state);
    let ws = format!("/v1/ws?access_token={token}");

    // Not subscribed yet: not ready, and a socket is refused with a retry.
    assert_eq!(
        status(&app, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status(&app, &ws).await,
        (StatusCode::SERVICE_UNAVAILABLE, true)
    );

    // A socket the hub already holds (accepted before the subscription, as
    // the refusal above now prevents) hears `resync` once it is live.
    let (_, mut queue) = hub.register(user, 8);
    let subscriber = tokio::spawn(events::subscribe(
        url,
        redis.prefix.clone(),
        hub.clone(),
        shutdown,
    ));
    let first = tokio::time::timeout(WAIT, queue.recv()).await;
    assert!(
        matches!(first, Ok(Some(Push::Resync))),
        "a socket open before the subscription is told to resync"
    );
    assert!(hub.is_subscribed());
    assert_eq!(status(&app, "/readyz").await.0, StatusCode::OK);
    // Past the check: this plain GET is refused only for not upgrading.
    assert_ne!(status(&app, &ws).await.0, StatusCode::SERVICE_UNAVAILABLE);

    stop.fire();
    let _ = tokio::time::timeout(WAIT, subscriber).await;
}
