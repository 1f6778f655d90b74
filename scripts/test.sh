#!/usr/bin/env bash
# Set up everything the tests need and run them: the README's test command, and what CI runs.
#
#   scripts/test.sh [PYTEST ARGS...]
#
# 1. installs the Debian packages the test servers need (scripts/install-system-deps.sh);
# 2. creates .venv and installs pannier editable with every extra and the test tools;
# 3. lint and types: ruff, mypy --strict on core/ and plugins/;
# 4. starts the local test servers (Swift with S3, sshd, WebDAV) on 127.0.0.1;
# 5. runs pytest against the editable install, then the core suite against the built wheel
#    installed into a second virtual environment;
# 6. stops the servers it started, by PID, whatever happened.
# Under CI=true a test that needs a missing server fails instead of skipping.
set -uo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
PY="${PYTHON:-python3}"
step() { printf '\n=== %s\n' "$*"; }
t0=$(date +%s)

step "system packages"
bash scripts/install-system-deps.sh || { echo "installing system packages failed" >&2; exit 1; }

step "virtual environment (.venv)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv || exit 1
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip wheel "setuptools>=77" >/dev/null
mkdir -p build
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[all,test]" > build/pip-install.log 2>&1 \
  || { cat build/pip-install.log >&2; exit 1; }

step "ruff"
.venv/bin/ruff check . || exit 1
.venv/bin/ruff format --check . || exit 1
step "mypy --strict (core, plugins)"
bash scripts/typecheck.sh || exit 1

export PANNIER_SERVERS_DIR="$top/.servers"
cleanup() { step "stopping test servers"; bash scripts/servers/all.sh stop; }
trap cleanup EXIT
step "starting test servers"
bash scripts/servers/all.sh start || { [ "${CI:-}" = true ] && exit 1; echo "some servers did not start; their tests will skip"; }

step "pytest (editable install)"
.venv/bin/python -m pytest -q "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here" >&2; rc=1; fi
[ $rc -eq 0 ] || { echo "tests failed (pytest exit $rc)" >&2; exit $rc; }

step "pytest (built wheel in a clean virtual environment)"
wheeldir="$(mktemp -d)"; wheelenv="$(mktemp -d)/venv"
.venv/bin/python -m pip wheel -q --no-deps -w "$wheeldir" . || exit 1
"$PY" -m venv "$wheelenv" && "$wheelenv/bin/python" -m pip install -q --disable-pip-version-check \
  "$(ls "$wheeldir"/pannier-*.whl)[all,test]" > build/pip-install-wheel.log 2>&1 \
  || { cat build/pip-install-wheel.log >&2; exit 1; }
# From a directory without the source tree on sys.path, so `pannier` is the installed wheel.
(cd "$wheeldir" && PANNIER_TEST_INSTALLED=wheel "$wheelenv/bin/python" -m pytest -q \
   -p no:cacheprovider --rootdir "$top" -c "$top/pyproject.toml" \
   "$top/tests/core" "$top/tests/plugins/meta" "$top/tests/plugins/backends/test_file.py" "$top/tests/cli")
rc=$?
rm -rf "$wheeldir" "$(dirname "$wheelenv")"
if [ $rc -eq 5 ]; then echo "wheel run collected no tests: that is a failure here" >&2; rc=1; fi
[ $rc -eq 0 ] || { echo "tests against the wheel failed (pytest exit $rc)" >&2; exit $rc; }
echo "all checks passed in $(( $(date +%s) - t0 ))s"
