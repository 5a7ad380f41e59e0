//! Reading JSON objects without building a DOM: an object becomes its members, each a
//! key (borrowed from the body unless it had escapes) and the value's raw text, so
//! that untouched values are later copied into the envelope byte for byte.
//!
//! Duplicate keys: the last occurrence wins (as in `JSON.parse`, Python, Go and
//! serde_json's `Value`); earlier ones are marked dead and never written.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// One member of an object, as sent.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    /// The key, unescaped.
    pub key: Cow<'a, str>,
    /// The value's JSON text.
    pub value: &'a str,
    /// False when a later member has the same key.
    pub live: bool,
}

impl Member<'_> {
    /// The raw text of the value.
    pub fn raw(&self) -> &str {
        self.value
    }
}

/// Appends the members of the object `raw` to `out` (dead duplicates marked).
pub fn object<'a>(raw: &'a str, out: &mut Vec<Member<'a>>) -> Result<(), serde_json::Error> {
    let start = out.len();
    let mut de = serde_json::Deserializer::from_str(raw);
    MembersSeed(out).deserialize(&mut de)?;
    de.end()?;
    mark_duplicates(&mut out[start..]);
    Ok(())
}

/// The live member named `key`, if any.
pub fn find<'m, 'a>(members: &'m [Member<'a>], key: &str) -> Option<&'m Member<'a>> {
    members.iter().rev().find(|m| m.key == key)
}

/// Deserialises an object's members into the vector it holds.
pub struct MembersSeed<'v, 'a>(pub &'v mut Vec<Member<'a>>);

impl<'de> DeserializeSeed<'de> for MembersSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MembersSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key()? {
            let value: &'de RawValue = map.next_value()?;
            self.0.push(Member {
                key,
                value: value.get(),
                live: true,
            });
        }
        Ok(())
    }
}

/// A key or string, borrowed from the body when it has no escapes.
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
}

/// The string a raw JSON string value holds; `None` for any other JSON type.
pub fn string(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.starts_with('"') {
        return None;
    }
    if !raw.contains('\\') {
        return Some(Cow::Borrowed(&raw[1..raw.len() - 1]));
    }
    serde_json::from_str::<Key>(raw).ok().map(|k| k.0)
}

/// Collects the elements of an array, at most `cap` of them: one more and the
/// collection stops with an error, so a huge array is never materialised.
pub struct CappedArray<'v, 'a> {
    /// Where the elements' JSON texts go.
    pub out: &'v mut Vec<&'a str>,
    /// Elements allowed.
    pub cap: usize,
    /// Set when the array had more than `cap` elements.
    pub overflowed: &'v mut bool,
}

impl<'de> DeserializeSeed<'de> for CappedArray<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CappedArray<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) = seq.next_element::<&RawValue>()? {
            if self.out.len() == self.cap {
                *self.overflowed = true;
                return Err(de::Error::custom("too many events"));
            }
            self.out.push(element.get());
        }
        Ok(())
    }
}

/// Keys compared at most pairwise below this many members; above, sorted.
const PAIRWISE_LIMIT: usize = 24;

/// Marks every member whose key occurs again later as dead: the last one wins.
pub fn mark_duplicates(members: &mut [Member<'_>]) {
    if members.len() <= PAIRWISE_LIMIT {
        // A 64-bit filter of key hashes finds candidate duplicates in one pass; only
        // a hit compares keys.
        let mut seen = 0u64;
        for i in (0..members.len()).rev() {
            let bit = 1u64 << (hash(&members[i].key) & 63);
            if seen & bit != 0 && members[i + 1..].iter().any(|m| m.key == members[i].key) {
                members[i].live = false;
            }
            seen |= bit;
        }
        return;
    }
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by(|&a, &b| members[a].key.cmp(&members[b].key).then(a.cmp(&b)));
    for pair in order.windows(2) {
        if members[pair[0]].key == members[pair[1]].key {
            members[pair[0]].live = false;
        }
    }
}

/// A cheap spread of keys over the filter's 64 bits: length, first and last byte. A
/// collision only costs a comparison.
fn hash(key: &str) -> u32 {
    let bytes = key.as_bytes();
    let (first, last) = (bytes.first().copied(), bytes.last().copied());
    (bytes.len() as u32)
        .wrapping_mul(7)
        .wrapping_add(u32::from(first.unwrap_or(0)))
        .wrapping_add(u32::from(last.unwrap_or(0)).wrapping_mul(3))
}

/// The index after the closing quote of the string starting at `i`.
pub fn skip_string(bytes: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
        if bytes[i] == b'"' {
            return Some(i + 1);
        }
        i += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(raw: &str) -> Vec<(String, String, bool)> {
        let mut out = Vec::new();
        object(raw, &mut out).unwrap();
        out.iter()
            .map(|m| (m.key.to_string(), m.raw().to_string(), m.live))
            .collect()
    }

    #[test]
    fn members_borrow_and_the_last_duplicate_wins() {
        let got = keys(r#"{"a":1,"b\u0041":[1, 2],"a":{"x":null}}"#);
        assert_eq!(
            got,
            [
                ("a".into(), "1".into(), false),
                ("bA".into(), "[1, 2]".into(), true),
                ("a".into(), r#"{"x":null}"#.into(), true),
            ]
        );
        let many: String = (0..40).map(|n| format!("\"k{}\":{n},", n % 30)).collect();
        let got = keys(&format!("{{{}\"z\":0}}", many));
        assert_eq!(got.iter().filter(|k| k.2).count(), 31);
        assert!(!got[0].2 && got[39].2);
    }

    #[test]
    fn strings_are_unescaped_only_when_needed() {
        assert!(matches!(string(r#""abc""#), Some(Cow::Borrowed("abc"))));
        assert_eq!(string(r#""a\"b""#).unwrap(), "a\"b");
        assert!(string("12").is_none());
    }
}
