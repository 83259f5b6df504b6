//! Sign-in slowing. Failed sign-ins are counted per client address (an IPv6 address by its /64,
//! which one client usually holds whole; an IPv4-mapped one as IPv4) and per user name. Three
//! tries are free; after that each failure doubles the wait before the next try, up to five
//! minutes for an address and ten seconds for a user name.
//!
//! - A try is counted before PAM runs (`begin`) and taken back if it succeeds or never got an
//!   answer, under one lock, so parallel requests cannot all slip through one check.
//! - A try that comes too early from an address is answered at once with 429, never reaches PAM,
//!   and lengthens that address's wait: a client that keeps hammering waits ever longer, and
//!   each try costs the server a map lookup.
//! - A user name's count slows guessing spread over many addresses, but it must not let anyone
//!   lock a user out: it never refuses, it only holds the try back before PAM (at most ten
//!   seconds), never at an address the user signed in from before (kept for a month, in
//!   memory), and early tries never lengthen it.
//! - The maps are bounded: the stalest entries go first.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

const FREE_TRIES: u32 = 3;
const MAX_ADDRESS_WAIT: Duration = Duration::from_secs(5 * 60);
const MAX_USER_HOLD: Duration = Duration::from_secs(10);
/// Entries kept per map; one is some 100 bytes.
const MAX_ENTRIES: usize = 10_000;
/// A failure record untouched for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// How long a successful sign-in makes its address known for that user.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);

#[derive(Clone, Copy)]
struct Record {
    failures: u32,
    not_before: Instant,
    last: Instant,
}

#[derive(Default)]
struct Counts {
    by_address: HashMap<String, Record>,
    by_user: HashMap<String, Record>,
    /// (user, address key) pairs that signed in successfully, and when.
    known: HashMap<(String, String), Instant>,
}

#[derive(Default)]
pub struct Throttle {
    counts: Mutex<Counts>,
}

/// The address as counted: IPv4 whole (an IPv4-mapped IPv6 address as IPv4), IPv6 by its /64.
pub fn address_key(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

impl Throttle {
    /// Before PAM: `Err(wait)` if this try is too early from its address (and then the
    /// address's wait grows); otherwise how long to hold the try back for its user name (zero
    /// at an address the user signed in from before). The try counts as a failure until
    /// `succeeded` or `refund` takes it back.
    pub fn begin(&self, address: IpAddr, user: &str, now: Instant) -> Result<Duration, Duration> {
        let (address, user) = (address_key(address), user.to_ascii_lowercase());
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(wait) = early(&counts.by_address, &address, now) {
            // Only an address already slowed grows: no entry is made on this path.
            if let Some(record) = counts.by_address.get_mut(&address) {
                fail(record, now, MAX_ADDRESS_WAIT);
                return Err(record.not_before.saturating_duration_since(now).max(wait));
            }
        }
        let known = counts
            .known
            .get(&(user.clone(), address.clone()))
            .is_some_and(|at| now.duration_since(*at) < KNOWN_FOR);
        let hold = if known {
            Duration::ZERO
        } else {
            early(&counts.by_user, &user, now).unwrap_or_default()
        };
        count(&mut counts.by_address, address, now, MAX_ADDRESS_WAIT);
        count(&mut counts.by_user, user, now, MAX_USER_HOLD);
        Ok(hold)
    }

    /// PAM said yes: the try is taken back, the user's count cleared, and the address known for
    /// the user from now on.
    pub fn succeeded(&self, address: IpAddr, user: &str, now: Instant) {
        let (address, user) = (address_key(address), user.to_ascii_lowercase());
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.by_user.remove(&user);
        take_back(&mut counts.by_address, &address, MAX_ADDRESS_WAIT);
        bound(&mut counts.known, now, KNOWN_FOR, |at| *at);
        counts.known.insert((user, address), now);
    }

    /// Takes back a try that never got PAM's answer (the helper could not be reached, the page
    /// was full): it was neither right nor wrong.
    pub fn refund(&self, address: IpAddr, user: &str) {
        let (address, user) = (address_key(address), user.to_ascii_lowercase());
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        take_back(&mut counts.by_address, &address, MAX_ADDRESS_WAIT);
        take_back(&mut counts.by_user, &user, MAX_USER_HOLD);
    }
}

fn early(map: &HashMap<String, Record>, key: &str, now: Instant) -> Option<Duration> {
    map.get(key)
        .map(|r| r.not_before.saturating_duration_since(now))
        .filter(|d| !d.is_zero())
}

fn count(map: &mut HashMap<String, Record>, key: String, now: Instant, cap: Duration) {
    if !map.contains_key(&key) {
        bound(map, now, FORGET_AFTER, |r| r.last);
    }
    let record = map.entry(key).or_insert(Record {
        failures: 0,
        not_before: now,
        last: now,
    });
    if now.duration_since(record.last) > FORGET_AFTER {
        record.failures = 0;
    }
    fail(record, now, cap);
}

fn fail(record: &mut Record, now: Instant, cap: Duration) {
    record.failures = record.failures.saturating_add(1);
    record.last = now;
    record.not_before = now + delay_after(record.failures, cap);
}

fn take_back(map: &mut HashMap<String, Record>, key: &str, cap: Duration) {
    if let Some(record) = map.get_mut(key) {
        record.failures = record.failures.saturating_sub(1);
        record.not_before = record.last + delay_after(record.failures, cap);
    }
}

/// Makes room for one more entry: those older than `max_age` go first, then the stalest.
fn bound<K: Clone + Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    now: Instant,
    max_age: Duration,
    last: impl Fn(&V) -> Instant,
) {
    if map.len() < MAX_ENTRIES {
        return;
    }
    map.retain(|_, v| now.duration_since(last(v)) < max_age);
    if map.len() >= MAX_ENTRIES {
        if let Some(stalest) = map
            .iter()
            .min_by_key(|(_, v)| last(v))
            .map(|(k, _)| k.clone())
        {
            map.remove(&stalest);
        }
    }
}

/// The wait after `failures` failures: none for the free tries, then 1 s, 2 s, 4 s ... `cap`.
fn delay_after(failures: u32, cap: Duration) -> Duration {
    if failures < FREE_TRIES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_TRIES).min(16);
    Duration::from_secs(1u64 << doublings).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn waits_double_after_three_tries_up_to_the_cap() {
        let waits: Vec<u64> = (1..=13)
            .map(|n| delay_after(n, MAX_ADDRESS_WAIT).as_secs())
            .collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(delay_after(13, MAX_USER_HOLD).as_secs(), 10);
    }

    #[test]
    fn an_address_is_slowed_whole_and_hammering_makes_it_wait_longer() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let (attacker, neighbour) = (ip("2001:db8:1:2:3:4:5:6"), ip("2001:db8:1:2:ffff::1"));
        for n in 0..3 {
            assert!(throttle.begin(attacker, &format!("user{n}"), now).is_ok());
        }
        // The /64 is one client: early, and each early try doubles the wait.
        assert_eq!(
            throttle.begin(neighbour, "other", now),
            Err(Duration::from_secs(2))
        );
        assert_eq!(
            throttle.begin(attacker, "other", now),
            Err(Duration::from_secs(4))
        );
        // An IPv4 client is not in it, and an IPv4-mapped address counts as IPv4.
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), "192.0.2.7");
        assert!(throttle.begin(ip("::ffff:192.0.2.7"), "other", now).is_ok());
    }

    #[test]
    fn parallel_tries_are_counted_before_pam_so_only_the_free_ones_pass() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let passed = (0..256)
            .filter(|_| throttle.begin(ip("192.0.2.1"), "alice", now).is_ok())
            .count();
        assert_eq!(passed, 3);
    }

    #[test]
    fn guesses_from_many_addresses_hold_a_user_back_but_never_lock_her_out() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let home = ip("198.51.100.5");
        assert_eq!(throttle.begin(home, "alice", now), Ok(Duration::ZERO));
        throttle.succeeded(home, "alice", now);
        // Guesses for alice from many addresses slow her name down...
        for n in 0..10u8 {
            let _ = throttle.begin(IpAddr::from([203, 0, 113, n]), "alice", now);
        }
        // ...to a hold of at most ten seconds elsewhere, never a refusal...
        assert_eq!(
            throttle.begin(ip("192.0.2.99"), "alice", now),
            Ok(MAX_USER_HOLD)
        );
        // ...and to none where she signed in before.
        assert_eq!(throttle.begin(home, "Alice", now), Ok(Duration::ZERO));
    }

    #[test]
    fn a_success_or_an_unanswered_try_is_taken_back() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let office = ip("192.0.2.50");
        for n in 0..10 {
            assert!(throttle.begin(office, &format!("user{n}"), now).is_ok());
            throttle.succeeded(office, &format!("user{n}"), now);
        }
        for _ in 0..10 {
            assert!(throttle.begin(office, "bob", now).is_ok());
            throttle.refund(office, "bob");
        }
    }
}
