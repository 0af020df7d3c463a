#!/usr/bin/env bash
# Every test PRA has, as CI runs it: install what is needed, then the
# quality gates (format, lints) and the whole test suite.
# Usage: scripts/test.sh        (from anywhere; no terminal needed)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Each stage's heading shows the seconds since the start (where time goes).
stage() { echo "== [$SECONDS s] $*"; }
trap 'echo "== [$SECONDS s] end (exit $?)"' EXIT
stage "cargo fmt --check"
cargo fmt --all --check
stage "no import circles between source files"
python3 scripts/import-cycles.py
# Lint while building: clippy's driver compiles the workspace's own crates
# for every cargo command below (libraries, programs, unit and integration
# tests; the Windows cross-build; the packaging test's builds, which thus
# compile nothing again) and fails the build on any lint (-D warnings).
# One compile instead of a separate `cargo clippy` pass that checks
# everything a second time. Dependencies are built by plain rustc, as under
# cargo clippy; the machine code is rustc's either way.
export RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# A failing test's message stays next to its name in a shortened CI log
# (a backtrace would push it out); run one test again to see one.
export RUST_BACKTRACE=0
stage "cargo test, linted by clippy -D warnings while it builds"
# PRA_WORKSPACE_BUILT: the e2e tests take the programs this build makes
# (every package's programs, with the workspace's features) instead of
# building them again per package.
PRA_WORKSPACE_BUILT=1 CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$PWD/scripts/test-runner.sh" \
  cargo test --workspace --locked
# Windows code paths (ProgramData, MachineGuid, key-file ACL, credential
# store, tray) must compile and pass the lints (clippy sees cfg(windows) code
# only here): one cross-build of the libraries and programs, linted while it
# builds; its .exe files the packaging test below puts in the .msi. The
# tests are not built for Windows: they hold no cfg(windows) code, Wine runs
# the programs instead (the lane below), and their dev-dependencies (the
# whole registry) would double this build's time.
stage "Windows cross-build check (x86_64-pc-windows-gnu)"
cargo build --locked --target x86_64-pc-windows-gnu -p pra-client -p pra-gui --bins
stage "packages: .deb and .msi contents, install/upgrade/remove keeps data"
msi_dir="${CARGO_TARGET_DIR:-target}/windows-lane-msi"
PRA_MSI_OUT="$msi_dir" bash scripts/package-test.sh
# The Windows lane: those two .msi files (a version and a newer one) and
# the cross-built pra.exe / pra-gui.exe in them, run under Wine end to end.
stage "Windows lane (Wine): install, connect, doctor, logs, PC binding, upgrade, uninstall, GUI"
mapfile -t msis < <(ls "$msi_dir"/pra-*-x64.msi | sort -V)
bash scripts/windows-test.sh "${msis[@]}"
