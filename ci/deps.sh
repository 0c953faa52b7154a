#!/usr/bin/env bash
# Installs what building and testing cage needs on Debian 12 (idempotent).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(build-essential pkg-config libpam0g-dev keyutils util-linux procps perl python3 login passwd rsync strace)
# 60-proxy / 61-proxy-cron: the real crontab, cron and a local-delivery MTA
pkgs+=(cron exim4-daemon-light)
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
