//! API keys: their format, their generation, and verifying a presented key
//! with a bounded cache so bcrypt runs once per key, not once per request.
//!
//! A key reads `wdn_<key id>_<secret>`: the key id (a UUID in simple form)
//! finds the stored bcrypt hash in O(1); the secret is 40 alphanumeric
//! characters from the operating system's CSPRNG (about 238 bits).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

use crate::store::{KeyRecord, Role, Store, StoreError};

/// Every key starts with this.
pub const PREFIX: &str = "wdn_";
/// Length of the secret part.
pub const SECRET_LEN: usize = 40;
/// How long a key that failed verification is refused without bcrypt.
const FAILED_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// A newly made key: shown once, then only its hash is kept.
#[derive(Debug)]
pub struct NewToken {
    /// The key id.
    pub id: Uuid,
    /// The secret part (store only its hash).
    pub secret: String,
    /// The whole key as the client sends it.
    pub token: String,
}

/// Makes a new key.
pub fn generate() -> NewToken {
    let id = Uuid::new_v4();
    // `ThreadRng` is a CSPRNG seeded from the operating system.
    let secret: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(SECRET_LEN).map(char::from).collect();
    let token = format!("{PREFIX}{}_{secret}", id.simple());
    NewToken { id, secret, token }
}

/// Splits a presented key into its id and secret, if it has the right shape.
pub fn parse(token: &str) -> Option<(Uuid, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 32 || secret.len() < 32 || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some((Uuid::try_parse(id).ok()?, secret))
}

/// Hashes a secret with bcrypt at `cost`.
pub fn hash_secret(secret: &str, cost: u32) -> Result<String, bcrypt::BcryptError> {
    bcrypt::hash(secret, cost)
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// The key.
    pub key_id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
    /// App or admin.
    pub role: Role,
}

/// Why a key was refused. Each maps to 401; the message never echoes the key.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No key in the request.
    #[error("missing API key: send `Authorization: Bearer wdn_…` or `x-api-key: wdn_…`")]
    Missing,
    /// Not shaped like a Warden key.
    #[error("malformed API key: expected `wdn_<key id>_<secret>`")]
    Malformed,
    /// No such key, or the secret is wrong.
    #[error("unknown API key")]
    Unknown,
    /// The key was deactivated.
    #[error("this API key is no longer active")]
    Inactive,
    /// The database could not be asked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
struct Verified {
    /// SHA-256 of the whole presented key.
    token_sha: [u8; 32],
    /// The bcrypt hash it was verified against; a rotation changes it.
    secret_hash: Arc<str>,
    /// Set when it matched the previous secret during a rotation's grace
    /// period: the entry stops answering then.
    valid_until: Option<chrono::DateTime<chrono::Utc>>,
    principal: Principal,
}

/// Verifies keys, remembering the ones it has verified.
///
/// The cache is keyed by key id, so revoking a key drops its entry in O(1);
/// each entry holds the SHA-256 of the full presented key, compared in
/// constant time, so a wrong secret for a cached id never matches. Entries
/// are also re-checked against the database every second
/// ([`Authenticator::revalidate`]), so a key deactivated or rotated by
/// another process stops working within a second.
#[derive(Debug)]
pub struct Authenticator {
    store: Store,
    cache: DashMap<Uuid, Verified>,
    /// SHA-256 of keys that failed verification, so a repeated wrong key
    /// is refused without running bcrypt again.
    failed: DashMap<[u8; 32], std::time::Instant>,
    /// One lock per key id being verified.
    inflight: DashMap<Uuid, Arc<tokio::sync::Mutex<()>>>,
    capacity: usize,
    bcrypt_verifications: AtomicU64,
}

impl Authenticator {
    /// An authenticator remembering at most `capacity` keys.
    pub fn new(store: Store, capacity: usize) -> Self {
        Self {
            store,
            cache: DashMap::new(),
            failed: DashMap::new(),
            inflight: DashMap::new(),
            capacity: capacity.max(1),
            bcrypt_verifications: AtomicU64::new(0),
        }
    }

    /// How many times bcrypt has run (cache misses that reached it).
    pub fn bcrypt_verifications(&self) -> u64 {
        self.bcrypt_verifications.load(Ordering::Relaxed)
    }

    /// Verifies a presented key.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let (id, secret) = parse(token).ok_or(AuthError::Malformed)?;
        let sha: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(p) = self.cached(&id, &sha) {
            return Ok(p);
        }
        if self.recently_failed(&sha) {
            return Err(AuthError::Unknown);
        }
        // One verification per key id at a time: when many connections
        // present a new key at once, one runs bcrypt and the rest reuse its
        // result, instead of each burning ~0.25 s of CPU.
        let lock = self.inflight.entry(id).or_default().clone();
        let _turn = lock.lock().await;
        if let Some(p) = self.cached(&id, &sha) {
            return Ok(p);
        }
        if self.recently_failed(&sha) {
            return Err(AuthError::Unknown);
        }
        let outcome = self.verify(id, secret, sha).await;
        drop(_turn);
        self.inflight.remove_if(&id, |_, l| Arc::strong_count(l) <= 2);
        outcome
    }

    fn cached(&self, id: &Uuid, sha: &[u8; 32]) -> Option<Principal> {
        let hit = self.cache.get(id)?;
        let current = hit.valid_until.is_none_or(|until| chrono::Utc::now() < until);
        (current && bool::from(hit.token_sha.ct_eq(sha))).then_some(hit.principal)
    }

    fn recently_failed(&self, sha: &[u8; 32]) -> bool {
        match self.failed.get(sha) {
            Some(at) => at.elapsed() < FAILED_TTL,
            None => false,
        }
    }

    async fn verify(&self, id: Uuid, secret: &str, sha: [u8; 32]) -> Result<Principal, AuthError> {
        let record: KeyRecord = self.store.key(id).await?.ok_or(AuthError::Unknown)?;
        if !record.active {
            return Err(AuthError::Inactive);
        }
        // The current secret, or during a rotation's grace period the old one.
        let now = chrono::Utc::now();
        let mut candidates = vec![(record.secret_hash.clone(), None)];
        if let (Some(prev), Some(until)) = (&record.previous_secret_hash, record.previous_valid_until) {
            if now < until {
                candidates.push((prev.clone(), Some(until)));
            }
        }
        let secret = secret.to_owned();
        self.bcrypt_verifications.fetch_add(1, Ordering::Relaxed);
        // bcrypt is deliberately slow; keep it off the async workers.
        let matched = tokio::task::spawn_blocking(move || {
            candidates.into_iter().find(|(hash, _)| bcrypt::verify(&secret, hash).unwrap_or(false))
        })
        .await
        .ok()
        .flatten();
        let Some((matched_hash, valid_until)) = matched else {
            if self.failed.len() >= self.capacity {
                self.failed.retain(|_, at| at.elapsed() < FAILED_TTL);
                if self.failed.len() >= self.capacity {
                    self.failed.clear();
                }
            }
            self.failed.insert(sha, std::time::Instant::now());
            return Err(AuthError::Unknown);
        };
        let principal = Principal { key_id: record.id, customer_id: record.customer_id, role: record.role };
        if self.cache.len() >= self.capacity {
            // Bounded: drop an arbitrary entry; it costs one bcrypt later.
            let victim = self.cache.iter().next().map(|e| *e.key());
            if let Some(v) = victim {
                self.cache.remove(&v);
            }
        }
        self.cache.insert(id, Verified { token_sha: sha, secret_hash: matched_hash.into(), valid_until, principal });
        Ok(principal)
    }

    /// Forgets a key at once (on rotation or deletion).
    pub fn invalidate(&self, key_id: Uuid) {
        self.cache.remove(&key_id);
    }

    /// Drops cached keys that were deleted, deactivated or rotated in the
    /// database since they were verified.
    pub async fn revalidate(&self) -> Result<usize, StoreError> {
        let ids: Vec<Uuid> = self.cache.iter().map(|e| *e.key()).collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let current = self.store.key_states(&ids).await?;
        let mut dropped = 0;
        for id in ids {
            let now = chrono::Utc::now();
            let keep = match (current.get(&id), self.cache.get(&id)) {
                (Some(record), Some(cached)) => record.accepts_hash(&cached.secret_hash, now),
                _ => false,
            };
            if !keep {
                self.cache.remove(&id);
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back() {
        let t = generate();
        assert!(t.token.starts_with("wdn_"));
        assert_eq!(t.secret.len(), SECRET_LEN);
        assert_eq!(parse(&t.token), Some((t.id, t.secret.as_str())));
        assert_ne!(generate().secret, t.secret);
    }

    #[test]
    fn malformed_keys_are_refused() {
        let t = generate();
        for bad in [
            String::new(),
            "Bearer x".to_owned(),
            t.token.replacen("wdn_", "wdx_", 1),
            format!("wdn_{}_short", t.id.simple()),
            format!("wdn_{}_{}", "z".repeat(32), t.secret),
            format!("wdn_{}_{}!", t.id.simple(), t.secret),
            format!("wdn_{}{}", t.id.simple(), t.secret),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }
}
