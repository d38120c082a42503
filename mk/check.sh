#!/bin/sh
#
# check.sh -- the whole test suite, as "make check" runs it after building
# the normal tree (obj/):
#
#   0. make sure obj/ is built (a no-op after "make check" built it), and
#      build obj-san/ with AddressSanitizer + UndefinedBehaviorSanitizer
#   1. unit tests of obj/
#   2. integration tests against obj/bin/smtpd (the real daemon, as root),
#      then the package and manual page tests (test_package, once)
#   2b. "make strict": every source compiles as C11 + POSIX + BSD without
#      _GNU_SOURCE (obj-strict/, not linked); one test, passed or failed
#   3. unit tests of obj-san/
#   4. integration tests against obj-san/bin/smtpd
#   5. each libFuzzer harness for a few seconds (mk/fuzz-smoke.sh; run in
#      the background from step 1 on, reported here)
#
# Every step ends its output with "N passed, N failed" (", N skipped" may
# follow: tests that did not run, each with its reason on a SKIP line);
# those are added up.  A step that dies without such a line, or exits
# non-zero while reporting no failure, counts as one failure, so a broken
# step can never pass silently.  The last line printed is the total,
# "N passed, N failed, N skipped", and the exit status is non-zero when
# anything failed.  No "set -e": a failing step must
# not stop the later ones from running and being counted.

set -u

cd "$(dirname "$0")/.." || exit 1

PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3
JOBS=$(nproc 2>/dev/null || echo 2)

total_passed=0
total_failed=0
total_skipped=0
summary=

tmp=$(mktemp -d "${TMPDIR:-/tmp}/posthaste-check.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# unit_bins OBJDIR: the unit test binaries of a build, one per source file
# (globbing OBJDIR/regress would also pick up stale binaries of removed tests)
unit_bins()
{
	for src in regress/unit/test_*.c; do
		[ -e "$src" ] || continue
		name=$(basename "$src" .c)
		printf '%s ' "$1/regress/$name"
	done
}

# step NAME COMMAND...: run a command, show its output as it comes, and add
# its closing "N passed, N failed" to the totals.
step()
{
	name=$1
	shift
	echo
	echo "==> $name"
	start=$(date +%s)
	{ "$@" 2>&1; echo $? >"$tmp/rc"; } | tee "$tmp/out"
	rc=$(cat "$tmp/rc")
	grep '^SKIP ' "$tmp/out" >>"$tmp/skips"
	counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp/out" | tail -n 1)
	passed=0
	failed=0
	skipped=0
	if [ -n "$counts" ]; then
		passed=${counts%% passed*}
		failed=${counts#*passed, }
		failed=${failed%% failed*}
		case $counts in
		*skipped*)
			skipped=${counts#*failed, }
			skipped=${skipped%% skipped*}
			;;
		esac
	fi
	if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		echo "FAIL $name: exit status $rc without a failed test"
		failed=1
	fi
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
	total_skipped=$((total_skipped + skipped))
	summary="$summary
  $name: $passed passed, $failed failed, $skipped skipped ($(($(date +%s) - start))s)"
}

# strict_compile: "make strict" as one test of its own, counted the way a
# step is ("1 passed" or "1 failed"): the portability of the tree to the
# BSDs' libc, checked on this one (platform/platform.h, INSTALL).
strict_compile()
{
	if make --no-print-directory -j"$JOBS" strict; then
		echo "1 passed, 0 failed"
	else
		echo "0 passed, 1 failed"
	fi
}

# build NAME COMMAND...: a build step counts as one test of its own only
# when it fails (a broken build must fail the run, not just skip tests).
build()
{
	name=$1
	shift
	echo
	echo "==> $name"
	if "$@"; then
		summary="$summary
  $name: ok"
		return 0
	fi
	echo "FAIL $name"
	total_failed=$((total_failed + 1))
	summary="$summary
  $name: FAILED"
	return 1
}

# The sanitizer settings.  The daemon gets the same ones through the
# integration runner's environment.  Leaks are not checked in the daemon
# (it exits through fatal paths and forked children by design), only in
# the unit tests, where they are real bugs.
ASAN_DAEMON="detect_leaks=0:abort_on_error=1"
ASAN_UNIT=${UNIT_ASAN_OPTIONS:-"detect_leaks=1:abort_on_error=1"}
UBSAN="print_stacktrace=1:halt_on_error=1"

# "make check" has built obj/ already; this is a no-op then, and makes the
# script complete on its own (a broken build is counted, not fatal).  Both
# builds come first: a test of the plain build may need the sanitizer one
# (test_sandbox checks that "make install" refuses it).
obj_ok=0
san_ok=0
build "build obj" make --no-print-directory -j"$JOBS" all unit && obj_ok=1
build "build obj-san (ASan+UBSan)" \
    make --no-print-directory -j"$JOBS" OBJDIR=obj-san SAN=1 all unit &&
    san_ok=1

# The libFuzzer step needs CPU and nothing else; the integration tests
# mostly wait on sockets, timers and the disk.  So the fuzz smoke runs
# beside the first integration pass, at the lowest priority (the tests'
# timing keeps its margins), and is counted as a step of its own at the
# end.  This keeps the whole run inside CI's half hour.
fuzz_pid=
if command -v clang >/dev/null 2>&1; then
	( t0=$(date +%s)
	  nice -n 19 sh mk/fuzz-smoke.sh >"$tmp/fuzz.out" 2>&1
	  echo $? >"$tmp/fuzz.rc"
	  echo "fuzz smoke: $(($(date +%s) - t0))s in the background" \
	      >"$tmp/fuzz.time" ) &
	fuzz_pid=$!
fi

# fuzz_report: the background fuzz smoke's output and exit status
fuzz_report()
{
	cat "$tmp/fuzz.time" 2>/dev/null
	cat "$tmp/fuzz.out"
	return "$(cat "$tmp/fuzz.rc" 2>/dev/null || echo 1)"
}

if [ "$obj_ok" = 1 ]; then
	# shellcheck disable=SC2046 # one word per binary
	step "unit tests (obj)" sh mk/run-unit.sh $(unit_bins obj)
	step "integration tests (obj)" "$PYTHON" \
	    regress/integration/run.py --bindir obj/bin -x test_package::
	# the package is built by dpkg-buildpackage, the same whatever the
	# build under test: once is enough
	step "package and manual pages" "$PYTHON" \
	    regress/integration/run.py --bindir obj/bin -k test_package::
fi

step "strict compile (C11 + POSIX + BSD, no _GNU_SOURCE)" strict_compile

if [ "$san_ok" = 1 ]; then
	# shellcheck disable=SC2046
	step "unit tests (obj-san)" env ASAN_OPTIONS="$ASAN_UNIT" \
	    UBSAN_OPTIONS="$UBSAN" sh mk/run-unit.sh $(unit_bins obj-san)
	step "integration tests (obj-san)" env ASAN_OPTIONS="$ASAN_DAEMON" \
	    UBSAN_OPTIONS="$UBSAN" "$PYTHON" regress/integration/run.py \
	    --bindir obj-san/bin -x test_package::
fi

# every parser's libFuzzer harness, briefly (clang builds the whole tree
# once more, so clang-only warnings are caught too)
if [ -n "$fuzz_pid" ]; then
	wait "$fuzz_pid"
	step "fuzz smoke (libFuzzer, ASan+UBSan)" fuzz_report
fi

echo
echo "==> summary$summary"
if [ "$total_skipped" -ne 0 ]; then
	echo
	echo "==> skipped (each with its reason)"
	grep -h '^SKIP ' "$tmp"/skips 2>/dev/null
fi
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
[ "$total_failed" -eq 0 ]
