#!/usr/bin/env bash
# Needs root. Persisted cages: warm entry joins the pinned namespaces,
# single flight, forged records refused, remount generations, unmount,
# entry from a service with its own mount namespace (PrivateTmp=), the
# ~/.cage/reload request, and recovery from a crash mid-build.
source "$(dirname "$0")/../lib.sh"

rshared_root
syslog_capture
cage_env
# Old generations of earlier suites whose users are gone (their uids are
# reused here) are not this test's: end them, so generations count from 1.
# A killed init is gone only once the kernel has torn its cage down and
# the outside parents of its processes (su, a supervisor) have reaped them:
# up to a few seconds, not a fixed half second.
pkill -KILL -x cage-init
for _ in $(seq 100); do pgrep -x cage-init >/dev/null || break; sleep 0.1; done
for u in dave erin; do make_user "$u"; done
for u in dave erin; do "$CAGE_ADMIN" --config "$T_CONF" user enable "$u" >/dev/null; done
pam_su_add "config=$T_CONF"
A() { "$CAGE_ADMIN" --config "$T_CONF" "$@"; }
mntns_in() { A enter "$1" -- readlink /proc/self/ns/mnt 2>&1; }
dave_uid=$(id -u dave)
record() { cat "/run/cage/$1.rec" 2>/dev/null; }
rec_field() { record "$1" | sed -n "s/^$2=//p"; }

echo "# warm entry joins the pinned cage"
first=$(su - dave -c 'readlink /proc/self/ns/mnt' 2>&1)
second=$(su - dave -c 'readlink /proc/self/ns/mnt' 2>&1)
third=$(mntns_in dave)
check_contains "first su login is in a cage" "mnt:[" "$first"
check_lacks "the cage is not the host's namespace" "$(readlink /proc/self/ns/mnt)" "$first"
check_eq "second su login joins the same namespace" "$first" "$second"
check_eq "cage-admin enter joins the same namespace" "$first" "$third"
check_eq "the record names that namespace" "mnt:[$(rec_field "$dave_uid" mntns)]" "$first"
check_eq "one built line, then joined lines" "1" "$(grep -c 'user dave entered cage generation 1 (built)' "$T_SYSLOG")"
check_contains "entry line carries service, generation, joined and latency" "pam_cage(su-l): user dave entered cage generation 1 (joined) in " "$(cat "$T_SYSLOG")"

echo "# a service with its own mount namespace (PrivateTmp=) joins the same cage"
# The checkout itself may live under /tmp: run a copy from the test dir.
cp "$CAGE_ADMIN" "$T_TMP/cage-admin"
out=$(unshare -m --propagation private sh -c "mount -t tmpfs none /tmp && '$T_TMP/cage-admin' --config '$T_CONF' enter dave -- readlink /proc/self/ns/mnt" 2>&1)
check_eq "entry from a private-/tmp mount namespace" "$first" "$out"

echo "# single flight: 100 parallel first logins"
erin_uid=$(id -u erin)
pids=()
for i in $(seq 100); do
    su - erin -c 'readlink /proc/self/ns/mnt' >"$T_TMP/par.$i" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}"
check_eq "all 100 logins landed in one namespace" "1" "$(cat "$T_TMP"/par.* | sort -u | wc -l)"
check_eq "... which is the recorded one" "mnt:[$(rec_field "$erin_uid" mntns)]" "$(cat "$T_TMP"/par.* | sort -u)"
check_eq "exactly one build" "1" "$(grep -c 'user erin entered cage generation 1 (built)' "$T_SYSLOG")"

echo "# forged records are refused"
unshare -Urm sleep 300 &
forged=$!
cleanup_add "kill $forged"
sleep 0.5
A unmount erin >/dev/null
fake_start=$(awk '{print $22}' "/proc/$forged/stat")
ino() { stat -L -c %i "/proc/$forged/ns/$1"; }
printf 'uid=%s\nuser=erin\ngid=%s\nhome=/home/erin\nshell=/bin/bash\npid=%s\nstart=%s\ngeneration=7\nfingerprint=x\nmntns=%s\npidns=%s\nipcns=%s\ncreated=0\n' \
    "$erin_uid" "$(id -g erin)" "$forged" "$fake_start" "$(ino mnt)" "$(ino pid)" "$(ino ipc)" >"/run/cage/$erin_uid.rec"
out=$(mntns_in erin)
check_lacks "a user-made namespace is never joined" "mnt:[$(ino mnt)]" "$out"
check_contains "the forged record is refused and logged" "user erin: refusing stale cage record (pid $forged is not a cage init)" "$(cat "$T_SYSLOG")"
sleep 301 &
rootsleep=$!
cleanup_add "kill $rootsleep"
A unmount erin >/dev/null
printf 'uid=%s\nuser=erin\ngid=%s\nhome=/home/erin\nshell=/bin/bash\npid=%s\nstart=%s\ngeneration=7\nfingerprint=x\nmntns=%s\npidns=%s\nipcns=%s\ncreated=0\n' \
    "$erin_uid" "$(id -g erin)" "$rootsleep" "$(awk '{print $22}' "/proc/$rootsleep/stat")" "$(stat -L -c %i /proc/self/ns/mnt)" \
    "$(stat -L -c %i /proc/self/ns/pid)" "$(stat -L -c %i /proc/self/ns/ipc)" >"/run/cage/$erin_uid.rec"
out=$(mntns_in erin)
check_lacks "a record pointing at the host's namespaces is never joined" "$(readlink /proc/self/ns/mnt)" "$out"
check_contains "... and the user is still caged" "mnt:[" "$out"

echo "# remount: new generation for new entries, old processes keep theirs"
A enter dave -- sleep 200 &
old_proc_parent=$!
sleep 0.5
old_sleep=$(pgrep -u dave -x sleep | head -n 1)
old_ns=$(readlink "/proc/$old_sleep/ns/mnt")
mkdir -p /srv/cage-remount-test
cleanup_add "rmdir /srv/cage-remount-test"
echo "/srv/cage-remount-test" >"$T_CONF/cage.mp"
check_contains "remount pins generation 2" "generation 2 pinned" "$(A remount dave 2>&1)"
new=$(su - dave -c 'readlink /proc/self/ns/mnt; test -d /srv/cage-remount-test && echo SEES-NEW-MOUNT' 2>&1)
check_contains "a new login sees the new mount" "SEES-NEW-MOUNT" "$new"
check_lacks "a new login is in a new namespace" "$old_ns" "$new"
check "the old process still runs" kill -0 "$old_sleep"
check_eq "the old process is still in the old generation" "$old_ns" "$(readlink "/proc/$old_sleep/ns/mnt")"
check_contains "list shows generation 2" "dave" "$(A list | awk '$3 == 2')"
kill "$old_sleep" 2>/dev/null
wait "$old_proc_parent" 2>/dev/null
rm -f "$T_CONF/cage.mp"

echo "# ~/.cage/reload"
echo precious >/root/cage-reload-target
cleanup_add "rm -f /root/cage-reload-target"
su - dave -c 'ln -s /root/cage-reload-target ~/.cage/reload' >/dev/null 2>&1
gen_before=$(rec_field "$dave_uid" generation)
# Age the record past reload_interval (30 s by default).
sed -i 's/^created=.*/created=0/' "/run/cage/$dave_uid.rec"
A enter dave -- true
check_eq "a reload symlink never deletes its target" "precious" "$(cat /root/cage-reload-target)"
check "a reload symlink is refused and left alone" test -L /home/dave/.cage/reload
check_eq "a reload symlink builds no new generation" "$gen_before" "$(rec_field "$dave_uid" generation)"
rm -f /home/dave/.cage/reload
su - dave -c 'touch ~/.cage/reload' >/dev/null 2>&1
A enter dave -- true
check_fail "the reload request is consumed" test -e /home/dave/.cage/reload
check_eq "reload built a new generation" "$((gen_before + 1))" "$(rec_field "$dave_uid" generation)"

echo "# crash mid-build"
A unmount dave >/dev/null
if command -v strace >/dev/null; then
    out=$(strace -f -o /dev/null -e inject=move_mount:error=EIO:when=4 "$CAGE_ADMIN" --config "$T_CONF" enter dave -- true 2>&1)
    check_contains "an injected mount failure refuses the entry" "cannot build cage" "$out"
    check_fail "no record is left" test -e "/run/cage/$dave_uid.rec"
fi
check_eq "no half-built mounts in the host" "0" "$(grep -c "$T_SKEL" /proc/self/mountinfo)"
check_contains "the next login succeeds" "mnt:[" "$(su - dave -c 'readlink /proc/self/ns/mnt' 2>&1)"

echo "# live host changes"
mkdir -p /srv/cage-live-test
mount -t tmpfs -o size=1m cagelive /srv/cage-live-test
cleanup_add "umount -l /srv/cage-live-test; rmdir /srv/cage-live-test"
echo v1 >/srv/cage-live-test/f
echo "/srv/cage-live-test" >"$T_CONF/cage.mp"
A remount dave >/dev/null
check_eq "a shared mount shows the host's file" "v1" "$(A enter dave -- cat /srv/cage-live-test/f 2>&1)"
echo v2 >/srv/cage-live-test/f
check_eq "... and its changes at once" "v2" "$(A enter dave -- cat /srv/cage-live-test/f 2>&1)"
echo fresh >/home/dave/host-made
check_eq "the home shows host changes at once" "fresh" "$(A enter dave -- cat /home/dave/host-made 2>&1)"
mkdir -p /home/dave/sub
mount -t tmpfs -o size=1m cagesub /home/dave/sub
check_contains "a host mount made later inside the home propagates" "cagesub" "$(A enter dave -- cat /proc/self/mountinfo 2>&1)"
umount /home/dave/sub
check "a host unmount succeeds while the cage is pinned" umount /srv/cage-live-test
A remount dave >/dev/null
check_fail "after remount, new entries no longer see the unmounted filesystem" A enter dave -- test -e /srv/cage-live-test/f
mkdir -p /mnt/cage-later-test
mount -t tmpfs -o size=1m cagelater /mnt/cage-later-test
cleanup_add "umount -l /mnt/cage-later-test; rmdir /mnt/cage-later-test"
check_lacks "a host mount elsewhere is not visible" "cagelater" "$(A enter dave -- cat /proc/self/mountinfo 2>&1)"
rm -f "$T_CONF/cage.mp"

echo "# unmount --all"
su - erin -c true >/dev/null 2>&1
inits="$(rec_field "$dave_uid" pid) $(rec_field "$erin_uid" pid)"
check_eq "two live cages before" "2" "$(echo $inits | wc -w)"
A unmount --all >/dev/null
alive() { local p n=0; for p in $inits; do kill -0 "$p" 2>/dev/null && [ "$(cat /proc/$p/comm 2>/dev/null)" = cage-init ] && n=$((n + 1)); done; echo $n; }
for i in $(seq 50); do [ "$(alive)" = 0 ] && break; sleep 0.2; done
check_eq "no live-cage records" "" "$(ls /run/cage/ | grep -E "^($dave_uid|$erin_uid)\.rec$")"
check_eq "no cage init processes once their cages are empty" "0" "$(alive)"
check_eq "no cage mounts in the host mount table" "0" "$(grep -c "$T_SKEL" /proc/self/mountinfo)"

finish
