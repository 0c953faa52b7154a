# Shared helpers for the root end-to-end tests (tests/e2e/*.sh).
#
#   source "$(dirname "$0")/../lib.sh"
#
# Every test script runs as root, registers a cleanup for everything it
# changes (users, mounts, PAM lines, files), and ends with `finish`, which
# prints "N passed, N failed" and exits non-zero on any failure. Cleanups run
# LIFO at exit, also when the script fails or is interrupted.

set -u

if [ "$(id -u)" != 0 ]; then
    echo "$0: these tests need root (they create users, mounts and PAM lines)" >&2
    exit 2
fi

# One root test at a time on this machine (several checkouts may run tests:
# they share users, PAM files, /dev/log and /run/cage). flock -o keeps the
# lock in flock itself, so daemons a test starts never inherit it.
if [ -z "${CAGE_E2E_LOCKED:-}" ]; then
    export CAGE_E2E_LOCKED=1
    mkdir -p /run/lock
    exec flock -o /run/lock/cage-e2e.lock bash "$0" "$@"
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}/release
CAGE_ADMIN=$TARGET/cage-admin
LIBCAGE_SO=$TARGET/libcage.so
PAM_CAGE_SO=$TARGET/libpam_cage.so
# The cage init program, built by ci/test.sh (its own workspace):
#   cargo build --release --manifest-path cage-init/Cargo.toml --target-dir target
CAGE_INIT=$TARGET/cage-init
export CAGE_ADMIN LIBCAGE_SO PAM_CAGE_SO CAGE_INIT REPO

T_NAME=$(basename "$0" .sh)
# Not under /tmp: tests run services with a private /tmp. On the root
# filesystem, so the skeleton can hardlink from the host.
mkdir -p /var/lib/cage-tests
T_TMP=$(mktemp -d "/var/lib/cage-tests/$T_NAME.XXXXXX")
chmod 755 "$T_TMP"

_CLEANUPS=()
cleanup_add() { _CLEANUPS+=("$1"); }
_run_cleanups() {
    local i
    for ((i = ${#_CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${_CLEANUPS[i]}" >/dev/null 2>&1 || true
    done
    rm -rf "$T_TMP"
}
trap _run_cleanups EXIT
trap 'exit 130' INT TERM HUP

T_PASS=0
T_FAIL=0
_ok() { T_PASS=$((T_PASS + 1)); printf '  ok    %s\n' "$1"; }
_bad() {
    T_FAIL=$((T_FAIL + 1))
    printf '  FAIL  %s\n' "$1"
    [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/        | /'
    return 0
}

# check DESC CMD...: passes when CMD exits 0.
check() {
    local d=$1
    shift
    if "$@" >"$T_TMP/.out" 2>&1; then _ok "$d"; else _bad "$d" "exit $?: $(tail -n 8 "$T_TMP/.out")"; fi
}

# check_fail DESC CMD...: passes when CMD exits non-zero.
check_fail() {
    local d=$1
    shift
    if "$@" >"$T_TMP/.out" 2>&1; then _bad "$d" "unexpectedly succeeded: $(tail -n 8 "$T_TMP/.out")"; else _ok "$d"; fi
}

# check_eq DESC EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then _ok "$1"; else _bad "$1" "expected: $(printf '%q' "$2")
actual:   $(printf '%q' "$3")"; fi
}

# check_contains DESC NEEDLE HAYSTACK
check_contains() {
    case "$3" in *"$2"*) _ok "$1" ;; *) _bad "$1" "missing $(printf '%q' "$2") in: $(printf '%s' "$3" | head -c 600)" ;; esac
}

# check_lacks DESC NEEDLE HAYSTACK
check_lacks() {
    case "$3" in *"$2"*) _bad "$1" "unexpected $(printf '%q' "$2") in: $(printf '%s' "$3" | head -c 600)" ;; *) _ok "$1" ;; esac
}

finish() {
    echo "$T_NAME: $T_PASS passed, $T_FAIL failed"
    [ "$T_FAIL" = 0 ]
    exit $?
}

# make_user NAME: a fresh user with a home, removed (with its processes and
# home) at exit. Leftovers of an earlier crashed run are removed first.
make_user() {
    local u=$1
    if id "$u" >/dev/null 2>&1; then
        pkill -KILL -u "$u" 2>/dev/null
        sleep 0.2
        userdel -r -f "$u" >/dev/null 2>&1
    fi
    useradd -m -s /bin/bash "$u" || { echo "useradd $u failed" >&2; exit 1; }
    cleanup_add "pkill -KILL -u $u; sleep 0.3; userdel -r -f $u"
}

# cage_env: a private config dir $T_CONF and skeleton $T_SKEL (built with
# `cage-admin init` from the shipped templates), never /etc/cage, with the
# cage init program of this build. Cages built under it are unpinned at exit.
cage_env() {
    T_CONF=$T_TMP/conf
    T_SKEL=$T_TMP/skel
    mkdir -p "$T_CONF"
    [ -d "$REPO/etc/cage/conf.d" ] && cp -r "$REPO/etc/cage/conf.d" "$T_CONF/"
    [ -f "$REPO/etc/cage/black.list" ] && cp "$REPO/etc/cage/black.list" "$T_CONF/"
    if [ ! -x "$CAGE_INIT" ]; then
        echo "$CAGE_INIT is missing: cargo build --release --manifest-path cage-init/Cargo.toml --target-dir target" >&2
        exit 1
    fi
    printf '[cage]\nskeleton = %s\nmode = disable-all\ninit_program = %s\n' "$T_SKEL" "$CAGE_INIT" >"$T_CONF/cage.ini"
    cleanup_add "'$CAGE_ADMIN' unmount --all"
    if ! "$CAGE_ADMIN" --config "$T_CONF" init >"$T_TMP/init.log" 2>&1; then
        echo "cage-admin init failed:" >&2
        cat "$T_TMP/init.log" >&2
        exit 1
    fi
    export T_CONF T_SKEL
}

# mounts_snapshot: the host mount table without per-process noise.
mounts_snapshot() {
    awk '{print $5, $4, $9, $10}' /proc/self/mountinfo | sort
}

# syslog_capture: a private /dev/log whose datagrams land in $T_SYSLOG (any
# real /dev/log is put aside and restored at exit).
syslog_capture() {
    T_SYSLOG=$T_TMP/syslog.txt
    : >"$T_SYSLOG"
    if [ -e /dev/log ] || [ -L /dev/log ]; then
        rm -f /dev/log.cage-test-saved
        mv /dev/log /dev/log.cage-test-saved
        cleanup_add "rm -f /dev/log; mv /dev/log.cage-test-saved /dev/log"
    else
        cleanup_add "rm -f /dev/log"
    fi
    python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
with open(sys.argv[1], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
' "$T_SYSLOG" &
    cleanup_add "kill $!"
    local i
    for i in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done
    export T_SYSLOG
}

# pam_su_add ARGS: appends `session required pam_cage.so ARGS` to
# /etc/pam.d/su (the built module, by absolute path); restored at exit.
pam_su_add() {
    cp -a /etc/pam.d/su "$T_TMP/pam.d-su.orig"
    cleanup_add "cp -a '$T_TMP/pam.d-su.orig' /etc/pam.d/su"
    echo "session required $PAM_CAGE_SO $*" >>/etc/pam.d/su
}

# rshared_root: make / shared like on a systemd host; restored at exit.
rshared_root() {
    local prop
    prop=$(findmnt -no PROPAGATION /)
    mount --make-rshared /
    case "$prop" in
        private) cleanup_add "mount --make-rprivate /" ;;
        slave) cleanup_add "mount --make-rslave /" ;;
    esac
}

# stop_pidfile PIDFILE SIGNAL TENTHS: sends SIGNAL to the daemon named by
# PIDFILE, waits up to TENTHS tenths of a second for it to go, then kills
# it; removes PIDFILE. Nothing to do without PIDFILE.
stop_pidfile() {
    [ -f "$1" ] || return 0
    local pid
    pid=$(cat "$1")
    kill -"$2" "$pid" 2>/dev/null
    for _ in $(seq "$3"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    rm -f "$1"
}
