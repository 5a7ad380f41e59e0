//! # intake
//!
//! An event-ingestion edge gateway. SDKs and webhook senders POST events with a write
//! key; the ingest listener checks the key in a lock-free in-memory index, validates
//! and enriches the events, and answers 200 once they are durable in the sink. The
//! admin listener manages companies, workspaces, connections, write keys and API keys.
//!
//! ## Layout
//! - [`config`]: the configuration as written, validated once into typed settings.
//! - [`app`]: wiring, the task tracker and the one shutdown path.
//! - [`ingest`] → [`index`] → [`sink`]: the hot path. The index answers key lookups
//!   and origin checks from an immutable snapshot; [`index::feed`] is the change feed
//!   it is built from.
//! - `admin` → `control` → `store`: the control plane. The admin API parses typed
//!   requests; the control layer decides every operation once and produces a plan;
//!   the store (embedded redb, or Redis) only loads, reads and commits plans, feeding
//!   the index its changes.
//! - [`model`]: the records and shared types; `net`, `secrets`, [`clock`],
//!   [`limits`], [`telemetry`]: helpers with no dependency on the layers above.

/// The global allocator of the binary, the benchmarks and the tests, chosen by
/// measurement (README, "Benchmarks"): the hot path's allocations cost less with
/// mimalloc than with glibc's malloc. Declared here so that everything linking the
/// library measures what the binary runs.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// jemalloc, for comparison builds without mimalloc.
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub(crate) mod admin;
pub mod app;
pub mod clock;
pub mod config;
pub(crate) mod control;
pub mod index;
pub mod ingest;
pub mod limits;
pub mod model;
pub(crate) mod net;
pub(crate) mod secrets;
pub mod sink;
pub(crate) mod store;
pub(crate) mod tasks;
pub mod telemetry;
