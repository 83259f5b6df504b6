//! What each entry point does: read the PAM items, open the store, hand both to the core, report
//! back. The decision itself is `apppw_core::login::check_login`.
#![forbid(unsafe_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use apppw_core::accounts::SystemAccounts;
use apppw_core::config::load_policy;
use apppw_core::login::{LoginAttempt, check_login};
use apppw_core::store::StoreTarget;
use apppw_core::store_config::{StoreUser, resolve_store};
use apppw_core::{Access, Store};
use pamsm::{Pam, PamError, PamLibExt};

use crate::options::Options;
use crate::outcome::{Failure, Items, Report};

/// `pam_sm_authenticate`.
pub fn authenticate<'a>(pamh: &'a Pam, args: &[String]) -> Result<Report<'a>, Failure> {
    let options = Options::parse(args).map_err(Failure::BadOptions)?;
    assert!(
        !options.panic_for_tests,
        "fault injected by the test option fault=panic"
    );
    // A broken configuration fails closed, like a bad option: the administrator must fix it.
    let policy = load_policy(&options.parsed.conf).map_err(Failure::BadConfig)?;
    let user = pamh
        .get_user(None)
        .map_err(|e| Failure::Pam(e, "reading the user name"))?
        .map(std::ffi::CStr::to_bytes)
        .unwrap_or_default();
    let token = pamh
        .get_authtok(None)
        .map_err(|e| Failure::Pam(e, "reading the password"))?
        .map(std::ffi::CStr::to_bytes)
        .unwrap_or_default();
    let service = text_item(pamh.get_service());
    let rhost = text_item(pamh.get_rhost());
    let ruser = text_item(pamh.get_ruser());
    let node_name = node_name();
    let attempt = LoginAttempt {
        user,
        token,
        service,
        rhost,
        host: node_name.as_deref(),
        now: unix_now(),
    };
    // The store is opened whatever the token, so that a broken store is reported the same way for
    // every attempt.
    let target = resolve_store(
        options.parsed.db.as_deref(),
        &options.parsed.store_conf,
        StoreUser::Module,
    )
    .map_err(Failure::BadConfig)?;
    let decide = |store: &Store| check_login(store, &SystemAccounts, &policy, &attempt);
    let decision = match &target {
        StoreTarget::Sqlite(path) => {
            crate::kept_store::release();
            let store = Store::open(path, Access::Login).map_err(Failure::Store)?;
            decide(&store)
        }
        StoreTarget::Postgres(target) => crate::kept_store::with_login_store(target, decide),
    }
    .map_err(Failure::Store)?;
    Ok(Report::Decided {
        decision,
        items: Items {
            user,
            service,
            rhost,
            ruser,
        },
        debug: options.parsed.debug,
    })
}

/// Every entry point but `authenticate`: nothing to do but still refuse bad options, so a
/// misconfigured line fails closed in every group.
pub fn no_op(args: &[String], answer: PamError) -> Result<Report<'static>, Failure> {
    Options::parse(args).map_err(Failure::BadOptions)?;
    Ok(Report::Answer(answer))
}

/// A PAM string item as UTF-8, or `None` when unset, unreadable or not UTF-8 (a scope can then
/// only fail to match, never match by accident).
fn text_item(item: Result<Option<&std::ffi::CStr>, PamError>) -> Option<&str> {
    item.ok().flatten().and_then(|s| s.to_str().ok())
}

/// This host's node name (`uname -n`), recorded with each use: with a store shared by several
/// hosts, it says which one saw the login.
fn node_name() -> Option<String> {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| u.nodename().to_str().map(str::to_owned))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
