#!/usr/bin/env bash
# Build PRA's installers into dist/ with one command:
#   pra_<version>_amd64.deb           client: pra, pra-gui, desktop entry, icon
#   pra-registry_<version>_amd64.deb  registry + gateway with its systemd unit
#   pra-<version>-x64.msi             Windows: pra.exe, pra-gui.exe (per machine)
# Each .deb has its program's bash/zsh/fish completions and man page; the
# .msi has the PowerShell completion (pra-completion.ps1).
#
# Usage: installer/build.sh [--fast] [--out DIR] [--no-msi]
#   --fast     dev profile instead of release, the binaries `cargo test
#              --workspace` builds (the packaging test uses it)
#   --out DIR  where the packages go (default: dist/ in the repository)
#   --no-msi   skip the Windows cross-build and the .msi
#
# The version is the workspace's ([workspace.package] version in Cargo.toml),
# read from the built `pra --version`; `pra-registry --version` must agree.
# PRA_PACKAGE_VERSION=X.Y.Z overrides it in the package names and metadata
# only (the packaging test uses it to make a "newer" package from the same
# binaries); never set it for a real release.
#
# Needs (scripts/deps.sh installs them): dpkg-dev, wixl + msitools,
# mingw-w64, nasm, and the rustup target x86_64-pc-windows-gnu.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
INST="$ROOT/installer"
WIN_TARGET=x86_64-pc-windows-gnu

profile=release
out="$ROOT/dist"
with_msi=1
while [ $# -gt 0 ]; do
  case "$1" in
    --fast) profile=dev ;;
    --out) out="${2:?--out needs a folder}"; shift ;;
    --no-msi) with_msi=0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "build.sh: $*" >&2; exit 1; }
need() {
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || die "$t is missing: run scripts/deps.sh (installs it)"
  done
}
need cargo dpkg-deb dpkg-shlibdeps strip md5sum
if [ "$with_msi" = 1 ]; then
  need wixl msibuild x86_64-w64-mingw32-gcc x86_64-w64-mingw32-strip nasm
  rustup target list --installed 2>/dev/null | grep -qx "$WIN_TARGET" \
    || die "rust target $WIN_TARGET is missing: run scripts/deps.sh (rustup target add $WIN_TARGET)"
fi

target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$profile" in
  dev) profile_dir=debug; deb_z=(-Zgzip -z1) ;;
  *) profile_dir=release; deb_z=(-Zxz) ;;
esac

# pra-gui joins the packages as soon as the workspace has the crate.
with_gui=0
if cargo metadata --no-deps --format-version 1 --locked --manifest-path "$ROOT/Cargo.toml" \
  | grep -q '"name":"pra-gui"'; then
  with_gui=1
fi
linux_pkgs=(-p pra-client -p pra-registry)
win_pkgs=(-p pra-client)
if [ "$with_gui" = 1 ]; then
  linux_pkgs+=(-p pra-gui)
  win_pkgs+=(-p pra-gui)
fi

if [ "$profile" = dev ]; then
  # The binaries `cargo test --workspace` builds (with the features the
  # test-only dependencies switch on): right after the tests, as in
  # scripts/test.sh, this compiles nothing, where a plain `cargo build`
  # would rebuild part of the GUI stack with other features.
  echo "== cargo test --no-run (dev, linux)"
  cargo test --locked --manifest-path "$ROOT/Cargo.toml" --workspace --no-run
else
  echo "== cargo build ($profile, linux)"
  cargo build --locked --manifest-path "$ROOT/Cargo.toml" --profile "$profile" --bins "${linux_pkgs[@]}"
fi
if [ "$with_msi" = 1 ]; then
  echo "== cargo build ($profile, $WIN_TARGET)"
  cargo build --locked --manifest-path "$ROOT/Cargo.toml" --profile "$profile" --bins \
    --target "$WIN_TARGET" "${win_pkgs[@]}"
fi
cargo_secs=$SECONDS
bin="$target_dir/$profile_dir"
win_bin="$target_dir/$WIN_TARGET/$profile_dir"

# One version, from the binaries themselves.
version="$("$bin/pra" --version | awk '{print $2}')"
reg_version="$("$bin/pra-registry" --version | awk '{print $2}')"
[ -n "$version" ] || die "pra --version printed no version"
[ "$version" = "$reg_version" ] || die "pra is $version but pra-registry is $reg_version"
if [ -n "${PRA_PACKAGE_VERSION:-}" ]; then
  echo "build.sh: package version overridden: $PRA_PACKAGE_VERSION (binaries say $version)"
  version="$PRA_PACKAGE_VERSION"
fi
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$ ]] \
  || die "version '$version' is not X.Y.Z[-pre][+build]"
# Debian: a SemVer pre-release sorts before the release with '~'.
deb_version="${version/-/\~}"
# Windows Installer: numeric major.minor.patch only, below 256.256.65536.
msi_version="${version%%[-+]*}"
IFS=. read -r v_major v_minor v_patch <<<"$msi_version"
[ "$v_major" -lt 256 ] && [ "$v_minor" -lt 256 ] && [ "$v_patch" -lt 65536 ] \
  || die "version $msi_version is too large for Windows Installer (max 255.255.65535)"

# The GUI's own icon when it ships one, else installer/icons/.
icon() { if [ -f "$ROOT/gui/assets/$1" ]; then echo "$ROOT/gui/assets/$1"; else echo "$INST/icons/$1"; fi; }
icon_svg="$(icon pra.svg)"; icon_png="$(icon pra.png)"; icon_ico="$(icon pra.ico)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# shlibs Depends of ELF binaries, as dpkg-shlibdeps computes them.
shlib_depends() {
  local d="$work/shlibs"
  rm -rf "$d"; mkdir -p "$d/debian"
  printf 'Source: pra\n\nPackage: pra\nArchitecture: any\n' >"$d/debian/control"
  (cd "$d" && dpkg-shlibdeps -O "$@" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
}

# Libraries the GUI loads with dlopen (winit/glutin for X11 + OpenGL), so
# dpkg-shlibdeps cannot see them: the soname string in the binary -> package.
dlopen_depends() {
  local f="$1" deps=() so pkg
  while read -r so pkg; do
    [ -n "$so" ] || continue
    if grep -aqF "$so" "$f"; then deps+=("${pkg//_/ }"); fi
  done <<'EOF'
libX11.so libx11-6
libX11-xcb.so libx11-xcb1
libXcursor.so libxcursor1
libXrandr.so libxrandr2
libXi.so libxi6
libxkbcommon-x11.so libxkbcommon-x11-0
libxkbcommon.so libxkbcommon0
libGL.so libgl1
libEGL.so libegl1
libwayland-client.so libwayland-client0
libdbus-1.so libdbus-1-3
libayatana-appindicator3.so libayatana-appindicator3-1_|_libappindicator3-1
EOF
  local IFS=,
  echo "${deps[*]}" | sed 's/,/, /g'
}

join_deps() { # non-empty arguments joined with ", "
  local r="" a
  for a in "$@"; do
    [ -n "$a" ] || continue
    r="${r:+$r, }$a"
  done
  echo "$r"
}

# Build one .deb from a staged tree: control, md5sums, dpkg-deb.
make_deb() {
  local name="$1" stage="$2" depends="$3" section="$4" summary="$5" long="$6" suggests="${7:-}"
  local size
  size="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
  mkdir -p "$stage/DEBIAN"
  {
    echo "Package: $name"
    echo "Version: $deb_version"
    echo "Architecture: amd64"
    echo "Maintainer: PRA maintainers <pra@example.invalid>"
    echo "Installed-Size: $size"
    [ -z "$depends" ] || echo "Depends: $depends"
    [ -z "$suggests" ] || echo "Suggests: $suggests"
    echo "Section: $section"
    echo "Priority: optional"
    echo "Homepage: https://example.invalid/pra"
    echo "Description: $summary"
    printf '%s\n' "$long" | sed 's/^$/./; s/^/ /'
  } >"$stage/DEBIAN/control"
  (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z \
    | xargs -0 -r md5sum) >"$stage/DEBIAN/md5sums"
  local deb="$out/${name}_${version}_amd64.deb"
  dpkg-deb --root-owner-group "${deb_z[@]}" --build "$stage" "$deb" >/dev/null
  echo "built $deb"
}

install_bin() { # src dest: stripped copy, mode 0755
  install -d "$(dirname "$2")"
  strip --strip-unneeded -o "$2" "$1"
  chmod 0755 "$2"
}

# Shell completions (bash, zsh, fish) and the man page, generated by the
# program itself from its clap definitions (`completions SHELL`, `manpage`).
install_shell_docs() { # program stage
  local p="$1" st="$2"
  install -d "$st/usr/share/bash-completion/completions" "$st/usr/share/zsh/vendor-completions" \
    "$st/usr/share/fish/vendor_completions.d" "$st/usr/share/man/man1"
  "$bin/$p" completions bash >"$st/usr/share/bash-completion/completions/$p"
  "$bin/$p" completions zsh >"$st/usr/share/zsh/vendor-completions/_$p"
  "$bin/$p" completions fish >"$st/usr/share/fish/vendor_completions.d/$p.fish"
  "$bin/$p" manpage | gzip -9n >"$st/usr/share/man/man1/$p.1.gz"
  chmod 0644 "$st/usr/share/bash-completion/completions/$p" "$st/usr/share/zsh/vendor-completions/_$p" \
    "$st/usr/share/fish/vendor_completions.d/$p.fish" "$st/usr/share/man/man1/$p.1.gz"
}

# --- client .deb -----------------------------------------------------------
s="$work/pra"
install_bin "$bin/pra" "$s/usr/bin/pra"
install_shell_docs pra "$s"
install -Dm0644 "$INST/deb/copyright" "$s/usr/share/doc/pra/copyright"
for doc in user-guide.md error-codes.md; do
  [ ! -f "$ROOT/docs/$doc" ] || install -Dm0644 "$ROOT/docs/$doc" "$s/usr/share/doc/pra/$doc"
done
client_deps="$(shlib_depends "$s/usr/bin/pra")"
long="PRA opens fixed local forwards (127.0.0.1:PORT) to the company's services
through one SSH connection to the PRA gateway, with a key bound to this PC.
This package holds the command-line program \`pra\`"
if [ "$with_gui" = 1 ]; then
  install_bin "$bin/pra-gui" "$s/usr/bin/pra-gui"
  install -Dm0644 "$INST/deb/pra/pra-gui.desktop" "$s/usr/share/applications/pra-gui.desktop"
  install -Dm0644 "$INST/deb/pra/pra-gui-autostart.desktop" "$s/usr/share/pra/autostart/pra-gui.desktop"
  install -Dm0644 "$icon_svg" "$s/usr/share/icons/hicolor/scalable/apps/pra.svg"
  install -Dm0644 "$icon_png" "$s/usr/share/icons/hicolor/256x256/apps/pra.png"
  client_deps="$(shlib_depends "$s/usr/bin/pra" "$s/usr/bin/pra-gui")"
  client_deps="$(join_deps "$client_deps" "$(dlopen_depends "$s/usr/bin/pra-gui")")"
  long="$long and the desktop app
\`pra-gui\` (window, tray icon, one-click Connect)"
fi
# The app remembers the passphrase in the desktop's Secret Service when
# there is one (else it says WAR(10230) and asks each time).
client_suggests=""
[ "$with_gui" = 0 ] || client_suggests="gnome-keyring | keepassxc"
make_deb pra "$s" "$client_deps" net "remote access through the PRA gateway (client)" "$long." "$client_suggests"

# --- registry .deb ---------------------------------------------------------
s="$work/pra-registry"
install_bin "$bin/pra-registry" "$s/usr/bin/pra-registry"
install_shell_docs pra-registry "$s"
install -Dm0644 "$INST/deb/pra-registry/pra-registry.service" "$s/lib/systemd/system/pra-registry.service"
install -Dm0644 "$INST/deb/pra-registry/pra-registry.env" "$s/etc/pra-registry/pra-registry.env"
install -Dm0644 "$INST/deb/copyright" "$s/usr/share/doc/pra-registry/copyright"
for doc in admin-guide.md error-codes.md protocol.md; do
  [ ! -f "$ROOT/docs/$doc" ] || install -Dm0644 "$ROOT/docs/$doc" "$s/usr/share/doc/pra-registry/$doc"
done
install -d "$s/DEBIAN"
for script in postinst prerm postrm; do
  install -m0755 "$INST/deb/pra-registry/$script" "$s/DEBIAN/$script"
done
echo /etc/pra-registry/pra-registry.env >"$s/DEBIAN/conffiles"
make_deb pra-registry "$s" "$(join_deps "$(shlib_depends "$s/usr/bin/pra-registry")" adduser)" net \
  "PRA key registry, admin CLI and SSH gateway" \
  "The PRA gateway accepts employees' approved, hardware-bound keys on one SSH
port (10022) and opens only the forwards the admin's rules name. The
registry keeps users, keys, rules and the audit log in /var/lib/pra-registry
(kept on upgrade, removal and purge) and serves the HTTP API and admin page.
Runs as the systemd service pra-registry under its own system user."

# --- Windows .msi ----------------------------------------------------------
if [ "$with_msi" = 1 ]; then
  m="$work/msi"
  mkdir -p "$m"
  x86_64-w64-mingw32-strip --strip-unneeded -o "$m/pra.exe" "$win_bin/pra.exe"
  # PowerShell completion next to pra.exe (same clap definitions as the
  # Linux build): `. "$env:ProgramFiles\PRA\pra-completion.ps1"` in $PROFILE.
  "$bin/pra" completions powershell >"$m/pra-completion.ps1"
  if [ "$with_gui" = 1 ]; then
    x86_64-w64-mingw32-strip --strip-unneeded -o "$m/pra-gui.exe" "$win_bin/pra-gui.exe"
    cp "$INST/msi/pra.wxs" "$m/pra.wxs"
  else
    sed '/gui:begin/,/gui:end/d' "$INST/msi/pra.wxs" >"$m/pra.wxs"
  fi
  cp "$icon_ico" "$m/pra.ico"
  msi="$out/pra-${version}-x64.msi"
  rm -f "$msi"
  (cd "$m" && wixl -a x64 -D Version="$msi_version" -D BinDir=. -D IconFile=pra.ico -o "$msi" pra.wxs)
  # What wixl cannot say, set with SQL on the database:
  # %ProgramData%\Pra and its log folder: Permanent (0x10) + 64-bit (0x100).
  msibuild "$msi" -q "UPDATE \`Component\` SET \`Attributes\` = 272 WHERE \`Component\` = 'DataDir' OR \`Component\` = 'LogDir'"
  # INSTALLDIR appended to the system PATH with pra.exe's component
  # ("=-*": set on install, remove on uninstall, system variable; "[~];"
  # appends), as WiX's <Environment Part="last" System="yes"/> does.
  msibuild "$msi" -q "CREATE TABLE \`Environment\` (\`Environment\` CHAR(72) NOT NULL, \`Name\` CHAR(255) NOT NULL LOCALIZABLE, \`Value\` CHAR(255) LOCALIZABLE, \`Component_\` CHAR(72) NOT NULL PRIMARY KEY \`Environment\`)"
  msibuild "$msi" -q "INSERT INTO \`Environment\` (\`Environment\`, \`Name\`, \`Value\`, \`Component_\`) VALUES ('PathPra', '=-*PATH', '[~];[INSTALLDIR]', 'PraCli')"
  msibuild "$msi" -q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Sequence\`) VALUES ('RemoveEnvironmentStrings', 3300)"
  msibuild "$msi" -q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Sequence\`) VALUES ('WriteEnvironmentStrings', 5200)"
  # Uninstall and %ProgramData%\Pra: kept unless PURGE_DATA=1 (msiexec /x
  # ... PURGE_DATA=1, or "Yes" to the question below). PurgeData: cmd.exe
  # rmdir of the folder, deferred, as LocalSystem (34 exe in a folder +
  # 64 ignore exit code + 1024 in-script + 2048 no impersonation), after
  # RemoveFiles; never when an upgrade removes the old version.
  purge_cmd='"[System64Folder]cmd.exe" /c rmdir /s /q "[CommonAppDataFolder]Pra"'
  msibuild "$msi" -q "INSERT INTO \`CustomAction\` (\`Action\`, \`Type\`, \`Source\`, \`Target\`) VALUES ('PurgeData', 3170, 'TARGETDIR', '$purge_cmd')"
  msibuild "$msi" -q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Condition\`, \`Sequence\`) VALUES ('PurgeData', 'REMOVE~=\"ALL\" AND PURGE_DATA=\"1\" AND NOT UPGRADINGPRODUCTCODE', 3510)"
  # The interactive uninstall asks first (any UI but /qn; the default
  # button is No): a Windows Installer user message (Yes/No, question
  # icon, second button default) from an inline VBScript action (38, + 64
  # so a script failure never blocks the uninstall). Yes sets PURGE_DATA=1.
  ask='Set r=Session.Installer.CreateRecord(0):r.StringData(0)="Also delete the key and logs (ProgramData\Pra)? No keeps them for a reinstall or upgrade.":If Session.Message(&H3000124,r)=6 Then Session.Property("PURGE_DATA")="1"'
  msibuild "$msi" -q "INSERT INTO \`CustomAction\` (\`Action\`, \`Type\`, \`Target\`) VALUES ('AskPurgeData', 102, '$ask')"
  msibuild "$msi" -q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Condition\`, \`Sequence\`) VALUES ('AskPurgeData', 'REMOVE~=\"ALL\" AND NOT UPGRADINGPRODUCTCODE AND NOT PURGE_DATA AND UILevel>2', 1450)"
  # PURGE_DATA reaches the elevated part of a per-machine uninstall.
  msibuild "$msi" -q "UPDATE \`Property\` SET \`Value\` = 'WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;PURGE_DATA' WHERE \`Property\` = 'SecureCustomProperties'"
  echo "built $msi"
fi
echo "build.sh: done in $SECONDS s (cargo $cargo_secs s, packaging $((SECONDS - cargo_secs)) s)"
