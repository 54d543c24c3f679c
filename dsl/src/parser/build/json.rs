//! The JSON of test blocks (`input {...}`, `overrides {...}`) → `serde_json`
//! values.
//!
//! The grammar accepts any JSON; the builder refuses what Warden refuses in
//! a request: an object giving the same key twice. Keys are compared after
//! unescaping, byte for byte, as the engine's strict JSON parser does.

use pest::iterators::Pair;
use serde_json::{Map, Value};

use super::{Builder, Built, R};
use crate::err::DiagnosticKind;

impl Builder<'_> {
    /// A JSON value, at the top of a test part.
    pub(crate) fn json(&self, pair: Pair<'_, R>) -> Built<Value> {
        self.json_at(pair, "")
    }

    /// A JSON value at `path` (`metadata.list[2]`), which names a repeated
    /// key in the diagnostic.
    fn json_at(&self, pair: Pair<'_, R>, path: &str) -> Built<Value> {
        let loc = self.loc(&pair);
        Ok(match pair.as_rule() {
            R::json_object => {
                let mut map = Map::new();
                for member in pair.into_inner() {
                    let member_loc = self.loc(&member);
                    let mut kv = member.into_inner();
                    let key_pair = self.next(&mut kv, "member name", &member_loc)?;
                    let key_loc = self.loc(&key_pair);
                    let key = self.string(key_pair)?.node;
                    let key_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    if map.contains_key(&key) {
                        return Err(self
                            .diag(DiagnosticKind::DuplicateKey { path: key_path }, &key_loc)
                            .with_label("given again here")
                            .with_help(
                                "give each key once: Warden refuses a request that repeats a key, \
                                 since readers disagree on which value counts",
                            ));
                    }
                    let value = self.json_at(self.next(&mut kv, "member value", &member_loc)?, &key_path)?;
                    map.insert(key, value);
                }
                Value::Object(map)
            }
            R::json_array => Value::Array(
                pair.into_inner()
                    .enumerate()
                    .map(|(i, p)| self.json_at(p, &format!("{path}[{i}]")))
                    .collect::<Built<_>>()?,
            ),
            R::string => Value::String(self.string(pair)?.node),
            R::boolean => Value::Bool(self.boolean(pair)?),
            R::k_null => Value::Null,
            R::json_number => match serde_json::from_str::<serde_json::Number>(pair.as_str()) {
                Ok(n) => Value::Number(n),
                Err(_) => {
                    return Err(self.diag(
                        DiagnosticKind::NumberOutOfRange {
                            text: pair.as_str().to_owned(),
                            expected: "a finite number".into(),
                        },
                        &loc,
                    ));
                }
            },
            _ => return Err(self.internal("JSON value", &loc)),
        })
    }
}
