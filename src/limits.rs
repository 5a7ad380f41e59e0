//! Budgets with `governor`: per write key, a request budget and an events budget (each
//! a direct limiter: lock-free, a single atomic), owned by the key's index entry; and
//! an optional keyed limiter per client address whose idle entries are evicted so that
//! a flood of addresses cannot grow it.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::config::RateLimitConfig;

type Direct = RateLimiter<NotKeyed, InMemoryState, MonotonicClock, StateInformationMiddleware>;
type Keyed = RateLimiter<
    IpAddr,
    governor::state::keyed::DefaultKeyedStateStore<IpAddr>,
    MonotonicClock,
    StateInformationMiddleware,
>;

/// Why a request was refused, for the 429 headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// The burst size (`RateLimit-Limit`).
    pub limit: u32,
    /// Whole seconds until a request would pass (`Retry-After`, `RateLimit-Reset`).
    pub retry_after_secs: u64,
}

/// Why a request's events were refused by its key's events budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsRefused {
    /// Not now: the budget refills (429).
    Throttled(Throttled),
    /// Never: the request carries more events than the whole burst.
    OverBurst {
        /// `rate_limit.per_key_events_burst`.
        burst: u32,
    },
}

/// A write key's budgets: requests, and events (a request's events are taken at once).
#[derive(Debug)]
pub struct KeyLimiter {
    requests: Option<Direct>,
    events: Option<Direct>,
}

impl KeyLimiter {
    /// Takes one request from the budget.
    pub fn check(&self) -> Result<(), Throttled> {
        self.requests.as_ref().map_or(Ok(()), check_direct)
    }

    /// Takes a request's `count` events from the events budget, all or none.
    pub fn check_events(&self, count: usize) -> Result<(), EventsRefused> {
        let (Some(limiter), Some(n)) = (
            &self.events,
            NonZeroU32::new(u32::try_from(count).unwrap_or(u32::MAX)),
        ) else {
            return Ok(());
        };
        match limiter.check_n(n) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(not_until)) => Err(EventsRefused::Throttled(Throttled {
                limit: not_until.quota().burst_size().get(),
                retry_after_secs: ceil_secs(not_until.wait_time_from(limiter.clock().now())),
            })),
            Err(governor::InsufficientCapacity(burst)) => Err(EventsRefused::OverBurst { burst }),
        }
    }
}

/// Builds per-key limiters from the configuration; `None` when both budgets are off.
pub fn key_limiter_factory(config: &RateLimitConfig) -> Option<impl Fn() -> KeyLimiter> {
    let requests = quota(config.per_key_per_second, config.per_key_burst);
    let events = quota(
        config.per_key_events_per_second,
        config.per_key_events_burst,
    );
    if requests.is_none() && events.is_none() {
        return None;
    }
    Some(move || KeyLimiter {
        requests: requests.map(direct),
        events: events.map(direct),
    })
}

fn direct(quota: Quota) -> Direct {
    RateLimiter::<
        NotKeyed,
        InMemoryState,
        MonotonicClock,
        governor::middleware::NoOpMiddleware<std::time::Instant>,
    >::direct_with_clock(quota, MonotonicClock)
    .with_middleware()
}

/// Per-client-address budget, off unless `per_ip_per_second` is set.
#[derive(Debug)]
pub struct IpLimiter {
    limiter: Keyed,
}

impl IpLimiter {
    /// `None` when per-address limiting is off.
    pub fn new(config: &RateLimitConfig) -> Option<Self> {
        let per_second = config.per_ip_per_second;
        let quota = quota(per_second, per_second.saturating_mul(2))?;
        Some(Self {
            limiter: RateLimiter::<
                IpAddr,
                governor::state::keyed::DefaultKeyedStateStore<IpAddr>,
                MonotonicClock,
                governor::middleware::NoOpMiddleware<std::time::Instant>,
            >::new(quota, Default::default(), MonotonicClock)
            .with_middleware(),
        })
    }

    /// Takes one request from the address's budget.
    pub fn check(&self, ip: IpAddr) -> Result<(), Throttled> {
        match self.limiter.check_key(&ip) {
            Ok(_) => Ok(()),
            Err(not_until) => Err(Throttled {
                limit: not_until.quota().burst_size().get(),
                retry_after_secs: ceil_secs(not_until.wait_time_from(self.limiter.clock().now())),
            }),
        }
    }

    /// Drops addresses whose budget is full again; run periodically.
    pub fn evict_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    let per_second = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst.max(1))?;
    Some(Quota::per_second(per_second).allow_burst(burst))
}

fn check_direct(limiter: &Direct) -> Result<(), Throttled> {
    match limiter.check() {
        Ok(_) => Ok(()),
        Err(not_until) => Err(Throttled {
            limit: not_until.quota().burst_size().get(),
            retry_after_secs: ceil_secs(not_until.wait_time_from(limiter.clock().now())),
        }),
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn config(per_key: u32, burst: u32, per_ip: u32) -> RateLimitConfig {
        RateLimitConfig {
            per_key_per_second: per_key,
            per_key_burst: burst,
            per_ip_per_second: per_ip,
            per_key_events_per_second: 0,
            ..RateLimitConfig::default()
        }
    }

    #[test]
    fn events_budget_takes_a_requests_events_at_once() {
        let make = key_limiter_factory(&RateLimitConfig {
            per_key_per_second: 0,
            per_key_events_per_second: 10,
            per_key_events_burst: 100,
            ..RateLimitConfig::default()
        })
        .unwrap();
        let limiter = make();
        assert!(limiter.check().is_ok(), "requests are not limited");
        assert_eq!(limiter.check_events(60), Ok(()));
        assert_eq!(limiter.check_events(40), Ok(()));
        match limiter.check_events(30) {
            Err(EventsRefused::Throttled(t)) => {
                assert_eq!(t.limit, 100);
                assert_eq!(t.retry_after_secs, 3);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            limiter.check_events(101),
            Err(EventsRefused::OverBurst { burst: 100 })
        );
        assert_eq!(limiter.check_events(0), Ok(()));
    }

    #[test]
    fn key_budget_allows_the_burst_then_refuses() {
        let make = key_limiter_factory(&config(1, 3, 0)).unwrap();
        let limiter = make();
        for _ in 0..3 {
            assert!(limiter.check().is_ok());
        }
        let refused = limiter.check().unwrap_err();
        assert_eq!(refused.limit, 3);
        assert_eq!(refused.retry_after_secs, 1);
    }

    #[test]
    fn zero_turns_limits_off() {
        assert!(key_limiter_factory(&config(0, 10, 0)).is_none());
        assert!(key_limiter_factory(&RateLimitConfig {
            per_key_per_second: 0,
            ..RateLimitConfig::default()
        })
        .is_some());
        assert!(IpLimiter::new(&config(1, 1, 0)).is_none());
    }

    #[test]
    fn idle_addresses_are_evicted_so_a_flood_cannot_grow_the_limiter() {
        let limiter = IpLimiter::new(&config(0, 0, 1000)).unwrap();
        for n in 0..5000u32 {
            assert!(limiter
                .check(IpAddr::from(std::net::Ipv4Addr::from(n)))
                .is_ok());
        }
        assert_eq!(limiter.tracked(), 5000);
        // One request each is paid back within a millisecond; eviction then drops them.
        let deadline = Instant::now() + Duration::from_secs(10);
        while limiter.tracked() > 0 {
            assert!(
                Instant::now() < deadline,
                "{} still tracked",
                limiter.tracked()
            );
            std::thread::sleep(Duration::from_millis(5));
            limiter.evict_idle();
        }
    }

    #[test]
    fn ip_budget_is_per_address_and_evicts_idle_ones() {
        let limiter = IpLimiter::new(&config(0, 0, 1)).unwrap();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_err());
        assert!(limiter.check(b).is_ok());
        assert_eq!(limiter.tracked(), 2);
    }
}
