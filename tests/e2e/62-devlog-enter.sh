#!/usr/bin/env bash
# Needs root. Issue 9, deliverables 4 and 5.
# /dev/log in every cage: the host's /dev/log is a symlink into a
# journald-like directory (/run/systemd/journal/dev-log, as on Debian with
# systemd), served by a python listener that records each datagram's
# SO_PASSCRED credentials. `logger` inside alice's cage (su with pam_cage,
# cage-admin enter) arrives with alice's uid, bob's with bob's; the cage
# sees a socket at /dev/log and nothing of the directory it lives in;
# forged SCM_CREDENTIALS are refused by the kernel; a syslog restart (new
# socket inode) leaves processes of the old generation refused and gives
# the next entry a new generation that logs; a cage built while the host
# has no /dev/log has none and the next entry after syslog starts has it;
# a /dev/log leading to a socket a user bound is not bound into cages.
# cage-enter: installed setuid root (a private copy whose cage-enter.conf
# names this test's config); alice on an uncaged path lands in her own
# cage, carol is refused, LD_PRELOAD / PATH / inherited descriptors do not
# reach inside, exit statuses pass through, the root part cannot be
# signalled by the user.
source "$(dirname "$0")/../lib.sh"

rshared_root
cage_env
# This suite makes several generations per user (restart, remount): at exit,
# once the users' processes are gone, their cage inits (started here, found
# by pid in their records) are ended too, so no later suite counts them.
end_our_inits() {
    local f pid
    for f in /run/cage/*.rec /run/cage/old/*.rec; do
        [ -f "$f" ] || continue
        grep -qxE 'user=(alice|bob|carol)' "$f" || continue
        pid=$(sed -n 's/^pid=//p' "$f")
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = cage-init ] && kill -KILL "$pid"
    done
    sleep 0.3
}
cleanup_add end_our_inits
for u in alice bob carol; do make_user "$u"; done
CA="$CAGE_ADMIN --config $T_CONF"
$CA user enable alice >/dev/null
$CA user enable bob >/dev/null
$CA user disable carol >/dev/null
pam_su_add "config=$T_CONF"
AUID=$(id -u alice)
BUID=$(id -u bob)

# The host's syslog: /dev/log -> $J/dev-log, like journald's.
if [ -e /run/systemd ]; then J=/run/cage-test-journal; else J=/run/systemd/journal; fi
JTOP=${J%/journal}
[ "$J" = /run/cage-test-journal ] && JTOP=$J
rm -rf "$JTOP"
mkdir -p "$J"
cleanup_add "rm -rf '$JTOP'"
if [ -e /dev/log ] || [ -L /dev/log ]; then
    rm -f /dev/log.cage-test-saved
    mv /dev/log /dev/log.cage-test-saved
    cleanup_add "rm -f /dev/log; mv /dev/log.cage-test-saved /dev/log"
else
    cleanup_add "rm -f /dev/log"
fi
ln -s "$J/dev-log" /dev/log
LOG=$T_TMP/syslog.txt
: >"$LOG"
cat >"$T_TMP/listener.py" <<'PY'
import os, socket, struct, sys
path, out, ready = sys.argv[1:4]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
open(ready, "w").close()
with open(out, "ab", buffering=0) as f:
    while True:
        msg, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(12))
        uid = "none"
        for lvl, typ, data in anc:
            if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                uid = str(struct.unpack("iII", data[:12])[1])
        f.write(b"uid=" + uid.encode() + b" " + msg.rstrip(b"\0\n") + b"\n")
PY
LISTENER=
start_listener() {
    rm -f "$T_TMP/ready"
    python3 "$T_TMP/listener.py" "$J/dev-log" "$LOG" "$T_TMP/ready" &
    LISTENER=$!
    cleanup_add "kill $LISTENER"
    local i
    for i in $(seq 50); do [ -e "$T_TMP/ready" ] && return; sleep 0.1; done
    echo "listener did not start" >&2
}
stop_listener() {
    kill "$LISTENER" 2>/dev/null
    wait "$LISTENER" 2>/dev/null
    rm -f "$J/dev-log"
}
# The uid field of the one line carrying TEXT ("" when none arrived).
uid_of() {
    local i
    for i in $(seq 30); do grep -q -- "$1" "$LOG" && break; sleep 0.1; done
    grep -- "$1" "$LOG" | cut -d' ' -f1 | sort -u | tr '\n' ' ' | sed 's/ $//'
}
start_listener

in_alice() { su - alice -c "$1" 2>&1; }
in_bob() { su - bob -c "$1" 2>&1; }

echo "# syslog from inside a cage"
in_alice 'logger -t t62 hello-from-alice' >/dev/null
check_eq "logger in alice's cage (su) reaches the host with alice's uid" "uid=$AUID" "$(uid_of hello-from-alice)"
check_contains "the message is what alice sent" "t62: hello-from-alice" "$(grep hello-from-alice "$LOG")"
$CA enter alice -- logger -t t62 hello-via-enter </dev/null >/dev/null 2>&1
check_eq "logger in alice's cage (cage-admin enter) arrives with alice's uid" "uid=$AUID" "$(uid_of hello-via-enter)"
in_bob 'logger -t t62 hello-from-bob' >/dev/null
check_eq "bob's message arrives with bob's uid" "uid=$BUID" "$(uid_of hello-from-bob)"
php_like='import socket, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"<14>t62: via-sendto pid %d" % os.getpid(), "/dev/log")
print("sent")'
check_eq "a program's own sendto /dev/log works (what syslog(3) does)" "sent" "$(in_alice "python3 -c '$php_like'")"
check_eq "and arrives with alice's uid" "uid=$AUID" "$(uid_of via-sendto)"

echo "# what the cage sees"
check_eq "/dev/log is a socket in the cage, not a symlink" "socket
:" "$(in_alice 'test -S /dev/log && echo socket; readlink /dev/log; echo :')"
check_eq "the directory the host socket lives in is absent" "" "$(in_alice "ls -d $J $JTOP 2>/dev/null")"
opts=$(in_alice "awk '\$5 == \"/dev/log\" {print \$6}' /proc/self/mountinfo")
for o in ro nosuid nodev noexec; do
    check_contains "/dev/log is mounted $o" ",$o," ",$opts,"
done
out=$(in_alice 'rm -f /dev/log 2>&1; python3 -c "
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    s.bind(\"/dev/log\"); print(\"BOUND\")
except OSError as e:
    print(\"bind refused\", e.errno)
"; test -S /dev/log && echo still-socket')
check_lacks "alice cannot bind (read) at /dev/log" "BOUND" "$out"
check_contains "nor remove it" "still-socket" "$out"
forge='import socket, struct, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    s.sendmsg([b"<14>t62: forged-root"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, struct.pack("iII", os.getpid(), 0, 0))], 0, "/dev/log")
    print("SENT")
except PermissionError:
    print("EPERM")'
check_eq "claiming uid 0 in SCM_CREDENTIALS is refused by the kernel" "EPERM" "$(in_alice "python3 -c '$forge'")"
check_eq "no forged line arrived" "" "$(uid_of forged-root)"

echo "# syslog restart: a new socket inode"
cat >/home/alice/oldgen.py <<'PY'
import os, socket, time
home = os.path.expanduser("~")
while not os.path.exists(home + "/go"):
    time.sleep(0.1)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    s.sendto(b"<14>t62: old-generation-after-restart", "/dev/log")
    r = "sent"
except OSError as e:
    r = "refused " + (os.strerror(e.errno) if e.errno else str(e))
with open(home + "/oldgen.out", "w") as f:
    f.write(r + "\n")
PY
chown alice: /home/alice/oldgen.py
old_ns=$(in_alice 'readlink /proc/self/ns/mnt')
su - alice -c 'python3 ~/oldgen.py' >/dev/null 2>&1 &
oldgen=$!
cleanup_add "kill $oldgen"
sleep 0.5
stop_listener
start_listener
touch /home/alice/go
for i in $(seq 50); do [ -s /home/alice/oldgen.out ] && break; sleep 0.1; done
check_eq "a process of the generation built before the restart is refused (its socket is dead)" \
    "refused Connection refused" "$(cat /home/alice/oldgen.out 2>/dev/null)"
check_eq "and nothing of it arrived" "" "$(uid_of old-generation-after-restart)"
out=$(in_alice 'readlink /proc/self/ns/mnt; logger -t t62 new-generation-after-restart')
[ "$out" != "$old_ns" ] && r=new || r="same ($out)"
check_eq "the next entry gets a new generation (the fingerprint covers the socket)" "new" "$r"
check_eq "which logs with alice's uid" "uid=$AUID" "$(uid_of new-generation-after-restart)"

echo "# no syslog at build time (live remount), then syslog starts"
stop_listener
$CA remount bob >/dev/null 2>&1
check_eq "bob's cage remounted while the host has no /dev/log has none" "absent" "$(in_bob 'test -e /dev/log || echo absent')"
start_listener
in_bob 'logger -t t62 bob-after-start' >/dev/null
check_eq "once syslog runs, bob's next entry logs with his uid" "uid=$BUID" "$(uid_of bob-after-start)"

echo "# /dev/log leading to a socket a user bound"
stop_listener
install -d -o alice -m 755 "$T_TMP/alicedir"
setpriv --reuid alice --regid alice --init-groups /usr/bin/python3 "$T_TMP/listener.py" "$T_TMP/alicedir/sock" "$T_TMP/alicedir/stolen.txt" "$T_TMP/alicedir/ready" &
thief=$!
cleanup_add "kill $thief"
for i in $(seq 50); do [ -e "$T_TMP/alicedir/ready" ] && break; sleep 0.1; done
ln -sfn "$T_TMP/alicedir/sock" /dev/log
setpriv --reuid alice --regid alice --init-groups logger -t t62 thief-check
check_eq "(alice's socket does receive what is sent to it)" "uid=$AUID" "$(for i in $(seq 30); do grep -q thief-check "$T_TMP/alicedir/stolen.txt" && break; sleep 0.1; done; grep thief-check "$T_TMP/alicedir/stolen.txt" | cut -d' ' -f1)"
$CA remount bob >/dev/null 2>&1
check_eq "a cage is built without it (only root's socket is bound)" "absent" "$(in_bob 'test -e /dev/log || echo absent')"
in_bob 'logger -t t62 bob-to-thief 2>/dev/null' >/dev/null
check_eq "nothing of bob's reached alice's socket" "" "$(grep bob-to-thief "$T_TMP/alicedir/stolen.txt" 2>/dev/null)"
kill "$thief"
ln -sfn "$J/dev-log" /dev/log
start_listener

echo "# cage-enter"
E=$T_TMP/bin
install -d -m 755 "$E"
install -m 4755 -o root -g root "$TARGET/cage-enter" "$E/cage-enter"
printf '# this test only\nconfig_dir = %s\n' "$T_CONF" >"$E/cage-enter.conf"
chmod 644 "$E/cage-enter.conf"
as() { local u=$1; shift; setpriv --reuid "$u" --regid "$u" --init-groups "$@"; }
cur_ns=$(in_alice 'readlink /proc/self/ns/mnt')
host_ns=$(readlink /proc/self/ns/mnt)
out=$(as alice "$E/cage-enter" -- sh -c 'readlink /proc/self/ns/mnt; ls /home; id -un' </dev/null 2>&1)
check_eq "alice (uncaged) lands in her current cage" "$cur_ns
alice
alice" "$out"
check_eq "which is the namespace recorded for alice's cage" "mnt:[$(sed -n 's/^mntns=//p' /run/cage/$AUID.rec)]" "$cur_ns"
check_lacks "and not the host's" "$host_ns" "$cur_ns"
out=$(as alice "$E/cage-enter" logger -t t62 via-cage-enter </dev/null 2>&1)
check_eq "logger through cage-enter arrives with alice's uid" "uid=$AUID" "$(uid_of via-cage-enter)"
out=$(as carol "$E/cage-enter" id </dev/null 2>&1)
rc=$?
check_eq "carol (not caged) is refused with status 125" 125 "$rc"
check_contains "with a clear message" "cage-enter: carol is not caged" "$out"
out=$(as alice "$E/cage-enter" -u bob id </dev/null 2>&1)
rc=$?
check_eq "no option names another user" "2:cage-enter: unknown option -u" "$rc:$(echo "$out" | head -1)"
out=$("$E/cage-enter" id </dev/null 2>&1)
check_contains "root is told to use cage-admin enter" "root has no cage" "$out"

echo "# cage-enter: what the caller controls"
mkdir -p "$T_TMP/evilbin"
printf '#!/bin/sh\necho PWNED\n' >"$T_TMP/evilbin/id"
chmod 755 "$T_TMP/evilbin/id"
cat >"$T_TMP/evil.c" <<C
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
    int fd = open("$T_TMP/preloaded", O_CREAT | O_WRONLY, 0666);
    if (fd >= 0) close(fd);
}
C
if gcc -shared -fPIC -o "$T_TMP/evil.so" "$T_TMP/evil.c" 2>/dev/null; then
    chmod 755 "$T_TMP/evil.so"
    out=$(as alice env LD_PRELOAD="$T_TMP/evil.so" LD_LIBRARY_PATH="$T_TMP" FOO=bar \
        PATH="$T_TMP/evilbin:/usr/bin:/bin" TERM='xterm;id' LANG=C.UTF-8 \
        "$E/cage-enter" sh -c 'echo "[$LD_PRELOAD][$LD_LIBRARY_PATH][$FOO][$PATH][${TERM-}][$LANG]"; id -un' </dev/null 2>&1)
    check_eq "the environment is not passed in (fixed PATH, unsafe TERM dropped, LANG kept)" \
        "[][][][/usr/local/bin:/usr/bin:/bin][][C.UTF-8]
alice" "$out"
    check_eq "LD_PRELOAD never ran (in cage-enter or the command)" "absent" "$([ -e "$T_TMP/preloaded" ] && echo present || echo absent)"
else
    echo "  skip  LD_PRELOAD (no working gcc)"
fi
exec 5</etc/shadow
out=$(as alice "$E/cage-enter" sh -c 'ls /proc/self/fd | tr "\n" " "; { head -c 4 <&5; } 2>/dev/null && echo READ' </dev/null 2>&1)
exec 5<&-
check_eq "an inherited descriptor of /etc/shadow does not reach inside" "0 1 2 3 " "$out"
out=$(as alice "$E/cage-enter" cat </etc/shadow 2>&1)
rc=$?
check_eq "/etc/shadow as stdin (opened by root) is refused" 125 "$rc"
check_contains "with the reason" "descriptor 0 is a file you cannot open yourself" "$out"
check_lacks "and nothing of it is printed" "root:" "$out"
echo "alice's input" >/home/alice/in.txt
chown alice: /home/alice/in.txt
check_eq "alice's own file as stdin is fine" "alice's input" "$(as alice "$E/cage-enter" cat </home/alice/in.txt 2>&1)"
as alice "$E/cage-enter" sh -c 'exit 42' </dev/null >/dev/null 2>&1
check_eq "the exit status passes through" 42 "$?"
as alice "$E/cage-enter" sh -c 'kill -TERM $$' </dev/null >/dev/null 2>&1
check_eq "death by a signal passes through" 143 "$?"
out=$(printf 'id -un; exit 7\n' | as alice "$E/cage-enter" 2>&1)
rc=$?
check_eq "without a command: her login shell (reading the pipe), status passed" "alice:7" "$(echo "$out" | tail -1):$rc"
install -d -o alice -m 755 /home/alice/sub
check_eq "the caller's directory is kept when the cage has it" /home/alice/sub "$(cd /home/alice/sub && as alice "$E/cage-enter" pwd </dev/null 2>&1)"
check_eq "else the command starts in the home" /home/alice "$(cd "$T_TMP" && as alice "$E/cage-enter" pwd </dev/null 2>&1)"
as alice "$E/cage-enter" no-such-command </dev/null >/dev/null 2>&1
check_eq "a missing command is 127" 127 "$?"
setpriv --reuid alice --regid alice --init-groups "$E/cage-enter" sleep 30 </dev/null >/dev/null 2>&1 &
sup=$!
cleanup_add "kill -KILL $sup"
sleep 1
check_eq "the supervisor outside runs with all uids 0" "0 0 0 0" "$(awk '/^Uid:/ {print $2, $3, $4, $5}' /proc/$sup/status)"
check_fail "alice cannot signal it" as alice kill -STOP "$sup"
kill -TERM "$sup"
wait "$sup"
check_eq "an admin's SIGTERM ends the command and the supervisor with it" 143 "$?"
out=$(script -qec "setpriv --reuid alice --regid alice --init-groups $E/cage-enter sh -c 'tty; readlink /proc/self/ns/mnt'" /dev/null 2>&1 | tr -d '\r')
check_contains "on a terminal the command gets a pty of the cage" "/dev/pts/" "$out"
check_contains "in her cage" "$cur_ns" "$out"
check_eq "the skeleton has no set-id file (and no cage-enter)" "" "$(find "$T_SKEL" -perm /6000 -type f 2>/dev/null; find "$T_SKEL" -name 'cage-enter*' 2>/dev/null)"
finish
