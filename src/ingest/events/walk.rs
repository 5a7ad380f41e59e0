//! The fast path: one pass over a request body that validates it as strictly as a
//! full parse (grammar, escapes, paired surrogates, numbers within `f64` range) and
//! records where each event and each event's top-level member lie. Enrichment then
//! reads members from these spans, so no byte is walked twice.
//!
//! The walk only says yes or "not on the fast path": any body it does not accept
//! (malformed, not strict, over the events cap, a repeated batch field, nesting
//! deeper than [`MAX_DEPTH`], members under [`BYTES_PER_MEMBER`] bytes on average)
//! is read again by the serde path, which gives the
//! exact answer. So the walk must never accept what the serde path refuses; the
//! property tests in `equivalence` hold it to that.

use std::borrow::Cow;

use super::scan::{Key, Member};
use super::strict::number_in_range;

/// Body bytes per recorded member, at the least: a body of many tiny members leaves
/// the fast path (for serde's, which reads one event at a time), so that the table of
/// spans (20 bytes a member) holds at most 1.25 bytes per body byte, 2.5 with the
/// vector's spare capacity. Real events have 60 and more bytes a member.
const BYTES_PER_MEMBER: usize = 16;

/// Containers nested deeper than this leave the fast path (the serde path has no
/// such limit for skipped values; 128 bits of container kinds fit one `u128`).
const MAX_DEPTH: u32 = 128;

/// Where a member of an object lies in the body: its key (quotes included) and its
/// value's text. Offsets rather than slices keep a batch's table at 20 bytes a member.
#[derive(Debug, Clone, Copy)]
pub struct MemberSpan {
    key: (u32, u32),
    value: (u32, u32),
    /// Whether the key holds an escape (and must be unescaped to be read).
    escaped: bool,
}

/// One element of the events array: its text, and its members when it is an object.
#[derive(Debug, Clone, Copy)]
pub struct EventSpan {
    start: u32,
    end: u32,
    /// The range of [`Walk::members`] holding this event's members; `None` when the
    /// element is not an object.
    members: Option<(u32, u32)>,
}

/// What the walk found in a body it accepted.
#[derive(Debug, Default)]
pub struct Walk {
    /// The members of the body, when it is an object.
    pub top: Vec<MemberSpan>,
    /// The elements of the events array (`batch`, or a bare array body); `None`
    /// when there is none.
    pub events: Option<Vec<EventSpan>>,
    /// The members of every object event, in order.
    members: Vec<MemberSpan>,
}

/// Walks `body` (already known to be UTF-8). With `events_key`, a top-level `batch`
/// array, or a top-level array, is read as events, at most `max_events` of them.
pub fn walk(body: &str, events_key: bool, max_events: usize) -> Option<Walk> {
    let bytes = body.as_bytes();
    u32::try_from(bytes.len()).ok()?;
    let mut walker = Walker {
        bytes,
        i: 0,
        walk: Walk::default(),
        max_events,
        members_left: bytes.len() / BYTES_PER_MEMBER + 16,
    };
    walker.space();
    match walker.peek()? {
        b'{' => {
            let mut top = Vec::with_capacity(16);
            walker.object(&mut top, events_key)?;
            walker.walk.top = top;
        }
        b'[' if events_key => walker.events()?,
        _ => return None,
    }
    walker.space();
    (walker.i == bytes.len()).then_some(walker.walk)
}

impl Walk {
    /// How many events the array holds.
    pub fn event_count(&self) -> usize {
        self.events.as_ref().map_or(0, Vec::len)
    }

    /// The events' spans.
    pub fn events(&self) -> &[EventSpan] {
        self.events.as_deref().unwrap_or_default()
    }

    /// The members of `event` into `out` (cleared first); false when the event is
    /// not an object.
    pub fn event_members<'a>(
        &self,
        body: &'a str,
        event: &EventSpan,
        out: &mut Vec<Member<'a>>,
    ) -> bool {
        out.clear();
        let Some((from, to)) = event.members else {
            return false;
        };
        out.extend(
            self.members[from as usize..to as usize]
                .iter()
                .map(|span| span.member(body)),
        );
        true
    }
}

impl EventSpan {
    /// The element's JSON text.
    pub fn text<'a>(&self, body: &'a str) -> &'a str {
        &body[self.start as usize..self.end as usize]
    }
}

impl MemberSpan {
    /// The member, its key unescaped when it holds escapes.
    pub fn member<'a>(&self, body: &'a str) -> Member<'a> {
        let key_text = &body[self.key.0 as usize..self.key.1 as usize];
        let key = if !self.escaped {
            Cow::Borrowed(&key_text[1..key_text.len() - 1])
        } else {
            // The walk validated the escapes: this parse cannot fail.
            serde_json::from_str::<Key>(key_text).map_or(Cow::Borrowed(""), |k| k.0)
        };
        Member {
            key,
            value: self.value_text(body),
            live: true,
        }
    }

    /// The key's text, quotes included.
    pub fn key_text<'a>(&self, body: &'a str) -> &'a str {
        &body[self.key.0 as usize..self.key.1 as usize]
    }

    /// The value's JSON text.
    pub fn value_text<'a>(&self, body: &'a str) -> &'a str {
        &body[self.value.0 as usize..self.value.1 as usize]
    }
}

struct Walker<'b> {
    bytes: &'b [u8],
    i: usize,
    walk: Walk,
    max_events: usize,
    /// Members that may still be recorded.
    members_left: usize,
}

impl Walker<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.i).copied()
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.i += 1)
    }

    /// The offset as stored in a span (the body's length was checked to fit).
    fn at(&self) -> u32 {
        self.i as u32
    }

    /// An object whose members are recorded in `out`. With `events_key`, a `batch`
    /// array is read as the events.
    fn object(&mut self, out: &mut Vec<MemberSpan>, events_key: bool) -> Option<()> {
        self.eat(b'{')?;
        self.space();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.space();
            let key_start = self.at();
            self.eat(b'"')?;
            let escaped;
            (self.i, escaped) = key_end(self.bytes, self.i)?;
            let key = (key_start, self.at());
            self.space();
            self.eat(b':')?;
            self.space();
            let value_start = self.at();
            let is_events = events_key
                && self.peek() == Some(b'[')
                && &self.bytes[key.0 as usize..key.1 as usize] == b"\"batch\"";
            if is_events {
                self.events()?;
            } else {
                if events_key && escaped {
                    // A key spelled with escapes could name `batch`: the serde path decides.
                    return None;
                }
                self.value()?;
            }
            self.members_left = self.members_left.checked_sub(1)?;
            out.push(MemberSpan {
                key,
                value: (value_start, self.at()),
                escaped,
            });
            self.space();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The events array: each element's span, and an object's members.
    fn events(&mut self) -> Option<()> {
        if self.walk.events.is_some() {
            // A second `batch`: refused by the serde path.
            return None;
        }
        // Sized for events of a few hundred bytes and members of a few dozen, so that
        // a typical batch never regrows them.
        let rest = self.bytes.len() - self.i;
        let mut events = Vec::with_capacity((rest / 256).min(self.max_events));
        let mut members = Vec::with_capacity(rest / 64);
        self.eat(b'[')?;
        self.space();
        if self.eat(b']').is_none() {
            loop {
                if events.len() == self.max_events {
                    return None;
                }
                self.space();
                let start = self.at();
                let spans = if self.peek()? == b'{' {
                    let from = members.len() as u32;
                    self.object(&mut members, false)?;
                    Some((from, members.len() as u32))
                } else {
                    self.value()?;
                    None
                };
                events.push(EventSpan {
                    start,
                    end: self.at(),
                    members: spans,
                });
                self.space();
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.walk.events = Some(events);
        self.walk.members = members;
        Some(())
    }

    /// Any value, without recursion: the open containers' kinds are bits of `open`
    /// (1 for an object).
    fn value(&mut self) -> Option<()> {
        let mut open: u128 = 0;
        let mut depth = 0u32;
        loop {
            // A value starts here.
            self.space();
            match self.peek()? {
                b'"' => self.i = string_end(self.bytes, self.i + 1)?,
                b'-' | b'0'..=b'9' => self.number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                open_byte @ (b'{' | b'[') => {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    self.i += 1;
                    let is_object = open_byte == b'{';
                    open = open << 1 | u128::from(is_object);
                    depth += 1;
                    self.space();
                    let close = if is_object { b'}' } else { b']' };
                    if self.eat(close).is_none() {
                        if is_object {
                            self.key()?;
                        }
                        continue;
                    }
                    open >>= 1;
                    depth -= 1;
                }
                _ => return None,
            }
            // A value ended: close containers until one continues.
            loop {
                if depth == 0 {
                    return Some(());
                }
                self.space();
                let in_object = open & 1 == 1;
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        if in_object {
                            self.space();
                            self.key()?;
                        }
                        break;
                    }
                    b'}' if in_object => {}
                    b']' if !in_object => {}
                    _ => return None,
                }
                self.i += 1;
                open >>= 1;
                depth -= 1;
            }
        }
    }

    /// A key and its colon, inside a container being skipped.
    #[inline(always)]
    fn key(&mut self) -> Option<()> {
        self.eat(b'"')?;
        self.i = string_end(self.bytes, self.i)?;
        self.space();
        self.eat(b':')
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.bytes.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A number by JSON's grammar; one with an exponent or many digits must also be
    /// a finite `f64`, as a full parse requires.
    fn number(&mut self) -> Option<()> {
        let start = self.i;
        let digits = |walker: &mut Self| {
            let from = walker.i;
            while walker.peek().is_some_and(|b| b.is_ascii_digit()) {
                walker.i += 1;
            }
            walker.i > from
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                digits(self);
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !digits(self) {
                return None;
            }
        }
        let mut plain = true;
        if let Some(b'e' | b'E') = self.peek() {
            plain = false;
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !digits(self) {
                return None;
            }
        }
        // Up to 19 characters without an exponent always fit an f64.
        ((plain && self.i - start <= 19) || number_in_range(&self.bytes[start..self.i]))
            .then_some(())
    }
}

/// The index after the closing quote of the string whose text starts at `i`, when
/// the string is valid: no control character, known escapes, paired surrogates.
// Inlined into the walk: most strings are short, and a call costs as much as the scan.
#[inline(always)]
fn string_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i = next_special(bytes, i)?;
        if bytes[i] != b'\\' {
            return (bytes[i] == b'"').then_some(i + 1);
        }
        i = escape_end(bytes, i + 1)?;
    }
}

/// [`string_end`] for a member's key, and whether the key holds an escape.
fn key_end(bytes: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        i = next_special(bytes, i)?;
        match bytes[i] {
            b'"' => return Some((i + 1, escaped)),
            b'\\' => {
                escaped = true;
                i = escape_end(bytes, i + 1)?;
            }
            _ => return None,
        }
    }
}

/// The first `"`, `\` or control character at or after `i`, eight bytes at a time.
#[inline]
fn next_special(bytes: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Lanes below `n` get their high bit set; a false hit can only follow a true
    // one, so the lowest set bit is exact.
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGH;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut lanes = [0u8; 8];
        lanes.copy_from_slice(chunk);
        let w = u64::from_le_bytes(lanes);
        let hits = below(w ^ (ONES * u64::from(b'"')), 1)
            | below(w ^ (ONES * u64::from(b'\\')), 1)
            | below(w, 0x20);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes
        .get(i..)?
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|n| i + n)
}

/// After a backslash at `i - 1`: the index after the escape, when it is one JSON
/// knows and any surrogate it names is paired.
fn escape_end(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 1),
        b'u' => match hex4(bytes, i + 1)? {
            0xD800..=0xDBFF => {
                let low = (bytes.get(i + 5..i + 7)? == b"\\u")
                    .then(|| hex4(bytes, i + 7))
                    .flatten()?;
                (0xDC00..=0xDFFF).contains(&low).then_some(i + 11)
            }
            0xDC00..=0xDFFF => None,
            _ => Some(i + 5),
        },
        _ => None,
    }
}

fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    bytes.get(at..at + 4)?.iter().try_fold(0u16, |n, &b| {
        let digit = (b as char).to_digit(16)?;
        Some(n << 4 | digit as u16)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(text: &str) -> bool {
        walk(text, true, 10).is_some()
    }

    #[test]
    fn the_walk_accepts_exactly_strict_json() {
        for (text, ok) in [
            (
                r#"{"a":"\ud83d\ude00","b":[1,-0.5e-3,{"c":null}],"d":true}"#,
                true,
            ),
            (r#" { "a" : [ ] , "b" : { } } "#, true),
            (r#"{"a":"\ud83d"}"#, false),
            (r#"{"a":"\ude00"}"#, false),
            (r#"{"a":"\ud83d\u0041"}"#, false),
            (r#"{"a":"\\ud83d"}"#, true),
            (r#"{"a":1e400}"#, false),
            (r#"{"a":1e308}"#, true),
            (r#"{"a":01}"#, false),
            (r#"{"a":1.}"#, false),
            (r#"{"a":-}"#, false),
            (
                r#"{"a":"x
"}"#,
                false,
            ),
            (r#"{"a":"\x"}"#, false),
            (r#"{"a":"\u12G4"}"#, false),
            (r#"{"a":[1,]}"#, false),
            (r#"{"a":{"b":1,}}"#, false),
            (r#"{"a":{"b" 1}}"#, false),
            (r#"{"a":tru}"#, false),
            (r#"{"a":1} x"#, false),
            (r#"{"a":1"#, false),
            (r#"{"a":"1"#, false),
            (r#"{"a":[}"#, false),
            (r#"{"a":{]}"#, false),
            (r#"[{"a":1},2,"x"]"#, true),
        ] {
            assert_eq!(accepted(text), ok, "{text}");
            let full = serde_json::from_str::<serde_json::Value>(text).is_ok();
            assert_eq!(full, ok, "serde_json on {text}");
        }
    }

    #[test]
    fn events_and_their_members_are_recorded() {
        let body = r#"{"sentAt":"x","batch":[{"a":1,"b\u0041":[2]},7],"other":{}}"#;
        let walk = walk(body, true, 10).unwrap();
        let top: Vec<&str> = walk.top.iter().map(|m| m.key_text(body)).collect();
        assert_eq!(top, [r#""sentAt""#, r#""batch""#, r#""other""#]);
        let events = walk.events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].text(body), "7");
        let mut members = Vec::new();
        assert!(walk.event_members(body, &events[0], &mut members));
        let got: Vec<(&str, &str)> = members.iter().map(|m| (&*m.key, m.value)).collect();
        assert_eq!(got, [("a", "1"), ("bA", "[2]")]);
        assert!(!walk.event_members(body, &events[1], &mut members));
    }

    #[test]
    fn what_the_serde_path_must_answer_leaves_the_walk() {
        // Over the cap, a repeated batch, an escaped key, deep nesting, tiny members.
        assert!(walk(r#"{"batch":[1,2,3]}"#, true, 2).is_none());
        assert!(walk(r#"{"batch":[],"batch":[]}"#, true, 2).is_none());
        assert!(walk(r#"{"b\u0061tch":[]}"#, true, 2).is_none());
        assert!(walk(r#"{"b\u0061tch":[]}"#, false, 2).is_some());
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(walk(&deep, true, 2).is_none());
        let fine = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(walk(&fine, true, 2).is_some());
        let tiny: Vec<String> = (0..200).map(|n| format!("\"{n}\":0")).collect();
        assert!(walk(&format!("{{{}}}", tiny.join(",")), false, 2).is_none());
        let padded: Vec<String> = (0..200).map(|n| format!("\"{n:>12}\":0")).collect();
        assert!(walk(&format!("{{{}}}", padded.join(",")), false, 2).is_some());
    }
}
