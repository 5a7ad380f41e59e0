//! The settings documents browser SDKs load before sending (issue 11): Segment's
//! `/v1/projects/{key}/settings` and RudderStack's `/sourceConfig/`, and the host they
//! point the SDKs at.

use serde_json::json;

use crate::support::{basic, send, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn segment_settings_point_the_sdk_at_this_host() {
    let app = TestApp::start().await;
    let (ws, _, key) = app.admin.sdk_key().await;
    let path = format!("/v1/projects/{key}/settings");
    let reply = send(app.ingest, "GET", &path, &[], "").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let doc = reply.json();
    let segment = &doc["integrations"]["Segment.io"];
    assert_eq!(segment["apiKey"], key.as_str());
    assert_eq!(segment["apiHost"], format!("{}/v1", app.ingest));
    assert_eq!(segment["protocol"], "http");
    assert_eq!(doc["integrations"].as_object().unwrap().len(), 1);
    assert_eq!(doc["metrics"]["sampleRate"], 0);
    // Bounded: the document is a fixed shape around the key and the host.
    assert!(reply.body.len() < 400, "{}", reply.body.len());

    let reply = send(
        app.ingest,
        "GET",
        &path,
        &[("host", "intake.shop.example:8443")],
        "",
    )
    .await;
    assert_eq!(
        reply.json()["integrations"]["Segment.io"]["apiHost"],
        "intake.shop.example:8443/v1"
    );
    // X-Forwarded-Proto from a peer that is not a trusted proxy is ignored.
    let reply = send(
        app.ingest,
        "GET",
        &path,
        &[("x-forwarded-proto", "https")],
        "",
    )
    .await;
    assert_eq!(
        reply.json()["integrations"]["Segment.io"]["protocol"],
        "http"
    );
    let long_host = format!("{}.example", "a".repeat(300));
    for host in ["evil host", "user@intake.example", long_host.as_str()] {
        let reply = send(app.ingest, "GET", &path, &[("host", host)], "").await;
        reply.error(400, "BadRequest");
    }
    let unknown = "/v1/projects/UnknownKeyUnknownKeyUnknownKey00/settings";
    send(app.ingest, "GET", unknown, &[], "")
        .await
        .error(404, "NotFound");
    let (_, webhook_key) = app.admin.connection(ws, "webhook").await;
    let webhook = format!("/v1/projects/{}/settings", webhook_key.unwrap());
    send(app.ingest, "GET", &webhook, &[], "")
        .await
        .error(404, "NotFound");
    let reply = send(app.ingest, "POST", &path, &[], "").await;
    reply.error(405, "MethodNotAllowed");
    assert_eq!(reply.header("allow"), Some("GET, OPTIONS"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_public_url_and_trusted_proxies_set_the_settings_host() {
    let app = TestApp::start_with(|c| {
        c.ingest.public_url = Some("https://intake.shop.example/collect/".into())
    })
    .await;
    let (_, _, key) = app.admin.sdk_key().await;
    let path = format!("/v1/projects/{key}/settings");
    let doc = send(app.ingest, "GET", &path, &[], "").await.json();
    let segment = &doc["integrations"]["Segment.io"];
    assert_eq!(segment["apiHost"], "intake.shop.example/collect/v1");
    assert_eq!(segment["protocol"], "https");

    let proxied =
        TestApp::start_with(|c| c.ingest.trusted_proxies = vec!["127.0.0.1/32".into()]).await;
    let (_, _, key) = proxied.admin.sdk_key().await;
    let path = format!("/v1/projects/{key}/settings");
    let headers = [("host", "t.shop.example"), ("x-forwarded-proto", "https")];
    let doc = send(proxied.ingest, "GET", &path, &headers, "")
        .await
        .json();
    assert_eq!(doc["integrations"]["Segment.io"]["protocol"], "https");
    assert_eq!(
        doc["integrations"]["Segment.io"]["apiHost"],
        "t.shop.example/v1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rudderstacks_source_config_has_no_destinations() {
    let app = TestApp::start().await;
    let (ws, conn, key) = app.admin.sdk_key().await;
    let query = format!(
        "/sourceConfig/?p=npm&v=3.34.1&build=modern&writeKey={key}&lockIntegrationsVersion=true&lockPluginsVersion=true"
    );
    let auth = basic(&key);
    for headers in [vec![], vec![("authorization", auth.as_str())]] {
        let reply = send(app.ingest, "GET", &query, &headers, "").await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let source = &reply.json()["source"];
        assert_eq!(source["id"], conn.to_string());
        assert_eq!(source["workspaceId"], ws.to_string());
        assert_eq!(source["writeKey"], key.as_str());
        assert_eq!(source["enabled"], true);
        assert_eq!(source["destinations"], json!([]));
        assert_eq!(
            source["config"]["statsCollection"]["errors"]["enabled"],
            false
        );
    }
    send(
        app.ingest,
        "GET",
        "/sourceConfig?writeKey=UnknownKeyUnknownKeyUnknownKey00",
        &[],
        "",
    )
    .await
    .error(404, "NotFound");
    send(app.ingest, "GET", "/sourceConfig/", &[], "")
        .await
        .error(401, "Unauthorized");
}
