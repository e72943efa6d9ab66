//! The event feed in Redis: the one contract between the processor's relay
//! (the writer) and the notifiers (the readers).
//!
//! Why one module: the key names, the stream field names and the pub/sub
//! line format used to be string literals on both sides; a change on one
//! side compiled and broke at run time. Everything either side needs to
//! agree on is here, as pure string builders (no Redis client: `shared`
//! stays transport-free), with a round-trip test.
//!
//! The layout, for a key prefix `<p>`:
//! * `<p>:epoch` — a random id chosen when Redis first needs one; it changes
//!   when Redis lost its data, telling reconnecting clients their `since` is
//!   meaningless.
//! * `<p>:seq` — a hash: each user's last event number.
//! * `<p>:ev:<user>` — the user's bounded replay stream; entry id `<seq>-0`,
//!   fields [`FIELD_FRAGMENT`] and [`FIELD_TRACEPARENT`].
//! * `<p>:feed` — the pub/sub channel; one message per relayed batch
//!   ([`batch_lines`] reads it).
//! * `<p>:events` — the channel of the previous release (one [`Line`] per
//!   message), still read by notifiers while older relays publish there.
//! * `<p>:relayed:<hour>` — when each transfer reached the notifiers.
//!
//! Event ids are `<epoch>.<seq>` ([`EventId`]). An event travels as a
//! *fragment*: its JSON without the opening `{`, so a reader prepends
//! `{"id":"<epoch>.<seq>",` without parsing it ([`message`]).

use std::fmt;
use std::time::Duration;

use uuid::Uuid;

use crate::messages::Event;

mod relay;

pub use relay::{RELAY_SCRIPT, RelayArgs};

/// How long Redis keeps when each transfer was relayed to the notifiers
/// (the ops timeline's "notified" stage), in hourly hashes.
pub const RELAYED_KEEP: Duration = Duration::from_secs(6 * 3600);

/// One hour in microseconds: the span of one `<p>:relayed:<hour>` hash.
const RELAYED_HOUR_MICROS: i64 = 3_600_000_000;

/// Stream field holding the event fragment.
pub const FIELD_FRAGMENT: &str = "f";
/// Stream field holding the W3C traceparent (or [`NONE`]).
pub const FIELD_TRACEPARENT: &str = "t";
/// Placeholder for "no traceparent" / "no transfer" in the line and script.
pub const NONE: &str = "-";

/// Longest epoch accepted in a client's `since` (ours are 8 hex digits).
const EPOCH_LEN_MAX: usize = 32;

/// `<p>:epoch`: the current epoch.
pub fn epoch_key(prefix: &str) -> String {
    format!("{prefix}:epoch")
}

/// `<p>:seq`: the hash of each user's last event number.
pub fn seq_key(prefix: &str) -> String {
    format!("{prefix}:seq")
}

/// `<p>:ev:`: the replay streams' common prefix (the relay script appends
/// the user id).
pub fn user_stream_prefix(prefix: &str) -> String {
    format!("{prefix}:ev:")
}

/// `<p>:ev:<user>`: one user's replay stream.
pub fn user_stream_key(prefix: &str, user: Uuid) -> String {
    format!("{}{user}", user_stream_prefix(prefix))
}

/// `<p>:feed`: the pub/sub channel the relay publishes each batch's lines
/// on, and every notifier subscribes to.
///
/// A new name rather than batches on the old one: a notifier of the previous
/// release reads a whole message as one line, so several users' events in
/// one message would all go to the first line's user.
pub fn channel(prefix: &str) -> String {
    format!("{prefix}:feed")
}

/// `<p>:events`: the previous release's channel, one [`Line`] per message.
/// Notifiers still subscribe to it so that a relay not yet upgraded is
/// heard during a rolling deploy; nothing publishes there any more.
pub fn legacy_channel(prefix: &str) -> String {
    format!("{prefix}:events")
}

/// The events of one message on [`channel`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub lines: Vec<Line>,
    /// False when a malformed line ended the reading early: the lines
    /// after it could not be numbered for sure, so they are left out and
    /// the reader must tell its clients to catch up (resync).
    pub complete: bool,
}

/// Reads one message on [`channel`]: a head line, `<epoch> <user>:<first
/// seq> …` (each user of the batch once), then one line per event in batch
/// order, `<user> <traceparent|-> <fragment>`; each user's events take the
/// numbers from their first seq upward. Why not whole lines: building
/// them (and their numbers) in the relay's Lua script was nearly half of
/// the script's cost in Redis; the relay builds these lines itself, and
/// the script only adds the head.
pub fn batch_lines(payload: &str) -> Batch {
    let mut rows = payload.split('\n');
    let mut head = rows.next().unwrap_or_default().split(' ');
    let Some(epoch) = head.next().filter(|e| valid_epoch(e)) else {
        return Batch::default();
    };
    let mut next_seq = std::collections::HashMap::new();
    for pair in head {
        let parsed = pair
            .split_once(':')
            .and_then(|(user, seq)| Some((user.parse::<Uuid>().ok()?, seq.parse::<u64>().ok()?)));
        let Some((user, seq)) = parsed else {
            return Batch::default();
        };
        next_seq.insert(user, seq);
    }
    let mut lines = Vec::new();
    for row in rows {
        let mut parts = row.splitn(3, ' ');
        let (Some(user), Some(traceparent), Some(fragment)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Batch {
                lines,
                complete: false,
            };
        };
        let Some((user, seq)) = user
            .parse::<Uuid>()
            .ok()
            .and_then(|u| Some((u, next_seq.get_mut(&u)?)))
        else {
            return Batch {
                lines,
                complete: false,
            };
        };
        lines.push(Line {
            user,
            id: EventId {
                epoch: epoch.to_owned(),
                seq: *seq,
            },
            traceparent: (traceparent != NONE).then(|| traceparent.to_owned()),
            fragment: fragment.to_owned(),
        });
        *seq += 1;
    }
    Batch {
        lines,
        complete: true,
    }
}

/// `<p>:relayed:<hour>`: the hash holding the relay times of the hour
/// `micros` (Unix microseconds) falls in.
pub fn relayed_key(prefix: &str, micros: i64) -> String {
    format!(
        "{prefix}:relayed:{}",
        micros.div_euclid(RELAYED_HOUR_MICROS)
    )
}

/// A fresh epoch from a random number: 8 hex digits.
pub fn epoch_text(random: u32) -> String {
    format!("{random:08x}")
}

/// The replay stream entry id of event `seq`.
pub fn stream_entry_id(seq: u64) -> String {
    format!("{seq}-0")
}

/// The event number of a replay stream entry id (`<seq>-0`).
pub fn stream_entry_seq(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

/// The fragment of a replay stream entry, from its `[name, value, …]` fields.
pub fn stream_entry_fragment(fields: &[String]) -> Option<&str> {
    fields
        .chunks_exact(2)
        .find(|kv| kv[0] == FIELD_FRAGMENT)
        .map(|kv| kv[1].as_str())
}

/// An event id: the Redis epoch and the user's sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventId {
    pub epoch: String,
    pub seq: u64,
}

impl EventId {
    /// `<epoch>.<seq>`, with an alphanumeric epoch of at most 32 characters.
    pub fn parse(text: &str) -> Option<Self> {
        let (epoch, seq) = text.split_once('.')?;
        if !valid_epoch(epoch) {
            return None;
        }
        Some(Self {
            epoch: epoch.to_owned(),
            seq: seq.parse().ok()?,
        })
    }
}

/// Alphanumeric, 1 to [`EPOCH_LEN_MAX`] characters.
fn valid_epoch(epoch: &str) -> bool {
    !epoch.is_empty()
        && epoch.len() <= EPOCH_LEN_MAX
        && epoch.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch, self.seq)
    }
}

/// An event as the feed carries it: its JSON without the opening brace.
pub fn encode(event: &Event) -> serde_json::Result<String> {
    let json = serde_json::to_string(event)?;
    Ok(fragment(&json).to_owned())
}

/// `{"type":…}` without its opening brace.
fn fragment(json: &str) -> &str {
    json.strip_prefix('{').unwrap_or(json)
}

/// The full JSON message a client receives: the fragment with the event id.
pub fn message(epoch: &str, seq: u64, fragment: &str) -> String {
    format!("{{\"id\":\"{epoch}.{seq}\",{fragment}")
}

/// One event as the notifiers read it: from a batch on [`channel`]
/// ([`batch_lines`]), or from a message of the previous release's relay on
/// [`legacy_channel`], whose whole payload was one line,
/// `"<user> <epoch>.<seq> <traceparent|-> <fragment>"` ([`Line::decode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub user: Uuid,
    pub id: EventId,
    pub traceparent: Option<String>,
    pub fragment: String,
}

impl Line {
    /// The line as the previous release's relay published it (only tests
    /// write it now).
    #[cfg(test)]
    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {}",
            self.user,
            self.id,
            self.traceparent.as_deref().unwrap_or(NONE),
            self.fragment
        )
    }

    /// Parses a line of the legacy channel; `None` if it is not one.
    pub fn decode(payload: &str) -> Option<Self> {
        let mut parts = payload.splitn(4, ' ');
        let (user, id, traceparent, fragment) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        Some(Self {
            user: user.parse().ok()?,
            id: EventId::parse(id)?,
            traceparent: (traceparent != NONE).then(|| traceparent.to_owned()),
            fragment: fragment.to_owned(),
        })
    }

    /// The JSON message for the user's socket.
    pub fn message(&self) -> String {
        message(&self.id.epoch, self.id.seq, &self.fragment)
    }
}

#[cfg(test)]
#[path = "event_feed_tests.rs"]
mod tests;
