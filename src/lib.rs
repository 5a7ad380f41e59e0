//! # intake
//!
//! An event-ingestion edge gateway. SDKs and webhook senders POST events with a write
//! key; the ingest listener checks the key in a lock-free in-memory index, validates
//! and enriches the events, and answers 200 once they are durable in the sink. The
//! admin listener manages companies, workspaces, connections, write keys and API keys.
//!
//! ## Layout
//! - [`config`]: settings, defaults, env overrides, validation.
//! - [`app`]: wiring and the shutdown path.
//! - [`index`]: the lock-free key index the hot path reads.
//! - [`store`]: where keys live (embedded redb), the change feed and index sync.
//! - [`ingest`]: the hyper service: routes, write keys, bodies, events, webhooks.
//! - [`sink`]: envelopes and the durable log sink with group commit.
//! - [`admin`]: the axum key-management API.
//! - [`limits`], [`net`], [`secrets`], [`clock`], [`model`], [`telemetry`]: helpers.

pub mod admin;
pub mod app;
pub mod clock;
pub mod config;
pub mod index;
pub mod ingest;
pub mod limits;
pub mod model;
pub mod net;
pub mod secrets;
pub mod sink;
pub mod store;
pub mod telemetry;
