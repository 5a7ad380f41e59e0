//! Field rules: each admin input value is a type that checks itself when a request is
//! deserialised (a broken rule is a 422 naming the field) and describes itself, with
//! the same limits, in the OpenAPI document.

use std::borrow::Cow;
use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use time::Date;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use crate::model::AllowedOrigin;
use crate::net;

/// Longest name of a company, workspace or connection.
const MAX_NAME: usize = 100;
/// Longest connection type.
const MAX_TYPE: usize = 64;
/// Longest `userId` and `description`.
const MAX_TEXT: usize = 200;
/// Most `whitelistedIPs` entries and `allowedOrigins` entries.
pub(crate) const MAX_LIST: usize = 100;

fn string_schema(min: usize, max: usize, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .description(Some(description))
        .into()
}

fn checked_text(text: &str, max: usize) -> Result<String, String> {
    let text = text.trim();
    let count = text.chars().count();
    if count == 0 || count > max {
        return Err(format!("must be 1 to {max} characters"));
    }
    Ok(text.to_string())
}

/// Defines a string field type checked by `check` and described by `schema`; or,
/// with `trimmed max, "rule"`, one holding 1 to `max` characters once trimmed.
macro_rules! text_field {
    ($name:ident, $doc:literal, trimmed $max:expr, $rule:literal) => {
        text_field!(
            $name,
            $doc,
            |t| checked_text(t, $max),
            string_schema(1, $max, $rule)
        );
    };
    ($name:ident, $doc:literal, $check:expr, $schema:expr) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub(crate) struct $name(pub(crate) String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                let check: fn(&str) -> Result<String, String> = $check;
                check(&text).map(Self).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

text_field!(Name, "A display name: 1 to 100 characters, trimmed.", trimmed MAX_NAME, "1 to 100 characters");

text_field!(
    ConnectionType,
    "A connection type: a lower-case name; `sdk` and `webhook` carry write keys.",
    |t| {
        let t = checked_text(t, MAX_TYPE)?;
        if t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            Ok(t)
        } else {
            Err("must be a lower-case name such as sdk, webhook, app or database".into())
        }
    },
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_TYPE))
        .pattern(Some("^[a-z0-9_-]+$"))
        .description(Some("sdk, webhook, or another type that carries no keys"))
        .into()
);

text_field!(UserId, "Who an API key is issued to: 1 to 200 characters.", trimmed MAX_TEXT, "1 to 200 characters");

text_field!(
    Description,
    "Free text about an API key: 1 to 200 characters (not trimmed).",
    |t| {
        if (1..=MAX_TEXT).contains(&t.chars().count()) {
            Ok(t.to_string())
        } else {
            Err("must be 1 to 200 characters, or null".into())
        }
    },
    string_schema(1, MAX_TEXT, "1 to 200 characters")
);

text_field!(
    ApiVersion,
    "An API version: a real date written `YYYY-MM-DD` (not in the future: checked on use).",
    |t| {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        match Date::parse(t, &format) {
            Ok(_) if t.len() == 10 => Ok(t.to_string()),
            _ => Err("must be a real date written YYYY-MM-DD".into()),
        }
    },
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))
        .description(Some("YYYY-MM-DD, a real date, not in the future"))
        .into()
);

impl ApiVersion {
    /// The date (the text was checked on parse).
    pub(crate) fn date(&self) -> Option<Date> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        Date::parse(&self.0, &format).ok()
    }
}

/// Client addresses allowed to use an API key: at most 100 IPv4/IPv6 addresses or
/// CIDR blocks, canonicalised as client addresses are (IPv4-mapped entries as IPv4).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct WhitelistedIps(pub(crate) Vec<IpNet>);

impl<'de> Deserialize<'de> for WhitelistedIps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        capped_list(d, |item| {
            net::parse_cidr(item).ok_or("is not a valid IPv4/IPv6 address or CIDR block")
        })
        .map(Self)
    }
}

/// A list of at most [`MAX_LIST`] strings (null: empty), each parsed by `parse`,
/// without repeats.
fn capped_list<'de, D, T, E>(d: D, parse: impl Fn(&str) -> Result<T, E>) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: PartialEq,
    E: fmt::Display,
{
    let items = Option::<Vec<String>>::deserialize(d)?.unwrap_or_default();
    if items.len() > MAX_LIST {
        return Err(serde::de::Error::custom(TooMany));
    }
    let mut parsed: Vec<T> = Vec::with_capacity(items.len());
    for item in &items {
        let value =
            parse(item).map_err(|why| serde::de::Error::custom(format!("`{item}` {why}")))?;
        if !parsed.contains(&value) {
            parsed.push(value);
        }
    }
    Ok(parsed)
}

/// Browser origins allowed to send with a connection's keys: at most 100, each
/// `scheme://host[:port]` or `https://*.domain`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AllowedOrigins(pub(crate) Vec<AllowedOrigin>);

impl<'de> Deserialize<'de> for AllowedOrigins {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        capped_list(d, AllowedOrigin::parse).map(Self)
    }
}

/// The list cap's message.
struct TooMany;

impl fmt::Display for TooMany {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "must have at most {MAX_LIST} entries")
    }
}

fn list_schema(item: ObjectBuilder, description: &str) -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(item.schema_type(Type::String))
        .max_items(Some(MAX_LIST))
        .description(Some(description))
        .into()
}

impl utoipa::PartialSchema for WhitelistedIps {
    fn schema() -> RefOr<Schema> {
        list_schema(
            ObjectBuilder::new().description(Some("an IPv4/IPv6 address or CIDR block")),
            "at most 100; empty allows every address",
        )
    }
}

impl utoipa::ToSchema for WhitelistedIps {}

impl utoipa::PartialSchema for AllowedOrigins {
    fn schema() -> RefOr<Schema> {
        let origin = ObjectBuilder::new()
            .description(Some("scheme://host[:port], or https://*.domain"))
            .pattern(Some(crate::model::ORIGIN_PATTERN))
            .max_length(Some(crate::model::MAX_ORIGIN_LEN));
        list_schema(origin, "at most 100; empty: ingest.cors_origins applies")
    }
}

impl utoipa::ToSchema for AllowedOrigins {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: for<'de> Deserialize<'de>>(json: &str) -> Result<T, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse::<Name>("\" Shop \"").unwrap().0, "Shop");
        assert!(parse::<Name>("\"  \"").is_err());
        assert!(parse::<Name>(&format!("\"{}\"", "x".repeat(101))).is_err());
        assert!(parse::<Name>("5").is_err());
    }

    #[test]
    fn connection_types_are_lower_case_names() {
        assert!(parse::<ConnectionType>("\"sdk\"").is_ok());
        assert!(parse::<ConnectionType>("\"Not Valid\"").is_err());
    }

    #[test]
    fn api_versions_are_real_dates() {
        assert!(parse::<ApiVersion>("\"2026-11-27\"").is_ok());
        for bad in [
            "\"2026-02-30\"",
            "\"2026-1-5\"",
            "\"2026/01/01\"",
            "20260101",
            "null",
        ] {
            assert!(parse::<ApiVersion>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allow_lists_are_canonical_and_capped() {
        let ips = parse::<WhitelistedIps>("[\"::ffff:127.0.0.1\", \"10.0.0.0/8\"]").unwrap();
        let shown: Vec<String> = ips.0.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["127.0.0.1/32", "10.0.0.0/8"]);
        assert!(parse::<WhitelistedIps>("[\"10.0.0.300\"]").is_err());
        assert!(parse::<WhitelistedIps>("[7]").is_err());
        let many = format!("[{}]", vec!["\"10.0.0.1\""; 101].join(","));
        assert!(parse::<WhitelistedIps>(&many)
            .unwrap_err()
            .contains("at most 100"));
        assert_eq!(
            parse::<WhitelistedIps>("null").unwrap(),
            WhitelistedIps::default()
        );
    }

    #[test]
    fn allowed_origins_are_checked_deduplicated_and_capped() {
        let origins =
            parse::<AllowedOrigins>("[\"https://a.example\", \"https://A.example:443\"]").unwrap();
        assert_eq!(origins.0.len(), 1);
        let error = parse::<AllowedOrigins>("[\"https://a.example/x\"]").unwrap_err();
        assert!(error.contains("https://a.example/x"), "{error}");
        let many: Vec<String> = (0..101)
            .map(|n| format!("\"https://{n}.example\""))
            .collect();
        let error = parse::<AllowedOrigins>(&format!("[{}]", many.join(","))).unwrap_err();
        assert!(error.contains("at most 100"), "{error}");
    }
}
