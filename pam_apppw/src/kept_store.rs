//! The PostgreSQL store one auth process keeps open between logins. The module stays loaded in
//! long-lived auth processes (it is linked `-z nodelete`), so a connection opened by one login
//! can serve the next: one connection per process, not one per login (issue 16: 10,000 logins
//! through Dovecot keep the server's connections at its auth worker count).
//!
//! What keeps this safe inside someone else's process:
//! - **Forks.** The kept store remembers the pid that opened it. A child of a fork never uses
//!   or closes its parent's connection (a Terminate or a half-read reply on a shared socket would
//!   break the parent's session, and tokio's I/O driver would deregister the parent's epoll
//!   entries): it forgets it, leaking only that memory once, and opens its own.
//! - **Threads.** One login at a time uses it (a mutex). A login that finds it in use, or the
//!   lock poisoned, opens a store of its own for that call rather than wait.
//! - **Outages.** A store whose connection failed or timed out is dropped; a kept connection that
//!   fails at its first call is replaced once at once (the server may have restarted since the
//!   last login), so the next login after a restart works. A new connection that fails is the
//!   login's answer: PAM_AUTHINFO_UNAVAIL.
//! - **Configuration changes.** A kept store for another URL than store.conf's now is dropped.
//! - Nothing runs between logins: the store's runtime has no thread.
#![forbid(unsafe_code)]

use std::sync::{Mutex, TryLockError};

use apppw_core::store::{PgStore, PgTarget};
use apppw_core::{Access, Error, Store};

struct Kept {
    pid: u32,
    target: PgTarget,
    store: Store,
}

static KEPT: Mutex<Option<Kept>> = Mutex::new(None);

/// Runs `login` with a store for `target`: the kept one when it is this process's, for this URL
/// and usable, else a new one (kept for the next login).
pub fn with_login_store<T>(
    target: &PgTarget,
    login: impl Fn(&Store) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut guard = match KEPT.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => {
            let store = open(target)?;
            return login(&store);
        }
    };
    let pid = std::process::id();
    let reused = match guard.take() {
        Some(kept) if kept.pid != pid => {
            // A fork's child: the connection is the parent's.
            std::mem::forget(kept);
            None
        }
        Some(kept) if kept.target.same_as(target) && kept.store.is_usable() => Some(kept),
        Some(_) | None => None,
    };
    let was_reused = reused.is_some();
    let kept = match reused {
        Some(kept) => kept,
        None => Kept {
            pid,
            target: target.clone(),
            store: open(target)?,
        },
    };
    match login(&kept.store) {
        Ok(answer) => {
            *guard = Some(kept);
            Ok(answer)
        }
        // The server may have restarted since the kept connection's last use: one new
        // connection, at once.
        Err(Error::DatabaseUnavailable { .. }) if was_reused => {
            drop(kept);
            let fresh = Kept {
                pid,
                target: target.clone(),
                store: open(target)?,
            };
            let answer = login(&fresh.store)?;
            *guard = Some(fresh);
            Ok(answer)
        }
        Err(e) => Err(e),
    }
}

fn open(target: &PgTarget) -> Result<Store, Error> {
    PgStore::open(target, Access::Login).map(Store::Postgres)
}
