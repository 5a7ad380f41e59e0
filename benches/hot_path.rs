//! Hot-path benchmarks: key index lookups (hit and miss) at growing sizes, lookups
//! while another thread applies changes, and parsing + validation + enrichment +
//! envelope of a realistic track event and of a 100-event batch of it, and the
//! group commit's hand-off (request → writer → request) with a writer that does no
//! I/O, as a blocking thread (the log sink's) and as a tokio task (the remote sinks').
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use intake::index::feed::{Change, ChangeMessage, Snapshot};
use intake::index::{Admission, KeyIndex, KeyTarget};
use intake::ingest::events::{self, RequestFacts};
use intake::ingest::routes::{EventType, Route};
use intake::model::EventSource;

fn key(n: usize) -> String {
    format!("{n:032}")
}

fn target(n: usize) -> KeyTarget {
    KeyTarget {
        workspace_id: 1,
        connection_id: n as u32,
        source: EventSource::Sdk,
    }
}

/// The hot path's check of a key (per-key limits off): what `admit` finds.
fn lookup(index: &KeyIndex, key: &str) -> Option<KeyTarget> {
    match index.admit(key, EventSource::Sdk) {
        Admission::Admitted(target) => Some(target),
        _ => None,
    }
}

fn index_of(size: usize) -> KeyIndex {
    let index = KeyIndex::new(None);
    index.replace(Snapshot {
        version: 1,
        write_keys: (0..size)
            .map(|n| (intake::index::write_key_bytes(&key(n)).unwrap(), target(n)))
            .collect(),
        ..Snapshot::default()
    });
    index
}

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("index_lookup");
    group.throughput(Throughput::Elements(1));
    for size in [1_000, 100_000, 1_000_000] {
        let index = index_of(size);
        let hit = key(size / 2);
        let miss = "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ".to_string();
        group.bench_function(format!("hit/{size}"), |b| {
            b.iter(|| black_box(lookup(&index, black_box(&hit))))
        });
        group.bench_function(format!("miss/{size}"), |b| {
            b.iter(|| black_box(lookup(&index, black_box(&miss))))
        });
    }
    group.finish();
}

/// One and two threads look up at once, first alone, then while another thread
/// applies changes as fast as it can: the read side must not slow down under writes
/// (on a 2-core machine, 2 readers + 1 writer oversubscribe the cores).
fn lookups_under_writes(c: &mut Criterion) {
    let index = Arc::new(index_of(100_000));
    let mut group = c.benchmark_group("index_lookup_2_threads");
    for readers in [1, 2] {
        group.bench_function(format!("{readers}_readers_alone/100000"), |b| {
            b.iter_custom(|iters| parallel_lookups(&index, iters, readers))
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (index, stop) = (index.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut version = 1;
            while !stop.load(Ordering::Relaxed) {
                version += 1;
                index.apply(&ChangeMessage {
                    version,
                    changes: vec![Change::WriteKeyAdded {
                        key: key(1_000_000 + (version as usize % 50_000)),
                        target: target(1),
                    }],
                });
            }
        })
    };
    for readers in [1, 2] {
        group.bench_function(format!("{readers}_readers_while_writing/100000"), |b| {
            b.iter_custom(|iters| parallel_lookups(&index, iters, readers))
        });
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    group.finish();
}

/// Wall time for `readers` threads to do `iters` lookups each.
fn parallel_lookups(index: &Arc<KeyIndex>, iters: u64, readers: usize) -> std::time::Duration {
    let start = std::time::Instant::now();
    std::thread::scope(|scope| {
        for t in 0..readers {
            let index = index.clone();
            scope.spawn(move || {
                let hit = key(500 + t);
                for _ in 0..iters {
                    black_box(lookup(&index, black_box(&hit)));
                }
            });
        }
    });
    start.elapsed()
}

/// The realistic event of issue 15: a Segment Python SDK track call (~900 bytes:
/// properties with a products array, context with library, locale, userAgent, page).
/// `benches/load.sh` posts the same file.
const TRACK_EVENT: &str = include_str!("track_event.json");

fn enrichment(c: &mut Criterion) {
    let facts = RequestFacts {
        received_at: intake::clock::now(),
        received_at_text: "2026-11-22T10:00:00.123Z",
        client_ip: "203.0.113.7",
        target: target(1),
        max_event_bytes: 32_768,
    };
    let event = TRACK_EVENT.trim();
    let mut group = c.benchmark_group("events");
    group.throughput(Throughput::Elements(1));
    group.bench_function("track_900b", |b| {
        b.iter(|| {
            let parsed = events::parse(
                black_box(event.as_bytes()),
                &Route::Single(EventType::Track),
                2500,
            )
            .unwrap();
            black_box(events::process(parsed, &facts).unwrap())
        })
    });
    // As the Python SDK batches: sentAt at the batch level.
    let batch = format!(
        "{{\"batch\":[{}],\"sentAt\":\"2026-11-22T10:00:00.000000+00:00\"}}",
        vec![event; 100].join(",")
    );
    group.throughput(Throughput::Elements(100));
    group.bench_function("batch_100x900b", |b| {
        b.iter(|| {
            let parsed = events::parse(black_box(batch.as_bytes()), &Route::Batch, 2500).unwrap();
            black_box(events::process(parsed, &facts).unwrap())
        })
    });
    group.finish();
}

/// Requests in flight at once in the hand-off benchmark (wrk's `-c32`).
const CLIENTS: u64 = 32;

/// Wall time per request of `iters` requests from `CLIENTS` concurrent tasks through
/// `queue`, on a 2-worker runtime like the binary's on this machine.
fn through_queue(
    runtime: &tokio::runtime::Runtime,
    queue: &Arc<intake::sink::queue::Queue>,
    iters: u64,
) -> std::time::Duration {
    runtime.block_on(async {
        let started = std::time::Instant::now();
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let queue = queue.clone();
            clients.push(tokio::spawn(async move {
                for _ in 0..iters.div_ceil(CLIENTS) {
                    queue
                        .write(intake::sink::Batch::new(1, 1, 0))
                        .await
                        .unwrap();
                }
            }));
        }
        for client in clients {
            client.await.unwrap();
        }
        started.elapsed()
    })
}

fn group_commit_hand_off(c: &mut Criterion) {
    use intake::sink::queue::{Group, Queue};
    use intake::sink::{SinkState, StateCell};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("hand_off");
    group.throughput(Throughput::Elements(1));
    // The log sink's shape: a blocking thread takes each group and answers it.
    let (queue, mut jobs) = Queue::new(Arc::new(StateCell::new(SinkState::Direct)), false);
    let queue = Arc::new(queue);
    runtime.spawn_blocking(move || {
        while let Some(first) = jobs.blocking_recv() {
            let group = Group::gather(first, || jobs.try_recv().ok(), usize::MAX);
            let answered = group.writes.len();
            group.answer(Ok(vec![Default::default(); answered]));
        }
    });
    group.bench_function("blocking_thread_writer_32_clients", |b| {
        b.iter_custom(|iters| through_queue(&runtime, &queue, iters))
    });
    // The alternative: the writer as a tokio task.
    let (queue, mut jobs) = Queue::new(Arc::new(StateCell::new(SinkState::Direct)), false);
    let queue = Arc::new(queue);
    runtime.spawn(async move {
        while let Some(first) = jobs.recv().await {
            let group = Group::gather(first, || jobs.try_recv().ok(), usize::MAX);
            let answered = group.writes.len();
            group.answer(Ok(vec![Default::default(); answered]));
        }
    });
    group.bench_function("tokio_task_writer_32_clients", |b| {
        b.iter_custom(|iters| through_queue(&runtime, &queue, iters))
    });
    // No hand-off at all: what the requests cost by themselves.
    group.bench_function("no_writer_32_clients", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = std::time::Instant::now();
                let mut clients = Vec::new();
                for _ in 0..CLIENTS {
                    clients.push(tokio::spawn(async move {
                        for _ in 0..iters.div_ceil(CLIENTS) {
                            black_box(intake::sink::Batch::new(1, 1, 0));
                            tokio::task::yield_now().await;
                        }
                    }));
                }
                for client in clients {
                    client.await.unwrap();
                }
                started.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    lookups,
    lookups_under_writes,
    enrichment,
    group_commit_hand_off
);
criterion_main!(benches);
