//! Real clients, unmodified, from the package registries (installed by the README's
//! test command into `target/clients` and `tests/clients/node_modules`): Segment's
//! Python and Node SDKs, headless Chromium, and webhook senders' deliveries.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{eventually, send, TestApp};

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    let python = repo().join("target/clients/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run ./scripts/test.sh, which installs the client SDKs",
        python.display()
    );
    python
}

pub(crate) fn node_script(name: &str) -> Command {
    let dir = repo().join("tests/clients");
    assert!(
        dir.join("node_modules").exists(),
        "tests/clients/node_modules is missing: run ./scripts/test.sh, which installs the client SDKs"
    );
    let mut command = Command::new("node");
    command.arg(dir.join(name)).current_dir(dir);
    command
}

/// Runs a client script off the async runtime; its last stdout line, parsed.
async fn run(mut command: Command) -> (bool, Value, String) {
    let output = tokio::task::spawn_blocking(move || command.output().expect("client runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let report = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    (
        output.status.success(),
        report,
        format!("stdout: {stdout}\nstderr: {stderr}"),
    )
}

fn ids(report: &Value) -> Vec<String> {
    report["messageIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Waits until every id is in the log sink; returns the stored events by id.
pub(crate) async fn stored(app: &TestApp, wanted: &[String]) -> Vec<Value> {
    let dir = app.dir.path().to_path_buf();
    let wanted = wanted.to_vec();
    let check = wanted.clone();
    eventually(
        "the client's events reach the sink",
        Duration::from_secs(20),
        move || {
            let (dir, check) = (dir.clone(), check.clone());
            async move {
                let events = crate::support::logged_events(&dir);
                check.iter().all(|id| {
                    events
                        .iter()
                        .any(|e| e["event"]["messageId"] == id.as_str())
                })
            }
        },
    )
    .await;
    let events = app.events();
    wanted
        .iter()
        .map(|id| {
            events
                .iter()
                .find(|e| e["event"]["messageId"] == id.as_str())
                .unwrap()["event"]
                .clone()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn segments_python_sdk_works_unchanged() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let host = format!("http://{}", app.ingest);
    for mode in ["gzip", "plain"] {
        let mut command = Command::new(python());
        command
            .arg(repo().join("tests/clients/segment_python.py"))
            .args([&host, &key, mode, "ok"]);
        let (ok, report, output) = run(command).await;
        assert!(ok, "{output}");
        let events = stored(&app, &ids(&report)).await;
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            ["track", "identify", "page", "screen", "group", "alias"],
            "{mode}"
        );
        assert_eq!(events[0]["event"], "Order Completed");
        assert_eq!(events[0]["context"]["library"]["name"], "analytics-python");
        assert_eq!(events[0]["context"]["ip"], "127.0.0.1");
        assert_eq!(events[5]["previousId"], "anon-7");
    }
    let mut command = Command::new(python());
    command
        .arg(repo().join("tests/clients/segment_python.py"))
        .args([
            &host,
            "UnknownKeyUnknownKeyUnknownKey00",
            "plain",
            "unknown-key",
        ]);
    let (ok, report, output) = run(command).await;
    assert!(ok, "the SDK did not report the 401: {output}");
    assert!(report["errors"][0][0] == 401, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn segments_node_sdk_works_unchanged() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let mut command = node_script("segment_node.mjs");
    command.args([format!("http://{}", app.ingest), key]);
    let (ok, report, output) = run(command).await;
    assert!(ok, "{output}");
    let events = stored(&app, &ids(&report)).await;
    assert_eq!(events.len(), 8);
    assert_eq!(events[0]["type"], "track");
    assert_eq!(
        events[0]["context"]["library"]["name"],
        "@segment/analytics-node"
    );
    assert_eq!(events[7]["type"], "alias");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_browser_delivers_fetch_and_beacon_events_across_origins() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let mut command = node_script("browser.mjs");
    command.args([format!("http://{}", app.ingest), key]);
    let (ok, report, output) = run(command).await;
    assert!(ok, "{output}");
    assert!(
        report["origin"]
            .as_str()
            .unwrap()
            .starts_with("http://localhost:"),
        "{report}"
    );
    assert_eq!(report["fetchStatuses"], json!([200, true, 200]), "{report}");
    assert_eq!(report["beaconQueued"], true);
    let events = stored(&app, &ids(&report)).await;
    assert_eq!(events[0]["event"], "Fetch JSON");
    assert_eq!(events[1]["event"], "Fetch text");
    assert_eq!(events[2]["type"], "page");
    assert!(
        events[0]["context"]["userAgent"].is_null(),
        "the page sent no context"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn github_stripe_and_form_webhook_deliveries_are_stored() {
    let app = TestApp::start().await;
    let ws = app.admin.workspace().await;
    let (conn, key) = app.admin.connection(ws, "webhook").await;
    let key = key.unwrap();
    let path = format!("/v1/webhook/{key}");
    let github = json!({"action": "opened", "number": 7, "pull_request": {"title": "Add intake"}, "repository": {"full_name": "acme/shop"}});
    let reply = send(
        app.ingest,
        "POST",
        &path,
        &[
            ("content-type", "application/json"),
            ("user-agent", "GitHub-Hookshot/4f2a9c1"),
            ("x-github-event", "pull_request"),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            (
                "x-hub-signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            ),
        ],
        github.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let stripe = json!({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1", "amount": 2000}}});
    let reply = send(
        app.ingest,
        "POST",
        &format!("/v1/webhook?writeKey={key}"),
        &[
            ("content-type", "application/json; charset=utf-8"),
            (
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            ),
            (
                "stripe-signature",
                "t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
            ),
        ],
        stripe.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = send(
        app.ingest,
        "POST",
        &path,
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("user-agent", "TwilioProxy/1.1"),
        ],
        "MessageSid=SM1&From=%2B15551234567&Body=Hello+intake",
    )
    .await;
    assert_eq!(reply.status, 200);
    let events = app.events();
    assert_eq!(events.len(), 3);
    assert!(events
        .iter()
        .all(|e| e["kind"] == "webhook" && e["connectionId"] == conn));
    assert_eq!(events[0]["event"]["payload"], github);
    assert_eq!(
        events[0]["event"]["headers"]["user-agent"],
        "GitHub-Hookshot/4f2a9c1"
    );
    assert_eq!(events[1]["event"]["payload"], stripe);
    assert_eq!(
        events[1]["event"]["headers"]["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(
        events[2]["event"]["payload"],
        json!({"MessageSid": "SM1", "From": "+15551234567", "Body": "Hello intake"})
    );
}
