//! What the API sends, as bankctl reads it. Unknown fields are kept
//! (`extra`) so `--json` passes on everything the server said, and a newer
//! server does not break an older client.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

// Deliberately no Debug: the token must never be printed.

#[derive(Deserialize)]
pub struct LoginResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub currency: String,
    pub balance: String,
    #[serde(default)]
    pub overdraft_limit: String,
    /// Balance minus pending holds (empty from a gateway without holds).
    #[serde(default)]
    pub available: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transfer {
    pub id: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub amount: String,
    #[serde(default)]
    pub currency: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Transfer {
    pub fn is_final(&self) -> bool {
        self.status != "pending"
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Accepted {
    pub id: String,
    pub count: u64,
    #[serde(default)]
    pub mode: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Total {
    pub currency: String,
    pub committed: String,
    pub rejected: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    pub id: String,
    #[serde(default)]
    pub mode: String,
    pub count: u64,
    #[serde(default)]
    pub pending: u64,
    #[serde(default)]
    pub committed: u64,
    #[serde(default)]
    pub rejected: u64,
    #[serde(default)]
    pub totals: Vec<Total>,
    #[serde(default)]
    pub done: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Batch {
    pub fn processed(&self) -> u64 {
        self.committed + self.rejected
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payment {
    pub line: u64,
    pub id: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// A successful answer and whether the server replayed an earlier one
/// (`Idempotent-Replayed: true`).
pub struct Answer<T> {
    pub body: T,
    pub replayed: bool,
}
