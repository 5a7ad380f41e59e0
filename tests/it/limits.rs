//! Rate limits on the ingest listener (429 with Retry-After and RateLimit-* headers).

use serde_json::json;

use crate::support::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn a_key_over_its_budget_gets_429_with_headers() {
    let app = TestApp::start_with(|c| {
        c.rate_limit.per_key_per_second = 1;
        c.rate_limit.per_key_burst = 3;
    })
    .await;
    let (_, _, key) = app.admin.sdk_key().await;
    let (_, _, other) = app.admin.sdk_key().await;
    let body = json!({"userId": "u", "event": "e"});
    for _ in 0..3 {
        assert_eq!(app.post_json("/v1/track", &key, &body).await.status, 200);
    }
    let reply = app.post_json("/v1/track", &key, &body).await;
    reply.error(429, "TooManyRequests");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.header("ratelimit-limit"), Some("3"));
    assert_eq!(reply.header("ratelimit-remaining"), Some("0"));
    assert_eq!(reply.header("ratelimit-reset"), Some("1"));
    // Another key has its own budget.
    assert_eq!(app.post_json("/v1/track", &other, &body).await.status, 200);
    assert_eq!(app.events().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_keys_are_refused_before_any_budget() {
    let app = TestApp::start_with(|c| {
        c.rate_limit.per_key_per_second = 1;
        c.rate_limit.per_key_burst = 1;
    })
    .await;
    let body = json!({"userId": "u", "event": "e"});
    for _ in 0..5 {
        let reply = app
            .post_json("/v1/track", "0123456789abcdef0123456789abcdef", &body)
            .await;
        reply.error(401, "Unauthorized");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn per_address_budget_applies_when_set() {
    let app = TestApp::start_with(|c| c.rate_limit.per_ip_per_second = 1).await;
    let (_, _, key) = app.admin.sdk_key().await;
    let body = json!({"userId": "u", "event": "e"});
    // Burst is twice the per-second rate.
    assert_eq!(app.post_json("/v1/track", &key, &body).await.status, 200);
    assert_eq!(app.post_json("/v1/track", &key, &body).await.status, 200);
    let reply = app.post_json("/v1/track", &key, &body).await;
    reply.error(429, "TooManyRequests");
    assert!(reply.header("retry-after").is_some());
}
