//! Where the token comes from: `--token`/`BANKCTL_TOKEN`, else the login
//! cache written by `bankctl login`.
//!
//! The cache is `$XDG_CONFIG_HOME/bankctl/token.json` (or
//! `~/.config/bankctl/token.json`), mode 0600 in a 0700 directory, written
//! atomically. It remembers which API issued the token and when it expires,
//! so a token is never sent to another server, nor used once stale.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::Failure;

/// A cached token this close to expiry is not used: a request started with
/// it could be refused half-way through a long upload.
const EXPIRY_MARGIN_SECS: u64 = 30;
/// Lifetime assumed when the server does not say (the gateway's default).
const DEFAULT_TTL_SECS: u64 = 900;

// Deliberately no Debug: the token must never be printed.
#[derive(Serialize, Deserialize)]
struct Cached {
    api: String,
    username: String,
    access_token: String,
    /// Unix seconds.
    expires_at: u64,
}

pub struct Saved {
    pub path: PathBuf,
    pub expires_at: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The cache file, following the XDG base directory rules (a relative
/// `XDG_CONFIG_HOME` is ignored, as the specification says).
pub fn cache_path() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".config"))
        })?;
    Some(config.join("bankctl").join("token.json"))
}

/// The token to use for `api`: the explicit one, else a fresh cached one
/// issued by the same API; otherwise why there is none, in words.
pub fn resolve(explicit: Option<String>, api: &str) -> Result<String, String> {
    resolve_in(cache_path(), explicit, api)
}

fn resolve_in(
    path: Option<PathBuf>,
    explicit: Option<String>,
    api: &str,
) -> Result<String, String> {
    if let Some(t) = explicit.filter(|t| !t.trim().is_empty()) {
        return Ok(t.trim().to_owned());
    }
    let login = "run `bankctl login --username NAME` or set BANKCTL_TOKEN";
    let not_logged_in = || format!("not logged in to {api}: {login}");
    let path = path.ok_or_else(not_logged_in)?;
    let text = fs::read_to_string(path).map_err(|_| not_logged_in())?;
    let cached: Cached = serde_json::from_str(&text).map_err(|_| not_logged_in())?;
    if cached.api != api {
        return Err(format!(
            "the cached login is for {}, not {api}: {login}",
            cached.api
        ));
    }
    if cached.expires_at <= now() + EXPIRY_MARGIN_SECS {
        return Err(format!(
            "the login of {} to {api} has expired: {login}",
            cached.username
        ));
    }
    Ok(cached.access_token)
}

/// Stores a token from `api` for `username`.
pub fn save(
    api: &str,
    username: &str,
    token: &str,
    expires_in: Option<u64>,
) -> Result<Saved, Failure> {
    let path = cache_path().ok_or_else(|| {
        Failure::invalid("no place for the login cache: set HOME or XDG_CONFIG_HOME")
    })?;
    save_to(path, api, username, token, expires_in)
}

fn save_to(
    path: PathBuf,
    api: &str,
    username: &str,
    token: &str,
    expires_in: Option<u64>,
) -> Result<Saved, Failure> {
    let io = |what: &str, e: std::io::Error| {
        Failure::invalid(format!("cannot {what} {}: {e}", path.display()))
    };
    let dir = path
        .parent()
        .ok_or_else(|| Failure::invalid("the login cache path has no directory"))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io("create the directory of", e))?;
    let expires_at = now() + expires_in.unwrap_or(DEFAULT_TTL_SECS);
    let cached = Cached {
        api: api.to_owned(),
        username: username.to_owned(),
        access_token: token.to_owned(),
        expires_at,
    };
    let text = serde_json::to_vec_pretty(&cached)
        .map_err(|e| Failure::invalid(format!("cannot encode the login cache: {e}")))?;
    // Write a private temporary file, then rename: readers never see a
    // half-written file, and the token is never world-readable, not even
    // for a moment.
    let tmp = dir.join(format!(".token.{}.tmp", std::process::id()));
    // A leftover would keep its old permissions: start from nothing.
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("write", e))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(|e| io("write", e))?;
    fs::rename(&tmp, &path).map_err(|e| io("write", e))?;
    Ok(Saved { path, expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    const API: &str = "http://127.0.0.1:8080";

    #[test]
    fn a_saved_token_is_private_and_only_for_its_api_while_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg/bankctl/token.json");
        let saved = save_to(path.clone(), API, "alice", "tok", Some(900)).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&saved.path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(resolve_in(Some(path.clone()), None, API), Ok("tok".into()));
        // An explicit token wins; another API never gets this one.
        assert_eq!(
            resolve_in(Some(path.clone()), Some("flag".into()), API),
            Ok("flag".into())
        );
        let other = resolve_in(Some(path.clone()), None, "https://bank.example");
        assert!(other.unwrap_err().contains("is for http://127.0.0.1:8080"));
        // Nearly expired counts as expired.
        save_to(path.clone(), API, "alice", "tok", Some(EXPIRY_MARGIN_SECS)).unwrap();
        let stale = resolve_in(Some(path.clone()), None, API);
        assert!(stale.unwrap_err().contains("expired"));
        let none = resolve_in(Some(dir.path().join("missing.json")), None, API);
        assert!(none.unwrap_err().starts_with("not logged in"));
    }
}
