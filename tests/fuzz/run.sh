#!/usr/bin/env bash
# One bounded libFuzzer run, or the summary of several (make fuzz).
#   run.sh BIN CORPUS SECONDS OUTDIR   runs BIN for SECONDS on a scratch copy of CORPUS (new
#                                      inputs go to OUTDIR/new, never into the repository), the
#                                      log to OUTDIR/log, crash inputs to OUTDIR/artifacts/;
#                                      prints one line: "pass NAME ..." or "FAIL NAME ..."
#   run.sh --summary RESULT...         prints the results and "fuzz: N passed, N failed"
# Extra libFuzzer flags: FUZZ_FLAGS (e.g. FUZZ_FLAGS=-jobs=2).
set -u

if [ "${1:-}" = --summary ]; then
	shift
	pass=0 fail=0
	for r in "$@"; do
		line=$(cat "$r" 2>/dev/null)
		printf '%s\n' "${line:-FAIL $r: no result}"
		case $line in pass\ *) pass=$((pass + 1)) ;; *) fail=$((fail + 1)) ;; esac
	done
	echo "fuzz: $pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
fi

bin=$1 corpus=$2 secs=$3 out=$4
name=${bin##*/fuzz_}
rm -rf "$out/new" && mkdir -p "$out/new" "$out/artifacts"
[ -d "$corpus" ] || corpus=	# a new target without seeds yet starts from nothing
# shellcheck disable=SC2086
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$out/artifacts/" ${FUZZ_FLAGS:-} "$out/new" $corpus >"$out/log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log" | tail -n 1)
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/log" | tail -n 1)
cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$out/log" | tail -n 1)
# a sanitizer report fails the run even if the process somehow exited 0
if [ "$rc" -eq 0 ] && ! grep -qE '^==[0-9]+==ERROR|runtime error:|^SUMMARY: ' "$out/log"; then
	echo "pass $name: ${execs:-?} execs, ${speed:-?} exec/s, ${cov:-cov: ?} in ${secs} s"
else
	what=$(grep -m 1 -E 'ERROR: |runtime error: ' "$out/log" | sed -E 's/^.*(ERROR: |runtime error: )/\1/' | cut -c 1-120)
	echo "FAIL $name: exit $rc, ${what:-see log}; input: $(ls -t "$out"/artifacts/* 2>/dev/null | head -n 1); log: $out/log;" \
		"keep the input as tests/fuzz/regressions/$name/ once fixed"
fi
exit 0
