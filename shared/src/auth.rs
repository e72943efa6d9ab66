//! Authentication: argon2id password hashes and HS256 access tokens.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm as Argon2Algorithm, Argon2, Params, Version};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{self, ConfigError};

/// Token issuer and audience: a token minted for another service is refused.
pub const TOKEN_ISSUER: &str = "bank-gateway";
pub const TOKEN_AUDIENCE: &str = "bank-api";
/// Access tokens are short-lived: a leaked one is useful for minutes, not days.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// Clock skew tolerated between gateway and notifier hosts.
const CLOCK_LEEWAY_SECS: u64 = 5;
/// Shortest HMAC secret accepted: 256 bits, the size of the HS256 output.
const SECRET_LEN_MIN: usize = 32;
/// The development secret. Production mode refuses to start with it.
pub const DEV_JWT_SECRET: &str = "dev-only-secret-change-me-0123456789abcdef";

/// What a caller may do. Enforced by the gateway's authorization layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Moves only their own money, sees only their own data.
    Customer,
    /// Submits batches from the accounts it owns.
    Batch,
    /// Reads everything, moves nothing.
    Ops,
    /// Reverses committed transfers (with a reason); reads transfers and
    /// accounts; sends no transfers or holds of their own.
    Reverser,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Batch => "batch",
            Self::Ops => "ops",
            Self::Reverser => "reverser",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Self::Customer),
            "batch" => Some(Self::Batch),
            "ops" => Some(Self::Ops),
            "reverser" => Some(Self::Reverser),
            _ => None,
        }
    }
}

/// Registered JWT claims plus the role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    pub role: Role,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    /// Token id, so a token can be named in the audit trail without logging it.
    pub jti: Uuid,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("token signed with an unknown key")]
    UnknownKey,
    #[error("cannot sign token: {0}")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

/// Signing and verification keys. One key signs; every listed key verifies,
/// so a rotation keeps the previous key valid until its tokens expire.
#[derive(Clone)]
pub struct JwtKeys {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("JwtKeys")
            .field("signing_kid", &self.signing_kid)
            .field("kids", &self.verifying.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl JwtKeys {
    /// `keys[0]` signs; all of them verify. Each is `(kid, secret)`.
    pub fn new(keys: &[(String, String)]) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: "JWT_SECRET".into(),
            reason,
        };
        let (signing_kid, signing_secret) = keys
            .first()
            .ok_or_else(|| invalid("no signing key".into()))?;
        let mut verifying = HashMap::new();
        for (kid, secret) in keys {
            if secret.len() < SECRET_LEN_MIN {
                return Err(invalid(format!(
                    "key {kid} is shorter than {SECRET_LEN_MIN} bytes"
                )));
            }
            let key =
                DecodingKey::from_secret(secret.as_bytes()).map_err(|e| invalid(e.to_string()))?;
            verifying.insert(kid.clone(), key);
        }
        let signing = EncodingKey::from_secret(signing_secret.as_bytes())
            .map_err(|e| invalid(e.to_string()))?;
        // The algorithm is pinned: `none`, RS256 with an HMAC key and every other
        // confusion is refused before the signature is even looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[TOKEN_ISSUER]);
        validation.set_audience(&[TOKEN_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = CLOCK_LEEWAY_SECS;
        Ok(Self {
            signing_kid: signing_kid.clone(),
            signing,
            verifying,
            validation,
        })
    }

    /// Keys from the environment: `JWT_SECRET` (or `JWT_SECRET_FILE`) signs with
    /// kid `JWT_KID` (default `k1`); `JWT_PREVIOUS_SECRET` with `JWT_PREVIOUS_KID`
    /// still verifies during a rotation. Outside production the development
    /// secret is used when none is given; in production it is refused.
    pub fn from_env() -> Result<Self, ConfigError> {
        let secret = config::secret("JWT_SECRET")?;
        let secret = match secret {
            Some(s) => s,
            None if config::is_production() => {
                return Err(ConfigError::Missing("JWT_SECRET".into()));
            }
            None => DEV_JWT_SECRET.to_owned(),
        };
        if config::is_production() && secret == DEV_JWT_SECRET {
            return Err(ConfigError::Invalid {
                name: "JWT_SECRET".into(),
                reason: "the development secret cannot be used in production".into(),
            });
        }
        let mut keys = vec![(config::string("JWT_KID", "k1"), secret)];
        if let Some(previous) = config::secret("JWT_PREVIOUS_SECRET")? {
            keys.push((config::string("JWT_PREVIOUS_KID", "k0"), previous));
        }
        Self::new(&keys)
    }

    /// Mints an access token for `user` with `role`.
    pub fn issue(&self, user: Uuid, role: Role) -> Result<(String, Claims), TokenError> {
        let now = unix_now();
        let claims = Claims {
            iss: TOKEN_ISSUER.to_owned(),
            aud: TOKEN_AUDIENCE.to_owned(),
            sub: user,
            role,
            iat: now,
            nbf: now,
            exp: now + ACCESS_TOKEN_TTL.as_secs(),
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.signing).map_err(TokenError::Signing)?;
        Ok((token, claims))
    }

    /// Verifies signature, algorithm, issuer, audience, expiry and not-before.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(TokenError::Invalid)?;
        let key = match header.kid.as_deref() {
            Some(kid) => self.verifying.get(kid).ok_or(TokenError::UnknownKey)?,
            None => return Err(TokenError::UnknownKey),
        };
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(TokenError::Invalid)?;
        Ok(data.claims)
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// argon2id with one of OWASP's equivalent parameter sets: 12 MiB, 3
/// iterations, 1 lane (same defence as 19 MiB × 2, less memory per check:
/// the gateway's resident memory follows its concurrent checks). Hashes
/// made with other parameters still verify (they carry their own).
fn argon2() -> Argon2<'static> {
    // These constants are valid by construction; `Params::new` only rejects
    // values outside argon2's limits.
    let params = Params::new(12 * 1024, 3, 1, None).unwrap_or_default();
    Argon2::new(Argon2Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes a password into a PHC string (`$argon2id$v=19$m=12288,t=3,p=1$…`).
/// CPU-heavy: call from a blocking thread.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Checks a password against a stored hash. With `None` (unknown user) it
/// verifies against a fixed dummy hash, so unknown users and wrong passwords
/// cost the same time and give the same answer. CPU-heavy.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy =
        DUMMY.get_or_init(|| hash_password("dummy password for unknown users").unwrap_or_default());
    let (hash, known) = match stored {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let ok = argon2().verify_password(password.as_bytes(), hash).is_ok();
    ok && known
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(&[("k1".into(), "a".repeat(32))]).unwrap()
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let keys = keys();
        let user = Uuid::new_v4();
        let (token, claims) = keys.issue(user, Role::Customer).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), claims);

        let other = JwtKeys::new(&[("k1".into(), "b".repeat(32))]).unwrap();
        assert!(other.verify(&token).is_err(), "wrong key");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_payload = base64_url(&format!(
            r#"{{"iss":"{TOKEN_ISSUER}","aud":"{TOKEN_AUDIENCE}","sub":"{user}","role":"ops","exp":{},"nbf":0,"iat":0,"jti":"{}"}}"#,
            unix_now() + 60,
            Uuid::new_v4()
        ));
        parts[1] = &forged_payload;
        assert!(keys.verify(&parts.join(".")).is_err(), "tampered payload");
        let none_header = base64_url(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        let unsigned = format!("{none_header}.{}.", token.split('.').nth(1).unwrap());
        assert!(keys.verify(&unsigned).is_err(), "alg none");
    }

    #[test]
    fn rotation_accepts_previous_key() {
        let old = JwtKeys::new(&[("k0".into(), "o".repeat(32))]).unwrap();
        let (token, _) = old.issue(Uuid::new_v4(), Role::Ops).unwrap();
        let rotated =
            JwtKeys::new(&[("k1".into(), "n".repeat(32)), ("k0".into(), "o".repeat(32))]).unwrap();
        assert!(rotated.verify(&token).is_ok());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(JwtKeys::new(&[("k".into(), "short".into())]).is_err());
    }

    #[test]
    fn passwords() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"));
        assert!(verify_password("correct horse", Some(&h)));
        assert!(!verify_password("wrong", Some(&h)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("x", Some("not a hash")));
    }

    fn base64_url(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }
}
