//! The PostgreSQL store one auth process keeps open between logins. The module stays loaded in
//! long-lived auth processes (it is linked `-z nodelete`), so a connection opened by one login
//! can serve the next: one connection per process, not one per login (issue 16: 10,000 logins
//! through Dovecot keep the server's connections at its auth worker count).
//!
//! What keeps this safe inside someone else's process:
//! - **Forks.** The kept store remembers the pid that opened it. A child of a fork never uses
//!   or closes its parent's connection (a Terminate or a half-read reply on a shared socket would
//!   break the parent's session, and tokio's I/O driver would deregister the parent's epoll
//!   entries): it forgets it, leaking that memory and the socket's descriptor once, and opens its
//!   own.
//! - **Threads.** One login at a time uses it (a mutex, never waited for): a login that finds it
//!   in use opens a store of its own for that call. A panic while it was held (the lock is then
//!   poisoned) drops it and goes on.
//! - **Outages.** A kept connection is asked whether it still works (`SELECT 1`) before each
//!   login; if not, a new one is opened, within the connect deadline, or the login is
//!   PAM_AUTHINFO_UNAVAIL. So during an outage every attempt, whatever its token, is answered as
//!   an outage, never as a wrong password, and the first login after the server is back works.
//!   A login whose store call fails drops the connection; nothing is retried after a failed call.
//! - **Configuration changes.** A kept store for another URL than store.conf's now (a changed
//!   password included) is dropped, and so is one kept when store.conf now names SQLite.
//! - Nothing runs between logins: the store's runtime has no thread.
#![forbid(unsafe_code)]

use std::sync::{Mutex, MutexGuard, TryLockError};

use apppw_core::store::{PgStore, PgTarget};
use apppw_core::{Access, Error, Store};

struct Kept {
    pid: u32,
    target: PgTarget,
    store: Store,
}

static KEPT: Mutex<Option<Kept>> = Mutex::new(None);

/// The lock, unless another thread holds it. A poisoned lock is taken and emptied.
fn lock() -> Option<MutexGuard<'static, Option<Kept>>> {
    match KEPT.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::WouldBlock) => None,
        Err(TryLockError::Poisoned(poisoned)) => {
            let mut guard = poisoned.into_inner();
            forget_or_drop(guard.take());
            KEPT.clear_poison();
            Some(guard)
        }
    }
}

/// Closes a kept store of this process; forgets one inherited through a fork.
fn forget_or_drop(kept: Option<Kept>) {
    if let Some(kept) = kept {
        if kept.pid == std::process::id() {
            drop(kept);
        } else {
            std::mem::forget(kept);
        }
    }
}

/// Runs `login` with a store for `target`: the kept one when it is this process's, for this URL
/// and still answering, else a new one (kept for the next login if the login went through).
pub fn with_login_store<T>(
    target: &PgTarget,
    login: impl FnOnce(&Store) -> Result<T, Error>,
) -> Result<T, Error> {
    let Some(mut guard) = lock() else {
        return login(&open(target)?);
    };
    let pid = std::process::id();
    let kept = match guard.take() {
        Some(kept) if kept.pid == pid && kept.target.same_as(target) && kept.store.is_usable() => {
            match &kept.store {
                Store::Postgres(store) if store.ping().is_ok() => Some(kept),
                _ => None,
            }
        }
        other => {
            forget_or_drop(other);
            None
        }
    };
    let kept = match kept {
        Some(kept) => kept,
        None => Kept {
            pid,
            target: target.clone(),
            store: open(target)?,
        },
    };
    let answer = login(&kept.store)?;
    *guard = Some(kept);
    Ok(answer)
}

/// Closes the kept connection, if any: store.conf no longer names PostgreSQL.
pub fn release() {
    if let Some(mut guard) = lock() {
        forget_or_drop(guard.take());
    }
}

fn open(target: &PgTarget) -> Result<Store, Error> {
    PgStore::open(target, Access::Login).map(Store::Postgres)
}
