//! Server-side sessions. The browser holds a random id in the `__Host-apppw` cookie; the front
//! keeps only its BLAKE2b digest, so a memory dump of the front does not hand out live cookies.
//! Each session owns its connection to a helper; dropping the session closes it, and the helper
//! (and with it the user's privilege) ends. Sessions end after 15 idle minutes or 8 hours, at
//! sign-out, or when the helper goes; there are at most `MAX_SESSIONS`, `MAX_PER_USER` per user
//! and `MAX_UNFINISHED` sign-ins waiting on a PAM step.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use blake2::{Blake2b512, Digest};
use rand::TryRngCore;
use rand::rngs::OsRng;

use crate::helper::Helper;

pub const IDLE_LIMIT: Duration = Duration::from_secs(15 * 60);
pub const ABSOLUTE_LIMIT: Duration = Duration::from_secs(8 * 60 * 60);
pub const MAX_SESSIONS: usize = 512;
pub const MAX_PER_USER: usize = 8;
pub const MAX_UNFINISHED: usize = 16;
/// A sign-in still waiting on a PAM step after this long is over (the helper gives up after
/// 120 s too).
pub const UNFINISHED_LIMIT: Duration = Duration::from_secs(120);

pub type Key = [u8; 64];

/// A PAM step the page is waiting on, and what to do once PAM says yes.
pub enum Pending {
    /// The sign-in asked more (a second factor).
    SignIn,
    /// A password confirmation asked more; then run these words.
    Confirm { then: Vec<String> },
}

/// What a session knows, behind its own lock (one request at a time per session).
pub struct State {
    pub helper: Helper,
    /// The name typed at sign-in; once signed in, the account's name as the helper reported it.
    pub user: String,
    pub signed_in: bool,
    /// The site's allowed services (empty: any), from the helper at sign-in.
    pub services: Vec<String>,
    /// When PAM last confirmed the password (the helper keeps the authoritative clock).
    pub confirmed: Instant,
    pub pending: Option<Pending>,
    /// The question `pending` waits on, and whether its answer may be shown as typed.
    pub prompt: (String, bool),
    /// What PAM said at sign-in or confirmation (a password about to expire, say), shown on the
    /// next page.
    pub notices: Vec<String>,
    /// The address whose try the throttle counted for the sign-in or confirmation under way,
    /// to take it back there when PAM says yes.
    pub counted_from: std::net::IpAddr,
}

pub struct Session {
    /// The form token every POST must carry.
    pub token: String,
    pub started: Instant,
    last_seen: Mutex<Instant>,
    /// Mirrors `State::signed_in` for counting without taking the session's lock.
    user: Mutex<Option<String>>,
    pub state: tokio::sync::Mutex<State>,
}

impl Session {
    fn expired(&self, now: Instant) -> bool {
        let last = *self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        is_over(now, self.started, last, self.user().is_some())
    }
}

/// Whether a session started at `started`, last used at `last`, is over at `now`.
fn is_over(now: Instant, started: Instant, last: Instant, signed_in: bool) -> bool {
    let age = now.duration_since(started);
    now.duration_since(last) > IDLE_LIMIT
        || age > ABSOLUTE_LIMIT
        || (!signed_in && age > UNFINISHED_LIMIT)
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<Key, Arc<Session>>>,
}

/// Why a new session cannot start now.
#[derive(Debug)]
pub enum Full {
    Everyone,
    Unfinished,
}

/// 32 random bytes in hex: a cookie id or a form token.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The kernel's generator; without it no session can be safe, so none starts.
    OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random number generator failed");
    hex(&bytes)
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, b| {
            let _ = write!(text, "{b:02x}");
            text
        })
}

fn key_of(id: &str) -> Key {
    Blake2b512::digest(id.as_bytes()).into()
}

impl Sessions {
    /// A new session around `state`: its cookie id.
    pub fn start(&self, state: State) -> Result<(String, Arc<Session>), Full> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, s| !s.expired(now));
        if map.len() >= MAX_SESSIONS {
            return Err(Full::Everyone);
        }
        if !state.signed_in {
            let unfinished = map.values().filter(|s| s.user().is_none()).count();
            if unfinished >= MAX_UNFINISHED {
                return Err(Full::Unfinished);
            }
        }
        let signed_in_user = state.signed_in.then(|| state.user.clone());
        let session = Arc::new(Session {
            token: random_token(),
            started: now,
            last_seen: Mutex::new(now),
            user: Mutex::new(None),
            state: tokio::sync::Mutex::new(state),
        });
        let id = random_token();
        map.insert(key_of(&id), session.clone());
        drop(map);
        if let Some(user) = signed_in_user {
            self.mark_signed_in(&session, &user);
        }
        Ok((id, session))
    }

    /// The live session with cookie id `id`, touched.
    pub fn find(&self, id: &str) -> Option<Arc<Session>> {
        let now = Instant::now();
        let key = key_of(id);
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let session = map.get(&key)?.clone();
        if session.expired(now) {
            map.remove(&key);
            return None;
        }
        *session
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = now;
        Some(session)
    }

    /// Ends the session with cookie id `id` (sign-out, or the helper went).
    pub fn end(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key_of(id));
    }

    /// At sign-in: gives the session a new cookie id (the one a pre-sign-in page could have
    /// seen stops working), counts it for `user`, and ends that user's oldest sessions beyond
    /// `MAX_PER_USER`. Returns the new id.
    pub fn signed_in(&self, old_id: &str, session: &Arc<Session>, user: &str) -> String {
        let id = random_token();
        {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.remove(&key_of(old_id));
            map.insert(key_of(&id), session.clone());
        }
        self.mark_signed_in(session, user);
        id
    }

    fn mark_signed_in(&self, session: &Arc<Session>, user: &str) {
        *session.user.lock().unwrap_or_else(PoisonError::into_inner) = Some(user.to_owned());
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let mut theirs: Vec<(Key, Instant)> = map
            .iter()
            .filter(|(_, s)| s.user().as_deref() == Some(user))
            .map(|(k, s)| (*k, s.started))
            .collect();
        if theirs.len() > MAX_PER_USER {
            theirs.sort_by_key(|(_, started)| *started);
            for (key, _) in &theirs[..theirs.len() - MAX_PER_USER] {
                map.remove(key);
            }
        }
    }

    /// Drops expired sessions (their helpers then end too). Run every minute.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, s| !s.expired(now));
    }
}

impl Session {
    fn user(&self) -> Option<String> {
        self.user
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Constant-time comparison of a form token with the session's.
pub fn same_token(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_idle_after_fifteen_minutes_unfinished_after_two_and_always_after_eight_hours() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        assert!(!is_over(at(119), start, start, false));
        assert!(is_over(at(121), start, at(120), false));
        assert!(!is_over(at(121), start, at(120), true));
        assert!(is_over(at(16 * 60), start, start, true));
        assert!(!is_over(at(7 * 3600), start, at(7 * 3600 - 60), true));
        assert!(is_over(at(8 * 3600 + 1), start, at(8 * 3600), true));
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a[..63], &a));
        assert!(!same_token("", &a));
    }
}
