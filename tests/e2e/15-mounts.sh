#!/usr/bin/env bash
# Needs root. The cage.mp mount language and custom /etc files, through
# real `su` logins: shared, read-only, per-user and split-by-user paths.
source "$(dirname "$0")/../lib.sh"

syslog_capture
cage_env
for u in mona nils; do make_user "$u"; done
for u in mona nils; do "$CAGE_ADMIN" --config "$T_CONF" user enable "$u" >/dev/null; done
S=/srv/cage-mp-test
mkdir -p $S/shared $S/ro $S/split/mona $S/split/nils
cleanup_add "rm -rf $S"
chmod 1777 $S/shared
echo "read me" >$S/ro/file
echo "mona's" >$S/split/mona/mine
echo "nils's" >$S/split/nils/his
chown mona $S/split/mona
cat >"$T_CONF/cage.mp" <<MP
$S/shared
!$S/ro
@/var/spool/cron,700
@/var/run/screen,777
%$S/split
$S/absent-on-this-host
MP
mkdir -p $S/virt/site-a $S/virt/site-b $S/virt/other-customer
echo "a" >$S/virt/site-a/index.html
echo "state_dir = $T_TMP/state" >>"$T_CONF/cage.ini"
mona_state="$T_TMP/state/$("$CAGE_ADMIN" --config "$T_CONF" getprefix mona)/mona"
mkdir -p "$mona_state"
printf '# written by a hosting panel\n%s/virt,0755\n@site-a\n@site-b,0750\n' "$S" >"$mona_state/virt.mp"
mkdir -p "$T_CONF/custom.etc/mona/php"
echo "memory_limit = 64M" >"$T_CONF/custom.etc/mona/php/php.ini"
pam_su_add "config=$T_CONF"
in_mona() { su - mona -c "$1" 2>&1; }

echo "# shared"
in_mona "echo from-mona > $S/shared/m" >/dev/null
check_eq "a shared path is the host's, writable" "from-mona" "$(cat $S/shared/m 2>&1)"
check_eq "nils sees the same shared path" "from-mona" "$(su - nils -c "cat $S/shared/m" 2>&1)"

echo "# read-only"
check_eq "a read-only path is readable" "read me" "$(in_mona "cat $S/ro/file")"
chown mona $S/ro
check_contains "... and not writable, even for its owner" "Read-only file system" "$(in_mona "touch $S/ro/new")"

echo "# per-user directories"
check_eq "@/var/spool/cron is the user's, mode 700" "mona 700" "$(in_mona 'stat -c "%U %a" /var/spool/cron')"
in_mona 'echo job > /var/spool/cron/tab' >/dev/null
check_eq "... stored under ~/.cage on the host" "job" "$(cat /home/mona/.cage/var/spool/cron/tab 2>&1)"
check_eq "@/var/run/screen has mode 777" "777" "$(in_mona 'stat -c %a /var/run/screen')"
check_fail "nils does not see mona's per-user file" su - nils -c "test -e /var/spool/cron/tab"

echo "# split by user"
check_eq "only mona's subdirectory is visible" "mona" "$(in_mona "ls $S/split")"
check_eq "... with her files" "mona's" "$(in_mona "cat $S/split/mona/mine")"
check_eq "nils sees only his" "nils" "$(su - nils -c "ls $S/split" 2>&1)"

echo "# per-user virtual directories (virt.mp in state_dir)"
check_eq "only the listed subdirectories are visible" "site-a site-b" "$(in_mona "ls $S/virt" | tr '\n' ' ' | sed 's/ $//')"
check_eq "... bound from the host" "a" "$(in_mona "cat $S/virt/site-a/index.html")"
check_eq "nils has no virt.mp: none of mona's sites in his cage" "" "$(su - nils -c "ls $S/virt 2>/dev/null" 2>&1)"
printf '@orphan\n' >"$mona_state/virt.mp"
check_contains "a malformed virt.mp is reported with file:line" "$mona_state/virt.mp:1: \`@orphan\` before any virtual directory line" "$("$CAGE_ADMIN" --config "$T_CONF" plan mona 2>&1)"
check_lacks "... and mona's login is refused" "INSIDE" "$(in_mona 'echo INSIDE')"
check_eq "... while nils still logs in" "ok" "$(su - nils -c 'echo ok' 2>&1)"
rm "$mona_state/virt.mp"

echo "# absent shared path"
check_eq "a shared path absent on this host is skipped, the login works" "ok" "$(in_mona 'echo ok')"

echo "# custom /etc"
check_eq "custom.etc/mona/php/php.ini is mona's /etc/php/php.ini" "memory_limit = 64M" "$(in_mona 'cat /etc/php/php.ini')"
check_contains "... mounted read-only" " ro," "$(in_mona "grep ' /etc/php/php.ini ' /proc/self/mountinfo")"
check_fail "nils has no such file" su - nils -c "test -s /etc/php/php.ini"

echo "# plan"
out=$("$CAGE_ADMIN" --config "$T_CONF" plan mona)
check_contains "plan shows the per-user source" "bind     /var/spool/cron  <- ~/.cage/var/spool/cron (mode 0700, created if missing)" "$out"
check_contains "plan shows the split" "bind     $S/split/mona  <- $S/split/mona (if present)" "$out"
check_eq "plan --json is JSON with the ops" "ok" "$("$CAGE_ADMIN" --config "$T_CONF" --json plan mona | python3 -c 'import json,sys; d=json.load(sys.stdin); print("ok" if d["user"]=="mona" and any(o["op"]=="proc" for o in d["ops"]) else "bad")')"

finish
