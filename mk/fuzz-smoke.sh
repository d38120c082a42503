#!/bin/sh
# fuzz-smoke.sh -- build the libFuzzer harnesses (clang, ASan+UBSan) and
# run each for FUZZ_TIME seconds (default 5: with a dozen harnesses the
# step stays near a minute) on its seed corpus.  A crash,
# a sanitizer report or a broken invariant fails that harness.  Ends with
# "N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 1
T=${FUZZ_TIME:-5}
passed=0
failed=0
if ! make --no-print-directory -f mk/fuzz.mk >/dev/null 2>&1; then
	echo "FAIL fuzz build (make -f mk/fuzz.mk)"
	echo "0 passed, 1 failed"
	exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/posthaste-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
for bin in obj-fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	name=${bin#obj-fuzz/fuzz_}
	corpus="$work/$name"
	mkdir -p "$corpus"
	[ -d "regress/fuzz/corpus/$name" ] &&
	    cp -r "regress/fuzz/corpus/$name/." "$corpus/"
	if "$bin" -max_total_time="$T" -runs=2000000 \
	    -artifact_prefix="$work/" "$corpus" >"$work/$name.log" 2>&1; then
		echo "PASS fuzz_$name ($(grep -o 'Done [0-9]* runs' \
		    "$work/$name.log" | tail -1))"
		passed=$((passed + 1))
	else
		echo "FAIL fuzz_$name"
		tail -20 "$work/$name.log"
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
