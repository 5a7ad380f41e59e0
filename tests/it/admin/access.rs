//! Where a key may be used from: allow-lists against the real source address (IPv4,
//! IPv6, IPv4-mapped entries), forwarded addresses from trusted proxies only, and the
//! failed-authentication limit (IPv6 clients counted by their /64).

use std::net::IpAddr;

use serde_json::json;

use super::{start, start_with, Store};
use crate::support::{send, send_from, API_KEY};

on_both_stores!(
    allow_lists_are_checked_against_the_real_source_address,
    ipv4_mapped_allow_list_entries_match_ipv4_clients,
    allow_lists_work_over_ipv6,
    forwarded_addresses_count_only_from_trusted_admin_proxies,
    repeated_failed_authentications_get_429,
    failures_from_one_ipv6_64_are_counted_together,
);

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

async fn allow_lists_are_checked_against_the_real_source_address(store: Store) {
    let app = start(store).await;
    let key = app
        .admin()
        .create_api_key(json!({"userId": "u", "whitelistedIPs": ["127.0.0.2", "127.0.0.8/29"]}))
        .await
        .unwrap();
    let auth = format!("Bearer {}", key.key);
    let headers = [("authorization", auth.as_str())];
    let from = |source: &str| {
        send_from(
            ip(source),
            app.admin.addr,
            "GET",
            "/v1/workspaces",
            &headers,
            "",
        )
    };
    assert!(from("127.0.0.1")
        .await
        .error(403, "Forbidden")
        .contains("127.0.0.1"));
    for ok in ["127.0.0.2", "127.0.0.9", "127.0.0.15"] {
        assert_eq!(from(ok).await.status, 200, "{ok}");
    }
    from("127.0.0.16").await.error(403, "Forbidden");
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    let forged = [
        ("authorization", auth.as_str()),
        ("x-forwarded-for", "127.0.0.2"),
    ];
    let reply = send_from(
        ip("127.0.0.1"),
        app.admin.addr,
        "GET",
        "/v1/workspaces",
        &forged,
        "",
    )
    .await;
    reply.error(403, "Forbidden");
}

async fn ipv4_mapped_allow_list_entries_match_ipv4_clients(store: Store) {
    let app = start(store).await;
    let key = app
        .admin()
        .create_api_key(
            json!({"userId": "u", "whitelistedIPs": ["::ffff:127.0.0.1", "::ffff:10.0.0.0/104"]}),
        )
        .await
        .unwrap();
    assert_eq!(key.whitelisted_ips, ["127.0.0.1/32", "10.0.0.0/8"]);
    let reply = app
        .admin()
        .as_key(&key.key)
        .request("GET", "/v1/workspaces", None)
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

async fn allow_lists_work_over_ipv6(store: Store) {
    let app = start_with(store, |c| c.admin.listen = "[::1]:0".into()).await;
    let admin = app.admin();
    let v6 = admin
        .create_api_key(json!({"userId": "u", "whitelistedIPs": ["::1"]}))
        .await
        .unwrap();
    let v4 = admin
        .create_api_key(json!({"userId": "u", "whitelistedIPs": ["127.0.0.0/8"]}))
        .await
        .unwrap();
    admin.as_key(&v6.key).workspaces().await.unwrap();
    admin
        .as_key(&v4.key)
        .workspaces()
        .await
        .unwrap_err()
        .is(403, "Forbidden");
}

async fn forwarded_addresses_count_only_from_trusted_admin_proxies(store: Store) {
    let app = start_with(store, |c| {
        c.admin.trusted_proxies = vec!["127.0.0.1".into()]
    })
    .await;
    let key = app
        .admin()
        .create_api_key(json!({"userId": "u", "whitelistedIPs": ["198.51.100.0/24"]}))
        .await
        .unwrap();
    let auth = format!("Bearer {}", key.key);
    let via_proxy = [
        ("authorization", auth.as_str()),
        ("x-forwarded-for", "198.51.100.9"),
    ];
    assert_eq!(
        send(app.admin.addr, "GET", "/v1/workspaces", &via_proxy, "")
            .await
            .status,
        200
    );
    let direct = [("authorization", auth.as_str())];
    send(app.admin.addr, "GET", "/v1/workspaces", &direct, "")
        .await
        .error(403, "Forbidden");
    let untrusted = send_from(
        ip("127.0.0.2"),
        app.admin.addr,
        "GET",
        "/v1/workspaces",
        &via_proxy,
        "",
    );
    untrusted.await.error(403, "Forbidden");
}

/// `GET /v1/workspaces` from `source` with `Authorization: auth`.
async fn workspaces_from(
    admin: std::net::SocketAddr,
    source: &str,
    auth: &str,
) -> crate::support::Reply {
    let headers = [("authorization", auth)];
    send_from(ip(source), admin, "GET", "/v1/workspaces", &headers, "").await
}

async fn repeated_failed_authentications_get_429(store: Store) {
    let app = start(store).await;
    let guess = format!("Bearer api_{}", "g".repeat(40));
    let good = format!("Bearer {API_KEY}");
    let addr = app.admin.addr;
    for _ in 0..20 {
        workspaces_from(addr, "127.0.0.5", &guess)
            .await
            .error(401, "Unauthorized");
    }
    let reply = workspaces_from(addr, "127.0.0.5", &guess).await;
    reply.error(429, "TooManyRequests");
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // Even the right key is refused from that address until the window ends...
    workspaces_from(addr, "127.0.0.5", &good)
        .await
        .error(429, "TooManyRequests");
    // ...while other addresses are unaffected.
    app.admin().workspaces().await.unwrap();
}

async fn failures_from_one_ipv6_64_are_counted_together(store: Store) {
    // Forwarded by a trusted proxy, each guess comes from another address of one /64.
    let app = start_with(store, |c| {
        c.admin.trusted_proxies = vec!["127.0.0.1".into()]
    })
    .await;
    let guess = format!("Bearer api_{}", "g".repeat(40));
    for n in 1..=20 {
        let client = format!("2001:db8:7:7::{n:x}");
        let headers = [
            ("authorization", guess.as_str()),
            ("x-forwarded-for", client.as_str()),
        ];
        send(app.admin.addr, "GET", "/v1/workspaces", &headers, "")
            .await
            .error(401, "Unauthorized");
    }
    let good = format!("Bearer {API_KEY}");
    let same_64 = [
        ("authorization", good.as_str()),
        ("x-forwarded-for", "2001:db8:7:7::beef"),
    ];
    send(app.admin.addr, "GET", "/v1/workspaces", &same_64, "")
        .await
        .error(429, "TooManyRequests");
    let other_64 = [
        ("authorization", good.as_str()),
        ("x-forwarded-for", "2001:db8:7:8::1"),
    ];
    assert_eq!(
        send(app.admin.addr, "GET", "/v1/workspaces", &other_64, "")
            .await
            .status,
        200
    );
}
