#!/usr/bin/env bash
# Needs root. Every login path of a caged user lands in the cage, with
# Debian's own PAM stacks left intact and pam_cage appended last by
# `cage-admin pam enable`: Debian's sshd on a loopback port (public key;
# shell with a pty, commands, scp both protocols, sftp with the skeleton's
# sftp-server and with internal-sftp), cron and atd jobs, runuser -u and
# runuser -l. A nofile limit from limits.conf reaches the ssh session and
# the cron job (pam_limits runs before pam_cage, on the host's files).
# alice and bob are caged, carol is not.
source "$(dirname "$0")/../lib.sh"

for p in /usr/sbin/sshd /usr/sbin/cron /usr/sbin/atd /usr/bin/at; do
    [ -x "$p" ] || { echo "$p missing: ci/deps.sh installs openssh-server, cron and at" >&2; exit 1; }
done

syslog_capture
cage_env
# Cage inits of earlier suites' deleted users (uids reused here).
pkill -KILL -x cage-init
for u in alice bob carol; do make_user "$u"; done
for u in alice bob; do "$CAGE_ADMIN" --config "$T_CONF" user enable "$u" >/dev/null; done
A() { "$CAGE_ADMIN" --config "$T_CONF" "$@"; }
host_ns=$(readlink /proc/self/ns/mnt)

# Every file this test changes, restored at exit.
cp -a /etc/pam.d "$T_TMP/pam.d.orig"
cleanup_add "rm -rf /etc/pam.d && cp -a '$T_TMP/pam.d.orig' /etc/pam.d"
cp -a /etc/security/limits.conf "$T_TMP/limits.conf.orig"
cleanup_add "cp -a '$T_TMP/limits.conf.orig' /etc/security/limits.conf"

echo "# cage-admin pam"
out=$(A pam enable --module "$PAM_CAGE_SO" --module-args "config=$T_CONF" 2>&1)
check_contains "enable reports sshd" "sshd           last (changed)" "$out"
rule="session    required   $PAM_CAGE_SO config=$T_CONF"
for s in sshd su su-l runuser runuser-l cron atd login; do
    orig="$T_TMP/pam.d.orig/$s"
    [ -f "$orig" ] || { echo "  skip  /etc/pam.d/$s: not on this machine"; continue; }
    check_eq "$s: Debian's stack unchanged, two lines appended" \
        "$(cat "$orig")" "$(head -n -2 "/etc/pam.d/$s")"
    check_eq "$s: pam_cage is the last line" "$rule" "$(tail -n 1 "/etc/pam.d/$s")"
done
[ -f /etc/pam.d/systemd-user ] || echo "  skip  /etc/pam.d/systemd-user: no systemd on this machine (the line is in pam.d/systemd-user)"
check_eq "enable twice changes nothing" "$(cat /etc/pam.d/sshd)" \
    "$(A pam enable --module "$PAM_CAGE_SO" --module-args "config=$T_CONF" >/dev/null; cat /etc/pam.d/sshd)"
echo "session optional pam_motd.so" >>/etc/pam.d/cron
check_contains "status sees a line appended after ours" "cron           not last" "$(A pam status)"
check_contains "sync moves ours back last" "cron           last (changed)" "$(A pam sync)"
check_eq "... after the appended line" "$rule" "$(tail -n 1 /etc/pam.d/cron)"
sed -i '/pam_motd.so/d' /etc/pam.d/cron
A pam sync >/dev/null
check_eq "status --json: every service last" "last" \
    "$(A --json pam status | python3 -c 'import json,sys; print(" ".join(sorted({s["placement"] for s in json.load(sys.stdin)["services"]})))')"
# Debian's limits, read by pam_limits before pam_cage.
printf 'alice soft nofile 1234\nalice hard nofile 1234\n' >>/etc/security/limits.conf

echo "# sshd"
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$T_TMP/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$T_TMP/id"
for u in alice bob carol; do
    install -d -m 700 -o "$u" -g "$u" "/home/$u/.ssh"
    install -m 600 -o "$u" -g "$u" "$T_TMP/id.pub" "/home/$u/.ssh/authorized_keys"
done
port=$((20000 + RANDOM % 20000))
port2=$((port + 1))
cat >"$T_TMP/sshd_config" <<EOF
Port $port
Port $port2
ListenAddress 127.0.0.1
HostKey $T_TMP/hostkey
PidFile $T_TMP/sshd.pid
UsePAM yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
Subsystem sftp /usr/lib/openssh/sftp-server
Match LocalPort $port2
    ForceCommand internal-sftp
EOF
/usr/sbin/sshd -f "$T_TMP/sshd_config" -E "$T_TMP/sshd.log"
cleanup_add "kill \$(cat '$T_TMP/sshd.pid')"
for _ in $(seq 50); do [ -s "$T_TMP/sshd.pid" ] && break; sleep 0.1; done
SSHO=(-i "$T_TMP/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR)
S() { local u=$1; shift; timeout 30 ssh "${SSHO[@]}" -p "$port" "$u@127.0.0.1" "$@" 2>&1; }

alice_ns=$(A enter alice -- readlink /proc/self/ns/mnt 2>&1)
check_contains "alice's cage exists" "mnt:[" "$alice_ns"
check_lacks "... and is not the host's namespace" "$host_ns" "$alice_ns"
check_eq "ssh command: alice's cage" "$alice_ns" "$(S alice readlink /proc/self/ns/mnt)"
check_eq "ssh command: ls /home shows only alice" "alice" "$(S alice ls /home)"
check_eq "ssh command: ps shows only alice's processes" "alice" \
    "$(S alice ps -eo user= | sort -u)"
check_eq "ssh command: passwd has no bob nor carol" "" "$(S alice "grep -E '^(bob|carol):' /etc/passwd")"
check_eq "ssh command: limits.conf nofile applies" "1234" "$(S alice ulimit -n)"
out=$(printf 'readlink /proc/self/ns/mnt; ls /home; ulimit -n; exit\n' |
    timeout 30 ssh -tt "${SSHO[@]}" -p "$port" alice@127.0.0.1 2>&1 | tr -d '\r')
check_contains "ssh shell on a pty: alice's cage" "$alice_ns" "$out"
check_contains "... with its limits" "1234" "$out"
check_lacks "... and only her home" "carol" "$out"
carol_ns=$(S carol readlink /proc/self/ns/mnt)
check_eq "carol's ssh session is not caged" "$host_ns" "$carol_ns"

echo "host file" >"$T_TMP/up.txt"
chmod 644 "$T_TMP/up.txt"
for proto in sftp scp; do
    flag=; [ "$proto" = scp ] && flag=-O
    rm -f "/home/alice/up-$proto.txt" "$T_TMP/down-$proto.txt"
    check "scp ($proto protocol) uploads into alice's home" \
        timeout 30 scp $flag -q "${SSHO[@]}" -P "$port" "$T_TMP/up.txt" "alice@127.0.0.1:up-$proto.txt"
    check_eq "... owned by alice" "alice host file" \
        "$(stat -c %U "/home/alice/up-$proto.txt" 2>&1) $(cat "/home/alice/up-$proto.txt" 2>&1)"
    check "scp ($proto protocol) downloads alice's file" \
        timeout 30 scp $flag -q "${SSHO[@]}" -P "$port" "alice@127.0.0.1:up-$proto.txt" "$T_TMP/down-$proto.txt"
    check_eq "... with its content" "host file" "$(cat "$T_TMP/down-$proto.txt" 2>&1)"
    out=$(timeout 30 scp $flag -q "${SSHO[@]}" -P "$port" "alice@127.0.0.1:/home/bob/.profile" "$T_TMP/bob-$proto" 2>&1)
    check_eq "scp ($proto protocol) cannot fetch bob's files" "no" "$([ -e "$T_TMP/bob-$proto" ] && echo yes || echo no)"
done
for p in "$port:sftp-server" "$port2:internal-sftp"; do
    pp=${p%%:*} flavour=${p#*:}
    printf 'ls -1 /home\nput %s sftp-%s.txt\nls -1 /home/bob\n' "$T_TMP/up.txt" "$flavour" >"$T_TMP/batch"
    out=$(timeout 30 sftp -b - "${SSHO[@]}" -P "$pp" alice@127.0.0.1 <"$T_TMP/batch" 2>&1)
    check_eq "sftp ($flavour): ls /home shows only alice" "/home/alice" \
        "$(echo "$out" | grep '^/home/' | grep -v '^/home/bob' | sort -u)"
    check_eq "sftp ($flavour): the upload lands in alice's home" "alice" \
        "$(stat -c %U "/home/alice/sftp-$flavour.txt" 2>&1)"
    check_contains "sftp ($flavour): bob's home does not exist" '"/home/bob" not found' "$out"
done
check_contains "the ssh entries were logged by pam_cage(sshd)" "pam_cage(sshd): user alice entered cage" "$(cat "$T_SYSLOG")"

echo "# cron and at"
probe='readlink /proc/self/ns/mnt; ls /home; ulimit -n'
printf '* * * * * (%s) >/home/alice/cron.out 2>&1\n' "$probe" >"$T_TMP/crontab"
crontab -u alice "$T_TMP/crontab"
cleanup_add "crontab -u alice -r"
/usr/sbin/cron -L 15
cleanup_add "pkill -x cron"
/usr/sbin/atd
cleanup_add "pkill -x atd"
echo "($probe) >/home/alice/at.out 2>&1" >"$T_TMP/atjob"
chmod 644 "$T_TMP/atjob"
# at records the working directory; the job starts there (in the cage).
check "alice queues an at job" sh -c "cd /home/alice && setpriv --reuid alice --regid alice --init-groups at -f '$T_TMP/atjob' now"
for _ in $(seq 75); do
    [ -s /home/alice/cron.out ] && [ -s /home/alice/at.out ] && break
    sleep 1
done
check_eq "alice's at job ran in her cage, saw only her home, with her limits" \
    "$(printf '%s\nalice\n1234' "$alice_ns")" "$(cat /home/alice/at.out 2>&1)"
check_eq "alice's cron job ran in her cage, saw only her home, with her limits" \
    "$(printf '%s\nalice\n1234' "$alice_ns")" "$(cat /home/alice/cron.out 2>&1)"
check_contains "the cron entry was logged by pam_cage(cron)" "pam_cage(cron): user alice entered cage" "$(cat "$T_SYSLOG")"
check_contains "the at entry was logged by pam_cage(atd)" "pam_cage(atd): user alice entered cage" "$(cat "$T_SYSLOG")"

echo "# runuser"
check_eq "runuser -u alice lands in her cage" "$alice_ns alice" \
    "$(timeout 30 runuser -u alice -- sh -c 'echo $(readlink /proc/self/ns/mnt) $(ls /home)' 2>&1)"
check_eq "runuser -l alice lands in her cage" "$alice_ns alice" \
    "$(timeout 30 runuser -l alice -c 'echo $(readlink /proc/self/ns/mnt) $(ls /home)' 2>&1)"
check_eq "runuser -u carol is not caged" "$host_ns" \
    "$(timeout 30 runuser -u carol -- readlink /proc/self/ns/mnt 2>&1)"

echo "# pam disable"
kill "$(cat "$T_TMP/sshd.pid")" 2>/dev/null
out=$(A pam disable)
check_contains "disable reports the services" "sshd           absent (changed)" "$out"
check "every PAM file is byte-identical to before" diff -r "$T_TMP/pam.d.orig" /etc/pam.d
check_contains "status after disable" "pam: not enabled" "$(A pam status)"
finish
