//! Integration tests: the real intake over real HTTP on loopback, each test with its
//! own data dir and ports.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod admin;
mod api_keys;
mod clients;
mod fuzz;
mod hardening;
mod ingest;
mod limits;
mod load;
mod on_redis;
mod openapi;
mod process;
mod redis_server;
mod request_limits;
mod support;
