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
//! * `<p>:events` — the pub/sub channel; one [`Line`] per event.
//! * `<p>:relayed:<hour>` — when each transfer reached the notifiers.
//!
//! Event ids are `<epoch>.<seq>` ([`EventId`]). An event travels as a
//! *fragment*: its JSON without the opening `{`, so a reader prepends
//! `{"id":"<epoch>.<seq>",` without parsing it ([`message`]).

use std::fmt;
use std::time::Duration;

use uuid::Uuid;

use crate::messages::Event;

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

/// `<p>:events`: the pub/sub channel every notifier subscribes to.
pub fn channel(prefix: &str) -> String {
    format!("{prefix}:events")
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
        if epoch.is_empty()
            || epoch.len() > EPOCH_LEN_MAX
            || !epoch.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return None;
        }
        Some(Self {
            epoch: epoch.to_owned(),
            seq: seq.parse().ok()?,
        })
    }
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

/// One pub/sub line: `"<user> <epoch>.<seq> <traceparent|-> <fragment>"`.
/// The relay script writes it (see [`RELAY_SCRIPT`]); notifiers decode it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub user: Uuid,
    pub id: EventId,
    pub traceparent: Option<String>,
    pub fragment: String,
}

impl Line {
    /// The line as published (what the relay script builds).
    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {}",
            self.user,
            self.id,
            self.traceparent.as_deref().unwrap_or(NONE),
            self.fragment
        )
    }

    /// Parses a published line; `None` if it is not one.
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

/// The relay's Lua script, run once per result batch: atomically numbers
/// each user's events (`HINCRBY` on the seq hash), appends them to the
/// user's bounded replay stream, publishes them as [`Line`]s, and notes
/// when each transfer was relayed. Returns the epoch. Its arguments are
/// built by [`RelayArgs`], which owns their order.
pub const RELAY_SCRIPT: &str = r#"
local epoch_key, seq_key, channel, stream_prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local f_fragment, f_traceparent = ARGV[5], ARGV[6]
local maxlen, new_epoch, now = ARGV[7], ARGV[8], ARGV[9]
-- This hour's hash of relay times (ops timeline) and how long it is kept:
-- Redis holds that many hours of them, whatever the rate.
local relayed, relayed_keep, none = ARGV[10], ARGV[11], ARGV[12]
local relayed_any = false
local epoch = redis.call('GET', epoch_key)
if not epoch then
  epoch = new_epoch
  redis.call('SET', epoch_key, epoch)
end
for i = 13, #ARGV, 4 do
  local user = ARGV[i]
  local traceparent = ARGV[i + 1]
  local transfer = ARGV[i + 2]
  local fragment = ARGV[i + 3]
  local seq = redis.call('HINCRBY', seq_key, user, 1)
  redis.call('XADD', stream_prefix .. user, 'MAXLEN', '~', maxlen, seq .. '-0',
             f_fragment, fragment, f_traceparent, traceparent)
  redis.call('PUBLISH', channel,
             user .. ' ' .. epoch .. '.' .. seq .. ' ' .. traceparent .. ' ' .. fragment)
  if transfer ~= none then
    -- When the transfer reached the notifiers (the ops timeline's last stage).
    redis.call('HSET', relayed, transfer, now)
    relayed_any = true
  end
end
if relayed_any then
  redis.call('EXPIRE', relayed, relayed_keep)
end
return epoch
"#;

/// The arguments of one [`RELAY_SCRIPT`] run, in the script's order.
#[derive(Debug, Clone)]
pub struct RelayArgs {
    args: Vec<String>,
    events: u64,
}

impl RelayArgs {
    /// The fixed head: keys under `prefix`, the replay stream length, the
    /// epoch to create if none exists, and the relay time (Unix µs).
    pub fn new(prefix: &str, replay_buffer: usize, new_epoch: String, now_micros: i64) -> Self {
        let args = vec![
            epoch_key(prefix),
            seq_key(prefix),
            channel(prefix),
            user_stream_prefix(prefix),
            FIELD_FRAGMENT.to_owned(),
            FIELD_TRACEPARENT.to_owned(),
            replay_buffer.to_string(),
            new_epoch,
            now_micros.to_string(),
            relayed_key(prefix, now_micros),
            RELAYED_KEEP.as_secs().to_string(),
            NONE.to_owned(),
        ];
        Self { args, events: 0 }
    }

    /// Adds one event for `user`; `transfer` names the transfer whose relay
    /// time is noted (none for account and batch events).
    pub fn push(
        &mut self,
        user: Uuid,
        traceparent: Option<&str>,
        transfer: Option<Uuid>,
        fragment: &str,
    ) {
        self.args.push(user.to_string());
        self.args.push(traceparent.unwrap_or(NONE).to_owned());
        self.args
            .push(transfer.map_or_else(|| NONE.to_owned(), |t| t.to_string()));
        self.args.push(fragment.to_owned());
        self.events += 1;
    }

    /// Events added so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The arguments, in order.
    pub fn args(&self) -> &[String] {
        &self.args
    }
}

#[cfg(test)]
#[path = "event_feed_tests.rs"]
mod tests;
