#!/usr/bin/env bash
# WebDAV test servers on 127.0.0.1, for the webdav:// backend tests.
#
#   scripts/servers/webdav.sh start|stop
#
# Starts two different WebDAV servers, each with a user and password, on free ports:
#   * `rclone serve webdav` over a directory, at the server root, Basic authentication;
#   * WsgiDAV (cheroot) from the project's Python, sharing a directory under /dav,
#     Digest authentication only (so both authentication schemes are exercised).
# Their quirks differ (MOVE overwrite, MKCOL on an existing collection, PUT without a
# parent), which is the point of testing against both.
# Writes webdav.env with PANNIER_TEST_WEBDAV_* and webdav.pid.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

name=webdav
dir="$SERVERS_DIR/$name"
# WsgiDAV runs from the project's virtualenv (pip: wsgidav, cheroot; the `test` extra).
python="${PANNIER_PYTHON:-$top/.venv/bin/python}"

start() {
  stop_pids "$name"
  rm -rf "$dir"
  mkdir -p "$dir/rclone-root" "$dir/wsgidav-root"
  chmod 700 "$dir"
  if ! "$python" -c 'import wsgidav, cheroot' 2>/dev/null; then
    echo "$python cannot import wsgidav and cheroot: pip install -e '.[test]'" >&2
    exit 1
  fi

  local user=pannier password rport wport
  password="pw-$("$python" -c 'import secrets; print(secrets.token_hex(12))')"
  rport="$(free_port)"
  wport="$(free_port)"

  # rclone takes --user/--pass from RCLONE_USER/RCLONE_PASS: no secret on argv.
  : > "$dir/rclone.conf"
  RCLONE_CONFIG="$dir/rclone.conf" RCLONE_USER="$user" RCLONE_PASS="$password" \
    rclone serve webdav ":local:$dir/rclone-root" --addr "127.0.0.1:$rport" \
    >> "$dir/rclone-webdav.log" 2>&1 &
  echo $! >> "$SERVERS_DIR/$name.pid"

  # WsgiDAV reads its users from a config file (mode 600), never from argv.
  ( umask 077
    cat > "$dir/wsgidav.json" <<EOF
{
  "host": "127.0.0.1",
  "port": $wport,
  "server": "cheroot",
  "verbose": 2,
  "provider_mapping": {"/dav": "$dir/wsgidav-root"},
  "http_authenticator": {
    "domain_controller": null,
    "accept_basic": false,
    "accept_digest": true,
    "default_to_digest": true
  },
  "simple_dc": {"user_mapping": {"*": {"$user": {"password": "$password"}}}},
  "dir_browser": {"enable": false},
  "lock_storage": true
}
EOF
  )
  "$python" -m wsgidav.server.server_cli --config "$dir/wsgidav.json" \
    >> "$dir/wsgidav.log" 2>&1 &
  echo $! >> "$SERVERS_DIR/$name.pid"

  wait_tcp "$rport" 20 || { echo "rclone serve webdav did not listen on $rport" >&2; exit 1; }
  wait_tcp "$wport" 30 || { echo "WsgiDAV did not listen on $wport" >&2; cat "$dir/wsgidav.log" >&2; exit 1; }

  # Both must answer an authenticated PROPFIND before the servers count as up.
  "$python" - "$rport" "$wport" "$user" "$password" <<'EOF'
import sys
import requests
from requests.auth import HTTPBasicAuth, HTTPDigestAuth
rport, wport, user, password = sys.argv[1:]
for url, auth in ((f"http://127.0.0.1:{rport}/", HTTPBasicAuth(user, password)),
                  (f"http://127.0.0.1:{wport}/dav/", HTTPDigestAuth(user, password))):
    r = requests.request("PROPFIND", url, auth=auth, headers={"Depth": "0"}, timeout=10)
    if r.status_code != 207:
        sys.exit(f"{url}: PROPFIND answered {r.status_code}")
EOF

  cat > "$SERVERS_DIR/$name.env" <<EOF
PANNIER_TEST_WEBDAV_RCLONE_URL=http://127.0.0.1:$rport/
PANNIER_TEST_WEBDAV_WSGIDAV_URL=http://127.0.0.1:$wport/dav/
PANNIER_TEST_WEBDAV_USER=$user
PANNIER_TEST_WEBDAV_PASS=$password
PANNIER_TEST_WEBDAV_RCLONE_ROOT=$dir/rclone-root
PANNIER_TEST_WEBDAV_WSGIDAV_ROOT=$dir/wsgidav-root
EOF
  echo "rclone serve webdav on 127.0.0.1:$rport, WsgiDAV on 127.0.0.1:$wport/dav"
}

case "${1:-}" in
  start) start ;;
  stop) stop_pids "$name" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
