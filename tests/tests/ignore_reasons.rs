//! Every ignored test says why in one of the two agreed phrasings, `NEEDS_ROOT` and
//! `CHANGES_THE_HOST` (tests/src/lib.rs). `#[ignore = "..."]` takes only a literal, so each test
//! carries a copy; this keeps the copies word for word the same.

use std::path::Path;

use apppw_tests::{CHANGES_THE_HOST, NEEDS_ROOT};

#[test]
fn every_ignored_test_gives_one_of_the_two_reasons() {
    let allowed = [
        format!("#[ignore = {NEEDS_ROOT:?}]"),
        format!("#[ignore = {CHANGES_THE_HOST:?}]"),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut ignored = 0;
    // The test files, and the macro that defines tests on both backends.
    let macro_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/backend.rs");
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .chain([macro_file]);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.starts_with("#[ignore") {
                assert!(
                    allowed.iter().any(|a| a == line),
                    "{}:{}: {line}\nexpected one of {allowed:#?}",
                    path.display(),
                    n + 1
                );
                ignored += 1;
            }
        }
    }
    assert!(ignored > 0, "no ignored test found in {}", dir.display());
}
