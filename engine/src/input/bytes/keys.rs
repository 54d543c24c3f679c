//! Reading an object's keys, and refusing one given twice.

use std::collections::HashSet;
use std::fmt;

use bumpalo::Bump;
use serde::de::{self, DeserializeSeed, Visitor};
use smallvec::SmallVec;

/// Reads an object's key: borrowed from the body, or unescaped into the
/// arena.
pub(super) struct KeySeed<'de>(pub(super) &'de Bump);

impl<'de> DeserializeSeed<'de> for KeySeed<'de> {
    type Value = &'de str;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'de> {
    type Value = &'de str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(v)
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.alloc_str(v))
    }
}

/// The keys of one object so far, to refuse a repeat. A request's objects
/// hold a handful of keys, compared in place; past [`Keys::SMALL`] they go
/// into a hash set (std's, randomly keyed: a body can't choose keys that
/// collide), so a hostile object of many keys costs linear time.
#[derive(Default)]
pub(super) struct Keys<'de> {
    small: SmallVec<[&'de str; 8]>,
    large: Option<HashSet<&'de str>>,
}

impl<'de> Keys<'de> {
    const SMALL: usize = 16;

    /// Adds `key`; `false` when the object gave it already.
    pub(super) fn insert(&mut self, key: &'de str) -> bool {
        if let Some(set) = &mut self.large {
            return set.insert(key);
        }
        // Length and first byte before the bytes: keys of one object
        // mostly differ there.
        let (len, first) = (key.len(), key.as_bytes().first());
        if self.small.iter().any(|k| k.len() == len && k.as_bytes().first() == first && *k == key) {
            return false;
        }
        self.small.push(key);
        if self.small.len() > Self::SMALL {
            self.large = Some(self.small.drain(..).collect());
        }
        true
    }
}
