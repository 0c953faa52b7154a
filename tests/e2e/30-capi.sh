#!/usr/bin/env bash
# Needs root. The C API against a real cage: tests/c/*.c compiled with gcc
# against include/libcage.h and the built libcage.so.
#   capi_test   every function, NULL and malformed arguments, policy,
#               CAGE_ENTER_CHILDREN_ONLY;
#   mt_enter    a multi-threaded caller is refused and left unchanged;
#   exec_shell  suexec-style: enter, drop to the user, exec; exit status and
#               signals pass through the supervisor.
source "$(dirname "$0")/../lib.sh"

rshared_root
syslog_capture
cage_env
make_user capi1
make_user capi2
"$CAGE_ADMIN" --config "$T_CONF" user enable capi1 >/dev/null
mounts_before=$(mounts_snapshot)

echo "# build"
BIN=$T_TMP/bin
mkdir -p "$BIN"
cc_c() {
    local name=$1
    shift
    gcc -std=c11 -Wall -Wextra -Werror -O1 -I"$REPO/include" -o "$BIN/$name" "$REPO/tests/c/$name.c" \
        -L"$(dirname "$LIBCAGE_SO")" -Wl,-rpath,"$(dirname "$LIBCAGE_SO")" -lcage "$@"
}
check "capi_test.c compiles against libcage.h" cc_c capi_test
check "mt_enter.c compiles" cc_c mt_enter -pthread
check "exec_shell.c compiles" cc_c exec_shell
check "the header is also valid C++" g++ -fsyntax-only -x c++ -I"$REPO/include" - <<<'#include "libcage.h"
int main() { return cage_abi_version() == CAGE_ABI_VERSION ? 0 : 1; }'

echo "# capi_test"
"$BIN/capi_test" "$T_CONF" capi1 capi2 >"$T_TMP/capi_test.out" 2>"$T_TMP/capi_test.err"
rc=$?
sed 's/^/    /' "$T_TMP/capi_test.out" "$T_TMP/capi_test.err"
check_eq "capi_test passed every check" "0" "$rc"
check_eq "libcage printed nothing on stderr" "" "$(cat "$T_TMP/capi_test.err")"
sleep 0.3
log=$(cat "$T_SYSLOG")
check_contains "a refused call is logged with the user and reason" \
    "libcage(capi_test): user cage-no-such-user: no such user" "$log"
check_eq "and logged once" "1" "$(grep -c 'user cage-no-such-user: no such user' "$T_SYSLOG")"
check_contains "an invalid argument is logged" "cage_enter_at: uid $(id -u capi1): invalid argument: config_dir is NULL" "$log"
check_contains "the children-only entry is logged" "libcage(capi_test): user capi1 entered cage generation" "$log"

echo "# mt_enter"
: >"$T_SYSLOG"
out=$("$BIN/mt_enter" "$T_CONF" capi1 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
check_eq "mt_enter passed every check" "0" "$rc"
sleep 0.3
check_contains "the thread refusal is logged" "user capi1: process has" "$(cat "$T_SYSLOG")"

echo "# exec_shell"
host_pidns=$(readlink /proc/self/ns/pid)
out=$("$BIN/exec_shell" "$T_CONF" capi1 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
check_eq "the shell ran and exited 0" "0" "$rc"
cage_pidns=$(echo "$out" | head -n 1)
check_contains "readlink /proc/self/ns/pid works inside" "pid:[" "$cage_pidns"
[ "$cage_pidns" != "$host_pidns" ]
check_eq "the shell is in another PID namespace than the host" "0" "$?"
check_eq "/proc/self/status is the shell's, as capi1" \
    "$(id -u capi1)" "$(echo "$out" | awk '/^Uid:/ {print $2}')"
check_eq "inside, the shell's own pid is small (the cage's numbering)" "yes" \
    "$(echo "$out" | awk '/^Pid:/ {print ($2 < 100) ? "yes" : "no:" $2}')"
out=$("$BIN/exec_shell" "$T_CONF" capi1 /bin/sh -c 'ls /home; id -un; test -r /etc/shadow && echo SHADOW' 2>&1)
check_eq "inside the cage: only capi1's home, running as capi1, no shadow" "$(printf 'capi1\ncapi1')" "$out"
check_eq "capi2 is not caged (exit 121)" "121" \
    "$("$BIN/exec_shell" "$T_CONF" capi2 /bin/true >/dev/null 2>&1; echo $?)"

echo "# exit status and signals pass through the supervisor"
"$BIN/exec_shell" "$T_CONF" capi1 /bin/sh -c 'exit 7'
check_eq "sh -c 'exit 7' -> the program exits 7" "7" "$?"
status() { python3 -c 'import subprocess, sys; print(subprocess.run(sys.argv[1:]).returncode)' "$@"; }
check_eq "sh -c 'kill -TERM \$\$' -> the program dies by SIGTERM" "-15" \
    "$(status "$BIN/exec_shell" "$T_CONF" capi1 /bin/sh -c 'kill -TERM $$')"
check_eq "sh -c 'kill -SEGV \$\$' -> the program dies by SIGSEGV" "-11" \
    "$(status "$BIN/exec_shell" "$T_CONF" capi1 /bin/sh -c 'kill -SEGV $$')"
"$BIN/exec_shell" "$T_CONF" capi1 /bin/sh -c \
    'trap "echo got-TERM; exit 42" TERM; trap "echo got-USR1" USR1; echo ready; while :; do sleep 0.1; done' \
    >"$T_TMP/trap.out" 2>&1 &
sup=$!
for _ in $(seq 100); do grep -q ready "$T_TMP/trap.out" && break; sleep 0.1; done
check_contains "the trapping shell started" "ready" "$(cat "$T_TMP/trap.out")"
kill -USR1 "$sup"
sleep 0.5
kill -TERM "$sup"
wait "$sup"
check_eq "SIGTERM to the supervisor reaches the child (trap exits 42)" "42" "$?"
check_eq "SIGUSR1 and SIGTERM were forwarded once each" "$(printf 'ready\ngot-USR1\ngot-TERM')" "$(cat "$T_TMP/trap.out")"

"$BIN/exec_shell" "$T_CONF" capi1 /bin/sleep 7777 &
sup=$!
for _ in $(seq 50); do pgrep -u capi1 -fx '/bin/sleep 7777' >/dev/null && break; sleep 0.1; done
inner=$(pgrep -u capi1 -fx '/bin/sleep 7777')
check "the command runs as capi1" test -n "$inner"
kill -KILL "$sup"
wait "$sup" 2>/dev/null
for _ in $(seq 50); do [ -d "/proc/$inner" ] || break; sleep 0.1; done
check_fail "SIGKILL of the supervisor kills the command (parent-death signal)" test -d "/proc/${inner:-0}"

echo "# the host is unchanged"
check_eq "host mount table unchanged" "$mounts_before" "$(mounts_snapshot)"
check "this shell still sees /etc/shadow" test -e /etc/shadow

finish
