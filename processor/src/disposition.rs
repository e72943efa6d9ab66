//! How a JetStream message ends, decided by the handlers and carried out
//! here: the only place the processor acks, naks or terminates a message.
//!
//! Why one place: ack/nak/term used to be decided in about ten places, and
//! the rule that matters most — ack only after the ledger committed and the
//! results were stored — was spread over all of them. Handlers now return a
//! [`Disposition`]; the pull loop (and the relay) hand it to [`settle`].

use std::time::{Duration, Instant};

use async_nats::jetstream::{AckKind, Message};

/// Nak delay when work was interrupted (shutdown while waiting for the
/// database or NATS): soon, by another worker or after our restart.
pub const RETRY_SOON: Duration = Duration::from_secs(1);
/// Nak delay when giving up on a message failed (the dead-letter stream or
/// the ledger is away): long enough for them to come back.
pub const RETRY_DEAD_LETTER: Duration = Duration::from_secs(5);

/// What to tell JetStream about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done: the ledger committed and the results are stored.
    Ack,
    /// Not done: deliver it again after the delay.
    Nak(Duration),
    /// Never again: it was dead-lettered.
    Term,
}

/// Tells JetStream how `message` ends. A lost ack or nak only means a
/// redelivery, which the ledger absorbs.
pub async fn settle(message: &Message, disposition: Disposition) {
    let sent = match disposition {
        Disposition::Ack => message.ack().await,
        Disposition::Nak(delay) => message.ack_with(AckKind::Nak(Some(delay))).await,
        Disposition::Term => message.ack_with(AckKind::Term).await,
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, ?disposition, "settling failed; the message will be redelivered");
    }
}

/// Tells JetStream the work on `messages` goes on (resets their ack timer),
/// so they are not redelivered while we wait for a dependency.
pub async fn in_progress(messages: &[&Message]) {
    for m in messages {
        let _ = m.ack_with(AckKind::Progress).await;
    }
}

/// [`in_progress`] at most once per `every` (a third of the ack wait is
/// enough to never let the timer run out).
pub struct KeepAlive {
    every: Duration,
    last: Instant,
}

impl KeepAlive {
    pub fn new(ack_wait: Duration) -> Self {
        Self {
            every: ack_wait / 3,
            last: Instant::now(),
        }
    }

    pub async fn tick(&mut self, messages: &[&Message]) {
        if self.last.elapsed() < self.every {
            return;
        }
        in_progress(messages).await;
        self.last = Instant::now();
    }
}
