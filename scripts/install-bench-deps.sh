#!/usr/bin/env bash
# Install the Debian packages the benchmarks compare pannier with (bench/ only, never the tests):
# restic and borgbackup (bench/bench_backup.py), rdiff-backup and duplicity (other peers a user
# may want to try), rclone (bench/peers.py, used by bench/bench_backends.py) and GNU time.
# Also installs matplotlib (for bench/plot.py's PNG) into the project's .venv when there is one.
# Idempotent: installs only what is missing. Needs root (or sudo) and the Debian mirrors.
set -euo pipefail
venv_python="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python"
if [ -x "$venv_python" ] && ! "$venv_python" -c 'import matplotlib' 2>/dev/null; then
  echo "benchmark packages: installing matplotlib into .venv"
  "$venv_python" -m pip install -q "matplotlib>=3.8" || echo "matplotlib not installed: plot.py writes SVG" >&2
fi
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
