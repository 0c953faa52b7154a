#!/usr/bin/env bash
# Runs every test of cage: formatting, clippy, unit tests (with the header
# check), then the root end-to-end tests in tests/e2e/ (real users, real PAM,
# real su). Needs root. Prints "N passed, N failed" for the e2e suites last.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "ci/test.sh needs root: the end-to-end tests create users, mounts and PAM lines" >&2; exit 2; }
bash ci/deps.sh || exit 1
for d in "$HOME/.cargo/bin" /root/.cargo/bin; do [ -d "$d" ] && PATH="$d:$PATH"; done

step() { echo; echo "=== $*"; }
# cage-init is its own workspace (a no_std program needs panic = "abort",
# which the main workspace must never set); it shares the target dir.
INIT=(--manifest-path cage-init/Cargo.toml --target-dir target)
step "cargo fmt --check"
cargo fmt --all -- --check || exit 1
cargo fmt --manifest-path cage-init/Cargo.toml -- --check || exit 1
step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings || exit 1
cargo clippy "${INIT[@]}" --all-targets --quiet -- -D warnings || exit 1
step "cargo build --release"
cargo build --workspace --release --quiet || exit 1
cargo build "${INIT[@]}" --release --quiet || exit 1
step "cargo test (unit tests, golden plans, header check)"
cargo test --workspace --quiet 2>&1 | tee /tmp/cage-unit.log
[ "${PIPESTATUS[0]}" = 0 ] || exit 1
# Forks and panics in the child: alone, never beside other test threads.
cargo test -p libcage --lib --quiet -- --ignored --exact --test-threads=1 \
    cage::daemon::tests::a_panic_in_either_child_is_an_error_in_the_parent 2>&1 | tee -a /tmp/cage-unit.log
[ "${PIPESTATUS[0]}" = 0 ] || exit 1
cargo test "${INIT[@]}" --quiet 2>&1 | tee -a /tmp/cage-unit.log
[ "${PIPESTATUS[0]}" = 0 ] || exit 1

passed=0
failed=0
suites_failed=()
for t in tests/e2e/*.sh; do
    [ -n "${CAGE_TESTS:-}" ] && ! [[ "$t" == *${CAGE_TESTS}* ]] && continue
    step "$t"
    out=$(mktemp)
    timeout 900 bash "$t" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [ "$rc" != 0 ]; then
        suites_failed+=("$t")
        [ "${f:-0}" = 0 ] && failed=$((failed + 1))
    fi
    rm -f "$out"
done
echo
[ ${#suites_failed[@]} -gt 0 ] && echo "failed suites: ${suites_failed[*]}"
echo "e2e: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ ${#suites_failed[@]} = 0 ]
