#!/usr/bin/env bash
# Needs root and cgroup v1 controllers (this machine: cpu, cpuacct, memory,
# pids, blkio). Per-user resource limits at entry (issue 11):
#   pids=40 stops a fork loop at 40 while another user still logs in;
#   memory=64M OOM-kills a hog inside the user's cgroup only;
#   cpu=50% holds two busy loops to about half a CPU;
#   su, the C API and cage-admin enter see the cage's cgroup on their first
#   read of /proc/self/cgroup;
#   killing every process of the "service" cgroup that built the cage leaves
#   the cage init and a second session alive;
#   a malformed limits.conf line is reported with file:line, the user caged;
#   concurrent first entries agree on the cgroup.
# Every cgroup is made below the cgroup this test runs in (per controller)
# and removed at exit; no process is moved out of that subtree.
source "$(dirname "$0")/../lib.sh"

CTRLS="cpu cpuacct memory pids blkio"
declare -A MNT OWN
for c in $CTRLS; do
    m=$(awk -v c="$c" '$9 == "cgroup" && $4 == "/" { n = split($NF, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) print $5 }' /proc/self/mountinfo | head -n 1)
    p=$(awk -F: -v c="$c" '{ n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) print $3 }' /proc/self/cgroup | head -n 1)
    if [ -z "$m" ] || [ -z "$p" ]; then
        echo "  skip  no cgroup v1 $c controller mounted: this suite needs v1 cpu, cpuacct, memory, pids and blkio"
        finish
    fi
    MNT[$c]=$m
    OWN[$c]=$p
done
# The deepest own cgroup; every other one must be above it, so one path
# below it is below our own cgroup in every hierarchy.
deep=/
for c in $CTRLS; do [ ${#OWN[$c]} -gt ${#deep} ] && deep=${OWN[$c]}; done
for c in $CTRLS; do
    case "${deep%/}/" in
        "${OWN[$c]%/}/"*) ;;
        *) echo "  skip  own cgroups are not nested (${OWN[$c]} vs $deep)"; finish ;;
    esac
done
BASE=${deep%/}/cage-e2e-$$
SVC=${deep%/}/cage-e2e-svc-$$
echo "# base $BASE (below ${deep})"
# The directories between each hierarchy's own cgroup and $deep that do
# not exist yet (made by the placement's mkdir -p), removed at exit.
MADE=()
for c in $CTRLS; do
    d=$deep
    while [ "$d" != "/" ] && [ "$d" != "${OWN[$c]}" ]; do
        [ -d "${MNT[$c]}$d" ] || MADE+=("${MNT[$c]}$d")
        d=$(dirname "$d")
    done
done

# Cleanup: every process in our cgroups killed, then every directory we
# made removed (deepest first), also the path made above them.
cg_cleanup() {
    "$CAGE_ADMIN" unmount --all >/dev/null 2>&1
    local c d i
    for i in $(seq 30); do
        local left=0
        for c in $CTRLS; do
            for d in "${MNT[$c]}$BASE" "${MNT[$c]}$SVC"; do
                [ -d "$d" ] || continue
                for p in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do
                    kill -KILL "$p" 2>/dev/null
                    left=1
                done
            done
        done
        [ "$left" = 0 ] && break
        sleep 0.2
    done
    for c in $CTRLS; do
        for d in "${MNT[$c]}$BASE" "${MNT[$c]}$SVC"; do
            [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \;
        done
    done
    for d in "${MADE[@]}"; do rmdir "$d"; done
}
cleanup_add cg_cleanup

syslog_capture
cage_env
"$CAGE_ADMIN" unmount --all >/dev/null 2>&1 # a seed of an earlier run
make_user cgalice
make_user cgbob
make_user cgcarol
for u in cgalice cgbob cgcarol; do "$CAGE_ADMIN" --config "$T_CONF" user enable $u >/dev/null; done
cat >>"$T_CONF/cage.ini" <<INI
[cgroup]
enable = yes
base = $BASE
swap = 0
INI
printf 'cgalice pids=40 memory=64M cpu=50%%\ncgalice cpu=fast\n' >"$T_CONF/limits.conf"
pam_su_add "config=$T_CONF"
in_cg() { grep -qx "$1" "${MNT[pids]}$2/cgroup.procs"; }

echo "# the cage built from a service's cgroup outlives that service"
for c in $CTRLS; do mkdir -p "${MNT[$c]}$SVC"; done
# The "service": a shell in SVC (every hierarchy) that builds cgalice's cage.
bash -c 'for c in '"$CTRLS"'; do m=$(awk -v c=$c '"'"'$9 == "cgroup" && $4 == "/" { n = split($NF, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) print $5 }'"'"' /proc/self/mountinfo | head -n 1); echo $$ >"$m'"$SVC"'/cgroup.procs"; done
    su - cgalice -c "cat /proc/self/cgroup" >'"$T_TMP"'/first.out 2>&1
    exec sleep 600' &
svc=$!
for i in $(seq 100); do [ -s "$T_TMP/first.out" ] && break; sleep 0.1; done
check_contains "the service shell is in the service cgroup" "$svc" "$(cat "${MNT[pids]}$SVC/cgroup.procs")"
first=$(cat "$T_TMP/first.out")
check_contains "su: the first read of /proc/self/cgroup (pids) is the cage's" "pids:$BASE/cgalice/su-l" "$first"
check_contains "su: memory too" "memory:$BASE/cgalice/su-l" "$first"
check_contains "su: cpu too" "cpu:$BASE/cgalice/su-l" "$first"
init=$("$CAGE_ADMIN" --config "$T_CONF" --json list | python3 -c 'import json,sys; print([c["init_pid"] for c in json.load(sys.stdin) if c["user"] == "cgalice"][0])' 2>/dev/null)
check_contains "the cage init is in BASE/cgalice/init" "pids:$BASE/cgalice/init" "$(cat /proc/"$init"/cgroup 2>&1)"
seed=$(awk -F= '$1 == "pid" {print $2}' /run/cage/seed.rec)
check_contains "the seed is in BASE/seed" "memory:$BASE/seed" "$(cat /proc/"$seed"/cgroup 2>&1)"
su - cgalice -c 'setsid sleep 600 </dev/null >/dev/null 2>&1 &' >/dev/null 2>&1
sleep 0.3
bg=$(pgrep -u cgalice -x sleep | head -n 1)
check "a second session left a background process" test -n "$bg"
# What `systemctl stop` does: kill every process of the service's cgroup.
for i in $(seq 20); do
    procs=$(cat "${MNT[pids]}$SVC/cgroup.procs")
    [ -z "$procs" ] && break
    kill -KILL $procs 2>/dev/null
    sleep 0.1
done
{ wait "$svc"; } 2>/dev/null
check_eq "the service cgroup is empty" "" "$(cat "${MNT[pids]}$SVC/cgroup.procs")"
sleep 0.3
check "the cage init survived" kill -0 "$init"
check "the second session's process survived" kill -0 "$bg"
check_contains "the cage still answers" "cgalice" "$(su - cgalice -c 'ls /home' 2>&1)"
kill -KILL "$bg" 2>/dev/null

echo "# C API and cage-admin enter"
BIN=$T_TMP/bin
mkdir -p "$BIN"
gcc -std=c11 -O1 -I"$REPO/include" -o "$BIN/exec_shell" "$REPO/tests/c/exec_shell.c" \
    -L"$(dirname "$LIBCAGE_SO")" -Wl,-rpath,"$(dirname "$LIBCAGE_SO")" -lcage
check_contains "cage_enter: first read is BASE/cgalice/exec_shell" "pids:$BASE/cgalice/exec_shell" \
    "$("$BIN/exec_shell" "$T_CONF" cgalice /bin/cat /proc/self/cgroup 2>&1)"
check_contains "cage-admin enter: first read is BASE/cgalice/admin" "pids:$BASE/cgalice/admin" \
    "$("$CAGE_ADMIN" --config "$T_CONF" enter cgalice -- /bin/cat /proc/self/cgroup 2>&1)"

echo "# limits.conf: the malformed line is reported, the user caged"
sleep 0.3
check_contains "syslog names file:line and why" \
    "user cgalice: $T_CONF/limits.conf:2: cpu=fast: expected a percentage of one CPU" "$(cat "$T_SYSLOG")"
lim=$("$CAGE_ADMIN" --config "$T_CONF" limits cgalice)
echo "$lim" | sed 's/^/    /'
check_contains "cage-admin limits: pids from limits.conf:1" "pids      40         $T_CONF/limits.conf:1" "$lim"
check_contains "cage-admin limits: the ignored line" "ignored: $T_CONF/limits.conf:2" "$lim"
check_eq "the limit is on the cgroup" "40" "$(cat "${MNT[pids]}$BASE/cgalice/pids.max")"
check_eq "memory.limit_in_bytes = 64M" "67108864" "$(cat "${MNT[memory]}$BASE/cgalice/memory.limit_in_bytes")"
check_eq "cpu.cfs_quota_us = 50% of 100000" "50000" "$(cat "${MNT[cpu]}$BASE/cgalice/cpu.cfs_quota_us")"

echo "# pids=40: a fork loop stops at 40, cgbob still logs in"
su - cgalice -c 'perl -e '"'"'$|=1; my $n = 0; my @k; while (1) { my $p = fork(); if (!defined $p) { print "$n\n"; last } if ($p == 0) { sleep 60; exit 0 } push @k, $p; $n++ } sleep 4; kill 9, @k;'"'"'' >"$T_TMP/fork.out" 2>&1 &
forker=$!
for i in $(seq 100); do [ -s "$T_TMP/fork.out" ] && break; sleep 0.1; done
check_eq "cgalice's cgroup holds exactly 40 processes" "40" "$(cat "${MNT[pids]}$BASE/cgalice/pids.current")"
n=$(cat "$T_TMP/fork.out")
check "the fork loop got fewer than 40 children ($n)" test "$n" -lt 40
check_eq "cgbob logs in and runs commands meanwhile" "$(printf 'cgbob\nok')" "$(su - cgbob -c 'ls /home; echo ok' 2>&1)"
wait "$forker"

echo "# memory=64M: a hog is OOM-killed inside cgalice's cgroup only"
sleep 300 &
outside=$!
out=$(su - cgalice -c 'perl -e '"'"'my $s = "x" x (256 * 1024 * 1024); print "survived\n"'"'"'' 2>&1)
check_lacks "the hog did not survive" "survived" "$out"
echo "$out" | sed 's/^/    /'
# v1 counts the kill in the victim's (leaf) cgroup: sum over her subtree.
kills=$(find "${MNT[memory]}$BASE/cgalice" -name memory.oom_control -exec awk '$1 == "oom_kill" {s += $2} END {print s}' {} + | awk '{s += $1} END {print s}')
check_eq "the kernel counted one OOM kill in cgalice's cgroup" "1" "$kills"
check_eq "and none in the test's own memory cgroup" "0" \
    "$(awk '$1 == "oom_kill" {print $2}' "${MNT[memory]}${OWN[memory]}/memory.oom_control")"
check "a process outside her cgroup is alive" kill -0 "$outside"
check "her cage init is alive" kill -0 "$init"
kill "$outside"

echo "# cpu=50%: two busy loops get about half a CPU"
u0=$(cat "${MNT[cpuacct]}$BASE/cgalice/cpuacct.usage")
t0=$(date +%s%N)
su - cgalice -c 'timeout 4 sh -c "while :; do :; done" & timeout 4 sh -c "while :; do :; done"; wait' >/dev/null 2>&1
t1=$(date +%s%N)
u1=$(cat "${MNT[cpuacct]}$BASE/cgalice/cpuacct.usage")
ratio=$(python3 -c "print(round(($u1 - $u0) / ($t1 - $t0), 2))")
echo "    cpu used / wall time = $ratio"
check "about half a CPU (0.15 .. 0.65): $ratio" python3 -c "import sys; sys.exit(not 0.15 <= $ratio <= 0.65)"

echo "# 100 concurrent first entries agree on the cgroup"
seq 100 | xargs -P 100 -I{} "$CAGE_ADMIN" --config "$T_CONF" enter cgcarol -- /bin/cat /proc/self/cgroup 2>&1 \
    | grep ':pids:' | cut -d: -f2- | sort | uniq -c >"$T_TMP/conc.out"
cat "$T_TMP/conc.out" | sed 's/^/    /'
check_eq "all 100 in BASE/cgcarol/admin" "100 pids:$BASE/cgcarol/admin" "$(awk '{print $1, $2}' "$T_TMP/conc.out")"

echo "# cage-admin top"
top=$("$CAGE_ADMIN" --config "$T_CONF" --json top)
check_eq "top --json lists cgalice with her pids limit" "40" \
    "$(echo "$top" | python3 -c 'import json,sys; print([u["limits"]["pids"] for u in json.load(sys.stdin)["users"] if u["user"] == "cgalice"][0])')"
"$CAGE_ADMIN" --config "$T_CONF" top | sed 's/^/    /'

echo "# cage-admin limits import-cgrules"
dest=$SVC/dest
mkdir -p "${MNT[pids]}$dest" "${MNT[memory]}$dest"
echo 77 >"${MNT[pids]}$dest/pids.max"
echo 1G >"${MNT[memory]}$dest/memory.limit_in_bytes"
printf '# libcgroup rules\ncgbob pids,memory %s\n%% cpu %s\n* memory %s\ncgbob:httpd freezer x\nbroken\n' "$dest" "$dest" "$dest" >"$T_TMP/cgrules.conf"
imp=$("$CAGE_ADMIN" --config "$T_CONF" limits import-cgrules "$T_TMP/cgrules.conf")
echo "$imp" | sed 's/^/    /'
check_contains "a user rule becomes a limits.conf line" "$(printf 'cgbob memory=1G pids=77\t# mapped from %s:2' "$T_TMP/cgrules.conf")" "$imp"
check_contains "the * rule is reported as cage.ini defaults" "# not mapped: $T_TMP/cgrules.conf: line 4: \`*\` rule: put these defaults in cage.ini [cgroup]: memory=1G" "$imp"
check_contains "a process-name rule is reported" "line 5: process-name rule \`cgbob:httpd\`" "$imp"
check_contains "a malformed line is reported with file:line" "# not mapped: $T_TMP/cgrules.conf:6: \`broken\`: expected USER[:PROCESS] CONTROLLERS DESTINATION" "$imp"

finish
