#!/usr/bin/env bash
# Packaging test (part of scripts/test.sh): builds the installers with the
# fast (dev profile) variant of installer/build.sh, checks what is in them
# (dpkg-deb, msiinfo, the unit file), and runs an install / upgrade / remove /
# purge cycle of both .debs in a throwaway root (dpkg --root, maintainer
# scripts run chrootless with DPKG_ROOT set) proving that keys, config and
# logs survive. Ends with "package-test: N passed, M failed"; exit status 1
# on any failure or when a tool it needs is missing.
# Usage: scripts/package-test.sh
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

# shellcheck source=scripts/checks.sh
. "$ROOT/scripts/checks.sh"
has_line() { grep -qxF -- "$2" <<<"$1"; } # TEXT LINE
lacks() { ! grep -qE -- "$2" <<<"$1"; }   # TEXT REGEX
finish() {
  echo "package-test: $pass passed, $fail failed"
  [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
  exit $?
}

# Every tool is required: a missing one fails the test (deps.sh installs them).
missing=""
for t in cargo dpkg dpkg-deb dpkg-query dpkg-shlibdeps wixl msibuild msiinfo msiextract \
  x86_64-w64-mingw32-gcc x86_64-w64-mingw32-objdump nasm systemd-analyze desktop-file-validate \
  perl ssh ssh-keygen timeout unshare; do
  command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
  bad "tools present (missing:$missing; run scripts/deps.sh)"
  finish
fi
ok "tools present"

T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT

# --- build: the workspace version, then a "newer" one ------------------------
if ! "$ROOT/installer/build.sh" --fast --out "$T/v1" >"$T/build1.log" 2>&1; then
  bad "installer/build.sh --fast"
  tail -30 "$T/build1.log" | sed 's/^/     | /'
  finish
fi
ok "installer/build.sh --fast: $(tail -1 "$T/build1.log" | sed 's/^build.sh: //')"

bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
V="$("$bin/pra" --version | awk '{print $2}')"
base="${V%%[-+]*}"
V2="${base%.*}.$((${base##*.} + 1))"
if ! PRA_PACKAGE_VERSION="$V2" "$ROOT/installer/build.sh" --fast --out "$T/v2" >"$T/build2.log" 2>&1; then
  bad "installer/build.sh --fast with version $V2"
  tail -30 "$T/build2.log" | sed 's/^/     | /'
  finish
fi
ok "package version override $V2: $(tail -1 "$T/build2.log" | sed 's/^build.sh: //')"

with_gui=0
cargo metadata --no-deps --format-version 1 --locked --manifest-path "$ROOT/Cargo.toml" \
  | grep -q '"name":"pra-gui"' && with_gui=1
echo "     (workspace version $V, upgrade to $V2, pra-gui in workspace: $with_gui)"

client="$T/v1/pra_${V}_amd64.deb"
registry="$T/v1/pra-registry_${V}_amd64.deb"
msi="$T/v1/pra-${V}-x64.msi"
client2="$T/v2/pra_${V2}_amd64.deb"
registry2="$T/v2/pra-registry_${V2}_amd64.deb"
msi2="$T/v2/pra-${V2}-x64.msi"
check "dist has pra_${V}_amd64.deb, pra-registry_${V}_amd64.deb, pra-${V}-x64.msi" \
  test -s "$client" -a -s "$registry" -a -s "$msi"
check "v2 dist has the $V2 names" test -s "$client2" -a -s "$registry2" -a -s "$msi2"
# The Windows lane (scripts/windows-test.sh) installs these two .msi files.
if [ -n "${PRA_MSI_OUT:-}" ]; then
  mkdir -p "$PRA_MSI_OUT" && rm -f "$PRA_MSI_OUT"/pra-*-x64.msi && cp "$msi" "$msi2" "$PRA_MSI_OUT/"
fi

# --- client .deb contents ----------------------------------------------------
info="$(dpkg-deb -f "$client" Package Version Architecture Depends)"
files="$(dpkg-deb -c "$client" | awk '{print $6}')"
check "pra: control fields" bash -c '
  grep -qx "Package: pra" <<<"$1" && grep -qx "Version: $2" <<<"$1" &&
  grep -qx "Architecture: amd64" <<<"$1" && grep -q "^Depends: .*libc6 (>= " <<<"$1"' _ "$info" "$V"
check "pra: ships /usr/bin/pra" has_line "$files" "./usr/bin/pra"
check "pra: bash/zsh/fish completions and man page" bash -c '
  for f in ./usr/share/bash-completion/completions/pra ./usr/share/zsh/vendor-completions/_pra \
    ./usr/share/fish/vendor_completions.d/pra.fish ./usr/share/man/man1/pra.1.gz; do
    grep -qxF "$f" <<<"$1" || { echo "missing $f"; exit 1; }
  done' _ "$files"
mkdir -p "$T/x-cli"
dpkg-deb -x "$client" "$T/x-cli"
check "pra: man page names the program, completion completes its commands" bash -c '
  zcat "$1/usr/share/man/man1/pra.1.gz" | grep -q "^pra \\\\- PRA: SSH port" &&
  grep -q "keygen" "$1/usr/share/bash-completion/completions/pra"' _ "$T/x-cli"
check "pra: ships no data (nothing under /var, /home, /etc)" lacks "$files" '^\./(var|home|etc)/'
if [ "$with_gui" = 1 ]; then
  check "pra: ships /usr/bin/pra-gui" has_line "$files" "./usr/bin/pra-gui"
  check "pra: desktop entry and icons" bash -c '
    for f in ./usr/share/applications/pra-gui.desktop ./usr/share/icons/hicolor/scalable/apps/pra.svg \
      ./usr/share/icons/hicolor/256x256/apps/pra.png ./usr/share/pra/autostart/pra-gui.desktop; do
      grep -qxF "$f" <<<"$1" || { echo "missing $f"; exit 1; }
    done' _ "$files"
  mkdir -p "$T/x-gui"
  dpkg-deb -x "$client" "$T/x-gui"
  check "pra: desktop entries pass desktop-file-validate" desktop-file-validate \
    "$T/x-gui/usr/share/applications/pra-gui.desktop" "$T/x-gui/usr/share/pra/autostart/pra-gui.desktop"
else
  check "pra: no pra-gui while the workspace has none" lacks "$files" 'pra-gui'
fi

# --- registry .deb contents --------------------------------------------------
info="$(dpkg-deb -f "$registry" Package Version Architecture Depends)"
files="$(dpkg-deb -c "$registry" | awk '{print $6}')"
check "pra-registry: control fields (Depends libc6, adduser)" bash -c '
  grep -qx "Package: pra-registry" <<<"$1" && grep -qx "Version: $2" <<<"$1" &&
  grep -qx "Architecture: amd64" <<<"$1" && grep -q "^Depends: .*libc6 (>= " <<<"$1" &&
  grep -q "^Depends: .*adduser" <<<"$1"' _ "$info" "$V"
check "pra-registry: binary, unit, config" bash -c '
  for f in ./usr/bin/pra-registry ./lib/systemd/system/pra-registry.service ./etc/pra-registry/pra-registry.env; do
    grep -qxF "$f" <<<"$1" || { echo "missing $f"; exit 1; }
  done' _ "$files"
check "pra-registry: ships nothing in /var (dpkg would delete owned data files)" lacks "$files" '^\./var/'
check "pra-registry: bash/zsh/fish completions and man page" bash -c '
  for f in ./usr/share/bash-completion/completions/pra-registry ./usr/share/zsh/vendor-completions/_pra-registry \
    ./usr/share/fish/vendor_completions.d/pra-registry.fish ./usr/share/man/man1/pra-registry.1.gz; do
    grep -qxF "$f" <<<"$1" || { echo "missing $f"; exit 1; }
  done' _ "$files"
mkdir -p "$T/ctl"
dpkg-deb -e "$registry" "$T/ctl"
check "pra-registry: config is a conffile" grep -qx /etc/pra-registry/pra-registry.env "$T/ctl/conffiles"
check "pra-registry: maintainer scripts are executable sh" bash -c '
  for s in postinst prerm postrm; do [ -x "$1/$s" ] && sh -n "$1/$s" || exit 1; done' _ "$T/ctl"
check "pra-registry: maintainer scripts delete no files (no rm / find -delete commands)" \
  bash -c '! grep -nE "^[[:space:]]*(rm|find .*-delete|deluser|userdel)([[:space:]]|$)" "$1/postinst" "$1/prerm" "$1/postrm"' _ "$T/ctl"

mkdir -p "$T/x-reg"
dpkg-deb -x "$registry" "$T/x-reg"
unit="$T/x-reg/lib/systemd/system/pra-registry.service"
check "unit: runs pra-registry serve as user pra-registry with StateDirectory" bash -c '
  grep -qx "User=pra-registry" "$1" && grep -qx "StateDirectory=pra-registry" "$1" &&
  grep -q "^ExecStart=/usr/bin/pra-registry serve " "$1" &&
  grep -qx "EnvironmentFile=-/etc/pra-registry/pra-registry.env" "$1"' _ "$unit"
check "unit: hardening options" bash -c '
  for o in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
    CapabilityBoundingSet= "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
    SystemCallFilter=@system-service MemoryDenyWriteExecute=yes; do
    grep -qxF "$o" "$1" || { echo "missing $o"; exit 1; }
  done' _ "$unit"
# systemd-analyze verify needs the ExecStart binary at its path: point it at
# the extracted one; any warning (unknown key, bad value) fails.
sed "s|/usr/bin/pra-registry|$T/x-reg/usr/bin/pra-registry|" "$unit" >"$T/pra-registry.service"
check "unit: systemd-analyze verify is clean" bash -c '
  out="$(systemd-analyze verify "$1" 2>&1)"; rc=$?; [ -n "$out" ] && echo "$out"; [ $rc -eq 0 ] && [ -z "$out" ]' \
  _ "$T/pra-registry.service"
exposure="$(systemd-analyze security --offline=true --root="$T/x-reg" pra-registry.service 2>/dev/null \
  | sed -n 's/.*Overall exposure level for pra-registry.service: \([0-9.]*\).*/\1/p')"
check "unit: systemd-analyze security exposure $exposure <= 2.0" \
  awk -v e="$exposure" 'BEGIN { exit !(e != "" && e + 0 <= 2.0) }'
check "env file: data folder and listen addresses" bash -c '
  grep -qx "PRA_REGISTRY_DATA=/var/lib/pra-registry" "$1" && grep -qx "PRA_REGISTRY_SSH=0.0.0.0:10022" "$1" &&
  grep -qx "PRA_REGISTRY_API=127.0.0.1:10088" "$1"' _ "$T/x-reg/etc/pra-registry/pra-registry.env"

# --- one version ---------------------------------------------------------------
ws_version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml")"
mkdir -p "$T/x-client"
dpkg-deb -x "$client" "$T/x-client"
check "pra --version in the .deb is the workspace version $ws_version" \
  test "$("$T/x-client/usr/bin/pra" --version)" = "pra $ws_version" -a "$V" = "$ws_version"
check "pra-registry --version in the .deb is $ws_version" \
  test "$("$T/x-reg/usr/bin/pra-registry" --version)" = "pra-registry $ws_version"

# --- install / upgrade / remove / purge in a throwaway root --------------------
R="$T/root"
A="$R/var/lib/dpkg"
mkdir -p "$A/updates" "$A/info" "$A/triggers" "$R/var/log"
touch "$A/available"
# The packages the .debs depend on, as installed on this machine (versioned
# Depends are checked against them); empty file lists keep dpkg quiet.
deps="$( (dpkg-deb -f "$client" Depends; dpkg-deb -f "$registry" Depends) | tr ',' '\n' \
  | sed 's/|.*//; s/(.*//; s/ //g' | sort -u | grep .)"
: >"$A/status"
dep_ok=1
for p in $deps; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    echo "     dependency $p is not installed on this machine"
    dep_ok=0
    continue
  fi
  dpkg-query -W -f='Package: ${Package}\nStatus: install ok installed\nPriority: optional\nMaintainer: stand-in\nArchitecture: ${Architecture}\nMulti-Arch: ${Multi-Arch}\nVersion: ${Version}\nDescription: stand-in for the host package\n\n' "$p" \
    | sed '/^Multi-Arch: $/d' >>"$A/status"
  ma="$(dpkg-query -W -f='${Multi-Arch}' "$p")"
  if [ "$ma" = same ]; then : >"$A/info/$p:$(dpkg-query -W -f='${Architecture}' "$p").list"; else : >"$A/info/$p.list"; fi
done
check "dependencies are real packages installed here: $(echo $deps)" test "$dep_ok" = 1

dpkgr() { dpkg --root="$R" --force-script-chrootless --force-unsafe-io --log="$R/var/log/dpkg.log" "$@" </dev/null; }
state() { dpkg-query --admindir="$A" -W -f='${Status} ${Version}' "$1" 2>/dev/null; }
host_user_before="$(getent passwd pra-registry || true)"

check "install $V (both .debs)" dpkgr -i "$client" "$registry"
check "installed: pra $V, pra-registry $V" bash -c \
  '[ "$1" = "install ok installed $3" ] && [ "$2" = "install ok installed $3" ]' _ \
  "$(state pra)" "$(state pra-registry)" "$V"
check "postinst made /var/lib/pra-registry (0750) in the root" \
  test "$(stat -c %a "$R/var/lib/pra-registry" 2>/dev/null)" = 750
check "maintainer scripts left this machine's users alone" \
  test "$(getent passwd pra-registry || true)" = "$host_user_before"

# Real data, made by the installed programs.
DATA="$R/var/lib/pra-registry"
HOME_DIR="$R/home/alice/.local/share/pra"
export PRA_PASSPHRASE="package-test passphrase"
check "registry data: user and rule added with the installed pra-registry" bash -c '
  "$1/usr/bin/pra-registry" --data "$2" user add alice &&
  "$1/usr/bin/pra-registry" --data "$2" rule add --user alice --name mail --local 1143 --target mail.example.invalid:143' \
  _ "$R" "$DATA"
check "client data: server set and keygen with the installed pra" bash -c '
  "$1/usr/bin/pra" --home "$2" server set gw.example.invalid:10022 &&
  "$1/usr/bin/pra" --home "$2" keygen --user alice' _ "$R" "$HOME_DIR"
mkdir -p "$HOME_DIR/log"
echo "connected (package-test)" >>"$HOME_DIR/log/System.log"
echo "# admin's change (package-test)" >>"$R/etc/pra-registry/pra-registry.env"
sed -i 's/^PRA_REGISTRY_SSH=.*/PRA_REGISTRY_SSH=[::]:10022/' "$R/etc/pra-registry/pra-registry.env"
fingerprint() { (cd "$R" && find var/lib/pra-registry home etc/pra-registry -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum); }
before="$(fingerprint)"
check "data to keep: registry.db, key, config, log, edited conffile" bash -c '
  for f in var/lib/pra-registry/registry.db home/alice/.local/share/pra/pra_ed25519 \
    home/alice/.local/share/pra/config.toml home/alice/.local/share/pra/log/System.log \
    etc/pra-registry/pra-registry.env; do grep -q " $f\$" <<<"$1" || { echo "missing $f"; exit 1; }; done' _ "$before"

check "upgrade to $V2 (no conffile prompt)" dpkgr -i "$client2" "$registry2"
check "installed: pra $V2, pra-registry $V2" bash -c \
  '[ "$1" = "install ok installed $3" ] && [ "$2" = "install ok installed $3" ]' _ \
  "$(state pra)" "$(state pra-registry)" "$V2"
check "upgrade kept keys, config, logs, registry data and the admin's config (byte for byte)" \
  test "$(fingerprint)" = "$before"
check "after upgrade: the registry still lists alice and her rule" bash -c '
  "$1/usr/bin/pra-registry" --data "$2" user list | grep -q "^alice .*enabled" &&
  "$1/usr/bin/pra-registry" --data "$2" rule list --user alice | grep -q mail' _ "$R" "$DATA"
check "after upgrade: pra key show reads the key" bash -c \
  '"$1/usr/bin/pra" --home "$2" key show | grep -q "^user: alice"' _ "$R" "$HOME_DIR"

check "remove (no purge) both packages" dpkgr -r pra pra-registry
check "removed: programs gone; pra-registry keeps its config (config-files state)" bash -c '
  [ ! -e "$1/usr/bin/pra" ] && [ ! -e "$1/usr/bin/pra-gui" ] && [ ! -e "$1/usr/bin/pra-registry" ] &&
  [ "$3" = "deinstall ok config-files $4" ] || { echo "pra: $2 / pra-registry: $3"; exit 1; }' _ \
  "$R" "$(state pra)" "$(state pra-registry)" "$V2"
check "remove kept keys, config, logs, registry data and the admin's config" \
  test "$(fingerprint)" = "$before"

check "reinstall $V2 after remove" dpkgr -i "$client2" "$registry2"
check "reinstall kept everything" test "$(fingerprint)" = "$before"

check "purge pra-registry" bash -c 'dpkg --root="$1" --force-script-chrootless --log="$1/var/log/dpkg.log" \
  -P pra-registry </dev/null >"$2" 2>&1 || { cat "$2"; exit 1; }' _ "$R" "$T/purge.log"
check "purge deleted the conffile, kept the registry data" bash -c '
  [ ! -e "$1/etc/pra-registry/pra-registry.env" ] && [ -s "$1/var/lib/pra-registry/registry.db" ] &&
  [ "$(cd "$1" && sha256sum var/lib/pra-registry/registry.db)" = "$(grep " var/lib/pra-registry/registry.db$" <<<"$2")" ]' \
  _ "$R" "$before"
check "purge said how to delete the data for good" grep -q "rm -rf /var/lib/pra-registry" "$T/purge.log"
check "purge pra (client): the user's key, config and logs stay" bash -c '
  dpkg --root="$1" --force-script-chrootless --log="$1/var/log/dpkg.log" -P pra </dev/null >/dev/null 2>&1 &&
  [ -s "$1/home/alice/.local/share/pra/pra_ed25519" ] && [ -s "$1/home/alice/.local/share/pra/config.toml" ] &&
  [ -s "$1/home/alice/.local/share/pra/log/System.log" ]' _ "$R"
unset PRA_PASSPHRASE

# --- maintainer scripts on a real system ---------------------------------------
# The branch dpkg runs on a real machine (no DPKG_ROOT): in a private mount
# namespace with fresh /var/lib and /run, with adduser, getent, chown,
# rmdir and the systemd helpers replaced by stubs that log their calls.
S="$T/stubs"
mkdir -p "$S"
for c in adduser chown rmdir deb-systemd-helper deb-systemd-invoke systemctl; do
  printf '#!/bin/sh\necho "%s $*" >>"$STUB_LOG"\n' "$c" >"$S/$c"
done
printf '#!/bin/sh\necho "getent $*" >>"$STUB_LOG"\n[ -n "$USER_EXISTS" ]\n' >"$S/getent"
chmod 0755 "$S"/*
maint() { # LOG USER_EXISTS SETUP SCRIPT ARGS...: run a maintainer script "for real", isolated
  local log="$1" exists="$2" setup="$3"
  shift 3
  STUB_LOG="$log" USER_EXISTS="$exists" PATH="$S:$PATH" unshare --mount --propagation private sh -c '
    mount -t tmpfs none /var/lib && mount -t tmpfs none /run && mkdir -p /run/systemd/system &&
    eval "$1" && shift && "$@" && { ls -ld /var/lib/pra-registry; ls /var/lib/pra-registry; } 2>/dev/null
  ' _ "$setup" "$@"
}
: >"$T/first.log"
first="$(maint "$T/first.log" "" : "$T/ctl/postinst" configure)"
check "postinst, first install: system user, data folder for it, service enabled and started" bash -c '
  grep -qx "adduser --system --group --quiet --home /var/lib/pra-registry --no-create-home --shell /usr/sbin/nologin --gecos PRA registry and gateway pra-registry" "$1" &&
  grep -qx "chown pra-registry:pra-registry /var/lib/pra-registry" "$1" &&
  grep -qx "deb-systemd-helper enable pra-registry.service" "$1" &&
  grep -qx "systemctl --system daemon-reload" "$1" && grep -qx "deb-systemd-invoke start pra-registry.service" "$1" &&
  grep -q "^drwxr-x--- " <<<"$2" || { cat "$1"; echo "$2"; exit 1; }' _ "$T/first.log" "$first"
: >"$T/upgrade.log"
upgraded="$(maint "$T/upgrade.log" yes 'mkdir -p /var/lib/pra-registry && echo keep >/var/lib/pra-registry/registry.db' \
  "$T/ctl/postinst" configure 0.0.9)"
check "postinst, upgrade: no new user, data untouched, running service restarted" bash -c '
  ! grep -qE "^(adduser|chown)" "$1" && grep -qx "deb-systemd-invoke try-restart pra-registry.service" "$1" &&
  grep -qx registry.db <<<"$2" || { cat "$1"; echo "$2"; exit 1; }' _ "$T/upgrade.log" "$upgraded"
: >"$T/prerm.log"
maint "$T/prerm.log" yes : "$T/ctl/prerm" upgrade 0.1.1 >/dev/null
maint "$T/prerm.log" yes : "$T/ctl/prerm" remove >/dev/null
check "prerm: service stopped on remove only" bash -c '
  [ "$(cat "$1")" = "deb-systemd-invoke stop pra-registry.service" ] || { cat "$1"; exit 1; }' _ "$T/prerm.log"
: >"$T/purge.log2"
purged="$(maint "$T/purge.log2" yes 'mkdir -p /var/lib/pra-registry && echo keep >/var/lib/pra-registry/registry.db' \
  "$T/ctl/postrm" purge 2>&1)"
check "postrm purge: keeps the data and the user, says how to delete them" bash -c '
  grep -qx "deb-systemd-helper purge pra-registry.service" "$1" && ! grep -qE "^(deluser|userdel)" "$1" &&
  grep -qx registry.db <<<"$2" && grep -q "rm -rf /var/lib/pra-registry" <<<"$2" || { cat "$1"; echo "$2"; exit 1; }' \
  _ "$T/purge.log2" "$purged"

# --- the unit's MemoryDenyWriteExecute=yes: the gateway's crypto needs no W^X --
# The packaged pra-registry serves a real SSH login and `exec pra-rules` (ML-KEM
# and curve25519 key exchange, AES-GCM, ed25519, all through aws-lc) with the
# kernel refusing writable+executable memory to it (prctl PR_SET_MDWE, kept
# across exec: what systemd applies for MemoryDenyWriteExecute=yes).
mdwe='syscall(157, 65, 1, 0, 0, 0) == 0 or die "prctl(PR_SET_MDWE): $!\n"; exec @ARGV or die "exec: $!\n"'
check "W^X refusal (PR_SET_MDWE) is in force after exec" \
  test "$(perl -e "$mdwe" -- perl -e 'print syscall(157, 66, 0, 0, 0, 0)')" = 1
W="$T/wx"
mkdir -p "$W"
reg="$T/x-reg/usr/bin/pra-registry"
ssh-keygen -q -t ed25519 -N '' -C package-test -f "$W/id"
"$reg" --data "$W/data" user add alice >/dev/null
"$reg" --data "$W/data" key import "$W/id.pub" --user alice --approve >/dev/null
"$reg" --data "$W/data" rule add --user alice --name web --local 18080 --target 127.0.0.1:9 >/dev/null
mkfifo "$W/serve.out"
perl -e "$mdwe" -- "$reg" --data "$W/data" serve --ssh 127.0.0.1:0 --api 127.0.0.1:0 >"$W/serve.out" 2>"$W/serve.err" &
serve_pid=$!
exec 9<"$W/serve.out"
ssh_port=""
while IFS= read -r -t 30 line <&9; do
  case "$line" in "ssh listening on 127.0.0.1:"*)
    ssh_port="${line#ssh listening on 127.0.0.1:}"; ssh_port="${ssh_port%% *}"; break ;;
  esac
done
rules_json=""
if [ -n "$ssh_port" ]; then
  rules_json="$(timeout 30 ssh -F none -i "$W/id" -o BatchMode=yes -o IdentitiesOnly=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o Ciphers=aes256-gcm@openssh.com -p "$ssh_port" alice@127.0.0.1 pra-rules 2>"$W/ssh.err")"
fi
kill "$serve_pid" 2>/dev/null
wait "$serve_pid" 2>/dev/null
exec 9<&-
check "pra-registry serve under W^X refusal: SSH login (AES-GCM) and pra-rules answered" bash -c '
  grep -q "\"name\":\"web\"" <<<"$1" || { echo "port: ${2:-none}"; cat "$3" "$4"; exit 1; }' _ \
  "$rules_json" "$ssh_port" "$W/serve.err" "$W/ssh.err"

# --- Windows .msi ----------------------------------------------------------------
tables="$(msiinfo tables "$msi")"
check "msi: File, Shortcut, CreateFolder, Upgrade tables" bash -c '
  for t in File Component Shortcut CreateFolder Directory Upgrade Property; do
    grep -qx "$t" <<<"$1" || { echo "missing table $t"; exit 1; }; done' _ "$tables"
mfiles="$(msiinfo export "$msi" File)"
check "msi: holds pra.exe" bash -c 'grep -qP "\tpra\.exe\t" <<<"$1"' _ "$mfiles"
props="$(msiinfo export "$msi" Property)"
check "msi: per-machine (ALLUSERS=1), ProductVersion ${V%%[-+]*}" bash -c '
  grep -qP "^ALLUSERS\t1\r?$" <<<"$1" && grep -qP "^ProductVersion\t$2\r?$" <<<"$1"' _ "$props" "${V%%[-+]*}"
dirs="$(msiinfo export "$msi" Directory)"
check "msi: installs into ProgramFiles64Folder\\PRA, data in CommonAppDataFolder\\Pra\\log" bash -c '
  grep -qP "^INSTALLDIR\tProgramFiles64Folder\tPRA\r?$" <<<"$1" &&
  grep -qP "^DATADIR\tCommonAppDataFolder\tPra\r?$" <<<"$1" &&
  grep -qP "^LOGDIR\tDATADIR\tlog\r?$" <<<"$1"' _ "$dirs"
comps="$(msiinfo export "$msi" Component)"
check "msi: %ProgramData%\\Pra and log are created and Permanent (never removed)" bash -c '
  grep -qP "^DATADIR\tDataDir\r?$" <<<"$2" && grep -qP "^LOGDIR\tLogDir\r?$" <<<"$2" &&
  for c in DataDir LogDir; do
    a="$(grep -P "^$c\t" <<<"$1" | cut -f4)"; [ -n "$a" ] && [ $((a & 16)) -eq 16 ] || { echo "$c attributes $a"; exit 1; }
  done' _ "$comps" "$(msiinfo export "$msi" CreateFolder)"
check "msi: no RemoveFile entries (nothing in ProgramData is deleted)" bash -c \
  '[ "$(msiinfo export "$1" RemoveFile | wc -l)" -le 3 ]' _ "$msi"
check "msi: MajorUpgrade (RemoveExistingProducts, Upgrade rows, downgrade blocked)" bash -c '
  grep -qP "^RemoveExistingProducts\t" <<<"$1" && grep -q WIX_UPGRADE_DETECTED <<<"$2" &&
  grep -q "NOT WIX_DOWNGRADE_DETECTED" <<<"$3"' _ \
  "$(msiinfo export "$msi" InstallExecuteSequence)" "$(msiinfo export "$msi" Upgrade)" \
  "$(msiinfo export "$msi" LaunchCondition)"
code1="$(grep -P '^UpgradeCode\t' <<<"$props" | cut -f2 | tr -d '\r')"
pc1="$(grep -P '^ProductCode\t' <<<"$props" | cut -f2 | tr -d '\r')"
props2="$(msiinfo export "$msi2" Property)"
code2="$(grep -P '^UpgradeCode\t' <<<"$props2" | cut -f2 | tr -d '\r')"
pc2="$(grep -P '^ProductCode\t' <<<"$props2" | cut -f2 | tr -d '\r')"
check "msi $V2: same UpgradeCode $code1, new ProductCode, version ${V2}" bash -c '
  [ -n "$1" ] && [ "$1" = "$2" ] && [ -n "$3" ] && [ "$3" != "$4" ] &&
  grep -qP "^ProductVersion\t$5\r?$" <<<"$6"' _ "$code1" "$code2" "$pc1" "$pc2" "$V2" "$props2"
check "msi: INSTALLDIR appended to the system PATH (set on install, removed on uninstall)" bash -c '
  grep -qP "^PathPra\t=-\*PATH\t\[~\];\[INSTALLDIR\]\tPraCli\r?$" <<<"$1" &&
  grep -qP "^WriteEnvironmentStrings\t\t5200\r?$" <<<"$2" && grep -qP "^RemoveEnvironmentStrings\t\t3300\r?$" <<<"$2"' _ \
  "$(msiinfo export "$msi" Environment)" "$(msiinfo export "$msi" InstallExecuteSequence)"
check "msi: no test-only ProcessPrng shim (bcryptprimitives.dll) inside" bash -c '
  ! msiinfo export "$1" File | grep -qi bcryptprimitives' _ "$msi"
check "msi: package summary says x64" bash -c 'msiinfo suminfo "$1" | grep -q "^Template: x64;"' _ "$msi"
mkdir -p "$T/msix"
(cd "$T/msix" && msiextract "$msi" >/dev/null 2>&1)
exes="$(find "$T/msix" -name '*.exe' | sort)"
check "msi: cabinet extracts pra.exe into PRA/" test -f "$T/msix/PRA/pra.exe"
check "msi: PowerShell completion next to pra.exe" \
  grep -q "Register-ArgumentCompleter" "$T/msix/PRA/pra-completion.ps1"
if [ "$with_gui" = 1 ]; then
  check "msi: holds pra-gui.exe" bash -c 'grep -qP "\tpra-gui\.exe\t" <<<"$1"' _ "$mfiles"
  check "msi: Start-menu shortcut PRA -> pra-gui.exe" bash -c '
    grep -qP "^StartMenuPra\tProgramMenuFolder\tPRA\tPraGui\t" <<<"$1"' _ "$(msiinfo export "$msi" Shortcut)"
fi
check "msi: exes are x86-64 PE files needing only Windows' own DLLs" bash -c '
  [ -n "$1" ] || exit 1
  for f in $1; do
    x86_64-w64-mingw32-objdump -f "$f" | grep -q "file format pei-x86-64" || { echo "$f: not PE x64"; exit 1; }
    x86_64-w64-mingw32-objdump -p "$f" | grep "DLL Name" | grep -iE "libgcc|libstdc|libwinpthread|mingw" && exit 1
  done; exit 0' _ "$exes"

finish
