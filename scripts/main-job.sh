#!/usr/bin/env bash
# Set up pannier and run its main job: back up a real directory into a local, encrypted
# file:// repository, restore it, and prove the restore is identical.
#
#   scripts/main-job.sh [SOURCE_DIR] [WORK_DIR]
#
# SOURCE_DIR defaults to /usr/share/doc. WORK_DIR (default: a new temporary directory) gets
# the repository (repo/), its password file (password, mode 0600) and the restore (restore/).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
src="$(cd "${1:-/usr/share/doc}" && pwd)"
work="${2:-$(mktemp -d -t pannier-main-job.XXXXXX)}"
mkdir -p "$work"
PY="${PYTHON:-python3}"

echo "== installing pannier into $top/.venv"
[ -x "$top/.venv/bin/python" ] || "$PY" -m venv "$top/.venv"
"$top/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$top" > "$work/install.log" 2>&1 \
  || { cat "$work/install.log" >&2; exit 1; }
pannier="$top/.venv/bin/pannier"

umask 077
[ -s "$work/password" ] || "$top/.venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))' > "$work/password"
export PANNIER_REPOSITORY="file://$work/repo"
export PANNIER_PASSWORD_FILE="$work/password"

echo "== pannier init ($PANNIER_REPOSITORY)"
[ -e "$work/repo/config" ] || "$pannier" init --encryption repokey
echo "== pannier backup $src"
"$pannier" backup "$src" --tag main-job
echo "== pannier snapshots"
"$pannier" snapshots
rm -rf "$work/restore"
echo "== pannier restore latest --target $work/restore"
"$pannier" restore latest --target "$work/restore"
echo "== pannier check --read-data"
"$pannier" check --read-data
echo "== comparing $src with the restore"
restored="$work/restore"   # a single source directory is restored as the target itself
diff -r --no-dereference "$src" "$restored" && echo "identical: $src == $restored"
