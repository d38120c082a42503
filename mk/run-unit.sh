#!/bin/sh
#
# run-unit.sh BIN... -- run cmocka unit test binaries and add up the results.
#
# Each binary runs with a time limit; its output is shown when it fails (or
# always with VERBOSE=1).  cmocka closes each group with
#	[  PASSED  ] N test(s).
#	[  FAILED  ] N test(s), listed below:
# and a binary may hold several groups, so the counts are summed.  A binary
# that exits non-zero without reporting a failed test (a crash, a sanitizer
# abort, a timeout) counts as one failure.  The last line of output is always
#	N passed, N failed
# and the exit status is non-zero when anything failed.

set -u

UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
VERBOSE=${VERBOSE:-0}

# Plain-text cmocka output on stdout whatever the environment says.
CMOCKA_MESSAGE_OUTPUT=STDOUT
export CMOCKA_MESSAGE_OUTPUT
unset CMOCKA_XML_FILE

total_passed=0
total_failed=0
total_skipped=0
out=$(mktemp "${TMPDIR:-/tmp}/posthaste-unit.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT
trap 'exit 130' INT TERM

# sum_counts LABEL: sum N over the cmocka lines "[  LABEL  ] N test(s)..."
sum_counts()
{
	sed -n "s/^\[  *$1  *\] \([0-9][0-9]*\) test.*/\1/p" "$out" |
	    awk '{ n += $1 } END { print n + 0 }'
}

for bin in "$@"; do
	name=$(basename "$bin")
	if [ ! -x "$bin" ]; then
		echo "FAIL $name: not built ($bin)"
		total_failed=$((total_failed + 1))
		continue
	fi

	if command -v timeout >/dev/null 2>&1; then
		timeout -k 10 "$UNIT_TIMEOUT" "$bin" >"$out" 2>&1 </dev/null
	else
		"$bin" >"$out" 2>&1 </dev/null
	fi
	rc=$?

	passed=$(sum_counts PASSED)
	failed=$(sum_counts FAILED)
	skipped=$(sum_counts SKIPPED)
	reason=
	if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		# Crashed or timed out outside any test cmocka could report.
		failed=1
		case $rc in
		124)	reason=" (timed out after ${UNIT_TIMEOUT}s)" ;;
		*)	reason=" (exit status $rc)" ;;
		esac
	fi
	if [ "$rc" -eq 0 ] && [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
		failed=1
		reason=" (no cmocka result lines in its output)"
	fi

	if [ "$failed" -eq 0 ]; then
		echo "PASS $name: $passed passed"
		[ "$VERBOSE" = 1 ] && sed 's/^/    /' "$out"
		[ "$skipped" -ne 0 ] && echo "SKIP $name: $skipped test(s) skipped" &&
		    grep -i 'skip' "$out" | sed 's/^/    /'
	else
		echo "FAIL $name: $passed passed, $failed failed$reason"
		sed 's/^/    /' "$out"
	fi
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
	total_skipped=$((total_skipped + skipped))
done

echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
[ "$total_failed" -eq 0 ]
