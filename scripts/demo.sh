#!/usr/bin/env bash
# The main job on one machine: a registry + SSH gateway on a temp folder, a
# demo user with one forwarding rule, and the client connected to it.
#
#   scripts/demo.sh            # then, in another terminal:
#   curl http://127.0.0.1:18088/api/v1/health     (through the tunnel)
#
# Ports: the gateway on 10022, the API and admin page on 10088 and the
# forward on 18088 when they are free; when one is taken (another service)
# a free one is picked and printed. Choose them yourself with
#   scripts/demo.sh --ssh PORT --api PORT --local PORT     (0 = any free port)
# or PRA_DEMO_SSH / PRA_DEMO_API / PRA_DEMO_LOCAL. --no-deps skips
# scripts/deps.sh (for a machine already set up); PRA_DEMO_BIN=DIR uses the
# pra and pra-registry binaries in DIR instead of building.
#
# It prints the admin page's address and a sign-in token for it.
# Ctrl-C stops the client and the gateway; the temp folder is kept and named.
set -euo pipefail
cd "$(dirname "$0")/.."

SSH_PORT="${PRA_DEMO_SSH:-}"
API_PORT="${PRA_DEMO_API:-}"
LOCAL_PORT="${PRA_DEMO_LOCAL:-}"
DEPS=1
usage() { sed -n '2,18s/^# \{0,1\}//p' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --ssh) SSH_PORT="${2:?--ssh needs a port}"; shift 2 ;;
    --api) API_PORT="${2:?--api needs a port}"; shift 2 ;;
    --local) LOCAL_PORT="${2:?--local needs a port}"; shift 2 ;;
    --ssh=*) SSH_PORT="${1#*=}"; shift ;;
    --api=*) API_PORT="${1#*=}"; shift ;;
    --local=*) LOCAL_PORT="${1#*=}"; shift ;;
    --no-deps) DEPS=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
for p in "$SSH_PORT" "$API_PORT" "$LOCAL_PORT"; do
  case "$p" in ''|*[!0-9]*) [ -z "$p" ] || { echo "demo: '$p' is not a port number" >&2; exit 2; } ;; esac
done

# True when something listens on 127.0.0.1:$1.
taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# The preferred port when free, else 0 (the registry picks a free one).
prefer() { if taken "$1"; then echo 0; else echo "$1"; fi; }
[ -n "$SSH_PORT" ] || SSH_PORT="$(prefer 10022)"
[ -n "$API_PORT" ] || API_PORT="$(prefer 10088)"
if [ -z "$LOCAL_PORT" ] || [ "$LOCAL_PORT" = 0 ]; then
  LOCAL_PORT=18088
  while taken "$LOCAL_PORT"; do LOCAL_PORT=$((LOCAL_PORT + 1)); done
fi

[ "$DEPS" = 0 ] || bash scripts/deps.sh
if [ -n "${PRA_DEMO_BIN:-}" ]; then
  BIN="$PRA_DEMO_BIN"   # pra and pra-registry already built there (tests)
else
  cargo build --workspace --bins --quiet
  BIN="$PWD/target/debug"
fi

DEMO="$(mktemp -d -t pra-demo.XXXXXX)"
export PRA_REGISTRY_DATA="$DEMO/registry"
export PRA_HOME="$DEMO/client"
export PRA_PASSPHRASE="demo passphrase, not for real use"
echo "demo folder: $DEMO"

reg() { "$BIN/pra-registry" "$@"; }
pra() { "$BIN/pra" "$@"; }

# Registry + gateway in the background; the addresses they really got are
# read from their first lines.
reg user add demo
reg serve --ssh "127.0.0.1:$SSH_PORT" --api "127.0.0.1:$API_PORT" >"$DEMO/serve.out" 2>"$DEMO/serve.err" &
SERVE_PID=$!
trap 'kill $SERVE_PID 2>/dev/null || true; wait $SERVE_PID 2>/dev/null || true; echo "demo stopped; files kept in $DEMO"' EXIT
for _ in $(seq 300); do
  grep -q "^ssh listening" "$DEMO/serve.out" 2>/dev/null && break
  kill -0 $SERVE_PID 2>/dev/null || { cat "$DEMO/serve.err"; exit 1; }
  sleep 0.1
done
API_ADDR="$(sed -n 's/^api listening on \(.*\)$/\1/p' "$DEMO/serve.out")"
SSH_ADDR="$(sed -n 's/^ssh listening on \([^ ]*\) host key .*/\1/p' "$DEMO/serve.out")"
HOST_KEY="$(sed -n 's/^ssh listening on .* host key \(SHA256:[^ ]*\).*/\1/p' "$DEMO/serve.out")"
[ -n "$HOST_KEY" ] && [ -n "$API_ADDR" ] || { echo "gateway did not start:"; cat "$DEMO/serve.out" "$DEMO/serve.err"; exit 1; }
cat "$DEMO/serve.out"

# One rule: the registry's own API stands in for an internal web server
# (a new rule is seen at the next connect, no restart).
reg rule add --user demo --name intranet --local "$LOCAL_PORT" --target "$API_ADDR"

# The admin page and a token to sign in with.
TOKEN="$(reg token create --name demo-admin 2>/dev/null)"
echo "admin page: http://$API_ADDR/admin"
echo "sign-in token: $TOKEN"

# Employee: gateway address with the pinned host key, a key, submission.
pra server set "$SSH_ADDR" --host-key "$HOST_KEY"
pra keygen --user demo
pra key submit --registry "http://$API_ADDR"

# Admin: approve the pending key.
FP="$(reg key list --status pending --json | sed -n 's/.*"fingerprint": *"\(SHA256:[^"]*\)".*/\1/p' | head -n1)"
reg key approve "$FP"

echo
echo "connected forwards follow; try:  curl http://127.0.0.1:$LOCAL_PORT/api/v1/health"
echo "Ctrl-C to stop."
pra connect
