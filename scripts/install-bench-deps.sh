#!/usr/bin/env bash
# Install the Debian packages the benchmarks compare pannier with (bench/ only, never the tests):
# restic and borgbackup (bench/bench_backup.py), rdiff-backup and duplicity (other peers a user
# may want to try), rclone (bench/peers.py, used by bench/bench_backends.py) and GNU time.
# Idempotent: installs only what is missing. Needs root (or sudo) and the Debian mirrors.
set -euo pipefail
packages=(restic borgbackup rdiff-backup duplicity rclone time)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "benchmark packages: all present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "benchmark packages: installing ${missing[*]}"
# Another apt run may hold the dpkg lock: wait for it rather than fail.
for _ in $(seq 1 60); do
  if $SUDO apt-get update -qq && \
     $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "benchmark packages: done"
    exit 0
  fi
  echo "benchmark packages: apt busy or failed, retrying in 10 s" >&2
  sleep 10
done
echo "benchmark packages: could not install ${missing[*]}" >&2
exit 1
