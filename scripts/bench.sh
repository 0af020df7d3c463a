#!/usr/bin/env bash
# PRA against stock OpenSSH, side by side on loopback: builds the release
# binaries, starts both sides (registry + gateway + `pra connect`; sshd +
# `ssh -N -L`) and their targets (iperf3, echo), measures each quantity on
# both alternately, prints the table and writes it into docs/performance.md.
# Not part of scripts/test.sh (it takes minutes and wants a quiet machine).
#
#   scripts/bench.sh                 # everything, 5 runs each (~13 minutes)
#   scripts/bench.sh --runs 3 --only throughput,short
#   scripts/bench.sh --runs 3 --only delay --rtts 20,80,200 --no-write
#                                    # delayed link: a userspace delay proxy between
#                                    # client and server, upload and download per RTT
#   scripts/bench.sh --no-write      # print only
#
# Options after the script name go to `pra-bench run` (see `--help` there):
# --runs N, --secs S, --short N, --sessions N,N, --sshd-sessions N,
# --logins-secs S, --stall-secs S, --rtts MS,MS, --only LIST, --out FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

# The benchmark's own tools (iperf3, hyperfine for ad-hoc timing); sshd and
# ssh come with scripts/deps.sh.
bash scripts/deps.sh
need=""
for p in iperf3 hyperfine; do
  command -v "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

write=(--out docs/performance.md)
args=()
for a in "$@"; do
  if [ "$a" = "--no-write" ]; then write=(); else args+=("$a"); fi
done

cargo build --release --locked -p pra-client -p pra-registry -p pra-bench --bins
# 10,000 sessions need as many descriptors in the gateway and in the
# benchmark (each side of each connection).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec target/release/pra-bench run --bin-dir target/release "${write[@]}" "${args[@]}"
