#!/usr/bin/env bash
# Entry benchmark: the wall time of running /bin/true as a caged user, cage
# against the plain uid switch, su, bubblewrap, firejail, pam_namespace and
# nsenter, printed side by side in one run. Needs root on a Debian 12 host.
#
#   bench/entry.sh [--short]
#
# --short: 20 runs a row (CI); default: 200 runs a row (a few minutes).
# Installs what it needs with apt, builds cage in release when the build is
# stale, creates the user `benchu` with a private config dir and skeleton
# (`cage-admin init`, as tests/lib.sh does), and undoes every change at exit
# (traps; also on failure or Ctrl-C). PAM and namespace.conf variants are
# bind-mounted over /etc/pam.d/su and /etc/security/namespace.conf inside a
# private mount namespace of the harness, so the host's files are never
# edited. See bench/README.md.
set -u
export LC_ALL=C

usage() { sed -n '2,16s/^# \{0,1\}//p' "$0"; }
MODE=full
for a in "$@"; do
    case $a in
        --short) MODE=short ;;
        --full) MODE=full ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "$0: needs root (creates a user, cages, PAM variants)" >&2
    exit 2
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
U=benchu
if [ "$MODE" = short ]; then
    RUNS=20 ROUNDS=2 PAR_RUNS=48 M_RUNS=10 M_ROUNDS=1
else
    RUNS=200 ROUNDS=4 PAR_RUNS=400 M_RUNS=60 M_ROUNDS=2
fi
JOBS=8
LIVE_N=1000 LIVE_RUNS=100
MOUNTS_LO=25 MOUNTS_HI=2000

# ---------------------------------------------------------------- cleanup
BT=$(mktemp -d /tmp/cage-bench.XXXXXX)
chmod 755 "$BT"
_CLEANUPS=()
cleanup_add() { _CLEANUPS+=("$1"); }
_cleanup() {
    local _ci
    trap '' INT TERM HUP # a second Ctrl-C must not cut the cleanup short
    for ((_ci = ${#_CLEANUPS[@]} - 1; _ci >= 0; _ci--)); do
        (eval "${_CLEANUPS[_ci]}") >/dev/null 2>&1 || true
    done
    rm -rf "$BT"
}
trap _cleanup EXIT
trap 'echo "interrupted; cleaning up" >&2; exit 130' INT TERM HUP

say() { printf '%s\n' "$*" >&2; }
die() { say "bench/entry.sh: $*"; exit 1; }

# --------------------------------------------------------------- packages
export DEBIAN_FRONTEND=noninteractive
need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v firejail >/dev/null || need+=(firejail)
command -v gcc >/dev/null || need+=(gcc)
[ -e /usr/include/stdio.h ] || need+=(libc6-dev)
command -v setpriv >/dev/null && command -v nsenter >/dev/null && command -v su >/dev/null || need+=(util-linux)
[ -e /lib/x86_64-linux-gnu/security/pam_namespace.so ] || [ -e "/lib/$(gcc -print-multiarch 2>/dev/null)/security/pam_namespace.so" ] || need+=(libpam-modules)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get install -y -qq --no-install-recommends "${need[@]}" >"$BT/apt.log" 2>&1 ||
        { apt-get update -qq >>"$BT/apt.log" 2>&1 && apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$BT/apt.log" 2>&1; } ||
        say "apt-get install ${need[*]} failed (rows needing them will be n/a): $(tail -n 3 "$BT/apt.log")"
fi
command -v gcc >/dev/null || die "gcc is needed for the timing harness"
# firejail mounts its runtime dirs under /run/firejail on first use and
# leaves them: the ones that appear during the run are unmounted at exit.
fj_mounts() { findmnt -rn -o TARGET 2>/dev/null | grep '^/run/firejail' | sort; }
fj_mounts >"$BT/fj.before"
fj_cleanup() {
    pgrep -x firejail >/dev/null && return
    fj_mounts | comm -13 "$BT/fj.before" - | sort -r | while read -r m; do umount "$m" || umount -l "$m"; done
}
cleanup_add fj_cleanup
PAM_NS=$(ls /lib/*/security/pam_namespace.so /usr/lib/*/security/pam_namespace.so 2>/dev/null | head -n 1)

# ------------------------------------------------------------------ build
for d in "$HOME/.cargo/bin" /root/.cargo/bin; do [ -d "$d" ] && PATH="$d:$PATH"; done
TGT=${CARGO_TARGET_DIR:-$REPO/target}
stale() { # stale DIR: true when DIR's artifacts are missing or older than a source
    local ca=$1/release/cage-admin pam=$1/release/libpam_cage.so
    [ -x "$ca" ] && [ -f "$pam" ] || return 0
    [ -n "$(find "$REPO" \( -path "$REPO/target" -o -path "$REPO/.git" \) -prune -o \
        \( -name '*.rs' -o -name Cargo.toml -o -name Cargo.lock \) \( -newer "$ca" -o -newer "$pam" \) -print -quit)" ]
}
if stale "$TGT"; then
    if [ -z "${CARGO_TARGET_DIR:-}" ] && pgrep -x cargo >/dev/null; then
        TGT=/tmp/target-bench # someone else is building in target/: stay out of its lock
    fi
    if stale "$TGT"; then
        say "building cage (cargo build --release --workspace, target dir $TGT)"
        # In the background so that a signal is handled at once (bash defers
        # traps while a foreground child runs); killed by the cleanup.
        CARGO_TARGET_DIR=$TGT cargo build --release --workspace --quiet >"$BT/build.log" 2>&1 &
        cargo_pid=$!
        cleanup_add "kill $cargo_pid"
        if ! wait "$cargo_pid"; then
            say "$(tail -n 15 "$BT/build.log")"
            [ -x "$TGT/release/cage-admin" ] && [ -f "$TGT/release/libpam_cage.so" ] ||
                die "cargo build failed and there are no earlier artifacts in $TGT"
            say "cargo build failed; benchmarking the earlier artifacts in $TGT"
        fi
    fi
fi
# The cage init program (its own workspace, see cage-init/Cargo.toml).
cargo build --release --quiet --manifest-path "$REPO/cage-init/Cargo.toml" --target-dir "$TGT" >>"$BT/build.log" 2>&1 ||
    [ -x "$TGT/release/cage-init" ] || die "cannot build cage-init: $(tail -n 15 "$BT/build.log")"
CA=$TGT/release/cage-admin
PAM_CAGE=$TGT/release/libpam_cage.so
TIMEIT=$BT/timeit
gcc -O2 -o "$TIMEIT" "$REPO/bench/timeit.c" -lm 2>"$BT/gcc.log" || die "cannot build bench/timeit.c: $(cat "$BT/gcc.log")"
# enterc: libcage's in-process entry (the C API), with and without the call.
ENTERC=$BT/enterc
gcc -O2 -I "$REPO/include" -o "$ENTERC" "$REPO/bench/enterc.c" -L "$TGT/release" -lcage \
    -Wl,-rpath,"$TGT/release" 2>>"$BT/gcc.log" || { ENTERC=""; say "cannot build bench/enterc.c (C API rows n/a): $(tail -n 3 "$BT/gcc.log")"; }
# enterloop: cage_enter_at alone, clocked in process (no exec).
ENTERLOOP=$BT/enterloop
gcc -O2 -I "$REPO/include" -o "$ENTERLOOP" "$REPO/bench/enterloop.c" -L "$TGT/release" -lcage \
    -Wl,-rpath,"$TGT/release" 2>>"$BT/gcc.log" || { ENTERLOOP=""; say "cannot build bench/enterloop.c (in-process rows n/a): $(tail -n 3 "$BT/gcc.log")"; }

# ------------------------------------------------------------------ setup
# The user: a leftover of an earlier run is removed; a real user of that
# name is never touched.
if id "$U" >/dev/null 2>&1; then
    [ "$(getent passwd "$U" | cut -d: -f5)" = "cage bench" ] || die "a user $U exists and is not ours; not touching it"
    pkill -KILL -u "$U" 2>/dev/null
    sleep 0.2
    userdel -r -f "$U" >/dev/null 2>&1
fi
useradd -m -s /bin/bash -c "cage bench" "$U" || die "useradd $U failed"
cleanup_add "pkill -KILL -u $U; sleep 0.3; userdel -r -f $U"
UID_=$(id -u "$U")
GID_=$(id -g "$U")
cleanup_add "[ -e /run/cage/$UID_.rec ] || rm -f /run/cage/$UID_.lock"

# A private config dir and skeleton, exactly as tests/lib.sh cage_env (but
# only this user's cage is ever unpinned, never --all).
CONF=$BT/conf
SKEL=$BT/skel
mkdir -p "$CONF"
[ -d "$REPO/etc/cage/conf.d" ] && cp -r "$REPO/etc/cage/conf.d" "$CONF/"
[ -f "$REPO/etc/cage/black.list" ] && cp "$REPO/etc/cage/black.list" "$CONF/"
# Unpin; the init exits once its cage is empty: wait for it (briefly).
cleanup_add "'$CA' --config '$CONF' unmount $U; for i in \$(seq 30); do pgrep -f -- '$CONF' || break; sleep 0.1; done"
if [ -n "${BENCH_SKELETON:-}" ]; then
    SKEL=$BENCH_SKELETON # development only: an existing skeleton
    say "using the existing skeleton $SKEL (BENCH_SKELETON)"
else
    printf '[cage]\nskeleton = %s\nmode = disable-all\ninit_program = %s\n' "$SKEL" "$TGT/release/cage-init" >"$CONF/cage.ini"
    t0=$(date +%s.%N)
    "$CA" --config "$CONF" init >"$BT/init.log" 2>&1 || die "cage-admin init failed: $(tail -n 20 "$BT/init.log")"
    INIT_SECS=$(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo "?")
fi
printf '[cage]\nskeleton = %s\nmode = disable-all\ninit_program = %s\n' "$SKEL" "$TGT/release/cage-init" >"$CONF/cage.ini"
"$CA" --config "$CONF" user enable "$U" >/dev/null || die "cage-admin user enable $U failed"

A() { "$CA" --config "$CONF" "$@"; }
initpid() { sed -n 's/^pid=//p' "/run/cage/$UID_.rec" 2>/dev/null; }
A enter "$U" -- /bin/true 2>"$BT/enter.err" || die "cage-admin enter $U -- /bin/true failed: $(cat "$BT/enter.err")"
PID=$(initpid)
[ -n "$PID" ] && [ -d "/proc/$PID" ] || die "no live cage record for $U after entering"
# The cage's synthesized passwd/group, for bubblewrap's comparable view.
cp "/proc/$PID/root/etc/passwd" "$BT/passwd" && cp "/proc/$PID/root/etc/group" "$BT/group" ||
    die "cannot read the cage's /etc/passwd and /etc/group"
chmod 644 "$BT/passwd" "$BT/group"

# PAM variants of /etc/pam.d/su and the pam_namespace configuration.
# (Lines naming pam_cage are dropped from the copy: a test running at the same
# time may have added one with a config dir that vanishes under us.)
grep -v 'pam_cage' /etc/pam.d/su >"$BT/pam.su"
{ cat "$BT/pam.su"; echo "session required $PAM_CAGE config=$CONF"; } >"$BT/pam.su-cage"
{ cat "$BT/pam.su"; echo "session required pam_namespace.so"; } >"$BT/pam.su-ns"
mkdir -p "$BT/tmp-inst"
chmod 000 "$BT/tmp-inst"
echo "/tmp $BT/tmp-inst/ user root,adm" >"$BT/namespace.conf"
# inns PAMFILE NSCONF CMD...: CMD in a private mount namespace whose
# /etc/pam.d/su (and namespace.conf, when NSCONF is not empty) are the variants.
inns() {
    unshare -m --propagation private -- /bin/sh -c '
        mount --bind "$0" /etc/pam.d/su || exit 3
        if [ -n "$1" ]; then mount --bind "$1" /etc/security/namespace.conf || exit 3; fi
        shift
        exec "$@"' "$@"
}

# bubblewrap: the skeleton read-only as /, its own /dev, /proc, /tmp, the
# cage's passwd/group, new PID and IPC namespaces; setpriv inside switches
# to the user. When the skeleton has no setpriv, the host's is bound into
# the sandbox's /tmp with the libraries the skeleton lacks.
BW_EXTRA=()
BW_SETPRIV=/usr/bin/setpriv
if ! [ -x "$SKEL/usr/bin/setpriv" ] && ! [ -x "$SKEL/bin/setpriv" ]; then
    BW_SETPRIV=/tmp/.bench/setpriv
    BW_EXTRA=(--ro-bind "$(command -v setpriv)" /tmp/.bench/setpriv)
    for l in $(ldd "$(command -v setpriv)" | grep -o '/[^ ]*\.so[^ ]*'); do
        [ -e "$SKEL$l" ] || [ -e "$SKEL/usr$l" ] || BW_EXTRA+=(--ro-bind "$l" "/tmp/.bench/lib/$(basename "$l")")
    done
    BW_EXTRA+=(--setenv LD_LIBRARY_PATH /tmp/.bench/lib)
    BW_NOTE="host setpriv bound in (the skeleton has none)"
fi
for f in passwd group; do
    [ -e "$SKEL/etc/$f" ] || die "the skeleton has no /etc/$f to bind bubblewrap's copy on"
done
BWRAP=(bwrap --ro-bind "$SKEL" / --dev /dev --proc /proc --tmpfs /tmp
    --ro-bind "$BT/passwd" /etc/passwd --ro-bind "$BT/group" /etc/group
    --unshare-pid --unshare-ipc "${BW_EXTRA[@]}" --
    "$BW_SETPRIV" --reuid "$U" --regid "$U" --init-groups /bin/true)
SETPRIV=(setpriv --reuid "$U" --regid "$U" --init-groups)

# ------------------------------------------------------------------- rows
declare -A LABEL=(
    [base]="setpriv --init-groups (baseline)"
    [exe]="cage-admin --version (start-up only)"
    [c_base]="C: setuid+exec, no cage (C baseline)"
    [c_warm]="C: cage_enter_at warm + setuid+exec"
    [nsenter]="nsenter into pinned cage (floor)"
    [warm]="cage-admin enter, warm (pinned)"
    [cold]="cage-admin enter, cold (builds)"
    [su]="su -c true"
    [su_cage]="su -c true + pam_cage, warm"
    [su_cage_cold]="su -c true + pam_cage, cold"
    [su_ns]="su -c true + pam_namespace /tmp"
    [bwrap]="bubblewrap, comparable view"
    [firejail]="firejail --noprofile --private-tmp"
)
SERIAL=(base exe nsenter warm c_base c_warm cold su su_cage su_cage_cold su_ns bwrap firejail)

# T KEY TIMEIT-OPTIONS... -- CMD...: one batch of a row, samples appended to raw.KEY.
T() {
    local k=$1
    shift
    "$TIMEIT" -e "$BT/err.$k" -o "$BT/raw.$k" "$@" >>"$BT/sum.$k" 2>>"$BT/err.$k"
}
row() { # row KEY RUNS
    local k=$1 n=$2 unpin="'$CA' --config '$CONF' unmount $U"
    case $k in
        base) T "$k" -n "$n" -- "${SETPRIV[@]}" /bin/true ;;
        exe) T "$k" -n "$n" -- "$CA" --version ;;
        c_base | c_warm)
            [ -n "$ENTERC" ] || { echo "bench/enterc.c could not be built" >>"$BT/err.$k"; return; }
            local cfg=-
            [ "$k" = c_warm ] && cfg=$CONF
            T "$k" -n "$n" -- "$ENTERC" "$cfg" "$UID_" "$GID_" /bin/true ;;
        nsenter)
            A enter "$U" -- /bin/true 2>/dev/null
            T "$k" -n "$n" -- nsenter -t "$(initpid)" -m -i -p --setuid "$UID_" --setgid "$GID_" /bin/true ;;
        warm) T "$k" -n "$n" -- "$CA" --config "$CONF" enter "$U" -- /bin/true ;;
        cold) T "$k" -n "$n" -p "$unpin" -- "$CA" --config "$CONF" enter "$U" -- /bin/true ;;
        su) inns "$BT/pam.su" "" "$TIMEIT" -e "$BT/err.$k" -o "$BT/raw.$k" -n "$n" -- su "$U" -c true >>"$BT/sum.$k" 2>>"$BT/err.$k" ;;
        su_cage) inns "$BT/pam.su-cage" "" "$TIMEIT" -e "$BT/err.$k" -o "$BT/raw.$k" -n "$n" -- su "$U" -c true >>"$BT/sum.$k" 2>>"$BT/err.$k" ;;
        su_cage_cold) inns "$BT/pam.su-cage" "" "$TIMEIT" -e "$BT/err.$k" -o "$BT/raw.$k" -n "$n" -p "$unpin" -- su "$U" -c true >>"$BT/sum.$k" 2>>"$BT/err.$k" ;;
        su_ns)
            [ -n "$PAM_NS" ] || { echo "pam_namespace.so not installed" >>"$BT/err.$k"; return; }
            inns "$BT/pam.su-ns" "$BT/namespace.conf" "$TIMEIT" -e "$BT/err.$k" -o "$BT/raw.$k" -n "$n" -- su "$U" -c true >>"$BT/sum.$k" 2>>"$BT/err.$k" ;;
        bwrap)
            command -v bwrap >/dev/null || { echo "bubblewrap not installed" >>"$BT/err.$k"; return; }
            T "$k" -n "$n" -- "${BWRAP[@]}" ;;
        firejail)
            command -v firejail >/dev/null || { echo "firejail not installed" >>"$BT/err.$k"; return; }
            T "$k" -n "$n" -- "${SETPRIV[@]}" firejail --quiet --noprofile --private-tmp --noroot -- /bin/true ;;
        loop_sup | loop_co)
            [ -n "$ENTERLOOP" ] || { echo "bench/enterloop.c could not be built" >>"$BT/err.$k"; return; }
            local how=""
            [ "$k" = loop_co ] && how=children-only
            "$ENTERLOOP" "$CONF" "$UID_" "$GID_" "$n" $how >>"$BT/raw.$k" 2>>"$BT/err.$k" ;;
    esac
}
# steps MODE RUNS: `cage-admin enter --timings` RUNS times (cold: unpinned
# before each run); every step's µs appended to step.MODE.NAME.
steps() {
    local mode=$1 n=$2 i
    for ((i = 0; i < n; i++)); do
        [ "$mode" = cold ] && A unmount "$U" >/dev/null 2>&1
        A enter --timings "$U" -- /bin/true 2>&1 >/dev/null | sed -n 's/^cage-admin: timings ([a-z]*): //p'
    done | tr ' ' '\n' | awk -F= -v d="$BT" -v m="$mode" 'NF == 2 {
        if (!($1 in seen)) { seen[$1] = 1; order = order " " $1 }
        print $2 >> (d "/step." m "." $1) }
        END { print substr(order, 2) > (d "/steps." m) }'
}

# ------------------------------------------------------- checks of the views
CHECKS=()
chk() { CHECKS+=("$(printf '  %-4s %s' "$1" "$2")"); }
host_pid=$(readlink /proc/self/ns/pid)
cage_ns="$(readlink "/proc/$(initpid)/ns/mnt") $(readlink "/proc/$(initpid)/ns/pid")"
cage_mnt=${cage_ns%% *}
v=$(A enter "$U" -- /bin/sh -c 'echo $(readlink /proc/self/ns/mnt /proc/self/ns/pid) $(id -u)' 2>&1)
[ "$v" = "$cage_ns $UID_" ] && chk ok "cage-admin enter: the pinned cage's mount and PID namespaces, uid $UID_" ||
    chk FAIL "cage-admin enter: got '$v', expected '$cage_ns $UID_'"
if [ -n "$ENTERC" ]; then
    v=$("$ENTERC" "$CONF" "$UID_" "$GID_" /bin/sh -c 'echo $(readlink /proc/self/ns/mnt /proc/self/ns/pid) $(id -u)' 2>&1)
    [ "$v" = "$cage_ns $UID_" ] && chk ok "C API (enterc): cage_enter_at joins the pinned cage's mount and PID namespaces" ||
        chk FAIL "C API (enterc): got '$v', expected '$cage_ns $UID_'"
fi
v=$(inns "$BT/pam.su-cage" "" su "$U" -c 'readlink /proc/self/ns/mnt' 2>&1)
[ "$v" = "$cage_mnt" ] && chk ok "su + pam_cage: the session joins the pinned cage" || chk FAIL "su + pam_cage: got '$v', expected $cage_mnt"
v=$(inns "$BT/pam.su" "" su "$U" -c 'readlink /proc/self/ns/mnt' 2>&1)
case $v in mnt:*) [ "$v" != "$cage_mnt" ] && chk ok "plain su: not in the cage (pam_cage not configured)" || chk FAIL "plain su: in the cage" ;;
    *) chk FAIL "plain su: $v" ;; esac
if [ -n "$PAM_NS" ]; then
    v=$(inns "$BT/pam.su-ns" "$BT/namespace.conf" su "$U" -c 'grep " /tmp " /proc/self/mountinfo' 2>&1)
    case $v in *tmp-inst*) chk ok "su + pam_namespace: /tmp is the per-user instance" ;; *) chk FAIL "su + pam_namespace: /tmp not polyinstantiated: $v" ;; esac
fi
if command -v bwrap >/dev/null; then
    v=$("${BWRAP[@]:0:${#BWRAP[@]}-1}" /bin/sh -c 'echo $(id -u) $(readlink /proc/self/ns/pid)' 2>&1)
    if [ "${v%% *}" = "$UID_" ] && [ "${v#* }" != "$host_pid" ]; then
        chk ok "bubblewrap: uid $UID_ in the skeleton, own PID namespace${BW_NOTE:+ ($BW_NOTE)}"
    else
        chk FAIL "bubblewrap: got '$v'"
    fi
fi
if command -v firejail >/dev/null; then
    v=$("${SETPRIV[@]}" firejail --quiet --noprofile --private-tmp --noroot -- /bin/sh -c 'id -u' 2>&1)
    [ "$v" = "$UID_" ] && chk ok "firejail: runs as uid $UID_" || chk FAIL "firejail: got '$v'"
fi

# ------------------------------------------------------------- measuring
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s)
say "measuring ($MODE: $RUNS runs a row in $ROUNDS interleaved rounds) ..."
per=$((RUNS / ROUNDS))
for ((r = 1; r <= ROUNDS; r++)); do
    for k in "${SERIAL[@]}" loop_sup loop_co; do row "$k" "$per"; done
    A enter "$U" -- /bin/true 2>/dev/null
    steps warm $((per / 4 + 1))
    steps cold $((per / 4 + 1))
done
# Init memory: the pinned cage's init (its own memory, and shared pages
# counted once per process sharing them).
A enter "$U" -- /bin/true 2>/dev/null
INIT_RSS=$(awk '/^VmRSS:/ { print $2 }' "/proc/$(initpid)/status" 2>/dev/null)
INIT_PSS=$(awk '/^Pss:/ { print $2 }' "/proc/$(initpid)/smaps_rollup" 2>/dev/null)
say "8-way parallel ..."
T par_base -n "$PAR_RUNS" -j "$JOBS" -- "${SETPRIV[@]}" /bin/true
A enter "$U" -- /bin/true 2>/dev/null
T par_warm -n "$PAR_RUNS" -j "$JOBS" -- "$CA" --config "$CONF" enter "$U" -- /bin/true
T par_nsenter -n "$PAR_RUNS" -j "$JOBS" -- nsenter -t "$(initpid)" -m -i -p --setuid "$UID_" --setgid "$GID_" /bin/true
inns "$BT/pam.su-cage" "" "$TIMEIT" -e "$BT/err.par_su_cage" -o "$BT/raw.par_su_cage" -n "$PAR_RUNS" -j "$JOBS" -- su "$U" -c true >>"$BT/sum.par_su_cage" 2>>"$BT/err.par_su_cage"
inns "$BT/pam.su" "" "$TIMEIT" -e "$BT/err.par_su" -o "$BT/raw.par_su" -n "$PAR_RUNS" -j "$JOBS" -- su "$U" -c true >>"$BT/sum.par_su" 2>>"$BT/err.par_su"
say "host mount count ($MOUNTS_LO vs $MOUNTS_HI extra tmpfs mounts) ..."
mkdir -p "$BT/mnt"
mper=$((M_RUNS / M_ROUNDS))
for ((r = 1; r <= M_ROUNDS; r++)); do
    for m in $MOUNTS_LO $MOUNTS_HI; do
        T "cold_$m" -n "$mper" -M "$m:$BT/mnt" -p "'$CA' --config '$CONF' unmount $U" -- "$CA" --config "$CONF" enter "$U" -- /bin/true
        T "warm_$m" -n "$mper" -M "$m:$BT/mnt" -- "$CA" --config "$CONF" enter "$U" -- /bin/true
        command -v bwrap >/dev/null && T "bwrap_$m" -n "$mper" -M "$m:$BT/mnt" -- "${BWRAP[@]}"
    done
done
if [ "$MODE" = full ]; then
    say "1 vs $LIVE_N live cages ..."
    # Under the e2e lock: it adds $LIVE_N users to /etc/passwd for a while,
    # which no root test running meanwhile should see. flock -o: the lock is
    # not inherited by the cages it starts.
    flock -o -w 900 /run/lock/cage-e2e.lock \
        bash "$REPO/bench/live1k.sh" "$CA" "$ENTERC" "$TIMEIT" "$CONF" "$BT/live" "$LIVE_N" "$LIVE_RUNS" \
        >"$BT/live.out" 2>"$BT/err.live" || say "live-cages row failed: $(tail -n 3 "$BT/err.live")"
fi
ELAPSED=$(($(date +%s) - T0))
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# --------------------------------------------------------------- report
for f in "$BT"/raw.*; do
    [ -e "$f" ] || continue
    echo "${f##*/raw.} $("$TIMEIT" -S "$f")"
done >"$BT/stats"
S() { awk -v k="$1" -v f="$2" '$1 == k { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == f) print a[2] } }' "$BT/stats"; }
# Throughput of a parallel batch (runs / wall time): from timeit's own line.
prate() { grep -o "rate=[0-9.]*" "$BT/sum.$1" 2>/dev/null | head -n 1 | cut -d= -f2; }

cores=$(nproc)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
git -C "$REPO" diff --quiet HEAD 2>/dev/null || rev="$rev+dirty"
skel_files=$(find "$SKEL" -xdev 2>/dev/null | wc -l)

line() { printf '%s\n' "$*"; }
line ""
line "cage entry benchmark: /bin/true as $U (uid $UID_); mode $MODE"
line "host: $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r), $cores CPU ($cpu)"
line "cage $rev; skeleton $SKEL ($skel_files entries${INIT_SECS:+, cage-admin init took ${INIT_SECS%??????}s}); $(bwrap --version 2>/dev/null); $(firejail --version 2>/dev/null | head -n 1)"
line "load average $LOAD0 at start, $LOAD1 at end; measuring took ${ELAPSED}s"
line "times: wall µs per run (posix_spawn to waitpid, harness included); ratio and +µs against the baseline median"
line ""
line "views checked:"
printf '%s\n' "${CHECKS[@]}"
line ""
BASE=$(S base med)
FAILED_ROWS=0
table_row() { # table_row KEY LABEL [REFMED]
    local k=$1 label=$2 n fail med p10 p90 sd
    n=$(S "$k" n)
    fail=$(S "$k" fail)
    med=$(S "$k" med)
    if [ -z "$n" ] || [ "$n" = 0 ]; then
        FAILED_ROWS=$((FAILED_ROWS + 1))
        printf '%-36s %s\n' "$label" "n/a: $(tail -n 1 "$BT/err.$k" 2>/dev/null | cut -c1-90)"
        return
    fi
    p10=$(S "$k" p10) p90=$(S "$k" p90) sd=$(S "$k" sd)
    awk -v l="$label" -v med="$med" -v p10="$p10" -v p90="$p90" -v sd="$sd" -v b="${3:-$BASE}" -v n="$n" -v f="$fail" 'BEGIN {
        printf "%-36s %9.0f %9.0f %9.0f %8.0f %7.2fx %+9.0f %5d%s\n", l, med, p10, p90, sd, med / b, med - b, n, (f > 0 ? sprintf(" (%d failed)", f) : "") }'
}
line "== single entries ($RUNS runs each, $ROUNDS interleaved rounds)"
printf '%-36s %9s %9s %9s %8s %8s %9s %5s\n' "" "median" "p10" "p90" "stddev" "ratio" "+µs" "n"
for k in "${SERIAL[@]}"; do table_row "$k" "${LABEL[$k]}"; done
line ""
line "== in-process entry alone (bench/enterloop.c: clock around cage_enter_at in a fresh forked caller, no exec; $RUNS runs each)"
printf '%-36s %9s %9s %9s %8s\n' "" "median" "p10" "p90" "stddev"
for k in loop_sup loop_co; do
    case $k in
        loop_sup) label="warm, returns in the child (fork)" ;;
        loop_co) label="warm, children-only (no fork)" ;;
    esac
    if [ -z "$(S "$k" n)" ] || [ "$(S "$k" n)" = 0 ]; then
        FAILED_ROWS=$((FAILED_ROWS + 1))
        printf '%-36s %s\n' "$label" "n/a: $(tail -n 1 "$BT/err.$k" 2>/dev/null | cut -c1-90)"
        continue
    fi
    printf '%-36s %9.0f %9.0f %9.0f %8.0f\n' "$label" "$(S "$k" med)" "$(S "$k" p10)" "$(S "$k" p90)" "$(S "$k" sd)"
done
line ""
line "== where the time goes: cage-admin enter --timings, median µs per step (in the CLI process; cli-nss is the CLI's own getpwnam + getgrouplist)"
for mode in warm cold; do
    [ -s "$BT/steps.$mode" ] || { line "  $mode: n/a"; continue; }
    out=""
    for st in $(cat "$BT/steps.$mode"); do
        out="$out $st=$("$TIMEIT" -S "$BT/step.$mode.$st" | sed -n 's/.* med=\([0-9.]*\).*/\1/p' | cut -d. -f1)"
    done
    line "  $mode ($(wc -l <"$BT/step.$mode.total") runs):$out"
done
line ""
line "== cage init memory"
line "  init of $U: VmRSS ${INIT_RSS:-?} kB, Pss ${INIT_PSS:-?} kB"
if [ -s "$BT/live.out" ]; then
    line ""
    line "== entry latency with 1 vs $LIVE_N live cages (C: cage_enter_at warm + setuid+exec into one of them, $LIVE_RUNS runs each)"
    printf '%-36s %9s %9s %9s %8s\n' "" "median" "p10" "p90" "stddev"
    for k in live_1 live_n live_1after; do
        case $k in
            live_1) label="1 live cage" ;;
            live_n) label="$LIVE_N live cages" ;;
            live_1after) label="1 live cage again (others unpinned)" ;;
        esac
        f="$BT/live/raw.$k"
        [ -s "$f" ] || { printf '%-36s n/a\n' "$label"; continue; }
        "$TIMEIT" -S "$f" | awk -v l="$label" '{ for (i = 1; i <= NF; i++) { split($i, a, "="); v[a[1]] = a[2] } }
            END { printf "%-36s %9.0f %9.0f %9.0f %8.0f\n", l, v["med"], v["p10"], v["p90"], v["sd"] }'
    done
    sed 's/^/  /' "$BT/live.out"
fi
line ""
line "== $JOBS-way parallel ($PAR_RUNS runs in all, $JOBS workers on $cores CPUs)"
printf '%-36s %9s %9s %9s %11s %9s\n' "" "median" "p10" "p90" "entries/s" "vs base"
BASE_RATE=""
for k in par_base par_nsenter par_warm par_su par_su_cage; do
    case $k in
        par_base) label="setpriv (baseline)" ;;
        par_nsenter) label="nsenter into pinned cage" ;;
        par_warm) label="cage-admin enter, warm" ;;
        par_su) label="su -c true" ;;
        par_su_cage) label="su -c true + pam_cage, warm" ;;
    esac
    n=$(S "$k" n)
    if [ -z "$n" ] || [ "$n" = 0 ]; then
        FAILED_ROWS=$((FAILED_ROWS + 1))
        printf '%-36s %s\n' "$label" "n/a: $(tail -n 1 "$BT/err.$k" 2>/dev/null | cut -c1-90)"
        continue
    fi
    rate=$(prate "$k")
    [ -z "$BASE_RATE" ] && [ "$k" = par_base ] && BASE_RATE=$rate
    awk -v l="$label" -v med="$(S "$k" med)" -v p10="$(S "$k" p10)" -v p90="$(S "$k" p90)" -v r="$rate" -v b="$BASE_RATE" 'BEGIN {
        printf "%-36s %9.0f %9.0f %9.0f %11.0f %8.2fx\n", l, med, p10, p90, r, (b > 0 ? r / b : 0) }'
done
line ""
line "== host mount count: $MOUNTS_LO vs $MOUNTS_HI extra tmpfs mounts in the entering process's namespace ($M_RUNS runs each)"
printf '%-36s %9s %9s %9s %8s %8s\n' "" "median" "p10" "p90" "ratio" "growth"
for what in cold warm bwrap; do
    case $what in
        cold) label="cage-admin enter, cold" ;;
        warm) label="cage-admin enter, warm" ;;
        bwrap) label="bubblewrap" ;;
    esac
    lo=$(S "${what}_$MOUNTS_LO" med)
    for m in $MOUNTS_LO $MOUNTS_HI; do
        k=${what}_$m
        n=$(S "$k" n)
        if [ -z "$n" ] || [ "$n" = 0 ]; then
            FAILED_ROWS=$((FAILED_ROWS + 1))
            printf '%-36s %s\n' "$label, +$m mounts" "n/a: $(tail -n 1 "$BT/err.$k" 2>/dev/null | cut -c1-90)"
            continue
        fi
        awk -v l="$label, +$m mounts" -v med="$(S "$k" med)" -v p10="$(S "$k" p10)" -v p90="$(S "$k" p90)" -v b="$BASE" -v lo="$lo" 'BEGIN {
            printf "%-36s %9.0f %9.0f %9.0f %7.2fx %+7.0f%%\n", l, med, p10, p90, med / b, (lo > 0 ? (med / lo - 1) * 100 : 0) }'
    done
done

# --------------------------------------------------------------- goals
line ""
line "== goals (reported, not asserted)"
if [ -n "$(S "cold_$MOUNTS_LO" med)" ] && [ -n "$(S "cold_$MOUNTS_HI" med)" ]; then
    awk -v lo="$(S "cold_$MOUNTS_LO" med)" -v hi="$(S "cold_$MOUNTS_HI" med)" -v bl="$(S "bwrap_$MOUNTS_LO" med)" -v bh="$(S "bwrap_$MOUNTS_HI" med)" -v nl="$MOUNTS_LO" -v nh="$MOUNTS_HI" 'BEGIN {
        g = (hi / lo - 1) * 100
        printf "  cold build independent of the host mount count (within 10%%): %.0f µs at +%d, %.0f µs at +%d mounts (%+.0f%%", lo, nl, hi, nh, g
        if (bl > 0 && bh > 0) printf "; bubblewrap %+.0f%%", (bh / bl - 1) * 100
        printf ")  %s\n", (g <= 10 ? "MET" : "NOT MET") }'
fi
if [ -n "$(S c_base med)" ] && [ -n "$(S c_warm med)" ]; then
    awk -v w="$(S c_warm med)" -v b="$(S c_base med)" -v co="$(S loop_co med)" 'BEGIN {
        d = w - b; printf "  C API warm entry <= +250 µs over the C baseline, fork included: %+.0f µs  %s\n", d, (d <= 250 ? "MET" : "NOT MET")
        if (co > 0) printf "  ... <= 100 µs of it our own work (children-only, no fork): %.0f µs  %s\n", co, (co <= 100 ? "MET" : "NOT MET") }'
fi
if [ -n "$(S warm med)" ] && [ -n "$(S nsenter med)" ]; then
    awk -v w="$(S warm med)" -v f="$(S nsenter med)" 'BEGIN {
        d = w - f; printf "  cage-admin enter warm <= +150 µs over nsenter into the same cage: %+.0f µs (%.0f vs %.0f)  %s\n", d, w, f, (d <= 150 ? "MET" : "NOT MET") }'
fi
if [ -n "$(S su med)" ] && [ -n "$(S su_cage med)" ]; then
    awk -v s="$(S su med)" -v c="$(S su_cage med)" 'BEGIN {
        r = c / s; printf "  su + pam_cage warm <= 1.03x plain su: %.3fx (%.0f vs %.0f µs)  %s\n", r, c, s, (r <= 1.03 ? "MET" : "NOT MET") }'
fi
if [ -n "$(S cold med)" ] && [ -n "$(S bwrap med)" ]; then
    awk -v c="$(S cold med)" -v w="$(S bwrap med)" 'BEGIN {
        r = c / w; printf "  cold cage-admin enter <= 0.5x bubblewrap: %.2fx (%.0f vs %.0f µs)  %s\n", r, c, w, (r <= 0.5 ? "MET" : "NOT MET") }'
fi
if [ -n "$INIT_RSS" ]; then
    line "  init RSS <= 500 KB: ${INIT_RSS} kB  $([ "$INIT_RSS" -le 500 ] && echo MET || echo "NOT MET")"
fi
if [ -s "$BT/live/raw.live_1" ] && [ -s "$BT/live/raw.live_n" ]; then
    awk -v a="$("$TIMEIT" -S "$BT/live/raw.live_1" | sed -n 's/.* med=\([0-9.]*\).*/\1/p')" -v b="$("$TIMEIT" -S "$BT/live/raw.live_n" | sed -n 's/.* med=\([0-9.]*\).*/\1/p')" -v n="$LIVE_N" 'BEGIN {
        g = (b / a - 1) * 100; printf "  entry with %d live cages within 5%% of one live cage: %.0f vs %.0f µs (%+.1f%%)  %s\n", n, b, a, g, (g <= 5 ? "MET" : "NOT MET") }'
fi
case $LOAD0 in 0.[0-4]*) ;; *) line "  note: the load average was $LOAD0 at start: other work was running, figures are noisy" ;; esac
line ""
if [ "$FAILED_ROWS" -gt 0 ]; then
    line "$FAILED_ROWS row(s) could not run; errors:"
    for f in "$BT"/err.*; do [ -s "$f" ] && { echo "  ${f##*/err.}:"; sort "$f" | uniq -c | sort -rn | head -n 3 | sed 's/^/    /'; }; done
    exit 1
fi
exit 0
