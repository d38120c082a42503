#!/bin/sh
# fuzz-table.sh -- the table at the end of "make fuzz-long": one line per
# harness log (obj-fuzz/long/NAME.log, libFuzzer run with
# -print_final_stats=1), with its executions, execs/s (the final stats),
# coverage (the last "cov:" figure: edges reached), features, corpus
# size and whether it ended cleanly.
printf '%-20s %10s %9s %7s %8s %7s %s\n' harness runs execs/s cov ft corpus result
for log in "$@"; do
	name=$(basename "$log" .log)
	if [ ! -f "$log" ]; then
		printf '%-20s %10s %9s %7s %8s %7s %s\n' "$name" - - - - - \
		    "not run"
		continue
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
	    tail -1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	last=$(grep -E '^#[0-9]+' "$log" | grep 'cov: ' | tail -1)
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p')
	rc=$(sed -n 's/^exit: //p' "$log" | tail -1)
	if [ "$rc" = 0 ]; then
		result=ok
	else
		result="FAILED (exit $rc, see $log)"
	fi
	printf '%-20s %10s %9s %7s %8s %7s %s\n' "$name" "${runs:--}" \
	    "${eps:--}" "${cov:--}" "${ft:--}" "${corp:--}" "$result"
done
