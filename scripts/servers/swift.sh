#!/usr/bin/env bash
# OpenStack Swift all-in-one for the s3://, swift:// and swiftkeys:// backend tests.
#
#   scripts/servers/swift.sh start   build config + rings, start memcached, a log sink and
#                                    the account, container, object and proxy servers on
#                                    free ports of 127.0.0.1; write swift.env and swift.pid
#   scripts/servers/swift.sh stop    stop every process started, by PID
#
# One replica on one plain directory under $PANNIER_SERVERS_DIR/swift (wiped at each start).
# The proxy pipeline has s3api (S3 at the root, path-style, region us-east-1) and the
# project's own container_keys filter (container_keys.py beside this script).
#
# Swift reads /etc/swift/swift.conf from that fixed path whatever its swift_dir; the small
# container listing limit the paging tests need can only be set there, so start writes it
# (the original is kept once as swift.conf.pannier-orig). Needs the Debian packages from
# scripts/install-system-deps.sh. The servers run under Debian's /usr/bin/python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

name=swift
base="$SERVERS_DIR/swift"
listing_limit=100     # [swift-constraints] container_listing_limit
s3_listing_limit=50   # s3api max_bucket_listing: must stay below listing_limit
swift_python=/usr/bin/python3

write_swift_conf() {
  local conf=/etc/swift/swift.conf want
  want="# Written by pannier's scripts/servers/swift.sh for the local test server.
[swift-hash]
swift_hash_path_suffix = pannier-test-suffix
swift_hash_path_prefix = pannier-test-prefix

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
container_listing_limit = $listing_limit
account_listing_limit = $listing_limit
"
  if [ -f "$conf" ] && [ "$(cat "$conf")" = "$(printf '%s' "$want")" ]; then
    return 0
  fi
  if ! { [ -w /etc/swift ] || [ -w "$conf" ]; } && [ "$(id -u)" -ne 0 ]; then
    echo "swift.sh: cannot write $conf (run as root); it must hold:" >&2
    printf '%s' "$want" >&2
    return 1
  fi
  # Never overwrite the configuration of a real cluster: only the packaged default
  # (hash suffix "changeme"), an absent file, or one this script wrote are replaced.
  if [ -f "$conf" ] && ! grep -q "pannier" "$conf" \
     && ! grep -Eq '^[[:space:]]*swift_hash_path_suffix[[:space:]]*=[[:space:]]*changeme[[:space:]]*$' "$conf" \
     && [ "${PANNIER_SWIFT_REPLACE_CONF:-}" != 1 ]; then
    echo "swift.sh: $conf belongs to a configured Swift (its hash suffix is set); not replacing" \
         "it. Set PANNIER_SWIFT_REPLACE_CONF=1 to replace it (a copy is kept)." >&2
    return 1
  fi
  mkdir -p /etc/swift
  if [ -f "$conf" ] && [ ! -f "$conf.pannier-orig" ] && ! grep -q "pannier" "$conf"; then
    cp -p "$conf" "$conf.pannier-orig"
  fi
  printf '%s' "$want" > "$conf"
}

stop() {
  stop_pids "$name"
}

start() {
  for exe in swift-proxy-server swift-account-server swift-container-server \
             swift-object-server memcached; do
    command -v "$exe" >/dev/null || {
      echo "swift.sh: $exe not found: run scripts/install-system-deps.sh" >&2; exit 1; }
  done
  stop
  rm -rf "$base"
  mkdir -p "$base/etc" "$base/srv/d1" "$base/log" "$base/cache"
  write_swift_conf

  local pidfile="$SERVERS_DIR/$name.pid" user
  : > "$pidfile"
  # Whatever fails from here on, stop what was already started.
  trap 'echo "swift.sh: start failed; stopping what was started" >&2; stop' ERR
  user="$(id -un)"
  local p_proxy p_account p_container p_object p_memcache
  p_proxy=$(free_port); p_account=$(free_port); p_container=$(free_port)
  p_object=$(free_port); p_memcache=$(free_port)

  # A UNIX datagram socket receives the servers' syslog lines (no UDP socket on 0.0.0.0).
  local sock="$base/log/syslog.sock"
  if [ ${#sock} -gt 100 ]; then sock="$(mktemp -u /tmp/pannier-swift-log.XXXXXX)"; fi
  "$swift_python" -c '
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\0") + b"\n")
' "$sock" "$base/log/swift.log" > "$base/log/sink.out" 2>&1 &
  echo $! >> "$pidfile"

  # Every daemon writes to a file, never to the caller's stdout (a pipe would stay open).
  memcached -l 127.0.0.1 -p "$p_memcache" -U 0 -m 64 -u "$user" > "$base/log/memcached.out" 2>&1 &
  echo $! >> "$pidfile"

  local i=0
  while [ ! -S "$sock" ]; do i=$((i+1)); [ $i -gt 100 ] && { echo "log sink did not start" >&2; exit 1; }; sleep 0.05; done

  local common="[DEFAULT]
bind_ip = 127.0.0.1
workers = 0
user = $user
swift_dir = $base/etc
devices = $base/srv
mount_check = false
disable_fallocate = true
log_address = $sock
log_level = INFO
"
  local kind port
  for kind in account container object; do
    case $kind in
      account) port=$p_account ;; container) port=$p_container ;; object) port=$p_object ;;
    esac
    cat > "$base/etc/$kind-server.conf" <<EOF
${common}bind_port = $port
log_name = $kind-server

[pipeline:main]
pipeline = $kind-server

[app:$kind-server]
use = egg:swift#$kind
EOF
  done

  # No proxy-logging filter: its access logger ignores log_address and would fall back to
  # UDP syslog on 0.0.0.0. The account, container and object servers log every request.
  cat > "$base/etc/proxy-server.conf" <<EOF
${common}bind_port = $p_proxy
log_name = proxy-server

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck cache listing_formats bulk tempurl s3api container_keys tempauth copy slo dlo versioned_writes symlink proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$p_memcache

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:tempurl]
use = egg:swift#tempurl

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
max_bucket_listing = $s3_listing_limit
check_bucket_owner = false
s3_acl = false

[filter:container_keys]
paste.filter_factory = container_keys:filter_factory

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test_tester2 = testing2

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes

[filter:symlink]
use = egg:swift#symlink
EOF

  # Rings: part power 8, one replica, one device per ring.
  "$swift_python" - "$base/etc" "$p_account" "$p_container" "$p_object" <<'EOF'
import sys
from swift.common.ring import RingBuilder
etc, ports = sys.argv[1], dict(zip(("account", "container", "object"), sys.argv[2:5]))
for kind, port in ports.items():
    builder = RingBuilder(8, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
                     "replication_ip": "127.0.0.1", "replication_port": int(port),
                     "device": "d1", "weight": 100, "meta": ""})
    builder.rebalance()
    builder.save(f"{etc}/{kind}.builder")
    builder.get_ring().save(f"{etc}/{kind}.ring.gz")
EOF

  # Never let the project's venv leak into Swift's Python.
  unset VIRTUAL_ENV PYTHONHOME
  for kind in account container object; do
    PYTHONPATH="" "swift-$kind-server" "$base/etc/$kind-server.conf" \
      > "$base/log/$kind.out" 2>&1 &
    echo $! >> "$pidfile"
  done
  PYTHONPATH="$here" swift-proxy-server "$base/etc/proxy-server.conf" \
    > "$base/log/proxy.out" 2>&1 &
  echo $! >> "$pidfile"

  for port in "$p_memcache" "$p_account" "$p_container" "$p_object" "$p_proxy"; do
    wait_tcp "$port" 90 || { echo "swift.sh: port $port did not open" >&2; tail -n 20 "$base"/log/*.out >&2; stop; exit 1; }
  done

  # Ready when a token works end to end (auth, memcache, account and container servers).
  "$swift_python" - "$p_proxy" <<'EOF' || { tail -n 30 "$base"/log/*.out "$base/log/swift.log" >&2; stop; exit 1; }
import sys, time, urllib.request, urllib.error
base = f"http://127.0.0.1:{sys.argv[1]}"
deadline = time.monotonic() + 90
while True:
    try:
        req = urllib.request.Request(base + "/auth/v1.0",
                                     headers={"X-Auth-User": "test:tester", "X-Auth-Key": "testing"})
        with urllib.request.urlopen(req, timeout=5) as r:
            token, url = r.headers["X-Auth-Token"], r.headers["X-Storage-Url"]
        req = urllib.request.Request(url + "/pannier-ready", method="PUT",
                                     headers={"X-Auth-Token": token})
        urllib.request.urlopen(req, timeout=5).close()
        req = urllib.request.Request(url + "/pannier-ready", method="DELETE",
                                     headers={"X-Auth-Token": token})
        urllib.request.urlopen(req, timeout=5).close()
        break
    except (OSError, urllib.error.URLError) as e:
        if time.monotonic() > deadline:
            sys.exit(f"swift.sh: proxy not ready: {e}")
        time.sleep(0.2)
EOF

  local proxy="http://127.0.0.1:$p_proxy"
  cat > "$SERVERS_DIR/$name.env.tmp" <<EOF
PANNIER_TEST_SWIFT_AUTH_URL=$proxy/auth/v1.0
PANNIER_TEST_SWIFT_USER=test:tester
PANNIER_TEST_SWIFT_KEY=testing
PANNIER_TEST_SWIFT_USER2=test:tester2
PANNIER_TEST_SWIFT_KEY2=testing2
PANNIER_TEST_SWIFT_STORAGE_URL=$proxy/v1/AUTH_test
PANNIER_TEST_SWIFT_PROXY=$proxy
PANNIER_TEST_SWIFT_LISTING_LIMIT=$listing_limit
PANNIER_TEST_SWIFT_LOG=$base/log/swift.log
PANNIER_TEST_S3_ENDPOINT=$proxy
PANNIER_TEST_S3_ACCESS_KEY=test:tester
PANNIER_TEST_S3_SECRET_KEY=testing
PANNIER_TEST_S3_REGION=us-east-1
PANNIER_TEST_S3_LISTING_LIMIT=$s3_listing_limit
EOF
  mv "$SERVERS_DIR/$name.env.tmp" "$SERVERS_DIR/$name.env"
  echo "swift: proxy $proxy (S3 at the root), memcached :$p_memcache, pids $(tr '\n' ' ' < "$pidfile")"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
