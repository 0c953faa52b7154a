#!/usr/bin/env bash
# Needs root. The skeleton built from the shipped templates: every shipped
# tool starts inside a chroot of it, NSS works there, nothing secret or
# set-id gets in, and a user logged in with `su` runs the tools in a cage.
source "$(dirname "$0")/../lib.sh"

# A host secret the skeleton must never show.
if [ ! -e /etc/apache2 ]; then
    mkdir -p /etc/apache2
    cleanup_add "rm -rf /etc/apache2"
fi
[ -e /etc/apache2/skelt-secret.conf ] || { echo secret >/etc/apache2/skelt-secret.conf; cleanup_add "rm -f /etc/apache2/skelt-secret.conf"; }

cage_env
A() { "$CAGE_ADMIN" --config "$T_CONF" "$@"; }

echo "# init"
check "init built $T_SKEL" test -x "$T_SKEL/usr/bin/ls"
check_eq "bin is the merged-/usr symlink" "usr/bin" "$(readlink "$T_SKEL/bin")"
check_eq "lib64 is the merged-/usr symlink" "usr/lib64" "$(readlink "$T_SKEL/lib64")"
for d in dev proc tmp home var/tmp; do
    check "/$d exists and is empty" sh -c "[ -d '$T_SKEL/$d' ] && [ -z \"\$(ls -A '$T_SKEL/$d' | grep -v '^ptmx\$')\" ]"
done
check_eq "/run holds only the proxy socket's mount point, empty" "cage-proxy " \
    "$(ls -A "$T_SKEL/run" | tr '\n' ' ')$(ls -A "$T_SKEL/run/cage-proxy" 2>&1)"
check_eq "/etc/passwd is an empty placeholder" "0 root 644" "$(stat -c '%s %U %a' "$T_SKEL/etc/passwd")"
check_eq "/etc/group is an empty placeholder" "0 root 644" "$(stat -c '%s %U %a' "$T_SKEL/etc/group")"
check_contains "nsswitch.conf: passwd from files only" "passwd:         files
" "$(cat "$T_SKEL/etc/nsswitch.conf")"
check_contains "nsswitch.conf: hosts from files and dns" "hosts:          files dns" "$(cat "$T_SKEL/etc/nsswitch.conf")"
check_contains "libnss_dns is there (loaded at run time, not in ldd)" "libnss_dns.so.2" "$(ls "$T_SKEL/usr/lib/x86_64-linux-gnu/")"
check "the CA bundle is there" test -s "$T_SKEL/etc/ssl/certs/ca-certificates.crt"
check "localtime resolves inside" test -e "$T_SKEL/usr/share/zoneinfo/$(readlink /etc/localtime | sed 's|.*zoneinfo/||')"
check "gconv modules are there (iconv is used)" test -e "$T_SKEL/usr/lib/x86_64-linux-gnu/gconv/gconv-modules"
check_eq "the /dev/ptmx node from devices= was created" "c 5,2" "$(stat -c '%F' "$T_SKEL/dev/ptmx" | sed 's/character special file/c/') $(stat -c '%t,%T' "$T_SKEL/dev/ptmx" | awk -F, '{printf "%d,%d", "0x"$1, "0x"$2}')"

echo "# nothing secret, nothing set-id"
for p in /etc/shadow /etc/gshadow /etc/apache2 /etc/sudoers /etc/ssh/ssh_host_rsa_key /root /etc/cage; do
    check_fail "$p is absent" test -e "$T_SKEL$p"
done
check_eq "no file has set-uid/set-gid bits" "" "$(find "$T_SKEL" -perm /6000 | head -5)"
check_eq "no file of the host's home directories" "" "$(ls -A "$T_SKEL/home")"

echo "# every shipped tool starts in a chroot of the skeleton"
# A private mount namespace with /dev, /proc and a passwd holding root
# (what the runtime provides: it synthesizes passwd and group).
grep '^root:' /etc/passwd >"$T_TMP/passwd"
grep '^root:' /etc/group >"$T_TMP/group"
in_skel() {
    unshare --mount --propagation private sh -c '
        mount --rbind /dev "$1/dev" && mount -t proc proc "$1/proc" &&
        mount --bind "$2/passwd" "$1/etc/passwd" && mount --bind "$2/group" "$1/etc/group" &&
        shift 2 && exec chroot "$@"' sh "$T_SKEL" "$T_TMP" "$T_SKEL" "$@"
}
tools=(
    "ls --version" "bash --version" "sh -c true" "dash -c true" "cat --version" "cp --version"
    "grep --version" "sed --version" "awk -W version" "find --version" "xargs --version"
    "tar --version" "gzip --version" "bzip2 --help" "xz --version" "less --version"
    "diff --version" "cmp --version" "which ls" "file --version" "vi --version" "vim --version"
    "perl -e 1" "python3 -c 'import ssl, json, sqlite3, hashlib, ctypes'"
    "git --version" "ssh -V" "scp -h" "ssh-keygen -h" "curl --version" "wget --version"
    "ps -e" "getent --version" "locale" "iconv --version" "date" "env true" "id"
)
[ -e /usr/lib/openssh/sftp-server ] && tools+=("/usr/lib/openssh/sftp-server -h")
[ -e /usr/bin/nano ] && tools+=("nano --version")
[ -e /usr/bin/mysql ] && tools+=("mysql --version")
[ -e /usr/bin/php ] && tools+=("php --version")
for t in "${tools[@]}"; do
    out=$(in_skel sh -c "$t" 2>&1 </dev/null)
    rc=$?
    # scp/ssh-keygen -h print usage and exit 1/255; what matters is that the
    # loader found everything.
    case "$t" in scp*|ssh-keygen*|*sftp-server*) [ $rc -le 255 ] && ! grep -q "error while loading" <<<"$out" && rc=0 ;; esac
    if [ $rc = 0 ] && ! grep -q "error while loading\|not found" <<<"$out"; then _ok "$t"; else _bad "$t" "exit $rc: $out"; fi
done
check_eq "getent hosts localhost works inside (NSS files)" "127.0.0.1" "$(in_skel getent hosts localhost | awk '{print $1; exit}')"
check_eq "python resolves localhost inside (NSS via libc)" "127.0.0.1" "$(in_skel python3 -c 'import socket; print(socket.gethostbyname("localhost"))')"
check_eq "iconv converts inside (gconv)" "caf\xe9" "$(printf 'caf\xc3\xa9' | in_skel iconv -f UTF-8 -t LATIN1 | od -An -c | tr -d ' \n' | sed 's/351/\\xe9/')"
if command -v php >/dev/null; then
    check_eq "php -r works inside" "1" "$(in_skel php -r 'echo 1;')"
fi

echo "# set-id programs named by a template"
cat >"$T_CONF/conf.d/skelt-suid.cfg" <<'CFG'
[skelt-suid]
comment=set-id programs, for the test
paths=/usr/bin/passwd, /usr/bin/chsh
CFG
check "update with a set-id program" A update
check_contains "print-suids names /usr/bin/passwd" "/usr/bin/passwd" "$(A print-suids)"
check "passwd is in the skeleton" test -f "$T_SKEL/usr/bin/passwd"
check_eq "without its set-uid bit" "755" "$(stat -c '%a' "$T_SKEL/usr/bin/passwd")"
check_fail "and as a copy, not the host's inode" test "$T_SKEL/usr/bin/passwd" -ef /usr/bin/passwd

echo "# errors"
printf '[broken]\npaths=relative/path\nfiles=/x\n' >"$T_CONF/conf.d/zz-broken.cfg"
out=$(A update 2>&1)
check_eq "update refuses a broken template" "1" "$?"
check_contains "naming file:line and what was expected" "zz-broken.cfg:2: expected an absolute path, found \`relative/path\`" "$out"
check_contains "every bad line" "zz-broken.cfg:3: unknown key \`files\`" "$out"
rm -f "$T_CONF/conf.d/zz-broken.cfg"
check_contains "an absent path is a note, not an error" "not on this host, skipped" "$(printf '[absent]\npaths=/nonexistent/skelt\n' >"$T_CONF/conf.d/absent.cfg"; A update 2>&1)"
rm -f "$T_CONF/conf.d/absent.cfg"
check_contains "--json summary" '"result": ' "$(A --json update 2>/dev/null)"
check_contains "--verbose lists files" "keep   /usr/bin/ls" "$(A --verbose update 2>/dev/null)"

echo "# a user logged in with su runs the shipped tools in a cage"
rshared_root
make_user skelt1
A user enable skelt1 >/dev/null
pam_su_add "config=$T_CONF"
out=$(su - skelt1 -c 'ls / >/dev/null && echo ls-ok; perl -e "print qq(perl-ok\n)"; python3 -c "print(\"python-ok\")"; git --version >/dev/null && echo git-ok; getent hosts localhost >/dev/null && echo nss-ok; test -e /etc/shadow || echo no-shadow' 2>&1)
for w in ls-ok perl-ok python-ok git-ok nss-ok no-shadow; do check_contains "caged su session: $w" "$w" "$out"; done
check_contains "the session is caged (its / is the skeleton)" "skelt1" "$(su - skelt1 -c 'cat /etc/passwd' 2>&1)"
check_lacks "the cage's passwd has no other users" "skelt2" "$(su - skelt1 -c 'cat /etc/passwd' 2>&1)"

finish
