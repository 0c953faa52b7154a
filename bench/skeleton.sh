#!/usr/bin/env bash
# Skeleton build benchmark (not a timed test). Needs root. Prints, side by
# side and from one run: `cage-admin init` time and disk used with the
# shipped templates, a no-op `update`, and as references `cp -a` and
# `rsync -a` of the same file list. Everything lives in a temporary
# directory on the file system of /usr/share (so hardlinks are possible),
# removed at exit.
set -eu
[ "$(id -u)" = 0 ] || { echo "$0: needs root" >&2; exit 2; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
CAGE_ADMIN=${CAGE_ADMIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/cage-admin}
[ -x "$CAGE_ADMIN" ] || { echo "$0: build first: cargo build --release -p cage-admin" >&2; exit 2; }
command -v rsync >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync >/dev/null 2>&1 || { echo "$0: cannot install rsync" >&2; exit 2; }; }

W=$(mktemp -d /usr/share/cage-bench.XXXXXX)
trap 'rm -rf "$W" "$W".skel.*' EXIT
mkdir -p "$W/conf"
cp -r "$REPO/etc/cage/conf.d" "$REPO/etc/cage/black.list" "$W/conf/"
printf '[cage]\nskeleton = %s/skel\n' "$W" >"$W/conf/cage.ini"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
disk() { du -sk "$1" | awk '{print $1}'; }   # hardlinked files count once per du run

sync
t0=$(now); "$CAGE_ADMIN" --config "$W/conf" init >/dev/null 2>&1; t1=$(now)
init_s=$(secs "$t0" "$t1")
t0=$(now); "$CAGE_ADMIN" --config "$W/conf" update >/dev/null 2>&1; t1=$(now)
noop_s=$(secs "$t0" "$t1")
json=$("$CAGE_ADMIN" --config "$W/conf" --json update 2>/dev/null)
named=$(sed -n 's/.*"bytes_named": \([0-9]*\).*/\1/p' <<<"$json")
# Disk really used by the skeleton: its own inodes (directories, symlinks,
# copied and generated files); hardlinked files are the host's.
used_k=$(find "$W/skel" \( -type d -o -type l -o \( -type f -links 1 \) \) -printf '%k\n' | awk '{ s += $1 } END { print s + 0 }')
files=$(cd "$W/skel" && find . -type f | wc -l)

# The same file list (regular files and symlinks, as host paths).
(cd "$W/skel" && find . \( -type f -o -type l \) -printf '%P\n' | grep -v -e '^etc/passwd$' -e '^etc/group$' -e '^etc/nsswitch.conf$' -e '^dev/') >"$W/list"
sync
t0=$(now); (cd / && tar -cf - --no-recursion -T "$W/list" 2>/dev/null) >/dev/null; t1=$(now)   # warm the cache equally
mkdir "$W/cp"
t0=$(now); (cd / && xargs -d '\n' -a "$W/list" cp -a --parents -t "$W/cp" 2>/dev/null) || true; t1=$(now)
cp_s=$(secs "$t0" "$t1"); cp_k=$(disk "$W/cp"); rm -rf "$W/cp"
mkdir "$W/rsync"
t0=$(now); rsync -a --files-from="$W/list" / "$W/rsync/" 2>/dev/null || true; t1=$(now)
rs_s=$(secs "$t0" "$t1"); rs_k=$(disk "$W/rsync"); rm -rf "$W/rsync"

printf '%s files, %s MiB named by the shipped templates (%s)\n' "$files" "$(mib $((named / 1024)))" "$(uname -r)"
printf '%-26s %10s %14s\n' "" "time (s)" "disk (MiB)"
printf '%-26s %10s %14s\n' "cage-admin init" "$init_s" "$(mib "$used_k")"
printf '%-26s %10s %14s\n' "cage-admin update (no-op)" "$noop_s" "-"
printf '%-26s %10s %14s\n' "cp -a" "$cp_s" "$(mib "$cp_k")"
printf '%-26s %10s %14s\n' "rsync -a" "$rs_s" "$(mib "$rs_k")"
awk -v u="$used_k" -v n="$named" 'BEGIN { printf "skeleton disk use: %.2f%% of the bytes it names (goal < 5%%)\n", 100 * u * 1024 / n }'
