#!/usr/bin/env bash
# apppw's main job, end to end, without touching /etc: build, mint an app password, log in with it
# through the real libpam, revoke it, and see the same login refused.
#
# The store and the PAM service file live in a temporary directory; pam_wrapper makes libpam read
# services from there instead of /etc/pam.d. Needs root (to install the Debian packages and to
# use apppw-ctl --db, which is root-only).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME bash "$0" "$@"
fi
source scripts/packages.sh

install_debian_packages
cargo build --release --workspace --locked --quiet

tmp=$(mktemp -d /tmp/apppw-demo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/pam.d"
cp target/release/libpam_apppw.so "$tmp/pam_apppw.so"
cat >"$tmp/pam.d/demo-mail" <<PAM
auth     required $tmp/pam_apppw.so db=$tmp/apppw.db
account  required pam_permit.so
PAM
for wrapper in /usr/lib/*/libpam_wrapper.so /usr/lib64/libpam_wrapper.so; do
    [ -e "$wrapper" ] && break
done
ctl() { target/release/apppw-ctl --db "$tmp/apppw.db" "$@"; }
login() {
    printf '%s\n' "$1" | LD_PRELOAD="$wrapper" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$tmp/pam.d" \
        target/release/pam-client demo-mail "$(id -un)" --rhost 127.0.0.1 2>/dev/null
}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "apppw-ctl new \"Demo phone\""
out=$(ctl new "Demo phone")
printf '%s\n' "$out"
code=$(printf '%s\n' "$out" | sed -n '3p' | tr -d ' ')

step "log in to service demo-mail through libpam with that code (typed with spaces)"
login "$(printf '%s\n' "$out" | sed -n '3p')"

step "apppw-ctl list"
ctl list

step "apppw-ctl revoke \"Demo phone\""
ctl revoke "Demo phone"

step "the same login again"
if login "$code"; then
    echo "FAIL: a revoked code was accepted" >&2
    exit 1
fi
printf '\nDemo passed: the code worked until it was revoked, then was refused.\n'
