#!/usr/bin/env bash
# Package tests (root, Debian; resets this host's apppw state): lintian on the .deb; install it;
# check paths, modes, man pages and --help; a new user mints a code with the installed setuid
# apppw-ctl; pamtester authenticates with it through the installed module and an example service;
# the user revokes it and pamtester is refused; remove keeps the store; purge leaves nothing.
# Then the .rpm's file list, flags, modes, owners, dependencies and scripts; the SELinux policy
# module against a real reference policy; where each package puts the module on arm64. Run by
# `make package-test`.
# --deb-only: the .deb's install, use, remove and purge, without lintian (it reads the file, not
# the host) and the .rpm, which need not exist: what scripts/debian13.sh runs on Debian 13.
set -euo pipefail
cd "$(dirname "$0")/.."
deb_only=false
[ "${1:-}" = --deb-only ] && deb_only=true

deb=$(ls -t target/debian/apppw_*.deb | head -n 1)
user=apppw-pkg
password="package test password"
check_what="package test"
source packaging/check.sh

# A clean slate: earlier tests set up apppw by hand (init, /etc/pam.d/apppw-ctl).
dpkg -P apppw >/dev/null 2>&1 || true
rm -rf /var/lib/apppw /etc/apppw /etc/pam.d/apppw-ctl /etc/pam.d/apppw-pkgtest /usr/local/libexec/apppw-test
for account in apppw apppw-web; do
    getent passwd "$account" >/dev/null && userdel "$account"
    getent group "$account" >/dev/null && groupdel "$account"
done
rm -f /etc/pam.d/apppw-web

if [ "$deb_only" = false ]; then
    echo "== lintian $deb"
    lintian --fail-on error --info "$deb" | tee target/debian/lintian.txt || { echo "lintian reported errors" >&2; exit 1; }
    passed=$((passed + 1))
fi

echo "== dpkg -i"
dpkg -i "$deb"
# Where libpam finds modules on this host, whatever its architecture: pam_unix.so's directory
# (/usr/lib/<multiarch triplet>/security). dpkg-architecture (dpkg-dev) is not needed for that.
module=$(dirname "$(dpkg -L libpam-modules | grep -m1 '/security/pam_unix\.so$')")/pam_apppw.so
check "apppw-ctl is root:root 4755" test "$(stat -c '%a %U %G' /usr/bin/apppw-ctl)" = "4755 root root"
check "the apppw account exists, with no login" test "$(getent passwd apppw | cut -d: -f7)" = /usr/sbin/nologin
# postinst makes the account with adduser; the sysusers.d file the package ships says the same.
sysusers=$(python3 -c 'import shlex, sys
for line in open(sys.argv[1]):
    f = shlex.split(line, comments=True)
    if f[:2] == ["u", "apppw"]: print(":".join(f[3:6]))' packaging/sysusers.d/apppw.conf)
check "the sysusers.d file is installed" cmp -s packaging/sysusers.d/apppw.conf /usr/lib/sysusers.d/apppw.conf
# adduser writes the comment as GECOS fields ("apppw store,,,"): the full name is the first.
check "the account is the one sysusers.d describes ($sysusers)" \
    test "$(getent passwd apppw | awk -F: '{ split($5, gecos, ","); print gecos[1] ":" $6 ":" $7 }')" = "$sysusers"
check "the store directory is root:apppw 2770" test "$(stat -c '%a %U %G' /var/lib/apppw)" = "2770 root apppw"
check "the store is root:apppw 660" test "$(stat -c '%a %U %G' /var/lib/apppw/apppw.db)" = "660 root apppw"
check "the module is installed" test -f "$module"
check "the config is a conffile" grep -qx /etc/apppw/apppw.conf /var/lib/dpkg/info/apppw.conffiles
check "the PAM service is a conffile" grep -qx /etc/pam.d/apppw-ctl /var/lib/dpkg/info/apppw.conffiles
check "completions are installed" test -s /usr/share/bash-completion/completions/apppw-ctl -a -s /usr/share/zsh/vendor-completions/_apppw-ctl -a -s /usr/share/fish/vendor_completions.d/apppw-ctl.fish
for page in apppw-ctl pam_apppw apppw.conf apppw-web; do
    check "man $page renders" sh -c "man $page 2>/dev/null | grep -q ."
done

# The web page (apppw-web(8)): installed, and off until the administrator turns it on.
check "apppw-web is installed root:root 755" test "$(stat -c '%a %U %G' /usr/sbin/apppw-web)" = "755 root root"
check "the apppw-web account exists, with no login" test "$(getent passwd apppw-web | cut -d: -f7)" = /usr/sbin/nologin
for file in /etc/apppw/web.conf /etc/pam.d/apppw-web; do
    check "$file is a conffile" grep -qx "$file" /var/lib/dpkg/info/apppw.conffiles
done
units=(apppw-web.socket apppw-web.service apppw-web-session.socket apppw-web-session@.service)
for unit in "${units[@]}"; do
    check "the unit $unit is installed" test -s "/usr/lib/systemd/system/$unit"
    check "the unit $unit is not enabled" sh -c "! find /etc/systemd/system -name '$unit' | grep -q ."
done
check "systemd-analyze verifies the units" systemd-analyze verify "${units[@]/#//usr/lib/systemd/system/}"
# The front's sandbox, as systemd rates it: 1.0 or less ("SAFE" goes up to 1.9).
check "the front's unit is rated at most 1.0 by systemd-analyze security" \
    systemd-analyze security --offline=yes --threshold=10 /usr/lib/systemd/system/apppw-web.service
check "the front refuses to start until web.conf names the origin" sh -c \
    "setpriv --reuid=apppw-web --regid=apppw-web --clear-groups /usr/sbin/apppw-web 2>&1 | grep -q 'origin. is missing'"
# Every subcommand and option apppw-ctl --help lists is in its man page: the installed file itself
# (`man -l`), never a formatted copy man-db cached from an earlier install (the package's files
# all carry the same fixed date, so a stale cache looks current).
manual=$(man -l /usr/share/man/man1/apppw-ctl.1.gz 2>/dev/null | col -b)
for word in $(/usr/bin/apppw-ctl --help | sed -n '/^Commands:/,/^$/p' | awk 'NR>1 && $1 != "help" {print $1}') \
            $(/usr/bin/apppw-ctl --help | grep -oE -- '--[a-z-]+' | sort -u); do
    check "apppw-ctl(1) documents $word" grep -qF -- "$word" <<<"$manual"
done

echo "== a new user mints, authenticates through the installed module, revokes"
id "$user" >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin "$user"
echo "$user:$password" | chpasswd
shown=$(printf '%s\n' "$password" | setpriv --reuid="$user" --regid="$user" --init-groups -- \
    /usr/bin/python3 tests/helpers/run-in-pty.py /usr/bin/apppw-ctl new "Package test")
code=$(printf '%s\n' "$shown" | grep -E '^ +[0-9a-z]{4} [0-9a-z]{4} [0-9a-z]{4} [0-9a-z]{4}' | tr -d ' \r')
check "the user was shown a code" test ${#code} -eq 16
cp packaging/examples/pam.d/mail-apppw-only /etc/pam.d/apppw-pkgtest
check "pamtester accepts the code" sh -c "echo '$code' | pamtester apppw-pkgtest $user authenticate acct_mgmt"
check "the user revokes it" setpriv --reuid="$user" --regid="$user" --init-groups -- /usr/bin/apppw-ctl revoke "Package test"
check "pamtester refuses the revoked code" sh -c "! echo '$code' | pamtester apppw-pkgtest $user authenticate"
rm -f /etc/pam.d/apppw-pkgtest

echo "== remove keeps the store; purge leaves nothing"
dpkg -r apppw
check "remove keeps the store" test -f /var/lib/apppw/apppw.db
check "remove takes the program" test ! -e /usr/bin/apppw-ctl -a ! -e "$module"
dpkg -P apppw
check "purge removes the store" test ! -e /var/lib/apppw
check "purge removes /etc/apppw" test ! -e /etc/apppw
check "purge removes /etc/pam.d/apppw-ctl" test ! -e /etc/pam.d/apppw-ctl
check "purge removes /etc/pam.d/apppw-web" test ! -e /etc/pam.d/apppw-web
check "purge removes the account and the group" sh -c '! getent passwd apppw && ! getent group apppw'
check "purge removes the web page's account and group" sh -c '! getent passwd apppw-web && ! getent group apppw-web'
check "purge removes the statoverride" sh -c '! dpkg-statoverride --list /usr/bin/apppw-ctl'
userdel "$user"

if [ "$deb_only" = true ]; then
    echo "packages: $passed passed, 0 failed (the .deb on $(. /etc/os-release && echo "$PRETTY_NAME"))"
    exit 0
fi

# Looked for only now: --deb-only runs after `make deb` alone, with no .rpm built.
rpmfile=$(ls -t target/rpm/apppw-*.rpm | head -n 1)
echo "== rpm $rpmfile"
check "rpm: the file name is NAME-VERSION-RELEASE.ARCH.rpm" \
    test "$(basename "$rpmfile")" = "$(rpm -qp --qf '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm' "$rpmfile")"
listing=$(rpm -qlpv "$rpmfile")
echo "$listing"
flags=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpmfile")
requires=$(rpm -qp --qf '[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]' "$rpmfile")
libdir=$(rpm --target "$(rpm -qp --qf '%{ARCH}' "$rpmfile")" --eval '%{_libdir}' 2>/dev/null | tail -n 1)
check "rpm: apppw-ctl is -rwsr-xr-x root root" grep -qE '^-rwsr-xr-x +1 root +root .* /usr/bin/apppw-ctl$' <<<"$listing"
check "rpm: the module is in $libdir/security" grep -qE " $libdir/security/pam_apppw.so\$" <<<"$listing"
for file in /etc/apppw/apppw.conf /etc/apppw/web.conf /etc/pam.d/apppw-ctl /etc/pam.d/apppw-web; do
    check "rpm: $file is %config(noreplace)" grep -qx "cn $file" <<<"$flags"
done
check "rpm: apppw-web is -rwxr-xr-x root root" grep -qE '^-rwxr-xr-x +1 root +root .* /usr/sbin/apppw-web$' <<<"$listing"
for unit in apppw-web.socket apppw-web.service apppw-web-session.socket apppw-web-session@.service; do
    check "rpm: the unit $unit" grep -qE " /usr/lib/systemd/system/$unit\$" <<<"$listing"
done
check "rpm: the HTTP socket is for nginx's group" grep -qx 'SocketGroup=nginx' \
    <(rpm2cpio "$rpmfile" | cpio -i --quiet --to-stdout ./usr/lib/systemd/system/apppw-web.socket)
check "rpm: owns /var/lib/apppw, root:apppw 2770" grep -qE '^drwxrws--- +[0-9]+ root +apppw .* /var/lib/apppw$' <<<"$listing"
for dir in /etc/apppw /usr/share/doc/apppw /usr/share/doc/apppw/examples/{pam.d,dovecot,postfix,nginx,fail2ban/filter.d,fail2ban/jail.d}; do
    check "rpm: owns $dir, root:root 755" grep -qE "^drwxr-xr-x +[0-9]+ root +root .* $dir\$" <<<"$listing"
done
check "rpm: the sysusers.d file" grep -qE ' /usr/lib/sysusers.d/apppw.conf$' <<<"$listing"
# The man pages and completions the .deb checks for above; the spec gzips the pages itself.
for page in man1/apppw-ctl.1 man8/pam_apppw.8 man5/apppw.conf.5 man8/apppw-web.8; do
    check "rpm: the man page $page" grep -qE " /usr/share/man/$page\\.gz\$" <<<"$listing"
done
for file in /usr/share/bash-completion/completions/apppw-ctl /usr/share/zsh/site-functions/_apppw-ctl \
            /usr/share/fish/vendor_completions.d/apppw-ctl.fish; do
    check "rpm: the completion $file" grep -qE " $file\$" <<<"$listing"
done
check "rpm: Requires(pre): shadow-utils" grep -qx 'shadow-utils pre' <<<"$requires"
for when in post postun; do
    check "rpm: Requires($when): policycoreutils where the targeted policy is" \
        grep -qx "(policycoreutils if selinux-policy-targeted) $when" <<<"$requires"
done
# Every document and example the .deb ships, as %doc.
docs=(README.md:README.md)
for file in docs/*.md; do docs+=("$file:$(basename "$file")"); done
for file in packaging/examples/README.md packaging/examples/*/*; do docs+=("$file:examples/${file#packaging/examples/}"); done
for file in packaging/fail2ban/*/apppw*.conf; do docs+=("$file:examples/fail2ban/${file#packaging/fail2ban/}"); done
for entry in "${docs[@]}"; do
    check "rpm: ${entry%%:*} is %doc" grep -qx "d /usr/share/doc/apppw/${entry#*:}" <<<"$flags"
done
scripts=$(rpm -qp --scripts "$rpmfile")
echo "$scripts"
check "rpm: %pre hands systemd-sysusers the shipped sysusers.d file" \
    cmp -s packaging/sysusers.d/apppw.conf <(sed -n "/<<'SYSUSERS'\$/,/^SYSUSERS\$/p" <<<"$scripts" | sed '1d;$d')
check "rpm: %pre falls back to groupadd" grep -q 'groupadd --system apppw' <<<"$scripts"
check "rpm: %pre falls back to useradd" grep -q 'useradd --system --gid apppw' <<<"$scripts"
check "rpm: %post sets up the store" grep -q '/usr/bin/apppw-ctl init' <<<"$scripts"
check "rpm: %pre falls back to useradd for apppw-web" grep -q 'useradd --system --gid apppw-web' <<<"$scripts"

echo "== selinux"
check "rpm: the policy module is the one built" \
    cmp -s target/selinux/apppw.pp <(rpm2cpio "$rpmfile" | cpio -i --quiet --to-stdout ./usr/share/selinux/packages/apppw.pp)
for file in apppw.te apppw.if apppw.fc; do
    check "rpm: the policy source $file is %doc" grep -qx "d /usr/share/doc/apppw/selinux/$file" <<<"$flags"
done
check "rpm: %post loads the policy module" grep -q 'semodule -X 200 -i /usr/share/selinux/packages/apppw.pp' <<<"$scripts"
# %post's SELinux block alone, with a semodule that fails and a stand-in for /etc/selinux/config
# (it runs nothing else): the install goes on, and the warning says what to run by hand.
fake=$(mktemp -d)
printf '#!/bin/sh\nexit 1\n' >"$fake/semodule" && chmod +x "$fake/semodule" && touch "$fake/config"
rpm -qp --qf '%{POSTIN}' "$rpmfile" | sed -n '\|^if \[ -f /etc/selinux/config \]|,/^fi$/p' |
    sed "s|/etc/selinux/config|$fake/config|" >"$fake/post.sh"
post_status=0
post_said=$(PATH="$fake:$PATH" sh "$fake/post.sh" 2>&1) || post_status=$?
rm -rf "$fake"
check "rpm: %post goes on when semodule fails" test "$post_status" -eq 0
check "rpm: %post says what to run when semodule fails" grep -qF \
    'semodule -X 200 -i /usr/share/selinux/packages/apppw.pp && restorecon -R /var/lib/apppw' <<<"$post_said"
check "rpm: %post relabels the store" grep -q 'restorecon -R /var/lib/apppw' <<<"$scripts"
check "rpm: %postun removes the policy module" grep -q 'semodule -X 200 -r apppw' <<<"$scripts"
check "the policy module links against a reference policy and grants what the store needs" \
    bash packaging/selinux/check-module.sh target/selinux/apppw.pp

echo "== arm64"
paths=$(make -s module-paths TARGET=aarch64-unknown-linux-gnu)
echo "$paths"
check "arm64 .deb: the module follows the multiarch triplet" grep -qx 'deb: usr/lib/aarch64-linux-gnu/security/pam_apppw.so' <<<"$paths"
check "aarch64 .rpm: the module is in /usr/lib64/security" grep -qx 'rpm: /usr/lib64/security/pam_apppw.so' <<<"$paths"

echo "packages: $passed passed, 0 failed"
