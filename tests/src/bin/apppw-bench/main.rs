//! apppw-bench: what a login through pam_apppw costs, side by side with pam_permit and pam_unix
//! measured in the same run on the same machine. Run it with `sudo scripts/bench.sh` (or
//! `--smoke` for a quick run that only shows it works); docs/PERFORMANCE.md has the results.
//!
//! The parent builds the fixtures and spawns worker processes (`worker-login`, `worker-churn`)
//! with pam_wrapper preloaded, so every login is a real libpam round trip in a fresh process image
//! with the module loaded as Dovecot's auth worker loads it.
// Statistics on microsecond timings, counts and percentiles, far from every type's limits.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
#![forbid(unsafe_code)]

mod fixtures;
mod web;
mod worker;

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use apppw_core::AppPassword;
use apppw_core::hash::{HashParams, hash_code, verify_code};
use apppw_tests::{PamWrapped, ctl_binary, is_root};
use fixtures::{
    Fixtures, HUNDRED, ONE, SHA512_USER, THOUSAND, UNIX_PASSWORD, YESCRYPT_USER, build,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worker-login") => worker::login(&args[1..]),
        Some("worker-churn") => worker::churn(&args[1..]),
        Some("worker-argon2") => worker::argon2(&args[1..]),
        // The web page's figures alone (a minute or two), for docs/PERFORMANCE.md.
        Some("--web-only") => {
            assert!(is_root(), "apppw-bench needs root");
            println!("Machine: {}.", machine());
            web::measure(false).print();
        }
        _ => run(args.iter().any(|a| a == "--smoke")),
    }
}

struct Sizes {
    big_users: u64,
    fast: u32,
    slow: u32,
    concurrent: u32,
}

/// Timings of one scenario, in microseconds.
struct Sample {
    micros: Vec<u64>,
    failures: u32,
    /// Peak RSS of the worker at its end, and before its first login.
    maxrss_kib: u64,
    start_rss_kib: u64,
}

impl Sample {
    /// Timings alone: no failures counted, no memory read.
    fn timings(micros: Vec<u64>) -> Sample {
        Sample {
            micros,
            failures: 0,
            maxrss_kib: 0,
            start_rss_kib: 0,
        }
    }

    fn quantile(&self, q: f64) -> f64 {
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted[index] as f64 / 1000.0
    }
    fn median(&self) -> f64 {
        self.quantile(0.5)
    }
    fn p99(&self) -> f64 {
        self.quantile(0.99)
    }
}

struct Bench {
    fixtures: Fixtures,
    rows: Vec<String>,
}

impl Bench {
    fn worker(
        &self,
        service: &str,
        user: &str,
        password: &str,
        count: u32,
        expect_ok: bool,
    ) -> Child {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "worker-login",
            service,
            user,
            password,
            &count.to_string(),
            if expect_ok { "1" } else { "0" },
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        // Without taking turns, unlike the tests' wrapped runs: the throughput and churn rows
        // need workers that overlap. Every worker reads the same service directory, so two that
        // happen to share pam_wrapper's private copy of it read the same services; if one removes
        // that copy under another, the other's logins fail and its row shows FAILURES. Quiet:
        // no log line is written per login, so none is measured.
        PamWrapped::new(cmd, &self.fixtures.world.services)
            .quiet()
            .without_turns()
            .spawn()
            .unwrap()
    }

    fn collect(child: Child) -> Sample {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut sample = Sample::timings(Vec::new());
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("failures ") {
                sample.failures = n.parse().unwrap();
            } else if let Some(n) = line.strip_prefix("maxrss_kib ") {
                sample.maxrss_kib = n.parse().unwrap();
            } else if let Some(n) = line.strip_prefix("start_rss_kib ") {
                sample.start_rss_kib = n.parse().unwrap();
            } else {
                sample.micros.push(line.parse().unwrap());
            }
        }
        sample
    }

    fn logins(
        &self,
        service: &str,
        user: &str,
        password: &str,
        count: u32,
        expect_ok: bool,
    ) -> Sample {
        // One warm-up round trip first: the first login of a process pays for loading libraries.
        Self::collect(self.worker(service, user, password, 1, expect_ok));
        Self::collect(self.worker(service, user, password, count, expect_ok))
    }

    fn row(&mut self, name: &str, sample: &Sample, note: &str) {
        let failures = if sample.failures > 0 {
            format!(" FAILURES={}", sample.failures)
        } else {
            String::new()
        };
        self.rows.push(format!(
            "| {name} | {} | {:.2} | {:.2} | {note}{failures} |",
            sample.micros.len(),
            sample.median(),
            sample.p99()
        ));
    }
}

fn time_command(args: &[&str], count: u32) -> Sample {
    let mut micros = Vec::new();
    for _ in 0..count {
        let started = Instant::now();
        // Captured, not /dev/null: `new` refuses to show a code to nobody.
        let out = Command::new(ctl_binary()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        micros.push(started.elapsed().as_micros() as u64);
    }
    Sample::timings(micros)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores, {cpu}, Linux {}", kernel.trim())
}

fn run(smoke: bool) {
    assert!(
        is_root(),
        "apppw-bench needs root (it makes users and reads /etc/shadow through pam_unix)"
    );
    let sizes = if smoke {
        Sizes {
            big_users: 1_000,
            fast: 10,
            slow: 5,
            concurrent: 5,
        }
    } else {
        Sizes {
            big_users: 100_000,
            fast: 400,
            slow: 100,
            concurrent: 60,
        }
    };
    eprintln!(
        "building fixtures ({} users x 10 codes in the big store)...",
        sizes.big_users
    );
    let started = Instant::now();
    let fixtures = build(sizes.big_users);
    let build_secs = started.elapsed().as_secs_f64();
    let mut b = Bench {
        fixtures,
        rows: Vec::new(),
    };
    let (one, hundred, revoked) = (
        b.fixtures.one_code.clone(),
        b.fixtures.hundred_code.clone(),
        b.fixtures.revoked_code.clone(),
    );
    let wrong = "0000 0000 0000 0000";

    eprintln!("baselines...");
    let floor = b.logins("permit", ONE, "x", sizes.fast, true);
    b.row("floor: pam_permit", &floor, "baseline");
    let yescrypt = b.logins("unix", YESCRYPT_USER, UNIX_PASSWORD, sizes.slow, true);
    b.row("pam_unix, yescrypt hash", &yescrypt, "baseline");
    let sha512 = b.logins("unix", SHA512_USER, UNIX_PASSWORD, sizes.slow, true);
    b.row("pam_unix, sha512crypt hash", &sha512, "baseline");
    let code = AppPassword::parse(one.as_bytes()).unwrap();
    let phc = hash_code(&code, &HashParams::default(), &[7; 16]).unwrap();
    let argon = {
        let mut micros = Vec::new();
        for _ in 0..sizes.slow {
            let t = Instant::now();
            assert!(verify_code(&code, &phc).unwrap());
            micros.push(t.elapsed().as_micros() as u64);
        }
        Sample::timings(micros)
    };
    b.row(
        "Argon2id verification alone, warm memory",
        &argon,
        "repeated in one process",
    );
    let argon_cold = {
        let mut micros = Vec::new();
        for _ in 0..sizes.slow.min(30) {
            let out = Command::new(std::env::current_exe().unwrap())
                .args(["worker-argon2", &phc, &one])
                .output()
                .unwrap();
            micros.push(String::from_utf8_lossy(&out.stdout).trim().parse().unwrap());
        }
        Sample::timings(micros)
    };
    b.row(
        "Argon2id verification alone, fresh memory",
        &argon_cold,
        "one per new process, as a login meets it",
    );

    eprintln!("pam_apppw...");
    let right = b.logins("apppw", ONE, &one, sizes.slow, true);
    b.row("pam_apppw: right code (user with 1 code)", &right, "");
    let wrong_sample = b.logins("apppw", ONE, wrong, sizes.fast, false);
    b.row(
        "pam_apppw: wrong code",
        &wrong_sample,
        "no Argon2id: no lookup tag matches",
    );
    let unknown = b.logins("apppw", "no-such-user", wrong, sizes.fast, false);
    b.row(
        "pam_apppw: wrong code, user with no codes",
        &unknown,
        "same query, same cost",
    );
    let revoked_sample = b.logins("apppw", ONE, &revoked, sizes.fast, false);
    b.row("pam_apppw: revoked code", &revoked_sample, "");
    let hundred_sample = b.logins("apppw", HUNDRED, &hundred, sizes.slow, true);
    b.row(
        "pam_apppw: right code, user with 100 codes",
        &hundred_sample,
        "",
    );
    let big = b.logins("apppw-big", ONE, &one, sizes.slow, true);
    let big_name = format!(
        "pam_apppw: right code, store of {} codes",
        b.fixtures.big_rows
    );
    b.row(&big_name, &big, "");
    let big_wrong = b.logins("apppw-big", ONE, wrong, sizes.fast, false);
    let big_wrong_name = format!(
        "pam_apppw: wrong code, store of {} codes",
        b.fixtures.big_rows
    );
    b.row(&big_wrong_name, &big_wrong, "");

    eprintln!("pam_apppw on PostgreSQL...");
    let pg_right = b.logins("apppw-pg", ONE, &one, sizes.slow, true);
    let pg_right_name = format!(
        "pam_apppw on PostgreSQL (loopback, TLS): right code, store of {} codes",
        b.fixtures.big_rows
    );
    b.row(
        &pg_right_name,
        &pg_right,
        "one kept connection per process, SELECT 1 before each login",
    );
    let pg_wrong = b.logins("apppw-pg", ONE, wrong, sizes.fast, false);
    let pg_wrong_name = format!(
        "pam_apppw on PostgreSQL: wrong code, store of {} codes",
        b.fixtures.big_rows
    );
    b.row(&pg_wrong_name, &pg_wrong, "");
    let pg_first = {
        // A process's first login opens the connection (TCP, TLS 1.3, SCRAM): the cost an auth
        // worker pays once.
        let mut micros = Vec::new();
        for _ in 0..sizes.slow.min(20) {
            micros.extend(Bench::collect(b.worker("apppw-pg", ONE, wrong, 1, false)).micros);
        }
        Sample::timings(micros)
    };
    b.row(
        "pam_apppw on PostgreSQL: a process's first login (wrong code)",
        &pg_first,
        "connect, TLS and SCRAM included",
    );

    eprintln!("concurrency...");
    let throughput_of = |b: &Bench, service: &str, counts: &[u32]| {
        let mut rows = Vec::new();
        for &n in counts {
            let started = Instant::now();
            let children: Vec<Child> = (0..n)
                .map(|_| b.worker(service, ONE, &one, sizes.concurrent, true))
                .collect();
            let samples: Vec<Sample> = children.into_iter().map(Bench::collect).collect();
            let wall = started.elapsed().as_secs_f64();
            let failures: u32 = samples.iter().map(|s| s.failures).sum();
            let per_second = f64::from(n * sizes.concurrent) / wall;
            rows.push((n, per_second, failures));
        }
        rows
    };
    let throughput = throughput_of(&b, "apppw", &[1, 2, 4, 8]);
    let pg_throughput = throughput_of(&b, "apppw-pg", &[1, 2]);

    eprintln!("logins while others create and revoke codes...");
    let churn_secs = if smoke { 3 } else { 15 };
    let churners: Vec<Child> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "worker-churn",
                    b.fixtures.world.store.to_str().unwrap(),
                    &churn_secs.to_string(),
                ])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let loginers: Vec<Child> = (0..2)
        .map(|_| b.worker("apppw", ONE, &one, sizes.concurrent * 2, true))
        .collect();
    let mut under_churn = Sample::timings(Vec::new());
    for child in loginers {
        let s = Bench::collect(child);
        under_churn.micros.extend(s.micros);
        under_churn.failures += s.failures;
    }
    let churn_ops: u64 = churners
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .trim_start_matches("operations ")
                .parse::<u64>()
                .unwrap_or(0)
        })
        .sum();
    b.row(
        "pam_apppw: right code, 2 login + 2 churn processes",
        &under_churn,
        &format!("{churn_ops} creates+revokes meanwhile"),
    );

    eprintln!("apppw-ctl...");
    let db = b.fixtures.world.store.to_str().unwrap().to_owned();
    let big_db = b.fixtures.big_store.to_str().unwrap().to_owned();
    let mut i = 0;
    let new = {
        let mut micros = Vec::new();
        for _ in 0..sizes.slow.min(20) {
            i += 1;
            let label = format!("cli {i}");
            micros.extend(time_command(&["--db", &db, "--user", "root", "new", &label], 1).micros);
        }
        Sample::timings(micros)
    };
    b.row("apppw-ctl new", &new, "process start to exit");
    let list = time_command(
        &["--db", &db, "--user", THOUSAND, "list"],
        sizes.slow.min(20),
    );
    b.row("apppw-ctl list (1,000 codes)", &list, "");
    let audit = time_command(
        &["--db", &big_db, "--json", "audit"],
        if smoke { 2 } else { 3 },
    );
    let audit_name = format!("apppw-ctl audit --json ({} codes)", b.fixtures.big_rows);
    b.row(&audit_name, &audit, "");
    let pg_conf = b.fixtures.postgres_conf.to_str().unwrap().to_owned();
    let pg_audit = time_command(
        &["--store-conf", &pg_conf, "--json", "audit"],
        if smoke { 2 } else { 3 },
    );
    let pg_audit_name = format!(
        "apppw-ctl audit --json on PostgreSQL ({} codes)",
        b.fixtures.big_rows
    );
    b.row(&pg_audit_name, &pg_audit, "");

    let floor_probe = Bench::collect(b.worker("permit", ONE, "x", 1, true));
    let login_probe = Bench::collect(b.worker("apppw", ONE, &one, 1, true));
    let (memory_floor, memory_login) = (floor_probe.maxrss_kib, login_probe.maxrss_kib);
    eprintln!(
        "rss before first login: {} / {} KiB",
        floor_probe.start_rss_kib, login_probe.start_rss_kib
    );
    let store_bytes = std::fs::metadata(&b.fixtures.big_store).unwrap().len();
    eprintln!("apppw-web...");
    let web = web::measure(smoke);

    println!(
        "# apppw-bench{}\n",
        if smoke {
            " (smoke run: sizes too small to judge)"
        } else {
            ""
        }
    );
    println!(
        "Machine: {}. Fixtures built in {build_secs:.1} s.\n",
        machine()
    );
    println!("| scenario | n | median ms | p99 ms | note |\n|---|---|---|---|---|");
    for row in &b.rows {
        println!("{row}");
    }
    println!("\n| store | processes | logins/s | failures |\n|---|---|---|---|");
    for (name, rows) in [("SQLite", &throughput), ("PostgreSQL", &pg_throughput)] {
        for (n, per_second, failures) in rows {
            println!("| {name} | {n} | {per_second:.1} | {failures} |");
        }
    }
    println!(
        "\nPeak RSS of a login process: {} KiB with pam_apppw, {} KiB with pam_permit (+{} KiB).",
        memory_login,
        memory_floor,
        memory_login.saturating_sub(memory_floor)
    );
    println!(
        "Store: {} bytes for {} codes = {:.0} bytes per code.",
        store_bytes,
        b.fixtures.big_rows,
        store_bytes as f64 / b.fixtures.big_rows as f64
    );

    // The targets of the benchmark issue, as ratios within this run.
    let one_per_second = throughput[0].1;
    let two_per_second = throughput[1].1;
    let checks = [
        (
            "right code <= floor + Argon2id (fresh memory) + 1 ms",
            right.median() <= floor.median() + argon_cold.median() + 1.0,
        ),
        (
            "right code <= floor + Argon2id (warm memory) + 1 ms",
            right.median() <= floor.median() + argon.median() + 1.0,
        ),
        (
            "wrong code <= floor + 1 ms",
            wrong_sample.median() <= floor.median() + 1.0,
        ),
        (
            "100 codes within 10% of 1 code",
            hundred_sample.median() <= right.median() * 1.10,
        ),
        (
            "big store within 10% of small",
            big.median() <= right.median() * 1.10,
        ),
        (
            "2 processes >= 1.8x logins/s of 1",
            two_per_second >= 1.8 * one_per_second,
        ),
        ("no login failed under churn", under_churn.failures == 0),
        (
            "p99 <= 3x median under churn",
            under_churn.p99() <= 3.0 * under_churn.median(),
        ),
        ("new <= 100 ms", new.median() <= 100.0),
        ("list (1,000) <= 50 ms", list.median() <= 50.0),
        ("audit <= 3 s", audit.median() <= 3000.0),
        (
            "PostgreSQL: right code <= SQLite (same store) + 2 ms",
            pg_right.median() <= big.median() + 2.0,
        ),
        (
            "PostgreSQL: wrong code <= floor + 2 ms",
            pg_wrong.median() <= floor.median() + 2.0,
        ),
        ("PostgreSQL: audit <= 3 s", pg_audit.median() <= 3000.0),
        (
            "PostgreSQL: 2 processes >= 1.8x logins/s of 1",
            pg_throughput[1].1 >= 1.8 * pg_throughput[0].1,
        ),
        (
            "login memory <= Argon2id memory + 10 MiB",
            memory_login.saturating_sub(memory_floor) <= 19456 + 10 * 1024,
        ),
        (
            "store <= 300 bytes per code",
            (store_bytes as f64 / b.fixtures.big_rows as f64) <= 300.0,
        ),
    ];
    println!("\n| target | result |\n|---|---|");
    for (name, met) in checks {
        println!("| {name} | {} |", if met { "met" } else { "MISSED" });
    }
    web.print();
}
