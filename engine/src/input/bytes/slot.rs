//! Reading a declared field's value, and the elements of a declared list.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use smallvec::SmallVec;
use warden_dsl::ast::Type;

use super::{Path, Role, State, Walk, enter_element};
use crate::input::{Seg, Slot, SlotValue, StrList, expected_of};

/// Reads a declared field's value. Only reached through the declared paths,
/// which are never inside a subtree past the depth limit.
pub(super) struct SlotSeed<'r, 'p, 's, 'x, 'de> {
    pub(super) st: &'r mut State<'s, 'x, 'de>,
    pub(super) path: Path<'p>,
    pub(super) slot: Slot,
    pub(super) ty: Type,
    /// The depth of the object holding the field.
    pub(super) parent_depth: usize,
}

impl<'de> SlotSeed<'_, '_, '_, '_, 'de> {
    /// A scalar of type `ty`: the field's value if that is its type.
    fn scalar(self, ty: Type, value: SlotValue<'de>) {
        if self.ty != ty {
            self.st.type_error(expected_of(self.ty), &self.path);
        } else if let Some(s) = self.st.slots.get_mut(usize::from(self.slot)) {
            *s = value;
        }
    }
}

impl<'de> DeserializeSeed<'de> for SlotSeed<'_, '_, '_, '_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SlotSeed<'_, '_, '_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.scalar(Type::Bool, SlotValue::Bool(v));
        Ok(())
    }

    // Numbers become what `Value::as_f64` gives for the same text.
    #[allow(clippy::cast_precision_loss)]
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.scalar(Type::Number, SlotValue::Num(v as f64));
        Ok(())
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.scalar(Type::Number, SlotValue::Num(v as f64));
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.scalar(Type::Number, SlotValue::Num(v));
        Ok(())
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.scalar(Type::String, SlotValue::Str(v));
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        let v = &*self.st.arena.alloc_str(v);
        self.scalar(Type::String, SlotValue::Str(v));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let SlotSeed { st, path, slot, ty, parent_depth } = self;
        let is_list = ty == Type::StringList;
        if !is_list {
            st.type_error(expected_of(ty), &path);
        }
        let depth = parent_depth + 1;
        // `None` once an element is not a string: the field is refused.
        let mut items: Option<SmallVec<[&'de str; 8]>> = is_list.then(SmallVec::new);
        let mut checked = true;
        let mut i = 0usize;
        loop {
            let first_of = (i == 0).then_some((&path, parent_depth));
            let seed =
                ItemSeed { st: &mut *st, path: path.child(Seg::Index(i)), parent_depth: depth, checked, first_of };
            let Some(item) = seq.next_element_seed(seed)? else { break };
            if i == 0 {
                checked = parent_depth < st.schema.max_depth;
            }
            match (item, &mut items) {
                (Some(s), Some(list)) => list.push(s),
                (None, Some(_)) => {
                    st.type_error("a string", &path.child(Seg::Index(i)));
                    items = None;
                }
                (_, None) => {}
            }
            i += 1;
        }
        if let (Some(list), Some(s)) = (items, st.slots.get_mut(usize::from(slot))) {
            *s = SlotValue::List(StrList::Read(st.arena.alloc_slice_copy(&list)));
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let SlotSeed { st, path, ty, parent_depth, .. } = self;
        st.type_error(expected_of(ty), &path);
        Walk { st, path, role: Role::Free, parent_depth, checked: true, first_of: None }.visit_map(map)
    }
}

/// Reads one element of a declared field's array: the string, or `None`
/// for anything else (walked for names and depth like any undeclared value).
struct ItemSeed<'r, 'p, 's, 'x, 'de> {
    st: &'r mut State<'s, 'x, 'de>,
    path: Path<'p>,
    parent_depth: usize,
    checked: bool,
    first_of: Option<(&'p Path<'p>, usize)>,
}

impl<'r, 'p, 's, 'x, 'de> ItemSeed<'r, 'p, 's, 'x, 'de> {
    fn walk(self) -> Walk<'r, 'p, 's, 'x, 'de> {
        Walk {
            st: self.st,
            path: self.path,
            role: Role::Free,
            parent_depth: self.parent_depth,
            checked: self.checked,
            first_of: None,
        }
    }
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_, '_, '_, '_, 'de> {
    type Value = Option<&'de str>;

    fn deserialize<D: de::Deserializer<'de>>(mut self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.checked = enter_element(self.st, self.first_of.take(), self.checked);
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_, '_, '_, '_, 'de> {
    type Value = Option<&'de str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(self.st.arena.alloc_str(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.walk().visit_seq(seq).map(|()| None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.walk().visit_map(map).map(|()| None)
    }
}
