#!/usr/bin/env bash
# Needs root. The C API's entry guards (issue 7, defects 4, 9 and 16):
# tests/c/fd_guard.c, run on a terminal (`script`), checks that
#   - an inheritable O_PATH descriptor of /etc/passwd is refused with
#     CAGE_ERR_LEAKED_FD and a cage_last_error naming it;
#   - a close-on-exec O_DIRECTORY descriptor of / is refused when the caller
#     says it stays in process (CAGE_ENTER_IN_PROCESS), allowed otherwise;
#   - inheritable readable host files are refused, write-only logs,
#     /dev/null and pipes pass;
#   - cage_enter_at with a missing configuration directory fails
#     (CAGE_ERR_CONFIG), never "not caged";
#   - the default mode's caged child has no controlling terminal (its own
#     session), CAGE_ENTER_PTY's has a fresh pty of the cage.
source "$(dirname "$0")/../lib.sh"

rshared_root
syslog_capture
cage_env
make_user capi1
"$CAGE_ADMIN" --config "$T_CONF" user enable capi1 >/dev/null

BIN=$T_TMP/bin
mkdir -p "$BIN"
check "fd_guard.c compiles against libcage.h" gcc -std=c11 -Wall -Wextra -Werror -O1 -I"$REPO/include" \
    -o "$BIN/fd_guard" "$REPO/tests/c/fd_guard.c" \
    -L"$(dirname "$LIBCAGE_SO")" -Wl,-rpath,"$(dirname "$LIBCAGE_SO")" -lcage

echo "# fd_guard (on a pty)"
script -qec "$BIN/fd_guard $T_CONF capi1" "$T_TMP/typescript" >"$T_TMP/fd_guard.out" 2>&1 </dev/null
rc=$?
tr -d '\r' <"$T_TMP/fd_guard.out" | sed 's/^/    /'
check_eq "fd_guard passed every check" "0" "$rc"
check_lacks "no check failed" "FAIL" "$(cat "$T_TMP/fd_guard.out")"
check_contains "every check ran" "fd_guard: 0 failures" "$(cat "$T_TMP/fd_guard.out")"
sleep 0.3
check_contains "the refusal is logged with the user and the descriptor" \
    "user capi1: file descriptor" "$(cat "$T_SYSLOG")"
check_contains "... naming the O_PATH descriptor" "(inheritable O_PATH descriptor /etc/passwd) leads outside the cage" "$(cat "$T_SYSLOG")"

finish
