#!/usr/bin/env bash
# proxyexec: cage-proxyd serves crontab and sendmail filters for caged
# alice and bob (real `su -` logins through pam_cage), carol uncaged.
source "$(dirname "$0")/../lib.sh"

PROXYD=$TARGET/cage-proxyd
CLIENT=$TARGET/cage-proxy
if [ -S /run/cage-proxy/socket ] && python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect("/run/cage-proxy/socket")' 2>/dev/null; then
    echo "SKIP: a cage-proxyd already listens on /run/cage-proxy/socket (installed daemon); stop it to run this suite"
    exit 0
fi
command -v crontab >/dev/null || { echo "SKIP: no crontab (apt-get install cron)"; exit 0; }

make_user alice
make_user bob
make_user carol
cage_env
syslog_capture
mkdir -p /run/cage-proxy
printf 'proxy_client = %s\n' "$CLIENT" >>"$T_CONF/cage.ini"
cp "$REPO/etc/cage/proxy.commands" "$T_CONF/"
cp -r "$REPO/etc/cage/filters" "$T_CONF/"
echo "IDPROXY=/usr/bin/id" >"$T_CONF/custom.proxy.commands"
"$CAGE_ADMIN" --config "$T_CONF" update >"$T_TMP/update.log" 2>&1 || { cat "$T_TMP/update.log"; exit 1; }
"$CAGE_ADMIN" --config "$T_CONF" user enable alice >/dev/null
"$CAGE_ADMIN" --config "$T_CONF" user enable bob >/dev/null
pam_su_add "config=$T_CONF"
rm -f /var/spool/cron/crontabs/alice /var/spool/cron/crontabs/bob
cp -a /etc/shadow "$T_TMP/shadow.orig"
cleanup_add "cp -a '$T_TMP/shadow.orig' /etc/shadow"
cleanup_add "rm -f /var/spool/cron/crontabs/alice /var/spool/cron/crontabs/bob"

PROXYD_PID=
start_proxyd() {
    "$PROXYD" --config "$T_CONF" >>"$T_TMP/proxyd.log" 2>&1 &
    PROXYD_PID=$!
    local i
    for i in $(seq 50); do [ -S /run/cage-proxy/socket ] && break; sleep 0.1; done
}
stop_proxyd() { [ -n "$PROXYD_PID" ] && kill "$PROXYD_PID" 2>/dev/null && wait "$PROXYD_PID" 2>/dev/null; PROXYD_PID=; }
cleanup_add 'stop_proxyd; rm -f /run/cage-proxy/socket'
rm -f /run/cage-proxy/socket
start_proxyd

in_alice() { su - alice -c "$1" 2>&1; }
in_bob() { su - bob -c "$1" 2>&1; }

check_eq "the client is in the skeleton at /usr/bin/crontab" "$(cmp -s "$T_SKEL/usr/bin/crontab" "$CLIENT" && echo same)" same
check_eq "alice is caged (home listing)" "alice" "$(in_alice 'ls /home')"
check_eq "crontab -l: no crontab yet" "no crontab for alice" "$(in_alice 'crontab -l')"
in_alice 'printf "* * * * * echo hi\n" > ~/cron.txt; crontab cron.txt' >"$T_TMP/o" 2>&1
check_eq "crontab file installs into the real spool" "* * * * * echo hi" "$(grep -v '^#' /var/spool/cron/crontabs/alice 2>/dev/null)"
check_eq "spool file owned by alice" "alice" "$(stat -c %U /var/spool/cron/crontabs/alice 2>/dev/null)"
check_eq "crontab -l shows it" "* * * * * echo hi" "$(in_alice 'crontab -l' | grep -v '^#')"
out=$(in_alice 'crontab -u bob -l; echo rc=$?')
check_contains "crontab -u bob -l refused" "option -u is not allowed" "$out"
check_contains "crontab -u bob -l exit 126" "rc=126" "$out"
out=$(in_alice 'crontab -lubob; echo rc=$?')
check_contains "crontab -lubob refused (clustering)" "option -u is not allowed" "$out"
out=$(in_alice 'crontab /etc/shadow; echo rc=$?')
check_contains "crontab /etc/shadow resolves in the cage (no such file there)" "cannot be opened in your cage" "$out"
out=$(in_alice 'cd ~ && crontab ../../../../etc/shadow; echo rc=$?')
check_contains "crontab ../../ path stays in the cage" "cannot be opened in your cage" "$out"
check_eq "spool unchanged by the refused ones" "* * * * * echo hi" "$(grep -v '^#' /var/spool/cron/crontabs/alice)"
in_alice 'crontab -r' >/dev/null
check_eq "crontab -r removes the real spool file" "absent" "$([ -e /var/spool/cron/crontabs/alice ] && echo present || echo absent)"
out=$(in_alice '/usr/sbin/sendmail -vf root@localhost alice </dev/null; echo rc=$?')
check_contains "sendmail -vf root@localhost refused (-v -f)" "option -f is not allowed" "$out"
out=$(in_alice '/usr/sbin/sendmail -C /tmp/x -t </dev/null; echo rc=$?')
check_contains "sendmail -C refused" "option -C is not allowed" "$out"
check_eq "a custom proxied id runs as alice on the host (her host groups)" "$(id alice)" "$(in_alice 'id')"
check_eq "exit status comes back" "rc=1" "$(in_alice 'id nosuchuser >/dev/null 2>&1; echo rc=$?')"
check_contains "syslog line per request" "cage-proxyd: user=alice uid=$(id -u alice) alias=CRONTAB argv=[\"-u\", \"bob\", \"-l\"]" "$(cat "$T_SYSLOG")"
cp "$CLIENT" "$T_TMP/cage-proxy"
check_contains "uncaged carol is refused" "only callers inside a cage are served" "$(su - carol -c "$T_TMP/cage-proxy -l" 2>&1)"

# sendmail -t through the proxy: the host's exim (a queue-running daemon
# on a private loopback port, started here) delivers as alice.
if [ -x /usr/sbin/exim4 ]; then
    rm -f /var/mail/alice /var/mail/bob
    cleanup_add "rm -f /var/mail/alice /var/mail/bob"
    /usr/sbin/exim4 -bd -q1m -oX 127.0.0.1.2525 -oP "$T_TMP/exim.pid"
    cleanup_add 'kill $(cat "$T_TMP/exim.pid")'
    out=$(in_alice 'printf "To: bob\nSubject: proxied-hello\n\nfrom a cage\n" | /usr/sbin/sendmail -t -i; echo rc=$?')
    check_contains "sendmail -t -i exits 0" "rc=0" "$out"
    for i in $(seq 50); do grep -q proxied-hello /var/mail/bob 2>/dev/null && break; sleep 0.1; done
    check_contains "delivered to bob's mailbox" "Subject: proxied-hello" "$(cat /var/mail/bob 2>/dev/null)"
    check_eq "envelope sender is alice" "Return-path: <alice@$(hostname -f 2>/dev/null || hostname)>" "$(grep -m1 '^Return-path:' /var/mail/bob 2>/dev/null)"
    check_contains "From: is alice" "From: alice@" "$(grep -m1 '^From:' /var/mail/bob 2>/dev/null)"
    check_contains "body delivered" "from a cage" "$(cat /var/mail/bob 2>/dev/null)"
    out=$(in_alice 'printf "Subject: cron-style\n\nx\n" | /usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem alice; echo rc=$?')
    check_contains "cron's mailer options pass the filter" "rc=0" "$out"
    out=$(in_alice 'echo x | /usr/sbin/sendmail -F Root alice; echo rc=$?')
    check_contains "sendmail -F Root refused" "option -F Root: value not allowed" "$out"
else
    echo "  SKIP  sendmail delivery: exim4-daemon-light not installed (ci/deps.sh)"
fi

# passwd through the proxy on alice's pty changes her own password.
echo 'alice:Orig-Pass-4821' | chpasswd
old_hash=$(awk -F: '$1 == "alice" {print $2}' /etc/shadow)
python3 "$REPO/tests/e2e/ttydriver.py" "$T_TMP/passwd.transcript" \
    "send:su - alice -c passwd\r" "wait:[Cc]urrent password: " "send:Orig-Pass-4821\r" \
    "wait:New password: " "send:Zq9-Lmno-7725x\r" "wait:Retype new password: " "send:Zq9-Lmno-7725x\r" \
    "wait:password updated successfully" "send:exit\r" >/dev/null 2>&1
check_contains "passwd on a pty: updated" "password updated successfully" "$(tr -d '\r' <"$T_TMP/passwd.transcript")"
new_hash=$(awk -F: '$1 == "alice" {print $2}' /etc/shadow)
check "shadow hash of alice changed" test "$old_hash" != "$new_hash"
check_eq "new hash matches the new password" ok "$(python3 -W ignore -c 'import crypt,sys; print("ok" if crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2] else "no")' Zq9-Lmno-7725x "$new_hash")"
python3 "$REPO/tests/e2e/ttydriver.py" "$T_TMP/su.transcript" \
    "send:su carol -c 'su alice -c \"echo AUTH-\$((40+2))\"'\r" "wait:Password: " "send:Zq9-Lmno-7725x\r" \
    "wait:AUTH-42" "send:exit\r" >/dev/null 2>&1
check_contains "PAM auth (su from carol) with the new password" "AUTH-42" "$(tr -d '\r' <"$T_TMP/su.transcript")"
check_contains "passwd logged as alice's request" "alias=PASSWD argv=[] cwd=\"/home/alice\" result=exit 0" "$(cat "$T_SYSLOG")"

# A new ssh password login (Debian's sshd, its PAM stack with pam_cage last)
# works with the password passwd changed, and lands in alice's cage.
if [ -x /usr/sbin/sshd ]; then
    cp -a /etc/pam.d "$T_TMP/pam.d.orig"
    cleanup_add "rm -rf /etc/pam.d && cp -a '$T_TMP/pam.d.orig' /etc/pam.d"
    "$CAGE_ADMIN" --config "$T_CONF" pam enable --module "$PAM_CAGE_SO" --module-args "config=$T_CONF" >/dev/null
    mkdir -p /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$T_TMP/hostkey"
    sshport=$((20000 + RANDOM % 20000))
    printf '%s\n' "Port $sshport" "ListenAddress 127.0.0.1" "HostKey $T_TMP/hostkey" \
        "PidFile $T_TMP/sshd.pid" "UsePAM yes" "PasswordAuthentication yes" \
        "KbdInteractiveAuthentication no" "PubkeyAuthentication no" "PermitRootLogin no" >"$T_TMP/sshd_config"
    /usr/sbin/sshd -f "$T_TMP/sshd_config" -E "$T_TMP/sshd.log"
    cleanup_add "kill \$(cat '$T_TMP/sshd.pid')"
    for _ in $(seq 50); do [ -s "$T_TMP/sshd.pid" ] && break; sleep 0.1; done
    timeout 60 python3 "$REPO/tests/e2e/ttydriver.py" "$T_TMP/ssh.transcript" \
        "send:ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -p $sshport alice@127.0.0.1 'echo SSH-\$((40+2)) \$(ls /home)'\r" \
        "wait:password: " "send:Zq9-Lmno-7725x\r" "wait:SSH-42" "send:exit\r" >/dev/null 2>&1
    check_contains "ssh password login with the new password, into alice's cage" "SSH-42 alice" "$(tr -d '\r' <"$T_TMP/ssh.transcript")"
    kill "$(cat "$T_TMP/sshd.pid")" 2>/dev/null
else
    echo "  SKIP  ssh password login: openssh-server not installed (ci/deps.sh)"
fi

# Flood: 1000 requests from alice; bob's request is served within 1 s.
rss_before=$(awk '/VmRSS/ {print $2}' /proc/$PROXYD_PID/status)
su - alice -c 'for i in $(seq 1000); do crontab -l >/dev/null 2>&1 & done; wait' &
flood=$!
sleep 0.5
t0=$(date +%s%N)
out=$(in_bob 'crontab -l')
t1=$(date +%s%N)
check_eq "bob served during alice's flood" "no crontab for bob" "$out"
ms=$(((t1 - t0) / 1000000))
echo "        bob's request took ${ms} ms (including su)"
check "bob served within 1 s" test "$ms" -lt 1000
wait $flood
rss_after=$(awk '/VmRSS/ {print $2}' /proc/$PROXYD_PID/status)
echo "        cage-proxyd VmRSS ${rss_before} kB before, ${rss_after} kB after the flood"
check "daemon RSS flat (< 8 MB growth)" test $((rss_after - rss_before)) -lt 8192
check_contains "flood refusals logged" "refused: too many" "$(cat "$T_SYSLOG")"

# Killing the daemon: a clear message; a restart brings it back.
stop_proxyd
sleep 1.5
out=$(in_alice 'crontab -l; echo rc=$?')
check_contains "daemon down: clear message" "the proxy daemon cage-proxyd is not running" "$out"
check_contains "daemon down: exit 126" "rc=126" "$out"
start_proxyd
sleep 1.5
check_eq "restarted daemon serves again" "no crontab for alice" "$(in_alice 'crontab -l')"

# Malformed config: file:line, only that command refused.
printf 'IDPROXY:fancy=/usr/bin/id\n' >"$T_CONF/custom.proxy.commands"
printf '{\n "deny": ["-u",\n}\n' >"$T_CONF/filters/SENDMAIL.json"
out=$(in_alice '/usr/sbin/sendmail -t </dev/null; echo rc=$?')
check_contains "broken filter named with file:line" "$T_CONF/filters/SENDMAIL.json:3:" "$out"
check_contains "broken filter refuses sendmail" "refused until the filter is fixed" "$out"
check_contains "crontab still served" "no crontab for alice" "$(in_alice "crontab -l")"
out=$(in_alice 'id 2>&1; echo rc=$?')
check_contains "broken proxy.commands line named with file:line" "$T_CONF/custom.proxy.commands:1: wrapper \`fancy\`" "$out"
finish
