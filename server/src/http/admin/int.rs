//! Integers in admin bodies, range-checked while they are read, and
//! documented with the same bounds.
//!
//! A hand-written check after deserializing is easy to get wrong at the
//! edges (`i64::MIN.abs()` wraps in a release build and panics in a debug
//! one); here the bounds are part of the type, so the value is refused
//! while it is read, 422 naming its field, whatever it is: below or above
//! the range, past `i64`, past `u64`, a fraction, a string. A number with a
//! zero fraction (`324.0`, `3.24e2`) is the integer it spells: JSON has one
//! number type and JSON Schema counts such numbers as integers.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

/// An integer from `MIN` to `MAX` inclusive. Document fields of this type
/// with `#[schema(inline)]` (or `#[param(inline)]`) so each carries its own
/// bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub(crate) struct Int<const MIN: i64, const MAX: i64>(i64);

impl<const MIN: i64, const MAX: i64> Int<MIN, MAX> {
    /// The value.
    pub(crate) fn get(self) -> i64 {
        self.0
    }
}

struct Bounded<const MIN: i64, const MAX: i64>;

impl<const MIN: i64, const MAX: i64> Bounded<MIN, MAX> {
    fn check<E: de::Error>(&self, v: i128, unexpected: Unexpected<'_>) -> Result<Int<MIN, MAX>, E> {
        if (i128::from(MIN)..=i128::from(MAX)).contains(&v) {
            // In range, so it fits in an i64.
            i64::try_from(v).map(Int).map_err(|_| E::invalid_value(unexpected, self))
        } else {
            Err(E::invalid_value(unexpected, self))
        }
    }
}

impl<'de, const MIN: i64, const MAX: i64> Visitor<'de> for Bounded<MIN, MAX> {
    type Value = Int<MIN, MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer from {MIN} to {MAX}")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.check(i128::from(v), Unexpected::Signed(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.check(i128::from(v), Unexpected::Unsigned(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // Only a whole number inside the range; both bounds are far inside
        // the range where f64 holds every integer exactly, so the cast
        // below is exact.
        #[allow(clippy::cast_possible_truncation)]
        if v.fract() == 0.0 && v >= MIN as f64 && v <= MAX as f64 {
            return self.check(v as i128, Unexpected::Float(v));
        }
        Err(E::invalid_value(Unexpected::Float(v), &self))
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Bounded::<MIN, MAX>)
    }
}

impl<const MIN: i64, const MAX: i64> utoipa::PartialSchema for Int<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(MIN))
            .maximum(Some(MAX))
            .into()
    }
}

impl<const MIN: i64, const MAX: i64> utoipa::ToSchema for Int<MIN, MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Int_{MIN}_{MAX}").replace('-', "m"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly

    use super::*;

    type Score = Int<-1_000_000_000, 1_000_000_000>;

    #[test]
    fn every_edge_is_refused_or_read_exactly() {
        for ok in ["0", "-1000000000", "1000000000", "324.0", "3.24e2", "-0.0"] {
            assert!(serde_json::from_str::<Score>(ok).is_ok(), "{ok}");
        }
        for bad in [
            "-9223372036854775808",
            "9223372036854775807",
            "18446744073709551615",
            "18446744073709551616",
            "1e300",
            "1000000001",
            "-1000000001",
            "0.5",
            "\"5\"",
            "true",
            "null",
        ] {
            let e = serde_json::from_str::<Score>(bad).unwrap_err().to_string();
            assert!(
                e.contains("expected an integer from -1000000000 to 1000000000") || e.contains("invalid type"),
                "{bad}: {e}"
            );
        }
    }
}
