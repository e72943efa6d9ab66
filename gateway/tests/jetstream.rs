//! The two JetStream guarantees the gateway's idempotency relies on, checked
//! against the real server (2.9): a message id is deduplicated within the
//! window, and a second command for an id still queued is refused whatever
//! its message id (`Nats-Expected-Last-Subject-Sequence: 0`).

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use testkit::TestNats;
use uuid::Uuid;

fn command(msg_id: &str) -> PublishMessage {
    PublishMessage::build()
        .payload("{}".into())
        .message_id(msg_id)
        .expected_last_subject_sequence(0)
}

#[tokio::test]
async fn queued_commands_are_never_duplicated() {
    let nats = TestNats::new().await;
    let id = Uuid::new_v4();
    let subject = nats.topology.command_subject(id);

    let first = nats
        .js
        .send_publish(subject.clone(), command("a"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(!first.duplicate);

    // Same message id within the window: acknowledged as a duplicate.
    let again = nats
        .js
        .send_publish(subject.clone(), command("a"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.sequence, first.sequence);

    // Another message id (as after the window): refused while one is queued.
    let other = nats
        .js
        .send_publish(subject.clone(), command("b"))
        .await
        .unwrap()
        .await;
    assert_eq!(
        other.unwrap_err().kind(),
        PublishErrorKind::WrongLastSequence
    );

    // Other transfers are unaffected.
    let unrelated = nats.topology.command_subject(Uuid::new_v4());
    nats.js
        .send_publish(unrelated, command("c"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(nats.transfers_in_stream().await, 2);
}

/// Every service calls `ensure_streams` at start; once the streams exist it
/// must not send updates (nats-server 2.9.10 can crash on an update racing
/// a creation), so what the server reports must match what we set.
#[tokio::test]
async fn existing_streams_are_left_alone() {
    let nats = TestNats::new().await;
    let t = &nats.topology;
    for wanted in [t.transfers_config(), t.results_config(), t.dead_config()] {
        let mut stream = nats.js.get_stream(&wanted.name).await.unwrap();
        let current = stream.info().await.unwrap().config.clone();
        assert!(
            shared::streams::same_settings(&current, &wanted),
            "{}: server {current:?} vs wanted {wanted:?}",
            wanted.name
        );
    }
    // Concurrent callers (several replicas starting at once) all succeed.
    let calls = (0..4).map(|_| t.ensure_streams(&nats.js));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
}
