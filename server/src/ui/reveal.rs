//! The one-time reveal of a new secret: a key made or rotated, a webhook
//! endpoint's signing secret.
//!
//! The form's POST does the change, leaves the secret here under the
//! session and the thing it belongs to, and answers 303 to a reveal page
//! (post/redirect/get: a reload can't post twice). That page's GET takes
//! the secret out, so it is shown exactly once, with `Cache-Control:
//! no-store`; a reload finds the slot empty and says so.
//!
//! The slots live in this process's memory only: a secret here never
//! touches the database, a log or a cookie. They are bounded
//! ([`MAX_SLOTS`]) and a secret not collected within [`TTL`] is dropped.
//! (With several instances behind a load balancer that doesn't keep a
//! browser on one instance, the reveal GET may land on another one and show
//! "already shown"; rotate the key then.)

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::admin::keys::IssuedKey;
use crate::admin::webhooks::Registered;

/// How long a secret waits to be shown.
pub(crate) const TTL: Duration = Duration::from_secs(120);
/// Most secrets waiting at once; past that the oldest goes.
pub(crate) const MAX_SLOTS: usize = 1024;

/// A secret waiting to be shown.
pub(crate) enum Secret {
    /// A key just made or rotated, with its plaintext.
    Key(IssuedKey),
    /// A webhook endpoint just registered, with its signing secret.
    Webhook(Registered),
}

struct Slot {
    secret: Secret,
    stored: Instant,
}

/// The waiting secrets, by session and target.
#[derive(Default)]
pub(crate) struct Reveals {
    /// `(session, target id)` → the secret. The session is named by its
    /// CSRF token: one per session, derived from its id, unguessable.
    slots: Mutex<HashMap<(String, Uuid), Slot>>,
}

impl std::fmt::Debug for Reveals {
    // Never the secrets: only how many wait.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.slots.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("Reveals").field("waiting", &waiting).finish()
    }
}

impl Reveals {
    /// Leaves `secret` for `session` to collect once at `target`'s reveal
    /// page (replacing one waiting there).
    pub(crate) fn put(&self, session: &str, target: Uuid, secret: Secret) {
        self.put_at(session, target, secret, Instant::now());
    }

    fn put_at(&self, session: &str, target: Uuid, secret: Secret, now: Instant) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain(|_, slot| now.saturating_duration_since(slot.stored) < TTL);
        while slots.len() >= MAX_SLOTS {
            let oldest = slots.iter().min_by_key(|(_, slot)| slot.stored).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => slots.remove(&k),
                None => break,
            };
        }
        slots.insert((session.to_owned(), target), Slot { secret, stored: now });
    }

    /// Takes the secret `session` left for `target`, if it is there and not
    /// expired: it is gone afterwards.
    pub(crate) fn take(&self, session: &str, target: Uuid) -> Option<Secret> {
        self.take_at(session, target, Instant::now())
    }

    fn take_at(&self, session: &str, target: Uuid, now: Instant) -> Option<Secret> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = slots.remove(&(session.to_owned(), target))?;
        (now.saturating_duration_since(slot.stored) < TTL).then_some(slot.secret)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use super::*;
    use crate::store::KeySummary;

    fn key(token: &str) -> Secret {
        Secret::Key(IssuedKey {
            key: token.to_owned(),
            old_secret_valid_until: None,
            summary: KeySummary {
                id: Uuid::nil(),
                name: "k".into(),
                customer_id: Uuid::nil(),
                customer_email: "c@x.test".into(),
                role: "app".into(),
                active: true,
                created_at: chrono::DateTime::UNIX_EPOCH,
                last_used_at: None,
                request_count: 0,
            },
        })
    }

    fn token(secret: Option<Secret>) -> Option<String> {
        match secret? {
            Secret::Key(k) => Some(k.key),
            Secret::Webhook(_) => panic!("not a key"),
        }
    }

    #[test]
    fn a_secret_is_taken_once_by_its_own_session_only() {
        let r = Reveals::default();
        let id = Uuid::new_v4();
        r.put("session-a", id, key("wdn_1"));
        assert!(r.take("session-b", id).is_none(), "another session can't collect it");
        assert!(r.take("session-a", Uuid::new_v4()).is_none(), "nor another target");
        assert_eq!(token(r.take("session-a", id)).as_deref(), Some("wdn_1"));
        assert!(r.take("session-a", id).is_none(), "shown once");
    }

    #[test]
    fn a_secret_expires() {
        let r = Reveals::default();
        let id = Uuid::new_v4();
        let then = Instant::now();
        r.put_at("s", id, key("wdn_1"), then);
        assert!(r.take_at("s", id, then + TTL).is_none());
        r.put_at("s", id, key("wdn_2"), then);
        assert_eq!(token(r.take_at("s", id, then + TTL - Duration::from_secs(1))).as_deref(), Some("wdn_2"));
    }

    #[test]
    fn the_slots_are_bounded_and_the_oldest_goes_first() {
        let r = Reveals::default();
        let now = Instant::now();
        let first = Uuid::new_v4();
        r.put_at("s", first, key("first"), now);
        for i in 0..MAX_SLOTS {
            let at = now + Duration::from_millis(u64::try_from(i).unwrap() + 1);
            r.put_at("s", Uuid::new_v4(), key("other"), at);
        }
        assert_eq!(r.slots.lock().unwrap().len(), MAX_SLOTS);
        assert!(r.take_at("s", first, now + Duration::from_secs(2)).is_none(), "the oldest made room");
    }

    #[test]
    fn debug_shows_no_secret() {
        let r = Reveals::default();
        r.put("s", Uuid::new_v4(), key("wdn_secret"));
        let shown = format!("{r:?}");
        assert!(!shown.contains("wdn_secret") && shown.contains("waiting: 1"), "{shown}");
    }
}
