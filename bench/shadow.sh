#!/usr/bin/env bash
# Cold-build cost of a read-only skeleton: a build never writes into the
# skeleton, so a mount point the skeleton lacks is made on a tmpfs of the
# cage's own laid over the skeleton directory ("shadow", with a read-only
# bind of each entry). Prints the median cold build (`cage-admin enter`,
# unpinned before each run) for a user who needs no shadow, one whose
# custom.etc adds a file (/etc shadowed) and one whose home's base directory
# is not in the skeleton (/ shadowed). Root; uses tests/lib.sh (its lock,
# users and cleanups). Figures, not assertions.
source "$(dirname "$0")/../tests/lib.sh"

N=${N:-30}
gcc -O2 -o "$T_TMP/timeit" "$REPO/bench/timeit.c" -lm || exit 1
cage_env
A() { "$CAGE_ADMIN" --config "$T_CONF" "$@"; }
make_user bplain
make_user betc
if id bsrv >/dev/null 2>&1; then userdel -r -f bsrv >/dev/null 2>&1; fi
mkdir -p /srv/cage-bench
useradd -m -d /srv/cage-bench/bsrv -s /bin/bash bsrv || exit 1
cleanup_add "pkill -KILL -u bsrv; sleep 0.3; userdel -r -f bsrv; rm -rf /srv/cage-bench"
mkdir -p "$T_CONF/custom.etc/betc"
echo x >"$T_CONF/custom.etc/betc/bench-new.conf"
for u in bplain betc bsrv; do A user enable "$u" >/dev/null; done
printf '%-44s %10s %10s\n' "cold build (cage-admin enter -- /bin/true)" "median ms" "p90 ms"
for u in bplain betc bsrv; do
    case $u in
        bplain) label="no shadow" ;;
        betc) label="custom.etc adds a file: /etc shadowed" ;;
        bsrv) label="home in /srv/cage-bench: / shadowed" ;;
    esac
    line=$("$T_TMP/timeit" -n "$N" -w 2 -p "'$CAGE_ADMIN' --config '$T_CONF' unmount $u" -- "$CAGE_ADMIN" --config "$T_CONF" enter "$u" -- /bin/true)
    med=$(echo "$line" | sed -E 's/.*med=([0-9]+).*/\1/')
    p90=$(echo "$line" | sed -E 's/.*p90=([0-9]+).*/\1/')
    awk -v l="$label" -v m="$med" -v p="$p90" 'BEGIN { printf "%-44s %10.1f %10.1f\n", l, m / 1000, p / 1000 }'
done
echo "entries of the skeleton's /etc: $(ls -A "$T_SKEL/etc" | wc -l), of /: $(ls -A "$T_SKEL" | wc -l)"
