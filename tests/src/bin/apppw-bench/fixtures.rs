//! The world the benchmark measures: users with Unix passwords of both hash kinds, stores of 1
//! and of 1,000,000 codes (bulk-inserted, not a million CLI calls), and PAM services for the
//! baselines and for pam_apppw.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use apppw_core::accounts::{Accounts, SystemAccounts};
use apppw_core::hash::HashParams;
use apppw_core::mint::{MintRequest, mint};
use apppw_core::scope::Scope;
use apppw_core::store::PgStore;
use apppw_core::store::PgTarget;
use apppw_core::{Access, Changer, CodeRef, Label, Owner, Policy, Store};
use apppw_tests::backend::{Backend, CTL_ROLE, MAIL_ROLE, TestStore};
use apppw_tests::{World, ensure_user};
use rand::Rng;

pub const YESCRYPT_USER: &str = "apppw-bench-y";
pub const SHA512_USER: &str = "apppw-bench-s";
pub const UNIX_PASSWORD: &str = "bench password 1";
/// Users whose logins are measured: one code, a hundred codes.
pub const ONE: &str = "bench-one";
pub const HUNDRED: &str = "bench-hundred";
/// The user `list` is timed for (a real account: `--user` only takes those).
pub const THOUSAND: &str = "apppw-bench-k";

pub struct Fixtures {
    pub world: World,
    pub big_store: PathBuf,
    /// The big store copied into a real PostgreSQL server on loopback (TLS, SCRAM), and the
    /// store.conf that names it (service `apppw-pg`). Held for its life: dropping it stops the
    /// server.
    pub _postgres: TestStore,
    pub postgres_conf: PathBuf,
    /// A right code of ONE, a right code of HUNDRED, a revoked code of ONE.
    pub one_code: String,
    pub hundred_code: String,
    pub revoked_code: String,
    pub big_rows: u64,
}

/// Unix users whose passwords pam_unix checks, hashed with yescrypt (Debian 12's default) and
/// with sha512crypt.
fn unix_users() {
    // Codes are bound to their owner's account: the users who log in with codes are real.
    for user in [ONE, HUNDRED, THOUSAND] {
        ensure_user(user);
    }
    for (user, method) in [(YESCRYPT_USER, "YESCRYPT"), (SHA512_USER, "SHA512")] {
        ensure_user(user);
        let mut cmd = std::process::Command::new("chpasswd");
        cmd.args(["-c", method]);
        let out = apppw_tests::run_with_stdin(cmd, format!("{user}:{UNIX_PASSWORD}\n").as_bytes());
        assert!(out.status.success(), "chpasswd -c {method}");
    }
}

fn mint_code(store: &mut Store, user: &str, label: &str, params: HashParams) -> (i64, String) {
    let policy = Policy {
        max_active_codes: 100_000,
        hash_params: params,
        ..Policy::default()
    };
    let label = Label::new(label).unwrap();
    let uid = SystemAccounts
        .uid_of(user)
        .unwrap()
        .unwrap_or_else(|| panic!("{user} has no account"));
    let request = MintRequest {
        owner: Owner { name: user, uid },
        label: &label,
        scope: &Scope::default(),
    };
    let minted = mint(
        store,
        &request,
        &policy,
        &Changer::root(now()),
        &mut rand::rng(),
    )
    .unwrap();
    (minted.id, minted.code.display_grouped().to_string())
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Adds `users` x `per_user` codes in one transaction, with realistic row sizes (a PHC string
/// as long as a real one, random lookup tags).
fn bulk_insert(path: &Path, users: u64, per_user: u64) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO app_passwords
                     (user, label, lookup_tag, hash, created, created_by, owner_uid)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'bulk', ?6)",
            )
            .unwrap();
        let fake_hash = "$argon2id$v=19$m=19456,t=2,p=1$QUJDREVGR0hJSktMTU5PUA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        let mut rng = rand::rng();
        let created = now();
        for u in 0..users {
            let user = format!("bulk-user-{u:06}");
            for c in 0..per_user {
                let tag: u32 = rng.random_range(0..1 << 20);
                insert
                    .execute(rusqlite::params![
                        user,
                        format!("Device {c}"),
                        tag,
                        fake_hash,
                        created,
                        // Bound to an account, as every code of a current store is (no such
                        // accounts exist: the bench never logs in as these users).
                        100_000 + i64::try_from(u).unwrap()
                    ])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
}

pub fn build(big_users: u64) -> Fixtures {
    unix_users();
    let world = World::new();
    world.service(
        "permit",
        "auth required pam_permit.so\naccount required pam_permit.so\n",
    );
    world.service(
        "unix",
        "auth required pam_unix.so\naccount required pam_unix.so\n",
    );
    world.service("apppw", &world.apppw_service_text(&world.store, ""));

    let real = HashParams::default();
    let cheap = HashParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let mut store = Store::open(
        &world.store,
        Access::Manage {
            create: true,
            upgrade: true,
        },
    )
    .unwrap();
    let (_, one_code) = mint_code(&mut store, ONE, "Phone", real);
    let (revoked_id, revoked_code) = mint_code(&mut store, ONE, "Old phone", real);
    store
        .revoke(
            Owner {
                name: ONE,
                uid: SystemAccounts.uid_of(ONE).unwrap().unwrap(),
            },
            &CodeRef::Id(revoked_id),
            &Changer::root(now()),
        )
        .unwrap();
    let (_, hundred_code) = mint_code(&mut store, HUNDRED, "Device 0", real);
    for i in 1..100 {
        mint_code(&mut store, HUNDRED, &format!("Device {i}"), real);
    }
    for i in 0..1000 {
        mint_code(&mut store, THOUSAND, &format!("Device {i}"), cheap);
    }
    drop(store);

    // The big store: the same measured users plus `big_users` x 10 others.
    let big_store = world.dir.path().join("big.db");
    std::fs::copy(&world.store, &big_store).unwrap();
    bulk_insert(&big_store, big_users, 10);
    world.service("apppw-big", &world.apppw_service_text(&big_store, ""));
    let big_rows: i64 = rusqlite::Connection::open(&big_store)
        .unwrap()
        .query_row("SELECT count(*) FROM app_passwords", [], |r| r.get(0))
        .unwrap();
    let big_rows = big_rows as u64;

    // The same rows in PostgreSQL, copied as `apppw-ctl migrate` copies them.
    let postgres = TestStore::new(Backend::Postgres);
    let rows = Store::open_scratch(
        &big_store,
        Access::Manage {
            create: false,
            upgrade: false,
        },
    )
    .unwrap()
    .export()
    .unwrap();
    let admin = PgTarget::parse(&postgres.superuser_url(), false).unwrap();
    Store::Postgres(PgStore::open_as_owner(&admin).unwrap())
        .import(&rows)
        .unwrap();
    postgres.raw("VACUUM ANALYZE");
    let postgres_conf = world.dir.path().join("store.conf");
    std::fs::write(
        &postgres_conf,
        format!(
            "login_store = {}\nmanage_store = {}\n",
            postgres.url_for(MAIL_ROLE),
            postgres.url_for(CTL_ROLE)
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &postgres_conf,
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    world.service(
        "apppw-pg",
        &format!(
            "auth required {} store_conf={}\naccount required pam_permit.so\n",
            world.module.display(),
            postgres_conf.display()
        ),
    );
    Fixtures {
        world,
        big_store,
        _postgres: postgres,
        postgres_conf,
        one_code,
        hundred_code,
        revoked_code,
        big_rows,
    }
}
