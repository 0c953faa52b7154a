#!/usr/bin/env bash
# Entry latency with 1 vs N live cages, and the memory N cage inits use.
# Called by bench/entry.sh (full mode, under the e2e lock); not a test.
#
#   bench/live1k.sh CAGE_ADMIN ENTERC TIMEIT BENCH_CONF OUTDIR N RUNS
#
# Creates N users (cbk0001.., gecos "cage bench live", homes under
# /home/cage-bench-live/), a config dir next to OUTDIR that cages them all
# (mode enable-all, the bench's skeleton, templates and init program), then:
# RUNS timed warm entries of the first user with only its cage live
# (raw.live_1), builds the other N-1 cages, RUNS entries again
# (raw.live_n), unpins the others and times once more (raw.live_1after).
# Prints the memory figures on stdout. Every user, home, cage, lock file and
# name link it made is removed at exit (trap), also on failure or Ctrl-C.
set -u
export LC_ALL=C
CA=$1 ENTERC=$2 TIMEIT=$3 BCONF=$4 OUT=$5 N=$6 RUNS=$7
PREFIX=cbk
GECOS="cage bench live"
HOMES=/home/cage-bench-live
mkdir -p "$OUT"
CONF=$OUT/conf

say() { printf '%s\n' "$*" >&2; }
die() { say "bench/live1k.sh: $*"; exit 1; }
[ -n "$ENTERC" ] && [ -x "$ENTERC" ] || die "no enterc binary"

ours() { awk -F: -v g="$GECOS" '$5 == g { print $1 }' /etc/passwd; }
cleanup() {
    trap '' INT TERM HUP
    local u uid
    for u in $(ours); do
        "$CA" --config "$CONF" unmount "$u" >/dev/null 2>&1
    done
    # Inits leave once their cage is empty (at once: nothing runs in them).
    for _ in $(seq 50); do
        pgrep -f "^cage-init $PREFIX[0-9]" >/dev/null || break
        sleep 0.1
    done
    for u in $(ours); do
        uid=$(id -u "$u" 2>/dev/null) || continue
        pkill -KILL -u "$uid" 2>/dev/null
        [ -e "/run/cage/$uid.rec" ] || rm -f "/run/cage/$uid.lock"
        rm -f "/run/cage/names/$u" /run/cage/old/"$uid".*.rec
        userdel -f "$u" >/dev/null 2>&1
    done
    rm -rf "$HOMES"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Leftovers of an interrupted run first (only ours: matched by gecos).
cleanup
trap 'exit 130' INT TERM HUP

mkdir -p "$CONF" "$HOMES"
chmod 755 "$HOMES"
[ -d "$BCONF/conf.d" ] && cp -r "$BCONF/conf.d" "$CONF/"
skel=$(sed -n 's/^skeleton = //p' "$BCONF/cage.ini")
init=$(sed -n 's/^init_program = //p' "$BCONF/cage.ini")
printf '[cage]\nskeleton = %s\nmode = enable-all\ninit_program = %s\n' "$skel" "$init" >"$CONF/cage.ini"

t0=$(date +%s.%N)
names=()
for i in $(seq -f '%04g' 1 "$N"); do
    u=$PREFIX$i
    useradd -M -N -g users -d "$HOMES/$u" -s /bin/sh -c "$GECOS" "$u" || die "useradd $u failed"
    names+=("$u")
done
(cd "$HOMES" && mkdir "${names[@]}") || die "creating homes failed"
for u in "${names[@]}"; do chown "$u:users" "$HOMES/$u"; done
say "  $N users created in $(echo "$(date +%s.%N) - $t0" | bc)s"

first=${names[0]}
fuid=$(id -u "$first")
fgid=$(id -g "$first")
inits() { pgrep -f "^cage-init $PREFIX[0-9]" | wc -l; }
timed() { # timed KEY
    "$ENTERC" "$CONF" "$fuid" "$fgid" /bin/true || die "enterc into $first failed"
    "$TIMEIT" -n "$RUNS" -o "$OUT/raw.$1" -- "$ENTERC" "$CONF" "$fuid" "$fgid" /bin/true >/dev/null
}
memavail() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }

timed live_1
echo "1 live cage of ours: $(inits) init(s)"
m0=$(memavail)
t0=$(date +%s.%N)
failed=0
for u in "${names[@]:1}"; do
    "$CA" --config "$CONF" enter "$u" -- /bin/true >/dev/null 2>>"$OUT/build.err" || failed=$((failed + 1))
done
build_s=$(echo "$(date +%s.%N) - $t0" | bc)
live=$(inits)
m1=$(memavail)
rss=0 pss=0
for p in $(pgrep -f "^cage-init $PREFIX[0-9]"); do
    r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
    s=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)
    rss=$((rss + ${r:-0})) pss=$((pss + ${s:-0}))
done
timed live_n
echo "$live live cages of ours after building $((N - 1)) more in ${build_s}s ($failed failed)"
echo "memory of the $live inits: VmRSS sum $((rss / 1024)) MiB ($((rss / (live > 0 ? live : 1))) kB each), Pss sum $((pss / 1024)) MiB ($((pss / (live > 0 ? live : 1))) kB each)"
echo "MemAvailable dropped by $(((m0 - m1) / 1024)) MiB while they were built (kernel side included: namespaces, mounts, page tables; other work on the machine too)"
for u in "${names[@]:1}"; do
    "$CA" --config "$CONF" unmount "$u" >/dev/null 2>&1
done
for _ in $(seq 50); do
    [ "$(inits)" -le 1 ] && break
    sleep 0.1
done
timed live_1after
[ "$failed" = 0 ] || { say "$failed builds failed: $(sort "$OUT/build.err" | uniq -c | sort -rn | head -n 3)"; exit 1; }
exit 0
