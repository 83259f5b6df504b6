//! The core against real SQLite files: minting, checking, renaming, revoking, and opening stores
//! that are not what they should be.

use std::path::{Path, PathBuf};

use apppw_core::error::Error;
use apppw_core::hash::HashParams;
use apppw_core::login::{Decision, LoginAttempt, Rejection, check_login};
use apppw_core::mint::{MintRequest, Minted, mint};
use apppw_core::schema::{APPLICATION_ID, LATEST_VERSION, MIGRATIONS};
use apppw_core::scope::{Limit, Scope};
use apppw_core::{Access, CodeRef, Label, Policy, Store};
use rand::SeedableRng;
use rand::rngs::StdRng;

const NOW: i64 = 1_800_000_000;

fn cheap_policy() -> Policy {
    Policy {
        max_active_codes: 3,
        hash_params: HashParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..Policy::default()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    rng: StdRng,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        // Stores live in directories nobody else can enter.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let path = dir.path().join("apppw.db");
        Fixture {
            _dir: dir,
            path,
            rng: StdRng::seed_from_u64(42),
        }
    }

    fn manage(&self) -> Store {
        Store::open(&self.path, Access::Manage { create: true }).unwrap()
    }

    fn mint(&mut self, user: &str, label: &str) -> Minted {
        let mut store = self.manage();
        mint_in(&mut store, user, label, &mut self.rng).unwrap()
    }

    fn login(&self, user: &str, token: &[u8]) -> Decision {
        let attempt = LoginAttempt {
            user: user.as_bytes(),
            token,
            service: Some("imap"),
            rhost: Some("192.0.2.7"),
            now: NOW + 5,
        };
        check_login(&self.path, &Policy::default(), &attempt).unwrap()
    }
}

fn mint_in(store: &mut Store, user: &str, label: &str, rng: &mut StdRng) -> Result<Minted, Error> {
    let label = Label::new(label).unwrap();
    let request = MintRequest {
        user,
        label: &label,
        created_by: "root (uid 0)",
        scope: &Scope::default(),
    };
    mint(store, &request, &cheap_policy(), NOW, rng)
}

/// The login path checks that the store's directories belong to root, which the temporary
/// directories of these tests only do when they run as root (as in CI).
fn running_as_root() -> bool {
    if nix::unistd::getuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must run these tests as root"
    );
    eprintln!("SKIPPED: login-path tests need root (the store's directory must be root's)");
    false
}

fn accepted_id(decision: &Decision) -> Option<i64> {
    match decision {
        Decision::Accepted { id, .. } => Some(*id),
        Decision::Rejected(_) => None,
    }
}

#[test]
fn a_minted_code_logs_in_in_any_typing_and_only_for_its_user() {
    if !running_as_root() {
        return;
    }
    let mut f = Fixture::new();
    let minted = f.mint("alice", "Phone mail");
    let shown = minted.code.display_grouped();
    assert_eq!(
        accepted_id(&f.login("alice", shown.as_bytes())),
        Some(minted.id)
    );
    assert_eq!(
        accepted_id(&f.login("alice", shown.to_uppercase().as_bytes())),
        Some(minted.id)
    );
    assert_eq!(
        accepted_id(&f.login("alice", minted.code.as_bytes())),
        Some(minted.id)
    );
    assert_eq!(
        f.login("bob", shown.as_bytes()),
        Decision::Rejected(Rejection::NoMatch)
    );
    assert_eq!(
        f.login("alice", b""),
        Decision::Rejected(Rejection::NotACode)
    );
    assert_eq!(
        f.login("alice", b"0000 0000 0000 0000"),
        Decision::Rejected(Rejection::NoMatch)
    );
}

#[test]
fn the_apppw_ctl_service_never_accepts_a_code() {
    if !running_as_root() {
        return;
    }
    let mut f = Fixture::new();
    let minted = f.mint("alice", "Phone");
    let attempt = LoginAttempt {
        user: b"alice",
        token: minted.code.as_bytes(),
        service: Some("apppw-ctl"),
        rhost: None,
        now: NOW,
    };
    assert_eq!(
        check_login(&f.path, &Policy::default(), &attempt).unwrap(),
        Decision::Rejected(Rejection::ServiceRefused)
    );
}

#[test]
fn last_use_is_recorded_at_most_once_a_minute() {
    if !running_as_root() {
        return;
    }
    let mut f = Fixture::new();
    let minted = f.mint("alice", "Phone");
    for (now, expect_written) in [(NOW, true), (NOW + 30, false), (NOW + 61, true)] {
        let attempt = LoginAttempt {
            user: b"alice",
            token: minted.code.as_bytes(),
            service: Some("smtp"),
            rhost: Some("2001:db8::1"),
            now,
        };
        match check_login(&f.path, &Policy::default(), &attempt).unwrap() {
            Decision::Accepted { recorded, .. } => assert_eq!(recorded, Ok(expect_written)),
            other => panic!("{other:?}"),
        }
    }
    let listed = f.manage().list("alice", false).unwrap();
    let last = listed[0].last_used.clone().unwrap();
    assert_eq!(last.time, NOW + 61);
    assert_eq!(last.service.as_deref(), Some("smtp"));
    assert_eq!(last.rhost.as_deref(), Some("2001:db8::1"));
    assert_eq!(listed[0].use_count, 2);
}

#[test]
fn revoked_codes_stop_working_and_keep_their_row() {
    if !running_as_root() {
        return;
    }
    let mut f = Fixture::new();
    let phone = f.mint("alice", "Phone");
    let laptop = f.mint("alice", "Laptop");
    let printer = f.mint("alice", "Printer");
    let mut store = f.manage();
    store
        .revoke("alice", &CodeRef::Id(phone.id), NOW + 1, "root (uid 0)")
        .unwrap();
    store
        .revoke(
            "alice",
            &CodeRef::parse("Laptop").unwrap(),
            NOW + 2,
            "alice (uid 1000)",
        )
        .unwrap();
    assert_eq!(
        f.login("alice", phone.code.as_bytes()),
        Decision::Rejected(Rejection::NoMatch)
    );
    assert_eq!(
        f.login("alice", laptop.code.as_bytes()),
        Decision::Rejected(Rejection::NoMatch)
    );
    assert_eq!(
        accepted_id(&f.login("alice", printer.code.as_bytes())),
        Some(printer.id)
    );

    let all = store.list("alice", true).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].revoked, Some(NOW + 1));
    assert_eq!(all[0].created_by.as_deref(), Some("root (uid 0)"));
    assert_eq!(all[1].revoked_by.as_deref(), Some("alice (uid 1000)"));
    assert_eq!(store.list("alice", false).unwrap().len(), 1);

    let gone = store
        .revoke_all(Some("alice"), NOW + 3, "root (uid 0)")
        .unwrap();
    assert_eq!(
        gone.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![printer.id]
    );
    assert_eq!(
        f.login("alice", printer.code.as_bytes()),
        Decision::Rejected(Rejection::NoMatch)
    );
    assert!(
        store
            .revoke_all(Some("alice"), NOW + 4, "root (uid 0)")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn hashes_are_wiped_on_revocation() {
    let mut f = Fixture::new();
    let phone = f.mint("alice", "Phone");
    f.manage()
        .revoke("alice", &CodeRef::Id(phone.id), NOW, "root (uid 0)")
        .unwrap();
    let conn = rusqlite::Connection::open(&f.path).unwrap();
    let hash: Option<String> = conn
        .query_row(
            "SELECT hash FROM app_passwords WHERE id = ?1",
            [phone.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(hash, None);
}

#[test]
fn users_cannot_touch_each_others_codes_by_id() {
    if !running_as_root() {
        return;
    }
    let mut f = Fixture::new();
    let alices = f.mint("alice", "Phone");
    let mut store = f.manage();
    let err = store
        .revoke("bob", &CodeRef::Id(alices.id), NOW, "root (uid 0)")
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchCode { .. }), "{err}");
    let err = store
        .rename("bob", &CodeRef::Id(alices.id), &Label::new("mine").unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchCode { .. }), "{err}");
    assert_eq!(
        accepted_id(&f.login("alice", alices.code.as_bytes())),
        Some(alices.id)
    );
}

#[test]
fn labels_are_unique_among_active_codes_and_limits_hold() {
    let mut f = Fixture::new();
    let first = f.mint("alice", "Phone");
    let mut store = f.manage();
    let err = mint_in(&mut store, "alice", "Phone", &mut f.rng)
        .err()
        .unwrap();
    assert!(matches!(err, Error::LabelTaken { .. }), "{err}");
    // Another user may use the same label; a revoked label may be reused.
    mint_in(&mut store, "bob", "Phone", &mut f.rng).unwrap();
    store
        .revoke("alice", &CodeRef::Id(first.id), NOW, "root (uid 0)")
        .unwrap();
    mint_in(&mut store, "alice", "Phone", &mut f.rng).unwrap();

    mint_in(&mut store, "alice", "Two", &mut f.rng).unwrap();
    mint_in(&mut store, "alice", "Three", &mut f.rng).unwrap();
    let err = mint_in(&mut store, "alice", "Four", &mut f.rng)
        .err()
        .unwrap();
    assert!(matches!(err, Error::TooManyCodes { limit: 3, .. }), "{err}");
    assert_eq!(store.list("alice", false).unwrap().len(), 3);
}

#[test]
fn rename_changes_only_the_label() {
    if !running_as_root() {
        return;
    }
    let mut f = Fixture::new();
    let phone = f.mint("alice", "Phone");
    f.mint("alice", "Laptop");
    let mut store = f.manage();
    let err = store
        .rename(
            "alice",
            &CodeRef::Id(phone.id),
            &Label::new("Laptop").unwrap(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::LabelTaken { .. }));
    let renamed = store
        .rename(
            "alice",
            &CodeRef::Id(phone.id),
            &Label::new("Desktop Outlook").unwrap(),
        )
        .unwrap();
    assert_eq!(renamed.label, "Desktop Outlook");
    assert_eq!(
        accepted_id(&f.login("alice", phone.code.as_bytes())),
        Some(phone.id)
    );
}

#[test]
fn every_older_schema_version_upgrades_to_the_latest() {
    for start in 0..LATEST_VERSION {
        let f = Fixture::new();
        {
            std::fs::File::create(&f.path).unwrap();
            let mut conn = rusqlite::Connection::open(&f.path).unwrap();
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .unwrap();
            MIGRATIONS.to_version(&mut conn, start as usize).unwrap();
            if start >= 1 {
                // A row as version 1 wrote it.
                conn.execute(
                    "INSERT INTO app_passwords (user, label, lookup_tag, hash, created)
                     VALUES ('alice', 'Old phone', 7, '$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA', 5)",
                    [],
                )
                .unwrap();
            }
        }
        if start > 0 {
            let err = Store::open(&f.path, Access::Login).err().unwrap();
            assert!(matches!(err, Error::SchemaOutdated { .. }), "{err}");
        }
        drop(Store::open(&f.path, Access::Manage { create: false }).unwrap());
        let conn = rusqlite::Connection::open(&f.path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, LATEST_VERSION);
        let store = Store::open(&f.path, Access::Login).unwrap();
        let rows = store.list("alice", true).unwrap();
        if start >= 1 {
            assert_eq!(
                rows.len(),
                1,
                "rows survive the upgrade from version {start}"
            );
            assert_eq!(rows[0].label, "Old phone");
            assert_eq!(rows[0].created_by, None);
        } else {
            assert!(rows.is_empty());
        }
    }
}

fn open_error(path: &Path, access: Access) -> Error {
    Store::open(path, access).err().expect("opening must fail")
}

#[test]
fn things_that_are_not_a_store_are_refused_by_both_sides() {
    let f = Fixture::new();
    let dir = f.path.parent().unwrap();
    type Make = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Make)> = vec![
        ("empty", Box::new(|p| std::fs::write(p, b"").unwrap())),
        (
            "text",
            Box::new(|p| std::fs::write(p, vec![b'x'; 8192]).unwrap()),
        ),
        (
            "foreign sqlite",
            Box::new(|p| {
                let c = rusqlite::Connection::open(p).unwrap();
                c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
                    .unwrap();
            }),
        ),
        (
            "newer schema",
            Box::new(|p| {
                drop(Store::open(p, Access::Manage { create: true }).unwrap());
                let c = rusqlite::Connection::open(p).unwrap();
                c.pragma_update(None, "user_version", 99).unwrap();
            }),
        ),
        ("directory", Box::new(|p| std::fs::create_dir(p).unwrap())),
        (
            "symlink",
            Box::new(|p| {
                let real = p.with_extension("real");
                drop(Store::open(&real, Access::Manage { create: true }).unwrap());
                std::os::unix::fs::symlink(&real, p).unwrap();
            }),
        ),
    ];
    for (i, (name, make)) in cases.iter().enumerate() {
        let path = dir.join(format!("case{i}.db"));
        make(&path);
        for access in [Access::Login, Access::Manage { create: true }] {
            let err = open_error(&path, access);
            let expected = match *name {
                "newer schema" => matches!(err, Error::SchemaTooNew { found: 99, .. }),
                _ => matches!(err, Error::NotAStore { .. }),
            };
            assert!(expected, "{name} / {access:?}: {err}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
    }
    let missing = dir.join("missing.db");
    assert!(matches!(
        open_error(&missing, Access::Login),
        Error::StoreMissing { .. }
    ));
    assert!(matches!(
        open_error(&missing, Access::Manage { create: false }),
        Error::StoreMissing { .. }
    ));
    assert!(!missing.exists(), "a login must never create a store");
}

#[test]
fn a_damaged_hash_is_an_error_not_a_match() {
    if !running_as_root() {
        return;
    }
    let mut f = Fixture::new();
    let phone = f.mint("alice", "Phone");
    let conn = rusqlite::Connection::open(&f.path).unwrap();
    conn.execute("UPDATE app_passwords SET hash = 'garbage'", [])
        .unwrap();
    let attempt = LoginAttempt {
        user: b"alice",
        token: phone.code.as_bytes(),
        service: None,
        rhost: None,
        now: NOW,
    };
    assert!(matches!(
        check_login(&f.path, &Policy::default(), &attempt),
        Err(Error::BadStoredHash(_))
    ));
}

#[test]
fn limits_refuse_only_after_the_code_verified_and_say_why() {
    if !running_as_root() {
        return;
    }
    let mut f = Fixture::new();
    let label = Label::new("Scoped").unwrap();
    let scope = Scope {
        services: vec!["imap".into()],
        networks: vec!["192.0.2.0/24".parse().unwrap()],
        expires: Some(NOW + 100),
    };
    let minted = {
        let mut store = f.manage();
        let request = MintRequest {
            user: "alice",
            label: &label,
            created_by: "root (uid 0)",
            scope: &scope,
        };
        mint(&mut store, &request, &cheap_policy(), NOW, &mut f.rng).unwrap()
    };
    let attempt = |service, rhost, now, token: &[u8]| {
        let a = LoginAttempt {
            user: b"alice",
            token,
            service: Some(service),
            rhost: Some(rhost),
            now,
        };
        check_login(&f.path, &Policy::default(), &a).unwrap()
    };
    let code = minted.code.as_bytes();
    assert_eq!(
        accepted_id(&attempt("imap", "192.0.2.9", NOW + 99, code)),
        Some(minted.id)
    );
    let limited = |limit| {
        Decision::Rejected(Rejection::Limited {
            id: minted.id,
            label: "Scoped".into(),
            limit,
        })
    };
    assert_eq!(
        attempt("smtp", "192.0.2.9", NOW, code),
        limited(Limit::Service)
    );
    assert_eq!(
        attempt("imap", "198.51.100.1", NOW, code),
        limited(Limit::Network)
    );
    assert_eq!(
        attempt("imap", "192.0.2.9", NOW + 100, code),
        limited(Limit::Expired)
    );
    // A wrong code never learns about limits.
    assert_eq!(
        attempt("smtp", "198.51.100.1", NOW + 500, b"0000000000000000"),
        Decision::Rejected(Rejection::NoMatch)
    );

    // Narrowing with edit applies to the next login.
    let narrower = Scope {
        services: vec!["pop3".into()],
        ..scope.clone()
    };
    f.manage()
        .edit("alice", &CodeRef::Id(minted.id), None, Some(&narrower))
        .unwrap();
    assert_eq!(
        attempt("imap", "192.0.2.9", NOW, code),
        limited(Limit::Service)
    );
}

#[test]
fn the_policy_can_retire_unused_codes_and_close_services() {
    if !running_as_root() {
        return;
    }
    let mut f = Fixture::new();
    let minted = f.mint("alice", "Phone");
    let policy = Policy {
        expire_unused: Some(30 * 86_400),
        ..Policy::default()
    };
    let attempt = |now, service| LoginAttempt {
        user: b"alice",
        token: minted.code.as_bytes(),
        service: Some(service),
        rhost: None,
        now,
    };
    // Used within 30 days of creation: fine, and the use is recorded...
    assert!(matches!(
        check_login(&f.path, &policy, &attempt(NOW + 29 * 86_400, "imap")).unwrap(),
        Decision::Accepted { .. }
    ));
    // ...which restarts the clock from that use.
    assert!(matches!(
        check_login(&f.path, &policy, &attempt(NOW + 58 * 86_400, "imap")).unwrap(),
        Decision::Accepted { .. }
    ));
    assert!(matches!(
        check_login(&f.path, &policy, &attempt(NOW + 88 * 86_400, "imap")).unwrap(),
        Decision::Rejected(Rejection::Limited {
            limit: Limit::Unused,
            ..
        })
    ));
    let closed = Policy {
        allowed_services: vec!["smtp".into()],
        ..Policy::default()
    };
    assert_eq!(
        check_login(&f.path, &closed, &attempt(NOW, "imap")).unwrap(),
        Decision::Rejected(Rejection::ServiceNotAllowed)
    );
}
