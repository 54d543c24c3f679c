//! API keys: their format, their generation, and verifying a presented key
//! with a bounded cache so bcrypt runs once per key, not once per request.
//!
//! A key reads `wdn_<key id>_<secret>`: the key id (a UUID in simple form)
//! finds the stored bcrypt hash in O(1); the secret is 40 alphanumeric
//! characters from the operating system's CSPRNG (about 238 bits).
//!
//! Failed verifications are limited per key id and per client address
//! ([`flood`]), so wrong secrets can't keep the cores busy with bcrypt.

mod flood;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::sync::Cache;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

pub use self::flood::{ClientAddress, DEFAULT_FAILURE_QUOTA, FloodGuard, PASS_INTERVAL};
use crate::metrics::Metrics;
use crate::store::{Role, Store, StoreError};

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

/// The last entry of `header` in `headers` if it reads as an address, else
/// `peer` (see [`Authenticator::client_address`]).
fn address_from(
    header: Option<&axum::http::HeaderName>,
    headers: &axum::http::HeaderMap,
    peer: Option<IpAddr>,
) -> Option<IpAddr> {
    let Some(name) = header else { return peer };
    let last = headers.get_all(name).iter().next_back().and_then(|v| v.to_str().ok());
    let entry = last.and_then(|v| v.rsplit(',').next()).map(str::trim);
    entry.and_then(parse_address).or(peer)
}

/// An address as a proxy header writes it: `192.0.2.1`, `2001:db8::1`,
/// `[2001:db8::1]:443` or `192.0.2.1:443`.
fn parse_address(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().or_else(|| s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
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
    /// App, admin or viewer.
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
    /// Too many failed verifications for this key or from this address:
    /// refused without checking the secret (429).
    #[error("too many failed API key verifications; retry after {retry_after_secs} s")]
    Throttled {
        /// Seconds until a verification may be tried again.
        retry_after_secs: u64,
    },
    /// The database could not be asked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
struct Verified {
    /// SHA-256 of the whole presented key, compared in constant time.
    token_sha: [u8; 32],
    /// The key this token belongs to.
    key_id: Uuid,
    /// The bcrypt hash it was verified against; a rotation changes it.
    secret_hash: Arc<str>,
    /// Set when it matched the previous secret during a rotation's grace
    /// period: the entry stops answering then.
    valid_until: Option<chrono::DateTime<chrono::Utc>>,
    principal: Principal,
}

/// Verifies keys, remembering the ones it has verified.
///
/// The cache is keyed by the SHA-256 of the whole presented key (its first
/// eight bytes pick the entry; the full digest is then compared in constant
/// time), so during a rotation's grace period the old and the new secret
/// each have an entry. A hit means the client sent exactly a key that bcrypt
/// accepted; a wrong secret hashes elsewhere and never matches. Revoking a
/// key drops every entry of its id. Entries are re-checked against the
/// database whenever keys change anywhere and every few seconds regardless
/// ([`Authenticator::revalidate`]).
///
/// All three memories are bounded `quick_cache` caches (S3-FIFO eviction);
/// the verified-key cache's placeholder guards also make verification
/// single-flight: when many connections present a new key at once, one runs
/// bcrypt and the rest wait for its result.
#[derive(Debug)]
pub struct Authenticator {
    store: Store,
    cache: Cache<u64, Verified>,
    /// SHA-256 of keys that failed verification, so a repeated wrong key
    /// is refused without running bcrypt again.
    failed: Cache<[u8; 32], std::time::Instant>,
    /// Key ids the database didn't have, refused without asking again for a
    /// few seconds (cleared whenever keys change).
    unknown: Cache<Uuid, std::time::Instant>,
    /// Moves on every invalidation and revalidation; a verification that
    /// started before a revocation must not cache its result.
    generation: AtomicU64,
    bcrypt_verifications: AtomicU64,
    /// Failed-verification limits per key id and per client address.
    flood: FloodGuard,
    /// Counts failures by reason, when the service's metrics are given.
    metrics: Option<Arc<Metrics>>,
    /// The header a proxy in front sets to the client's address.
    address_header: Option<axum::http::HeaderName>,
}

fn bucket(sha: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(sha.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(b)
}

/// How long an unknown key id is refused without a database lookup.
const UNKNOWN_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl Verified {
    /// Whether this entry answers for the key whose digest is `sha`, now.
    fn answers(&self, sha: &[u8; 32]) -> bool {
        bool::from(self.token_sha.ct_eq(sha)) && self.valid_until.is_none_or(|until| chrono::Utc::now() < until)
    }
}

impl Authenticator {
    /// An authenticator remembering at most about `capacity` verified keys
    /// (and as many failed keys and unknown key ids).
    pub fn new(store: Store, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            store,
            cache: Cache::new(capacity),
            failed: Cache::new(capacity),
            unknown: Cache::new(capacity),
            generation: AtomicU64::new(0),
            bcrypt_verifications: AtomicU64::new(0),
            flood: FloodGuard::default(),
            metrics: None,
            address_header: None,
        }
    }

    /// Takes the client's address from `header` (set by a proxy in front,
    /// e.g. `x-forwarded-for`) instead of the connection's peer address.
    #[must_use]
    pub fn with_client_address_header(mut self, header: Option<axum::http::HeaderName>) -> Self {
        self.address_header = header;
        self
    }

    /// The client's address for the flood guard: with a configured header,
    /// its last entry (the address the proxy in front saw; the entries before
    /// it are the client's to write), else `peer`. A header that is missing
    /// or unreadable also gives `peer`.
    pub fn client_address(&self, headers: &axum::http::HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        address_from(self.address_header.as_ref(), headers, peer)
    }

    /// Uses `flood` to limit failed verifications, and counts failures in
    /// `metrics` (`warden_auth_failures_total{reason}`).
    #[must_use]
    pub fn with_flood_guard(mut self, flood: FloodGuard, metrics: Arc<Metrics>) -> Self {
        self.flood = flood;
        self.metrics = Some(metrics);
        self
    }

    /// Forgets in-process failure counts that are spent. Returns how many
    /// remain.
    pub fn sweep_failures(&self) -> usize {
        self.flood.sweep()
    }

    fn failure(&self, reason: &'static str, error: AuthError) -> AuthError {
        if let Some(m) = &self.metrics {
            m.auth_failure(reason);
        }
        error
    }

    /// How many times bcrypt has run (cache misses that reached it).
    pub fn bcrypt_verifications(&self) -> u64 {
        self.bcrypt_verifications.load(Ordering::Relaxed)
    }

    /// Verifies a presented key, sent from `client` (the connection's peer
    /// address; `None` when unknown).
    ///
    /// A key verified before is answered from memory. Otherwise, before
    /// bcrypt runs, the client address and the key id must be within their
    /// failed-verification limits ([`FloodGuard`]).
    ///
    /// # Errors
    /// [`AuthError`]: malformed, unknown (or wrong secret), inactive,
    /// throttled (too many failures), or the database could not be asked.
    pub async fn authenticate(&self, token: &str, client: Option<IpAddr>) -> Result<Principal, AuthError> {
        let (id, secret) = parse(token).ok_or_else(|| self.failure("malformed", AuthError::Malformed))?;
        let sha: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let slot = bucket(&sha);
        if let Some(hit) = self.cache.get(&slot).filter(|v| v.answers(&sha)) {
            return Ok(hit.principal);
        }
        if self.recently_failed(&sha) {
            return Err(self.failure("wrong_secret", AuthError::Unknown));
        }
        if self.unknown.get(&id).is_some_and(|at| at.elapsed() < UNKNOWN_TTL) {
            return Err(self.failure("unknown_key", AuthError::Unknown));
        }
        let address = ClientAddress::from(client);
        if let Err(retry_after_secs) = self.flood.check_address(address).await {
            return Err(self.failure("throttled", AuthError::Throttled { retry_after_secs }));
        }
        // One verification per presented key at a time: the first caller
        // gets the placeholder guard and runs bcrypt; the others wait for the
        // value it inserts. Keyed by the token's digest, so a stranger
        // guessing secrets for a known id doesn't queue the real holder.
        let guard = match self.cache.get_value_or_guard_async(&slot).await {
            Ok(hit) if hit.answers(&sha) => return Ok(hit.principal),
            // An expired grace-period entry, or (vanishingly rare) another
            // key in the same bucket: verify without the single-flight guard.
            Ok(_) => None,
            Err(guard) => Some(guard),
        };
        if self.recently_failed(&sha) {
            return Err(self.failure("wrong_secret", AuthError::Unknown));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let mut verified = self.verify(id, secret, sha, address).await?;
        let principal = verified.principal;
        // A revocation or a re-check of the cache that landed while bcrypt
        // ran: the record bcrypt was run against may be stale, so the key is
        // remembered only if a fresh read still accepts it. A revoked key
        // answers this one request, but is not remembered.
        if self.generation.load(Ordering::SeqCst) == generation || self.still_accepted(&mut verified).await {
            match guard {
                Some(guard) => {
                    let _ = guard.insert(verified);
                }
                None => self.cache.insert(slot, verified),
            }
        }
        Ok(principal)
    }

    /// Whether the database still accepts the secret `verified` matched,
    /// read after the cache's generation moved during its verification;
    /// updates its grace deadline from that read. `false` also when the
    /// generation moves again meanwhile, or the database can't be asked.
    ///
    /// Without this second read, every verification overlapping a re-check
    /// (one runs every few seconds) went unremembered, and the key's next
    /// request ran bcrypt again, with every request presenting it waiting.
    async fn still_accepted(&self, verified: &mut Verified) -> bool {
        let generation = self.generation.load(Ordering::SeqCst);
        let Ok(Some(record)) = self.store.key(verified.key_id).await else { return false };
        if !record.accepts_hash(&verified.secret_hash, chrono::Utc::now()) {
            return false;
        }
        if *verified.secret_hash != record.secret_hash {
            verified.valid_until = record.previous_valid_until;
        }
        self.generation.load(Ordering::SeqCst) == generation
    }

    fn recently_failed(&self, sha: &[u8; 32]) -> bool {
        self.failed.get(sha).is_some_and(|at| at.elapsed() < FAILED_TTL)
    }

    async fn verify(
        &self,
        id: Uuid,
        secret: &str,
        sha: [u8; 32],
        address: ClientAddress,
    ) -> Result<Verified, AuthError> {
        let Some(record) = self.store.key(id).await? else {
            self.unknown.insert(id, std::time::Instant::now());
            self.flood.record_failure(address).await;
            return Err(self.failure("unknown_key", AuthError::Unknown));
        };
        if !record.active {
            return Err(self.failure("inactive", AuthError::Inactive));
        }
        let reservation = match self.flood.reserve(id, address).await {
            Ok(reservation) => reservation,
            Err(retry_after_secs) => return Err(self.failure("throttled", AuthError::Throttled { retry_after_secs })),
        };
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
            // The reserved failure stays counted.
            self.failed.insert(sha, std::time::Instant::now());
            return Err(self.failure("wrong_secret", AuthError::Unknown));
        };
        self.flood.release(reservation).await;
        let principal = Principal { key_id: record.id, customer_id: record.customer_id, role: record.role };
        Ok(Verified { token_sha: sha, key_id: id, secret_hash: matched_hash.into(), valid_until, principal })
    }

    /// Forgets a key at once (on rotation or deletion): every cached token
    /// of it, and any verification of it still running.
    pub fn invalidate(&self, key_id: Uuid) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.cache.retain(|_, v| v.key_id != key_id);
        self.unknown.remove(&key_id);
    }

    /// Drops cached keys that were deleted, deactivated or rotated in the
    /// database since they were verified, and carries a rotation's grace
    /// deadline onto entries of the old secret. Returns how many it dropped.
    ///
    /// # Errors
    /// The database could not be asked; the cache is left as it was.
    pub async fn revalidate(&self) -> Result<usize, StoreError> {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.unknown.clear();
        let entries: Vec<(u64, Verified)> = self.cache.iter().collect();
        let mut ids: Vec<Uuid> = entries.iter().map(|(_, v)| v.key_id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(0);
        }
        let current = self.store.key_states(&ids).await?;
        let now = chrono::Utc::now();
        let mut dropped = 0;
        for (slot, mut v) in entries {
            let valid_until = match current.get(&v.key_id) {
                Some(record) if record.active && *v.secret_hash == record.secret_hash => None,
                Some(record) if record.accepts_hash(&v.secret_hash, now) => record.previous_valid_until,
                _ => {
                    // Only the entry that was checked: a verification that
                    // began after this pass may have cached a current one.
                    self.cache.remove_if(&slot, |cur| cur.secret_hash == v.secret_hash);
                    dropped += 1;
                    continue;
                }
            };
            if v.valid_until != valid_until {
                v.valid_until = valid_until;
                self.cache.insert(slot, v);
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
    fn the_client_address_comes_from_the_proxy_header_only_when_configured() {
        use axum::http::{HeaderMap, HeaderValue};
        let peer = Some(IpAddr::from([10, 0, 0, 1]));
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 198.51.100.4"));
        assert_eq!(address_from(None, &headers, peer), peer, "without the setting the header is ignored");
        let name = axum::http::HeaderName::from_static("x-forwarded-for");
        let proxied = |headers: &HeaderMap| address_from(Some(&name), headers, peer);
        assert_eq!(proxied(&headers), Some(IpAddr::from([198, 51, 100, 4])), "the last entry");
        headers.append("x-forwarded-for", HeaderValue::from_static("[2001:db8::7]:443"));
        assert_eq!(proxied(&headers), "2001:db8::7".parse().ok(), "the last header line");
        assert_eq!(proxied(&HeaderMap::new()), peer, "missing: the peer");
        let mut garbage = HeaderMap::new();
        garbage.insert("x-forwarded-for", HeaderValue::from_static("unknown"));
        assert_eq!(proxied(&garbage), peer, "unreadable: the peer");
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
