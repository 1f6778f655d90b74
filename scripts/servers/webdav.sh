#!/usr/bin/env bash
# WebDAV test servers on 127.0.0.1, for the webdav:// backend tests.
#
#   scripts/servers/webdav.sh start|stop
#
# Starts two different WebDAV servers, each with a user and password, on free ports:
#   * `rclone serve webdav` over a directory, at the server root, Basic authentication
#     (and a second one over HTTPS, with a self-signed certificate made here);
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

  local user=pannier password rport wport tport
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

  # A third server for webdavs://: rclone serve webdav over TLS, with a self-signed
  # certificate for 127.0.0.1 made here (the tests trust it through ca-file).
  "$python" - "$dir" <<'PY'
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
d = sys.argv[1]
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pannier test 127.0.0.1")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (
    x509.CertificateBuilder().subject_name(name).issuer_name(name)
    .public_key(key.public_key()).serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(minutes=5))
    .not_valid_after(now + datetime.timedelta(days=7))
    .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                   critical=False)
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .sign(key, hashes.SHA256())
)
with open(f"{d}/tls-key.pem", "wb") as f:
    f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))
with open(f"{d}/tls-cert.pem", "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
PY
  mkdir -p "$dir/tls-root"
  tport="$(free_port)"
  RCLONE_CONFIG="$dir/rclone.conf" RCLONE_USER="$user" RCLONE_PASS="$password" \
    rclone serve webdav ":local:$dir/tls-root" --addr "127.0.0.1:$tport" \
    --cert "$dir/tls-cert.pem" --key "$dir/tls-key.pem" \
    >> "$dir/rclone-webdav-tls.log" 2>&1 &
  echo $! >> "$SERVERS_DIR/$name.pid"

  wait_tcp "$rport" 20 || { echo "rclone serve webdav did not listen on $rport" >&2; exit 1; }
  wait_tcp "$tport" 20 || { echo "rclone serve webdav (TLS) did not listen on $tport" >&2; exit 1; }
  wait_tcp "$wport" 30 || { echo "WsgiDAV did not listen on $wport" >&2; cat "$dir/wsgidav.log" >&2; exit 1; }

  # Both must answer an authenticated PROPFIND before the servers count as up.
  "$python" - "$rport" "$wport" "$tport" "$dir/tls-cert.pem" "$user" "$password" <<'EOF'
import sys
import requests
from requests.auth import HTTPBasicAuth, HTTPDigestAuth
rport, wport, tport, ca, user, password = sys.argv[1:]
for url, auth in ((f"http://127.0.0.1:{rport}/", HTTPBasicAuth(user, password)),
                  (f"http://127.0.0.1:{wport}/dav/", HTTPDigestAuth(user, password)),
                  (f"https://127.0.0.1:{tport}/", HTTPBasicAuth(user, password))):
    r = requests.request("PROPFIND", url, auth=auth, headers={"Depth": "0"}, timeout=10,
                         verify=ca)
    if r.status_code != 207:
        sys.exit(f"{url}: PROPFIND answered {r.status_code}")
EOF

  cat > "$SERVERS_DIR/$name.env" <<EOF
PANNIER_TEST_WEBDAV_RCLONE_URL=http://127.0.0.1:$rport/
PANNIER_TEST_WEBDAV_WSGIDAV_URL=http://127.0.0.1:$wport/dav/
PANNIER_TEST_WEBDAV_TLS_URL=https://127.0.0.1:$tport/
PANNIER_TEST_WEBDAV_TLS_CA_FILE=$dir/tls-cert.pem
PANNIER_TEST_WEBDAV_USER=$user
PANNIER_TEST_WEBDAV_PASS=$password
PANNIER_TEST_WEBDAV_RCLONE_ROOT=$dir/rclone-root
PANNIER_TEST_WEBDAV_WSGIDAV_ROOT=$dir/wsgidav-root
EOF
  echo "rclone serve webdav on 127.0.0.1:$rport (TLS: $tport), WsgiDAV on 127.0.0.1:$wport/dav"
}

case "${1:-}" in
  start) start ;;
  stop) stop_pids "$name" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
