//! Configuration from environment variables with working development defaults.
//! Secrets can also come from a file named by `<NAME>_FILE` (Docker/Kubernetes
//! secrets), which wins over the plain variable.

use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
    #[error("cannot read {name}_FILE ({path}): {source}")]
    File {
        name: String,
        path: String,
        source: std::io::Error,
    },
    #[error("{0} is required in production mode")]
    Missing(String),
}

/// The raw value of `name`, if set and not empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `name` parsed as `T`, or `default` when unset.
pub fn parse<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name: name.to_owned(),
                reason: e.to_string(),
            }),
    }
}

/// A string setting with a default.
pub fn string(name: &str, default: &str) -> String {
    var(name).unwrap_or_else(|| default.to_owned())
}

/// A duration given in milliseconds (`<NAME>` is expected to end in `_MS`).
pub fn millis(name: &str, default_ms: u64) -> Result<Duration, ConfigError> {
    parse(name, default_ms).map(Duration::from_millis)
}

/// A secret: from the file named by `<name>_FILE` if set, else from `<name>`.
/// Trailing newlines in files are trimmed (editors add them).
pub fn secret(name: &str) -> Result<Option<String>, ConfigError> {
    let file_var = format!("{name}_FILE");
    if let Some(path) = var(&file_var) {
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::File {
            name: name.to_owned(),
            path,
            source,
        })?;
        return Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()));
    }
    Ok(var(name))
}

/// True when `APP_ENV=production`: dev defaults for secrets are refused.
pub fn is_production() -> bool {
    var("APP_ENV").is_some_and(|v| v.eq_ignore_ascii_case("production"))
}

/// Replaces the password in a URL with `***` so it can be logged.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Splits `scheme://user:password@host…` into the credentials and the URL
/// without them. async-nats ignores credentials in the URL, so the services
/// take them out of NATS_URL and pass them as options.
pub fn split_credentials(url: &str) -> (Option<(String, String)>, String) {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let rest = format!("{}{}", &url[..scheme + 3], &url[at + 1..]);
            match userinfo.split_once(':') {
                Some((user, password)) => (Some((user.to_owned(), password.to_owned())), rest),
                None => (Some((userinfo.to_owned(), String::new())), rest),
            }
        }
        _ => (None, url.to_owned()),
    }
}

/// NATS credentials and the URL to dial: the user:password in `url` if it
/// has one, else `NATS_USER` with `NATS_PASSWORD` (or `NATS_PASSWORD_FILE`),
/// so a deployment can keep the URL in plain config and the password in a
/// secret file.
pub fn nats_credentials(url: &str) -> Result<(Option<(String, String)>, String), ConfigError> {
    let (credentials, addr) = split_credentials(url);
    if credentials.is_some() {
        return Ok((credentials, addr));
    }
    match var("NATS_USER") {
        Some(user) => Ok((
            Some((user, secret("NATS_PASSWORD")?.unwrap_or_default())),
            addr,
        )),
        None => Ok((None, addr)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_credentials() {
        assert_eq!(
            split_credentials("nats://gateway:pw@nats:4222"),
            (
                Some(("gateway".into(), "pw".into())),
                "nats://nats:4222".into()
            )
        );
        assert_eq!(
            split_credentials("nats://127.0.0.1:4222"),
            (None, "nats://127.0.0.1:4222".into())
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://bank:s3cret@db:5432/bank"),
            "postgres://bank:***@db:5432/bank"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("nats://u@h:4222"), "nats://u@h:4222");
    }
}
