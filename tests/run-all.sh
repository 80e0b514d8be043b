#!/usr/bin/env bash
# Everything `make check` runs: unit tests, offset checks against each interpreter's headers,
# and the integration tests against the real kernel. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
total_pass=0 total_fail=0

tally() {	# tally LOGFILE: add the last "N passed, N failed" line of a log
	local line p f
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
	p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')
	f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
	[ -n "$line" ] || { p=0; f=1; echo "$1: no result line"; }
	total_pass=$((total_pass + p)) total_fail=$((total_fail + f))
}

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "== unit tests"
tests/run-unit.sh "$@" 2>&1 | tee "$logs/unit"
tally "$logs/unit"

echo "== offsets against each interpreter's own headers"
tests/offsets/run.sh 2>&1 | tee "$logs/offsets"
tally "$logs/offsets"

echo "== integration (real kernel, real interpreters)"
tests/integration/run.py 2>&1 | tee "$logs/integration"
tally "$logs/integration"

echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
