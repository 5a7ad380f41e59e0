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

/// `2026-11-22T10:00:00.123Z`: always UTC, always three fraction digits.
pub fn format_millis(t: OffsetDateTime) -> String {
    let utc = t.to_offset(UtcOffset::UTC);
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    utc.format(&fmt).unwrap_or_else(|_| utc.to_string())
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
