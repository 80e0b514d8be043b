#!/usr/bin/env bash
# make check-sanitize: the unit tests (with the replays of the fuzz inputs) as built with
# AddressSanitizer and UBSan in DIR (default build-asan), every report fatal, and the tool's
# argument checks run under them (none of these load BPF). Ends with "sanitize: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
dir=${1:-build-asan}
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
reports='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|^SUMMARY: (Address|Undefined)'
log=$(mktemp)
trap 'rm -f "$log"' EXIT

tests/run-unit.sh "$dir"/tests/* >"$log" 2>&1
cat "$log"
line=$(grep -E '^unit: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
pass=$(sed -n 's/^unit: \([0-9]*\) passed.*/\1/p' <<<"$line")
fail=$(sed -n 's/.* \([0-9]*\) failed$/\1/p' <<<"$line")
pass=${pass:-0} fail=${fail:-1}
if grep -qE "$reports" "$log"; then
	echo "sanitizer report in the unit tests"
	fail=$((fail + 1))
fi

# argp paths of the tool: each exits at once, with a usage error or not, and without a report
for args in "--version" "--help" "--usage" "--bogus" "-p" "-p 12x" "-p 1 -F 0" "-p 1 -d -5" \
	    "-p 1 --libpq-probes nope" "-p 1 --no-sql --sql-in-flame" "-p 1 --sql-text-cap 1" "1 2"; do
	# shellcheck disable=SC2086
	out=$(timeout 10 "$dir/pytrace-bpf" $args 2>&1 </dev/null)
	rc=$?
	if [ "$rc" -ge 124 ] || grep -qE "$reports" <<<"$out"; then
		printf 'pytrace-bpf %s: exit %d\n%s\n' "$args" "$rc" "$out"
		fail=$((fail + 1))
	else
		pass=$((pass + 1))
	fi
done
echo "sanitize: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
