#!/usr/bin/env bash
# SFTP test servers on 127.0.0.1, for the sftp:// backend tests.
#
#   scripts/servers/sshd.sh start|stop
#
# Starts two servers, each with its own ed25519 host key under $SERVERS_DIR/sshd/:
#   * OpenSSH sshd: public-key login only (a client key made here), internal-sftp;
#   * `rclone serve sftp`: password login only, a second, forgiving SFTP implementation
#     used to test password authentication without touching the system's accounts.
# Writes sshd.env with the PANNIER_TEST_SFTP_* facts the tests read, and sshd.pid.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

name=sshd
dir="$SERVERS_DIR/$name"

start() {
  stop_pids "$name"
  rm -rf "$dir"
  mkdir -p "$dir/root" "$dir/pwroot"
  chmod 700 "$dir"
  # As root, sshd wants its privilege-separation directory.
  if [ "$(id -u)" -eq 0 ]; then mkdir -p /run/sshd && chmod 755 /run/sshd; fi

  ssh-keygen -q -t ed25519 -N '' -C pannier-test-host -f "$dir/host_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C pannier-test-client -f "$dir/client_ed25519"
  # A second, unrelated key: a known_hosts entry that does not match, and a client key
  # the server does not accept.
  ssh-keygen -q -t ed25519 -N '' -C pannier-test-other -f "$dir/other_ed25519"
  cp "$dir/client_ed25519.pub" "$dir/authorized_keys"

  local user port pwport password
  user="$(id -un)"
  port="$(free_port)"
  cat > "$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $user
UsePAM no
StrictModes no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTTY no
PrintMotd no
MaxStartups 100
MaxSessions 100
Subsystem sftp internal-sftp
EOF
  # -D: stay in the foreground so $! is sshd itself; -e: log to stderr (our log file).
  /usr/sbin/sshd -D -e -f "$dir/sshd_config" >> "$dir/sshd.log" 2>&1 &
  echo $! >> "$SERVERS_DIR/$name.pid"

  # Password-auth server: rclone serve sftp over a directory of its own.
  pwport="$(free_port)"
  password="pw-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
  : > "$dir/rclone.conf"
  RCLONE_CONFIG="$dir/rclone.conf" RCLONE_USER=pannier RCLONE_PASS="$password" \
    rclone serve sftp ":local:$dir/pwroot" \
    --addr "127.0.0.1:$pwport" \
    --key "$dir/host_ed25519" >> "$dir/rclone-sftp.log" 2>&1 &
  echo $! >> "$SERVERS_DIR/$name.pid"

  wait_tcp "$port" 20 || { echo "sshd did not listen on $port" >&2; cat "$dir/sshd.log" >&2; exit 1; }
  wait_tcp "$pwport" 20 || { echo "rclone serve sftp did not listen on $pwport" >&2; exit 1; }

  # known_hosts for the client, from what the servers really present.
  local scan
  for i in 1 2 3 4 5 6 7 8 9 10; do
    scan="$(ssh-keyscan -t ed25519 -p "$port" 127.0.0.1 2>/dev/null || true)"
    [ -n "$scan" ] && break
    sleep 0.3
  done
  [ -n "$scan" ] || { echo "ssh-keyscan got no host key from port $port" >&2; exit 1; }
  echo "$scan" > "$dir/known_hosts"
  ssh-keyscan -t ed25519 -p "$pwport" 127.0.0.1 2>/dev/null >> "$dir/known_hosts" || true
  # The same host and port with a different key: a known_hosts that must be refused.
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/other_ed25519.pub")" > "$dir/known_hosts_wrong"

  # Prove key login and SFTP work end to end before declaring the server up.
  echo "ls" | sftp -q -b - -P "$port" -i "$dir/client_ed25519" \
    -o UserKnownHostsFile="$dir/known_hosts" -o StrictHostKeyChecking=yes \
    -o BatchMode=yes "$user@127.0.0.1:$dir/root" > /dev/null

  cat > "$SERVERS_DIR/$name.env" <<EOF
PANNIER_TEST_SFTP_HOST=127.0.0.1
PANNIER_TEST_SFTP_PORT=$port
PANNIER_TEST_SFTP_USER=$user
PANNIER_TEST_SFTP_KEY_FILE=$dir/client_ed25519
PANNIER_TEST_SFTP_WRONG_KEY_FILE=$dir/other_ed25519
PANNIER_TEST_SFTP_KNOWN_HOSTS=$dir/known_hosts
PANNIER_TEST_SFTP_KNOWN_HOSTS_WRONG=$dir/known_hosts_wrong
PANNIER_TEST_SFTP_ROOT=$dir/root
PANNIER_TEST_SFTP_PASSWORD_PORT=$pwport
PANNIER_TEST_SFTP_PASSWORD_USER=pannier
PANNIER_TEST_SFTP_PASSWORD=$password
PANNIER_TEST_SFTP_PASSWORD_ROOT=$dir/pwroot
EOF
  echo "sshd on 127.0.0.1:$port (key login), rclone serve sftp on 127.0.0.1:$pwport (password)"
}

case "${1:-}" in
  start) start ;;
  stop) stop_pids "$name" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
