#!/usr/bin/env bash
# Needs root. No global /proc file shows another user's uid or name inside
# a cage: with bob holding a key (so /proc/key-users lists his uid on the
# host), every readable non-pid file of amy's /proc and /proc/sys is
# scanned inside her cage for bob's uid and name. /proc/net is the host's
# network namespace and a documented gap (SECURITY.md); it is not scanned.
source "$(dirname "$0")/../lib.sh"

cage_env
A() { "$CAGE_ADMIN" --config "$T_CONF" "$@"; }
make_user cageleakamy
BOB=cageleakbob
BOB_UID=3141592
if id "$BOB" >/dev/null 2>&1; then pkill -KILL -u "$BOB"; sleep 0.2; userdel -r -f "$BOB" >/dev/null 2>&1; fi
useradd -m -u "$BOB_UID" -s /bin/bash "$BOB" 2>/dev/null || { echo "useradd $BOB failed" >&2; exit 1; }
cleanup_add "pkill -KILL -u $BOB; sleep 0.3; userdel -r -f $BOB"
A user enable cageleakamy >/dev/null
amy_uid=$(id -u cageleakamy)

# bob (uncaged) holds a key in a session keyring while the test runs.
setpriv --reuid="$BOB_UID" --regid="$(id -g $BOB)" --clear-groups \
    keyctl session - sh -c "keyctl add user cageleakbob-key secret @s >/dev/null; exec sleep 120" >/dev/null 2>&1 &
bob_pid=$!
cleanup_add "kill $bob_pid"
for i in $(seq 50); do grep -q "^ *$BOB_UID:" /proc/key-users && break; sleep 0.1; done

# Prints every readable global file of /proc that names bob (uid or name).
cat >"$T_TMP/scan.sh" <<'SCAN'
pat=$1
find /proc -mindepth 1 \( -path '/proc/[0-9]*' -o -path /proc/self -o -path /proc/thread-self -o -path /proc/net \
    -o -path /proc/sys/fs/binfmt_misc \) -prune -o -type f -readable -print 2>/dev/null |
    while read -r f; do
        timeout 2 grep -qswE "$pat" "$f" 2>/dev/null && echo "$f"
    done
true
SCAN
chmod 755 "$T_TMP/scan.sh"
pat="$BOB_UID|$BOB"

host=$(setpriv --reuid="$amy_uid" --regid="$(id -g cageleakamy)" --clear-groups bash "$T_TMP/scan.sh" "$pat")
check_contains "on the host the scan finds bob in /proc/key-users (the scan can fail)" "/proc/key-users" "$host"
cp "$T_TMP/scan.sh" /home/cageleakamy/scan.sh
chown cageleakamy /home/cageleakamy/scan.sh
inside=$(A enter cageleakamy -- bash /home/cageleakamy/scan.sh "$pat" 2>&1)
check_eq "inside amy's cage no global /proc file names bob" "" "$inside"
check_eq "/proc/key-users is empty inside" "" "$(A enter cageleakamy -- cat /proc/key-users 2>&1)"
check_contains "... and mounted read-only" "/proc/key-users" "$(A enter cageleakamy -- grep ' /proc/key-users ' /proc/self/mountinfo 2>&1 | grep ' ro,')"
check_contains "amy's own keys still work" "cageleakamy-key" "$(A enter cageleakamy -- sh -c 'keyctl add user cageleakamy-key v @s >/dev/null && keyctl show @s' 2>&1)"

finish
