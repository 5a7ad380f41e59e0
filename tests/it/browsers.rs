//! Real browser SDKs, unmodified from npm (pinned in `tests/clients/package.json`), in
//! Debian's headless Chromium, on a page of another loopback origin, with their
//! settings fetched from intake: Segment's analytics.js (`analytics-next`) and
//! RudderStack's JS SDK, every event type through every transport, and RudderStack's
//! pixel as `<img>` tags. The scripts read the browser's own network log over CDP (no
//! request interception, which would answer preflights itself); Chromium resolves no
//! host but the two loopback names, and every request is checked to have stayed there.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::clients::{node_script, stored};
use crate::support::TestApp;

/// A browser script, still running (its browser open) until `finish`.
struct BrowserRun {
    child: Option<Child>,
    report: Value,
}

impl BrowserRun {
    /// Starts an app with an SDK key and runs `tests/clients/<script>` against it;
    /// returns once the script printed its report. The browser stays open, so that
    /// requests pages sent as they unloaded (keepalive fetches, beacons) are not cut
    /// short while the sink is checked.
    async fn start(script: &str) -> (TestApp, String, Self) {
        let app = TestApp::start().await;
        let (_, _, key) = app.admin.sdk_key().await;
        let mut command = node_script(script);
        command
            .args([intake_url(&app), key.clone()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = command.spawn().expect("node runs");
        let stdout = child.stdout.take().unwrap();
        let line = tokio::time::timeout(
            Duration::from_secs(300),
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await
        .expect("the browser script reports within 5 minutes")
        .unwrap()
        .unwrap();
        let report = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{script} printed no report ({e}): {line:?}"));
        let run = Self {
            child: Some(child),
            report,
        };
        (app, key, run)
    }

    /// One scenario's report; fails the test on a scenario that threw.
    fn scenario(&self, name: &str) -> &Value {
        let scenario = &self.report[name];
        assert!(
            scenario["error"].is_null(),
            "{name} failed in the browser: {}",
            scenario["error"].as_str().unwrap_or_default()
        );
        scenario
    }

    /// A scenario of an SDK script: the SDK made events of `types`, in order, and its
    /// requests hold `intake_requests`'s rules; its requests to intake.
    fn sdk_scenario<'a>(
        &'a self,
        name: &str,
        intake: &str,
        allowed_failure: Option<&str>,
        types: &[&str],
    ) -> (&'a Value, Vec<Request<'a>>) {
        let scenario = self.scenario(name);
        let kinds: Vec<String> = sdk_events(scenario).into_iter().map(|(_, t)| t).collect();
        assert_eq!(kinds, types, "{name}");
        (scenario, intake_requests(scenario, intake, allowed_failure))
    }

    /// Closes the browser (by closing the script's stdin) and waits for it to exit.
    async fn finish(mut self) {
        let mut child = self.child.take().unwrap();
        drop(child.stdin.take());
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "the browser script failed: {status}");
    }
}

impl Drop for BrowserRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn intake_url(app: &TestApp) -> String {
    format!("http://{}", app.ingest)
}

/// One request of the browser's network log.
struct Request<'a>(&'a Value);

impl Request<'_> {
    fn url(&self) -> &str {
        self.0["url"].as_str().unwrap()
    }
    fn method(&self) -> &str {
        self.0["method"].as_str().unwrap()
    }
    fn status(&self) -> Option<u64> {
        self.0["status"].as_u64()
    }
    fn is_preflight(&self) -> bool {
        self.method() == "OPTIONS"
    }
    fn failed(&self) -> bool {
        !self.0["failed"].is_null()
    }
    fn requested_headers(&self) -> &str {
        self.0["requestedHeaders"].as_str().unwrap_or_default()
    }
    fn message_ids(&self) -> Vec<String> {
        self.0["messageIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }
}

/// Checks what every scenario must hold and returns its requests to intake: nothing
/// left the two loopback origins, no CORS error, and every request to intake
/// answered 200 (204 for preflights), or failed only as `allowed_failure` says (the
/// browser offline, or a page unloading under a keepalive request).
fn intake_requests<'a>(
    scenario: &'a Value,
    intake: &str,
    allowed_failure: Option<&str>,
) -> Vec<Request<'a>> {
    let origin = scenario["origin"].as_str().unwrap();
    let requests: Vec<Request<'a>> = scenario["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(Request)
        .collect();
    for r in &requests {
        assert!(
            r.url().starts_with(&format!("{origin}/"))
                || r.url().starts_with(&format!("{intake}/")),
            "a request left the machine's two test origins: {}",
            r.url()
        );
    }
    let to_intake: Vec<Request<'a>> = requests
        .into_iter()
        .filter(|r| r.url().starts_with(&format!("{intake}/")))
        .collect();
    for r in &to_intake {
        assert!(
            r.0["corsError"].is_null(),
            "CORS refused {}: {}",
            r.url(),
            r.0
        );
        match r.0["failed"].as_str() {
            Some(failure) => assert_eq!(Some(failure), allowed_failure, "{}", r.0),
            None => {
                let expected = if r.is_preflight() { 204 } else { 200 };
                assert_eq!(r.status(), Some(expected), "{} {}", r.method(), r.url());
            }
        }
    }
    to_intake
}

/// The requests to one path (query string ignored), preflights apart.
fn to_path<'a, 'r>(
    requests: &'r [Request<'a>],
    intake: &str,
    path: &str,
) -> (Vec<&'r Request<'a>>, Vec<&'r Request<'a>>) {
    let url = format!("{intake}{path}");
    requests
        .iter()
        .filter(|r| r.url().split('?').next() == Some(url.as_str()))
        .partition(|r| r.is_preflight())
}

/// The messageIds the SDK reported, and their types.
fn sdk_events(scenario: &Value) -> Vec<(String, String)> {
    scenario["sdk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["messageId"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every event the SDK made, and every event a request carried, is in the sink with
/// its messageId and type, sent by `library`; returns the stored events.
async fn assert_delivered(
    app: &TestApp,
    scenario: &Value,
    requests: &[Request<'_>],
    library: &str,
) -> Vec<Value> {
    let sdk = sdk_events(scenario);
    let sent: BTreeSet<String> = requests.iter().flat_map(Request::message_ids).collect();
    for (id, _) in &sdk {
        assert!(sent.contains(id), "{id} was never sent: {sent:?}");
    }
    let sent: Vec<String> = sent.into_iter().collect();
    let events = stored(app, &sent).await;
    for (id, kind) in &sdk {
        let event = events
            .iter()
            .find(|e| e["messageId"] == id.as_str())
            .unwrap();
        assert_eq!(event["type"], kind.as_str(), "{id}");
    }
    for event in &events {
        assert_eq!(event["context"]["ip"], "127.0.0.1");
        assert_eq!(event["context"]["library"]["name"], library, "{event}");
    }
    events
}

const SEGMENT_PATHS: [&str; 6] = ["/v1/t", "/v1/i", "/v1/p", "/v1/s", "/v1/g", "/v1/a"];

#[tokio::test(flavor = "multi_thread")]
async fn segments_analytics_js_delivers_every_event_through_every_transport() {
    let (app, key, run) = BrowserRun::start("segment_browser.mjs").await;
    let intake = intake_url(&app);
    let types = ["track", "identify", "page", "screen", "group", "alias"];
    for (name, failure) in [
        ("fetch", None),
        ("batching", None),
        ("pagehide", Some("net::ERR_ABORTED")),
        ("retry", Some("net::ERR_INTERNET_DISCONNECTED")),
    ] {
        let (scenario, requests) = run.sdk_scenario(name, &intake, failure, &types);
        let settings = format!("/v1/projects/{key}/settings");
        let (_, loaded) = to_path(&requests, &intake, &settings);
        assert_eq!(loaded.len(), 1, "{name}: settings from intake");
        assert_delivered(&app, scenario, &requests, "analytics.js").await;
        let (preflights, posts) = to_path(&requests, &intake, "/v1/b");
        match name {
            "fetch" | "retry" => {
                for path in SEGMENT_PATHS {
                    let (preflights, posts) = to_path(&requests, &intake, path);
                    let answered: Vec<_> =
                        posts.iter().filter(|p| p.status() == Some(200)).collect();
                    assert_eq!(answered.len(), 1, "{name} {path}");
                    assert_eq!(answered[0].message_ids().len(), 1);
                    assert!(
                        !preflights.is_empty(),
                        "{name} {path}: Authorization is preflighted"
                    );
                    // As for RudderStack's SDK below: an attempt that failed offline
                    // is retried with `X-Retry-Count`, and that header is allowed.
                    let retried = preflights
                        .iter()
                        .any(|p| p.requested_headers().contains("x-retry-count"));
                    let failed = preflights.iter().chain(&posts).any(|r| r.failed());
                    if failed {
                        assert!(retried, "{name} {path}: {}", preflights[0].0);
                    }
                    if name == "fetch" {
                        assert!(!retried && !failed, "{name} {path}: {}", preflights[0].0);
                    }
                }
            }
            _ => {
                // All six in batches (preflighted); on pagehide a keepalive fetch
                // whose answer the page is no longer there to see.
                let batched: BTreeSet<String> =
                    posts.iter().flat_map(|p| p.message_ids()).collect();
                let made: BTreeSet<String> =
                    sdk_events(scenario).into_iter().map(|(id, _)| id).collect();
                let logged: Vec<&Value> = posts.iter().map(|p| p.0).collect();
                assert_eq!(batched, made, "{name}: {logged:?}");
                // A page being left may not log the preflight of its keepalive fetch.
                if name == "batching" {
                    assert!(!preflights.is_empty(), "{name}: {logged:?}");
                }
            }
        }
    }
    run.finish().await;
}

const RUDDERSTACK_PATHS: [&str; 5] = [
    "/v1/page",
    "/v1/track",
    "/v1/identify",
    "/v1/group",
    "/v1/alias",
];

#[tokio::test(flavor = "multi_thread")]
async fn rudderstacks_js_sdk_delivers_every_event_through_every_transport() {
    let (app, key, run) = BrowserRun::start("rudderstack_browser.mjs").await;
    let intake = intake_url(&app);
    let types = ["page", "track", "identify", "group", "alias"];
    for (name, failure) in [
        ("xhr", None),
        ("batching", None),
        ("beacon", None),
        ("unload", Some("net::ERR_ABORTED")),
        ("retry", Some("net::ERR_INTERNET_DISCONNECTED")),
    ] {
        let (scenario, requests) = run.sdk_scenario(name, &intake, failure, &types);
        let (config_preflights, config) = to_path(&requests, &intake, "/sourceConfig/");
        assert_eq!(
            config.len(),
            1,
            "{name}: the source config comes from intake"
        );
        assert_eq!(
            config_preflights.len(),
            1,
            "{name}: with Basic auth, preflighted"
        );
        let library = "RudderLabs JavaScript SDK";
        let events = assert_delivered(&app, scenario, &requests, library).await;
        match name {
            "xhr" | "retry" => {
                for path in RUDDERSTACK_PATHS {
                    let (preflights, posts) = to_path(&requests, &intake, path);
                    assert!(
                        posts.iter().any(|p| p.status() == Some(200)),
                        "{name} {path}"
                    );
                    let requested: Vec<&str> =
                        preflights.iter().map(|p| p.requested_headers()).collect();
                    assert!(
                        requested
                            .iter()
                            .any(|h| h.contains("anonymousid") && h.contains("sentat")),
                        "{name} {path}: {requested:?}"
                    );
                    // Offline, the SDK may hold an event until the browser is back
                    // online (its first attempt then carries no retry headers); an
                    // attempt that did fail is retried with them, and they are allowed.
                    let failed = preflights.iter().chain(&posts).any(|r| r.failed());
                    let retried = requested.iter().any(|h| h.contains("rsa-retry-attempt"));
                    if failed {
                        assert!(retried, "{name} {path}: {requested:?}");
                    }
                    if name == "xhr" {
                        assert!(!retried && !failed, "{name} {path}: {requested:?}");
                    }
                }
            }
            "batching" => {
                let (_, posts) = to_path(&requests, &intake, "/v1/batch");
                assert_eq!(posts.len(), 1);
                assert_eq!(posts[0].message_ids().len(), 5);
            }
            _ => {
                // sendBeacon: text/plain, key in the query, no preflight.
                let (preflights, posts) = to_path(&requests, &intake, "/beacon/v1/batch");
                assert!(preflights.is_empty(), "{name}");
                assert_eq!(posts.len(), 1, "{name}");
                assert!(posts[0].url().ends_with(&format!("?writeKey={key}")));
                let expected = if name == "unload" { 6 } else { 5 };
                assert_eq!(posts[0].message_ids().len(), expected, "{name}");
            }
        }
        if name == "unload" {
            assert!(
                events.iter().any(|e| e["event"] == "Page Unloaded"),
                "the auto-tracked Page Unloaded event went out with the flush"
            );
        }
    }
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rudderstacks_pixel_works_as_img_tags() {
    let (app, _, run) = BrowserRun::start("pixel_browser.mjs").await;
    let intake = intake_url(&app);
    let scenario = run.scenario("pixels");
    for image in scenario["images"].as_array().unwrap() {
        assert_eq!(
            (&image["complete"], &image["width"], &image["height"]),
            (&Value::Bool(true), &Value::from(1), &Value::from(1)),
            "every pixel, the refused one too, is a 1×1 image: {image}"
        );
    }
    let requests: Vec<Request<'_>> = scenario["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(Request)
        .filter(|r| r.url().starts_with(&format!("{intake}/")))
        .collect();
    let statuses: Vec<Option<u64>> = requests.iter().map(Request::status).collect();
    assert_eq!(statuses, [Some(200), Some(200), Some(401)]);
    let tag = scenario["tag"].as_str().unwrap();
    let events = stored(&app, &[format!("{tag}-track"), format!("{tag}-page")]).await;
    assert_eq!(events[0]["type"], "track");
    assert_eq!(events[0]["event"], "Email Opened");
    assert_eq!(events[0]["anonymousId"], format!("{tag}-anon"));
    assert_eq!(events[0]["properties"]["campaign"], "spring");
    assert_eq!(events[0]["context"]["campaign"]["medium"], "email");
    assert_eq!(events[0]["channel"], "web");
    assert_eq!(events[1]["type"], "page");
    assert_eq!(events[1]["name"], "Newsletter");
    assert_eq!(
        app.events().len(),
        2,
        "the unknown key's pixel stored nothing"
    );
    run.finish().await;
}
