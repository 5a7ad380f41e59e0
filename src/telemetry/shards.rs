//! The ingest path's per-request metrics, counted in per-thread shards. Every request
//! adds to a request counter, a latency histogram, the sink's histogram and two
//! totals; through the `metrics` registry each of those is an atomic add on a cache
//! line that all cores write (and a histogram keeps every sample until upkeep), which
//! cost 3 % of the CPU under load. Here each thread adds to its own shard, and the
//! shards are summed only when `/metrics` is rendered: the counters are handed to the
//! registry as totals, the two histograms are written out here.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

use super::{ROUTES, SECONDS_BUCKETS, STATUSES};

/// Shards; threads beyond this many share one (still correct, only slower).
const SHARDS: usize = 16;
/// Cells of one histogram: one per bucket, then `+Inf`, then the sum in nanoseconds.
const HISTOGRAM_CELLS: usize = SECONDS_BUCKETS.len() + 2;
const REQUESTS_AT: usize = 0;
const LATENCY_AT: usize = REQUESTS_AT + ROUTES.len() * STATUSES.len();
const SINK_AT: usize = LATENCY_AT + ROUTES.len() * HISTOGRAM_CELLS;
const ACCEPTED_AT: usize = SINK_AT + HISTOGRAM_CELLS;
const BODY_BYTES_AT: usize = ACCEPTED_AT + 1;
const CELLS: usize = BODY_BYTES_AT + 1;
/// A shard's stride: its cells rounded up to whole 128-byte lines, plus one line, so
/// that no two shards share a cache line (nor its adjacent-line prefetch pair).
const STRIDE: usize = CELLS.div_ceil(16) * 16 + 16;

/// Which counted thing a total is.
#[derive(Debug, Clone, Copy)]
pub enum Total {
    /// Events accepted.
    Accepted,
    /// Request body bytes (after decompression).
    BodyBytes,
}

impl Total {
    /// Its cell in a shard.
    fn cell(self) -> usize {
        match self {
            Total::Accepted => ACCEPTED_AT,
            Total::BodyBytes => BODY_BYTES_AT,
        }
    }
}

/// The cell in a shard of the request counter of `route` and `status_index`.
fn request_cell(route: usize, status_index: usize) -> usize {
    REQUESTS_AT + route * STATUSES.len() + status_index
}

/// The per-thread counts of the ingest path's metrics.
pub struct Shards {
    cells: Box<[AtomicU64]>,
}

/// A histogram summed over the shards.
#[derive(Debug, PartialEq)]
pub struct Summed {
    /// Cumulative counts, one per bucket of `SECONDS_BUCKETS` and then `+Inf`.
    pub cumulative: Vec<u64>,
    /// The sum of the samples, in seconds.
    pub sum_seconds: f64,
}

impl Shards {
    /// Zeroed counts.
    pub fn new() -> Self {
        Self {
            cells: (0..SHARDS * STRIDE).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The process's counts (several in-process gateways, as in tests, share them as
    /// they share the recorder).
    pub fn global() -> &'static Self {
        static GLOBAL: OnceLock<Shards> = OnceLock::new();
        GLOBAL.get_or_init(Self::new)
    }

    /// One answered request: `route` indexes `ROUTES`, `status_index` `STATUSES`.
    pub fn request(&self, route: usize, status_index: usize, seconds: f64) {
        let base = shard_base();
        self.add(base + request_cell(route, status_index), 1);
        self.observe(base + LATENCY_AT + route * HISTOGRAM_CELLS, seconds);
    }

    /// One write to the sink took `seconds`.
    pub fn sink_write(&self, seconds: f64) {
        self.observe(shard_base() + SINK_AT, seconds);
    }

    /// Adds to a total.
    pub fn add_total(&self, total: Total, amount: u64) {
        self.add(shard_base() + total.cell(), amount);
    }

    /// A request counter summed over the shards.
    pub fn requests(&self, route: usize, status_index: usize) -> u64 {
        self.sum(request_cell(route, status_index))
    }

    /// A total summed over the shards.
    pub fn total(&self, total: Total) -> u64 {
        self.sum(total.cell())
    }

    /// The latency histogram of one route.
    pub fn latency(&self, route: usize) -> Summed {
        self.histogram(LATENCY_AT + route * HISTOGRAM_CELLS)
    }

    /// The sink's histogram.
    pub fn sink(&self) -> Summed {
        self.histogram(SINK_AT)
    }

    fn observe(&self, at: usize, seconds: f64) {
        let bucket = SECONDS_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(SECONDS_BUCKETS.len());
        self.add(at + bucket, 1);
        self.add(at + HISTOGRAM_CELLS - 1, (seconds * 1e9) as u64);
    }

    fn add(&self, at: usize, amount: u64) {
        if let Some(cell) = self.cells.get(at) {
            cell.fetch_add(amount, Relaxed);
        }
    }

    fn sum(&self, at: usize) -> u64 {
        (0..SHARDS)
            .filter_map(|shard| self.cells.get(shard * STRIDE + at))
            .fold(0u64, |sum, cell| sum.wrapping_add(cell.load(Relaxed)))
    }

    fn histogram(&self, at: usize) -> Summed {
        let mut running = 0;
        let cumulative = (0..=SECONDS_BUCKETS.len())
            .map(|bucket| {
                running += self.sum(at + bucket);
                running
            })
            .collect();
        let sum_seconds = self.sum(at + HISTOGRAM_CELLS - 1) as f64 / 1e9;
        Summed {
            cumulative,
            sum_seconds,
        }
    }
}

impl Default for Shards {
    fn default() -> Self {
        Self::new()
    }
}

/// The first cell of this thread's shard.
fn shard_base() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static BASE: usize = NEXT.fetch_add(1, Relaxed) % SHARDS * STRIDE;
    }
    BASE.with(|base| *base)
}

/// Writes one histogram in the Prometheus text format; `labels` is empty or
/// `name="value"` pairs without braces.
pub fn write_histogram(out: &mut String, name: &str, labels: &str, summed: &Summed) {
    let joined = if labels.is_empty() {
        String::new()
    } else {
        format!("{labels},")
    };
    let bounds = SECONDS_BUCKETS.iter().map(|b| b.to_string());
    for (bound, count) in bounds.chain(["+Inf".to_string()]).zip(&summed.cumulative) {
        let _ = writeln!(out, "{name}_bucket{{{joined}le=\"{bound}\"}} {count}");
    }
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let count = summed.cumulative.last().copied().unwrap_or(0);
    let _ = writeln!(out, "{name}_sum{braces} {}", summed.sum_seconds);
    let _ = writeln!(out, "{name}_count{braces} {count}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_add_to_their_own_shards_and_the_sums_see_all() {
        let shards = Shards::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        shards.request(1, 0, 0.0003);
                        shards.add_total(Total::Accepted, 2);
                    }
                });
            }
        });
        assert_eq!(shards.requests(1, 0), 4000);
        assert_eq!(shards.requests(0, 0), 0);
        assert_eq!(shards.total(Total::Accepted), 8000);
        let latency = shards.latency(1);
        // 0.0003 s falls in the third bucket (le 0.0005): cumulative from there on.
        assert_eq!(&latency.cumulative[..4], &[0, 0, 4000, 4000]);
        assert_eq!(latency.cumulative.last(), Some(&4000));
        assert!((latency.sum_seconds - 1.2).abs() < 1e-6);
    }

    #[test]
    fn slow_samples_land_in_inf_and_histograms_render_cumulatively() {
        let shards = Shards::new();
        shards.sink_write(0.00005);
        shards.sink_write(7.0);
        let mut out = String::new();
        write_histogram(&mut out, "x_seconds", "", &shards.sink());
        assert!(
            out.starts_with("x_seconds_bucket{le=\"0.0001\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_bucket{le=\"5\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 2\n"), "{out}");
        let sum = out.lines().find_map(|l| l.strip_prefix("x_seconds_sum "));
        let sum: f64 = sum.and_then(|s| s.parse().ok()).unwrap_or_default();
        assert!((sum - 7.00005).abs() < 1e-6, "{out}");
        assert!(out.ends_with("x_seconds_count 2\n"), "{out}");
        let mut out = String::new();
        write_histogram(&mut out, "y", "route=\"batch\"", &shards.latency(0));
        assert!(
            out.contains("y_bucket{route=\"batch\",le=\"+Inf\"} 0\n"),
            "{out}"
        );
        assert!(out.contains("y_count{route=\"batch\"} 0\n"), "{out}");
    }
}
