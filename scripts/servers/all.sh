#!/usr/bin/env bash
# Start, stop or show the local test servers, all bound to 127.0.0.1.
#
#   scripts/servers/all.sh start [NAME...]   start (default: every server script here)
#   scripts/servers/all.sh stop  [NAME...]   stop what was started, by PID
#   scripts/servers/all.sh status
#
# Each server is a script scripts/servers/NAME.sh taking start|stop. A started server
# writes its PIDs to $PANNIER_SERVERS_DIR/NAME.pid and its connection facts as KEY=VALUE
# lines to $PANNIER_SERVERS_DIR/NAME.env, which the tests read (tests/servers.py).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
export PANNIER_SERVERS_DIR="${PANNIER_SERVERS_DIR:-$top/.servers}"
mkdir -p "$PANNIER_SERVERS_DIR"
action="${1:-status}"; shift || true
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in "$here"/*.sh; do
    n="$(basename "$f" .sh)"; [ "$n" = all ] || [ "$n" = lib ] || names+=("$n")
  done
fi
rc=0
case "$action" in
  start)
    for n in "${names[@]}"; do
      start=$(date +%s.%N)
      if bash "$here/$n.sh" start > "$PANNIER_SERVERS_DIR/$n.log" 2>&1; then
        printf 'server %-16s started in %.1fs\n' "$n" "$(echo "$(date +%s.%N) - $start" | bc)"
      else
        echo "server $n FAILED to start; last lines of $PANNIER_SERVERS_DIR/$n.log:" >&2
        tail -n 20 "$PANNIER_SERVERS_DIR/$n.log" >&2
        rc=1
      fi
    done ;;
  stop)
    for n in "${names[@]}"; do bash "$here/$n.sh" stop >> "$PANNIER_SERVERS_DIR/$n.log" 2>&1 || rc=1; done ;;
  status)
    # running = its facts are written and every PID it recorded is alive
    for n in "${names[@]}"; do
      if [ ! -f "$PANNIER_SERVERS_DIR/$n.env" ]; then echo "$n: stopped"; continue; fi
      pids="$(tr '\n' ' ' < "$PANNIER_SERVERS_DIR/$n.pid" 2>/dev/null)"
      dead=""
      for p in $pids; do kill -0 "$p" 2>/dev/null || dead+="$p "; done
      if [ -z "$pids" ]; then echo "$n: unknown (no pids recorded)"; rc=1
      elif [ -n "$dead" ]; then echo "$n: BROKEN (pids ${dead% } gone; restart it)"; rc=1
      else echo "$n: running (pids ${pids% })"; fi
    done ;;
  *) echo "usage: $0 start|stop|status [NAME...]" >&2; exit 2 ;;
esac
exit $rc
