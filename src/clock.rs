//! Time: one place that reads the clock, formats RFC 3339 with milliseconds (the form
//! every answer and envelope uses) and parses the ISO-8601 timestamps SDKs send.

use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Now, in UTC, truncated to milliseconds so that stored and shown times agree.
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_millisecond(t.millisecond()).unwrap_or(t)
}

/// `2026-11-22T10:00:00.123Z`: always UTC, always three fraction digits. A time
/// outside the years 0000–9999 (which RFC 3339 cannot express) is clamped to the
/// nearest end, so that the text is always RFC 3339; enrichment never gets there, it
/// checks with [`millis_text`] first.
pub fn format_millis(t: OffsetDateTime) -> String {
    MillisText::of(t).as_str().to_owned()
}

/// [`format_millis`] without allocating: the request path formats its arrival time
/// once per request.
#[derive(Clone, Copy)]
pub struct MillisText([u8; 24]);

impl MillisText {
    /// The text of `t`, clamped as [`format_millis`] says.
    pub fn of(t: OffsetDateTime) -> Self {
        Self(millis_text(t).unwrap_or(if t.unix_timestamp() < 0 {
            *b"0000-01-01T00:00:00.000Z"
        } else {
            *b"9999-12-31T23:59:59.999Z"
        }))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Digits and punctuation only: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The RFC 3339 text of a time in UTC with milliseconds, without allocating; `None`
/// when its UTC year is outside 0000–9999.
pub fn millis_text(t: OffsetDateTime) -> Option<[u8; 24]> {
    let utc = t.checked_to_offset(UtcOffset::UTC)?;
    let year = u32::try_from(utc.year()).ok().filter(|y| *y <= 9999)?;
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut value: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, u32::from(u8::from(utc.month())));
    put(8, 2, u32::from(utc.day()));
    put(11, 2, u32::from(utc.hour()));
    put(14, 2, u32::from(utc.minute()));
    put(17, 2, u32::from(utc.second()));
    put(20, 3, u32::from(utc.millisecond()));
    Some(out)
}

/// `received - (sent - happened)`, the client-clock correction Segment applies, with
/// its text (which the range check produces anyway); `None` when the result is not an
/// RFC 3339 time (out of range, or beyond year 9999).
pub fn skew_corrected(
    received: OffsetDateTime,
    sent: OffsetDateTime,
    happened: OffsetDateTime,
) -> Option<(OffsetDateTime, [u8; 24])> {
    let corrected = received.checked_sub(sent - happened)?;
    millis_text(corrected).map(|text| (corrected, text))
}

/// Parses the timestamp forms SDKs send: RFC 3339, other ISO-8601 forms with an
/// offset, and (taken as UTC) ISO-8601 date-times without an offset or bare dates.
pub fn parse_iso8601(text: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    if let Ok(t) = OffsetDateTime::parse(text, &Iso8601::PARSING) {
        return Some(t);
    }
    if let Ok(t) = PrimitiveDateTime::parse(text, &Iso8601::PARSING) {
        return Some(t.assume_utc());
    }
    Date::parse(text, &format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|d| d.midnight().assume_utc())
}

/// Serde for stored times: RFC 3339 with milliseconds.
pub mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    /// Writes the time as `format_millis` does.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_millis(*t))
    }

    /// Reads any RFC 3339 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)
    }

    /// The same for optional times (null when absent).
    pub mod option {
        use super::*;

        /// Writes the time, or null.
        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::format_millis(*t)),
                None => s.serialize_none(),
            }
        }

        /// Reads a time or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| {
                    OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)
                })
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_three_fraction_digits_in_utc() {
        let t = parse_iso8601("2026-11-22T11:00:00+01:00").unwrap();
        assert_eq!(format_millis(t), "2026-11-22T10:00:00.000Z");
        let t = parse_iso8601("2026-11-22T10:00:00.123456Z").unwrap();
        assert_eq!(format_millis(t), "2026-11-22T10:00:00.123Z");
    }

    #[test]
    fn extreme_times_stay_rfc_3339() {
        let early = parse_iso8601("0001-01-01T00:00:00Z").unwrap();
        let late = parse_iso8601("8000-01-01T00:00:00Z").unwrap();
        let received = parse_iso8601("2026-11-22T10:00:00Z").unwrap();
        // The request: sentAt year 1, timestamp year 8000 → year 10025.
        assert_eq!(skew_corrected(received, early, late), None);
        // The reverse gave "-7974-11-27T…" before.
        let latest = parse_iso8601("9999-01-01T00:00:00Z").unwrap();
        let zero = parse_iso8601("0000-01-01T00:00:00Z").unwrap();
        assert_eq!(skew_corrected(received, latest, zero), None);
        assert!(skew_corrected(received, received, early).is_some());
        // Offsets that push a time past the range in UTC.
        let edge = parse_iso8601("0000-01-01T00:00:00+05:00").unwrap();
        assert_eq!(millis_text(edge), None);
        assert_eq!(format_millis(edge), "0000-01-01T00:00:00.000Z");
        let edge = parse_iso8601("9999-12-31T23:00:00-05:00").unwrap();
        assert_eq!(format_millis(edge), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            format_millis(parse_iso8601("0042-03-04T05:06:07.089Z").unwrap()),
            "0042-03-04T05:06:07.089Z"
        );
    }

    #[test]
    fn parses_the_forms_sdks_send() {
        for text in [
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:00.1Z",
            "2026-11-22T10:00:00.123+00:00",
            "2026-11-22T10:00:00+0000",
            "2026-11-22T10:00:00",
            "2026-11-22",
        ] {
            assert!(parse_iso8601(text).is_some(), "{text}");
        }
        for text in ["yesterday", "2026-13-01T00:00:00Z", "", "1700000000"] {
            assert!(parse_iso8601(text).is_none(), "{text}");
        }
    }
}
