//! Runs the event path in a loop, for profilers (`perf record`, `valgrind
//! --tool=callgrind`): `cargo run --release --example profile_events -- track|batch N`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use intake::index::KeyTarget;
use intake::ingest::events::{self, RequestFacts};
use intake::ingest::routes::{EventType, Route};
use intake::model::EventSource;

const TRACK_EVENT: &str = include_str!("../benches/track_event.json");

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "track".into());
    let rounds: usize = args.next().map_or(100_000, |n| n.parse().unwrap());
    let facts = RequestFacts {
        received_at: intake::clock::now(),
        received_at_text: "2026-11-22T10:00:00.123Z",
        client_ip: "203.0.113.7",
        target: KeyTarget {
            workspace_id: 1,
            connection_id: 2,
            source: EventSource::Sdk,
        },
        max_event_bytes: 32_768,
    };
    let event = TRACK_EVENT.trim();
    let batch = format!(
        "{{\"batch\":[{}],\"sentAt\":\"2026-11-22T10:00:00.000000+00:00\"}}",
        vec![event; 100].join(",")
    );
    let (body, route) = match what.as_str() {
        "batch" => (batch.as_bytes(), Route::Batch),
        _ => (event.as_bytes(), Route::Single(EventType::Track)),
    };
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        let parsed = events::parse(black_box(body), &route, 2500).unwrap();
        black_box(events::process(parsed, &facts).unwrap());
    }
    let per_round = started.elapsed() / rounds as u32;
    eprintln!("{what}: {per_round:?} a round (wall time)");
}
