#!/usr/bin/env bash
# The benchmark: real libpam round trips through pam_apppw beside pam_permit and pam_unix, the
# CLI, store size and memory, printed as Markdown tables (docs/PERFORMANCE.md keeps a run).
#   sudo scripts/bench.sh           full run: a 1,000,000-code store, a few minutes
#   sudo scripts/bench.sh --smoke   seconds; only shows that it works (CI runs this)
# Needs root: it creates users (pam_unix baselines) in a scratch directory of its own; /etc/pam.d
# is not touched (pam_wrapper).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/packages.sh
install_debian_packages
cargo build --release --workspace --locked --quiet
target/release/apppw-bench "$@"
