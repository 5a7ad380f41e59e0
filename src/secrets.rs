//! Secrets: generating write keys and API keys from a CSPRNG (rand's thread-local
//! ChaCha, seeded by the OS), hashing API keys
//! for storage (only SHA-256 hashes are kept at rest), and showing keys in logs and
//! answers without revealing them.

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

/// Length of an event write key.
pub const WRITE_KEY_LEN: usize = 32;
/// Prefix of every API key.
pub const API_KEY_PREFIX: &str = "api_";
/// Random characters after the prefix.
const API_KEY_RANDOM_LEN: usize = 40;

/// A SHA-256 digest of an API key: what the store and the index keep.
pub type ApiKeyHash = [u8; 32];

/// A fresh event write key: 32 characters of [A-Za-z0-9].
pub fn new_write_key() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), WRITE_KEY_LEN)
}

/// A fresh API key: `api_` and 40 characters of [A-Za-z0-9].
pub fn new_api_key() -> String {
    let random = Alphanumeric.sample_string(&mut rand::rng(), API_KEY_RANDOM_LEN);
    format!("{API_KEY_PREFIX}{random}")
}

/// Whether the text has the shape of an API key; anything else is refused before hashing.
pub fn is_api_key_shape(key: &str) -> bool {
    key.len() == API_KEY_PREFIX.len() + API_KEY_RANDOM_LEN
        && key.starts_with(API_KEY_PREFIX)
        && key[API_KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// The digest stored for an API key. Lookups go by digest, so the secret itself is
/// never compared byte by byte.
pub fn hash_api_key(key: &str) -> ApiKeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// Lower-case hex of a digest, the form used in the store.
pub fn hash_hex(hash: &ApiKeyHash) -> String {
    use std::fmt::Write;
    hash.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Parses lower- or upper-case hex back into a digest.
pub fn hash_from_hex(text: &str) -> Option<ApiKeyHash> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// An API key as answers show it after creation: `api_…` and the last four characters.
pub fn mask_api_key_tail(last4: &str) -> String {
    format!("{API_KEY_PREFIX}\u{2026}{last4}")
}

/// The last four characters of a key, kept beside its hash to build the mask.
pub fn tail4(key: &str) -> String {
    key[key.len().saturating_sub(4)..].to_string()
}

/// A secret from the configuration: shown (in `Debug`, `Display` and serialised)
/// only redacted; `expose` hands the secret itself to the code that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&redact(&self.0))
    }
}

/// A key as logs may show it: the first four characters and an ellipsis.
pub fn redact(key: &str) -> String {
    let head: String = key.chars().take(4).collect();
    format!("{head}\u{2026}")
}

/// A URL as logs and `check-config` may show it: the password of its user info (or a
/// lone token, as NATS takes them) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let user_info = &rest[..at];
    let shown = match user_info.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_string(),
    };
    format!("{scheme}://{shown}{}", &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_contract_shape() {
        let w = new_write_key();
        assert!(w.len() == WRITE_KEY_LEN && w.bytes().all(|b| b.is_ascii_alphanumeric()));
        let a = new_api_key();
        assert!(is_api_key_shape(&a), "{a}");
        assert_ne!(new_write_key(), new_write_key());
    }

    #[test]
    fn shapes_refuse_near_misses() {
        assert!(!is_api_key_shape("api_short"));
        assert!(!is_api_key_shape(&format!("apx_{}", "a".repeat(40))));
        assert!(!is_api_key_shape(&format!("api_{}!", "a".repeat(39))));
    }

    #[test]
    fn hash_hex_round_trips() {
        let h = hash_api_key("api_x");
        assert_eq!(hash_from_hex(&hash_hex(&h)), Some(h));
        assert_eq!(hash_from_hex("zz"), None);
    }

    #[test]
    fn masks_hide_the_secret() {
        let k = new_api_key();
        let masked = mask_api_key_tail(&tail4(&k));
        assert!(masked.starts_with("api_\u{2026}"));
        assert!(masked.ends_with(&k[k.len() - 4..]));
        assert_eq!(redact(&k).chars().count(), 5);
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("redis://:secret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact_url("redis://user:secret@host"),
            "redis://user:***@host"
        );
        assert_eq!(redact_url("nats://token@host:4222"), "nats://***@host:4222");
        assert_eq!(redact_url("nats://host:4222"), "nats://host:4222");
        assert_eq!(redact_url("redis://host/0?x=a@b"), "redis://host/0?x=a@b");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
