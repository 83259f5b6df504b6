# Packages. `make deb` and `make rpm` each build everything they need; `make package-test`
# builds the .deb and the .rpm and runs the package tests (root, Debian; changes the host).
#
# TARGET, a Rust target triple, builds them for another architecture, e.g.
#     make deb TARGET=aarch64-unknown-linux-gnu
# (this needs the target's Rust standard library and a C cross toolchain with libpam for it:
# `rustup target add`, gcc-aarch64-linux-gnu, libpam0g-dev:arm64; the Makefile points cargo at
# the cross linker). `make module-paths` prints where each package puts the PAM module for
# TARGET, without building anything.
CARGO ?= cargo
TARGET ?=

ifeq ($(TARGET),)
BIN_DIR := target/release
GNU_TYPE := $(shell dpkg-architecture -qDEB_HOST_GNU_TYPE)
RPM_ARCH := $(shell uname -m)
else
BIN_DIR := target/$(TARGET)/release
TARGET_FLAG := --target $(TARGET)
# aarch64-unknown-linux-gnu -> aarch64-linux-gnu, the GNU system type dpkg-architecture knows.
GNU_TYPE := $(shell echo $(TARGET) | sed -e 's/-unknown-/-/' -e 's/^riscv64gc-/riscv64-/' -e 's/^armv7-/arm-/')
RPM_ARCH := $(shell echo $(TARGET) | sed -e 's/-.*//' -e 's/^riscv64gc$$/riscv64/' -e 's/^armv7$$/armv7hl/' -e 's/^powerpc64le$$/ppc64le/')
# rpmbuild strips the binaries with the target's binutils.
RPM_CROSS := --define "__strip $(GNU_TYPE)-strip" --define "__objdump $(GNU_TYPE)-objdump"
# rustc links for TARGET with the host's `cc` unless told otherwise, and that cannot link for
# another architecture: name the cross compiler of the same GNU type (gcc-aarch64-linux-gnu
# installs aarch64-linux-gnu-gcc). A linker the caller sets in this variable, in the environment
# or on make's command line, is kept.
LINKER_VAR := CARGO_TARGET_$(shell echo $(TARGET) | tr a-z- A-Z_)_LINKER
ifeq ($(origin $(LINKER_VAR)),undefined)
export $(LINKER_VAR) := $(GNU_TYPE)-gcc
endif
endif
# Debian's multiarch triplet for TARGET: the .deb puts the module in /usr/lib/$(MULTIARCH)/security/.
MULTIARCH = $(shell dpkg-architecture -t$(GNU_TYPE) -qDEB_HOST_MULTIARCH 2>/dev/null)
VERSION = $(shell $(CARGO) pkgid -p apppw-ctl | sed 's/.*[#@]//')

.PHONY: build completions deb rpm selinux module-paths package-tools package-test

build:
	$(CARGO) build --release --workspace --locked $(TARGET_FLAG)

# The completions come from this machine's apppw-ctl, whatever the target: they are the same.
completions: build
ifneq ($(TARGET),)
	$(CARGO) build --release --locked -p apppw-ctl
endif
	mkdir -p $(BIN_DIR)/completions
	target/release/apppw-ctl completions bash > $(BIN_DIR)/completions/apppw-ctl.bash
	target/release/apppw-ctl completions zsh > $(BIN_DIR)/completions/_apppw-ctl
	target/release/apppw-ctl completions fish > $(BIN_DIR)/completions/apppw-ctl.fish

# cargo-deb from crates.io, unless already installed. rpmbuild comes with Debian's rpm package.
package-tools:
	command -v cargo-deb >/dev/null || $(CARGO) install --locked cargo-deb
	command -v rpmbuild >/dev/null || { echo "rpmbuild is missing: apt-get install rpm" >&2; exit 1; }

# The module is staged under multiarch/TRIPLET/security/, which the .deb's asset
# (apppw-ctl/Cargo.toml) maps to usr/lib/TRIPLET/security/.
deb: completions package-tools
	@test -n "$(MULTIARCH)" || { echo "dpkg-architecture does not know $(GNU_TYPE)" >&2; exit 1; }
	rm -rf $(BIN_DIR)/multiarch
	install -D -m 644 $(BIN_DIR)/libpam_apppw.so $(BIN_DIR)/multiarch/$(MULTIARCH)/security/pam_apppw.so
	$(CARGO) deb -p apppw-ctl --no-build --locked $(TARGET_FLAG) -o target/debian/

# The SELinux policy module, target/selinux/apppw.pp, built with Debian's selinux-policy-dev.
# Policy module format 19 (checkmodule -c 19) loads on libsepol 2.9 and later; every system the
# RPM installs on has a newer one (RHEL 9 and Fedora 35 on, since its binaries, built here on
# Debian 12, need glibc 2.34; not RHEL 8).
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
	rpmbuild -bb --quiet --target $(RPM_ARCH) $(RPM_CROSS) \
		--define "_topdir $(CURDIR)/target/rpm/build" \
		--define "apppw_top $(CURDIR)" \
		--define "apppw_bin $(CURDIR)/$(BIN_DIR)" \
		--define "apppw_selinux $(CURDIR)/target/selinux" \
		--define "apppw_version $(VERSION)" \
		packaging/rpm/apppw.spec
	mv target/rpm/build/RPMS/$(RPM_ARCH)/apppw-*.rpm target/rpm/
	rm -rf target/rpm/build

module-paths:
	@echo "deb: usr/lib/$(MULTIARCH)/security/pam_apppw.so"
	@echo "rpm: $$(rpm --target $(RPM_ARCH) --eval '%{_libdir}' 2>/dev/null | tail -n 1)/security/pam_apppw.so"

package-test: deb rpm
	bash packaging/test-packages.sh
