# Sourced by scripts/package-test.sh and scripts/windows-test.sh: the
# pass / fail counters and `check`. With CHECK_TIMING=1 every line also says
# the seconds since `started` (default: when this was sourced).
pass=0
fail=0
started=${started:-$SECONDS}
_check_when() { if [ -n "${CHECK_TIMING:-}" ]; then printf ' (%s s)' "$((SECONDS - started))"; fi; }
ok() { pass=$((pass + 1)); echo "ok   $*$(_check_when)"; }
bad() { fail=$((fail + 1)); echo "FAIL $*$(_check_when)"; }
# check DESCRIPTION COMMAND...: passes when COMMAND exits 0; shows its output otherwise.
check() {
  local what="$1" outp
  shift
  if outp="$("$@" 2>&1)"; then ok "$what"; else
    bad "$what"
    printf '%s\n' "$outp" | head -20 | sed 's/^/     | /'
  fi
}
