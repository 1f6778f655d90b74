#!/usr/bin/env bash
# Install the Debian packages the tests need (servers for the backend tests, ACL tools).
# Idempotent: installs only what is missing. Needs root (or sudo) and the Debian mirrors.
set -euo pipefail
packages=(
  swift swift-proxy swift-account swift-container swift-object memcached
  openssh-server openssh-client rclone acl attr sqlite3
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "system packages: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts some services on install; the tests run their own copies on other ports.
for svc in memcached ssh swift-proxy swift-account swift-container swift-object; do
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null 2>&1; then $SUDO service "$svc" stop >/dev/null 2>&1 || true; fi
done
echo "system packages: done"
