//! The NATS JetStream backend: each envelope is published to
//! `intake.events.<workspaceId>.<connectionId>` with `Nats-Msg-Id` = its messageId, so
//! that JetStream's duplicate window drops a retried or replayed event. A group's
//! publishes all go out before any acknowledgement is awaited (pipelined); the group
//! is acknowledged once every PubAck came back. The spool, its replay and the probe
//! live in `spooled`.
//!
//! At start-up the stream is checked (its subjects must cover intake's) or created
//! (file storage, `nats_replicas`, `nats_max_age_secs`); if NATS is not reachable then,
//! intake starts spooling and the same check runs as the probe before the first
//! delivery.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::context::{GetStreamErrorKind, PublishAckFuture};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::jetstream::{self, ErrorCode};
use async_nats::{ConnectOptions, Subject};
use bytes::Bytes;

use super::envelope::EnvelopeHead;
use super::nats_url::{nats_servers, server_addresses, Credentials};
use super::spooled::{Backend, BackendError};
use super::{Batch, Written};
use crate::config::SinkSettings;
use crate::model::Id;

/// Subjects intake publishes to; a stream must cover every one of them.
pub const SUBJECTS: &str = "intake.events.>";
/// Longest wait for a PubAck or a JetStream API answer.
const ACK_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait at start-up for NATS to say whether the stream is usable.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// Publishes awaiting their PubAck at most (a group is at most a few MB of events).
const MAX_ACKS_IN_FLIGHT: usize = 100_000;
/// Commands queued for the connection before a publish waits.
const CLIENT_CAPACITY: usize = 16_384;
/// Longest pause between two reconnect attempts.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

/// The subject of a request's envelopes.
pub fn subject(workspace_id: Id, connection_id: Id) -> Subject {
    Subject::from(format!("intake.events.{workspace_id}.{connection_id}"))
}

/// A JetStream context on one client connection, and the stream it publishes to.
#[derive(Clone)]
pub struct NatsBackend {
    jetstream: jetstream::Context,
    stream: StreamConfig,
}

/// Why the stream cannot be used.
#[derive(Debug, thiserror::Error)]
enum StreamProblem {
    /// NATS did not answer (down, no JetStream, no leader yet).
    #[error("NATS did not answer: {0}")]
    Unreachable(#[source] BackendError),
    /// The stream exists but does not take intake's subjects.
    #[error("stream `{stream}` exists with subjects {subjects:?}, which do not cover `{SUBJECTS}`; add `{SUBJECTS}` to it or set sink.nats_stream to another stream")]
    Mismatch {
        /// The stream's name.
        stream: String,
        /// Its subjects.
        subjects: Vec<String>,
    },
}

impl NatsBackend {
    /// Connects to `sink.nats_url` and makes sure the stream is usable. Returns the
    /// backend and whether NATS answered; a stream that exists with other subjects is
    /// a start-up error.
    pub async fn connect(sink: &SinkSettings) -> anyhow::Result<(Self, bool)> {
        let urls = nats_servers(sink);
        let shown: Vec<String> = urls.iter().map(|u| crate::secrets::redact_url(u)).collect();
        let (servers, credentials) = server_addresses(&urls)?;
        let mut options = ConnectOptions::new();
        match credentials {
            Some(Credentials::UserPassword(user, password)) => {
                options = options.user_and_password(user, password);
            }
            Some(Credentials::Token(token)) => options = options.token(token),
            None => {}
        }
        let client = options
            .name("intake")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .client_capacity(CLIENT_CAPACITY)
            .reconnect_delay_callback(|attempt| {
                (Duration::from_millis(50) * attempt.min(20) as u32).min(RECONNECT_MAX_DELAY)
            })
            .event_callback(|event| async move {
                tracing::info!(%event, "NATS connection event");
            })
            .connect(servers)
            .await
            .with_context(|| format!("sink.nats_url: connecting to {}", shown.join(",")))?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(ACK_TIMEOUT)
            .max_ack_inflight(MAX_ACKS_IN_FLIGHT)
            .backpressure_on_inflight(true)
            .build(client);
        let backend = Self {
            jetstream,
            stream: stream_config(sink),
        };
        let reachable = match tokio::time::timeout(START_TIMEOUT, backend.ensure_stream()).await {
            Ok(Ok(())) => true,
            Ok(Err(problem @ StreamProblem::Mismatch { .. })) => {
                return Err(anyhow::anyhow!("sink.nats_stream: {problem}"));
            }
            Ok(Err(error)) => {
                tracing::warn!(servers = %shown.join(","), %error, "NATS is not reachable; spooling events until it is");
                false
            }
            Err(_) => {
                tracing::warn!(servers = %shown.join(","), "NATS did not answer in time; spooling events until it does");
                false
            }
        };
        Ok((backend, reachable))
    }

    /// Checks the stream's subjects, or creates the stream when it is missing.
    async fn ensure_stream(&self) -> Result<(), StreamProblem> {
        let name = &self.stream.name;
        match self.jetstream.get_stream(name).await {
            Ok(stream) => {
                let subjects = &stream.cached_info().config.subjects;
                if subjects.iter().any(|s| covers(s, "intake.events.*.*")) {
                    Ok(())
                } else {
                    Err(StreamProblem::Mismatch {
                        stream: name.clone(),
                        subjects: subjects.clone(),
                    })
                }
            }
            Err(error) => match error.kind() {
                GetStreamErrorKind::JetStream(e)
                    if e.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    self.jetstream
                        .create_stream(self.stream.clone())
                        .await
                        .map_err(|e| StreamProblem::Unreachable(e.into()))?;
                    tracing::info!(stream = %name, replicas = self.stream.num_replicas,
                        "created the JetStream stream");
                    Ok(())
                }
                _ => Err(StreamProblem::Unreachable(error.into())),
            },
        }
    }

    /// Sends one publish; the returned future resolves with its PubAck.
    async fn publish(
        &self,
        subject: Subject,
        line: &[u8],
        message_id: Option<&str>,
    ) -> Result<PublishAckFuture, BackendError> {
        let mut message = PublishMessage::build().payload(Bytes::copy_from_slice(line));
        if let Some(id) = message_id.filter(|id| !id.is_empty()) {
            message = message.message_id(id);
        }
        Ok(self.jetstream.send_publish(subject, message).await?)
    }
}

impl Backend for NatsBackend {
    const NAME: &'static str = "NATS";

    async fn send(&mut self, batches: &[&Batch]) -> Result<Vec<Written>, BackendError> {
        let mut pending = Vec::with_capacity(batches.len());
        for batch in batches {
            let subject = subject(batch.workspace_id, batch.connection_id);
            let mut acks = Vec::with_capacity(batch.len());
            for entry in batch.entries() {
                acks.push(
                    self.publish(subject.clone(), entry.line, Some(entry.message_id))
                        .await?,
                );
            }
            pending.push(acks);
        }
        // Every publish is out; their acks arrive together.
        let mut receipts = Vec::with_capacity(pending.len());
        for acks in pending {
            let mut duplicates = 0;
            for ack in acks {
                duplicates += usize::from(ack.await?.duplicate);
            }
            receipts.push(Written { duplicates });
        }
        Ok(receipts)
    }

    async fn replay(&mut self, lines: &[&[u8]]) -> Result<(), BackendError> {
        let mut acks = Vec::with_capacity(lines.len());
        for line in lines {
            let Ok(head) = serde_json::from_slice::<EnvelopeHead>(line) else {
                tracing::warn!(
                    "skipping a spooled line that is not an envelope (a torn write never acknowledged)"
                );
                continue;
            };
            let id = head.message_id();
            let subject = subject(head.workspace_id, head.connection_id);
            acks.push(self.publish(subject, line, id).await?);
        }
        for ack in acks {
            ack.await?;
        }
        Ok(())
    }

    async fn probe(&mut self) -> Result<(), BackendError> {
        self.ensure_stream().await.map_err(Into::into)
    }
}

/// The stream intake creates when it is missing.
fn stream_config(sink: &SinkSettings) -> StreamConfig {
    StreamConfig {
        name: sink.nats_stream.clone(),
        subjects: vec![SUBJECTS.to_string()],
        storage: StorageType::File,
        num_replicas: sink.nats_replicas,
        max_age: Duration::from_secs(sink.nats_max_age_secs),
        ..Default::default()
    }
}

/// Whether the subject pattern `pattern` matches every subject `wanted` matches
/// (`*` one token, `>` one or more trailing tokens).
fn covers(pattern: &str, wanted: &str) -> bool {
    let mut have = pattern.split('.');
    let mut want = wanted.split('.');
    loop {
        match (have.next(), want.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(w)) if w != ">" => {}
            (Some(h), Some(w)) if h == w => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_patterns_that_cover_intakes_subjects() {
        for pattern in [
            ">",
            "intake.>",
            "intake.events.>",
            "intake.*.*.*",
            "intake.events.*.*",
        ] {
            assert!(covers(pattern, "intake.events.*.*"), "{pattern}");
        }
        for pattern in [
            "intake.events",
            "intake.events.*",
            "intake.events.1.*",
            "other.>",
            "intake.events.*.*.*",
        ] {
            assert!(!covers(pattern, "intake.events.*.*"), "{pattern}");
        }
    }

    #[test]
    fn a_replayed_envelope_gives_its_subject_and_id() {
        let sdk: EnvelopeHead = serde_json::from_str(
            r#"{"workspaceId":1,"connectionId":2,"receivedAt":"x","kind":"sdk","event":{"type":"track","messageId":"m-1","properties":{"a":[1,2]}}}"#,
        )
        .unwrap();
        assert_eq!((sdk.workspace_id, sdk.connection_id), (1, 2));
        assert_eq!(sdk.message_id(), Some("m-1"));
        let hook: EnvelopeHead = serde_json::from_str(
            r#"{"workspaceId":3,"connectionId":4,"kind":"webhook","messageId":"w-1","event":{"payload":{},"headers":{}}}"#,
        )
        .unwrap();
        assert_eq!(hook.message_id(), Some("w-1"));
        assert_eq!(subject(3, 4).as_str(), "intake.events.3.4");
    }
}
