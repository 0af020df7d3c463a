#!/usr/bin/env bash
# Install what building and testing PRA needs on a fresh Debian machine:
# apt packages for the test peers and cargo components for the gates.
# Idempotent; safe to run again. Used by scripts/test.sh and scripts/demo.sh.
set -euo pipefail

# The Windows lane (scripts/windows-test.sh) runs the .exe files and the
# .msi under Debian's Wine 8 (wine, wine64; the X libraries are the ones
# its X11 driver loads, which --no-install-recommends would leave out).
APT_PACKAGES="python3 openssh-client openssh-server util-linux bsdutils chromium chromium-driver postgresql xvfb xdotool imagemagick fonts-noto-cjk libgl1 libegl1 libgl1-mesa-dri libglx-mesa0 libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6 dpkg-dev wixl msitools mingw-w64 nasm desktop-file-utils systemd dbus-daemon wine wine64 libxrender1 libxcomposite1 libxinerama1 libxfixes3 libxxf86vm1 libgnutls30 curl unzip"

missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "deps: installing apt packages:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done

# Windows cross-build check and the .msi (installer/build.sh): the Rust
# target; its C parts (aws-lc-sys) use mingw-w64 and nasm from APT_PACKAGES.
rustup target list --installed 2>/dev/null | grep -qx x86_64-pc-windows-gnu || rustup target add x86_64-pc-windows-gnu
