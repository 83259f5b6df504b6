//! Link the module with `-z nodelete`: libpam dlcloses it after every login, and a Rust cdylib
//! whose thread-local destructors outlive the unload crashes its host (rust-lang/rust#88737).
//! Staying resident costs one mapping per process.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
