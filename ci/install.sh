#!/usr/bin/env bash
# Builds cage, installs it on this Debian 12 machine and starts it: the
# admin CLI, the cage init program (/usr/lib/cage/cage-init), libcage.so +
# header, pam_cage.so (enabled for every session through pam-auth-update),
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
install -D -m 755 target/release/cage-init /usr/lib/cage/cage-init
install -D -m 644 target/release/libcage.so "/usr/lib/$arch/libcage.so"
install -D -m 755 target/release/cage-proxyd /usr/sbin/cage-proxyd
install -D -m 755 target/release/cage-proxy /usr/lib/cage/cage-proxy
install -D -m 644 include/libcage.h /usr/include/libcage.h
install -D -m 644 target/release/libpam_cage.so "/usr/lib/$arch/security/pam_cage.so"
strip --strip-unneeded --remove-section=.comment /usr/sbin/cage-admin /usr/sbin/cage-proxyd /usr/lib/cage/cage-proxy \
    "/usr/lib/$arch/libcage.so" "/usr/lib/$arch/security/pam_cage.so"
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

# PAM: one session line for every service (sshd, su, cron, ...).
install -D -m 644 pam.d/pam-configs/cage /usr/share/pam-configs/cage
pam-auth-update --package --enable cage

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
