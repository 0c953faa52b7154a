#!/usr/bin/env bash
# Removes what ci/install.sh installed: unpins every cage (processes inside
# keep running until they exit), removes the pam_cage lines from /etc/pam.d, removes the
# binaries, the library and header, the apt hook and the skeleton. The
# configuration in /etc/cage and the state in /var/lib/cage are kept unless
# --purge is given.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "ci/uninstall.sh needs root" >&2; exit 2; }
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
if [ -x /usr/sbin/cage-admin ]; then
    /usr/sbin/cage-admin unmount --all >/dev/null 2>&1 || true
fi
# Patched web server programs (patches/build.sh --install): Debian's back
# before libcage.so goes.
if dpkg-divert --list | grep -q 'by cage$'; then
    bash "$(dirname "$0")/../patches/build.sh" --uninstall
fi
if [ -x /usr/sbin/cage-admin ]; then
    /usr/sbin/cage-admin pam disable >/dev/null || echo "cage-admin pam disable failed: check /etc/pam.d for pam_cage lines" >&2
fi
if [ -f /usr/share/pam-configs/cage ]; then
    pam-auth-update --package --remove cage
    rm -f /usr/share/pam-configs/cage
fi
if [ -d /run/systemd/system ] && [ -f /lib/systemd/system/cage-proxyd.service ]; then
    systemctl disable --now cage-proxyd.service || true
fi
if [ -f /run/cage-proxyd.pid ]; then kill "$(cat /run/cage-proxyd.pid)" 2>/dev/null || true; rm -f /run/cage-proxyd.pid; fi
rm -f /lib/systemd/system/cage-proxyd.service /usr/sbin/cage-proxyd /run/cage-proxy/socket
rm -f /etc/apt/apt.conf.d/90cage
rm -rf /usr/lib/cage
rm -f /usr/sbin/cage-admin /usr/bin/cage-enter "/usr/lib/$arch/libcage.so" /usr/include/libcage.h \
    "/usr/lib/$arch/security/pam_cage.so" "/usr/lib/$arch/libcage_preload.so" \
    /etc/systemd/system/php8.2-fpm.service.d/cage.conf /etc/systemd/system/apache2.service.d/cage.conf
rmdir /etc/systemd/system/php8.2-fpm.service.d /etc/systemd/system/apache2.service.d 2>/dev/null || true
ldconfig
rm -rf /usr/share/cage-skeleton /usr/share/cage-skeleton.new /usr/share/cage-skeleton.old.* \
    /usr/share/cage-skeleton.lock /usr/share/cage-skeleton.cache \
    /usr/share/cage-skeleton.pin /usr/share/cage-skeleton.trash.*
if [ "${1:-}" = --purge ]; then
    rm -rf /etc/cage /var/lib/cage
fi
echo "cage removed${1:+ ($1)}"
