#!/usr/bin/env bash
# How scripts/test.sh has cargo start each test binary (cargo's target
# runner, CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER; cargo starts a test
# binary in its crate's folder). The integration tests of the registry and
# e2e crates spend most of their time waiting on servers, sockets and
# timers, so they run with more threads than the machine has cores
# (PRA_IT_THREADS, 4 by default); the heavy ones take a lock and run alone
# (`alone()` in their tests/it/common). Every other binary keeps cargo's
# default (one thread per core).
case "$(basename "$PWD")" in
  registry|e2e) export RUST_TEST_THREADS="${PRA_IT_THREADS:-4}" ;;
esac
exec "$@"
