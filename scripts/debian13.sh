#!/usr/bin/env bash
# Debian 13 (trixie, Dovecot 2.4) beside this Debian 12 host (Dovecot 2.3): builds a Debian 13
# root from Debian's packages with debootstrap and runs inside it, with chroot,
#   - the mail tests (tests/tests/mail.rs, the binary built here: the same test bodies, which
#     write Dovecot 2.4's syntax and include the 2.4 example when they find 2.4), and
#   - the .deb built here: install, use, remove, purge (packaging/test-packages.sh --deb-only).
# Their "test result:" lines count in scripts/test.sh's closing line.
#
# Usage (root): scripts/debian13.sh MAIL_TEST_BINARY
# The root is kept in $APPPW_DEBIAN13_ROOT (default /var/tmp/apppw-debian13) and reused while
# its package list is unchanged; the repository is bind-mounted into it at the same path, so the
# binaries' compiled-in paths hold. Nothing outside the root changes; every mount goes at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
mail_tests=$(realpath "$1")
root=${APPPW_DEBIAN13_ROOT:-/var/tmp/apppw-debian13}
mirror=http://deb.debian.org/debian

# What the tests use inside the root: the mail servers (every Dovecot protocol), python3 for the
# mail clients and the pseudo-terminal, setpriv (util-linux), useradd and chpasswd (passwd), and
# for the package test pamtester, man-db and col (bsdextrautils), adduser (the .deb's dependency);
# PostgreSQL's server programs (17 on Debian 13), openssl and ca-certificates for the tests that
# share a PostgreSQL store between mail hosts; systemd for systemd-analyze, which the package test
# runs on the web page's units.
packages=dovecot-imapd,dovecot-pop3d,dovecot-managesieved,dovecot-submissiond,dovecot-lmtpd,postfix,python3,libpam-modules,libpam-runtime,passwd,util-linux,adduser,pamtester,man-db,bsdextrautils,postgresql,openssl,ca-certificates,systemd
stamp="$root/.apppw-packages"

case "$root" in
/ | "") echo "APPPW_DEBIAN13_ROOT must name a directory of its own, not '$root'" >&2; exit 1 ;;
esac
# A run killed with SIGKILL leaves its mounts (the host's /dev, the repository) under the root:
# take them away before anything below could descend into them.
mounts_under_root() { awk -v root="$root/" 'index($2, root) == 1 { print $2 }' /proc/self/mounts | sort -r; }
for mount_point in $(mounts_under_root); do
    umount -R "$mount_point" 2>/dev/null || umount -lR "$mount_point"
done
if [ -n "$(mounts_under_root)" ]; then
    echo "something is still mounted under $root: unmount it first" >&2
    exit 1
fi

if [ "$(cat "$stamp" 2>/dev/null)" != "$packages" ]; then
    echo "== debootstrap trixie $root"
    # --one-file-system: never into a mount, whatever happened above.
    rm -rf --one-file-system "$root"
    # Postfix asks how to configure itself; the tests bring their own configuration.
    DEBIAN_FRONTEND=noninteractive debootstrap --variant=minbase --include="$packages" \
        trixie "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; exit 1; }
    echo "$packages" >"$stamp"
fi
echo "== Debian $(cat "$root/etc/debian_version"), $(chroot "$root" dovecot --version | cut -d' ' -f1)"

mounts=()
cleanup() {
    # A test that failed may leave Dovecot or Postfix running in the root: they hold the mounts.
    for proc in /proc/[0-9]*; do
        if [ "$(readlink "$proc/root" 2>/dev/null)" = "$root" ]; then
            kill -9 "${proc#/proc/}" 2>/dev/null || true
        fi
    done
    sleep 0.5
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount -R "${mounts[i]}" 2>/dev/null || umount -lR "${mounts[i]}" || true
    done
}
trap cleanup EXIT
mount -t proc proc "$root/proc" && mounts+=("$root/proc")
# rbind: /dev/pts too, for the pseudo-terminal the package test types a password at.
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev" && mounts+=("$root/dev")
mkdir -p "$root$repo"
mount --bind "$repo" "$root$repo" && mounts+=("$root$repo")

inside() { # runs a command in the root with a clean environment
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        CI="${CI:-}" APPPW_SYSTEM_TESTS=1 "$@"
}

echo "== mail tests on Debian 13"
status=0
inside "$mail_tests" --include-ignored || status=$?
echo "== the .deb on Debian 13"
inside /bin/bash "$repo/packaging/test-packages.sh" --deb-only || status=$?
exit "$status"
