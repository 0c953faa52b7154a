#!/usr/bin/env bash
# Needs root. Apache's suexec enters the user's cage (patches/apache2-suexec-cage.patch),
# with the real Debian apache2 on loopback ports, for both suexec flavours
# (pristine, custom) and both CGI modules (mod_cgid with mpm_event, mod_cgi
# with mpm_prefork):
#   - a CGI of alice (SuexecUserGroup, and through UserDir at /~alice/) runs
#     as alice in her cage: another mount namespace, `ls /home` = alice, no
#     access to bob's public_html nor to /etc/apache2;
#   - a CGI of carol (not caged) runs uncaged;
#   - with alice's cage unbuildable (malformed cage.mp) her CGI answers 500,
#     suexec.log and syslog say why, and the script did not run.
# The patched suexec is built by patches/build.sh (cached; a cold build runs
# outside the e2e lock first when possible) as a variant reading this test's
# configuration directory, installed through dpkg-divert and restored at exit.
source "$(dirname "$0")/../lib.sh"

command -v apache2 >/dev/null && [ -e /usr/lib/apache2/suexec-pristine ] && [ -e /usr/lib/apache2/suexec-custom ] || {
    echo "  skip  apache2, apache2-suexec-pristine and apache2-suexec-custom are not installed (ci/deps.sh)"
    echo "$T_NAME: skipped"
    exit 0
}

rshared_root
syslog_capture
cage_env
make_user alice
make_user bob
make_user carol
"$CAGE_ADMIN" --config "$T_CONF" user enable alice >/dev/null
"$CAGE_ADMIN" --config "$T_CONF" user enable bob >/dev/null
mounts_before=$(mounts_snapshot)
debian_sums=$(sha256sum /usr/lib/apache2/suexec-pristine /usr/lib/apache2/suexec-custom)
alt_before=$(readlink /etc/alternatives/suexec)
alt_mode=$(update-alternatives --query suexec | awk '/^Status:/ {print $2}')

# The per-user /var/www/USER of a hosting server: split by user in the cage.
printf '/run/mysqld\n!/usr/share/zoneinfo\n%%/var/www\n' >"$T_CONF/cage.mp"

echo "# build"
BUILD=$REPO/patches/build.sh
if ! out=$(bash "$BUILD" --variant suexec "$T_CONF" "$(dirname "$LIBCAGE_SO")" "$T_TMP/suexec" 2>&1); then
    echo "$out" | sed 's/^/    /'
    echo "  skip  the patched suexec cannot be built here (see above)"
    echo "$T_NAME: skipped"
    exit 0
fi
info=$(grep '^source_fallback=' "$T_TMP/suexec/BUILDINFO" || true)
[ -n "$info" ] && echo "  note  built from apache2 $(sed -n 's/^source_version=//p' "$T_TMP/suexec/BUILDINFO"): ${info#source_fallback=}"
check "the variant links libcage.so" sh -c "readelf -d '$T_TMP/suexec/suexec-pristine' | grep -q 'NEEDED.*libcage.so'"

cleanup_add "bash '$BUILD' --uninstall"
check "build.sh --install-files diverts Debian's suexec and installs ours" \
    bash "$BUILD" --install-files suexec "$T_TMP/suexec"
check_eq "dpkg-divert records both diversions" "2" \
    "$(dpkg-divert --list '/usr/lib/apache2/suexec-*' | grep -c 'by cage$')"
cleanup_add "update-alternatives --quiet --auto suexec"
[ "$alt_mode" = manual ] && cleanup_add "update-alternatives --quiet --set suexec '$alt_before'"

# --- the sites -------------------------------------------------------------

cgi() { # FILE OWNER: a CGI that shows where it runs and leaves a marker
    cat >"$1" <<'EOF'
#!/bin/sh
echo "Content-Type: text/plain"
echo
: >"$HOME_MARK"
id -u
readlink /proc/self/ns/mnt
ls /home | tr '\n' ' '
echo
cat /home/bob/public_html/secret.txt 2>/dev/null && echo READ-BOB
ls /etc/apache2 >/dev/null 2>&1 && echo READ-APACHE-CONF
echo end
EOF
    sed -i "s|\$HOME_MARK|$3|" "$1"
    chown "$2:$2" "$1"
    chmod 755 "$1"
}
for u in alice carol; do
    chmod 711 "/home/$u"
    rm -rf "/var/www/$u"
    install -d -o "$u" -g "$u" -m 755 "/var/www/$u" "/var/www/$u/cgi-bin"
    cleanup_add "rm -rf /var/www/$u"
    cgi "/var/www/$u/cgi-bin/id.cgi" "$u" "/home/$u/ran-vhost"
done
install -d -o alice -g alice -m 755 /home/alice/public_html /home/alice/public_html/cgi-bin
cgi /home/alice/public_html/cgi-bin/id.cgi alice /home/alice/ran-userdir
chmod 711 /home/bob
install -d -o bob -g bob -m 755 /home/bob/public_html
echo "bob's secret" >/home/bob/public_html/secret.txt
chmod 644 /home/bob/public_html/secret.txt

AP=$T_TMP/apache
mkdir -p "$AP"
P_ALICE=18071
P_CAROL=18072
P_MAIN=18073
apache_conf() { # MPM CGIMOD
    local m=/usr/lib/apache2/modules
    cat <<EOF
LoadModule mpm_$1_module $m/mod_mpm_$1.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule alias_module $m/mod_alias.so
LoadModule $2_module $m/mod_$2.so
LoadModule suexec_module $m/mod_suexec.so
LoadModule userdir_module $m/mod_userdir.so
ServerName localhost
User www-data
Group www-data
PidFile $AP/httpd.pid
ErrorLog $AP/error.log
LogLevel info
DefaultRuntimeDir $AP
Mutex file:$AP default
$([ "$2" = cgid ] && echo "ScriptSock $AP/cgid.sock")
Listen 127.0.0.1:$P_ALICE
Listen 127.0.0.1:$P_CAROL
Listen 127.0.0.1:$P_MAIN
DocumentRoot /var/www/html
UserDir public_html
<Directory /home/*/public_html/cgi-bin>
    Options +ExecCGI
    SetHandler cgi-script
    Require all granted
</Directory>
<VirtualHost 127.0.0.1:$P_ALICE>
    SuexecUserGroup alice alice
    ScriptAlias /cgi-bin/ /var/www/alice/cgi-bin/
    <Directory /var/www/alice/cgi-bin>
        Require all granted
    </Directory>
</VirtualHost>
<VirtualHost 127.0.0.1:$P_CAROL>
    SuexecUserGroup carol carol
    ScriptAlias /cgi-bin/ /var/www/carol/cgi-bin/
    <Directory /var/www/carol/cgi-bin>
        Require all granted
    </Directory>
</VirtualHost>
EOF
}
apache_stop() { stop_pidfile "$AP/httpd.pid" TERM 50; }
cleanup_add apache_stop
apache_start() { # MPM CGIMOD
    apache_stop
    apache_conf "$1" "$2" >"$AP/httpd.conf"
    : >"$AP/error.log"
    /usr/sbin/apache2 -f "$AP/httpd.conf" -k start || return 1
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$P_MAIN/" && return 0
        sleep 0.1
    done
    return 1
}
get() { curl -s --max-time 20 "$@"; }
status_of() { curl -s --max-time 20 -o /dev/null -w '%{http_code}' "$1"; }

host_mnt=$(readlink /proc/self/ns/mnt)
SUEXEC_LOG=/var/log/apache2/suexec.log
touch "$SUEXEC_LOG"

run_flavour() { # FLAVOUR MPM CGIMOD
    local fl=$1 mpm=$2 mod=$3 out
    echo "# suexec-$fl, mod_$mod with mpm_$mpm"
    update-alternatives --quiet --set suexec "/usr/lib/apache2/suexec-$fl"
    "$CAGE_ADMIN" --config "$T_CONF" unmount --all >/dev/null 2>&1
    printf '/run/mysqld\n!/usr/share/zoneinfo\n%%/var/www\n' >"$T_CONF/cage.mp"
    rm -f /home/alice/ran-* /home/carol/ran-*
    check "apache2 (mpm_$mpm, mod_$mod) starts with suexec enabled" apache_start "$mpm" "$mod"
    check_contains "Apache found the suexec wrapper" "suEXEC mechanism enabled" "$(cat "$AP/error.log")"

    out=$(get "http://127.0.0.1:$P_ALICE/cgi-bin/id.cgi")
    check_eq "SuexecUserGroup alice: the CGI runs as alice" "$(id -u alice)" "$(echo "$out" | sed -n 1p)"
    local mnt
    mnt=$(echo "$out" | sed -n 2p)
    check_contains "  in a mount namespace" "mnt:[" "$mnt"
    [ -n "$mnt" ] && [ "$mnt" != "$host_mnt" ]
    check_eq "  that is not the host's" 0 $?
    check_eq "  ls /home shows only alice" "alice " "$(echo "$out" | sed -n 3p)"
    check_lacks "  bob's public_html is out of reach" "READ-BOB" "$out"
    check_lacks "  /etc/apache2 is out of reach" "READ-APACHE-CONF" "$out"
    check_contains "  the script ran to its end" "end" "$out"

    out=$(get "http://127.0.0.1:$P_MAIN/~alice/cgi-bin/id.cgi")
    check_eq "UserDir /~alice/: the CGI runs as alice" "$(id -u alice)" "$(echo "$out" | sed -n 1p)"
    check_eq "  in alice's cage (the same mount namespace)" "$mnt" "$(echo "$out" | sed -n 2p)"
    check_eq "  ls /home shows only alice" "alice " "$(echo "$out" | sed -n 3p)"
    check_lacks "  bob's public_html is out of reach" "READ-BOB" "$out"

    out=$(get "http://127.0.0.1:$P_CAROL/cgi-bin/id.cgi")
    check_eq "SuexecUserGroup carol (not caged): runs as carol" "$(id -u carol)" "$(echo "$out" | sed -n 1p)"
    check_eq "  in the host's mount namespace" "$host_mnt" "$(echo "$out" | sed -n 2p)"
    check_contains "  and sees the host's /home" "bob" "$(echo "$out" | sed -n 3p)"

    echo "## alice's cage unbuildable"
    "$CAGE_ADMIN" --config "$T_CONF" unmount --all >/dev/null 2>&1
    printf 'this is not a mount point\n' >>"$T_CONF/cage.mp"
    rm -f /home/alice/ran-*
    local log_off
    log_off=$(stat -c %s "$SUEXEC_LOG")
    : >"$T_SYSLOG"
    check_eq "alice's CGI answers 500" "500" "$(status_of "http://127.0.0.1:$P_ALICE/cgi-bin/id.cgi")"
    check_eq "~alice's CGI answers 500" "500" "$(status_of "http://127.0.0.1:$P_MAIN/~alice/cgi-bin/id.cgi")"
    check_eq "the script did not run" "" "$(ls /home/alice | grep '^ran-' || true)"
    sleep 0.3
    local slog
    slog=$(tail -c +$((log_off + 1)) "$SUEXEC_LOG")
    check_contains "suexec.log says why" "cannot enter the cage of alice (configuration error" "$slog"
    check_contains "  naming the file and line" "cage.mp:4" "$slog"
    check_contains "syslog says why" "user uid $(id -u alice): $T_CONF/cage.mp:4: expected" "$(cat "$T_SYSLOG")"
    check_contains "  from libcage in suexec" "libcage(suexec" "$(cat "$T_SYSLOG")"
    check_eq "carol's CGI still works" "$(id -u carol)" \
        "$(get "http://127.0.0.1:$P_CAROL/cgi-bin/id.cgi" | sed -n 1p)"
    apache_stop
}

run_flavour pristine event cgid
run_flavour custom prefork cgi

echo "# restore"
"$CAGE_ADMIN" --config "$T_CONF" unmount --all >/dev/null 2>&1
check "build.sh --uninstall" bash "$BUILD" --uninstall
check_eq "no diversion is left" "0" "$(dpkg-divert --list '/usr/lib/apache2/suexec-*' | grep -c 'by cage$')"
check_eq "Debian's suexec programs are back, byte for byte" "$debian_sums" \
    "$(sha256sum /usr/lib/apache2/suexec-pristine /usr/lib/apache2/suexec-custom)"
check_eq "  with their set-uid mode and group" "4754 root:www-data 4754 root:www-data" \
    "$(stat -c '%a %U:%G' /usr/lib/apache2/suexec-pristine /usr/lib/apache2/suexec-custom | tr '\n' ' ' | sed 's/ $//')"
check "dpkg --verify finds the packages intact" dpkg --verify apache2-suexec-pristine apache2-suexec-custom
update-alternatives --quiet --auto suexec
[ "$alt_mode" = manual ] && update-alternatives --quiet --set suexec "$alt_before"
check_eq "the suexec alternative is as before" "$alt_before" "$(readlink /etc/alternatives/suexec)"
check_eq "the host's mount table is unchanged" "$mounts_before" "$(mounts_snapshot)"
finish
