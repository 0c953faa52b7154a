#!/usr/bin/env bash
# Needs root (lib.sh). Symbol hygiene: pam_cage.so exports only pam_sm_*,
# libcage.so only the cage_* functions of include/libcage.h.
source "$(dirname "$0")/../lib.sh"

exports() { nm -D --defined-only "$1" | awk '{print $3}' | sort; }

echo "# libcage.so"
check "libcage.so is built" test -f "$LIBCAGE_SO"
want=$(printf '%s\n' cage_abi_version cage_enter cage_enter_at cage_enter_user cage_enter_user_at \
    cage_last_error cage_strerror cage_user_enabled cage_user_enabled_at)
check_eq "libcage.so exports exactly the C API" "$want" "$(exports "$LIBCAGE_SO")"
in_header=$(grep -oE '\bcage_[a-z_]+\(' "$REPO/include/libcage.h" | tr -d '(' | sort -u)
check_eq "every export is declared in include/libcage.h" "$want" "$in_header"

echo "# pam_cage.so"
check "libpam_cage.so is built" test -f "$PAM_CAGE_SO"
check_eq "pam_cage.so exports only pam_sm_*" "$(printf 'pam_sm_close_session\npam_sm_open_session')" \
    "$(exports "$PAM_CAGE_SO")"
check_contains "pam_cage.so links libpam" "[libpam.so.0]" "$(readelf -d "$PAM_CAGE_SO" | grep NEEDED)"
check_lacks "pam_cage.so does not need libcage.so" "libcage" "$(readelf -d "$PAM_CAGE_SO" | grep NEEDED)"

finish
