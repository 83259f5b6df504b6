//! The login decision, start to finish: normalize the token, find the (at most one, in practice)
//! active code with the token's lookup tag, verify it with Argon2id, check its limits and the
//! site policy, and record the use. It runs against any [`LoginStore`] with the time as part of
//! the attempt, so it is tested without root, a clock or libpam; opening the store (and checking
//! its path) is the caller's. Everything the module knows about PAM stays in the module.
#![forbid(unsafe_code)]

use crate::accounts::Accounts;
use crate::code::AppPassword;
use crate::error::Error;
use crate::hash::verify_code;
use crate::policy::Policy;
use crate::scope::Limit;
use crate::store::{Candidate, UseRecord};

/// The PAM service of `apppw-ctl`'s own re-authentication (and the name of its /etc/pam.d file).
/// An app password is never accepted there, so a leaked code cannot be used to mint more.
pub const CTL_SERVICE: &str = "apppw-ctl";

/// The PAM service of the web page's sign-in (apppw-web, docs/WEB.md). Refused for the same
/// reason: a leaked code must not sign in to the page that mints codes.
pub const WEB_SERVICE: &str = "apppw-web";

/// The services where apppw itself asks for the account password. No app password is ever
/// accepted in them.
pub const OWN_SERVICES: [&str; 2] = [CTL_SERVICE, WEB_SERVICE];

/// Whether `service` is one of [`OWN_SERVICES`], in any case: libpam lower-cases service names,
/// but not every caller goes through libpam.
pub fn is_own_service(service: &str) -> bool {
    OWN_SERVICES
        .iter()
        .any(|own| own.eq_ignore_ascii_case(service))
}

/// What the login decision needs from a store: the two things a login reads and writes. The
/// SQLite store implements it; so will every other backend.
pub trait LoginStore {
    /// Active codes of `user` with `lookup_tag`: almost always none or one.
    fn candidates(&self, user: &str, lookup_tag: u32) -> Result<Vec<Candidate>, Error>;
    /// Records a successful login of code `id`, unless one was recorded less than
    /// `record.min_interval` seconds before. Returns whether it wrote anything.
    fn record_use(&self, id: i64, record: &UseRecord<'_>) -> Result<bool, Error>;
}

/// Successful uses of one code closer together than this are recorded once.
pub const RECORD_INTERVAL_SECS: i64 = 60;

/// What the PAM module hands over about one attempt.
pub struct LoginAttempt<'a> {
    /// PAM_USER as given (not necessarily UTF-8).
    pub user: &'a [u8],
    /// PAM_AUTHTOK as given.
    pub token: &'a [u8],
    pub service: Option<&'a str>,
    pub rhost: Option<&'a str>,
    /// The node name of the host the module runs on, recorded with the use: with a shared
    /// store, which host saw the login.
    pub host: Option<&'a str>,
    /// Unix seconds.
    pub now: i64,
}

/// The verdict on an attempt that could be checked.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Accepted {
        id: i64,
        label: String,
        /// Whether the last-use record was written now (false within the record interval or
        /// when the write failed; a failed bookkeeping write never fails a login).
        recorded: Result<bool, String>,
    },
    Rejected(Rejection),
}

/// Why an attempt was refused. None of these carries any part of the token.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Rejection {
    /// The token does not normalize to a code (wrong length, foreign characters, empty).
    NotACode,
    /// The user name is not valid UTF-8 or is empty, so no code can belong to it.
    BadUser,
    /// No active code of this user matches.
    NoMatch,
    /// The service is one where apppw itself asks for the account password ([`OWN_SERVICES`]).
    ServiceRefused,
    /// The site policy does not allow app passwords for this service.
    ServiceNotAllowed,
    /// The code matched, but it belongs to an account that no longer has this user name: the
    /// name was deleted, or now names another account (another uid), or the code was never
    /// bound to an account (a store upgraded while apppw-ctl could not finish).
    AccountGone { id: i64, label: String },
    /// The code matched but one of its limits (or the policy's expiry of unused codes) refused
    /// this login.
    Limited {
        id: i64,
        label: String,
        limit: Limit,
    },
}

impl Rejection {
    pub fn describe(&self) -> &'static str {
        match self {
            Rejection::NotACode => "the password is not shaped like an app password",
            Rejection::BadUser => "the user name cannot hold app passwords",
            Rejection::NoMatch => "no active app password of the user matches",
            Rejection::ServiceRefused => {
                "app passwords are never accepted where apppw asks for the account password (apppw-ctl, apppw-web)"
            }
            Rejection::ServiceNotAllowed => {
                "app passwords are not allowed for this service by the site policy"
            }
            Rejection::AccountGone { .. } => "belongs to a deleted account",
            Rejection::Limited { limit, .. } => limit.describe(),
        }
    }
}

/// Checks one attempt against `store` under `policy`, asking `accounts` whether the code's owner
/// still holds the user name. An error means the store could not be
/// consulted: the caller must fail the login (as unavailable), never accept it.
///
/// The caller opens the store before it calls this, whatever the token, so that a broken store is
/// reported the same way for every attempt.
pub fn check_login(
    store: &impl LoginStore,
    accounts: &impl Accounts,
    policy: &Policy,
    attempt: &LoginAttempt<'_>,
) -> Result<Decision, Error> {
    if attempt.service.is_some_and(is_own_service) {
        return Ok(Decision::Rejected(Rejection::ServiceRefused));
    }
    if !policy.allows_service(attempt.service) {
        return Ok(Decision::Rejected(Rejection::ServiceNotAllowed));
    }
    let user = match std::str::from_utf8(attempt.user) {
        Ok(user) if !user.is_empty() => user,
        _ => return Ok(Decision::Rejected(Rejection::BadUser)),
    };
    let Some(code) = AppPassword::parse(attempt.token) else {
        return Ok(Decision::Rejected(Rejection::NotACode));
    };
    for candidate in store.candidates(user, code.lookup_tag())? {
        if verify_code(&code, &candidate.hash)? {
            // The account and the limits are checked only once the code is proven, so only its
            // holder learns why a login was refused (and a wrong password costs no lookup).
            let owner_now = accounts.uid_of(user)?.map(i64::from);
            if candidate.owner_uid.is_none() || candidate.owner_uid != owner_now {
                return Ok(Decision::Rejected(Rejection::AccountGone {
                    id: candidate.id,
                    label: candidate.label,
                }));
            }
            let limit = match candidate
                .scope
                .check(attempt.service, attempt.rhost, attempt.now)
            {
                Err(limit) => Some(limit),
                Ok(()) => policy
                    .expire_unused
                    .filter(|max| {
                        attempt.now - candidate.last_used.unwrap_or(candidate.created) >= *max
                    })
                    .map(|_| Limit::Unused),
            };
            if let Some(limit) = limit {
                return Ok(Decision::Rejected(Rejection::Limited {
                    id: candidate.id,
                    label: candidate.label,
                    limit,
                }));
            }
            let record = UseRecord {
                now: attempt.now,
                service: attempt.service,
                rhost: attempt.rhost,
                host: attempt.host,
                min_interval: RECORD_INTERVAL_SECS,
            };
            let recorded = store
                .record_use(candidate.id, &record)
                .map_err(|e| e.to_string());
            return Ok(Decision::Accepted {
                id: candidate.id,
                label: candidate.label,
                recorded,
            });
        }
    }
    Ok(Decision::Rejected(Rejection::NoMatch))
}

#[cfg(test)]
mod tests {
    //! The decision against a scripted store: what no real store can be made to do on demand (a
    //! bookkeeping write that fails, a read that fails, two candidates). The decision against real
    //! SQLite files is tested in tests/store.rs.
    use std::cell::RefCell;

    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use zeroize::Zeroizing;

    use super::*;
    use crate::hash::{HashParams, hash_code};
    use crate::scope::Scope;

    const NOW: i64 = 1_800_000_000;

    /// Returns `candidates` for any lookup and answers `record_use` with `record`, noting every
    /// call.
    struct Scripted {
        candidates: Result<Vec<Candidate>, ()>,
        record: Result<bool, ()>,
        looked_up: RefCell<Vec<(String, u32)>>,
        recorded: RefCell<Vec<i64>>,
    }

    fn storage_error() -> Error {
        Error::Storage {
            path: "/var/lib/apppw/apppw.db".into(),
            reason: "disk I/O error".into(),
        }
    }

    impl LoginStore for Scripted {
        fn candidates(&self, user: &str, lookup_tag: u32) -> Result<Vec<Candidate>, Error> {
            self.looked_up.borrow_mut().push((user.into(), lookup_tag));
            match &self.candidates {
                Ok(list) => Ok(list
                    .iter()
                    .map(|c| Candidate {
                        id: c.id,
                        label: c.label.clone(),
                        hash: c.hash.clone(),
                        scope: c.scope.clone(),
                        created: c.created,
                        last_used: c.last_used,
                        owner_uid: c.owner_uid,
                    })
                    .collect()),
                Err(()) => Err(storage_error()),
            }
        }

        fn record_use(&self, id: i64, _record: &UseRecord<'_>) -> Result<bool, Error> {
            self.recorded.borrow_mut().push(id);
            self.record.map_err(|()| storage_error())
        }
    }

    fn code(seed: u64) -> AppPassword {
        AppPassword::generate(&mut StdRng::seed_from_u64(seed))
    }

    fn candidate(id: i64, code: &AppPassword, scope: Scope) -> Candidate {
        let cheap = HashParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        Candidate {
            id,
            label: format!("code {id}"),
            hash: Zeroizing::new(
                hash_code(code, &cheap, &[u8::try_from(id).unwrap(); 16]).unwrap(),
            ),
            scope,
            created: NOW - 100,
            last_used: None,
            owner_uid: Some(1000),
        }
    }

    /// A user database of one entry, `alice` with `uid`; or one that cannot be asked.
    struct Table(Result<Option<u32>, ()>);

    const ALICE_IS_1000: Table = Table(Ok(Some(1000)));

    impl Accounts for Table {
        fn uid_of(&self, name: &str) -> Result<Option<u32>, Error> {
            match self.0 {
                Ok(uid) => Ok(if name == "alice" { uid } else { None }),
                Err(()) => Err(Error::AccountLookup {
                    user: name.into(),
                    reason: "LDAP server down".into(),
                }),
            }
        }
    }

    fn scripted(candidates: Vec<Candidate>, record: Result<bool, ()>) -> Scripted {
        Scripted {
            candidates: Ok(candidates),
            record,
            looked_up: RefCell::default(),
            recorded: RefCell::default(),
        }
    }

    fn attempt<'a>(token: &'a [u8], service: Option<&'a str>) -> LoginAttempt<'a> {
        LoginAttempt {
            host: None,
            user: b"alice",
            token,
            service,
            rhost: Some("192.0.2.7"),
            now: NOW,
        }
    }

    #[test]
    fn the_matching_candidate_is_accepted_and_recorded_once() {
        let right = code(1);
        let store = scripted(
            vec![
                candidate(1, &code(2), Scope::default()),
                candidate(2, &right, Scope::default()),
            ],
            Ok(true),
        );
        let typed = right.display_grouped();
        let decision = check_login(
            &store,
            &ALICE_IS_1000,
            &Policy::default(),
            &attempt(typed.as_bytes(), Some("imap")),
        );
        assert_eq!(
            decision.unwrap(),
            Decision::Accepted {
                id: 2,
                label: "code 2".into(),
                recorded: Ok(true)
            }
        );
        assert_eq!(
            *store.looked_up.borrow(),
            [("alice".to_string(), right.lookup_tag())]
        );
        assert_eq!(*store.recorded.borrow(), [2]);
    }

    #[test]
    fn a_failed_bookkeeping_write_still_accepts_and_says_why() {
        let right = code(1);
        let store = scripted(vec![candidate(7, &right, Scope::default())], Err(()));
        let decision = check_login(
            &store,
            &ALICE_IS_1000,
            &Policy::default(),
            &attempt(right.as_bytes(), None),
        );
        match decision.unwrap() {
            Decision::Accepted {
                id: 7,
                recorded: Err(why),
                ..
            } => {
                assert!(why.contains("disk I/O error"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_store_that_cannot_be_read_is_an_error_never_a_verdict() {
        let right = code(1);
        let store = Scripted {
            candidates: Err(()),
            ..scripted(Vec::new(), Ok(true))
        };
        assert!(matches!(
            check_login(
                &store,
                &ALICE_IS_1000,
                &Policy::default(),
                &attempt(right.as_bytes(), None)
            ),
            Err(Error::Storage { .. })
        ));
    }

    #[test]
    fn refusals_before_the_store_is_asked() {
        let right = code(1);
        let store = scripted(vec![candidate(1, &right, Scope::default())], Ok(true));
        let closed = Policy {
            allowed_services: vec!["imap".into()],
            ..Policy::default()
        };
        for (policy, attempt, expected) in [
            (
                &Policy::default(),
                attempt(right.as_bytes(), Some(CTL_SERVICE)),
                Rejection::ServiceRefused,
            ),
            (
                &Policy::default(),
                attempt(right.as_bytes(), Some(WEB_SERVICE)),
                Rejection::ServiceRefused,
            ),
            (
                &Policy::default(),
                attempt(right.as_bytes(), Some("APPPW-Web")),
                Rejection::ServiceRefused,
            ),
            (
                &closed,
                attempt(right.as_bytes(), Some("sshd")),
                Rejection::ServiceNotAllowed,
            ),
            (
                &Policy::default(),
                LoginAttempt {
                    host: None,
                    user: b"",
                    ..attempt(right.as_bytes(), None)
                },
                Rejection::BadUser,
            ),
            (
                &Policy::default(),
                LoginAttempt {
                    host: None,
                    user: b"\xffalice",
                    ..attempt(right.as_bytes(), None)
                },
                Rejection::BadUser,
            ),
            (
                &Policy::default(),
                attempt(b"the account password", None),
                Rejection::NotACode,
            ),
        ] {
            assert_eq!(
                check_login(&store, &ALICE_IS_1000, policy, &attempt).unwrap(),
                Decision::Rejected(expected)
            );
        }
        assert!(store.looked_up.borrow().is_empty());
        assert!(store.recorded.borrow().is_empty());
    }

    #[test]
    fn a_limit_refuses_only_a_verified_code_and_records_nothing() {
        let right = code(1);
        let imap_only = Scope {
            services: vec!["imap".into()],
            ..Scope::default()
        };
        let store = scripted(vec![candidate(3, &right, imap_only)], Ok(true));
        let refused = check_login(
            &store,
            &ALICE_IS_1000,
            &Policy::default(),
            &attempt(right.as_bytes(), Some("smtp")),
        );
        assert_eq!(
            refused.unwrap(),
            Decision::Rejected(Rejection::Limited {
                id: 3,
                label: "code 3".into(),
                limit: Limit::Service
            })
        );
        let wrong = code(9);
        let unmatched = check_login(
            &store,
            &ALICE_IS_1000,
            &Policy::default(),
            &attempt(wrong.as_bytes(), Some("smtp")),
        );
        assert_eq!(unmatched.unwrap(), Decision::Rejected(Rejection::NoMatch));
        assert!(store.recorded.borrow().is_empty());
    }

    #[test]
    fn a_code_of_a_deleted_or_replaced_account_never_logs_in() {
        let right = code(1);
        let unbound = Candidate {
            owner_uid: None,
            ..candidate(2, &code(2), Scope::default())
        };
        let store = scripted(
            vec![candidate(1, &right, Scope::default()), unbound],
            Ok(true),
        );
        let gone = Decision::Rejected(Rejection::AccountGone {
            id: 1,
            label: "code 1".into(),
        });
        for accounts in [Table(Ok(Some(1001))), Table(Ok(None))] {
            let decision = check_login(
                &store,
                &accounts,
                &Policy::default(),
                &attempt(right.as_bytes(), None),
            );
            assert_eq!(decision.unwrap(), gone);
        }
        let never_bound = check_login(
            &store,
            &ALICE_IS_1000,
            &Policy::default(),
            &attempt(code(2).as_bytes(), None),
        );
        assert_eq!(
            never_bound.unwrap(),
            Decision::Rejected(Rejection::AccountGone {
                id: 2,
                label: "code 2".into()
            })
        );
        assert!(store.recorded.borrow().is_empty());
        let outage = check_login(
            &store,
            &Table(Err(())),
            &Policy::default(),
            &attempt(right.as_bytes(), None),
        );
        assert!(matches!(outage, Err(Error::AccountLookup { .. })));
        // A wrong password never costs a lookup, even when the database is down.
        let wrong = check_login(
            &store,
            &Table(Err(())),
            &Policy::default(),
            &attempt(code(9).as_bytes(), None),
        );
        assert_eq!(wrong.unwrap(), Decision::Rejected(Rejection::NoMatch));
    }
}
