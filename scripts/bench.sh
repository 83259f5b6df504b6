#!/usr/bin/env bash
# The benchmark: real libpam round trips through pam_apppw beside pam_permit and pam_unix, the
# CLI, store size and memory, printed as Markdown tables (docs/PERFORMANCE.md keeps a run).
#   sudo scripts/bench.sh           full run: a 1,000,000-code store, a few minutes
#   sudo scripts/bench.sh --smoke   seconds; only shows that it works (CI runs this)
#   sudo scripts/bench.sh --web-only   apppw-web's figures alone
# Needs root: it creates users (pam_unix baselines) in a scratch directory of its own; the logins
# use pam_wrapper, not /etc/pam.d. The apppw-web part runs the tests' installed stack (a setuid
# apppw-ctl under /usr/local/libexec/apppw-test, the system store, /etc/pam.d/apppw-web for its
# run, nginx on a free loopback port): use a disposable machine, as for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/packages.sh
install_debian_packages
cargo build --release --workspace --locked --quiet
target/release/apppw-bench "$@"
