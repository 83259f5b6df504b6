#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, and runs every test (unit tests, the
# store on real SQLite files, the module through real libpam, the CLI as real users).
# Tests that need root or change the host are #[ignore]d, each with its reason, so a plain
# `cargo test` reports them as ignored, never as passed. With CI=true or APPPW_SYSTEM_TESTS=1 this
# script includes them (--include-ignored) and must run as root: it then also installs the
# packages, makes users and changes /etc, /var/lib/apppw and /usr/local (use a disposable
# machine). Once included, a test whose prerequisite is missing fails, saying what provides it.
# The system tests then also run the mail tests and the .deb on Debian 13 (scripts/debian13.sh).
# The closing line sums every test binary: "apppw: N passed, N failed, N ignored". Under CI=true
# an ignored test fails the run: CI must run them all.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/packages.sh

system_tests=false
if [ "${CI:-}" = true ] || [ "${APPPW_SYSTEM_TESTS:-}" = 1 ]; then
    system_tests=true
fi

install_debian_packages
cargo build --release --workspace --locked
# A second build of the module that can be told to panic, for the test that proves no panic ever
# reaches libpam (tests/tests/panics.rs). Its own target dir keeps it apart from the real one.
cargo build --release --locked -p pam_apppw --features fault-injection --target-dir target/fault-injection
# The packages: build the .deb and .rpm, lintian, install, use, remove, purge (changes the host,
# so only where the system tests run).
if [ "$system_tests" = true ]; then
    make package-test
fi

test_args=()
if [ "$system_tests" = true ]; then
    test_args=(--include-ignored)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace --locked --no-fail-fast -- "${test_args[@]}" 2>&1 | tee "$log" || status=$?
# Debian 13 (Dovecot 2.4) beside this Debian 12 (2.3): the same mail tests and the .deb, in a
# Debian 13 root made with debootstrap (changes the host, so only where the system tests run).
if [ "$system_tests" = true ]; then
    # The mail test binary (cargo names it mail-<hash>; the package's other binaries are
    # artifacts too).
    mail_tests=$(cargo test --release --locked -p apppw-tests --test mail --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if (message.get("reason") == "compiler-artifact" and message.get("executable")
            and message["target"]["name"] == "mail" and message["target"]["kind"] == ["test"]):
        print(message["executable"])')
    if [ -x "$mail_tests" ]; then
        bash scripts/debian13.sh "$mail_tests" 2>&1 | tee -a "$log" || status=$?
    else
        echo "apppw: the mail test binary was not found ($mail_tests): Debian 13 not tested" | tee -a "$log" >&2
        status=1
    fi
fi
# One closing line for the whole run, summed over every test binary's
# "test result: ok. N passed; N failed; N ignored; ..." line.
read -r passed failed ignored < <(awk '/^test result:/ {
        for (i = 2; i <= NF; i++) {
            if ($i ~ /^passed/) p += $(i-1)
            if ($i ~ /^failed/) f += $(i-1)
            if ($i ~ /^ignored/) g += $(i-1)
        }
    }
    END { print p + 0, f + 0, g + 0 }' "$log")
printf '\napppw: %d passed, %d failed, %d ignored\n' "$passed" "$failed" "$ignored"
if [ "${CI:-}" = true ] && [ "$ignored" -gt 0 ]; then
    echo "apppw: $ignored tests were ignored, but CI must run every test" >&2
    [ "$status" -ne 0 ] || status=1
fi
exit "$status"
