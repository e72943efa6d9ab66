//! A whole bank in one test process: gateway, processor and notifier on
//! ephemeral ports, against a database, streams and Redis keys of their own
//! on the real servers, seeded with the demo users and accounts.
//!
//! * [`Stack`] starts and stops the services ([`stack`]) and speaks to them
//!   as a client would ([`client`]);
//! * [`Ws`] is a notifier WebSocket;
//! * [`procs`] runs the service binaries as child processes instead.

use shared::auth::JwtKeys;

mod client;
pub mod procs;
mod stack;
mod ws;

pub use stack::Stack;
pub use ws::Ws;

pub const ALICE_EUR: &str = "a11ce000-0000-4000-8000-000000000001";
pub const ALICE_USD: &str = "a11ce000-0000-4000-8000-000000000002";
pub const BOB_EUR: &str = "b0b00000-0000-4000-8000-000000000001";
pub const BOB_USD: &str = "b0b00000-0000-4000-8000-000000000002";
pub const JWT_SECRET: &str = "system-test-secret-0123456789abcdef-0123456789";

pub fn keys() -> JwtKeys {
    JwtKeys::new(&[("k1".into(), JWT_SECRET.into())]).expect("keys")
}

/// The `id`s of a list's `items`, in order (empty if it has none).
pub fn item_ids(list: &serde_json::Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
