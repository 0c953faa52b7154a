#!/usr/bin/env bash
# Needs root. pam_cage.so's own results, seen by calling its pam_sm_*
# functions with a real libpam handle (tests/c/pam_harness.c): arguments,
# PAM_SUCCESS / PAM_IGNORE / PAM_SESSION_ERR, fail closed, and the syslog
# lines. The full su login is tests/e2e/10-su.sh.
source "$(dirname "$0")/../lib.sh"

rshared_root
syslog_capture
cage_env
make_user capi1
make_user capi2
"$CAGE_ADMIN" --config "$T_CONF" user enable capi1 >/dev/null
uid1=$(id -u capi1)

gcc -std=c11 -Wall -Wextra -Werror -o "$T_TMP/pam_harness" "$REPO/tests/c/pam_harness.c" -lpam -ldl ||
    { echo "cannot build pam_harness" >&2; exit 1; }
# session USER ARGS...: the module's result for USER under service cage-test.
session() {
    local u=$1
    shift
    "$T_TMP/pam_harness" "$PAM_CAGE_SO" cage-test "$u" "$@" 2>&1
}
log_since() { sleep 0.3; cat "$T_SYSLOG"; : >"$T_SYSLOG"; }

echo "# results"
: >"$T_SYSLOG"
host_pidns=$(readlink /proc/self/ns/pid)
out=$("$T_TMP/pam_harness" -c 'ls /home; readlink /proc/self/ns/pid' \
    "$PAM_CAGE_SO" cage-test capi1 "config=$T_CONF" 2>&1)
check_eq "enabled user: PAM_SUCCESS, and a forked child sees only capi1's home" \
    "$(printf 'PAM_SUCCESS\ncapi1')" "$(echo "$out" | head -n 2)"
child_pidns=$(echo "$out" | sed -n 3p)
check_contains "the forked child has a working /proc/self" "pid:[" "$child_pidns"
[ "$child_pidns" != "$host_pidns" ]
check_eq "the forked child is born in the cage's PID namespace" "0" "$?"
log=$(log_since)
echo "$log" >"$T_SYSLOG.all"
check_contains "syslog: entry line with service, user, generation, built/joined, latency" \
    "pam_cage(cage-test): user capi1 entered cage generation" "$log"
echo "$log" | grep -qE 'pam_cage\(cage-test\): user capi1 entered cage generation [0-9]+ \((built|joined)\) in [0-9]+ us'
check_eq "syslog: the entry line has the documented form" "0" "$?"
check_eq "not enabled: PAM_IGNORE" "PAM_IGNORE" "$(session capi2 "config=$T_CONF")"
check_eq "root: PAM_IGNORE" "PAM_IGNORE" "$(session root "config=$T_CONF")"
check_eq "a system user: PAM_IGNORE" "PAM_IGNORE" "$(session daemon "config=$T_CONF")"
check_eq "not-caged users leave no syslog line" "" "$(log_since | grep -F 'pam_cage(cage-test)')"

echo "# arguments"
check_eq "CageFS form '100 1': PAM_SUCCESS" "PAM_SUCCESS" "$(session capi1 "config=$T_CONF" 100 1)"
check_eq "CageFS form '100 0' disables the module: PAM_IGNORE" "PAM_IGNORE" "$(session capi1 "config=$T_CONF" 100 0)"
check_eq "min_uid above the user's uid: PAM_IGNORE" "PAM_IGNORE" \
    "$(session capi1 "config=$T_CONF" "min_uid=$((uid1 + 1))")"
check_eq "positional min uid above the user's uid: PAM_IGNORE" "PAM_IGNORE" \
    "$(session capi1 "config=$T_CONF" "$((uid1 + 1))" 1)"
log_since >/dev/null
# A min_uid= given on some PAM lines and not on others decides only who
# the line cages, never which cage: capi1 joins the cage it already has.
gen1=$(grep -oE 'user capi1 entered cage generation [0-9]+' "$T_SYSLOG.all" | tail -n 1 | grep -oE '[0-9]+$')
: >"$T_SYSLOG"
check_eq "min_uid= below the user's uid: PAM_SUCCESS" "PAM_SUCCESS" \
    "$(session capi1 "config=$T_CONF" "min_uid=$((uid1 - 1))")"
check_eq "min_uid=N (N below the user's uid) joins the same cage as a line without it" \
    "user capi1 entered cage generation $gen1 (joined)" \
    "$(log_since | grep -oE 'user capi1 entered cage generation [0-9]+ \((built|joined)\)')"
check_eq "unknown argument: ignored (PAM_SUCCESS)" "PAM_SUCCESS" "$(session capi1 "config=$T_CONF" frobnicate)"
check_contains "unknown argument: logged" 'pam_cage(cage-test): ignoring unknown argument "frobnicate"' "$(log_since)"
check_eq "debug: PAM_IGNORE for capi2" "PAM_IGNORE" "$(session capi2 "config=$T_CONF" debug)"
check_contains "debug: the reason is logged" "pam_cage(cage-test): user capi2 is not caged: not enabled" "$(log_since)"

echo "# fail closed"
check_eq "relative config=: capi1 refused" "PAM_SESSION_ERR" "$(session capi1 config=etc/cage)"
check_contains "relative config=: logged with user and reason" \
    "pam_cage(cage-test): user capi1: bad module arguments (config=etc/cage: expected an absolute path); session refused" \
    "$(log_since)"
check_eq "relative config=: root still passes (PAM_IGNORE)" "PAM_IGNORE" "$(session root config=etc/cage)"
check_eq "min_uid=abc: capi2 refused too (whom to cage is unknown)" "PAM_SESSION_ERR" \
    "$(session capi2 "config=$T_CONF" min_uid=abc)"
check_eq "config= a missing directory: refused" "PAM_SESSION_ERR" "$(session capi1 config=/nonexistent/cage)"
check_contains "missing directory: logged" "config=/nonexistent/cage: not a directory" "$(log_since)"
check_eq "PAM_USER unset: refused" "PAM_SESSION_ERR" "$(session - "config=$T_CONF")"
check_contains "PAM_USER unset: logged" "pam_cage(cage-test): no user (PAM_USER is unset), session refused" "$(log_since)"
check_eq "user unknown to NSS: refused" "PAM_SESSION_ERR" "$(session cage-no-such-user "config=$T_CONF")"
check_contains "unknown user: logged" "pam_cage(cage-test): user cage-no-such-user: no such user" "$(log_since)"

cp -a "$T_CONF/cage.mp" "$T_TMP/cage.mp.orig" 2>/dev/null
printf '/usr/share/zoneinfo\nthis is not a path\n' >>"$T_CONF/cage.mp"
check_eq "malformed cage.mp: capi1's session refused" "PAM_SESSION_ERR" "$(session capi1 "config=$T_CONF")"
check_contains "malformed cage.mp: logged with file:line" \
    "pam_cage(cage-test): user capi1: $T_CONF/cage.mp:" "$(log_since)"
check_eq "malformed cage.mp: capi2 (not caged) unaffected" "PAM_IGNORE" "$(session capi2 "config=$T_CONF")"
if [ -e "$T_TMP/cage.mp.orig" ]; then cp -a "$T_TMP/cage.mp.orig" "$T_CONF/cage.mp"; else rm -f "$T_CONF/cage.mp"; fi
check_eq "cage.mp repaired: capi1 enters again" "PAM_SUCCESS" "$(session capi1 "config=$T_CONF")"

cp -a "$T_CONF/cage.ini" "$T_TMP/cage.ini.orig"
echo "no_such_key = 1" >>"$T_CONF/cage.ini"
check_eq "broken cage.ini: capi1 refused" "PAM_SESSION_ERR" "$(session capi1 "config=$T_CONF")"
check_contains "broken cage.ini: logged with file:line" "pam_cage(cage-test): user capi1: $T_CONF/cage.ini:" "$(log_since)"
check_eq "broken cage.ini: root passes untouched" "PAM_IGNORE" "$(session root "config=$T_CONF")"
check_eq "broken cage.ini: a system user passes when min_uid= is given" "PAM_IGNORE" \
    "$(session daemon "config=$T_CONF" min_uid=1000)"
check_eq "broken cage.ini: capi1 refused even with min_uid=" "PAM_SESSION_ERR" \
    "$(session capi1 "config=$T_CONF" min_uid=1000)"
cp -a "$T_TMP/cage.ini.orig" "$T_CONF/cage.ini"

echo "# silence"
check_eq "the module prints nothing (stdout and stderr)" "PAM_SESSION_ERR" "$(session capi1 config=relative 2>&1)"

finish
