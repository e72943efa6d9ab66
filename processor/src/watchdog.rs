//! Recovers messages a durable consumer can no longer see.
//!
//! nats-server 2.9.10, restarted after `kill -9` while a work-queue stream
//! was empty, can restart the stream's sequence at 1 while the durable
//! consumer remembers the old, higher one. New messages are then stored
//! (the publisher got its ack, the customer a `202`) but lie below the
//! consumer's ack floor: never delivered, and the consumer reports nothing
//! pending. The bank checker caught it: 2,164 transfers stuck for good.
//!
//! In a healthy work queue every stored message is above the ack floor
//! (acked ones are deleted). So when the first stored message stays at or
//! below the floor for two checks in a row, the consumer is recreated with
//! the same name and settings: it starts again from the first stored
//! message. Redelivering what is stored is harmless — applying is
//! idempotent. Newer servers fixed the sequence reset.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use shared::shutdown::Shutdown;

const CHECK_EVERY: Duration = Duration::from_secs(5);

pub async fn run(
    js: jetstream::Context,
    stream_name: String,
    config: pull::Config,
    mut shutdown: Shutdown,
) {
    let name = config.durable_name.clone().unwrap_or_default();
    // The first stored sequence seen below the floor at the previous check.
    let mut suspect: Option<u64> = None;
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {},
        }
        let Ok(mut stream) = js.get_stream(&stream_name).await else {
            continue;
        };
        let Ok(state) = stream.info().await.map(|i| i.state.clone()) else {
            continue;
        };
        let Ok(mut consumer) = stream.get_consumer::<pull::Config>(&name).await else {
            continue;
        };
        let Ok(floor) = consumer.info().await.map(|i| i.ack_floor.stream_sequence) else {
            continue;
        };
        let stuck = state.messages > 0 && state.first_sequence <= floor;
        if !stuck {
            suspect = None;
            continue;
        }
        if suspect != Some(state.first_sequence) {
            suspect = Some(state.first_sequence);
            continue;
        }
        tracing::error!(
            stream = %stream_name,
            stored = state.messages,
            first = state.first_sequence,
            ack_floor = floor,
            "stored messages below the consumer's ack floor (stream sequence reset); recreating the consumer"
        );
        metrics::counter!("processor_consumer_resets_total").increment(1);
        let _ = stream.delete_consumer(&name).await;
        if let Err(e) = stream.create_consumer(config.clone()).await {
            tracing::warn!(error = %e, "recreating the consumer failed; will retry");
        }
        suspect = None;
    }
}
