#!/usr/bin/env bash
# Needs root. The first cage, end to end: real users, the real PAM module in
# /etc/pam.d/su, real `su - USER -c ...` logins, asserted from inside.
source "$(dirname "$0")/../lib.sh"

rshared_root
syslog_capture
cage_env
for u in alice bob carol; do make_user "$u"; done
chmod 755 /home/bob
echo "bob's secret" >/home/bob/bobsecret
chmod 644 /home/bob/bobsecret
"$CAGE_ADMIN" --config "$T_CONF" user enable alice >/dev/null
"$CAGE_ADMIN" --config "$T_CONF" user enable bob >/dev/null
"$CAGE_ADMIN" --config "$T_CONF" user disable carol >/dev/null
mkdir -p /etc/apache2
[ -e /etc/apache2/secret.conf ] || { echo "host-only secret" >/etc/apache2/secret.conf; cleanup_add "rm -f /etc/apache2/secret.conf; rmdir /etc/apache2"; }
chmod 644 /etc/apache2/secret.conf
mounts_before=$(mounts_snapshot)
pam_su_add "config=$T_CONF"

in_alice() { su - alice -c "$1" 2>&1; }

echo "# accounts"
out=$(in_alice 'getent passwd')
check_contains "getent passwd shows alice" "alice:x:" "$out"
check_contains "getent passwd shows root" "root:x:0:0:" "$out"
check_lacks "getent passwd hides bob" "bob" "$out"
check_lacks "getent passwd hides carol" "carol" "$out"
check_eq "/etc/passwd is what getent shows" "$out" "$(in_alice 'cat /etc/passwd')"
out=$(in_alice 'getent group')
check_contains "getent group shows alice's group" "alice:x:" "$out"
check_lacks "getent group hides bob" "bob" "$out"
check_lacks "getent group hides carol" "carol" "$out"

echo "# homes"
check_eq "ls /home shows only alice" "alice" "$(in_alice 'ls /home')"
check_contains "bob's home is not there" "No such file" "$(in_alice 'cat /home/bob/bobsecret')"
check_eq "no path reaches bob's file" "" "$(in_alice 'find / -name bobsecret 2>/dev/null; cat /proc/*/root/home/bob/bobsecret 2>/dev/null')"

echo "# processes"
setpriv --reuid bob --regid bob --clear-groups sleep 300 &
bob_sleep=$!
sleep 301 &
root_sleep=$!
setpriv --reuid alice --regid alice --clear-groups sleep 302 &
alice_outside=$!
cleanup_add "kill $bob_sleep $root_sleep $alice_outside"
out=$(in_alice 'ps -eo user=,args=')
check_eq "ps shows only alice's processes" "alice" "$(echo "$out" | awk '{print $1}' | sort -u)"
check_lacks "ps does not show bob's sleep" "sleep 300" "$out"
check_lacks "ps does not show root's sleep" "sleep 301" "$out"
check_lacks "ps does not show alice's own process outside the cage" "sleep 302" "$out"
out=$(in_alice "readlink /proc/$alice_outside/root; cat /proc/$alice_outside/cmdline; kill -0 $alice_outside && echo SIGNALLED")
check_lacks "alice's outside process: no /proc/PID/root, no signal" "SIGNALLED" "$out"
check_lacks "alice's outside process: cmdline unreadable" "302" "$out"
out=$(in_alice "perl -e '\$r = syscall(101, 16, $alice_outside, 0, 0); print \$r == -1 ? \"refused: \$!\" : \"ATTACHED\"'")
check_contains "ptrace of alice's outside process is refused" "refused" "$out"
check_eq "the cage's pid 1 is its init (invisible to alice)" "" "$(in_alice 'ls -d /proc/1 2>/dev/null')"

echo "# IPC and keys"
host_shm=$(ipcmk -M 4096 | grep -o '[0-9]*$')
cleanup_add "ipcrm -m $host_shm"
su - bob -c 'ipcmk -M 4096 >/dev/null; perl -e "my \$n = \"bobq\"; syscall(240, \$n, 0100|02, 0600, 0) >= 0 or die \"mq_open: \$!\""' >/dev/null 2>&1
check_eq "bob's shm segment exists in bob's cage" "1" "$(su - bob -c 'ipcs -m | grep -c ^0x' 2>&1)"
check_eq "alice sees neither bob's nor root's shm segments" "0" "$(in_alice 'ipcs -m | grep -c ^0x')"
out=$(su - bob -c "perl -e 'my \$n = \"bobq\"; \$r = syscall(240, \$n, 0, 0, 0); print \$r < 0 ? \"absent\" : \"present\"'" 2>&1)
check_eq "(control) bob's message queue exists in bob's cage" "present" "$out"
out=$(in_alice "perl -e 'my \$n = \"bobq\"; \$r = syscall(240, \$n, 0, 0, 0); print \$r < 0 ? \"absent\" : \"VISIBLE\"'")
check_eq "bob's POSIX message queue is not visible to alice" "absent" "$out"
# `su` without `-`: the su-l PAM stack has pam_keyinit, su's has not.
out=$(keyctl session cagetest bash -c 'keyctl add user cagetestkey topsecret @s >/dev/null; cd /; su alice -c "cat /proc/keys"' 2>&1)
check_lacks "root's session keyring is not readable in the cage" "cagetestkey" "$out"
out=$(keyctl session cagetest bash -c 'keyctl add user cagetestkey topsecret @s >/dev/null; cd /; su carol -c "cat /proc/keys"' 2>&1)
check_contains "(control) without a cage the session key is visible" "cagetestkey" "$out"

echo "# user namespaces and abstract sockets"
out=$(in_alice "perl -e 'print syscall(272, 0x10000000) == -1 ? \"denied: \$!\" : \"CREATED\"'")
check_contains "creating a user namespace is denied" "denied: Operation not permitted" "$out"
python3 -c '
import socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0cage-test-abstract")
s.listen(5)
time.sleep(120)
' &
abstract_listener=$!
cleanup_add "kill $abstract_listener"
sleep 0.5
out=$(in_alice "perl -MSocket -e 'socket(S, AF_UNIX, SOCK_STREAM, 0) or die; print connect(S, pack_sockaddr_un(\"\\0cage-test-abstract\")) ? \"CONNECTED\" : \"refused: \$!\"'")
check_contains "a host abstract unix socket cannot be reached" "refused" "$out"
out=$(su - carol -c "perl -MSocket -e 'socket(S, AF_UNIX, SOCK_STREAM, 0) or die; print connect(S, pack_sockaddr_un(\"\\0cage-test-abstract\")) ? \"CONNECTED\" : \"refused: \$!\"'" 2>&1)
check_eq "(control) uncaged carol reaches it" "CONNECTED" "$out"

echo "# /tmp"
in_alice 'echo from-alice > /tmp/alice-file' >/dev/null
check_eq "alice's /tmp file lands in ~/.cage/tmp on the host" "from-alice" "$(cat /home/alice/.cage/tmp/alice-file 2>&1)"
check_eq "~/.cage/tmp is alice's, mode 700" "alice 700" "$(stat -c '%U %a' /home/alice/.cage/tmp)"
check_lacks "bob's /tmp does not have it" "alice-file" "$(su - bob -c 'ls -a /tmp' 2>&1)"

echo "# /etc"
check_contains "/etc/shadow is not readable" "No such file" "$(in_alice 'cat /etc/shadow')"
check_contains "/etc/apache2/secret.conf is not readable" "No such file" "$(in_alice 'cat /etc/apache2/secret.conf')"
check_eq "/etc holds only the skeleton's entries" "$(ls -A "$T_SKEL/etc" | sort)" "$(in_alice 'ls -A /etc' | sort)"

echo "# nosuid"
cp /usr/bin/id /home/alice/suid-id
chown root:root /home/alice/suid-id
chmod 4755 /home/alice/suid-id
check_eq "a setuid-root id in the home runs as alice" "$(id -u alice)" "$(in_alice '/home/alice/suid-id -u')"
check_eq "every mount has nosuid" "" "$(in_alice "awk '\$6 !~ /nosuid/' /proc/self/mountinfo")"
check_eq "the cage's /proc/self works" "alice" "$(in_alice 'stat -c %U /proc/self/')"
check_lacks "the cage has its own PID namespace" "$(readlink /proc/self/ns/pid)" "$(in_alice 'readlink /proc/self/ns/pid')"

echo "# host unchanged"
check_eq "host mount table unchanged after sessions" "$mounts_before" "$(mounts_snapshot)"

echo "# uncaged users"
out=$(su - carol -c 'cat /etc/passwd; ls /home' 2>&1)
check_contains "carol sees bob in /etc/passwd" "bob:x:" "$out"
check_contains "carol sees the real /home" "bob" "$out"
check_contains "root sees the ordinary system" "bob:x:" "$(su - root -c 'cat /etc/passwd' 2>&1)"

echo "# hostile ~/.cage"
"$CAGE_ADMIN" unmount alice >/dev/null
etc_before=$(stat -c '%U %a %i' /etc)
mv /home/alice/.cage /home/alice/.cage.real
ln -s /etc /home/alice/.cage
chown -h alice:alice /home/alice/.cage
out=$(su - alice -c 'echo INSIDE' 2>&1)
check_lacks "~/.cage -> /etc: login refused" "INSIDE" "$out"
check_eq "/etc untouched" "$etc_before" "$(stat -c '%U %a %i' /etc)"
check_fail "no /etc/tmp created" test -e /etc/tmp
rm /home/alice/.cage
mv /home/alice/.cage.real /home/alice/.cage
root_before=$(stat -c '%U %a' /root)
rm -rf /home/alice/.cage/tmp
ln -s /root /home/alice/.cage/tmp
chown -h alice:alice /home/alice/.cage/tmp
out=$(su - alice -c 'ls /tmp; echo INSIDE' 2>&1)
check_lacks "~/.cage/tmp -> /root: login refused" "INSIDE" "$out"
check_eq "/root untouched" "$root_before" "$(stat -c '%U %a' /root)"
check_contains "the refusal is in syslog" "pam_cage(su-l): user alice:" "$(cat "$T_SYSLOG")"
check_contains "... naming the refused path" "refusing /home/alice/.cage/tmp: is a symlink" "$(grep 'pam_cage(su-l): user alice:' "$T_SYSLOG")"
check_contains "... and why" "not a directory, or leaves the home; not followed" "$(grep 'pam_cage(su-l): user alice:' "$T_SYSLOG")"
rm /home/alice/.cage/tmp
check "alice logs in again once the symlink is gone" su - alice -c true

echo "# malformed cage.mp"
printf '/opt\nvar/lib/broken\n' >"$T_CONF/cage.mp"
out=$("$CAGE_ADMIN" --config "$T_CONF" plan alice 2>&1)
check_contains "plan names file:line" "$T_CONF/cage.mp:2: expected" "$out"
check_fail "plan exits non-zero" "$CAGE_ADMIN" --config "$T_CONF" plan alice
out=$(su - alice -c 'echo INSIDE' 2>&1)
check_lacks "alice's session is refused" "INSIDE" "$out"
check_contains "syslog says why, with file:line" "cage.mp:2: expected" "$(grep 'pam_cage(su-l): user alice' "$T_SYSLOG")"
check_eq "carol still logs in" "ok" "$(su - carol -c 'echo ok' 2>&1)"
rm "$T_CONF/cage.mp"

finish
