# Shared helpers for the server scripts (sourced, not run).
# shellcheck shell=bash
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVERS_DIR="${PANNIER_SERVERS_DIR:-$top/.servers}"
mkdir -p "$SERVERS_DIR"

# free_port: print a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_tcp PORT [SECONDS]: wait until 127.0.0.1:PORT accepts connections.
wait_tcp() {
  local port=$1 limit=${2:-30} i=0
  while ! python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1',$port)))" 2>/dev/null; do
    i=$((i+1)); [ $i -ge $((limit*5)) ] && return 1; sleep 0.2
  done
}

# stop_pids NAME: stop every PID in NAME.pid (TERM, then KILL), remove NAME.pid and NAME.env.
stop_pids() {
  local name=$1 pidfile="$SERVERS_DIR/$1.pid" pid
  if [ -f "$pidfile" ]; then
    while read -r pid; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done < "$pidfile"
    sleep 0.5
    while read -r pid; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; done < "$pidfile"
  fi
  rm -f "$pidfile" "$SERVERS_DIR/$name.env"
}
