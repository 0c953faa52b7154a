#!/usr/bin/env bash
# Needs root. The web benchmark in its short mode (bench/web.sh --short):
# passes when it ran to completion and printed every row with figures, and
# undid its changes (users, diversions, the suexec alternative, mounts).
# Figures are reported, never asserted.
source "$(dirname "$0")/../lib.sh"

command -v apache2 >/dev/null && [ -x /usr/sbin/php-fpm8.2 ] && [ -e /usr/lib/apache2/suexec-custom ] || {
    echo "  skip  apache2, apache2-suexec-custom and php8.2-fpm are not installed (ci/deps.sh)"
    echo "$T_NAME: skipped"
    exit 0
}
before_mounts=$(mounts_snapshot)
alt_before=$(readlink /etc/alternatives/suexec)
sums_before=$(sha256sum /usr/lib/apache2/suexec-pristine /usr/lib/apache2/suexec-custom)

# The benchmark takes the e2e lock itself (tests/lib.sh): run it unlocked
# from here would deadlock, so hand it ours.
out=$(CAGE_E2E_LOCKED=1 bash "$REPO/bench/web.sh" --short 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/    /'
check_eq "bench/web.sh --short ran to completion" "0" "$rc"
for r in "CGI suexec, Debian's (carol)" "CGI suexec, patched, caged user (alice)" \
    "PHP-FPM static, caged pool (bob)" "PHP-FPM, a new worker per request, caged"; do
    check_contains "row: $r" "$r" "$out"
done
check_contains "libcage's entry figures are printed" "suexec (alice):             2" "$out"
check_contains "the goals are printed" "== goals (reported, not asserted)" "$out"
check_lacks "no row failed to run" "n/a:" "$out"
check_lacks "every view check passed" "  FAIL " "$out"

echo "# the benchmark cleaned up after itself"
for u in alice bob carol; do
    case $(id -u "$u" 2>/dev/null) in '') _ok "user $u is gone" ;; *) _bad "user $u is gone" ;; esac
done
check_eq "no diversion by cage is left" "" "$(dpkg-divert --list | grep 'by cage$')"
check_eq "Debian's suexec programs are in place" "$sums_before" \
    "$(sha256sum /usr/lib/apache2/suexec-pristine /usr/lib/apache2/suexec-custom)"
check_eq "the suexec alternative is as before" "$alt_before" "$(readlink /etc/alternatives/suexec)"
check_eq "no apache2 or php-fpm is left running" "" \
    "$(ps -eo stat=,comm= | awk '($2 == "apache2" || $2 == "php-fpm8.2") && $1 !~ /^Z/')"
check_eq "the host's mount table is unchanged" "$before_mounts" "$(mounts_snapshot)"
finish
