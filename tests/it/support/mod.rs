//! Test support: the real intake started in-process on loopback port 0 with its own
//! data dir, or as the built binary; a small HTTP client; the typed admin client.

mod admin;

pub use admin::AdminClient;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use intake::app::Running;
use intake::config::Config;
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpStream;

/// The operator key every test app is bootstrapped with.
pub const API_KEY: &str = "api_TestOperatorKey0000000000000000000000000";

/// An answer, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the contract error body and returns its message.
    pub fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        body["error"]["message"].as_str().unwrap().to_string()
    }
}

/// Sends one request on a fresh connection.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    send_from(None, addr, method, path, headers, body).await
}

/// Sends one request from a chosen loopback source address (127.0.0.2, ::1, …).
pub async fn send_from(
    source: Option<std::net::IpAddr>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let stream = match source {
        None => TcpStream::connect(addr).await.expect("connect"),
        Some(ip) => {
            let socket = if ip.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .unwrap();
            socket.bind(SocketAddr::new(ip, 0)).expect("bind source");
            socket.connect(addr).await.expect("connect")
        }
    };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request = request.header("host", addr.to_string());
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into())).unwrap();
    let response = sender.send_request(request).await.expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

/// Polls `check` until it returns true or the deadline passes.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A config for tests: loopback port 0, its own data dir, the test operator key.
pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config::default();
    config.ingest.listen = "127.0.0.1:0".into();
    config.admin.listen = "127.0.0.1:0".into();
    config.admin.bootstrap_api_key = Some(API_KEY.into());
    config.store.data_dir = data_dir.to_path_buf();
    config
}

/// All envelopes in the log sink of a data dir, in file order.
pub fn logged_events(data_dir: &Path) -> Vec<Value> {
    let dir = data_dir.join("events");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("each line is JSON"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Basic auth header value for a write key (Segment style: key as user name).
pub fn basic(key: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

/// intake running inside the test process.
pub struct TestApp {
    pub dir: TempDir,
    pub ingest: SocketAddr,
    pub admin: AdminClient,
    /// Kept so the listeners live as long as the test.
    running: Option<Running>,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), adjust).await
    }

    /// Starts with an in-memory sink the test keeps a handle of (to make it refuse).
    pub async fn start_with_sink(sink: intake::sink::memory::MemorySink) -> Self {
        Self::launch(tempfile::tempdir().unwrap(), |_| {}, Some(sink)).await
    }

    /// Starts on an existing data dir (a restart of a stopped app).
    pub async fn start_in(dir: TempDir, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::launch(dir, adjust, None).await
    }

    async fn launch(
        dir: TempDir,
        adjust: impl FnOnce(&mut Config),
        sink: Option<intake::sink::memory::MemorySink>,
    ) -> Self {
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let settings = config.validate().expect("test config is valid");
        let running = match sink {
            Some(sink) => intake::app::start_with_sink(settings, sink).await,
            None => intake::app::start(settings).await,
        }
        .expect("intake starts");
        Self {
            ingest: running.ingest_addr,
            admin: AdminClient::new(running.admin_addr),
            running: Some(running),
            dir,
        }
    }

    /// The node's key index, as the ingest path sees it.
    pub fn index(&self) -> &intake::index::KeyIndex {
        self.running.as_ref().expect("running").index()
    }

    /// The typed admin client, acting with the operator key.
    pub fn admin(&self) -> AdminClient {
        self.admin
    }

    /// Stops the app (within `grace`); its data dir, to start again on.
    pub async fn stop(mut self, grace: Duration) -> (TempDir, intake::app::Stopped) {
        let running = self.running.take().expect("running");
        let stopped = running.stop_within(grace).await;
        (self.dir, stopped)
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        send(self.ingest, "POST", path, headers, body).await
    }

    /// POSTs JSON with Basic auth for `key`.
    pub async fn post_json(&self, path: &str, key: &str, body: &Value) -> Reply {
        let auth = basic(key);
        self.post(
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body.to_string(),
        )
        .await
    }

    pub fn events(&self) -> Vec<Value> {
        logged_events(self.dir.path())
    }
}

/// intake as a separate process (for signals and kill -9).
pub struct Binary {
    pub child: Child,
    pub ingest: SocketAddr,
    pub admin: AdminClient,
    /// Every line the process wrote to stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Binary {
    /// Starts `intake serve` on `data_dir` and waits for its listening line.
    pub fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_intake"));
        command.arg("serve");
        Self::launch(command, data_dir, extra_env)
    }

    /// Starts `intake serve` with files limited to `max_file_bytes` (`prlimit`), with
    /// SIGXFSZ ignored, so that writing past it fails as on a full disk.
    pub fn start_limited(data_dir: &Path, max_file_bytes: u64) -> Self {
        let mut command = Command::new("sh");
        command.arg("-c").arg(format!(
            "trap '' XFSZ; exec prlimit --fsize={max_file_bytes} -- \"$0\" serve",
        ));
        command.arg(env!("CARGO_BIN_EXE_intake"));
        Self::launch(command, data_dir, &[])
    }

    fn launch(mut command: Command, data_dir: &Path, extra_env: &[(&str, &str)]) -> Self {
        command
            .env("INTAKE_INGEST__LISTEN", "127.0.0.1:0")
            .env("INTAKE_ADMIN__LISTEN", "127.0.0.1:0")
            .env("INTAKE_ADMIN__BOOTSTRAP_API_KEY", API_KEY)
            .env("INTAKE_STORE__DATA_DIR", data_dir)
            .env("INTAKE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .current_dir(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn intake");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut sent = false;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line.clone());
                if !sent {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if v["fields"]["message"] == "intake is listening" {
                            let _ = tx.send(v["fields"].clone());
                            sent = true;
                        }
                    }
                }
            }
        });
        let fields = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("intake printed its listening line");
        Self {
            child,
            ingest: fields["ingest"].as_str().unwrap().parse().unwrap(),
            admin: AdminClient::new(fields["admin"].as_str().unwrap().parse().unwrap()),
            log,
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait(mut self, deadline: Duration) -> Option<i32> {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < until, "intake did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
