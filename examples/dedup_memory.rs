//! Bytes per remembered messageId, as README's "Deduplication" quotes them: the Redis
//! window (`INFO memory` before and after recording ids through intake's own code)
//! and the in-memory window of the embedded store.
//! `cargo run --release --example dedup_memory -- redis://127.0.0.1:PORT`
//! (use an empty, throw-away redis-server: the example flushes it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use intake::sink::dedup::memory::MemoryWindow;
use intake::sink::dedup::redis::RedisWindow;
use intake::sink::dedup::{fingerprint, unix_now, Buckets};

async fn used_memory(connection: &mut redis::aio::MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(connection)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .expect("a redis:// URL of a throw-away redis-server");
    let buckets = Buckets::new(86_400).unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut info = client.get_multiplexed_async_connection().await.unwrap();
    println!("| ids in one bucket | Redis bytes per id | in-memory window bytes per id |");
    println!("| ---: | ---: | ---: |");
    for ids in [10_000usize, 100_000, 1_000_000, 10_000_000, 40_000_000] {
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut info)
            .await
            .unwrap();
        let before = used_memory(&mut info).await;
        let mut window = RedisWindow::new(
            redis::IntoConnectionInfo::into_connection_info(url.as_str()).unwrap(),
            buckets,
        )
        .unwrap();
        let mut memory = MemoryWindow::new(buckets, usize::MAX);
        let prints: Vec<i64> = (0..ids).map(|i| fingerprint(7, &uuid_like(i))).collect();
        let now = unix_now();
        for group in prints.chunks(1000) {
            window.record(group, now).await.unwrap();
            memory.record(group, now);
        }
        let after = used_memory(&mut info).await;
        println!(
            "| {ids} | {:.1} | {:.1} |",
            (after - before) as f64 / ids as f64,
            memory.heap_bytes() as f64 / ids as f64
        );
    }
}

/// A messageId shaped like the SDKs' (a UUID), distinct per `i`.
fn uuid_like(i: usize) -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        i,
        i.wrapping_mul(2_654_435_761)
    )
}
