//! The tamper-evident hash chain over the audit tables: the canonical,
//! versioned byte encoding of a row and the SHA-256 link that makes each row
//! depend on every row before it.
//!
//! Two chains exist, one per table: `usage_log` (one row per decision) and
//! `admin_audit` (one row per admin change). Every chained row stores
//!
//! - `chain_seq`: its position, 1, 2, 3, … without gaps (an index that lets
//!   `warden audit verify` page through the chain and name a gap; it is not
//!   hashed, see below);
//! - `prev_hash`: the `row_hash` of the row before it (for the first row,
//!   [`GENESIS`], 64 zeros; after a prune, the last pruned row's hash, kept
//!   in a checkpoint);
//! - `row_hash`: `SHA-256(prev_hash_bytes || encoding)`, as 64 lowercase hex
//!   digits, where `prev_hash_bytes` are the 32 bytes `prev_hash` spells.
//!
//! # The encoding (version 1)
//!
//! Length-prefixed fields, rather than canonical JSON of the whole row, so
//! that a verifier needs no JSON library for most fields and a field can
//! never run into the next one. Each field is a 4-byte big-endian length
//! followed by that many bytes; an SQL `NULL` is the length `0xFFFFFFFF`
//! with no bytes. The fields, in order:
//!
//! 1. the text `warden.audit.v1` (the encoding's version: a later version
//!    gets a new tag, and a verifier knows which rules to apply);
//! 2. the chain's name, `usage_log` or `admin_audit`;
//! 3. the row's columns, in the order given by [`UsageFields`] and
//!    [`AdminFields`].
//!
//! Column values are written as text, UTF-8: text columns as stored; UUIDs
//! in lowercase hyphenated form (`01a216e4-8b51-70bd-97fb-fd8966fcaa56`);
//! integers in decimal with a leading `-` when negative; booleans as `true`
//! or `false`; times in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (exactly six
//! fractional digits: both backends keep microseconds, and rows are
//! truncated to them before they are hashed and stored); JSON columns
//! (`meta`, `before`, `after`) in the JSON Canonicalization Scheme, RFC 8785
//! (keys sorted, no whitespace, numbers in their shortest ECMAScript form),
//! because Postgres's `jsonb` does not keep the text it was given and
//! SQLite's `TEXT` keeps it verbatim: the canonical form is the same from
//! both.
//!
//! The row id is not hashed: it is a storage key (on Postgres, ids come
//! from a sequence and are not in chain order when instances share a
//! database). Nor is `chain_seq`: a row's position is proven by the links
//! (each row names the hash of the one before it), and leaving the number
//! out means rows renumbered by hand show up as reordered or removed rows
//! rather than as alterations of everything after them.
//!
//! # What the chain proves
//!
//! Editing, deleting, inserting or reordering rows in place breaks a link
//! that `warden audit verify` finds and names. The chain uses no secret, so
//! someone who can write to the database can also rewrite every row after
//! the one they changed and the head with it; that is caught only by
//! comparing the head with a copy kept elsewhere (see
//! `GET /api/admin/audit/head`): any later head must still contain the
//! recorded row, with the recorded hash, at the recorded position.

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// The encoding's version tag, the first field of every encoding of
/// version 1 (every `admin_audit` row; `usage_log` rows without
/// contributions).
pub const VERSION_TAG: &str = "warden.audit.v1";

/// The tag of version 2: a `usage_log` row that records its contributions.
/// Version 1's fields, then `contributions` as the last one. Rows written
/// before the column existed (and rejections, which have none) keep
/// version 1, so their hashes are unchanged.
pub const VERSION_TAG_V2: &str = "warden.audit.v2";

/// The tag of version 3: a `usage_log` row that records shadow rules.
/// Version 1's fields, then `contributions` (optional text: a 0 marker for
/// NULL, as `model`), then `shadow` (JSON, canonicalised) as the last one.
/// Rows without shadow rules keep version 1 or 2.
pub const VERSION_TAG_V3: &str = "warden.audit.v3";

/// The `prev_hash` of a chain's first row: 32 zero bytes, in hex.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The two chains, named after their tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Chain {
    /// `usage_log`: one row per `/v1/check` outcome.
    UsageLog,
    /// `admin_audit`: one row per admin change.
    AdminAudit,
}

impl Chain {
    /// Both chains.
    pub const ALL: [Self; 2] = [Self::UsageLog, Self::AdminAudit];

    /// The chain's (and its table's) name.
    pub fn name(self) -> &'static str {
        match self {
            Self::UsageLog => "usage_log",
            Self::AdminAudit => "admin_audit",
        }
    }
}

impl std::fmt::Display for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A `usage_log` row's hashed columns, in encoding order.
#[derive(Debug, Clone, Copy)]
pub struct UsageFields<'a> {
    /// `decision_id`.
    pub decision_id: Uuid,
    /// `request_id`.
    pub request_id: &'a str,
    /// `customer_id`.
    pub customer_id: Uuid,
    /// `api_key_id`.
    pub api_key_id: Uuid,
    /// `model` (may be NULL).
    pub model: Option<&'a str>,
    /// `operation` (may be NULL).
    pub operation: Option<&'a str>,
    /// `meta` (JSON, canonicalised).
    pub meta: &'a serde_json::Value,
    /// `risk_score`.
    pub risk_score: i64,
    /// `allowed`.
    pub allowed: bool,
    /// `status`: `allowed`, `blocked` or `rejected`.
    pub status: &'a str,
    /// `reason`.
    pub reason: &'a str,
    /// `policy_version`.
    pub policy_version: &'a str,
    /// `latency_us`.
    pub latency_us: i64,
    /// `created_at`.
    pub created_at: DateTime<Utc>,
    /// `contributions` (JSON, canonicalised): NULL selects version 1 of the
    /// encoding, which leaves the field out; a value selects version 2.
    pub contributions: Option<&'a serde_json::Value>,
    /// `shadow` (JSON, canonicalised): a value selects version 3.
    pub shadow: Option<&'a serde_json::Value>,
}

/// An `admin_audit` row's hashed columns, in encoding order.
#[derive(Debug, Clone, Copy)]
pub struct AdminFields<'a> {
    /// `actor_key_id` (NULL: the command line).
    pub actor_key_id: Option<Uuid>,
    /// `action`.
    pub action: &'a str,
    /// `target`.
    pub target: &'a str,
    /// `before` (JSON, canonicalised; may be NULL).
    pub before: Option<&'a serde_json::Value>,
    /// `after` (JSON, canonicalised; may be NULL).
    pub after: Option<&'a serde_json::Value>,
    /// `created_at`.
    pub created_at: DateTime<Utc>,
}

/// Builds one encoding, field by field.
struct Encoder(Vec<u8>);

impl Encoder {
    fn new(chain: Chain) -> Self {
        Self::tagged(VERSION_TAG, chain)
    }

    fn tagged(tag: &str, chain: Chain) -> Self {
        let mut e = Self(Vec::with_capacity(512));
        e.bytes(tag.as_bytes());
        e.bytes(chain.name().as_bytes());
        e
    }

    fn bytes(&mut self, b: &[u8]) {
        // Fields are far below 4 GiB (strings are cut to 200 characters,
        // bodies to the body limit); a longer one could not be told from
        // NULL, so it is clamped rather than wrapped.
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX - 1).min(u32::MAX - 1);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(b);
    }

    fn null(&mut self) {
        self.0.extend_from_slice(&u32::MAX.to_be_bytes());
    }

    fn text(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn opt_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    fn uuid(&mut self, u: Uuid) {
        self.text(u.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
    }

    /// A field whose text is written by `write` (no intermediate string).
    fn written(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let at = self.0.len();
        self.0.extend_from_slice(&[0; 4]);
        write(&mut self.0);
        let len = u32::try_from(self.0.len() - at - 4).unwrap_or(u32::MAX - 1);
        if let Some(prefix) = self.0.get_mut(at..at + 4) {
            prefix.copy_from_slice(&len.to_be_bytes());
        }
    }

    fn int(&mut self, i: i64) {
        self.written(|b| {
            let _ = std::io::Write::write_fmt(b, format_args!("{i}"));
        });
    }

    fn time(&mut self, t: DateTime<Utc>) {
        self.written(|b| write_time(b, t));
    }

    fn json(&mut self, v: Option<&serde_json::Value>) {
        match v {
            Some(v) => self.text(&canonical_json(v)),
            None => self.null(),
        }
    }
}

/// A time as the encoding writes it: UTC, exactly six fractional digits.
pub fn format_time(t: DateTime<Utc>) -> String {
    let mut b = Vec::with_capacity(27);
    write_time(&mut b, t);
    String::from_utf8(b).unwrap_or_default()
}

/// Writes `YYYY-MM-DDTHH:MM:SS.ffffffZ`. By hand rather than with chrono's
/// `format`, which interprets its pattern on every call: this runs for
/// every audit row written and checked.
fn write_time(b: &mut Vec<u8>, t: DateTime<Utc>) {
    use chrono::{Datelike as _, Timelike as _};
    let micros = t.nanosecond() % 1_000_000_000 / 1_000;
    let _ = std::io::Write::write_fmt(
        b,
        format_args!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
    );
}

/// `t` truncated to whole microseconds (what both backends keep).
pub fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// RFC 8785 canonical JSON. serde_json_canonicalizer fails only on values
/// serde_json can't hold in the first place (non-finite numbers); such a
/// value would be refused before it reached a row, so the fallback (plain
/// serde_json text) is never used for a stored row.
pub fn canonical_json(v: &serde_json::Value) -> String {
    serde_json_canonicalizer::to_string(v).unwrap_or_else(|_| v.to_string())
}

/// The encoding of a `usage_log` row: version 3 when it has `shadow`, else
/// version 2 when it has `contributions`, else version 1.
pub fn encode_usage(r: &UsageFields<'_>) -> Vec<u8> {
    let contributions = r.contributions.map(canonical_json);
    let shadow = r.shadow.map(canonical_json);
    encode_usage_canonical(r, &canonical_json(r.meta), contributions.as_deref(), shadow.as_deref())
}

/// The encoding of a `usage_log` row whose `meta` and `contributions` are
/// already in canonical form (from [`canonical_json`]; `r.meta` and
/// `r.contributions` are not read): the writer stores that same text, so it
/// serialises each once. `shadow` selects version 3; else `contributions`
/// version 2; else version 1.
pub fn encode_usage_canonical(
    r: &UsageFields<'_>,
    meta: &str,
    contributions: Option<&str>,
    shadow: Option<&str>,
) -> Vec<u8> {
    let mut e = match (shadow, contributions) {
        (Some(_), _) => Encoder::tagged(VERSION_TAG_V3, Chain::UsageLog),
        (None, Some(_)) => Encoder::tagged(VERSION_TAG_V2, Chain::UsageLog),
        (None, None) => Encoder::new(Chain::UsageLog),
    };
    e.uuid(r.decision_id);
    e.text(r.request_id);
    e.uuid(r.customer_id);
    e.uuid(r.api_key_id);
    e.opt_text(r.model);
    e.opt_text(r.operation);
    e.text(meta);
    e.int(r.risk_score);
    e.text(if r.allowed { "true" } else { "false" });
    e.text(r.status);
    e.text(r.reason);
    e.text(r.policy_version);
    e.int(r.latency_us);
    e.time(r.created_at);
    match (shadow, contributions) {
        (Some(shadow), contributions) => {
            e.opt_text(contributions);
            e.text(shadow);
        }
        (None, Some(contributions)) => e.text(contributions),
        (None, None) => {}
    }
    e.0
}

/// The encoding of an `admin_audit` row.
pub fn encode_admin(r: &AdminFields<'_>) -> Vec<u8> {
    let mut e = Encoder::new(Chain::AdminAudit);
    match r.actor_key_id {
        Some(id) => e.uuid(id),
        None => e.null(),
    }
    e.text(r.action);
    e.text(r.target);
    e.json(r.before);
    e.json(r.after);
    e.time(r.created_at);
    e.0
}

/// `SHA-256(prev || encoding)` in lowercase hex. `prev` is a hash in hex
/// as stored; text that is not 64 hex digits (a damaged row) is hashed as
/// its raw bytes, so the result simply won't match.
pub fn link(prev: &str, encoding: &[u8]) -> String {
    let mut h = Sha256::new();
    match decode_hex(prev) {
        Some(bytes) => h.update(bytes),
        None => h.update(prev.as_bytes()),
    }
    h.update(encoding);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in h.finalize() {
        for nibble in [b >> 4, b & 0xf] {
            out.push(char::from(HEX.get(usize::from(nibble)).copied().unwrap_or(b'0')));
        }
    }
    out
}

/// The hash of a `usage_log` row that follows `prev`.
pub fn usage_hash(prev: &str, r: &UsageFields<'_>) -> String {
    link(prev, &encode_usage(r))
}

/// The hash of an `admin_audit` row that follows `prev`.
pub fn admin_hash(prev: &str, r: &AdminFields<'_>) -> String {
    link(prev, &encode_admin(r))
}

/// 64 hex digits as 32 bytes. Hand-written: eight lines instead of a
/// dependency for one conversion.
fn decode_hex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let hi = char::from(*pair.first()?).to_digit(16)?;
        let lo = char::from(*pair.get(1)?).to_digit(16)?;
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly

    use super::*;

    fn usage<'a>(meta: &'a serde_json::Value) -> UsageFields<'a> {
        UsageFields {
            decision_id: Uuid::parse_str("01a216e4-939a-7000-8000-000000000001").unwrap(),
            request_id: "req-1",
            customer_id: Uuid::parse_str("01a216e4-8b51-70bd-97fb-fd8966fcaa56").unwrap(),
            api_key_id: Uuid::parse_str("f323cbb3-888b-43c3-b59f-e1e5678ae419").unwrap(),
            model: Some("gpt-4"),
            operation: None,
            meta,
            risk_score: 120,
            allowed: false,
            status: "blocked",
            reason: "contains_personal_data",
            policy_version: "0889fb2cb0fc3ad6",
            latency_us: 7,
            created_at: DateTime::from_timestamp_micros(1_796_000_000_123_456).unwrap(),
            contributions: None,
            shadow: None,
        }
    }

    #[test]
    fn the_encoding_is_length_prefixed_with_nulls_marked() {
        let meta = serde_json::json!({"b": 1, "a": [true, "x"]});
        let e = encode_usage(&usage(&meta));
        let mut want = Vec::new();
        for field in [
            Some("warden.audit.v1"),
            Some("usage_log"),
            Some("01a216e4-939a-7000-8000-000000000001"),
            Some("req-1"),
            Some("01a216e4-8b51-70bd-97fb-fd8966fcaa56"),
            Some("f323cbb3-888b-43c3-b59f-e1e5678ae419"),
            Some("gpt-4"),
            None,
            Some(r#"{"a":[true,"x"],"b":1}"#),
            Some("120"),
            Some("false"),
            Some("blocked"),
            Some("contains_personal_data"),
            Some("0889fb2cb0fc3ad6"),
            Some("7"),
            Some("2026-11-30T00:53:20.123456Z"),
        ] {
            match field {
                Some(s) => {
                    want.extend_from_slice(&u32::try_from(s.len()).unwrap().to_be_bytes());
                    want.extend_from_slice(s.as_bytes());
                }
                None => want.extend_from_slice(&[0xff; 4]),
            }
        }
        assert_eq!(e, want);
    }

    #[test]
    fn key_order_and_number_spelling_in_json_do_not_change_the_hash() {
        let a = serde_json::json!({"x": 1.0, "y": "z"});
        let b: serde_json::Value = serde_json::from_str(r#"{"y":"z","x":1}"#).unwrap();
        assert_eq!(usage_hash(GENESIS, &usage(&a)), usage_hash(GENESIS, &usage(&b)));
    }

    #[test]
    fn every_field_and_the_link_change_the_hash() {
        let meta = serde_json::json!({});
        let base = usage(&meta);
        let h = usage_hash(GENESIS, &base);
        assert_eq!(h.len(), 64);
        let other_meta = serde_json::json!({"a": 1});
        let variants = [
            UsageFields { request_id: "req-2", ..base },
            UsageFields { model: None, ..base },
            UsageFields { operation: Some(""), ..base },
            UsageFields { meta: &other_meta, ..base },
            UsageFields { risk_score: 121, ..base },
            UsageFields { allowed: true, ..base },
            UsageFields { status: "allowed", ..base },
            UsageFields { reason: "ok", ..base },
            UsageFields { latency_us: 8, ..base },
            UsageFields { created_at: base.created_at + chrono::Duration::microseconds(1), ..base },
        ];
        for v in &variants {
            assert_ne!(usage_hash(GENESIS, v), h, "{v:?}");
        }
        assert_ne!(usage_hash(&h, &base), h, "the link is part of the hash");
        // A NULL is not an empty string.
        assert_ne!(
            usage_hash(GENESIS, &UsageFields { operation: Some(""), ..base }),
            usage_hash(GENESIS, &UsageFields { operation: None, ..base })
        );
    }

    #[test]
    fn a_known_row_hashes_to_a_known_value() {
        // Computed by an independent implementation of the documented
        // encoding (a few lines of Python: struct.pack('>I', len) per
        // field, hashlib.sha256); an outside verifier can check itself
        // against these two values (they are in docs/architecture.md).
        let meta = serde_json::json!({"metadata": {"contains_personal_data": true}});
        let h = usage_hash(GENESIS, &usage(&meta));
        assert_eq!(h, "9cef1c2cf315e1650eb9992fa0dea1e55eebf679da0ab8c367bf01f3ae5b294f");
        let admin = AdminFields {
            actor_key_id: None,
            action: "policy.toggle",
            target: "approved_models",
            before: None,
            after: Some(&meta),
            created_at: usage(&meta).created_at,
        };
        assert_eq!(admin_hash(&h, &admin), "732dbb5d779f8cf1438ef0f67aa5a7fa7d45424ca09d5174f0126d908b589b60");
    }

    #[test]
    fn a_row_with_contributions_is_version_2_and_a_known_value() {
        // Same independent implementation as above, with the tag
        // `warden.audit.v2` and the contributions as a sixteenth field.
        let meta = serde_json::json!({"metadata": {"contains_personal_data": true}});
        let contributions = serde_json::json!([
            {"score": 70, "rule": "contains_personal_data"},
            {"rule": "external_model", "score": 50},
        ]);
        let row = UsageFields { contributions: Some(&contributions), ..usage(&meta) };
        assert!(encode_usage(&row).starts_with(b"\0\0\0\x0fwarden.audit.v2"));
        assert_eq!(usage_hash(GENESIS, &row), "36f97ddcd52dcaacef6eaa1f8a731cbff1c36c1c6cf9beae65cbd67dcf51778e");
        // Each is distinct: none, empty, and a changed score.
        let empty = serde_json::json!([]);
        let changed = serde_json::json!([{"rule": "contains_personal_data", "score": 71}, {"rule": "external_model", "score": 50}]);
        let hashes: std::collections::HashSet<String> = [None, Some(&empty), Some(&contributions), Some(&changed)]
            .into_iter()
            .map(|c| usage_hash(GENESIS, &UsageFields { contributions: c, ..usage(&meta) }))
            .collect();
        assert_eq!(hashes.len(), 4);
    }

    #[test]
    fn a_row_with_shadow_rules_is_version_3_and_a_known_value() {
        // The vector was computed outside Warden (Python's hashlib over the
        // length-prefixed fields): the tag `warden.audit.v3`, version 1's
        // fields, the contributions, then the shadow record, both RFC 8785.
        let meta = serde_json::json!({"metadata": {"contains_personal_data": true}});
        let contributions = serde_json::json!([{"rule": "contains_personal_data", "score": 70}]);
        let shadow = serde_json::json!({
            "rules": [{"rule": "strict_pii", "effect": "score", "score": 70}],
            "outcome": {"allowed": false, "risk_score": 140, "reason": "contains_personal_data"},
        });
        let row = UsageFields { contributions: Some(&contributions), shadow: Some(&shadow), ..usage(&meta) };
        assert!(encode_usage(&row).starts_with(b"\0\0\0\x0fwarden.audit.v3"));
        assert_eq!(usage_hash(GENESIS, &row), "a5ddb85e61a689062e9d229421352d6cd29fe8d3431d2be13f2185f9561426c9");
        // Dropping the shadow record, or changing it, changes the hash; a
        // NULL `contributions` is marked, not left out.
        let other = serde_json::json!({"rules": [], "outcome": {"allowed": false, "risk_score": 140, "reason": "x"}});
        let hashes: std::collections::HashSet<String> = [
            row,
            UsageFields { shadow: None, ..row },
            UsageFields { shadow: Some(&other), ..row },
            UsageFields { contributions: None, ..row },
        ]
        .iter()
        .map(|r| usage_hash(GENESIS, r))
        .collect();
        assert_eq!(hashes.len(), 4);
    }

    #[test]
    fn times_have_six_fractional_digits_in_utc() {
        let t = DateTime::from_timestamp_micros(1_796_000_000_000_007).unwrap();
        assert_eq!(format_time(t), "2026-11-30T00:53:20.000007Z");
        assert_eq!(format_time(t), t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
    }

    #[test]
    fn hex_round_trips() {
        let h = usage_hash(GENESIS, &usage(&serde_json::json!({})));
        let bytes = decode_hex(&h).unwrap();
        let back: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(back, h);
        assert!(decode_hex("zz").is_none());
        assert_eq!(decode_hex(GENESIS), Some([0u8; 32]));
    }
}
