#!/usr/bin/env bash
# Everything `make check` runs: unit tests, the unit tests again with ASan+UBSan, each fuzz
# target for FUZZ_SECONDS (6), offset checks against each interpreter's headers, and the
# integration suites against the real kernel (tests/integration/test_*.py, all on
# tests/integration/harness.py). Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
total_pass=0 total_fail=0

tally() {	# tally LOGFILE [all]: add the last (or every) "N passed, N failed" line of a log
	local line p f
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$1" | if [ "${2:-}" = all ]; then
		awk '{for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }}
		     END { if (NR) printf "%d passed, %d failed\n", p, f }'
	else tail -n 1; fi)
	p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')
	f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
	[ -n "$line" ] || { p=0; f=1; echo "$1: no result line"; }
	total_pass=$((total_pass + p)) total_fail=$((total_fail + f))
	echo "-- $(basename "$1"): $((SECONDS - section_start)) s (make check's 20-minute budget: $SECONDS s used)"
	section_start=$SECONDS
}
section_start=$SECONDS

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "== unit tests"
tests/run-unit.sh "$@" 2>&1 | tee "$logs/unit"
tally "$logs/unit"

echo "== sanitizers: the unit tests and the tool's argument checks with ASan+UBSan (build-asan)"
make --no-print-directory check-sanitize 2>&1 | tee "$logs/sanitize"
tally "$logs/sanitize"

echo "== fuzzing: each libFuzzer target ${FUZZ_SECONDS:-6} s on its seed corpus"
make --no-print-directory -j"$(nproc)" fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-6}" 2>&1 | tee "$logs/fuzz"
tally "$logs/fuzz"

echo "== the exporter's outputs read by promtool, go tool pprof and a real Prometheus"
tests/integration/test_exporter_tools.sh 2>&1 | tee "$logs/exporter"
tally "$logs/exporter"

echo "== deployment files: make install, systemd-analyze verify, promtool check config, kubectl dry run"
tests/integration/test_deploy.sh 2>&1 | tee "$logs/deploy"
tally "$logs/deploy"

echo "== offsets against each interpreter's own headers"
tests/offsets/run.sh 2>&1 | tee "$logs/offsets"
tally "$logs/offsets" all
grep -q '^all passed' "$logs/offsets" || { echo "offset checks did not pass"; total_fail=$((total_fail + 1)); }

echo "== integration: CPU sampling (real kernel, real interpreters)"
tests/integration/test_sampling.py 2>&1 | tee "$logs/integration"
tally "$logs/integration"

echo "== --idle (wall-clock: off-CPU time) and --gil (the GIL holder only) on every interpreter"
tests/integration/test_wall.py 2>&1 | tee "$logs/wall"
tally "$logs/wall"
echo "== -- COMMAND (its start, exit status, signals, SUDO_UID) and Python thread names, on every interpreter"
tests/integration/test_launch.py 2>&1 | tee "$logs/launch"
tally "$logs/launch"

echo "== the command line: bad input, output paths at start, write errors, --json profile, --pprof"
tests/integration/test_cli.py 2>&1 | tee "$logs/cli"
tally "$logs/cli"

echo "== host-wide mode: discovery latency, exits, non-Python left alone, filters, namespaces, service roots"
tests/integration/test_discovery.py 2>&1 | tee "$logs/discovery"
tally "$logs/discovery"

echo "== SQL through libpq (own PostgreSQL 15: psycopg2, psycopg 3, ctypes on every interpreter)"
tests/integration/test_sql.py 2>&1 | tee "$logs/sql"
tally "$logs/sql"

echo "== SQL from the wire protocol (psycopg2, psycopg 3, asyncpg, pg8000; TCP and unix; TLS counted)"
tests/integration/test_wire.py 2>&1 | tee "$logs/wire"
tally "$logs/wire"

echo "== load: SELECT 1 through psycopg2 at 20,000/s for 60 s from the wire, no loss, counts equal pg_stat_statements"
tests/integration/test_load.py 2>&1 | tee "$logs/load"
tally "$logs/load"

echo "== --functions: USDT probes (C stand-in with sys/sdt.h, Debian 3.15), sampled fallback (3.11-3.14, pyenv)"
tests/integration/test_functions.py 2>&1 | tee "$logs/functions"
tally "$logs/functions"

echo "== HTTP requests and N+1 (Django on gunicorn sync and gthread and runserver, Flask; own PostgreSQL)"
tests/integration/test_requests.py 2>&1 | tee "$logs/requests"
tally "$logs/requests"

echo "== requests by task: uvicorn (Starlette, FastAPI), hypercorn, aiohttp, gunicorn -k gevent, waitress"
tests/integration/test_async.py 2>&1 | tee "$logs/async"
tally "$logs/async"

echo "== the host-wide collector: a real Prometheus scraping it, promtool, go tool pprof, faults, churn"
tests/integration/test_collector.py 2>&1 | tee "$logs/collector"
tally "$logs/collector"

echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
