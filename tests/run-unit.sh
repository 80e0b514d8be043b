#!/usr/bin/env bash
# Run the cmocka unit test binaries given as arguments; print a total; exit non-zero on failure.
# No unit test skips (one that cannot use the kernel runs its checks another way, as
# test_pidsweep does): a skipped test counts as failed, so that none can pass by not running.
set -u
pass=0 fail=0
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
		echo "$t: $s test(s) skipped: counted as failed"
		f=$((f + s))
	fi
	pass=$((pass + p)) fail=$((fail + f))
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
