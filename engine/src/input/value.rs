//! Reading a request from a `serde_json::Value`: the entry point for library
//! users who hold one. One iterative walk with an explicit stack, so hostile
//! nesting can't overflow the thread's stack: past the depth limit the
//! request is rejected.

use serde_json::Value;
use smallvec::SmallVec;

use super::{Child, InputSchema, ReadError, Seg, Slot, SlotValue, Slots, TrieNode, read_value, render_segments};
use crate::decision::{Rejection, RejectionKind};

enum Children<'a> {
    Object(serde_json::map::Iter<'a>),
    Array(std::iter::Enumerate<std::slice::Iter<'a, Value>>),
}

struct Frame<'a, 's> {
    children: Children<'a>,
    trie: Option<&'s TrieNode>,
    /// How this container was reached from its parent.
    seg: Option<Seg<'a>>,
    depth: usize,
}

fn render_path(frames: &[Frame<'_, '_>], last: Seg<'_>) -> String {
    render_segments(frames.iter().filter_map(|f| f.seg).chain(std::iter::once(last)))
}

impl InputSchema {
    /// Walks `input` once: refuses content fields anywhere, checks declared
    /// types, and fills `slots`. A content field wins over any other problem,
    /// since it decides how the attempt is audited; then nesting past the
    /// limit (whose inside is not searched); then type errors.
    pub(crate) fn extract<'a>(&'a self, input: &'a Value, slots: &mut Slots<'a>) -> Result<(), Rejection> {
        let Value::Object(root) = input else {
            return Err(Rejection::new(RejectionKind::NotAnObject, String::new()));
        };
        slots.clear();
        slots.resize(self.slots.len(), SlotValue::Absent);
        let mut type_error: Option<Rejection> = None;
        let mut too_deep: Option<Rejection> = None;
        let mut stack: SmallVec<[Frame<'a, 'a>; 8]> = SmallVec::new();
        stack.push(Frame { children: Children::Object(root.iter()), trie: Some(&self.root), seg: None, depth: 1 });
        while let Some(frame) = stack.last_mut() {
            let next = match &mut frame.children {
                Children::Object(it) => it.next().map(|(k, v)| (Seg::Key(k.as_str()), v)),
                Children::Array(it) => it.next().map(|(i, v)| (Seg::Index(i), v)),
            };
            let (trie, depth) = (frame.trie, frame.depth);
            let Some((seg, value)) = next else {
                stack.pop();
                continue;
            };
            let mut child_trie = None;
            if let Seg::Key(key) = seg {
                if self.forbidden.contains(key) {
                    return Err(Rejection::new(RejectionKind::ForbiddenField, render_path(&stack, seg)));
                }
                match trie.and_then(|t| t.find(key)) {
                    Some(Child::Slot(slot)) => match self.read_slot(*slot, value) {
                        Ok(v) => {
                            if let Some(s) = slots.get_mut(usize::from(*slot)) {
                                *s = v;
                            }
                        }
                        Err(err) => {
                            if type_error.is_none() {
                                let path = match err.index {
                                    Some(i) => format!("{}[{i}]", render_path(&stack, seg)),
                                    None => render_path(&stack, seg),
                                };
                                type_error =
                                    Some(Rejection::new(RejectionKind::TypeMismatch { expected: err.expected }, path));
                            }
                        }
                    },
                    Some(Child::Node(node)) => match value {
                        Value::Object(_) => child_trie = Some(node),
                        Value::Null => {}
                        _ => {
                            if type_error.is_none() {
                                type_error = Some(Rejection::new(
                                    RejectionKind::TypeMismatch { expected: "an object" },
                                    render_path(&stack, seg),
                                ));
                            }
                        }
                    },
                    None => {}
                }
            }
            let children = match value {
                Value::Object(m) if !m.is_empty() => Children::Object(m.iter()),
                Value::Array(a) if !a.is_empty() => Children::Array(a.iter().enumerate()),
                _ => continue,
            };
            if depth >= self.max_depth {
                // Don't descend, but keep scanning the rest of the request:
                // a content field elsewhere must still win.
                if too_deep.is_none() {
                    too_deep = Some(Rejection::new(
                        RejectionKind::TooDeep { limit: self.max_depth },
                        render_path(&stack, seg),
                    ));
                }
                continue;
            }
            stack.push(Frame { children, trie: child_trie, seg: Some(seg), depth: depth + 1 });
        }
        if let Some(err) = too_deep.or(type_error) {
            return Err(err);
        }
        self.finish(slots)
    }

    fn read_slot<'a>(&self, slot: Slot, value: &'a Value) -> Result<SlotValue<'a>, ReadError> {
        match self.slots.get(usize::from(slot)) {
            Some(spec) => read_value(spec.ty, value),
            None => Ok(SlotValue::Absent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_keys_with_dots_and_indexes_in_brackets() {
        let frames = [
            Frame { children: Children::Array([].iter().enumerate()), trie: None, seg: None, depth: 1 },
            Frame {
                children: Children::Array([].iter().enumerate()),
                trie: None,
                seg: Some(Seg::Key("metadata")),
                depth: 2,
            },
            Frame {
                children: Children::Array([].iter().enumerate()),
                trie: None,
                seg: Some(Seg::Key("messages")),
                depth: 3,
            },
            Frame { children: Children::Array([].iter().enumerate()), trie: None, seg: Some(Seg::Index(0)), depth: 4 },
        ];
        assert_eq!(render_path(&frames, Seg::Key("content")), "metadata.messages[0].content");
        assert_eq!(render_path(&frames[..1], Seg::Key("prompt")), "prompt");
    }
}
