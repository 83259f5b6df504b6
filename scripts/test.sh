#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, and runs every test (unit tests, the
# store on real SQLite files, the module through real libpam, the CLI as real users).
# Run as root (CI does): the end-to-end tests create users and use root-only options; as another
# user they are skipped with a reason, and under CI=true a missing prerequisite fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/packages.sh

install_debian_packages
cargo build --release --workspace --locked
# A second build of the module that can be told to panic, for the test that proves no panic ever
# reaches libpam (tests/tests/panics.rs). Its own target dir keeps it apart from the real one.
cargo build --release --locked -p pam_apppw --features fault-injection --target-dir target/fault-injection
# The packages: build the .deb and .rpm, lintian, install, use, remove, purge (changes the host,
# so only where the system tests run).
if [ "${CI:-}" = true ] || [ "${APPPW_SYSTEM_TESTS:-}" = 1 ]; then
    make package-test
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1); } }
     END { printf "\napppw: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
