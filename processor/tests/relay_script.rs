//! The relay's Lua script against the real Redis: one script run per result
//! batch numbers each user's events in order, appends them to the users'
//! replay streams, publishes them as one message of lines, and notes the
//! transfers' relay times. Each test has its own key prefix and deletes
//! its keys.

use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use shared::event_feed::{self, Line, RelayArgs};
use uuid::Uuid;

async fn run(redis: &mut redis::aio::MultiplexedConnection, args: &RelayArgs) -> String {
    let script = redis::Script::new(event_feed::RELAY_SCRIPT);
    let mut invocation = script.prepare_invoke();
    for arg in args.args() {
        invocation.arg(arg);
    }
    invocation.invoke_async(redis).await.unwrap()
}

#[tokio::test]
async fn a_batch_is_numbered_per_user_stored_and_published_as_one_message() {
    let prefix = format!("test-relay-{}", testkit::unique());
    let client = redis::Client::open(testkit::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(event_feed::channel(&prefix))
        .await
        .unwrap();
    let (alice, bob) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let (t1, t2) = (Uuid::from_u128(11), Uuid::from_u128(12));
    let now = 7_200_000_000; // hour 2

    let mut first = RelayArgs::new(&prefix, 100, "e1".into(), now);
    first.push(alice, Some("00-aa-bb-01"), Some(t1), r#""n":1}"#);
    first.push(bob, None, Some(t1), r#""n":2}"#);
    first.push(alice, None, Some(t2), r#""n":3}"#);
    first.push(alice, None, None, r#""n":4}"#);
    assert_eq!(run(&mut redis, &first).await, "e1");
    let mut second = RelayArgs::new(&prefix, 100, "ignored".into(), now);
    second.push(bob, None, Some(t2), r#""n":5}"#);
    assert_eq!(run(&mut redis, &second).await, "e1", "the epoch is kept");

    let mut messages = pubsub.on_message();
    let mut received = Vec::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .expect("a published batch within 5 s")
            .unwrap();
        let payload: String = message.get_payload().unwrap();
        let batch = event_feed::batch_lines(&payload);
        assert!(batch.complete);
        received.push(batch.lines);
    }
    let ids = |lines: &[Line]| -> Vec<(Uuid, u64, String)> {
        lines
            .iter()
            .map(|l| (l.user, l.id.seq, l.fragment.clone()))
            .collect()
    };
    assert_eq!(
        ids(&received[0]),
        [
            (alice, 1, r#""n":1}"#.to_owned()),
            (bob, 1, r#""n":2}"#.to_owned()),
            (alice, 2, r#""n":3}"#.to_owned()),
            (alice, 3, r#""n":4}"#.to_owned()),
        ],
        "one message for the batch, each user's events numbered in order"
    );
    assert_eq!(received[0][0].traceparent.as_deref(), Some("00-aa-bb-01"));
    assert_eq!(ids(&received[1]), [(bob, 2, r#""n":5}"#.to_owned())]);

    let stream: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(event_feed::user_stream_key(&prefix, alice))
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    let entries: Vec<(String, Option<&str>)> = stream
        .iter()
        .map(|(id, fields)| (id.clone(), event_feed::stream_entry_fragment(fields)))
        .collect();
    assert_eq!(
        entries,
        [
            ("1-0".to_owned(), Some(r#""n":1}"#)),
            ("2-0".to_owned(), Some(r#""n":3}"#)),
            ("3-0".to_owned(), Some(r#""n":4}"#)),
        ]
    );
    let relayed: std::collections::HashMap<String, String> = redis
        .hgetall(event_feed::relayed_key(&prefix, now))
        .await
        .unwrap();
    assert_eq!(relayed.len(), 2, "each transfer's relay time, once");
    assert_eq!(relayed[&t1.to_string()], now.to_string());

    let keys: Vec<String> = redis.keys(format!("{prefix}:*")).await.unwrap();
    let _: () = redis.del(keys).await.unwrap();
}

#[tokio::test]
async fn a_batch_larger_than_one_hset_slice_notes_every_transfer() {
    let prefix = format!("test-relay-{}", testkit::unique());
    let client = redis::Client::open(testkit::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let now = 1;
    let mut args = RelayArgs::new(&prefix, 10, "e1".into(), now);
    // 9,000 values to note: more than Lua's C stack takes in one unpack
    // (8,000), so the script must slice.
    let transfers = 4_500u128;
    for t in 0..transfers {
        args.push(
            Uuid::from_u128(t % 7),
            None,
            Some(Uuid::from_u128(1_000 + t)),
            "}",
        );
    }
    run(&mut redis, &args).await;
    let noted: u64 = redis
        .hlen(event_feed::relayed_key(&prefix, now))
        .await
        .unwrap();
    assert_eq!(u128::from(noted), transfers);
    let last: u64 = redis
        .hget(event_feed::seq_key(&prefix), Uuid::from_u128(0).to_string())
        .await
        .unwrap();
    assert_eq!(u128::from(last), transfers.div_ceil(7));

    let keys: Vec<String> = redis.keys(format!("{prefix}:*")).await.unwrap();
    let _: () = redis.del(keys).await.unwrap();
}
