#!/usr/bin/env bash
# Run the cmocka unit test binaries given as arguments; print a total; exit non-zero on failure.
# A test may skip only when it prints why ("SKIP REASON: ..."): the total counts and lists the
# skips with their reasons, a skip without one is a failure, and under CI=true (a root run that
# must exercise everything) every skip is a failure.
set -u
pass=0 fail=0 skipped=0 reasons=""
for t in "$@"; do
	out=$("$t" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
	s=$(printf '%s\n' "$out" | sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "$t exited $rc"
		f=1
	fi
	if [ "$s" -gt 0 ]; then
		why=$(printf '%s\n' "$out" | sed -n 's/^.*SKIP REASON: //p')
		if [ -z "$why" ]; then
			echo "$t: $s test(s) skipped without a reason: counted as failed"
			f=$((f + s)) s=0
		elif [ "${CI:-}" = true ]; then
			echo "$t: $s test(s) skipped under CI=true (the CI runs as root and must run them all): $why"
			f=$((f + s)) s=0
		else
			reasons="$reasons  $(basename "$t"): $why"$'\n'
		fi
	fi
	pass=$((pass + p)) fail=$((fail + f)) skipped=$((skipped + s))
done
if [ "$skipped" -gt 0 ]; then
	printf 'unit: skipped, with their reasons:\n%s' "$reasons"
	echo "unit: $pass passed, $fail failed, $skipped skipped"
else
	echo "unit: $pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
