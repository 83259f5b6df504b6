#!/usr/bin/env bash
# The workspace promises rust-version (Cargo.toml; 1.85 is Debian 13's rustc, so Debian can build
# apppw with its own toolchain). The machine's rustc is newer and builds anything, so nothing
# else notices a locked dependency that needs a newer compiler: this check does. Every package
# built for Linux (cargo metadata's resolve, filtered to the host platform) must declare a
# rust-version no newer than the workspace's. Fix a failure with
#   cargo update -p CRATE --config 'resolver.incompatible-rust-versions="fallback"'
# or by replacing the crate.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --locked --filter-platform "$(rustc -vV | sed -n 's/^host: //p')" |
    python3 -c '
import json, sys

def version(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))

meta = json.load(sys.stdin)
packages = {p["id"]: p for p in meta["packages"]}
members = set(meta["workspace_members"])
promised = {packages[m]["rust_version"] for m in members}
if len(promised) != 1 or None in promised:
    sys.exit(f"msrv: the workspace members disagree on rust-version: {promised}")
promised = promised.pop()
used = {node["id"] for node in meta["resolve"]["nodes"]}
newer = sorted(
    "{name} {version} needs Rust {rust_version}".format(**packages[i])
    for i in used
    if packages[i].get("rust_version") and version(packages[i]["rust_version"]) > version(promised)
)
if newer:
    sys.exit(f"msrv: the workspace promises Rust {promised}, but\n  " + "\n  ".join(newer))
print(f"msrv: {len(used)} packages built for this platform, none needs more than Rust {promised}")
'
