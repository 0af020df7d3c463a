#!/usr/bin/env bash
# Windows lane (part of scripts/test.sh): the cross-built pra.exe and
# pra-gui.exe, installed from the real .msi into a throwaway Wine prefix,
# run end to end against a Linux `pra-registry serve` on 127.0.0.1.
#
#   install (msiexec /qn) -> server set with host-key pin -> keygen -> key
#   export -> pra-registry key import --approve -> connect, HTTP through the
#   forward, WAR(10102) for a port a Linux process holds -> doctor -> logs
#   export -> PC binding (machine id changed, key copied to a second prefix)
#   -> upgrade to a newer .msi -> uninstall (keeps data) -> PURGE_DATA=1
#   -> pra-gui.exe under Xvfb (window, Connect clicked, screenshot) -> pra-gui.exe
#   in an empty home: "Enroll with an invite…", invite and passphrase typed,
#   Enroll pressed, key approved in the registry, pra.exe key show.
#
# Wine 8 lacks bcryptprimitives.dll!ProcessPrng, which Rust's std imports:
# scripts/wine/processprng.c is built into the prefix's system32 (test-only;
# the .msi never holds it). WINEDEBUG=-all; one Xvfb for the whole lane.
# A "panicked" in the output of any pra.exe / pra-gui.exe run fails the lane.
# Ends with "windows lane: N passed, M failed"; exit status 1 on any failure.
#
# Usage: scripts/windows-test.sh [MSI NEWER_MSI]
#   Without arguments the two .msi files are built with installer/build.sh
#   --fast (the second with a higher version). Output (logs, screenshot):
#   $PRA_WINDOWS_LANE_OUT, default target/windows-lane.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${PRA_WINDOWS_LANE_OUT:-$TARGET_DIR/windows-lane}"
BIN="$TARGET_DIR/debug"
started=$SECONDS

CHECK_TIMING=1
# shellcheck source=scripts/checks.sh
. "$ROOT/scripts/checks.sh"
PIDS=()
PREFIXES=()
cleanup() {
  local p
  # Wine first (its programs still talk to Xvfb), then the rest.
  for p in "${PREFIXES[@]}"; do WINEPREFIX="$p" wineserver -k 2>/dev/null; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  [ -z "${T:-}" ] || rm -rf "$T"
  PIDS=()
  PREFIXES=()
}
finish() {
  trap - EXIT
  cleanup
  echo "windows lane: $pass passed, $fail failed (in $((SECONDS - started)) s; output in $OUT)"
  [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
  exit $?
}
has() { grep -qF -- "$2" "$1"; } # FILE TEXT

missing=""
for t in wine wineserver wineboot msiexec x86_64-w64-mingw32-gcc msiinfo Xvfb xdotool import \
  unzip curl timeout sha256sum; do
  command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
  bad "tools present (missing:$missing; run scripts/deps.sh)"
  finish
fi
[ -x "$BIN/pra-registry" ] || { bad "$BIN/pra-registry is built (cargo build -p pra-registry)"; finish; }

rm -rf "$OUT"
mkdir -p "$OUT/logs"
T="$(mktemp -d -t pra-winlane.XXXXXX)"
trap cleanup EXIT

# --- the two .msi files ------------------------------------------------------
MSI="${1:-}"
MSI2="${2:-}"
if [ -z "$MSI" ]; then
  if ! "$ROOT/installer/build.sh" --fast --out "$T/v1" >"$OUT/logs/build1.log" 2>&1; then
    bad "installer/build.sh --fast"
    tail -20 "$OUT/logs/build1.log" | sed 's/^/     | /'
    finish
  fi
  MSI="$(ls "$T"/v1/pra-*-x64.msi)"
fi
V="$(basename "$MSI" | sed 's/^pra-\(.*\)-x64\.msi$/\1/')"
if [ -z "$MSI2" ]; then
  V2="${V%.*}.$((${V##*.} + 1))"
  if ! PRA_PACKAGE_VERSION="$V2" "$ROOT/installer/build.sh" --fast --out "$T/v2" >"$OUT/logs/build2.log" 2>&1; then
    bad "installer/build.sh --fast (version $V2)"
    finish
  fi
  MSI2="$T/v2/pra-$V2-x64.msi"
fi
V2="$(basename "$MSI2" | sed 's/^pra-\(.*\)-x64\.msi$/\1/')"
cp "$MSI" "$MSI2" "$T/"
MSI="$T/$(basename "$MSI")"
MSI2="$T/$(basename "$MSI2")"
check "two .msi files: $V and newer $V2" test -s "$MSI" -a -s "$MSI2" -a "$V" != "$V2"
check "the .msi does not ship the test-only ProcessPrng shim" \
  bash -c '! msiinfo export "$1" File | grep -qi bcryptprimitives' _ "$MSI"

# --- display, prefix, shim ---------------------------------------------------
export WINEDEBUG=-all WINEARCH=win64
# No Mono/Gecko download prompts in a fresh prefix.
export WINEDLLOVERRIDES="mscoree,mshtml="
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$T/display" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/display" ] && break; sleep 0.1; done
export DISPLAY=":$(cat "$T/display")"
check "Xvfb on $DISPLAY" test "$DISPLAY" != ":"

x86_64-w64-mingw32-gcc -shared -O2 -s -o "$T/bcryptprimitives.dll" \
  "$ROOT/scripts/wine/processprng.c" "$ROOT/scripts/wine/processprng.def" -ladvapi32 \
  >"$OUT/logs/shim.log" 2>&1
check "ProcessPrng shim built (bcryptprimitives.dll)" test -s "$T/bcryptprimitives.dll"

# new_prefix DIR: a fresh Wine prefix with the shim in system32.
new_prefix() {
  WINEPREFIX="$1" timeout 180 wineboot -i >"$OUT/logs/wineboot-$(basename "$1").log" 2>&1 &&
    WINEPREFIX="$1" timeout 60 wineserver -w &&
    cp "$T/bcryptprimitives.dll" "$1/drive_c/windows/system32/bcryptprimitives.dll"
}
export WINEPREFIX="$T/pc1"
PREFIXES+=("$WINEPREFIX")
check "Wine prefix made (wineboot, $(wine --version 2>/dev/null))" new_prefix "$WINEPREFIX"

# Windows paths of Linux files (Wine maps / to Z:).
winpath() { echo "Z:${1//\//\\}"; }
PRA_EXE='C:\Program Files\PRA\pra.exe'
GUI_EXE='C:\Program Files\PRA\pra-gui.exe'
C="$WINEPREFIX/drive_c"
DATA="$C/ProgramData/Pra"
n=0
# pra ARGS...: run the installed pra.exe; output in $OUT/logs/NN-pra-ARG1.log,
# its path in $LOG; returns pra's exit status.
pra() {
  n=$(($(ls "$OUT/logs" | wc -l) + 1))
  local cmd="$1"
  [ "$1" != --home ] || cmd="$3"
  LOG="$OUT/logs/$(printf %02d $n)-pra-${cmd#--}.log"
  timeout 120 wine "$PRA_EXE" "$@" >"$LOG" 2>&1
}
reg() { "$BIN/pra-registry" --data "$T/registry" "$@"; }

# --- install -------------------------------------------------------------------
check "msiexec /i pra-$V-x64.msi /qn" timeout 180 wine msiexec /i "$(winpath "$MSI")" /qn
check "installed C:\\Program Files\\PRA\\pra.exe and pra-gui.exe, C:\\ProgramData\\Pra\\log" \
  test -f "$C/Program Files/PRA/pra.exe" -a -f "$C/Program Files/PRA/pra-gui.exe" -a -d "$DATA/log"
pra --version
check "pra.exe --version runs (ProcessPrng shim works)" grep -q "^pra [0-9]" "$LOG"

# --- gateway: Linux pra-registry on 127.0.0.1 --------------------------------------
free_port() { # a port nothing listens on (tries random ones)
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  return 1
}
# serve DATA_DIR LOG API: a pra-registry serve in the background; waits
# for its "listening" lines.
serve() {
  "$BIN/pra-registry" --data "$1" serve --ssh 127.0.0.1:0 --api "$3" >"$2" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do
    grep -q "^ssh listening" "$2" 2>/dev/null && return 0
    kill -0 "${PIDS[-1]}" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
# (Not through `check`: its subshell would lose the background pid.)
if serve "$T/registry" "$OUT/logs/serve.log" 127.0.0.1:0; then
  ok "pra-registry serve on 127.0.0.1 (SSH and API on free ports)"
else
  bad "pra-registry serve on 127.0.0.1"
  sed 's/^/     | /' "$OUT/logs/serve.log"
  finish
fi
SSH_ADDR="$(sed -n 's/^ssh listening on \([^ ]*\) host key .*/\1/p' "$OUT/logs/serve.log")"
HOST_KEY="$(sed -n 's/^ssh listening on .* host key \(SHA256:[^ ]*\).*/\1/p' "$OUT/logs/serve.log")"
API_ADDR="$(sed -n 's/^api listening on \(.*\)$/\1/p' "$OUT/logs/serve.log")"
WEB_PORT="$(free_port)"
BUSY_PORT="$(free_port)"
while [ "$BUSY_PORT" = "$WEB_PORT" ]; do BUSY_PORT="$(free_port)"; done

# --- client: server set, keygen, export ----------------------------------------------
export PRA_PASSPHRASE="winlane passphrase $RANDOM$RANDOM"
check "pra.exe server set $SSH_ADDR --host-key $HOST_KEY" pra server set "$SSH_ADDR" --host-key "$HOST_KEY"
check "config.toml in C:\\ProgramData\\Pra" grep -q "$HOST_KEY" "$DATA/config.toml"
if pra keygen --user alice; then ok "pra.exe keygen --user alice (PRA_PASSPHRASE)"; else
  bad "pra.exe keygen --user alice"
  sed 's/^/     | /' "$LOG"
fi
KEYGEN_LOG="$LOG"
sed -n 's/^/     | /; /^     | \(bound to\|WAR\)/p' "$KEYGEN_LOG"
check "keygen printed the fingerprint and what the key is bound to" \
  bash -c 'grep -q "^256 SHA256:" "$1" && grep -q "^bound to: .*computer" "$1"' _ "$KEYGEN_LOG"
check "key file and metadata in C:\\ProgramData\\Pra" test -s "$DATA/pra_ed25519" -a -s "$DATA/pra_ed25519.meta"
pra key show
check "pra.exe key show: user, bound attributes incl. the OS machine id (MachineGuid)" \
  bash -c 'grep -q "^user: alice" "$1" && grep -q "^bound to: .*OS machine id" "$1" || { cat "$1"; exit 1; }' _ "$LOG"
# The key file's ACL: pra.exe runs icacls (inheritance off; the user,
# SYSTEM, Administrators only). Wine's icacls is a stub that accepts and
# logs the call (fixme channel) but sets nothing, so the call is checked.
n=$(($(ls "$OUT/logs" | wc -l) + 1))
WINEDEBUG=fixme+icacls timeout 120 wine "$PRA_EXE" --home 'C:\acl-test' keygen --user bob >"$OUT/logs/$n-pra-keygen-acl.log" 2>&1
check "key file ACL: icacls /inheritance:r /grant:r USER:F SYSTEM:F Administrators:F on the new key" bash -c '
  grep -q "icacls.*acl-test.*pra_ed25519.*\"/inheritance:r\" \"/grant:r\" \"[^\"]*:F\" \"\*S-1-5-18:F\" \"\*S-1-5-32-544:F\"" "$1" ||
    { cat "$1"; exit 1; }' _ "$OUT/logs/$n-pra-keygen-acl.log"
check "pra.exe key export to a file" pra key export "$(winpath "$T/alice.pub")"
check "exported file starts with an OpenSSH ssh-ed25519 line" bash -c 'head -1 "$1" | grep -q "^ssh-ed25519 AAAA"' _ "$T/alice.pub"

# --- admin: user, import + approve, rules ------------------------------------------------
check "pra-registry user add alice" reg user add alice
check "pra-registry key import FILE --approve" reg key import "$T/alice.pub" --approve
check "pra-registry rules: web on $WEB_PORT, busy on $BUSY_PORT (both to the API $API_ADDR)" bash -c '
  "$1" --data "$2" rule add --user alice --name web --local "$3" --target "$5" &&
  "$1" --data "$2" rule add --user alice --name busy --local "$4" --target "$5"' _ \
  "$BIN/pra-registry" "$T/registry" "$WEB_PORT" "$BUSY_PORT" "$API_ADDR"

# --- enroll with an invite (pra.exe enroll against the Linux gateway) ----------------
# Its own home folder: an invite made with --approve sets the gateway, pins
# the host key, makes the key and hands it over on the SSH port.
check "pra-registry user add erin" reg user add erin
INVITE="$(reg invite create --user erin --gateway "$SSH_ADDR" --approve 2>/dev/null)"
if pra --home 'C:\enroll-test' enroll "$INVITE"; then ok "pra.exe enroll INVITE (PRA_PASSPHRASE)"; else
  bad "pra.exe enroll INVITE"
  sed 's/^/     | /' "$LOG"
fi
ENROLL_LOG="$LOG"
check "pra.exe enroll printed the fingerprint and approved; the registry has the key approved" bash -c '
  fp="$(sed -n "s/^fingerprint: \(SHA256:[^ ]*\).*/\1/p" "$1" | tr -d "\r")"
  [ -n "$fp" ] && grep -q "^enrolled .* as user erin: approved" "$1" &&
    "$2" --data "$3" key list --status approved | grep -q "$fp" || { cat "$1"; exit 1; }' _ \
  "$ENROLL_LOG" "$BIN/pra-registry" "$T/registry"
check "enroll pinned the host key in C:\\enroll-test\\config.toml" grep -q "$HOST_KEY" "$C/enroll-test/config.toml"
pra --home 'C:\enroll-test-2' enroll "$INVITE"
check "pra.exe enroll with the used invite: ERR(10252)" grep -q "^ERR(10252) " "$LOG"

# A Linux process holds the busy rule's port: a second registry's API.
if serve "$T/holder" "$OUT/logs/holder.log" "127.0.0.1:$BUSY_PORT"; then
  ok "a Linux process holds 127.0.0.1:$BUSY_PORT"
else
  bad "a Linux process holds 127.0.0.1:$BUSY_PORT"
fi
HOLDER_PID="${PIDS[-1]}"

# --- connect -------------------------------------------------------------------------------
CONNECT_LOG="$OUT/logs/connect.log"
wine "$PRA_EXE" connect >"$CONNECT_LOG" 2>&1 &
CONNECT_PID=$!
PIDS+=($CONNECT_PID)
wait_for_new() { # FILE LINES REGEX SECONDS: REGEX in FILE after its first LINES lines
  local i
  for i in $(seq $(($4 * 10))); do
    tail -n +"$(($2 + 1))" "$1" 2>/dev/null | grep -qE -- "$3" && return 0
    sleep 0.1
  done
  echo "not found within $4 s: $3"
  tail -n +"$(($2 + 1))" "$1"
  return 1
}
wait_for() { # FILE REGEX SECONDS
  local i
  for i in $(seq $(($3 * 10))); do
    grep -qE -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "not found within $3 s: $2"
  cat "$1"
  return 1
}
check "pra.exe connect: web forward up" wait_for "$CONNECT_LOG" "^web .*127\.0\.0\.1:$WEB_PORT.*forwarding" 60
check "pra.exe connect: WAR(10102) for local port $BUSY_PORT held by a Linux process" \
  wait_for "$CONNECT_LOG" "WAR\(10102\).*$BUSY_PORT" 30
check "HTTP through the forward: curl http://127.0.0.1:$WEB_PORT/api/v1/health" \
  bash -c 'curl -fsS --max-time 20 "http://127.0.0.1:$1/api/v1/health" | tee /dev/stderr | grep -q .' _ "$WEB_PORT"
kill "$CONNECT_PID" 2>/dev/null
wait "$CONNECT_PID" 2>/dev/null
timeout 20 wine taskkill /f /im pra.exe >/dev/null 2>&1
kill "$HOLDER_PID" 2>/dev/null
wait "$HOLDER_PID" 2>/dev/null

# --- doctor, logs export ------------------------------------------------------------------
pra doctor
DOCTOR_LOG="$LOG"
check "pra.exe doctor: all checks pass once the port is free" \
  bash -c 'grep -q "^OK   key unlocks on this PC: SHA256:" "$1" && grep -q "^OK   key approved" "$1" &&
    grep -q "^doctor: all [0-9]* checks passed" "$1" || { cat "$1"; exit 1; }' _ "$DOCTOR_LOG"
check "pra.exe logs export to a zip" pra logs export "$(winpath "$T/logs.zip")"
check "the zip holds System.log and User.log (from C:\\ProgramData\\Pra\\log)" bash -c '
  list="$(unzip -Z1 "$1")" && grep -q "System\.log$" <<<"$list" && grep -q "User\.log$" <<<"$list" &&
  test -s "$2/log/System.log" -a -s "$2/log/User.log" || { echo "$list"; ls -R "$2"; exit 1; }' _ "$T/logs.zip" "$DATA"
check "no passphrase in the zip nor in C:\\ProgramData\\Pra\\log" bash -c '
  ! unzip -p "$1" | grep -aqF "$PRA_PASSPHRASE" && ! grep -rqF "$PRA_PASSPHRASE" "$2/log"' _ "$T/logs.zip" "$DATA"

# --- PC binding ----------------------------------------------------------------------------
GUID_KEY='HKLM\Software\Microsoft\Cryptography'
guid="$(wine reg query "$GUID_KEY" /v MachineGuid 2>/dev/null | tr -d '\r' | awk '/MachineGuid/ {print $NF}')"
check "MachineGuid read from the Wine registry" test -n "$guid"
wine reg add "$GUID_KEY" /v MachineGuid /t REG_SZ /d 0badc0de-1111-2222-3333-444455556666 /f >/dev/null 2>&1
pra doctor
check "MachineGuid changed: ERR(10193) naming the OS machine id" bash -c '
  grep -q "^FAIL key unlocks on this PC: ERR(10193) .*OS machine id" "$1" || { cat "$1"; exit 1; }' _ "$LOG"
wine reg add "$GUID_KEY" /v MachineGuid /t REG_SZ /d "$guid" /f >/dev/null 2>&1
pra doctor
check "MachineGuid restored: the key opens again" grep -q "^OK   key unlocks on this PC" "$LOG"

# An identity source that fails (MachineGuid deleted: no machine id) is
# "unavailable", not a crash: keygen works and says WAR(10107); key show
# and doctor repeat it; with the MachineGuid back, that key still opens.
wine reg delete "$GUID_KEY" /v MachineGuid /f >/dev/null 2>&1
n=$(($(ls "$OUT/logs" | wc -l) + 1))
LOG="$OUT/logs/$n-pra-keygen-unavailable.log"
timeout 120 wine "$PRA_EXE" --home 'C:\unavailable-test' keygen --user carol >"$LOG" 2>&1
check "MachineGuid missing: keygen works and says WAR(10107) naming the OS machine id" bash -c '
  grep -q "^256 SHA256:" "$1" && grep -q "^WAR(10107) not readable on this PC, so not bound: OS machine id (machine id: " "$1" ||
    { cat "$1"; exit 1; }' _ "$LOG"
pra --home 'C:\unavailable-test' key show
check "pra.exe key show repeats the WAR(10107) line" grep -q "^WAR(10107) not readable on this PC, so not bound: OS machine id" "$LOG"
pra --home 'C:\unavailable-test' doctor
check "pra.exe doctor: OK   PC identity readable: WAR(10107) ... machine id" bash -c '
  grep -q "^OK   PC identity readable: WAR(10107) .*OS machine id" "$1" && grep -q "^OK   key unlocks on this PC" "$1" ||
    { cat "$1"; exit 1; }' _ "$LOG"
wine reg add "$GUID_KEY" /v MachineGuid /t REG_SZ /d "$guid" /f >/dev/null 2>&1
pra --home 'C:\unavailable-test' doctor
check "MachineGuid back: the key made without it still opens on this PC" bash -c '
  grep -q "^OK   key unlocks on this PC" "$1" && ! grep -q "PC identity readable" "$1" || { cat "$1"; exit 1; }' _ "$LOG"

# The computer name (Wine answers GetComputerNameEx's DNS host name from
# the Tcpip parameters in its registry).
HOST_KEY_REG='HKLM\System\CurrentControlSet\Services\Tcpip\Parameters'
host="$(wine reg query "$HOST_KEY_REG" /v Hostname 2>/dev/null | tr -d '\r' | awk '/Hostname/ {print $NF}')"
check "host name read from the Wine registry" test -n "$host"
hostname_now() { wine reg query "$HOST_KEY_REG" /v Hostname 2>/dev/null | tr -d '\r' | awk '/Hostname/ {print $NF}'; }
wine reg add "$HOST_KEY_REG" /v Hostname /t REG_SZ /d pra-other-pc /f >/dev/null 2>&1
pra doctor
# Wine may write the Unix host name back into that key when its server
# restarts between two commands (seen once in about ten lane runs): if the
# key no longer holds the new name, set it again and ask once more.
if grep -q "^OK   key unlocks on this PC" "$LOG" && [ "$(hostname_now)" != pra-other-pc ]; then
  echo "  (Wine reset the host name to $(hostname_now); set again)"
  wine reg add "$HOST_KEY_REG" /v Hostname /t REG_SZ /d pra-other-pc /f >/dev/null 2>&1
  pra doctor
fi
check "computer name changed: ERR(10193) naming it (was ..., now pra-other-pc)" bash -c '
  grep -q "^FAIL key unlocks on this PC: ERR(10193) .*computer name (was .*, now pra-other-pc)" "$1" ||
    { cat "$1"; exit 1; }' _ "$LOG"
wine reg add "$HOST_KEY_REG" /v Hostname /t REG_SZ /d "$host" /f >/dev/null 2>&1
pra doctor
check "computer name restored: the key opens again" grep -q "^OK   key unlocks on this PC" "$LOG"

# The key file copied to another "PC" (a second prefix, its own MachineGuid).
PC2="$T/pc2"
PREFIXES+=("$PC2")
if WINEPREFIX="$PC2" new_prefix "$PC2"; then
  mkdir -p "$PC2/drive_c/ProgramData"
  cp -a "$DATA" "$PC2/drive_c/ProgramData/Pra"
  n=$((n + 1))
  LOG="$OUT/logs/$(printf %02d $n)-pc2-doctor.log"
  WINEPREFIX="$PC2" timeout 120 wine "$(winpath "$C/Program Files/PRA/pra.exe")" doctor >"$LOG" 2>&1
  check "key copied into a second prefix does not open: ERR(10193)" bash -c '
    grep -q "^FAIL key unlocks on this PC: ERR(10193) .*not the PC it was made on" "$1" || { cat "$1"; exit 1; }' _ "$LOG"
  WINEPREFIX="$PC2" wineserver -k 2>/dev/null
else
  bad "second Wine prefix made"
fi

# --- upgrade: the newer .msi over the old one ---------------------------------------------
datasum() { (cd "$DATA" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }
uninstall_entries() {
  wine reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s 2>/dev/null | tr -d '\r'
}
before="$(datasum)"
check "data to keep: key, metadata, config, System.log, User.log" bash -c '
  for f in ./pra_ed25519 ./pra_ed25519.meta ./config.toml ./log/System.log ./log/User.log; do
    grep -q "  $f\$" <<<"$1" || { echo "missing $f"; exit 1; }; done' _ "$before"
check "msiexec /i pra-$V2-x64.msi /qn over $V (upgrade)" timeout 180 wine msiexec /i "$(winpath "$MSI2")" /qn
check "one PRA installed, version $V2" bash -c '
  [ "$(grep -c "DisplayName *REG_SZ *PRA$" <<<"$1")" = 1 ] && grep -q "DisplayVersion *REG_SZ *${2%%[-+]*}$" <<<"$1" ||
    { grep -E "DisplayName|DisplayVersion" <<<"$1"; exit 1; }' _ "$(uninstall_entries)" "$V2"
check "upgrade kept key, config and logs (byte for byte)" test "$(datasum)" = "$before"
pra doctor
check "after the upgrade: same key opens, login and rules without a new approval" bash -c '
  grep -q "^OK   key unlocks on this PC" "$1" && grep -q "^OK   key approved" "$1" &&
  grep -q "^doctor: all [0-9]* checks passed" "$1" || { cat "$1"; exit 1; }' _ "$LOG"

# --- pra-gui.exe under Xvfb ----------------------------------------------------------------
# A Linux process holds the busy rule's port again: the window shows one
# forward up and one busy. No PRA_PASSPHRASE: the passphrase dialog asks,
# with "Remember on this PC" (Windows Credential Manager) ticked.
if serve "$T/holder2" "$OUT/logs/holder2.log" "127.0.0.1:$BUSY_PORT"; then HOLDER_PID="${PIDS[-1]}"; fi
shot() { import -window root "$OUT/$1.png" 2>/dev/null; }
gui_window() { # waits for the top-level window "PRA"; prints its id
  local w
  for _ in $(seq 120); do
    w="$(xdotool search --onlyvisible --name '^PRA$' 2>/dev/null | head -1)"
    [ -n "$w" ] && { echo "$w"; return 0; }
    sleep 0.25
  done
  return 1
}
click() { # WINDOW X Y (window-relative)
  xdotool mousemove --window "$1" "$2" "$3" click 1 2>/dev/null
}
user_log_lines() { wc -l <"$DATA/log/User.log" 2>/dev/null || echo 0; }
marker="$(user_log_lines)"
env -u PRA_PASSPHRASE wine "$GUI_EXE" >"$OUT/logs/gui-1.log" 2>&1 &
GUI_PID=$!
PIDS+=($GUI_PID)
if W="$(gui_window)"; then
  ok "pra-gui.exe: window up"
  sleep 2
  shot gui-1-start
  eval "$(xdotool getwindowgeometry --shell "$W" 2>/dev/null)"
  # Connect sits at the right end of the status row.
  click "$W" $((WIDTH - 46)) 53
  sleep 2
  shot gui-2-passphrase
  # The dialog is centred on the window: type the passphrase into its
  # focused field, tick "Remember on this PC", press its Connect.
  xdotool type --delay 20 "$PRA_PASSPHRASE" 2>/dev/null
  click "$W" $((WIDTH / 2 - 203)) $((HEIGHT / 2 + 15))
  sleep 0.5
  shot gui-3-typed
  click "$W" $((WIDTH / 2 - 178)) $((HEIGHT / 2 + 57))
  check "pra-gui.exe: Connect clicked, passphrase typed: connected (User.log)" \
    wait_for_new "$DATA/log/User.log" "$marker" "connected to $SSH_ADDR as alice" 60
  check "pra-gui.exe: HTTP through its forward (curl 127.0.0.1:$WEB_PORT)" \
    curl -fsS --max-time 20 -o /dev/null "http://127.0.0.1:$WEB_PORT/api/v1/health"
  sleep 2
  shot pra-gui
  check "pra-gui.exe: per-rule state (web forwarding, busy WAR(10102)) in User.log" \
    wait_for_new "$DATA/log/User.log" "$marker" "WAR\(10102\).*$BUSY_PORT" 20
  # Port-owner lookup (GetExtendedTcpTable) runs; Wine 8 reports pid 0
  # (unknown) for every listener, so doctor says "used" without a name
  # (on Windows: "used by pra-gui (pid N)"; see docs/architecture.md).
  pra doctor
  check "pra.exe doctor: the window's port and the Linux-held port both WAR(10102), no made-up owner" bash -c '
    grep -q "^FAIL local port $2 free (rule web): WAR(10102) local port $2 is used\(: \| by pra-gui (pid [0-9]*)\)" "$1" &&
    grep -q "^FAIL local port $3 free (rule busy): WAR(10102) local port $3 is used" "$1" && ! grep -q "pid 0" "$1" ||
      { cat "$1"; exit 1; }' _ "$LOG" "$WEB_PORT" "$BUSY_PORT"
else
  bad "pra-gui.exe: window up"
fi
check "screenshot of the connected window saved ($OUT/pra-gui.png)" test -s "$OUT/pra-gui.png"
stop_gui() {
  kill "$GUI_PID" 2>/dev/null
  wait "$GUI_PID" 2>/dev/null
  timeout 20 wine taskkill /f /im pra-gui.exe >/dev/null 2>&1
  for _ in $(seq 40); do xdotool search --onlyvisible --name '^PRA$' >/dev/null 2>&1 || return 0; sleep 0.25; done
}
stop_gui
# Windows Credential Manager (Wine keeps it in its registry): the second
# start connects by itself with the remembered passphrase.
wine reg query 'HKCU\Software\Wine\Credential Manager' /s >"$OUT/logs/credential-manager.log" 2>&1
check "Credential Manager holds the remembered passphrase (Generic: FINGERPRINT.PRA, encrypted)" bash -c '
  tr -d "\r\0" <"$1" | grep -q "Generic: SHA256:[^ ]*\.PRA$" && ! grep -aqF "$PRA_PASSPHRASE" "$1" || { cat "$1"; exit 1; }' _ "$OUT/logs/credential-manager.log"
marker="$(user_log_lines)"
env -u PRA_PASSPHRASE wine "$GUI_EXE" --connect >"$OUT/logs/gui-2.log" 2>&1 &
GUI_PID=$!
PIDS+=($GUI_PID)
check "pra-gui.exe --connect, no PRA_PASSPHRASE: connects with the passphrase from Credential Manager" \
  wait_for_new "$DATA/log/User.log" "$marker" "connected to $SSH_ADDR as alice" 60
shot gui-4-remembered
stop_gui
kill "$HOLDER_PID" 2>/dev/null
wait "$HOLDER_PID" 2>/dev/null
check "pra-gui.exe made its tray icon (Shell_NotifyIcon) without a warning in System.log" bash -c '
  grep -q "pra-gui starting" "$1" && ! grep -qE "no system tray available|cannot (draw|change) the tray icon" "$1" ||
    { grep -E "pra-gui|tray" "$1" | tail; exit 1; }' _ "$DATA/log/System.log"

# pra-gui.exe with an empty home (C:\gui-enroll): the main window offers
# "Enroll with an invite…"; the invite and the passphrase (twice) are typed
# into the dialog, Enroll pressed; the registry then has the key approved.
# Wine's egui window handles queued input at its next event, so every step
# ends with settle (a small mouse move over an empty spot, then a pause).
# Positions are window-relative (the dialog is centred on the 760x480 window).
check "pra-registry user add gwen" reg user add gwen
GUI_INVITE="$(reg invite create --user gwen --gateway "$SSH_ADDR" --approve 2>/dev/null)"
GUI_PASS="gui enroll $RANDOM$RANDOM"
settle() { # WINDOW
  xdotool mousemove --window "$1" 700 440 2>/dev/null
  sleep 0.3
  xdotool mousemove --window "$1" 702 442 2>/dev/null
  sleep 0.7
}
env -u PRA_PASSPHRASE wine "$GUI_EXE" --home 'C:\gui-enroll' --no-tray >"$OUT/logs/gui-3-enroll.log" 2>&1 &
GUI_PID=$!
PIDS+=($GUI_PID)
if W="$(gui_window)"; then
  settle "$W"
  shot gui-5-no-key
  # "No key on this PC yet. [Enroll with an invite…]" under the status line.
  click "$W" 211 85
  settle "$W"
  # The invite field has the focus; once the invite parses, a line names
  # its account, gateway and expiry, and the fields below move down.
  xdotool type --delay 5 "$GUI_INVITE" 2>/dev/null
  settle "$W"
  click "$W" 336 262
  settle "$W"
  xdotool type --delay 10 "$GUI_PASS" 2>/dev/null
  # (Settled before the next click: keys still queued when it lands would
  # go to the field it focuses.)
  settle "$W"
  click "$W" 336 303
  settle "$W"
  xdotool type --delay 10 "$GUI_PASS" 2>/dev/null
  settle "$W"
  shot gui-6-enroll-typed
  click "$W" 151 349
  check "pra-gui.exe: Enroll pressed: the registry has gwen's key approved (key list --status approved --json)" \
    bash -c 'for _ in $(seq 120); do "$1" --data "$2" key list --status approved --json | grep -q "\"user\": \"gwen\"" && exit 0; sleep 0.25; done
      "$1" --data "$2" key list --json; exit 1' _ "$BIN/pra-registry" "$T/registry"
  settle "$W"
  shot pra-gui-enroll
  # (key list --json: each key's "fingerprint" line right before its "user".)
  GUI_FP="$(reg key list --status approved --json | grep -B1 '"user": "gwen"' |
    sed -n 's/.*"fingerprint": "\(SHA256:[^"]*\)".*/\1/p')"
  pra --home 'C:\gui-enroll' key show
  check "pra.exe key show in the home the window enrolled: user gwen, the approved fingerprint" bash -c '
    grep -q "^user: gwen" "$1" && [ -n "$2" ] && grep -qF "$2" "$1" || { echo "approved: $2"; cat "$1"; exit 1; }' _ "$LOG" "$GUI_FP"
  check "the window pinned the gateway's host key (C:\\gui-enroll\\config.toml)" grep -q "$HOST_KEY" "$C/gui-enroll/config.toml"
else
  bad "pra-gui.exe (empty home): window up"
fi
check "screenshot of the enrolled dialog saved ($OUT/pra-gui-enroll.png)" test -s "$OUT/pra-gui-enroll.png"
stop_gui
# Kept for the helpdesk view of this run.
cp -r "$DATA/log" "$OUT/programdata-log" 2>/dev/null

# --- uninstall ------------------------------------------------------------------------------
before="$(datasum)"
PROG="$C/Program Files/PRA"
check "msiexec /x pra-$V2-x64.msi /qn" timeout 180 wine msiexec /x "$(winpath "$MSI2")" /qn
check "uninstall removed C:\\Program Files\\PRA and kept C:\\ProgramData\\Pra (byte for byte)" bash -c '
  [ ! -e "$1/pra.exe" ] && [ ! -e "$1/pra-gui.exe" ] && [ "$(cd "$2" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum)" = "$3" ]' \
  _ "$PROG" "$DATA" "$before"
check "reinstall $V2: the kept key opens" bash -c '
  timeout 180 wine msiexec /i "$1" /qn && timeout 60 wine "$2" key show | grep -q "^user: alice"' _ "$(winpath "$MSI2")" "$PRA_EXE"
# The interactive uninstall asks "also delete the key and logs?" (default No).
# ask_uninstall KEY: answer the question with KEY (Return = the default).
ask_uninstall() {
  wine msiexec /x "$(winpath "$MSI2")" >"$OUT/logs/uninstall-ask-$1.log" 2>&1 &
  local mp=$! w=""
  for _ in $(seq 120); do
    w="$(xdotool search --onlyvisible --name '^Windows Installer$' 2>/dev/null | head -1)"
    [ -n "$w" ] && break
    sleep 0.25
  done
  [ -n "$w" ] || { echo "no question asked"; kill "$mp"; return 1; }
  sleep 1
  import -window root "$OUT/uninstall-question.png" 2>/dev/null
  xdotool windowfocus --sync "$w" 2>/dev/null
  xdotool key "$1" 2>/dev/null
  timeout 120 tail --pid="$mp" -f /dev/null
}
ask_uninstall Return
check "interactive uninstall asks; the default (No) keeps the data" \
  test ! -e "$PROG/pra.exe" -a -s "$OUT/uninstall-question.png" -a "$(datasum)" = "$before"
check "uninstall with PURGE_DATA=1 /qn deletes C:\\ProgramData\\Pra" bash -c '
  timeout 180 wine msiexec /i "$1" /qn && timeout 180 wine msiexec /x "$1" PURGE_DATA=1 /qn && [ ! -e "$2" ] && [ ! -e "$3/pra.exe" ]' \
  _ "$(winpath "$MSI2")" "$DATA" "$PROG"
timeout 180 wine msiexec /i "$(winpath "$MSI2")" /qn
check "reinstall made C:\\ProgramData\\Pra again" test -d "$DATA"
ask_uninstall y
check "interactive uninstall, answered Yes: deletes C:\\ProgramData\\Pra" test ! -e "$DATA" -a ! -e "$PROG/pra.exe"

# --- panics ----------------------------------------------------------------------------------
check "no panic in any pra.exe / pra-gui.exe run" bash -c '
  ! grep -l "panicked" "$1"/*.log || { grep -h -B2 -A8 "panicked" "$1"/*.log | head -40; exit 1; }' _ "$OUT/logs"

finish
