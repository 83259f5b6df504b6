//! Sign-in slowing. Failed sign-ins are counted per client address (an IPv6 address by its /64,
//! which one client usually holds whole) and per user name. Three tries are free; after that
//! each failure doubles the wait before the next try, up to five minutes. A try that comes too
//! early is answered at once with 429 and never reaches PAM, and counts as a failure: a client
//! that keeps hammering gets ever longer waits, and each try costs the server a map lookup. The
//! helper's PAM delay and its fail2ban line (written by root) handle what gets through. The maps
//! are bounded: the stalest entries go first.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

const FREE_TRIES: u32 = 3;
const MAX_WAIT: Duration = Duration::from_secs(5 * 60);
/// Entries kept per map; one is some 100 bytes.
const MAX_ENTRIES: usize = 10_000;
/// A record untouched for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

#[derive(Clone, Copy)]
struct Record {
    failures: u32,
    not_before: Instant,
    last: Instant,
}

#[derive(Default)]
pub struct Throttle {
    by_address: Mutex<HashMap<String, Record>>,
    by_user: Mutex<HashMap<String, Record>>,
}

/// The address as counted: IPv4 whole, IPv6 by its /64.
pub fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

impl Throttle {
    /// How long to wait before this try may go to PAM, if it is too early; a too-early try
    /// counts as a failure.
    pub fn wait(&self, address: IpAddr, user: &str, now: Instant) -> Option<Duration> {
        let early = |map: &Mutex<HashMap<String, Record>>, key: &str| {
            map.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(key)
                .and_then(|r| r.not_before.checked_duration_since(now))
                .filter(|d| !d.is_zero())
        };
        let by_address = early(&self.by_address, &address_key(address));
        let by_user = early(&self.by_user, &user.to_ascii_lowercase());
        by_address.max(by_user)?;
        self.failed(address, user, now);
        self.wait_without_counting(address, user, now)
    }

    fn wait_without_counting(&self, address: IpAddr, user: &str, now: Instant) -> Option<Duration> {
        let until = |map: &Mutex<HashMap<String, Record>>, key: &str| {
            map.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(key)
                .and_then(|r| r.not_before.checked_duration_since(now))
        };
        until(&self.by_address, &address_key(address))
            .max(until(&self.by_user, &user.to_ascii_lowercase()))
    }

    pub fn failed(&self, address: IpAddr, user: &str, now: Instant) {
        count(&self.by_address, address_key(address), now);
        count(&self.by_user, user.to_ascii_lowercase(), now);
    }

    /// A successful sign-in clears the user's count (not the address's: one right password
    /// must not reset a guessing run from a shared address).
    pub fn succeeded(&self, user: &str) {
        self.by_user
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&user.to_ascii_lowercase());
    }
}

fn count(map: &Mutex<HashMap<String, Record>>, key: String, now: Instant) {
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
        map.retain(|_, r| now.duration_since(r.last) < FORGET_AFTER);
        if map.len() >= MAX_ENTRIES {
            if let Some(stalest) = map
                .iter()
                .min_by_key(|(_, r)| r.last)
                .map(|(k, _)| k.clone())
            {
                map.remove(&stalest);
            }
        }
    }
    let record = map.entry(key).or_insert(Record {
        failures: 0,
        not_before: now,
        last: now,
    });
    if now.duration_since(record.last) > FORGET_AFTER {
        record.failures = 0;
    }
    record.failures = record.failures.saturating_add(1);
    record.last = now;
    record.not_before = now + delay_after(record.failures);
}

/// The wait after `failures` failures: none for the free tries, then 1 s, 2 s, 4 s ... 5 min.
fn delay_after(failures: u32) -> Duration {
    if failures < FREE_TRIES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_TRIES).min(16);
    Duration::from_secs(1u64 << doublings).min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_after_three_tries_up_to_five_minutes() {
        let waits: Vec<u64> = (1..=13).map(|n| delay_after(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    #[test]
    fn an_address_and_a_user_are_slowed_separately() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let ip: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let neighbour: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        let elsewhere: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(throttle.wait(ip, "alice", now), None);
            throttle.failed(ip, "alice", now);
        }
        // Each early try counts: the waits double while the hammering goes on.
        let secs = |n| Some(Duration::from_secs(n));
        assert_eq!(throttle.wait(ip, "bob", now), secs(2));
        assert_eq!(throttle.wait(neighbour, "carol", now), secs(4));
        assert_eq!(throttle.wait(elsewhere, "Alice", now), secs(2));
        assert_eq!(throttle.wait(elsewhere, "dave", now), None);
        let later = now + Duration::from_secs(5);
        assert_eq!(throttle.wait(ip, "erin", later), None);
        throttle.succeeded("alice");
        assert_eq!(throttle.wait(elsewhere, "alice", later), None);
    }
}
