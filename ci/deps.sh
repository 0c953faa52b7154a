#!/usr/bin/env bash
# Installs what building and testing cage needs on Debian 12 (idempotent).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(build-essential pkg-config libpam0g-dev keyutils util-linux procps perl python3 login passwd rsync strace)
# 70-suexec: real Apache with both suexec flavours; patches/build.sh builds suexec from apt-get source.
pkgs+=(apache2 apache2-suexec-pristine apache2-suexec-custom curl dpkg-dev libapr1-dev libaprutil1-dev libpcre2-dev patch)
# 71-fpm: PHP-FPM pools behind Apache's proxy_fcgi (cgi-fcgi from libfcgi-bin for direct requests).
pkgs+=(php8.2-fpm php8.2-cli libfcgi-bin)
# 62-devlog-enter: logger and script (Essential on Debian, listed for minimal images)
pkgs+=(bsdutils)
# 50-login: the real login daemons (sshd on a loopback port, cron, atd).
pkgs+=(openssh-server openssh-client cron at)
# 60-proxy / 61-proxy-cron: the real crontab, cron and a local-delivery MTA
pkgs+=(exim4-daemon-light)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    for d in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/cargo/bin; do
        [ -x "$d/cargo" ] && export PATH="$d:$PATH" && break
    done
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust 1.80 or newer) is required; put it on PATH" >&2; exit 1; }
# patches/build.sh fetches sources with apt-get source: deb-src lines for
# bookworm, bookworm-updates and bookworm-security (added once).
if [ ! -f /etc/apt/sources.list.d/cage-deb-src.sources ]; then
    cat >/etc/apt/sources.list.d/cage-deb-src.sources <<'SRC'
# Added by cage (ci/deps.sh, patches/build.sh): sources of the Debian 12 packages it patches.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -qq
fi
