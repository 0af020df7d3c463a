#!/usr/bin/env bash
# The main job on one machine: a registry + SSH gateway on a temp folder, a
# demo user with one forwarding rule, and the client connected to it.
#
#   scripts/demo.sh            # then, in another terminal:
#   curl http://127.0.0.1:18088/api/v1/health     (through the tunnel)
#
# Ctrl-C stops the client and the gateway; the temp folder is kept and named.
# Ports can be moved: PRA_DEMO_SSH (10022), PRA_DEMO_API (10088), PRA_DEMO_LOCAL (18088).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cargo build --workspace --bins --quiet
BIN="$PWD/target/debug"

SSH_PORT="${PRA_DEMO_SSH:-10022}"
API_PORT="${PRA_DEMO_API:-10088}"
LOCAL_PORT="${PRA_DEMO_LOCAL:-18088}"
DEMO="$(mktemp -d -t pra-demo.XXXXXX)"
export PRA_REGISTRY_DATA="$DEMO/registry"
export PRA_HOME="$DEMO/client"
export PRA_PASSPHRASE="demo passphrase, not for real use"
echo "demo folder: $DEMO"

reg() { "$BIN/pra-registry" "$@"; }
pra() { "$BIN/pra" "$@"; }

# Registry: one user, one rule (the registry's own API stands in for an
# internal web server), then the registry + gateway in the background.
reg user add demo
reg rule add --user demo --name intranet --local "$LOCAL_PORT" --target "127.0.0.1:$API_PORT"
reg serve --ssh "127.0.0.1:$SSH_PORT" --api "127.0.0.1:$API_PORT" >"$DEMO/serve.out" 2>"$DEMO/serve.err" &
SERVE_PID=$!
trap 'kill $SERVE_PID 2>/dev/null || true; wait $SERVE_PID 2>/dev/null || true; echo "demo stopped; files kept in $DEMO"' EXIT
for _ in $(seq 100); do
  grep -q "^ssh listening" "$DEMO/serve.out" 2>/dev/null && break
  kill -0 $SERVE_PID 2>/dev/null || { cat "$DEMO/serve.err"; exit 1; }
  sleep 0.1
done
HOST_KEY="$(sed -n 's/^ssh listening on .* host key \(SHA256:[^ ]*\).*/\1/p' "$DEMO/serve.out")"
[ -n "$HOST_KEY" ] || { echo "gateway did not start:"; cat "$DEMO/serve.out" "$DEMO/serve.err"; exit 1; }
cat "$DEMO/serve.out"

# Employee: gateway address with the pinned host key, a key, submission.
pra server set "127.0.0.1:$SSH_PORT" --host-key "$HOST_KEY"
pra keygen --user demo
pra key submit --registry "http://127.0.0.1:$API_PORT"

# Admin: approve the pending key.
FP="$(reg key list --status pending --json | sed -n 's/.*"fingerprint": *"\(SHA256:[^"]*\)".*/\1/p' | head -n1)"
reg key approve "$FP"

echo
echo "connected forwards follow; try:  curl http://127.0.0.1:$LOCAL_PORT/api/v1/health"
echo "Ctrl-C to stop."
pra connect
