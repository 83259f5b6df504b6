#!/usr/bin/env bash
# Fuzzes apppw's parsers with cargo fuzz (libFuzzer + AddressSanitizer): code normalization,
# module arguments, apppw.conf, durations and expiries, networks and PAM_RHOST.
#   scripts/fuzz.sh [SECONDS]   each target for SECONDS (default 30); any crash fails the run
# The committed seeds are in fuzz/corpus/TARGET; new inputs go to a scratch directory.
# cargo fuzz needs nightly compiler flags (-Zsanitizer); RUSTC_BOOTSTRAP=1 lets the stable
# toolchain, the only one this project's machines have, accept them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/packages.sh
install_debian_packages
seconds=${1:-30}
cargo fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
for target in code module_options config durations networks; do
    scratch=$(mktemp -d)
    status=0
    cargo fuzz run --fuzz-dir fuzz "$target" "$scratch" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$scratch.log" 2>&1 || status=$?
    grep -E '^(stat::number_of_executed_units|==[0-9]+==|SUMMARY|thread .* panicked)' "$scratch.log" || true
    [ "$status" = 0 ] || tail -n 30 "$scratch.log" >&2
    rm -rf "$scratch" "$scratch.log"
    if [ "$status" != 0 ]; then
        echo "fuzz $target: FAILED (see the artifact under fuzz/artifacts/$target)" >&2
        exit 1
    fi
    echo "fuzz $target: ${seconds} s, no crash"
done
