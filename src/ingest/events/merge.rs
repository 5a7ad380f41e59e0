//! Batch-level `context` and `integrations` laid under each event's own, deeply (the
//! event wins key by key, nested objects merge), written straight into the envelope
//! without building either object.

use std::borrow::Cow;

use super::scan::{self, Member};

/// A batch-level object, read once per request: its live members sorted by key (so
/// that laying a large event object over a large batch one stays n·log n), and for
/// each member that is itself an object, that object's tree.
#[derive(Debug, Default)]
pub struct Tree<'a> {
    members: Vec<(Member<'a>, Option<Tree<'a>>)>,
}

impl<'a> Tree<'a> {
    /// Reads an object's text (already well-formed JSON).
    pub fn parse(raw: &'a str) -> Result<Self, serde_json::Error> {
        let mut members = Vec::new();
        scan::object(raw, &mut members)?;
        let mut tree = Tree::default();
        for member in members.into_iter().filter(|m| m.live) {
            let child = match member.raw().starts_with('{') {
                true => Some(Tree::parse(member.value)?),
                false => None,
            };
            tree.members.push((member, child));
        }
        tree.members.sort_by(|(a, _), (b, _)| a.key.cmp(&b.key));
        Ok(tree)
    }

    /// Whether the object has this key.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn get(&self, key: &str) -> Option<&(Member<'a>, Option<Tree<'a>>)> {
        let at = self
            .members
            .binary_search_by(|(m, _)| m.key.as_ref().cmp(key))
            .ok()?;
        self.members.get(at)
    }
}

/// Writes the object made of `base` (if any) with `own`'s live members laid over it,
/// then `extra` as a string member when given.
pub fn write_object(
    buf: &mut Vec<u8>,
    base: Option<&Tree<'_>>,
    own: &[Member<'_>],
    extra: Option<(&str, &str)>,
) -> Result<(), serde_json::Error> {
    buf.push(b'{');
    let mut first = true;
    for member in own.iter().filter(|m| m.live) {
        comma(buf, &mut first);
        write_member_key(buf, member)?;
        let under = base.and_then(|b| b.get(&member.key));
        match under {
            Some((_, Some(tree))) if member.raw().starts_with('{') => {
                let mut inner = Vec::new();
                scan::object(member.raw(), &mut inner)?;
                write_object(buf, Some(tree), &inner, None)?;
            }
            _ => buf.extend_from_slice(member.raw().as_bytes()),
        }
    }
    let own_keys = OwnKeys::of(own);
    for (member, _) in base.map_or(&[][..], |b| &b.members[..]) {
        if own_keys.contains(own, &member.key) {
            continue;
        }
        comma(buf, &mut first);
        write_member_key(buf, member)?;
        buf.extend_from_slice(member.raw().as_bytes());
    }
    if let Some((key, value)) = extra {
        comma(buf, &mut first);
        write_key(buf, key)?;
        serde_json::to_writer(&mut *buf, value)?;
    }
    buf.push(b'}');
    Ok(())
}

/// The event's keys, sorted when there are many, so that each batch-level key is
/// looked up in log time.
struct OwnKeys<'m>(Option<Vec<&'m str>>);

impl<'m> OwnKeys<'m> {
    fn of(own: &'m [Member<'_>]) -> Self {
        Self((own.len() > 16).then(|| {
            let mut keys: Vec<&str> = own.iter().filter(|m| m.live).map(|m| &*m.key).collect();
            keys.sort_unstable();
            keys
        }))
    }

    fn contains(&self, own: &[Member<'_>], key: &str) -> bool {
        match &self.0 {
            Some(sorted) => sorted.binary_search(&key).is_ok(),
            None => own.iter().any(|m| m.live && m.key == key),
        }
    }
}

fn comma(buf: &mut Vec<u8>, first: &mut bool) {
    if !std::mem::take(first) {
        buf.push(b',');
    }
}

/// A member's `"key":`. A key borrowed from the body had no escape, and reading it
/// refused control characters (the walk and serde_json both do), so it is copied
/// without a look; only a key that was unescaped is checked and escaped again.
pub fn write_member_key(buf: &mut Vec<u8>, member: &Member<'_>) -> Result<(), serde_json::Error> {
    match &member.key {
        Cow::Borrowed(key) => {
            buf.push(b'"');
            buf.extend_from_slice(key.as_bytes());
            buf.extend_from_slice(b"\":");
            Ok(())
        }
        Cow::Owned(key) => write_key(buf, key),
    }
}

/// `"key":` — copied as is unless it needs escaping.
pub fn write_key(buf: &mut Vec<u8>, key: &str) -> Result<(), serde_json::Error> {
    if key.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        serde_json::to_writer(&mut *buf, key)?;
    } else {
        buf.push(b'"');
        buf.extend_from_slice(key.as_bytes());
        buf.push(b'"');
    }
    buf.push(b':');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn merged(base: &str, own: &str) -> Value {
        let tree = Tree::parse(base).unwrap();
        let mut members = Vec::new();
        scan::object(own, &mut members).unwrap();
        let mut buf = Vec::new();
        write_object(&mut buf, Some(&tree), &members, Some(("ip", "1.2.3.4"))).unwrap();
        serde_json::from_slice(&buf).unwrap()
    }

    #[test]
    fn large_objects_merge_completely() {
        let object = |prefix: &str, n: usize| {
            let members: Vec<String> = (0..n).map(|i| format!("\"{prefix}{i}\":{i}")).collect();
            format!("{{{}}}", members.join(","))
        };
        let got = merged(&object("k", 5000), &object("k", 3000));
        assert_eq!(got.as_object().unwrap().len(), 5001);
        let got = merged(&object("a", 100), &object("b", 100));
        assert_eq!(got.as_object().unwrap().len(), 201);
        assert_eq!(got["a7"], 7);
        assert_eq!(got["b99"], 99);
    }

    #[test]
    fn the_events_own_wins_and_objects_merge_deeply() {
        let got = merged(
            r#"{"library":{"name":"a","version":"1"},"locale":"en","x":{"y":1}}"#,
            r#"{"library":{"version":"2"},"x":3,"x":{"z":2},"n\"q":null}"#,
        );
        assert_eq!(
            got,
            json!({"library":{"name":"a","version":"2"},"locale":"en","x":{"y":1,"z":2},"n\"q":null,"ip":"1.2.3.4"})
        );
    }
}
