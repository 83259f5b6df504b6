# Packages. `make deb` and `make rpm` each build everything they need; `make package-test`
# builds the .deb and the .rpm and runs the package tests (root, Debian; changes the host).
CARGO ?= cargo

.PHONY: build completions deb rpm package-tools package-test

build:
	$(CARGO) build --release --workspace --locked

completions: build
	mkdir -p target/release/completions
	target/release/apppw-ctl completions bash > target/release/completions/apppw-ctl.bash
	target/release/apppw-ctl completions zsh > target/release/completions/_apppw-ctl
	target/release/apppw-ctl completions fish > target/release/completions/apppw-ctl.fish

# cargo-deb and cargo-generate-rpm, from crates.io, unless already installed.
package-tools:
	command -v cargo-deb >/dev/null || $(CARGO) install --locked cargo-deb
	command -v cargo-generate-rpm >/dev/null || $(CARGO) install --locked cargo-generate-rpm

deb: completions package-tools
	$(CARGO) deb -p apppw-ctl --no-build --locked -o target/debian/

rpm: completions package-tools
	mkdir -p target/rpm
	$(CARGO) generate-rpm -p apppw-ctl -o target/rpm/apppw.x86_64.rpm

package-test: deb rpm
	bash packaging/test-packages.sh
