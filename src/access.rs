//! Who may open a WebSocket, checked on the upgrade request in the order
//! the contract fixes: origin (403), token (401), name (400), capacity
//! (503). Also the tokens themselves: HS256 JWTs whose `sub` is the name.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Secret};
use crate::domain::UserName;

/// Seconds of clock difference tolerated on `exp`.
const LEEWAY_SECS: u64 = 5;

/// Why an upgrade (or an authenticated HTTP request) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// HTTP 403: the `Origin` header (held here) is neither the server's host nor allowed.
    #[error("origin {0} is not allowed to connect")]
    Origin(String),
    /// HTTP 401: the token is missing, invalid or expired (or could not be signed).
    #[error("{0}")]
    Token(String),
    /// HTTP 400: the `name` query parameter is not a valid user name.
    #[error("{0}")]
    Name(String),
    /// HTTP 503: the connection limit (held here) is reached.
    #[error("the server is full ({0} connections): try again later")]
    Full(usize),
}

/// The claims walkie reads from and writes into tokens.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

/// Verifies and mints HS256 tokens with the server's secret.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Tokens {
    /// Keys for `secret`; verification requires `exp` and `sub`, with 5 s of leeway.
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
            validation,
        }
    }

    /// A token for `name`, valid for `ttl`.
    pub fn mint(&self, name: &UserName, ttl: Duration) -> Result<String, Refusal> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let claims = Claims { sub: name.to_string(), exp: (now + ttl).as_secs() };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|error| Refusal::Token(format!("cannot sign a token: {error}")))
    }

    /// The name a valid, unexpired token was issued for.
    pub fn verify(&self, token: &str) -> Result<UserName, Refusal> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| Refusal::Token(format!("invalid token: {error}")))?;
        UserName::parse(data.claims.sub).map_err(|reason| {
            Refusal::Token(format!("invalid token: its sub is not a valid {reason}"))
        })
    }
}

/// The checks of an upgrade request; one per server, shared by workers.
pub struct Access {
    tokens: Option<Tokens>,
    allowed_origins: Vec<String>,
    max_connections: Option<usize>,
    open: Arc<AtomicUsize>,
}

impl Access {
    /// The checks `config` asks for: its auth secret, allowed origins and connection limit.
    pub fn new(config: &Config) -> Self {
        Self {
            tokens: config.auth_secret.as_ref().map(Tokens::new),
            allowed_origins: config.allowed_origins.iter().map(|o| normalize_origin(o)).collect(),
            max_connections: config.max_connections,
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Whether tokens are required.
    pub fn requires_tokens(&self) -> bool {
        self.tokens.is_some()
    }

    /// A browser's `Origin` must be the server's own host or an allowed
    /// origin; requests without one (non-browser clients) pass.
    pub fn check_origin(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), Refusal> {
        let Some(origin) = origin else { return Ok(()) };
        let normalized = normalize_origin(origin);
        let same_host = match (normalized.split_once("://"), host) {
            (Some((_, origin_host)), Some(host)) => origin_host.eq_ignore_ascii_case(host),
            _ => false,
        };
        if same_host || self.allowed_origins.contains(&normalized) {
            Ok(())
        } else {
            Err(Refusal::Origin(origin.to_owned()))
        }
    }

    /// With a secret: the token's name (a missing or bad token is refused).
    /// Without: `None`, and the token is ignored.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Option<UserName>, Refusal> {
        let Some(tokens) = &self.tokens else {
            return Ok(None);
        };
        let token = token.ok_or_else(|| Refusal::Token("a token is required".into()))?;
        tokens.verify(token).map(Some)
    }

    /// Takes a connection slot, given back when the permit is dropped.
    pub fn admit(&self) -> Result<ConnectionPermit, Refusal> {
        let open = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        let permit = ConnectionPermit { open: self.open.clone() };
        match self.max_connections {
            Some(max) if open > max => Err(Refusal::Full(max)),
            _ => Ok(permit),
        }
    }

    /// Open WebSocket connections now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// One open connection, counted until dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    open: Arc<AtomicUsize>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(tweak: impl FnOnce(&mut Config)) -> Access {
        let mut config = Config::default();
        tweak(&mut config);
        Access::new(&config)
    }

    #[test]
    fn same_host_listed_and_absent_origins_pass_others_do_not() {
        let access = access(|c| c.allowed_origins = vec!["https://App.example.com/".into()]);
        let host = Some("127.0.0.1:8080");
        assert!(access.check_origin(None, host).is_ok());
        assert!(access.check_origin(Some("http://127.0.0.1:8080"), host).is_ok());
        assert!(access.check_origin(Some("https://app.example.com"), host).is_ok());
        assert!(access.check_origin(Some("http://127.0.0.1:9999"), host).is_err());
        assert!(access.check_origin(Some("https://evil.example"), host).is_err());
        assert!(access.check_origin(Some("null"), host).is_err());
    }

    #[test]
    fn tokens_carry_the_name_and_expire() {
        let tokens = Tokens::new(&Secret::new("s3cret"));
        let alice = UserName::parse("alice").unwrap();
        let token = tokens.mint(&alice, Duration::from_secs(60)).unwrap();
        assert_eq!(tokens.verify(&token).unwrap(), alice);
        assert!(Tokens::new(&Secret::new("other")).verify(&token).is_err());
        assert!(tokens.verify("not.a.token").is_err());
        let claims = Claims { sub: "alice".into(), exp: 1 };
        let expired = jsonwebtoken::encode(&Header::default(), &claims, &tokens.encoding).unwrap();
        assert!(tokens.verify(&expired).is_err());
    }

    #[test]
    fn without_a_secret_tokens_are_ignored() {
        let access = access(|_| {});
        assert_eq!(access.authenticate(Some("garbage")), Ok(None));
        let secured = access_with_secret();
        assert!(secured.authenticate(None).is_err());
    }

    fn access_with_secret() -> Access {
        access(|c| c.auth_secret = Some(Secret::new("k")))
    }

    #[test]
    fn permits_count_open_connections_up_to_the_limit() {
        let access = access(|c| c.max_connections = Some(1));
        let first = access.admit().unwrap();
        assert_eq!(access.admit().unwrap_err(), Refusal::Full(1));
        assert_eq!(access.open_connections(), 1);
        drop(first);
        assert!(access.admit().is_ok());
    }
}
