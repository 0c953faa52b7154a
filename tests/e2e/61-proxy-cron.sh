#!/usr/bin/env bash
# proxyexec with Debian cron: alice (caged) installs her crontab from inside
# her cage through the proxied crontab; the cron daemon (started here, with
# pam_cage last in /etc/pam.d/cron) runs the job caged, and the job's output
# reaches her mailbox through the proxied sendmail and the host's exim.
source "$(dirname "$0")/../lib.sh"

PROXYD=$TARGET/cage-proxyd
CLIENT=$TARGET/cage-proxy
for p in /usr/sbin/cron /usr/bin/crontab /usr/sbin/exim4; do
    [ -x "$p" ] || { echo "SKIP: $p missing (bash ci/deps.sh)"; exit 0; }
done
if pgrep -x cron >/dev/null; then
    echo "SKIP: a cron daemon already runs on this machine; stop it to run this suite"
    exit 0
fi
if python3 -c 'import socket; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect("/run/cage-proxy/socket")' 2>/dev/null; then
    echo "SKIP: a cage-proxyd already listens on /run/cage-proxy/socket; stop it to run this suite"
    exit 0
fi

make_user alice
make_user bob
cage_env
syslog_capture
mkdir -p /run/cage-proxy
printf 'proxy_client = %s\n' "$CLIENT" >>"$T_CONF/cage.ini"
cp "$REPO/etc/cage/proxy.commands" "$T_CONF/"
cp -r "$REPO/etc/cage/filters" "$T_CONF/"
"$CAGE_ADMIN" --config "$T_CONF" update >"$T_TMP/update.log" 2>&1 || { cat "$T_TMP/update.log"; exit 1; }
"$CAGE_ADMIN" --config "$T_CONF" user enable alice >/dev/null
pam_su_add "config=$T_CONF"
cp -a /etc/pam.d/cron "$T_TMP/pam.d-cron.orig"
cleanup_add "cp -a '$T_TMP/pam.d-cron.orig' /etc/pam.d/cron"
echo "session required $PAM_CAGE_SO config=$T_CONF" >>/etc/pam.d/cron
rm -f /var/spool/cron/crontabs/alice /var/mail/alice
cleanup_add "rm -f /var/spool/cron/crontabs/alice /var/mail/alice"

rm -f /run/cage-proxy/socket
"$PROXYD" --config "$T_CONF" >"$T_TMP/proxyd.log" 2>&1 &
cleanup_add "kill $!; rm -f /run/cage-proxy/socket"
for i in $(seq 50); do [ -S /run/cage-proxy/socket ] && break; sleep 0.1; done
/usr/sbin/exim4 -bd -q1m -oX 127.0.0.1.2525 -oP "$T_TMP/exim.pid"
cleanup_add 'kill $(cat "$T_TMP/exim.pid")'

host_ns=$(readlink /proc/self/ns/mnt)
# shellcheck disable=SC2016
su - alice -c 'printf "* * * * * (readlink /proc/self/ns/mnt; ls /home) > \$HOME/cron.out; echo cron-mail-marker\n" > ~/ct && crontab ct' >"$T_TMP/o" 2>&1
check_contains "crontab from inside the cage reached the real spool" "cron-mail-marker" "$(cat /var/spool/cron/crontabs/alice 2>/dev/null)"
/usr/sbin/cron -f -L 15 >"$T_TMP/cron.log" 2>&1 &
cron_pid=$!
cleanup_add "kill $cron_pid"

# The job runs at the next minute; its mail follows.
for i in $(seq 150); do
    [ -s /home/alice/cron.out ] && grep -q cron-mail-marker /var/mail/alice 2>/dev/null && break
    sleep 0.5
done
out=$(cat /home/alice/cron.out 2>/dev/null)
check_eq "cron job sees only alice's home" "alice" "$(echo "$out" | sed -n 2p)"
job_ns=$(echo "$out" | sed -n 1p)
check "cron job runs in another mount namespace than the host" test -n "$job_ns" -a "$job_ns" != "$host_ns"
check_contains "cron output mailed to alice" "cron-mail-marker" "$(cat /var/mail/alice 2>/dev/null)"
check_contains "mail is cron's" "Subject: Cron <alice@" "$(cat /var/mail/alice 2>/dev/null)"
check_contains "the mail went through the proxy" "alias=SENDMAIL argv=[\"-FCronDaemon\", \"-i\", \"-B8BITMIME\", \"-oem\", \"alice\"]" "$(cat "$T_SYSLOG")"
[ "$T_FAIL" = 0 ] || { echo "--- cron log:"; tail -n 20 "$T_TMP/cron.log"; echo "--- syslog (cron, proxy):"; grep -i "CRON\[\|(cron:\|proxyd\|pam_cage" "$T_SYSLOG" | tail -n 20; }
finish
