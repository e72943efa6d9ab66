//! Account owner and currency never change, so the gateway can check
//! ownership and currency before publishing without asking the database
//! twice for the same account. Misses go to the database; unknown ids are not
//! cached (they may be created later).

use std::collections::HashMap;
use std::sync::RwLock;

use ledger::LedgerError;
use ledger::accounts::{self, AccountKey};
use sqlx::PgPool;
use uuid::Uuid;

/// Bound on cached accounts (~64 bytes each, so ~16 MiB at most); past it
/// the cache starts over (a miss costs one indexed lookup, so a crude bound
/// is enough).
const CAPACITY: usize = 250_000;

#[derive(Default)]
pub struct AccountCache {
    map: RwLock<HashMap<Uuid, AccountKey>>,
}

impl AccountCache {
    /// The keys of `ids`, in order; `None` for an account that does not exist.
    pub async fn lookup<const N: usize>(
        &self,
        pool: &PgPool,
        ids: [Uuid; N],
    ) -> Result<[Option<AccountKey>; N], LedgerError> {
        let mut found = [None; N];
        let mut missing = Vec::new();
        {
            let map = self.map.read().unwrap_or_else(|e| e.into_inner());
            for (slot, id) in found.iter_mut().zip(ids) {
                *slot = map.get(&id).copied();
                if slot.is_none() {
                    missing.push(id);
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let fetched = accounts::keys(pool, &missing).await?;
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() + fetched.len() > CAPACITY {
            map.clear();
        }
        for key in fetched {
            map.insert(key.id, key);
            for (slot, id) in found.iter_mut().zip(ids) {
                if id == key.id {
                    *slot = Some(key);
                }
            }
        }
        Ok(found)
    }
}

impl AccountCache {
    /// Loads the most recent accounts (up to the cache's bound) so that the
    /// first transfer of each account needs no lookup either.
    pub async fn warm(&self, pool: &PgPool) -> Result<usize, LedgerError> {
        let keys = accounts::all_keys(pool, (CAPACITY / 2) as i64).await?;
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        for key in &keys {
            map.insert(key.id, *key);
        }
        Ok(keys.len())
    }

    /// The keys of every id that exists (for batches: one query for all misses).
    pub async fn lookup_many(
        &self,
        pool: &PgPool,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, AccountKey>, LedgerError> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let map = self.map.read().unwrap_or_else(|e| e.into_inner());
            for id in ids {
                match map.get(id) {
                    Some(k) => {
                        found.insert(*id, *k);
                    }
                    None => missing.push(*id),
                }
            }
        }
        if !missing.is_empty() {
            let fetched = accounts::keys(pool, &missing).await?;
            let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
            if map.len() + fetched.len() > CAPACITY {
                map.clear();
            }
            for key in fetched {
                map.insert(key.id, key);
                found.insert(key.id, key);
            }
        }
        Ok(found)
    }
}
