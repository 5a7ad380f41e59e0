//! Integration tests: the real intake over real HTTP on loopback, each test with its
//! own data dir and ports.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod admin;
mod admin_limits;
mod bodies;
mod browser_routes;
mod browsers;
mod clients;
mod connection_origins;
mod connections;
mod dedup;
mod dedup_nodes;
mod edge;
mod fuzz;
mod hardening;
mod ingest;
mod layers;
mod limits;
mod load;
mod memory;
mod nats;
mod nats_cluster;
mod nats_server;
mod on_redis;
mod openapi;
mod process;
mod redis_server;
mod request_limits;
mod settings_docs;
mod shutdown;
mod sink_faults;
mod support;
mod sync;
