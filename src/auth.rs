//! API keys and scopes: pure rules, no I/O. A key is a random secret shown once; only its
//! SHA-256 digest is stored, which is enough because the secret has 192 bits of entropy.

use std::fmt;
use std::str::FromStr;

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// Bytes of randomness in a new key.
const KEY_SECRET_BYTES: usize = 24;
/// Every key starts with this, so leaked keys are easy to recognise in logs and scanners.
const KEY_PREFIX: &str = "cg_";
/// Longest key accepted on the wire; anything longer is rejected before hashing.
pub const MAX_KEY_LENGTH: usize = 128;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// CreditService: quote, authorize, settle, release, refund.
    Worker,
    /// AccountService writes: accounts, grants, allowances, spend limits.
    Billing,
    /// Reads: balances, ledger, usage, catalog.
    Reader,
    /// Catalog publishing and key management; passes every check.
    Admin,
}

impl Scope {
    /// Every scope, in display order.
    pub const ALL: [Scope; 4] = [Scope::Worker, Scope::Billing, Scope::Reader, Scope::Admin];

    /// The scope's name as written in `--scopes` and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Worker => "worker",
            Scope::Billing => "billing",
            Scope::Reader => "reader",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::Worker => 1,
            Scope::Billing => 2,
            Scope::Reader => 4,
            Scope::Admin => 8,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A scope name that is not one of `worker`, `billing`, `reader`, `admin`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown scope {0:?}: expected worker, billing, reader or admin")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text.trim())
            .ok_or_else(|| UnknownScope(text.to_owned()))
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeSet(u8);

impl ScopeSet {
    /// All four scopes.
    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    /// Whether `scope` is in the set.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether a key with these scopes may make a call that accepts any of `accepted`.
    /// `admin` passes every check.
    pub fn permits(self, accepted: ScopeSet) -> bool {
        self.contains(Scope::Admin) || self.0 & accepted.0 != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes in the set, in display order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }

    /// The scope names, e.g. for storage.
    pub fn names(self) -> Vec<String> {
        self.iter().map(|scope| scope.as_str().to_owned()).collect()
    }

    /// Parses a comma-separated list such as `worker,reader`.
    pub fn parse_list(text: &str) -> Result<Self, UnknownScope> {
        text.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(Scope::from_str)
            .collect()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Self {
        ScopeSet(scopes.into_iter().fold(0, |bits, scope| bits | scope.bit()))
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.names().join(","))
    }
}

/// A newly generated key: the secret (shown once) and what is stored about it.
#[derive(Debug)]
pub struct NewApiKey {
    /// The full key, for the caller only.
    pub secret: String,
    /// Stored digest used to look the key up.
    pub hash: [u8; 32],
    /// The first characters, stored so that a key can be recognised without the secret.
    pub display_prefix: String,
}

impl NewApiKey {
    /// Generates a key from the operating system's random source.
    pub fn generate() -> Self {
        let mut secret_bytes = [0_u8; KEY_SECRET_BYTES];
        rand::rng().fill_bytes(&mut secret_bytes);
        let secret = format!("{KEY_PREFIX}{}", hex::encode(secret_bytes));
        let display_prefix = secret[..KEY_PREFIX.len() + 6].to_owned();
        NewApiKey {
            hash: hash_key(&secret),
            secret,
            display_prefix,
        }
    }
}

/// The stored digest of a key.
pub fn hash_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Extracts the key from an `authorization` header value of the form `Bearer <key>`.
pub fn bearer_key(header_value: &str) -> Option<&str> {
    let (scheme, key) = header_value.trim().split_once(' ')?;
    let key = key.trim();
    let well_formed = scheme.eq_ignore_ascii_case("bearer")
        && !key.is_empty()
        && key.len() <= MAX_KEY_LENGTH
        && key.bytes().all(|byte| byte.is_ascii_graphic());
    well_formed.then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_passes_every_check_and_others_only_their_own() {
        let worker: ScopeSet = [Scope::Worker].into_iter().collect();
        let readers: ScopeSet = [Scope::Reader, Scope::Billing].into_iter().collect();
        assert!(!worker.permits(readers));
        assert!(ScopeSet::all().permits(readers));
        assert!(
            [Scope::Admin]
                .into_iter()
                .collect::<ScopeSet>()
                .permits(worker)
        );
        assert!(
            [Scope::Billing]
                .into_iter()
                .collect::<ScopeSet>()
                .permits(readers)
        );
    }

    #[test]
    fn scope_lists_parse_and_reject_unknown_names() {
        assert_eq!(
            ScopeSet::parse_list("worker, reader").map(|set| set.to_string()),
            Ok("worker,reader".to_owned())
        );
        assert_eq!(
            ScopeSet::parse_list("worker,root"),
            Err(UnknownScope("root".to_owned()))
        );
        assert!(ScopeSet::parse_list("").is_ok_and(ScopeSet::is_empty));
    }

    #[test]
    fn new_keys_are_unique_and_hash_to_their_stored_digest() {
        let first = NewApiKey::generate();
        let second = NewApiKey::generate();
        assert_ne!(first.secret, second.secret);
        assert_eq!(hash_key(&first.secret), first.hash);
        assert!(first.secret.starts_with(&first.display_prefix));
        assert_eq!(first.secret.len(), KEY_PREFIX.len() + 2 * KEY_SECRET_BYTES);
    }

    #[test]
    fn bearer_header_is_parsed_strictly() {
        assert_eq!(bearer_key("Bearer cg_abc"), Some("cg_abc"));
        assert_eq!(bearer_key("bearer  cg_abc "), Some("cg_abc"));
        assert_eq!(bearer_key("Basic cg_abc"), None);
        assert_eq!(bearer_key("Bearer "), None);
        assert_eq!(bearer_key("cg_abc"), None);
        assert_eq!(bearer_key(&format!("Bearer {}", "a".repeat(200))), None);
    }
}
