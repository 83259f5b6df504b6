# Packages. `make deb` and `make rpm` each build everything they need; `make package-test`
# builds the .deb and the .rpm and runs the package tests (root, Debian; changes the host).
CARGO ?= cargo
VERSION = $(shell $(CARGO) pkgid -p apppw-ctl | sed 's/.*[#@]//')
RPM_ARCH := $(shell uname -m)

.PHONY: build completions deb rpm selinux package-tools package-test

build:
	$(CARGO) build --release --workspace --locked

completions: build
	mkdir -p target/release/completions
	target/release/apppw-ctl completions bash > target/release/completions/apppw-ctl.bash
	target/release/apppw-ctl completions zsh > target/release/completions/_apppw-ctl
	target/release/apppw-ctl completions fish > target/release/completions/apppw-ctl.fish

# cargo-deb from crates.io, unless already installed. rpmbuild comes with Debian's rpm package.
package-tools:
	command -v cargo-deb >/dev/null || $(CARGO) install --locked cargo-deb
	command -v rpmbuild >/dev/null || { echo "rpmbuild is missing: apt-get install rpm" >&2; exit 1; }

deb: completions package-tools
	$(CARGO) deb -p apppw-ctl --no-build --locked -o target/debian/

# The SELinux policy module, target/selinux/apppw.pp, built with Debian's selinux-policy-dev.
# Policy module format 19 (checkmodule -c 19) loads on libsepol 2.9 and later (RHEL 8 on);
# -M: the policies it is for (Fedora's and RHEL's targeted, Debian's default) are MCS.
selinux:
	rm -rf target/selinux
	mkdir -p target/selinux
	cp packaging/selinux/apppw.te packaging/selinux/apppw.if packaging/selinux/apppw.fc target/selinux/
	cd target/selinux && $(MAKE) -f /usr/share/selinux/devel/Makefile \
		CHECKMODULE="checkmodule -M -c 19" apppw.pp

# target/rpm/apppw-VERSION-1.ARCH.rpm, from packaging/rpm/apppw.spec.
rpm: completions selinux package-tools
	rm -rf target/rpm/build
	mkdir -p target/rpm
	rpmbuild -bb --quiet --target $(RPM_ARCH) \
		--define "_topdir $(CURDIR)/target/rpm/build" \
		--define "apppw_top $(CURDIR)" \
		--define "apppw_bin $(CURDIR)/target/release" \
		--define "apppw_selinux $(CURDIR)/target/selinux" \
		--define "apppw_version $(VERSION)" \
		packaging/rpm/apppw.spec
	mv target/rpm/build/RPMS/$(RPM_ARCH)/apppw-*.rpm target/rpm/
	rm -rf target/rpm/build

package-test: deb rpm
	bash packaging/test-packages.sh
