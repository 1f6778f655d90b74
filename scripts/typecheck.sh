#!/usr/bin/env bash
# Type-check pannier as it is installed: mypy --strict on the package `pannier`.
#
# core/ installs as `pannier` and plugins/ as `pannier.plugins` through setuptools'
# package-dir mapping, which mypy cannot follow (an editable install is an import hook).
# So this builds build/typecheck/pannier/ out of symbolic links, mirroring the installed
# layout, and runs mypy on it with the configuration in pyproject.toml.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
tree="build/typecheck"
rm -rf "$tree"
mkdir -p "$tree/pannier"
for entry in core/*; do
  ln -s "$top/$entry" "$tree/pannier/$(basename "$entry")"
done
ln -s "$top/plugins" "$tree/pannier/plugins"
exec "${MYPY:-$top/.venv/bin/mypy}" "$@" "$tree/pannier"
