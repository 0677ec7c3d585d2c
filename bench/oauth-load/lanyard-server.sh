# Sourced by the load scripts of this directory: starts `lanyard server` in its zero-config
# shape (SQLite in a fresh data directory, release build, the default log level: one audit
# line per token request, written to $WORK/lanyard.log) under $WORK, on
# 127.0.0.1:18080 (public), :18081 (agent API) and :18443 (mutual TLS), waits until it
# answers, and sets lanyard_pid. Needs $WORK and $lanyard (the binary); the TOML in
# $WORK/server-extra.toml, if present, is appended to the [oauth] table.
start_lanyard_server() {
  cat >"$WORK/server.toml" <<TOML
data_dir = "$WORK/lanyard-data"
public_address = "127.0.0.1:18080"
agent_address = "127.0.0.1:18081"
admin_socket = "$WORK/admin.sock"

[oauth]
mtls_address = "127.0.0.1:18443"
TOML
  if [ -f "$WORK/server-extra.toml" ]; then cat "$WORK/server-extra.toml" >>"$WORK/server.toml"; fi
  "$lanyard" server --config "$WORK/server.toml" >"$WORK/lanyard.log" 2>&1 &
  lanyard_pid=$!
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null http://127.0.0.1:18080/healthz && return 0
    sleep 0.2
  done
  kill "$lanyard_pid" 2>/dev/null || true
  echo "lanyard server did not answer (see $WORK/lanyard.log)" >&2
  return 1
}
