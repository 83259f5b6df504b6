# Sourced by the package tests. `check DESCRIPTION COMMAND...` runs COMMAND and counts it in
# $passed; a failure ends the test, naming the check ("$check_what FAILED: DESCRIPTION").
passed=0
check() {
    local what=$1; shift
    if "$@"; then
        passed=$((passed + 1))
    else
        echo "${check_what:-test} FAILED: $what" >&2
        exit 1
    fi
}
