//! Real `nats-server -js` processes per test, on free loopback ports with their own
//! store directories: one server, or a 3-server cluster with routes on loopback, so
//! that a test can SIGKILL any of them and start it again on the same data.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use tempfile::TempDir;

use crate::support::eventually;

pub const STREAM: &str = "INTAKE_EVENTS";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `nats-server` process (a cluster member or alone).
pub struct NatsServer {
    pub name: String,
    pub port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts (again) with its config file: same port, same store.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        // Debian installs it in /usr/sbin, which a non-login PATH may lack.
        let program = if Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let child = Command::new(program)
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed (the test script installs it)");
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown, nothing flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One server, or a cluster of three, each with its own store.
pub struct Nats {
    pub servers: Vec<NatsServer>,
    /// User and password the servers require, if any.
    auth: Option<(String, String)>,
    _dir: TempDir,
}

impl Nats {
    /// A single JetStream server.
    pub async fn single() -> Self {
        Self::start(1, None).await
    }

    /// A single JetStream server that requires a user and password.
    pub async fn single_with_password(user: &str, password: &str) -> Self {
        Self::start(1, Some((user.into(), password.into()))).await
    }

    /// Three JetStream servers routed together on loopback.
    pub async fn cluster() -> Self {
        Self::start(3, None).await
    }

    async fn start(size: usize, auth: Option<(String, String)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let routes: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let route_urls: Vec<String> = routes
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect();
        let mut servers = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let port = free_port();
            let store = dir.path().join(&name);
            let mut text = format!(
                "server_name: {name}\nlisten: \"127.0.0.1:{port}\"\njetstream {{ store_dir: \"{}\" }}\n",
                store.display()
            );
            if let Some((user, password)) = &auth {
                text.push_str(&format!(
                    "authorization {{ user: \"{user}\", password: \"{password}\" }}\n"
                ));
            }
            if size > 1 {
                text.push_str(&format!(
                    "cluster {{\n  name: intake-test\n  listen: \"127.0.0.1:{route}\"\n  routes: [{}]\n}}\n",
                    route_urls.join(", ")
                ));
            }
            let config = dir.path().join(format!("{name}.conf"));
            std::fs::write(&config, text).unwrap();
            let mut server = NatsServer {
                name,
                port,
                config,
                child: None,
            };
            server.start();
            servers.push(server);
        }
        let nats = Self {
            servers,
            auth,
            _dir: dir,
        };
        nats.wait_for_jetstream().await;
        nats
    }

    /// `sink.nats_url` for every server (with the credentials, if any).
    pub fn url(&self) -> String {
        let user_info = match &self.auth {
            Some((user, password)) => format!("{user}:{password}@"),
            None => String::new(),
        };
        self.servers
            .iter()
            .map(|s| format!("nats://{user_info}127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until JetStream answers API requests through a running server.
    pub async fn wait_for_jetstream(&self) {
        let url = self.running_url();
        let auth = self.auth.clone();
        eventually("JetStream answers", Duration::from_secs(30), move || {
            let (url, auth) = (url.clone(), auth.clone());
            async move {
                match connect(&url, auth).await {
                    Some(js) => jetstream_answers(&js).await,
                    None => false,
                }
            }
        })
        .await;
    }

    fn running_url(&self) -> String {
        self.servers
            .iter()
            .filter(|s| s.is_running())
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A JetStream context on the running servers.
    pub async fn jetstream(&self) -> jetstream::Context {
        connect(&self.running_url(), self.auth.clone())
            .await
            .expect("a NATS server answers")
    }

    /// The name of the server leading the stream's RAFT group.
    pub async fn stream_leader(&self) -> String {
        let js = self.jetstream().await;
        let mut stream = js.get_stream(STREAM).await.unwrap();
        let info = stream.info().await.unwrap();
        info.cluster
            .as_ref()
            .and_then(|c| c.leader.clone())
            .expect("the stream has a leader")
    }

    pub fn server(&mut self, name: &str) -> &mut NatsServer {
        self.servers.iter_mut().find(|s| s.name == name).unwrap()
    }

    /// Every message of the stream: (subject, Nats-Msg-Id, payload), in order.
    pub async fn messages(&self) -> Vec<Stored> {
        let js = self.jetstream().await;
        let mut stream = js.get_stream(STREAM).await.unwrap();
        let total = stream.info().await.unwrap().state.messages as usize;
        let reader = stream
            .create_consumer(consumer::pull::Config {
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut stored = Vec::with_capacity(total);
        while stored.len() < total {
            let mut batch = reader
                .fetch()
                .max_messages(1000)
                .expires(Duration::from_secs(2))
                .messages()
                .await
                .unwrap();
            while let Some(message) = batch.next().await {
                let message = message.unwrap();
                let id = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.as_str().to_string());
                stored.push(Stored {
                    subject: message.subject.to_string(),
                    message_id: id,
                    envelope: serde_json::from_slice(&message.payload).unwrap(),
                });
            }
        }
        stored
    }
}

/// One message read back from the stream.
#[derive(Debug)]
pub struct Stored {
    pub subject: String,
    pub message_id: Option<String>,
    pub envelope: serde_json::Value,
}

/// How often each Nats-Msg-Id occurs.
pub fn count_by_message_id(stored: &[Stored]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for message in stored {
        let id = message
            .message_id
            .clone()
            .expect("every message has a Nats-Msg-Id");
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// Whether the JetStream API answers (a lookup of a missing stream says "not found";
/// without a meta leader it times out or says "unavailable").
async fn jetstream_answers(js: &jetstream::Context) -> bool {
    use async_nats::jetstream::context::GetStreamErrorKind;
    match js.get_stream("NO_SUCH_STREAM").await {
        Ok(_) => true,
        Err(error) => matches!(error.kind(), GetStreamErrorKind::JetStream(e)
            if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND),
    }
}

async fn connect(url: &str, auth: Option<(String, String)>) -> Option<jetstream::Context> {
    let servers: Vec<async_nats::ServerAddr> = url.split(',').map(|u| u.parse().unwrap()).collect();
    let options = match auth {
        Some((user, password)) => {
            async_nats::ConnectOptions::with_user_and_password(user, password)
        }
        None => async_nats::ConnectOptions::new(),
    };
    let client = tokio::time::timeout(
        Duration::from_secs(5),
        options
            .connection_timeout(Duration::from_secs(1))
            .connect(servers),
    )
    .await
    .ok()?
    .ok()?;
    Some(
        jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .build(client),
    )
}
