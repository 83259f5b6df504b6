#!/usr/bin/env bash
# Links target/selinux/apppw.pp against a real reference policy (Debian's selinux-policy-default,
# downloaded, not installed) and checks the result with sesearch: the module's rules reach
# dovecot_auth_t, saslauthd_t and passwd_t, the store's type is an auth file that no "all
# ordinary files" boolean reaches, and it still links without Dovecot's and Cyrus SASL's
# policy (its blocks are optional).
# Changes nothing on the host. Needs semodule-utils, setools and apt-get download.
# Usage: packaging/selinux/check-module.sh [MODULE.pp]
set -euo pipefail
module=$(realpath "${1:-target/selinux/apppw.pp}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
check_what="selinux check"
source "$(dirname "$0")/../check.sh"

(cd "$work" && apt-get download -qq -o APT::Sandbox::User=root selinux-policy-default >/dev/null)
dpkg-deb -x "$work"/selinux-policy-default_*.deb "$work/root"
mkdir "$work/modules"
for pp in "$work"/root/usr/share/selinux/default/*.pp.bz2; do
    bunzip2 -c "$pp" >"$work/modules/$(basename "$pp" .bz2)"
done
others=$(find "$work/modules" -name '*.pp' ! -name base.pp | sort)

# expand NAME MODULES...: links base.pp with MODULES into one policy, $work/NAME.bin.
expand() {
    local name=$1; shift
    semodule_link -o "$work/$name.pp" "$work/modules/base.pp" "$@" >/dev/null
    semodule_expand "$work/$name.pp" "$work/$name.bin"
}

expand full $others "$module"
# dovecot_auth_t and saslauthd_t run pam_apppw.so; passwd_t runs `apppw-ctl password-changed`
# (revoke_on_password_change).
for domain in dovecot_auth_t saslauthd_t passwd_t; do
    files=$(sesearch -A -s "$domain" -t apppw_var_lib_t -c file "$work/full.bin")
    dirs=$(sesearch -A -s "$domain" -t apppw_var_lib_t -c dir "$work/full.bin")
    for perm in create open read write lock map unlink setattr; do
        check "$domain may $perm the store and its -wal/-shm/-journal" grep -qw "$perm" <<<"$files"
    done
    for perm in search add_name remove_name write; do
        check "$domain may $perm in /var/lib/apppw" grep -qw "$perm" <<<"$dirs"
    done
done
# The store holds credentials: an auth file, as shadow_t is, never one of the "ordinary" files
# that booleans such as samba_export_all_rw, allow_ftpd_full_access and rsync_export_all_ro open
# to a daemon (they grant non_auth_file_type or non_security_file_type).
attributes=$(seinfo -t apppw_var_lib_t -x "$work/full.bin")
lacks() { ! grep -qw "$1" <<<"$2"; }
for attribute in auth_file_type security_file_type; do
    check "apppw_var_lib_t has the attribute $attribute" grep -qw "$attribute" <<<"$attributes"
done
for attribute in non_auth_file_type non_security_file_type; do
    check "apppw_var_lib_t lacks the attribute $attribute" lacks "$attribute" "$attributes"
done
for domain in smbd_t ftpd_t rsync_t; do
    check "$domain may not use the store's files, whatever its booleans" \
        test -z "$(sesearch -A -s "$domain" -t apppw_var_lib_t -c file "$work/full.bin")"
done
check "/var/lib/apppw(/.*)? is labelled apppw_var_lib_t" grep -qF \
    '/var/lib/apppw(/.*)?' <(semodule_unpackage "$module" /dev/null /dev/stdout | grep apppw_var_lib_t)

# Without Dovecot's and Cyrus SASL's policy the module still links: its rules are optional.
expand bare $(grep -vE '/(dovecot|sasl)\.pp$' <<<"$others") "$module"
check "the module links without dovecot and sasl" seinfo -t apppw_var_lib_t "$work/bare.bin" -x >/dev/null

echo "selinux: $passed passed, 0 failed"
