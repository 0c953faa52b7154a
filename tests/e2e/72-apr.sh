#!/usr/bin/env bash
# Needs root. APR's apr_proc_create enters the cage of a caged user
# (patches/apr-cage.patch), with the real Debian apache2 on loopback: a
# mod_rewrite `RewriteMap prg:` map running as alice answers from inside
# alice's cage (her uid, a mount namespace not the host's, `ls /home` =
# alice); carol's map runs uncaged; with alice's cage unbuildable her map
# program never runs and syslog says why. The patched libapr-1.so is built
# by patches/build.sh (cached) as a variant reading this test's
# configuration directory, installed through dpkg-divert and restored. Then
# the same through libcage_preload.so with Debian's libapr.
source "$(dirname "$0")/../lib.sh"

command -v apache2 >/dev/null || {
    echo "  skip  apache2 is not installed (ci/deps.sh)"
    echo "$T_NAME: skipped"
    exit 0
}

rshared_root
syslog_capture
cage_env
make_user alice
make_user carol
"$CAGE_ADMIN" --config "$T_CONF" user enable alice >/dev/null
mounts_before=$(mounts_snapshot)
host_mnt=$(readlink /proc/self/ns/mnt)
printf '/run/mysqld\n!/usr/share/zoneinfo\n' >"$T_CONF/cage.mp"
LIBAPR=$(readlink -f /usr/lib/x86_64-linux-gnu/libapr-1.so.0)
debian_sum=$(sha256sum "$LIBAPR")

echo "# build"
BUILD=$REPO/patches/build.sh
if ! out=$(bash "$BUILD" --variant apr "$T_CONF" "$(dirname "$LIBCAGE_SO")" "$T_TMP/apr" 2>&1); then
    echo "$out" | sed 's/^/    /'
    echo "  skip  the patched libapr cannot be built here (see above)"
    echo "$T_NAME: skipped"
    exit 0
fi
cleanup_add "bash '$BUILD' --uninstall"
check "build.sh --install-files diverts Debian's libapr and installs ours" \
    bash "$BUILD" --install-files apr "$T_TMP/apr"
check_eq "apache2 now loads the patched libapr (it links libcage.so)" "yes" \
    "$(ldd /usr/sbin/apache2 | grep -q 'libcage.so' && echo yes)"

for u in alice carol; do
    chmod 711 "/home/$u"
    cat >"/home/$u/map.sh" <<EOF
#!/bin/sh
: >/home/$u/map-ran
while read -r key; do
    echo "\$key-\$(id -u)-\$(readlink /proc/self/ns/mnt | tr -dc 0-9)-\$(ls /home | tr '\\n' _)"
done
EOF
    chown "$u:$u" "/home/$u/map.sh"
    chmod 755 "/home/$u/map.sh"
done

AP=$T_TMP/apache
mkdir -p "$AP"
PORT=18091
apache_conf() {
    local m=/usr/lib/apache2/modules
    cat <<EOF
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule rewrite_module $m/mod_rewrite.so
ServerName localhost
User www-data
Group www-data
PidFile $AP/httpd.pid
ErrorLog $AP/error.log
DefaultRuntimeDir $AP
Mutex file:$AP default
Listen 127.0.0.1:$PORT
DocumentRoot /var/www/html
RewriteEngine on
RewriteMap alicemap "prg:/home/alice/map.sh" alice:alice
RewriteMap carolmap "prg:/home/carol/map.sh" carol:carol
RewriteRule "^/alice/(.*)" "/answer/\${alicemap:\$1|NOANSWER}" [R=302,L]
RewriteRule "^/carol/(.*)" "/answer/\${carolmap:\$1|NOANSWER}" [R=302,L]
EOF
}
apache_stop() { stop_pidfile "$AP/httpd.pid" TERM 50; }
cleanup_add apache_stop
apache_start() {
    apache_conf >"$AP/httpd.conf"
    : >"$AP/error.log"
    /usr/sbin/apache2 -f "$AP/httpd.conf" -k start || return 1
    for _ in $(seq 50); do [ -f "$AP/httpd.pid" ] && curl -s -o /dev/null "http://127.0.0.1:$PORT/" && return 0; sleep 0.1; done
    return 1
}
answer() { curl -s --max-time 10 -o /dev/null -w '%{redirect_url}' "http://127.0.0.1:$PORT/$1" | sed 's|.*/answer/||'; }

echo "# RewriteMap prg: as alice (caged) and carol (not caged)"
check "apache2 starts with both maps" apache_start
a=$(answer alice/k1)
IFS=- read -r key uid mnt homes <<<"$a"
check_eq "alice's map answers" "k1" "$key"
check_eq "  as alice" "$(id -u alice)" "$uid"
check_eq "  in a mount namespace not the host's" "yes" \
    "$([ -n "$mnt" ] && [ "mnt:[$mnt]" != "$host_mnt" ] && echo yes)"
check_eq "  ls /home = alice" "alice_" "$homes"
sleep 0.3
check_contains "syslog: alice entered her cage from apache2" "libcage(apache2): user alice entered cage generation" "$(cat "$T_SYSLOG")"
c=$(answer carol/k2)
IFS=- read -r key uid mnt homes <<<"$c"
check_eq "carol's map answers as carol" "k2 $(id -u carol)" "$key $uid"
check_eq "  uncaged (the host's mount namespace)" "$host_mnt" "mnt:[$mnt]"
apache_stop

echo "# alice's cage unbuildable"
"$CAGE_ADMIN" --config "$T_CONF" unmount --all >/dev/null 2>&1
printf 'not a mount point\n' >>"$T_CONF/cage.mp"
rm -f /home/alice/map-ran /home/carol/map-ran
: >"$T_SYSLOG"
check "apache2 starts" apache_start
check_lacks "alice's map gives no answer" "k3-" "$(answer alice/k3)"
check_eq "  her map program never ran" "no" "$([ -e /home/alice/map-ran ] && echo yes || echo no)"
sleep 0.3
check_contains "  syslog says why" "libcage(apache2): user uid $(id -u alice): $T_CONF/cage.mp:3:" "$(cat "$T_SYSLOG")"
check_contains "  the error log too (APR's child error callback)" "cage.mp:3" "$(cat "$AP/error.log")"
check_eq "carol's map still answers" "k4-$(id -u carol)" "$(answer carol/k4 | cut -d- -f1,2)"
apache_stop

echo "# restore"
"$CAGE_ADMIN" --config "$T_CONF" unmount --all >/dev/null 2>&1
check "build.sh --uninstall" bash "$BUILD" --uninstall
check_eq "Debian's libapr is back, byte for byte" "$debian_sum" "$(sha256sum "$LIBAPR")"
check_eq "  and apache2 no longer loads libcage.so" "no" \
    "$(ldd /usr/sbin/apache2 | grep -q 'libcage.so' && echo yes || echo no)"
check "dpkg --verify finds libapr1 intact" dpkg --verify libapr1

echo "# Debian's libapr with libcage_preload.so (no rebuild)"
printf '/run/mysqld\n!/usr/share/zoneinfo\n' >"$T_CONF/cage.mp"
rm -f /home/alice/map-ran
: >"$T_SYSLOG"
apache_start_preload() {
    apache_conf >"$AP/httpd.conf"
    : >"$AP/error.log"
    LD_PRELOAD=$(dirname "$LIBCAGE_SO")/libcage_preload.so CAGE_PRELOAD_CONFIG_DIR=$T_CONF \
        /usr/sbin/apache2 -f "$AP/httpd.conf" -k start || return 1
    for _ in $(seq 50); do [ -f "$AP/httpd.pid" ] && curl -s -o /dev/null "http://127.0.0.1:$PORT/" && return 0; sleep 0.1; done
    return 1
}
check "apache2 starts with the preload" apache_start_preload
a=$(answer alice/k5)
IFS=- read -r key uid mnt homes <<<"$a"
check_eq "alice's map answers as alice" "k5 $(id -u alice)" "$key $uid"
check_eq "  from her cage (ls /home = alice, not the host's namespace)" "alice_ yes" \
    "$homes $([ -n "$mnt" ] && [ "mnt:[$mnt]" != "$host_mnt" ] && echo yes)"
sleep 0.3
check_contains "  syslog: entered through the preload" "cage_preload(apache2): user alice entered cage generation" "$(cat "$T_SYSLOG")"
c=$(answer carol/k6)
IFS=- read -r key uid mnt homes <<<"$c"
check_eq "carol's map: uncaged, as carol" "k6 $(id -u carol) $host_mnt" "$key $uid mnt:[$mnt]"
check_eq "the www-data children still serve (the preload ignores www-data)" "302" \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/carol/k7")"
apache_stop
check_eq "the host's mount table is unchanged" "$mounts_before" "$(mounts_snapshot)"
finish
