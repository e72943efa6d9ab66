//! The append-only, hash-chained audit trail (`audit_log`, `audit_head`).
//!
//! Every row carries `hash = sha256(prev_hash || canonical(row))` with
//! `prev_hash` the previous row's hash, so changing, removing or reordering a
//! row breaks the chain from that row on; [`verify`] finds the first broken
//! row. The chain is as trustworthy as its head: someone able to rewrite
//! every row after the one they changed (and the head) goes unnoticed, so
//! operators should record the head hash `bankadmin audit verify` prints
//! somewhere else from time to time (an external anchor).
//!
//! [`append`] is the only writer. It locks the one-row `audit_head` in the
//! inserting transaction: concurrent writers extend the chain one after the
//! other, ids are gap-free and the chain order is the id order.
//!
//! The parts: [`record`] (what an event is), [`chain`] (how rows are
//! hashed), [`repository`] (the writer and the reads) and [`verification`]
//! (walking the chain). Callers use the re-exports below.

mod chain;
mod record;
mod repository;
mod verification;

pub use chain::{GENESIS, row_hash};
pub use record::Record;
pub use repository::{Row, append, by_action, hex, page};
pub use verification::{Verification, verify};
