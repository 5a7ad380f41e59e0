//! What a full JSON parse would refuse in text serde_json has only skipped over:
//! unpaired UTF-16 surrogate escapes and numbers beyond the `f64` range. serde_json
//! skips values without checking either; an event holding one would make its stored
//! envelope unreadable to strict parsers, so it is refused as the `Value` path did.

use super::scan::{skip_string, Member};

/// Whether JSON text (already known to be well-formed) is also what a full parse
/// accepts: every `\u` surrogate escape paired, every number within `f64` range.
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
    static ESCAPE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\\u"));
    let mut after_pair = 0;
    for at in ESCAPE.find_iter(bytes) {
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

fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
    u16::from_str_radix(text, 16).ok()
}

/// Integers of up to 19 digits always fit; others are read as `f64`, which must be
/// finite (serde_json refuses `1e400`).
pub(super) fn number_in_range(token: &[u8]) -> bool {
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
}
