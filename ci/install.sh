#!/usr/bin/env bash
# Builds cage, installs it on this Debian 12 machine and starts it: the
# admin CLI, cage-enter (setuid root), the cage init program (/usr/lib/cage/cage-init), libcage.so +
# header, pam_cage.so (appended last to the session stack of every login
# service by `cage-admin pam enable`),
# the default configuration in /etc/cage (never overwriting an admin's
# file), the apt hook that keeps the skeleton current, and the skeleton
# itself. Mode is disable-all: nobody is caged until `cage-admin user
# enable NAME` (or `cage-admin mode enable-all`).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "ci/install.sh needs root" >&2; exit 2; }
bash ci/deps.sh
for d in "$HOME/.cargo/bin" /root/.cargo/bin; do [ -d "$d" ] && PATH="$d:$PATH"; done

cargo build --workspace --release --quiet
cargo build --release --quiet --manifest-path cage-init/Cargo.toml --target-dir target
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)

# Installed stripped (the release profile keeps debug=1 for tests and
# backtraces): about 0.7 MB per .so instead of 10 MB, cage-admin 1.9 MB
# instead of 16 MB. --strip-unneeded keeps the dynamic symbols.
install -D -m 755 target/release/cage-admin /usr/sbin/cage-admin
# Setuid root: a user runs a command in their own cage (SECURITY.md
# "cage-enter"). In no skeleton template.
install -D -o root -g root -m 755 target/release/cage-enter /usr/bin/cage-enter
install -D -m 755 target/release/cage-init /usr/lib/cage/cage-init
install -D -m 644 target/release/libcage.so "/usr/lib/$arch/libcage.so"
install -D -m 755 target/release/cage-proxyd /usr/sbin/cage-proxyd
install -D -m 755 target/release/cage-proxy /usr/lib/cage/cage-proxy
install -D -m 644 include/libcage.h /usr/include/libcage.h
install -D -m 644 target/release/libpam_cage.so "/usr/lib/$arch/security/pam_cage.so"
install -D -m 644 target/release/libcage_preload.so "/usr/lib/$arch/libcage_preload.so"
strip --strip-unneeded --remove-section=.comment /usr/sbin/cage-admin /usr/bin/cage-enter \
    /usr/sbin/cage-proxyd /usr/lib/cage/cage-proxy \
    "/usr/lib/$arch/libcage.so" "/usr/lib/$arch/security/pam_cage.so" \
    "/usr/lib/$arch/libcage_preload.so"
# The set-id bit last: strip rewrites the file.
chmod 4755 /usr/bin/cage-enter
# systemd drop-ins that load libcage_preload.so into PHP-FPM and Apache
# (effective on their next restart; see README "Web servers").
for unit in php8.2-fpm apache2; do
    install -d -m 755 "/etc/systemd/system/$unit.service.d"
    sed "s|@LIBDIR@|/usr/lib/$arch|" "etc/systemd/$unit.service.d/cage.conf" \
        >"/etc/systemd/system/$unit.service.d/cage.conf"
done
ldconfig

install -d -m 755 /etc/cage /etc/cage/conf.d /etc/cage/exclude /etc/cage/custom.etc
install -d -m 755 /etc/cage/users.enabled /etc/cage/users.disabled
install -d -m 700 /var/lib/cage
for f in $(cd etc/cage && find . -type f | sed 's|^\./||'); do
    [ -e "/etc/cage/$f" ] || install -D -m 644 "etc/cage/$f" "/etc/cage/$f"
done
if [ -d etc/apt/apt.conf.d ]; then
    for f in etc/apt/apt.conf.d/*; do install -D -m 644 "$f" "/$f"; done
fi

# PAM: pam_cage goes last in each login service's own file (sshd, su,
# runuser, cron, atd, login, systemd-user), after pam_limits and pam_env,
# which must still read the host's files; the apt hook keeps it there.
# An earlier install's pam-auth-update profile (common-session) goes.
if [ -f /usr/share/pam-configs/cage ]; then
    pam-auth-update --package --remove cage
    rm -f /usr/share/pam-configs/cage
fi
cage-admin pam enable

# The skeleton: built on first install, brought up to date afterwards.
if [ -d /usr/share/cage-skeleton ]; then
    cage-admin update
else
    cage-admin init
fi
# proxyexec: the daemon outside every cage (systemd unit on systemd hosts,
# a plain background start elsewhere), restarted on reinstall.
install -D -m 644 etc/systemd/cage-proxyd.service /lib/systemd/system/cage-proxyd.service
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable cage-proxyd.service
    systemctl restart cage-proxyd.service
else
    if [ -f /run/cage-proxyd.pid ]; then kill "$(cat /run/cage-proxyd.pid)" 2>/dev/null || true; fi
    setsid /usr/sbin/cage-proxyd </dev/null >>/var/log/cage-proxyd.log 2>&1 &
    echo $! >/run/cage-proxyd.pid
fi
echo "cage installed: $(cage-admin mode show) mode; enable a user with: cage-admin user enable NAME"
