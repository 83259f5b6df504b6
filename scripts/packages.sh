# Debian packages the build, the demo and the tests need. Sourced by the scripts in scripts/.
# gcc, g++: the bundled SQLite and libFuzzer. libpam0g-dev: the module and the test client link
# -lpam. libpam-wrapper: points libpam at a service directory of our own, so nothing under
# /etc/pam.d is touched. binutils: nm for the
# export check. util-linux: setpriv, to run commands as real unprivileged users. passwd: useradd.
# python3: a pseudo-terminal for the re-authentication tests. perl: exec with an empty argv.
# faketime: a later clock for expiry tests. fail2ban: fail2ban-regex checks the shipped filter.
# systemd-journal-remote: turns the test's log lines into a real journal file, as journald keeps
# them on Debian 12 and 13 (no syslog daemon); python3-systemd: fail2ban's systemd backend reads
# it (Debian 12's fail2ban only recommends it).
# dovecot-imapd, dovecot-pop3d, dovecot-managesieved, dovecot-submissiond, dovecot-lmtpd, postfix:
# the real mail servers of tests/tests/mail.rs (every protocol Dovecot authenticates, and LMTP,
# which must not).
# lintian, rpm (rpmbuild, which `make rpm` uses; rpm2cpio), cpio, pamtester, man-db,
# bsdextrautils (col), make: the package tests. selinux-policy-dev, checkpolicy, semodule-utils:
# `make selinux` builds the RPM's SELinux policy module with them; setools (sesearch, seinfo):
# the package test checks that module linked against Debian's reference policy.
# debootstrap: the Debian 13 root of scripts/debian13.sh.
# postgresql: the real PostgreSQL server of tests/src/postgres.rs (initdb and pg_ctl under
# /usr/lib/postgresql/VERSION/bin: 15 on Debian 12, 17 on 13); the tests start their own servers,
# never the package's cluster. openssl: the command that makes those servers' test CA and
# certificates. ca-certificates: the system CA store a PostgreSQL store may trust instead of a CA
# file. The store's TLS is rustls with ring, built by cargo with gcc: no -dev package
# (docs/POSTGRESQL.md).
# libpam-google-authenticator, oathtool: a second factor in the apppw-web stack, answered with
# TOTP codes oathtool computes (tests/tests/web_session.rs). systemd: systemd-socket-activate
# serves the web helper's socket as the shipped unit does (the CI machine has no systemd as PID
# 1). nginx, chromium, chromium-driver, python3-selenium: the web page behind the shipped nginx
# example, driven in a real browser (tests/tests/web.rs); libnss3-tools: certutil, which makes
# the browser trust the test's certificate as a site's would be.
APPPW_DEBIAN_PACKAGES=(gcc g++ libc6-dev libpam0g-dev libpam-modules libpam-runtime libpam-wrapper binutils util-linux passwd python3 perl faketime fail2ban systemd-journal-remote python3-systemd dovecot-imapd dovecot-pop3d dovecot-managesieved dovecot-submissiond dovecot-lmtpd postfix lintian rpm cpio pamtester man-db bsdextrautils make selinux-policy-dev checkpolicy semodule-utils setools debootstrap postgresql openssl ca-certificates libpam-google-authenticator oathtool systemd nginx chromium chromium-driver python3-selenium libnss3-tools)

# Installs them with apt-get (root only). Always runs `apt-get update` first, so a fresh machine
# gets current package lists.
install_debian_packages() {
    if [ "$(id -u)" != 0 ]; then
        echo "not root: assuming ${APPPW_DEBIAN_PACKAGES[*]} are installed" >&2
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Postfix asks how to configure itself; the tests bring their own configuration.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    # Installing dovecot, postfix or fail2ban must not start their default daemons: the tests
    # start their own. policy-rc.d answers "not now" for the length of the install.
    local guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        guard=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$guard" && chmod 755 "$guard"
    fi
    local status=0
    apt-get install -y -qq --no-install-recommends "${APPPW_DEBIAN_PACKAGES[@]}" >/dev/null || status=$?
    [ -z "$guard" ] || rm -f "$guard"
    return "$status"
}
