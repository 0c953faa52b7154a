#!/usr/bin/env bash
# Needs root. Mounts that propagate into a built cage later stay
# nosuid,nodev: on a shared-propagation host, an ext4 image with a
# setuid-root program and a device node is loop-mounted inside a user's
# home after her cage is built; inside, the program runs with her euid and
# the device cannot be opened. Every caged process has no_new_privs. A cage
# that opens ptys until it cannot leaves another cage able to open one
# (cage.ini max_ptys, the devpts max=).
source "$(dirname "$0")/../lib.sh"

rshared_root
syslog_capture
cage_env
for u in pia quin; do make_user "$u"; done
A() { "$CAGE_ADMIN" --config "$T_CONF" "$@"; }
for u in pia quin; do A user enable "$u" >/dev/null; done
echo "max_ptys = 16" >>"$T_CONF/cage.ini"
pam_su_add "config=$T_CONF"
pia_uid=$(id -u pia)

echo "# a filesystem the host mounts into a home after the build"
check_eq "pia's cage is built" "$pia_uid" "$(A enter pia -- id -u 2>&1)"
img=$T_TMP/late.img
dd if=/dev/zero of="$img" bs=1M count=8 status=none
mkfs.ext4 -q -F "$img"
mkdir -p "$T_TMP/img"
mount -o loop "$img" "$T_TMP/img"
cp /usr/bin/id "$T_TMP/img/suid-id"
chown root:root "$T_TMP/img/suid-id"
chmod 4755 "$T_TMP/img/suid-id"
mknod -m 666 "$T_TMP/img/null" c 1 3
umount "$T_TMP/img"
mkdir -p /home/pia/late
mount -o loop "$img" /home/pia/late
cleanup_add "umount -l /home/pia/late"
check_eq "on the host the program is setuid root (the check below can fail)" "0" \
    "$(setpriv --reuid="$pia_uid" --regid="$(id -g pia)" --clear-groups /home/pia/late/suid-id -u 2>&1)"
host_opts=$(findmnt -no OPTIONS /home/pia/late)
check_lacks "on the host the mount allows setuid" "nosuid" "$host_opts"
check_lacks "... and devices" "nodev" "$host_opts"
sleep 0.5
inside=$(A enter pia -- grep " /home/pia/late " /proc/self/mountinfo 2>&1)
check_contains "the mount propagated into pia's pinned cage" "/home/pia/late" "$inside"
check_contains "... and is nosuid,nodev there" "nosuid,nodev" "$inside"
check_eq "inside, the setuid program runs with pia's euid" "$pia_uid" "$(A enter pia -- /home/pia/late/suid-id -u 2>&1)"
check_eq "... also through a PAM login" "$pia_uid" "$(su - pia -c '/home/pia/late/suid-id -u' 2>&1)"
check_contains "inside, the device node on it cannot be opened" "Permission denied" "$(A enter pia -- sh -c 'echo x > /home/pia/late/null' 2>&1)"
check_eq "every caged process has no_new_privs (enter)" "1" "$(A enter pia -- sh -c 'grep NoNewPrivs /proc/self/status' 2>&1 | awk '{print $2}')"
check_eq "... and through su" "1" "$(su - pia -c 'grep NoNewPrivs /proc/self/status' 2>&1 | awk '{print $2}')"
umount /home/pia/late
mount -o loop,ro "$img" /home/pia/late
sleep 0.5
check_contains "a second late mount is caught as well" "nosuid,nodev" "$(A enter pia -- grep " /home/pia/late " /proc/self/mountinfo 2>&1)"
umount /home/pia/late

echo "# ptys: one cage cannot use up every other cage's"
check_contains "the plan carries the limit" "max=16" "$(A plan pia 2>&1)"
A enter pia -- python3 -c '
import os, sys, time
fds, err = [], 0
try:
    while True:
        fds.append(os.openpty())
except OSError as e:
    err = e.errno
print(len(fds), err, flush=True)
time.sleep(20)
' >"$T_TMP/ptys" 2>&1 &
holder=$!
cleanup_add "kill $holder"
for i in $(seq 100); do [ -s "$T_TMP/ptys" ] && break; sleep 0.1; done
read -r n err <"$T_TMP/ptys"
check_eq "pia's cage runs out of ptys with ENOSPC" "28" "$err"
check "... after at most 16" test "${n:-99}" -le 16 -a "${n:-0}" -ge 14
check_eq "quin's cage can still open a pty meanwhile" "ok" "$(A enter quin -- python3 -c 'import os; os.openpty(); print("ok")' 2>&1)"
check_eq "... and so can the host" "ok" "$(python3 -c 'import os; os.openpty(); print("ok")' 2>&1)"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
sed -i 's/^max_ptys = 16$/max_ptys = 0/' "$T_CONF/cage.ini"
line=$(grep -n '^max_ptys = 0$' "$T_CONF/cage.ini" | cut -d: -f1)
check_contains "a bad max_ptys is reported with file:line" "cage.ini:$line: max_ptys = 0: expected a number of ptys from 1 to 4096" "$(A plan pia 2>&1)"

finish
