#!/usr/bin/env bash
# Needs root. No cage build writes into the shared skeleton: its complete
# file list (names, types, modes, mtimes) is the same before and after
# building cages for users with custom.etc files, virt.mp entries, cage.mp
# targets the skeleton lacks and a nested home, and after a build that fails
# at every occurrence of every mount-related system call (strace fault
# injection). Users with homes in different base directories see nothing of
# each other. cage.mp and virt.mp paths below user-writable directories are
# refused with file:line.
source "$(dirname "$0")/../lib.sh"

rshared_root
syslog_capture
cage_env
A() { "$CAGE_ADMIN" --config "$T_CONF" "$@"; }
skel_list() { find "$T_SKEL" -printf '%P %y %m %u:%g %T@\n' | sort; }

# users: ana (/home/ana, everything configured), zed (/home/zed/data, a
# nested home), uno (/srv/cage-u1/uno, a base directory the skeleton lacks)
make_user ana
for spec in "zed /home/zed/data /home/zed" "uno /srv/cage-u1/uno /srv/cage-u1"; do
    set -- $spec
    if id "$1" >/dev/null 2>&1; then pkill -KILL -u "$1"; sleep 0.2; userdel -r -f "$1" >/dev/null 2>&1; fi
    mkdir -p "$3"
    useradd -m -d "$2" -s /bin/bash "$1" || { echo "useradd $1 failed" >&2; exit 1; }
    cleanup_add "pkill -KILL -u $1; sleep 0.3; userdel -r -f $1; rm -rf $3"
done
for u in ana zed uno; do A user enable "$u" >/dev/null; done
S=$T_TMP/host
mkdir -p "$S/shared" "$S/ro" "$S/split/ana" "$S/virt/site"
echo shared >"$S/shared/f"
chown ana "$S/split/ana"
cat >"$T_CONF/cage.mp" <<MP
$S/shared
!$S/ro
@/var/spool/cron,700
@/var/cache/cage-private,700
%$S/split
MP
mkdir -p "$T_CONF/custom.etc/ana/php"
echo "memory_limit = 64M" >"$T_CONF/custom.etc/ana/php/php.ini"
echo "new file" >"$T_CONF/custom.etc/ana/cage-new.conf"
echo "state_dir = $T_TMP/state" >>"$T_CONF/cage.ini"
ana_state="$T_TMP/state/$(A getprefix ana)/ana"
mkdir -p "$ana_state"
printf '%s/virt,0755\n@site\n/opt/cage-virt-only\n' "$S" >"$ana_state/virt.mp"

before=$(skel_list)
check "the skeleton lists entries" test "$(echo "$before" | wc -l)" -gt 100

echo "# builds leave the skeleton untouched"
check_eq "ana's custom /etc file is there" "new file" "$(A enter ana -- cat /etc/cage-new.conf 2>&1)"
check_eq "... and the nested one" "memory_limit = 64M" "$(A enter ana -- cat /etc/php/php.ini 2>&1)"
check_contains "... the skeleton's /etc is still there around them" "root:x:0:0" "$(A enter ana -- cat /etc/passwd 2>&1)"
check_eq "ana's per-user cron directory" "700" "$(A enter ana -- stat -c %a /var/spool/cron 2>&1)"
check_eq "ana's virt.mp directory" "site" "$(A enter ana -- ls "$S/virt" 2>&1)"
check_eq "ana's shared path" "shared" "$(A enter ana -- cat "$S/shared/f" 2>&1)"
check_eq "zed sees his nested home" "data" "$(A enter zed -- ls /home/zed 2>&1)"
check_eq "zed's /home holds only his base directory" "zed" "$(A enter zed -- ls /home 2>&1)"
check_eq "uno's /srv/cage-u1 holds only his home" "uno" "$(A enter uno -- ls /srv/cage-u1 2>&1)"
check_eq "uno sees nothing in /home (zed's base directory is not in the skeleton)" "" "$(A enter uno -- ls -A /home 2>&1)"
check_eq "ana sees nothing of zed or uno in /home" "ana" "$(A enter ana -- ls /home 2>&1)"
check_lacks "ana has no /srv/cage-u1" "uno" "$(A enter ana -- ls -R /srv 2>&1)"
check_lacks "no custom.etc file of ana in zed's /etc" "cage-new.conf" "$(A enter zed -- ls /etc 2>&1)"
check_fail "no virt.mp path of ana in zed's cage" A enter zed -- test -e /opt/cage-virt-only
check_contains "the skeleton is read-only inside" "Read-only file system" "$(A enter ana -- touch /usr/cage-probe 2>&1)"
after=$(skel_list)
check_eq "the skeleton's file list is unchanged" "$before" "$after"
[ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after") | head -20

echo "# paths below user-writable directories are refused"
A unmount --all >/dev/null
mkdir -p "$S/open/inner"
chmod 1777 "$S/open"
cp "$T_CONF/cage.mp" "$T_TMP/cage.mp.good"
printf '/tmp/cage-evil\n' >>"$T_CONF/cage.mp"
out=$(A plan ana 2>&1)
check_contains "a cage.mp path below /tmp is refused with file:line" "$T_CONF/cage.mp:6: \`/tmp/cage-evil\` lies below /tmp, which every user can write; refused" "$out"
check_lacks "... and ana's login is refused" "INSIDE" "$(A enter ana -- echo INSIDE 2>&1)"
cp "$T_TMP/cage.mp.good" "$T_CONF/cage.mp"
printf '%s/open/inner\n' "$S" >>"$T_CONF/cage.mp"
check_contains "a cage.mp path below a world-writable host directory is refused" "$T_CONF/cage.mp:6: \`$S/open/inner\` lies below $S/open, which is writable by every user; refused" "$(A plan ana 2>&1)"
cp "$T_TMP/cage.mp.good" "$T_CONF/cage.mp"
printf '/var/spool/cron/deeper\n' >>"$T_CONF/cage.mp"
check_contains "a cage.mp path below a per-user directory is refused" "cage.mp:6: /var/spool/cron/deeper lies below /var/spool/cron" "$(A plan ana 2>&1)"
cp "$T_TMP/cage.mp.good" "$T_CONF/cage.mp"
printf '/var/tmp/cage-virt\n' >>"$ana_state/virt.mp"
check_contains "a virt.mp path below /var/tmp is refused with file:line" "$ana_state/virt.mp:4: \`/var/tmp/cage-virt\` lies below /var/tmp" "$(A plan ana 2>&1)"
printf '%s/virt,0755\n@site\n/opt/cage-virt-only\n' "$S" >"$ana_state/virt.mp"
check_eq "with the paths gone, ana logs in again" "ok" "$(A enter ana -- echo ok 2>&1)"
A unmount --all >/dev/null

echo "# a build failing at any mount step leaves nothing behind"
if ! command -v strace >/dev/null; then
    _bad "strace is needed for the fault-injection loop (ci/deps.sh installs it)"
    finish
fi
ana_uid=$(id -u ana)
# Live cage inits (an exited one is a zombie until pid 1 reaps it).
inits() { ps -eo pid=,stat=,comm= | awk '$3 == "cage-init" && $2 !~ /^Z/ {print $1}' | sort; }
# Unpinned inits leave once their cages are empty (after a grace period).
for i in $(seq 60); do [ -z "$(inits)" ] && break; sleep 0.2; done
inits_before=$(inits)
new_inits() { comm -13 <(echo "$inits_before") <(inits) | grep -c .; }
SYSCALLS="open_tree move_mount fsopen fsconfig fsmount mount_setattr mkdirat openat openat2 symlinkat"
# Ends ana's cage (and any init this test started that has no record), so
# that the next run builds again.
kill_cage() {
    local pid
    for pid in $(sed -n 's/^pid=//p' "/run/cage/$ana_uid.rec" 2>/dev/null) $(comm -13 <(echo "$inits_before") <(inits)); do
        kill -KILL "$pid" 2>/dev/null
    done
    rm -f "/run/cage/$ana_uid.rec"
    for i in $(seq 50); do [ "$(new_inits)" = 0 ] && break; sleep 0.1; done
}
# traced OUT STRACE-ARGS...: a traced `enter ana -- echo INSIDE`, output in
# OUT. strace -f follows the cage init, which outlives the entry: once the
# command has run inside, the init is killed so strace ends; a daemon left
# traced otherwise (a seed started under strace) is let go by killing
# strace (its tracees are detached and go on).
traced() {
    local out=$1 sp i
    shift
    strace -f -qq "$@" "$CAGE_ADMIN" --config "$T_CONF" enter ana -- echo INSIDE >"$out" 2>&1 &
    sp=$!
    for i in $(seq 200); do
        kill -0 "$sp" 2>/dev/null || break
        grep -q INSIDE "$out" && kill_cage
        sleep 0.05
    done
    kill -KILL "$sp" 2>/dev/null
    wait "$sp" 2>/dev/null
}
# A seed started outside strace, so that no run below starts one.
A enter ana -- true >/dev/null 2>&1
kill_cage
traced "$T_TMP/count.out" -o "$T_TMP/trace" -e trace="$(echo $SYSCALLS | tr ' ' ,)"
check_eq "the traced build works" "INSIDE" "$(cat "$T_TMP/count.out")"
kill_cage
runs=0
bad_left=""
touch -d '1 second ago' "$T_TMP/marker"
for sc in $SYSCALLS; do
    # The most calls any one process made (strace counts per process).
    max=$(awk -v sc="$sc" '$2 ~ "^"sc"\\(" {n[$1]++} END {m=0; for (p in n) if (n[p]>m) m=n[p]; print m}' "$T_TMP/trace")
    echo "  $sc: up to $max calls per process"
    for n in $(seq "$max"); do
        runs=$((runs + 1))
        # --seccomp-bpf: strace stops only at $sc, not at every call.
        traced "$T_TMP/fault.out" --seccomp-bpf -o /dev/null -e trace="$sc" -e fault="$sc:when=$n"
        if ! grep -q INSIDE "$T_TMP/fault.out"; then
            [ -e "/run/cage/$ana_uid.rec" ] && bad_left="$bad_left $sc:$n:record"
            # A refused entry ends its init through the pidfd; the kill
            # is asynchronous, so an init may take a moment to go.
            for i in $(seq 30); do [ "$(new_inits)" = 0 ] && break; sleep 0.1; done
            [ "$(new_inits)" = 0 ] || bad_left="$bad_left $sc:$n:init"
        fi
        kill_cage
        # Any entry created, removed or changed in the skeleton changes
        # some ctime (a parent directory's, at least).
        changed=$(find "$T_SKEL" -cnewer "$T_TMP/marker" -print -quit)
        [ -z "$changed" ] || { bad_left="$bad_left $sc:$n:skeleton($changed)"; touch "$T_TMP/marker"; }
        grep -q "$T_SKEL" /proc/self/mountinfo && bad_left="$bad_left $sc:$n:host-mount"
        next=$(A enter ana -- echo INSIDE 2>&1)
        [ "$next" = INSIDE ] || bad_left="$bad_left $sc:$n:next-login($next)"
        kill_cage
    done
done
check "the fault loop ran over every occurrence ($runs builds)" test "$runs" -gt 50
check_eq "no record, init, skeleton change or host mount left, and the next login works, after any failure" "" "$bad_left"
check_eq "the skeleton's file list is still unchanged" "$(skel_list)" "$after"

finish
