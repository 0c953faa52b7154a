#!/usr/bin/env bash
# Needs root. Repeated ~/.cage/reload requests, each leaving a process in
# the old generation, keep at most max_generations live cage inits of the
# user (the oldest are ended), and `cage-admin list` (and --json) shows
# every live generation with its number and init pid.
source "$(dirname "$0")/../lib.sh"

syslog_capture
cage_env
make_user genu
A() { "$CAGE_ADMIN" --config "$T_CONF" "$@"; }
A user enable genu >/dev/null
cap=2
echo "max_generations = $cap" >>"$T_CONF/cage.ini"
uid=$(id -u genu)
rec="/run/cage/$uid.rec"
# live_inits: pids of genu's live cage inits, sorted.
live_inits() { pgrep -x cage-init -a | awk '$3 == "genu" {print $1}' | sort -n; }
# keep_busy: a process of genu that outlives the entry in the current cage.
keep_busy() { A enter genu -- sh -c 'setsid sleep 300 </dev/null >/dev/null 2>&1 &' >/dev/null 2>&1; }

keep_busy
check "the first generation is built" test -f "$rec"
g0=$(sed -n 's/^generation=//p' "$rec")
max_seen=$(live_inits | wc -l)
for i in 1 2 3 4; do
    # Age the record past reload_interval, then ask for a reload.
    sed -i 's/^created=.*/created=0/' "$rec"
    A enter genu -- touch /home/genu/.cage/reload >/dev/null 2>&1
    keep_busy
    n=$(live_inits | wc -l)
    [ "$n" -gt "$max_seen" ] && max_seen=$n
done
gen_now=$(sed -n 's/^generation=//p' "$rec")
check_eq "each of the 4 reloads built a generation" "$((g0 + 4))" "$gen_now"
check_eq "live cage inits of genu never exceeded max_generations = $cap" "$cap" "$max_seen"
check_eq "exactly $cap are alive now" "$cap" "$(live_inits | wc -l)"
check_contains "ending the oldest is logged" \
    "user genu: ended old cage generation" "$(cat "$T_SYSLOG")"
listed=$(A list | awk '$1 == "genu" && $5 != "-" {print $5}' | sort -n)
check_eq "cage-admin list shows every live init" "$(live_inits)" "$listed"
check_eq "list: the generations are the newest two, current first" \
    "$(printf '%s current\n%s old' "$gen_now" "$((gen_now - 1))")" "$(A list | awk '$1 == "genu" {print $3, $4}')"
json=$(A --json list)
check_eq "list --json: every live generation with its number and init pid" \
    "$(A list | awk '$1 == "genu" {print $3, $5}')" \
    "$(echo "$json" | python3 -c 'import json,sys
for r in json.load(sys.stdin):
    if r["user"] == "genu": print(r["generation"], r["init_pid"])')"
finish
