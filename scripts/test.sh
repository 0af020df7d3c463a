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
stage "cargo test --no-run: build everything, linted by clippy -D warnings"
# Every crate for every platform, so the two builds below never wait on
# each other for a download.
cargo fetch --locked --quiet
cargo test --workspace --locked --no-run
# Windows code paths (ProgramData, MachineGuid, key-file ACL, credential
# store, tray) must compile and pass the lints (clippy sees cfg(windows) code
# only here): one cross-build of the libraries, programs and tests, linted
# while it builds; its .exe files the packaging test below puts in the .msi.
# It runs while the Linux tests run (they mostly wait on sockets and timers),
# at the lowest CPU priority so it only takes what they leave, in a target
# folder of its own so it never holds the build lock the tests' own cargo
# calls need. Its output goes to a log, shown when it ends.
export PRA_WINDOWS_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/cross"
mkdir -p "$PRA_WINDOWS_TARGET_DIR"
win_log="$PRA_WINDOWS_TARGET_DIR/build.log"
stage "Windows cross-build (x86_64-pc-windows-gnu) started in the background: $win_log"
setsid nice -n 19 cargo build --locked --target x86_64-pc-windows-gnu --target-dir "$PRA_WINDOWS_TARGET_DIR" \
  -p pra-client -p pra-gui --all-targets >"$win_log" 2>&1 &
win_pid=$!
trap 'rc=$?; kill -- -"$win_pid" 2>/dev/null; echo "== [$SECONDS s] end (exit $rc)"' EXIT
stage "cargo test (the Linux tests)"
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$PWD/scripts/test-runner.sh" \
  cargo test --workspace --locked
stage "Windows cross-build: waiting for it to end"
if wait "$win_pid"; then
  tail -n 1 "$win_log"
else
  cat "$win_log"
  echo "the Windows cross-build failed (its output above)" >&2
  exit 1
fi
stage "packages: .deb and .msi contents, install/upgrade/remove keeps data"
msi_dir="${CARGO_TARGET_DIR:-target}/windows-lane-msi"
PRA_MSI_OUT="$msi_dir" bash scripts/package-test.sh
# The Windows lane: those two .msi files (a version and a newer one) and
# the cross-built pra.exe / pra-gui.exe in them, run under Wine end to end.
stage "Windows lane (Wine): install, connect, doctor, logs, PC binding, upgrade, uninstall, GUI"
mapfile -t msis < <(ls "$msi_dir"/pra-*-x64.msi | sort -V)
bash scripts/windows-test.sh "${msis[@]}"
