#!/usr/bin/env bash
# Needs root. The entry benchmark in its short mode (bench/entry.sh --short):
# passes when it ran to completion and printed the table and the goals.
# Figures are reported, never asserted. Also checks that the benchmark
# undid its changes (user benchu, its cage, PAM files, mounts).
source "$(dirname "$0")/../lib.sh"

before_mounts=$(mounts_snapshot)
pam_su_before=$(cat /etc/pam.d/su)
ns_conf_before=$(cat /etc/security/namespace.conf 2>/dev/null)

out=$("$REPO/bench/entry.sh" --short 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/    /'

check_eq "bench/entry.sh --short ran to completion" "0" "$rc"
check_contains "the single-entry table is printed" "== single entries" "$out"
check_contains "... with the baseline row" "setpriv --init-groups (baseline)" "$out"
check_contains "... and a warm cage entry figure" "cage-admin enter, warm (pinned)" "$out"
check_contains "the parallel table is printed" "-way parallel" "$out"
check_contains "the mount-count table is printed" "== host mount count" "$out"
check_contains "the goals are printed" "== goals (reported, not asserted)" "$out"
check_contains "the in-process entry rows are printed" "warm, children-only (no fork)" "$out"
check_contains "the per-step breakdown is printed" "== where the time goes" "$out"
check_contains "... for a warm entry" "  warm (" "$out"
check_contains "... and a cold one" "  cold (" "$out"
check_contains "the init's memory is printed" "init of benchu: VmRSS " "$out"
check_lacks "the live-cages row is full mode only" "live cages (C:" "$out"
check_lacks "no row failed to run" "n/a:" "$out"
check_lacks "every view check passed" "  FAIL " "$out"

echo "# the benchmark cleaned up after itself"
check_fail "user benchu is gone" id benchu
check_eq "no live cage record of benchu" "" "$(grep -l '^user=benchu$' /run/cage/*.rec 2>/dev/null)"
# The shared cage-seed may carry the command line of whoever started it.
check_eq "no cage init of benchu's bench config left" "" "$(for p in $(pgrep -f 'cage-bench\.'); do [ "$(cat /proc/$p/comm 2>/dev/null)" = cage-seed ] || echo "$p"; done)"
check_eq "/etc/pam.d/su unchanged" "$pam_su_before" "$(cat /etc/pam.d/su)"
check_eq "/etc/security/namespace.conf unchanged" "$ns_conf_before" "$(cat /etc/security/namespace.conf 2>/dev/null)"
check_eq "host mount table unchanged" "$before_mounts" "$(mounts_snapshot)"
check_eq "no bench temp dir left" "" "$(ls -d /tmp/cage-bench.* 2>/dev/null)"

finish
