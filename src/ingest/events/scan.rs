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

/// Appends the members of `raw`, an object serde_json has already found
/// well-formed (a batch member), to `out`: a byte walk that needs no validation,
/// about a third of the cost of reading it with serde_json again.
pub fn split_object<'a>(raw: &'a str, out: &mut Vec<Member<'a>>) -> Result<(), serde_json::Error> {
    let start = out.len();
    let bytes = raw.as_bytes();
    let mut i = skip_space(bytes, 1);
    while bytes.get(i) == Some(&b'"') {
        let key_end = skip_string(bytes, i + 1).unwrap_or(bytes.len());
        let key_text = &raw[i..key_end];
        let key = match memchr::memchr(b'\\', key_text.as_bytes()) {
            None => Cow::Borrowed(&key_text[1..key_text.len() - 1]),
            Some(_) => serde_json::from_str::<Key>(key_text)?.0,
        };
        // `:` and the spaces around it.
        let value_start = skip_space(bytes, skip_space(bytes, key_end) + 1);
        let value_end = skip_value(bytes, value_start);
        out.push(Member {
            key,
            value: &raw[value_start..value_end],
            live: true,
        });
        // `,` or `}`.
        i = skip_space(bytes, value_end);
        if bytes.get(i) == Some(&b',') {
            i = skip_space(bytes, i + 1);
        }
    }
    mark_duplicates(&mut out[start..]);
    Ok(())
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// The end of the well-formed value starting at `i`.
fn skip_value(bytes: &[u8], i: usize) -> usize {
    match bytes.get(i) {
        Some(b'"') => skip_string(bytes, i + 1).unwrap_or(bytes.len()),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < bytes.len() {
                match bytes[j] {
                    b'"' => {
                        j = skip_string(bytes, j + 1).unwrap_or(bytes.len());
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            bytes.len()
        }
        _ => {
            let rest = &bytes[i..];
            i + rest
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(rest.len())
        }
    }
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
    /// Where the elements go.
    pub out: &'v mut Vec<&'a RawValue>,
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
        while let Some(element) = seq.next_element()? {
            if self.out.len() == self.cap {
                *self.overflowed = true;
                return Err(de::Error::custom("too many events"));
            }
            self.out.push(element);
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

fn hash(key: &str) -> u32 {
    key.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Whether JSON text (already known to be well-formed) is also what a full parse
/// accepts: every `\u` surrogate escape paired, every number within `f64` range.
/// serde_json skips over values without checking either, and a value that fails
/// here would make the stored envelope unreadable to strict parsers.
pub fn is_strict(bytes: &[u8]) -> bool {
    escapes_are_paired(bytes) && numbers_in_range(bytes)
}

/// [`is_strict`] for an object already read into its members: numbers can only be
/// member values or inside containers, so string values are not walked.
pub fn members_are_strict(text: &str, members: &[Member<'_>]) -> bool {
    escapes_are_paired(text.as_bytes())
        && members.iter().all(|m| match m.raw().as_bytes()[0] {
            b'{' | b'[' => numbers_in_range(m.raw().as_bytes()),
            b'-' | b'0'..=b'9' => number_in_range(m.raw().as_bytes()),
            _ => true,
        })
}

/// Every `\u` escape of a UTF-16 surrogate is a high one followed by a low one.
/// Backslashes occur only inside strings, so no string tracking is needed: an
/// escape is a backslash preceded by an even number of backslashes.
fn escapes_are_paired(bytes: &[u8]) -> bool {
    let mut after_pair = 0;
    for at in memchr::memmem::find_iter(bytes, b"\\u") {
        if at < after_pair {
            continue;
        }
        let preceding = bytes[..at]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count();
        if preceding % 2 == 1 {
            continue;
        }
        match hex4(bytes, at + 2) {
            Some(0xD800..=0xDBFF) => {
                let low = bytes.get(at + 6..at + 8) == Some(b"\\u")
                    && hex4(bytes, at + 8).is_some_and(|u| (0xDC00..=0xDFFF).contains(&u));
                if !low {
                    return false;
                }
                after_pair = at + 12;
            }
            Some(0xDC00..=0xDFFF) => return false,
            _ => {}
        }
    }
    true
}

/// Every number outside strings is within `f64` range. Only a number with an
/// exponent, or with hundreds of digits, can be out of range, so the text is
/// walked token by token only when it holds an `e` or `E` after a digit, or 300
/// digits in all.
fn numbers_in_range(bytes: &[u8]) -> bool {
    // Without an exponent a number needs over 300 digits to leave the range.
    let (digits, exponent) = number_marks(bytes);
    if !exponent && digits < 300 {
        return true;
    }
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => match skip_string(bytes, i + 1) {
                Some(end) => i = end,
                None => return false,
            },
            b'-' | b'0'..=b'9' => {
                let end = bytes[i..]
                    .iter()
                    .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                    .map_or(bytes.len(), |n| i + n);
                if !number_in_range(&bytes[i..end]) {
                    return false;
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    true
}

/// How many digits the text holds, and whether a digit is followed by `e` or `E`
/// (in JSON a digit always precedes a number's exponent). Branch-free over byte
/// lanes in blocks of 128, which the compiler vectorises.
fn number_marks(bytes: &[u8]) -> (usize, bool) {
    let (mut digits, mut exponent) = (0usize, 0u8);
    let pairs = bytes.len().saturating_sub(1);
    let mut start = 0;
    while start < pairs {
        let end = (start + 128).min(pairs);
        let (current, next) = (&bytes[start..end], &bytes[start + 1..end + 1]);
        let mut block = 0u8;
        for (&a, &b) in current.iter().zip(next) {
            let digit = u8::from(a.wrapping_sub(b'0') < 10);
            block += digit;
            exponent |= digit & u8::from(b | 0x20 == b'e');
        }
        digits += usize::from(block);
        start = end;
    }
    (digits, exponent != 0)
}

/// The index after the closing quote of the string starting at `i`.
fn skip_string(bytes: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
        if bytes[i] == b'"' {
            return Some(i + 1);
        }
        i += 2;
    }
}

fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
    u16::from_str_radix(text, 16).ok()
}

/// Integers of up to 19 digits always fit; others are read as `f64`, which must be
/// finite (serde_json refuses `1e400`).
fn number_in_range(token: &[u8]) -> bool {
    let digits = token.strip_prefix(b"-").unwrap_or(token);
    if digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit) {
        return true;
    }
    std::str::from_utf8(token)
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .is_some_and(f64::is_finite)
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
    fn strictness_matches_a_full_parse() {
        for (text, ok) in [
            (r#"{"a":"\ud83d\ude00"}"#, true),
            (r#"{"a":"\ud83d"}"#, false),
            (r#"{"a":"\ude00"}"#, false),
            (r#"{"a":"\ud83d\u0041"}"#, false),
            (r#"{"a":"\\ud83d"}"#, true),
            (r#"{"a":[1e308,-2.5E-400,12345678901234567890123]}"#, true),
            (r#"{"e1":"4e1000","b":1}"#, true),
            (r#"{"a":1e400}"#, false),
            (r#"{"a":"1e400"}"#, true),
            (r#"{"a":"\\\ud800"}"#, false),
            (r#"{"a":"\\\\ud800"}"#, true),
            (r#"{"a":"\ud83d\ude00\udc00"}"#, false),
        ] {
            assert_eq!(is_strict(text.as_bytes()), ok, "{text}");
            let full = serde_json::from_str::<serde_json::Value>(text).is_ok();
            assert_eq!(full, ok, "serde_json on {text}");
        }
    }

    #[test]
    fn strings_are_unescaped_only_when_needed() {
        assert!(matches!(string(r#""abc""#), Some(Cow::Borrowed("abc"))));
        assert_eq!(string(r#""a\"b""#).unwrap(), "a\"b");
        assert!(string("12").is_none());
    }
}
