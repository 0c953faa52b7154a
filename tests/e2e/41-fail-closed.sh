#!/usr/bin/env bash
# Needs root. Errors never uncage, and refuse only sessions they concern:
# an unreadable users.enabled (disable-all), a broken exclude/ file, a
# broken cage.ini (cron-style session of www-data through pam_cage.so), and
# ~/.cage/reload requests that root cannot consume safely (a directory, a
# symlink, a fifo, another owner's file) or that come too often.
source "$(dirname "$0")/../lib.sh"

rshared_root
syslog_capture
cage_env
make_user fcin
make_user fcout
A() { "$CAGE_ADMIN" --config "$T_CONF" "$@"; }
A user enable fcin >/dev/null
pam_su_add "config=$T_CONF"
uid_in=$(id -u fcin)
pre=$(A getprefix fcin 2>/dev/null || printf '%02d' $((uid_in % 100)))
host_mnt=$(readlink /proc/self/ns/mnt)
gcc -std=c11 -Wall -Wextra -Werror -o "$T_TMP/pam_harness" "$REPO/tests/c/pam_harness.c" -lpam -ldl ||
    { echo "cannot build pam_harness" >&2; exit 1; }
# cron USER: pam_cage.so's result for a session of service cron.
cron() { "$T_TMP/pam_harness" "$PAM_CAGE_SO" cron "$1" "config=$T_CONF" 2>&1; }
log_since() { sleep 0.3; cat "$T_SYSLOG"; : >"$T_SYSLOG"; }
login() { su - "$1" -c 'readlink /proc/self/ns/mnt' 2>&1; }

echo "# users.enabled unreadable (disable-all)"
check_contains "intact: fcin is caged" "mnt:[" "$(login fcin)"
check_eq "intact: fcout is not caged" "$host_mnt" "$(login fcout)"
mv "$T_CONF/users.enabled" "$T_TMP/users.enabled.saved"
cleanup_add "rm -rf '$T_CONF/users.enabled'; mv '$T_TMP/users.enabled.saved' '$T_CONF/users.enabled'"
echo "not a directory" >"$T_CONF/users.enabled"
log_since >/dev/null
check_fail "users.enabled a file: fcin's su login is refused" su - fcin -c true
check_contains "syslog names the marker and the errno" \
    "pam_cage(su-l): user fcin: $T_CONF/users.enabled/$pre/fcin: cannot stat: Not a directory (os error 20)" "$(log_since)"
check_fail "fcout is refused too (whether it is enabled cannot be told)" su - fcout -c true
check_eq "a system account's cron session opens" "PAM_IGNORE" "$(cron www-data)"
rm -f "$T_CONF/users.enabled"
mkdir -p "$T_CONF/users.enabled"
ln -s "$pre" "$T_CONF/users.enabled/$pre"
check_fail "a symlink loop (ELOOP): fcin refused" su - fcin -c true
check_contains "syslog: ELOOP" "$T_CONF/users.enabled/$pre/fcin: cannot stat: Too many levels of symbolic links (os error 40)" "$(log_since)"
rm -rf "$T_CONF/users.enabled"
mv "$T_TMP/users.enabled.saved" "$T_CONF/users.enabled"
check_contains "restored: fcin enters" "mnt:[" "$(login fcin)"

echo "# broken exclude/"
mkdir -p "$T_CONF/exclude"
cleanup_add "rm -rf '$T_CONF/exclude'"
printf 'ops\nnot a name\n' >"$T_CONF/exclude/panel"
log_since >/dev/null
check_eq "fcout (not enabled) logs in normally, uncaged" "$host_mnt" "$(login fcout)"
check_eq "no pam_cage line for fcout" "" "$(log_since | grep "pam_cage.*fcout")"
check_eq "a system account's cron session opens" "PAM_IGNORE" "$(cron www-data)"
check_fail "fcin (enabled) is refused: whether it is excluded cannot be told" su - fcin -c true
check_contains "syslog: exclude file:line" \
    "pam_cage(su-l): user fcin: $T_CONF/exclude/panel:2: expected one user name per line, found \`not a name\`" "$(log_since)"
echo fcin >"$T_CONF/exclude/panel"
check_eq "fixed and listing fcin: fcin is not caged" "$host_mnt" "$(login fcin)"
rm -rf "$T_CONF/exclude"

echo "# broken cage.ini"
cp -a "$T_CONF/cage.ini" "$T_TMP/cage.ini.orig"
cleanup_add "cp -a '$T_TMP/cage.ini.orig' '$T_CONF/cage.ini'"
echo "no_such_key = 1" >>"$T_CONF/cage.ini"
ini_line=$(wc -l <"$T_CONF/cage.ini")
log_since >/dev/null
check_eq "www-data's cron session still opens (no min_uid= on the line)" "PAM_IGNORE" "$(cron www-data)"
check_contains "...with a warning naming cage.ini:line" \
    "pam_cage(cron): user www-data: not caged (uid below min_uid) despite broken configuration: $T_CONF/cage.ini:$ini_line: unknown key" "$(log_since)"
check_eq "root passes" "PAM_IGNORE" "$(cron root)"
check_eq "the enabled user's cron session is refused" "PAM_SESSION_ERR" "$(cron fcin)"
check_contains "syslog: refused with cage.ini:line" "pam_cage(cron): user fcin: $T_CONF/cage.ini:$ini_line: unknown key \`no_such_key\`" "$(log_since)"
check_fail "the enabled user's su login is refused" su - fcin -c true
check_eq "fcout (uid >= 1000, the mode unknown) is refused too" "PAM_SESSION_ERR" "$(cron fcout)"
A user disable fcout >/dev/null
check_eq "...unless disabled (not caged in either mode)" "PAM_IGNORE" "$(cron fcout)"
rm -f "$T_CONF/users.disabled/$(A getprefix fcout 2>/dev/null || printf '%02d' $(($(id -u fcout) % 100)))/fcout"
cp -a "$T_TMP/cage.ini.orig" "$T_CONF/cage.ini"

echo "# ~/.cage/reload"
rec="/run/cage/$uid_in.rec"
age() { sed -i 's/^created=.*/created=0/' "$rec"; }
gen() { sed -n 's/^generation=//p' "$rec"; }
# entries N: N su logins of fcin; prints "BUILT JOINED" from syslog.
entries() {
    local i
    : >"$T_SYSLOG"
    for i in $(seq "$1"); do su - fcin -c true >/dev/null 2>&1; done
    sleep 0.3
    echo "$(grep -c 'user fcin entered cage generation [0-9]* (built)' "$T_SYSLOG") $(grep -c 'user fcin entered cage generation [0-9]* (joined)' "$T_SYSLOG")"
}
su - fcin -c true
g0=$(gen)
su - fcin -c 'mkdir -p ~/.cage/reload/sub && touch ~/.cage/reload/sub/f'
age
check_eq "a non-empty ~/.cage/reload/ directory: 5 entries, 0 built, 5 joined" "0 5" "$(entries 5)"
check_contains "the refusal is logged" "user fcin: ignoring /home/fcin/.cage/reload (a directory): no reload" "$(cat "$T_SYSLOG")"
check "the directory is left alone" test -f /home/fcin/.cage/reload/sub/f
rm -rf /home/fcin/.cage/reload

echo precious >"$T_TMP/target"
ln -s "$T_TMP/target" /home/fcin/.cage/reload
chown -h fcin: /home/fcin/.cage/reload
check_eq "a symlink: no rebuild" "0 2" "$(entries 2)"
check_eq "the symlink's target is untouched" "precious" "$(cat "$T_TMP/target")"
check_contains "refusal logged" "(a symlink): no reload" "$(cat "$T_SYSLOG")"
rm -f /home/fcin/.cage/reload
su - fcin -c 'mkfifo ~/.cage/reload'
check_eq "a fifo: no rebuild" "0 2" "$(entries 2)"
rm -f /home/fcin/.cage/reload
touch /home/fcin/.cage/reload
check_eq "a root-owned file: no rebuild" "0 2" "$(entries 2)"
check "...and it is not removed" test -f /home/fcin/.cage/reload
rm -f /home/fcin/.cage/reload
check_eq "generation unchanged so far" "$g0" "$(gen)"

su - fcin -c 'touch ~/.cage/reload'
check_eq "the user's file: one rebuild, then joins" "1 4" "$(entries 5)"
check_fail "the request is consumed" test -e /home/fcin/.cage/reload
check_eq "generation + 1" "$((g0 + 1))" "$(gen)"
su - fcin -c 'touch ~/.cage/reload'
check_eq "a new request within reload_interval waits (rate limit)" "0 3" "$(entries 3)"
check "...and is kept" test -f /home/fcin/.cage/reload
age
check_eq "once the generation is old enough, the waiting request rebuilds once" "1 2" "$(entries 3)"
check_fail "consumed" test -e /home/fcin/.cage/reload
if chattr +i /home/fcin/.cage 2>/dev/null; then
    chattr -i /home/fcin/.cage
    su - fcin -c 'touch ~/.cage/reload'
    chattr +i /home/fcin/.cage
    cleanup_add "chattr -i /home/fcin/.cage"
    age
    check_eq "an immutable ~/.cage (cannot remove the request): no rebuild" "0 3" "$(entries 3)"
    check_contains "logged" "(cannot remove it: " "$(cat "$T_SYSLOG")"
    chattr -i /home/fcin/.cage
else
    echo "  skip  immutable ~/.cage (chattr unsupported here)"
fi

finish
