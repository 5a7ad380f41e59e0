//! `sink.nats_url`: the list of servers, and the credentials in it. async-nats does
//! not take credentials from URLs, and would print a URL's password in its debug logs,
//! so they leave the URLs here and go to the client as options.

use crate::config::SinkSettings;

/// The NATS servers of `sink.nats_url`, as written (credentials included: for the
/// client only).
pub fn nats_servers(sink: &SinkSettings) -> Vec<String> {
    sink.nats_url
        .iter()
        .map(|server| server.as_str().to_string())
        .collect()
}

/// Credentials given in `sink.nats_url` (`nats://user:password@host`, or
/// `nats://token@host`).
#[derive(Debug, PartialEq)]
pub enum Credentials {
    /// `user:password@`.
    UserPassword(String, String),
    /// `token@`.
    Token(String),
}

/// The servers without user info (so that no log of the client shows a password),
/// and the credentials of the first URL that carries any: the client takes them as
/// options, not from the URLs.
pub fn server_addresses(
    urls: &[String],
) -> anyhow::Result<(Vec<async_nats::ServerAddr>, Option<Credentials>)> {
    let mut credentials = None;
    let mut servers = Vec::with_capacity(urls.len());
    for url in urls {
        let parse = |text: &str| -> anyhow::Result<async_nats::ServerAddr> {
            text.parse().map_err(|_| {
                anyhow::anyhow!(
                    "sink.nats_url: `{}` is not a NATS URL",
                    crate::secrets::redact_url(url)
                )
            })
        };
        let full = parse(url)?;
        if credentials.is_none() {
            credentials = match (full.username(), full.password()) {
                (Some(user), Some(password)) => Some(Credentials::UserPassword(
                    percent_decoded(user),
                    percent_decoded(password),
                )),
                (Some(token), None) => Some(Credentials::Token(percent_decoded(token))),
                _ => None,
            };
        }
        servers.push(parse(&without_user_info(url))?);
    }
    Ok((servers, credentials))
}

/// URL user info as the server expects it (`%40` → `@`).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `scheme://user:password@host…` without `user:password@`.
fn without_user_info(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_urls_and_become_options() {
        let urls = [
            "nats://u:s%20cret@a:4222".to_string(),
            "nats://b:4222".to_string(),
        ];
        let (servers, credentials) = server_addresses(&urls).unwrap();
        assert_eq!(
            credentials,
            Some(Credentials::UserPassword("u".into(), "s cret".into()))
        );
        for server in &servers {
            assert!(!server.has_user_pass());
            assert!(!format!("{server:?}").contains("cret"));
        }
        let (_, token) = server_addresses(&["tls://t0k3n@c:4222".to_string()]).unwrap();
        assert_eq!(token, Some(Credentials::Token("t0k3n".into())));
        let error = server_addresses(&["nats://u:secret@[bad".to_string()]).unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn servers_are_read_from_the_comma_separated_setting() {
        let mut config = crate::config::Config::default();
        config.sink.nats_url = "nats://a:4222, nats://u:p@b:4222".into();
        let settings = config.validate().unwrap();
        assert_eq!(
            nats_servers(&settings.sink),
            ["nats://a:4222", "nats://u:p@b:4222"]
        );
    }
}
