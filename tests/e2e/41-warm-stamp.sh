#!/usr/bin/env bash
# Needs root. The warm path (libcage/src/cage/warm.rs): a repeated entry
# joins without rebuilding, and a change to each input it stamps instead of
# reading (cage.ini, cage.mp, conf.d, custom.etc, virt.mp, the user's passwd
# entry) still gives the next entry a new generation; who is caged (markers,
# exclude lists, min_uid=) still follows the files at once; two PAM services
# with different min_uid= give one user the same cage.
source "$(dirname "$0")/../lib.sh"

rshared_root
syslog_capture
cage_env
make_user wsu
make_user wsv
STATE=$T_TMP/state
mkdir -p "$STATE"
echo "state_dir = $STATE" >>"$T_CONF/cage.ini"
A() { "$CAGE_ADMIN" --config "$T_CONF" "$@"; }
A user enable wsu >/dev/null
A user enable wsv >/dev/null
uid=$(id -u wsu)
rec() { cat "/run/cage/$uid.rec" 2>/dev/null; }
gen() { rec | sed -n 's/^generation=//p'; }
stamp() { rec | sed -n 's/^warm.stamp=//p'; }
enter() { A enter wsu -- /bin/true >/dev/null 2>"$T_TMP/enter.err"; }
gcc -std=c11 -Wall -Wextra -Werror -o "$T_TMP/pam_harness" "$REPO/tests/c/pam_harness.c" -lpam -ldl ||
    { echo "cannot build pam_harness" >&2; exit 1; }
session() { # session SERVICE ARGS...: pam_cage's result for wsu
    local s=$1
    shift
    "$T_TMP/pam_harness" "$PAM_CAGE_SO" "$s" wsu "$@" 2>&1
}

echo "# a repeated entry joins the pinned cage"
enter
g1=$(gen)
# (Generations count on from old ones of this uid still alive: not from 1.)
check_contains "the first entry builds a cage" "user wsu entered cage generation $g1 (built)" "$(cat "$T_SYSLOG")"
check "the record carries a warm stamp" [ -n "$(stamp)" ]
enter
enter
check_eq "later entries join it" "$g1" "$(gen)"
t=$(A enter --timings wsu -- /bin/true 2>&1)
check_contains "a repeated entry takes the warm path (record, stamp, verify)" "(joined): cli-nss=" "$t"
check_contains "... verifying the init" " verify=" "$t"
check_lacks "... without reading the configuration (no policy step)" " policy=" "$t"
sleep 0.3
check_eq "... logged as joined" "3" "$(grep -c "user wsu entered cage generation $g1 (joined)" "$T_SYSLOG")"

echo "# a change to each input gives the next entry a new generation"
# changed LABEL CMD: CMD changes one input.
changed() {
    local before after
    before=$(gen)
    eval "$2"
    enter
    after=$(gen)
    check "$1: new generation (was $before, now ${after:-none})" test "${after:-0}" -gt "$before"
    enter
    check_eq "$1: the entry after joins it" "$after" "$(gen)"
}
changed "cage.ini edited" "echo '# edited' >>'$T_CONF/cage.ini'"
changed "cage.mp created" ": >'$T_CONF/cage.mp'"
changed "conf.d template edited in place" "echo '; edited' >>'$T_CONF/conf.d/base.cfg'"
changed "custom.etc/wsu file added" "mkdir -p '$T_CONF/custom.etc/wsu' && echo hi >'$T_CONF/custom.etc/wsu/motd'"
changed "custom.etc/wsu file edited in place" "echo again >>'$T_CONF/custom.etc/wsu/motd'"
changed "virt.mp created" "mkdir -p '$STATE/$(printf '%02d' $((uid % 100)))/wsu' && : >'$STATE/$(printf '%02d' $((uid % 100)))/wsu/virt.mp'"
changed "passwd entry changed" "usermod -c 'warm stamp test' wsu"
check_eq "the cage shows the changed file" "hi
again" "$(A enter wsu -- cat /etc/motd 2>&1)"

echo "# who is caged follows the files at once"
A user disable wsu >/dev/null
check_contains "disabled: the next entry is refused as not caged" "wsu is not caged" "$(A enter wsu -- /bin/true 2>&1)"
A user enable wsu >/dev/null
check "enabled again: the entry succeeds" A enter wsu -- /bin/true
mkdir -p "$T_CONF/exclude"
echo wsu >"$T_CONF/exclude/test"
check_contains "excluded: the next entry is refused as not caged" "wsu is not caged" "$(A enter wsu -- /bin/true 2>&1)"
rm "$T_CONF/exclude/test"
check "no longer excluded: the entry succeeds" A enter wsu -- /bin/true
g=$(gen)
s0=$(stamp)
echo someoneelse >"$T_CONF/exclude/other"
enter
check_eq "an exclude list naming someone else: joins the same generation" "$g" "$(gen)"
check "... and the record takes the new stamp" [ "$(stamp)" != "$s0" ]
enter
check_eq "... after which entries are warm again" "$g" "$(gen)"

echo "# min_uid= of PAM services"
: >"$T_SYSLOG"
g=$(gen)
check_eq "service A (min_uid=500): PAM_SUCCESS" "PAM_SUCCESS" "$(session svc-a "config=$T_CONF" min_uid=500)"
check_eq "service B (min_uid=1000): PAM_SUCCESS" "PAM_SUCCESS" "$(session svc-b "config=$T_CONF" min_uid=1000)"
check_eq "service A again: PAM_SUCCESS" "PAM_SUCCESS" "$(session svc-a "config=$T_CONF" min_uid=500)"
sleep 0.3
check_eq "both joined the same cage (no rebuild)" "$g" "$(gen)"
check_contains "service A's line names that generation" "pam_cage(svc-a): user wsu entered cage generation $g (joined)" "$(cat "$T_SYSLOG")"
check_contains "service B's line names that generation" "pam_cage(svc-b): user wsu entered cage generation $g (joined)" "$(cat "$T_SYSLOG")"
check_eq "a min_uid= above the user's uid passes the user through" "PAM_IGNORE" "$(session svc-c "config=$T_CONF" min_uid=$((uid + 1)))"

echo "# a second user's cage is not the first's"
A enter wsv -- /bin/true >/dev/null 2>&1
check "wsv has a record of its own" [ -f "/run/cage/$(id -u wsv).rec" ]
check_eq "wsu's generation is untouched" "$g" "$(gen)"

finish
