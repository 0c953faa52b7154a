#!/usr/bin/env bash
# Web benchmark: the real Debian Apache and PHP-FPM on loopback, caged and
# uncaged side by side in one run. Needs root on a Debian 12 host with
# apache2, apache2-suexec-custom, php8.2-fpm (ci/deps.sh); `ab` is Debian's
# (apache2-utils).
#
#   bench/web.sh [--short]
#
# Rows:
#   CGI through suexec: Debian's suexec (carol), the patched suexec for an
#   uncaged user (carol) and for a caged user (alice, her cage live);
#   a PHP page through PHP-FPM (pm = static) behind proxy_fcgi, with
#   libcage_preload.so loaded: an uncaged pool (carol), a caged one (bob);
#   FPM worker spawn: pm = ondemand with pm.max_requests = 1 (every request
#   is served by a worker spawned for it), caged and uncaged.
# Requests per second and latency p50/p99 (ab, concurrency 1 and 4).
# --short: 100 requests a row (CI); default: 2000. Uses tests/lib.sh (its
# lock, users, private configuration and cleanups: every change is undone
# at exit). Figures, not assertions. See bench/README.md.
source "$(dirname "$0")/../tests/lib.sh"
export LC_ALL=C

MODE=full
for a in "$@"; do
    case $a in
        --short) MODE=short ;;
        --full) MODE=full ;;
        -h | --help) sed -n '2,21s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) sed -n '2,21s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
    esac
done
if [ "$MODE" = short ]; then N=100 SPAWNS=5; else N=2000 SPAWNS=30; fi
for b in apache2 ab /usr/sbin/php-fpm8.2; do
    command -v "$b" >/dev/null || { echo "web.sh: $b is missing (ci/deps.sh)" >&2; exit 1; }
done
PRELOAD=$(dirname "$LIBCAGE_SO")/libcage_preload.so
[ -f "$PRELOAD" ] || { echo "web.sh: $PRELOAD is missing: cargo build --workspace --release" >&2; exit 1; }

rshared_root
syslog_capture
cage_env
make_user alice
make_user bob
make_user carol
A() { "$CAGE_ADMIN" --config "$T_CONF" "$@"; }
A user enable alice >/dev/null
A user enable bob >/dev/null
printf '/run/mysqld\n!/usr/share/zoneinfo\n%%/var/www\n' >"$T_CONF/cage.mp"
BUILD=$REPO/patches/build.sh
alt_before=$(readlink /etc/alternatives/suexec)
alt_mode=$(update-alternatives --query suexec | awk '/^Status:/ {print $2}')
cleanup_add "update-alternatives --quiet --auto suexec"
[ "$alt_mode" = manual ] && cleanup_add "update-alternatives --quiet --set suexec '$alt_before'"
update-alternatives --quiet --set suexec /usr/lib/apache2/suexec-custom

for u in alice carol; do
    chmod 711 "/home/$u"
    rm -rf "/var/www/$u"
    install -d -o "$u" -g "$u" -m 755 "/var/www/$u" "/var/www/$u/cgi-bin"
    cleanup_add "rm -rf /var/www/$u"
    printf '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho hi\n' >"/var/www/$u/cgi-bin/hi.cgi"
    chown "$u:$u" "/var/www/$u/cgi-bin/hi.cgi"
    chmod 755 "/var/www/$u/cgi-bin/hi.cgi"
done
for u in bob carol; do
    chmod 711 "/home/$u"
    install -d -o "$u" -g "$u" -m 755 "/home/$u/public_html"
    echo '<?php echo "hi\n";' >"/home/$u/public_html/hi.php"
    chown "$u:$u" "/home/$u/public_html/hi.php"
done

AP=$T_TMP/apache
F=$T_TMP/fpm
mkdir -p "$AP" "$F"
P_ALICE=18171 P_CAROL=18172 P_BOB=18173 P_CAROLPHP=18174
apache_conf() {
    local m=/usr/lib/apache2/modules
    cat <<EOF
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule alias_module $m/mod_alias.so
LoadModule cgid_module $m/mod_cgid.so
LoadModule suexec_module $m/mod_suexec.so
LoadModule proxy_module $m/mod_proxy.so
LoadModule proxy_fcgi_module $m/mod_proxy_fcgi.so
ServerName localhost
User www-data
Group www-data
PidFile $AP/httpd.pid
ErrorLog $AP/error.log
DefaultRuntimeDir $AP
Mutex file:$AP default
ScriptSock $AP/cgid.sock
KeepAlive On
MaxKeepAliveRequests 0
EOF
    local u p
    for u in alice:$P_ALICE carol:$P_CAROL; do
        p=${u#*:} u=${u%:*}
        cat <<EOF
Listen 127.0.0.1:$p
<VirtualHost 127.0.0.1:$p>
    SuexecUserGroup $u $u
    ScriptAlias /cgi-bin/ /var/www/$u/cgi-bin/
    <Directory /var/www/$u/cgi-bin>
        Require all granted
    </Directory>
</VirtualHost>
EOF
    done
    for u in bob:$P_BOB carol:$P_CAROLPHP; do
        p=${u#*:} u=${u%:*}
        cat <<EOF
Listen 127.0.0.1:$p
<VirtualHost 127.0.0.1:$p>
    DocumentRoot /home/$u/public_html
    <Directory /home/$u/public_html>
        Require all granted
    </Directory>
    <FilesMatch "\.php\$">
        SetHandler "proxy:unix:$F/$u.sock|fcgi://localhost"
    </FilesMatch>
</VirtualHost>
EOF
    done
}
cleanup_add "stop_pidfile '$AP/httpd.pid' TERM 100"
cleanup_add "stop_pidfile '$F/fpm.pid' QUIT 100"
apache_start() {
    stop_pidfile "$AP/httpd.pid" TERM 100
    apache_conf >"$AP/httpd.conf"
    /usr/sbin/apache2 -f "$AP/httpd.conf" -k start || return 1
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$P_CAROL/" && return 0; sleep 0.1; done
    return 1
}
fpm_start() { # PM
    stop_pidfile "$F/fpm.pid" QUIT 100
    {
        printf '[global]\npid = %s\nerror_log = %s\ndaemonize = yes\n' "$F/fpm.pid" "$F/fpm.log"
        local u
        for u in bob carol; do
            printf '[%s]\nuser = %s\ngroup = %s\nlisten = %s\nlisten.owner = www-data\nlisten.group = www-data\n' \
                "$u" "$u" "$u" "$F/$u.sock"
            if [ "$1" = static ]; then
                printf 'pm = static\npm.max_children = 4\n'
            else
                printf 'pm = ondemand\npm.max_children = 4\npm.max_requests = 1\n'
            fi
        done
    } >"$F/fpm.conf"
    LD_PRELOAD=$PRELOAD CAGE_PRELOAD_CONFIG_DIR=$T_CONF /usr/sbin/php-fpm8.2 --fpm-config "$F/fpm.conf" || return 1
    for _ in $(seq 50); do [ -S "$F/bob.sock" ] && [ -S "$F/carol.sock" ] && return 0; sleep 0.1; done
    return 1
}

# row LABEL URL: ab at concurrency 1 and 4 (after a warm-up).
printf '%-44s %5s %9s %8s %8s\n' "" "conc" "req/s" "p50 ms" "p99 ms" >"$T_TMP/table"
row() {
    local label=$1 url=$2 c out
    curl -s -o /dev/null "$url"
    for c in 1 4; do
        out=$(ab -q -n "$N" -c "$c" "$url" 2>&1)
        if ! grep -q '^Complete requests: *'"$N" <<<"$out" || ! grep -q '^Failed requests: *0' <<<"$out" ||
            grep -q '^Non-2xx responses' <<<"$out"; then
            printf '%-44s %5s %s\n' "$label" "$c" "n/a: $(grep -E 'Failed|Non-2xx|apr_' <<<"$out" | head -n 2 | tr '\n' ' ')" >>"$T_TMP/table"
            continue
        fi
        printf '%-44s %5s %9s %8s %8s\n' "$label" "$c" \
            "$(awk '/^Requests per second/ {print $4}' <<<"$out")" \
            "$(awk '$1 == "50%" {print $2}' <<<"$out")" \
            "$(awk '$1 == "99%" {print $2}' <<<"$out")" >>"$T_TMP/table"
    done
}

echo "== web benchmark ($MODE: $N requests a row; $(nproc) cores; $(uname -r))"
check_view() { # DESC EXPECTED URL: the row measures what it says
    local got
    got=$(curl -s "$3")
    [ "$got" = "$2" ] || { echo "  FAIL  $1: expected $(printf %q "$2"), got $(printf %q "$got")"; return 1; }
}

# Debian's suexec first, then the patched one.
apache_start || { echo "apache2 did not start" >&2; exit 1; }
row "CGI suexec, Debian's (carol)" "http://127.0.0.1:$P_CAROL/cgi-bin/hi.cgi"
stop_pidfile "$AP/httpd.pid" TERM 100

cleanup_add "bash '$BUILD' --uninstall"
bash "$BUILD" --variant suexec "$T_CONF" "$(dirname "$LIBCAGE_SO")" "$T_TMP/suexec" >"$T_TMP/build.log" 2>&1 &&
    bash "$BUILD" --install-files suexec "$T_TMP/suexec" >>"$T_TMP/build.log" 2>&1 ||
    { cat "$T_TMP/build.log" >&2; echo "the patched suexec cannot be built" >&2; exit 1; }
apache_start || { echo "apache2 did not start" >&2; exit 1; }
check_view "alice's CGI" "hi" "http://127.0.0.1:$P_ALICE/cgi-bin/hi.cgi"
row "CGI suexec, patched, uncaged user (carol)" "http://127.0.0.1:$P_CAROL/cgi-bin/hi.cgi"
row "CGI suexec, patched, caged user (alice)" "http://127.0.0.1:$P_ALICE/cgi-bin/hi.cgi"

fpm_start static || { echo "php-fpm did not start" >&2; exit 1; }
curl -s "http://127.0.0.1:$P_BOB/hi.php" | grep -q '^hi$' || echo "  FAIL  bob's PHP page"
row "PHP-FPM static, uncaged pool (carol)" "http://127.0.0.1:$P_CAROLPHP/hi.php"
row "PHP-FPM static, caged pool (bob)" "http://127.0.0.1:$P_BOB/hi.php"

# Spawn: pm = ondemand with pm.max_requests = 1, so that every request is
# served by a worker spawned for it (and entering the cage when caged).
fpm_start spawn || { echo "php-fpm did not start" >&2; exit 1; }
row "PHP-FPM, a new worker per request, uncaged" "http://127.0.0.1:$P_CAROLPHP/hi.php"
row "PHP-FPM, a new worker per request, caged" "http://127.0.0.1:$P_BOB/hi.php"
stop_pidfile "$F/fpm.pid" QUIT 100
stop_pidfile "$AP/httpd.pid" TERM 100
sleep 0.3
# libcage's own figure for each entry (its syslog line: "... (joined) in N us").
entry_us() { # TAG
    grep -F "$1" "$T_SYSLOG" | sed -n 's/.*(joined) in \([0-9]*\) us.*/\1/p' | sort -n |
        awk '{a[NR]=$1} END {i = int(NR * 0.99); if (i < 1) i = 1; if (NR) printf "%d entries, median %d us, p99 %d us", NR, a[int((NR+1)/2)], a[i]; else print "none"}'
}
{
    echo
    echo "libcage entry (joining the live cage), from its syslog lines:"
    echo "  suexec (alice):             $(entry_us 'libcage(suexec): user alice entered')"
    echo "  php-fpm worker (bob):       $(entry_us 'cage_preload(php-fpm8.2): user bob entered')"
} >>"$T_TMP/table"
cat "$T_TMP/table"

echo
echo "== goals (reported, not asserted)"
ratio() { # LABEL_A LABEL_B CONC: req/s of B over A
    awk -v a="$1" -v b="$2" -v c="$3" '
        index($0, a) == 1 && $(NF-3) == c {ra = $(NF-2)}
        index($0, b) == 1 && $(NF-3) == c {rb = $(NF-2)}
        END {if (ra > 0 && rb > 0) printf "%.1f%%", (rb / ra - 1) * 100; else print "n/a"}' "$T_TMP/table"
}
echo "caged CGI vs Debian's suexec, conc 1: $(ratio "CGI suexec, Debian's" "CGI suexec, patched, caged" 1) req/s (goal: within -5%)"
echo "caged CGI vs patched uncaged, conc 1:  $(ratio "CGI suexec, patched, uncaged" "CGI suexec, patched, caged" 1) req/s"
echo "caged FPM vs uncaged FPM, conc 1:      $(ratio "PHP-FPM static, uncaged" "PHP-FPM static, caged" 1) req/s (goal: within -2%)"
echo "caged FPM vs uncaged FPM, conc 4:      $(ratio "PHP-FPM static, uncaged" "PHP-FPM static, caged" 4) req/s (goal: within -2%)"
echo "caged FPM spawn vs uncaged, conc 1:    $(ratio "PHP-FPM, a new worker per request, uncaged" "PHP-FPM, a new worker per request, caged" 1) req/s"
A unmount --all >/dev/null 2>&1
exit 0
