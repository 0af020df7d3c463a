#!/usr/bin/env bash
# Every test PRA has, as CI runs it: install what is needed, then the
# quality gates (format, lints) and the whole test suite.
# Usage: scripts/test.sh        (from anywhere; no terminal needed)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
