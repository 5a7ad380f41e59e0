//! Failed admin authentications per client, counted in fixed windows. Once a client
//! reaches `max` failures in a window, all its admin requests get 429 until the window
//! ends, so API keys cannot be guessed online. Clients are IPv4 addresses and IPv6
//! /64 networks (a subscriber's usual allocation, so rotating addresses inside one
//! does not help), kept in a bounded LRU: each failure costs O(1) however many
//! clients have failed, and memory stays bounded whatever a flood of addresses does.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::net::subscriber_of;

/// Clients tracked at most; the least recently failing are forgotten first.
const MAX_TRACKED: usize = 65_536;

/// The per-client failure counter.
pub(crate) struct AuthFailures {
    max: u32,
    window: Duration,
    /// Client → (window start, failures in it). A mutex: it is on the admin path
    /// only, and each operation is O(1).
    clients: Mutex<LruCache<IpAddr, (Instant, u32)>>,
}

impl AuthFailures {
    /// At most `max` failures per `window` per client; 0 = no limit.
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        Self::with_capacity(max, window, MAX_TRACKED)
    }

    fn with_capacity(max: u32, window: Duration, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            max,
            window,
            clients: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// Seconds until the client may try again, if it is blocked now.
    pub(crate) fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let (start, failures) = clients.peek(&subscriber_of(ip))?;
        let elapsed = start.elapsed();
        (self.max > 0 && *failures >= self.max && elapsed < self.window)
            .then(|| ceil_secs(self.window - elapsed).max(1))
    }

    /// Counts one failure of the client.
    pub(crate) fn record(&self, ip: IpAddr) {
        if self.max == 0 {
            return;
        }
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let entry = clients.get_or_insert_mut(subscriber_of(ip), || (now, 0));
        if entry.0.elapsed() >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Clients tracked now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_client_is_blocked_after_the_limit_for_the_window() {
        let failures = AuthFailures::new(2, Duration::from_secs(60));
        failures.record(ip("10.0.0.1"));
        assert_eq!(failures.blocked(ip("10.0.0.1")), None);
        failures.record(ip("10.0.0.1"));
        assert_eq!(failures.blocked(ip("10.0.0.1")), Some(60));
        assert_eq!(failures.blocked(ip("10.0.0.2")), None);
        let short = AuthFailures::new(1, Duration::from_millis(1));
        short.record(ip("10.0.0.1"));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.blocked(ip("10.0.0.1")), None);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let failures = AuthFailures::new(3, Duration::from_secs(60));
        for n in 1..=3 {
            failures.record(ip(&format!("2001:db8:0:7::{n}")));
        }
        assert!(failures.blocked(ip("2001:db8:0:7::ffff")).is_some());
        assert!(failures.blocked(ip("2001:db8:0:8::1")).is_none());
        assert!(failures.blocked(ip("::ffff:10.0.0.1")).is_none());
    }

    #[test]
    fn a_flood_of_addresses_stays_bounded() {
        let failures = AuthFailures::with_capacity(20, Duration::from_secs(60), 1_000);
        for n in 0..50_000u32 {
            failures.record(IpAddr::from(std::net::Ipv4Addr::from(n)));
        }
        assert_eq!(failures.tracked(), 1_000);
        // The most recent clients are the ones kept.
        failures.record(IpAddr::from(std::net::Ipv4Addr::from(49_999u32)));
        assert_eq!(failures.tracked(), 1_000);
    }
}
