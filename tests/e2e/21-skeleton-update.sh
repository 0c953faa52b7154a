#!/usr/bin/env bash
# Needs root. Skeleton updates: changes reach the skeleton, removed templates
# leave it (unless --dont-clean), update-list, pkg, atomic swap under kill -9,
# and a running cage keeps its tree across updates.
source "$(dirname "$0")/../lib.sh"

# A small private config: the shipped /etc basics plus a test template
# naming files of our own under $T_TMP/host (root-owned: hardlinked) and
# one owned by nobody (copied).
T_CONF=$T_TMP/conf
T_SKEL=$T_TMP/skel
H=$T_TMP/host
mkdir -p "$T_CONF/conf.d" "$H/dir/sub"
cp "$REPO/etc/cage/black.list" "$T_CONF/"
cp "$REPO/etc/cage/conf.d/system.cfg" "$REPO/etc/cage/conf.d/base.cfg" "$T_CONF/conf.d/"
printf '[cage]\nskeleton = %s\n' "$T_SKEL" >"$T_CONF/cage.ini"
echo one >"$H/linked.txt"
echo copied-1 >"$H/copied.txt"
chown nobody "$H/copied.txt"
echo a >"$H/dir/a"
echo b >"$H/dir/sub/b"
echo secret >"$H/dir/secret.key"
cat >"$T_CONF/conf.d/skelt.cfg" <<CFG
[skelt]
comment=files of the test
paths=$H/linked.txt, $H/copied.txt,
    $H/dir
CFG
echo "$H/dir/*.key" >"$T_CONF/custom.black.list"
A() { "$CAGE_ADMIN" --config "$T_CONF" "$@"; }
S=$T_SKEL$H

echo "# init"
check "init" A init
check_eq "root-owned file is a hardlink of the host's" "yes" "$([ "$S/linked.txt" -ef "$H/linked.txt" ] && echo yes)"
check_eq "nobody's file is a copy" "no" "$([ "$S/copied.txt" -ef "$H/copied.txt" ] && echo yes || echo no)"
check_eq "the copy keeps its owner" "nobody" "$(stat -c %U "$S/copied.txt")"
check "directories are copied recursively" test -f "$S/dir/sub/b"
check_fail "custom.black.list glob is honoured" test -e "$S/dir/secret.key"
json=$(A --json update)
check_contains "a no-op update changes nothing" '"result": "unchanged"' "$json"

echo "# update follows the host"
echo two >"$H/linked.txt.new" && mv "$H/linked.txt.new" "$H/linked.txt"
echo copied-2 >"$H/copied.txt"
touch -d '2001-01-01' "$H/copied.txt"
echo c >"$H/dir/c"
rm "$H/dir/a"
check "update" A update
check_eq "a replaced host file is replaced" "two" "$(cat "$S/linked.txt")"
check_eq "a changed copied file is copied again" "copied-2" "$(cat "$S/copied.txt")"
check_eq "a new file in a named directory appears" "c" "$(cat "$S/dir/c")"
check_fail "a file gone from the host is gone" test -e "$S/dir/a"

echo "# templates removed, --dont-clean, update-list"
mv "$T_CONF/conf.d/skelt.cfg" "$T_TMP/skelt.cfg.off"
check "update --dont-clean" A update --dont-clean
check "--dont-clean keeps the files" test -f "$S/linked.txt"
check "update" A update
check_fail "removing a template removes its files" test -e "$S/linked.txt"
check_fail "and its directories" test -e "$S/dir/sub/b"
check "update-list adds the listed path" sh -c "echo '$H/linked.txt' | '$CAGE_ADMIN' --config '$T_CONF' update-list"
check_eq "update-list content" "two" "$(cat "$S/linked.txt")"
check "other files untouched by update-list" test -x "$T_SKEL/usr/bin/ls"
mv "$T_TMP/skelt.cfg.off" "$T_CONF/conf.d/skelt.cfg"
check "update" A update

echo "# pkg"
check "pkg add sed" A pkg add sed
check_contains "pkg list shows it" "sed" "$(A pkg list)"
check "update" A update
check "sed's files are in the skeleton" test -f "$T_SKEL/usr/share/doc/sed/copyright"
check_fail "pkg add of a package not installed" A pkg add skelt-no-such-package
check "pkg remove sed" A pkg remove sed
check "update" A update
check_fail "sed's files left" test -e "$T_SKEL/usr/share/doc/sed/copyright"

echo "# kill -9 at random points never leaves a broken skeleton"
for i in 1 2 3 4 5 6; do
    echo "v$i" >"$H/copied.txt"
    touch -d "2002-01-0$i" "$H/copied.txt"
    A init >/dev/null 2>&1 &
    pid=$!
    sleep "0.$((RANDOM % 9))$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    v=$(cat "$S/copied.txt" 2>/dev/null)
    case "$v" in v*|copied-2) ok=yes ;; *) ok=no ;; esac
    check_eq "run $i: live skeleton intact after kill -9 ($v)" "yes" "$ok"
    check "run $i: tools start in it" chroot "$T_SKEL" /usr/bin/ls /usr
done
check "the next update recovers" A update
check_eq "and shows the last content" "v6" "$(cat "$S/copied.txt")"
check_eq "no tree being built is left" "" "$(ls -d "$T_SKEL".new 2>/dev/null)"
check_eq "no retired tree is left" "" "$(ls -d "$T_SKEL".old.* 2>/dev/null)"

echo "# a running cage keeps its tree across updates"
mkdir -p "$T_TMP/mnt"
unshare --mount --propagation private sh -c "mount --bind '$T_SKEL' '$T_TMP/mnt' && exec sleep 120" &
cage=$!
cleanup_add "kill $cage"
sleep 0.5
echo v7 >"$H/copied.txt"
out=$(A update)
check_contains "the old tree is kept while mounted" "cages still use it" "$out"
check_eq "the new skeleton has the new file" "v7" "$(cat "$S/copied.txt")"
check_eq "the running cage still sees its tree" "v6" "$(nsenter -t $cage -m cat "$T_TMP/mnt$H/copied.txt")"
check "and runs programs from it" nsenter -t $cage -m chroot "$T_TMP/mnt" /usr/bin/ls /
kill $cage
wait $cage 2>/dev/null
check "update after the cage ended" A update
check_eq "the retired tree is removed" "" "$(ls -d "$T_SKEL".old.* 2>/dev/null)"

finish
