//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>,
//! "Signature scheme"): `webhook-signature: v1,<base64(HMAC-SHA256(key,
//! "{webhook-id}.{webhook-timestamp}.{body}"))>`, where the key is the
//! secret's base64 part (after `whsec_`) decoded.
//!
//! Hand-written rather than taken from the `standardwebhooks` crate: the
//! scheme is one HMAC over one string, `hmac`, `sha2` and `base64` are
//! already in the tree, and that crate would add `time` and a second
//! HMAC implementation. The tests check it against the reference
//! library's published vectors.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Secret key lengths accepted, in bytes (the reference generates 24 to
/// 64; Warden generates 32).
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// A secret that is not `whsec_` followed by base64 of 24 to 64 bytes.
#[derive(Debug, thiserror::Error)]
#[error("a webhook secret is `whsec_` followed by the base64 of 24 to 64 random bytes")]
pub struct BadSecret;

/// A signing key, from a `whsec_…` secret.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

impl Key {
    /// Reads `whsec_<base64>`.
    ///
    /// # Errors
    /// [`BadSecret`] when the prefix or the base64 is missing, or the key
    /// is too short or too long.
    pub fn from_secret(secret: &str) -> Result<Self, BadSecret> {
        let b64 = secret.strip_prefix(SECRET_PREFIX).ok_or(BadSecret)?;
        let key = STANDARD.decode(b64).map_err(|_| BadSecret)?;
        if !KEY_BYTES.contains(&key.len()) {
            return Err(BadSecret);
        }
        Ok(Self(key))
    }

    /// A new random secret: `whsec_` and 32 bytes from a CSPRNG (rand's
    /// thread generator, seeded from the OS).
    pub fn generate() -> String {
        let mut key = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut key);
        format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
    }

    /// The `webhook-signature` header value for a message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes a key of any length.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else { return String::new() };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly

    use super::*;

    // The vectors of the reference Rust library
    // (standard-webhooks/standard-webhooks, libraries/rust/src/lib.rs).
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const MSG_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TIMESTAMP: i64 = 1_649_367_553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    #[test]
    fn signs_as_the_reference_library_does() {
        let key = Key::from_secret(SECRET).unwrap();
        assert_eq!(key.sign(MSG_ID, TIMESTAMP, BODY), "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
        // The reference's "no verify" vector is a different signature.
        assert_ne!(key.sign(MSG_ID, TIMESTAMP, BODY), "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=");
        assert_ne!(key.sign(MSG_ID, TIMESTAMP + 1, BODY), key.sign(MSG_ID, TIMESTAMP, BODY));
    }

    #[test]
    fn secrets_are_checked_and_generated_in_the_standard_form() {
        assert!(Key::from_secret("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_err(), "prefix required");
        assert!(Key::from_secret("whsec_not base64!").is_err());
        assert!(Key::from_secret("whsec_c2hvcnQ=").is_err(), "too short");
        let s = Key::generate();
        assert!(s.starts_with(SECRET_PREFIX));
        assert_eq!(STANDARD.decode(&s[SECRET_PREFIX.len()..]).unwrap().len(), 32);
        assert_ne!(Key::generate(), s);
        assert_eq!(format!("{:?}", Key::from_secret(&s).unwrap()), "Key(…)");
    }
}
