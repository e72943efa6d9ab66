//! JetStream topology: stream and consumer names and their definitions.
//!
//! Every name derives from one prefix so that tests (and tenants) can run
//! side by side on one server without seeing each other's messages.
//! Only features of nats-server 2.9 are used.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::config::{self, ConfigError};

/// How long JetStream remembers a `Nats-Msg-Id`. Covers concurrent retries of
/// one request (the gateway's database check covers anything older).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Backlog bound: past this the gateway gets "stream full" and answers 503
/// instead of letting an unbounded queue build up in front of a slow ledger.
pub const TRANSFERS_BACKLOG_MAX: i64 = 2_000_000;
pub const TRANSFERS_BYTES_MAX: i64 = 2 * 1024 * 1024 * 1024;
/// Undelivered results are bounded too (Redis down for a long time).
pub const RESULTS_BYTES_MAX: i64 = 1024 * 1024 * 1024;
/// Dead letters are kept for operators for a month.
pub const DEAD_LETTER_AGE_MAX: Duration = Duration::from_secs(30 * 24 * 3600);

/// Names of streams, subjects and durable consumers.
#[derive(Debug, Clone)]
pub struct Topology {
    pub transfers_stream: String,
    pub transfers_subject: String,
    pub results_stream: String,
    pub results_subject: String,
    pub dead_stream: String,
    pub dead_subject: String,
    pub processor_consumer: String,
    pub relay_consumer: String,
    /// Stream replicas (`NATS_STREAM_REPLICAS`): 1 on one server, 3 on a cluster.
    pub replicas: usize,
    /// The transfers stream's hard limit in messages
    /// (`NATS_TRANSFERS_MAX_MSGS`, default [`TRANSFERS_BACKLOG_MAX`]): the
    /// last line behind the gateway's time budget.
    pub transfers_max_msgs: i64,
}

impl Topology {
    /// `prefix` is lower-case letters, digits and `_` (e.g. `bank`, `t3f9a…`).
    pub fn new(prefix: &str) -> Self {
        let upper = prefix.to_ascii_uppercase();
        Self {
            transfers_stream: format!("{upper}_TRANSFERS"),
            transfers_subject: format!("{prefix}.transfers.cmd"),
            results_stream: format!("{upper}_RESULTS"),
            results_subject: format!("{prefix}.transfers.results"),
            dead_stream: format!("{upper}_DEAD"),
            dead_subject: format!("{prefix}.transfers.dead"),
            processor_consumer: "processor".into(),
            relay_consumer: "results-relay".into(),
            replicas: 1,
            transfers_max_msgs: TRANSFERS_BACKLOG_MAX,
        }
    }

    fn batch_subject_base(&self) -> String {
        self.transfers_subject
            .replace(".transfers.cmd", ".transfers.batch")
    }

    /// The subject of an atomic batch's single message.
    pub fn batch_subject(&self, id: uuid::Uuid) -> String {
        format!("{}.{}", self.batch_subject_base(), id)
    }

    /// Whether a message on the transfers stream is an atomic batch.
    pub fn is_batch_subject(&self, subject: &str) -> bool {
        subject.starts_with(&self.batch_subject_base())
    }

    /// The subject of one transfer's command.
    pub fn command_subject(&self, id: uuid::Uuid) -> String {
        format!("{}.{}", self.transfers_subject, id)
    }

    /// From `NATS_PREFIX` (default `bank`).
    pub fn from_env() -> Result<Self, ConfigError> {
        let prefix = config::string("NATS_PREFIX", "bank");
        if prefix.is_empty()
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(ConfigError::Invalid {
                name: "NATS_PREFIX".into(),
                reason: "use lower-case letters, digits and '_'".into(),
            });
        }
        let mut topology = Self::new(&prefix);
        topology.replicas = config::parse("NATS_STREAM_REPLICAS", 1)?;
        topology.transfers_max_msgs =
            config::parse("NATS_TRANSFERS_MAX_MSGS", TRANSFERS_BACKLOG_MAX)?;
        Ok(topology)
    }

    /// Transfer commands: a work queue (a message leaves once the ledger
    /// acked it), file-backed, bounded, refusing new messages when full.
    pub fn transfers_config(&self) -> stream::Config {
        stream::Config {
            name: self.transfers_stream.clone(),
            // One subject per transfer (`<p>.transfers.cmd.<id>`): the gateway
            // can find a pending command by id without a database of its own.
            // Atomic batches travel as one message on `<p>.transfers.batch.<id>`.
            subjects: vec![
                format!("{}.*", self.transfers_subject),
                format!("{}.*", self.batch_subject_base()),
            ],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::New,
            max_messages: self.transfers_max_msgs,
            max_bytes: TRANSFERS_BYTES_MAX,
            duplicate_window: DUPLICATE_WINDOW,
            // An atomic batch of up to 1,000 payments fits (NATS' default max_payload).
            max_message_size: 1024 * 1024,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    /// Result batches on their way to Redis.
    pub fn results_config(&self) -> stream::Config {
        stream::Config {
            name: self.results_stream.clone(),
            subjects: vec![self.results_subject.clone()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::New,
            max_bytes: RESULTS_BYTES_MAX,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    /// Messages the processor gave up on, kept for operators.
    pub fn dead_config(&self) -> stream::Config {
        stream::Config {
            name: self.dead_stream.clone(),
            subjects: vec![self.dead_subject.clone()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            max_age: DEAD_LETTER_AGE_MAX,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    /// Creates the streams, or brings an existing one's definition up to date
    /// (idempotent; every service may call it).
    ///
    /// An update is sent only when a setting we own differs: every replica
    /// calls this at start, and nats-server 2.9.10 can crash (nil pointer in
    /// `updateWithAdvisory`) on an update racing the stream's creation by
    /// another process — the bank checker hit it. Newer servers do not.
    pub async fn ensure_streams(&self, js: &jetstream::Context) -> Result<(), async_nats::Error> {
        for cfg in [
            self.transfers_config(),
            self.results_config(),
            self.dead_config(),
        ] {
            match js.get_stream(&cfg.name).await {
                Ok(mut existing) => {
                    let current = existing.info().await?.config.clone();
                    if !same_settings(&current, &cfg) {
                        js.update_stream(cfg).await?;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        jetstream::context::GetStreamErrorKind::JetStream(_)
                    ) =>
                {
                    // Not found (or another JetStream error): create; if a
                    // concurrent caller created it first, that is fine.
                    if let Err(e) = js.create_stream(cfg.clone()).await
                        && js.get_stream(&cfg.name).await.is_err()
                    {
                        return Err(e.into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Deletes every stream of this topology (tests clean up with it).
    pub async fn delete_streams(&self, js: &jetstream::Context) {
        for name in [
            &self.transfers_stream,
            &self.results_stream,
            &self.dead_stream,
        ] {
            let _ = js.delete_stream(name).await;
        }
    }
}

/// Whether `current` (as the server reports it, defaults filled in) has the
/// settings `wanted` sets.
pub fn same_settings(current: &stream::Config, wanted: &stream::Config) -> bool {
    let mut a = current.subjects.clone();
    let mut b = wanted.subjects.clone();
    a.sort();
    b.sort();
    a == b
        && current.retention == wanted.retention
        && current.storage == wanted.storage
        && current.discard == wanted.discard
        && (wanted.max_messages <= 0 || current.max_messages == wanted.max_messages)
        && (wanted.max_bytes <= 0 || current.max_bytes == wanted.max_bytes)
        && (wanted.max_age.is_zero() || current.max_age == wanted.max_age)
        && (wanted.duplicate_window.is_zero()
            || current.duplicate_window == wanted.duplicate_window)
        && (wanted.max_message_size == 0 || current.max_message_size == wanted.max_message_size)
        && current.num_replicas == wanted.num_replicas
}

/// Settings of the processor's durable pull consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Redelivery after this long without an ack (or a progress signal).
    pub ack_wait: Duration,
    /// Deliveries before a message goes to the dead-letter stream.
    pub max_deliver: i64,
    /// Messages handed out and not yet acked, across all processor replicas:
    /// the bound on work in flight.
    pub max_ack_pending: i64,
}

impl ConsumerSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            ack_wait: config::millis("CONSUMER_ACK_WAIT_MS", 30_000)?,
            max_deliver: config::parse("CONSUMER_MAX_DELIVER", 10)?,
            max_ack_pending: config::parse("CONSUMER_MAX_ACK_PENDING", 20_000)?,
        })
    }

    pub fn pull_config(&self, durable: &str) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(durable.to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: self.max_deliver,
            max_ack_pending: self.max_ack_pending,
            ..Default::default()
        }
    }
}
