#!/usr/bin/env bash
# make check-sanitize: the unit tests (with the replays of the fuzz inputs) as built with
# AddressSanitizer and UBSan in DIR (default build-asan), every report fatal, the tool's
# argument checks run under them (none of these load BPF), then a slice of the integration suite
# with that tool (below). Ends with "sanitize: N passed, N failed".
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
	    "-p 1 --libpq-probes nope" "-p 1 --no-sql --sql-in-flame" "-p 1 --sql-text-cap 1" "1 2" \
	    "-p 1 --idle --gil" "-p 1 --idle --no-samples"; do
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
# A slice of the integration suite with the sanitized tool (PYTRACE_BPF; root, real kernel): one
# interpreter per layout family for sampling (3.10: frame objects, Debian's 3.11: interpreter
# frames through cframe, 3.13: current_frame and _Py_DebugOffsets), --idle and --gil on two of
# them, the SQL from the wire (every driver over the unix socket, TLS over TCP), the libpq probes with psycopg2,
# HTTP requests with N+1 (by thread: gunicorn's sync and gthread workers, the raw tracepoints,
# uWSGI's binary protocol behind nginx, a urlconf that includes itself; by task on plain asyncio,
# and on uvicorn with psycopg 3, also over TLS, and on
# gevent, and through anyio's thread pool on uvicorn: FastAPI's def endpoints; uvicorn on uvloop
# with asyncpg runs in the collector's case); a command started under
# the tool with its threads named (managed and inline instance dicts); the collector serving metrics to a real
# Prometheus (long-running: where a memory error matters most; its first run under ASan found
# a read past a string in on_query). The
# harness fails any run of the tool whose stderr has a report, whatever exit status was expected.
# SANITIZE_INTEGRATION=0 leaves it out.
if [ "${SANITIZE_INTEGRATION:-1}" != 0 ]; then
	export PYTRACE_BPF=$(realpath "$dir/pytrace-bpf") PYTRACE_NO_SID=1 PYTRACE_TEST_FORK_DELAY=4
	# test_wire.py: its drivers over the unix socket only, one of each kind, its TLS cases over TCP
	# (see there)
	export PT_WIRE_UNIX_ONLY=1 PT_WIRE_BRIEF=1
	for suite in "test_sampling.py -k pyenv-3.10,debian" "test_wall.py -k debian" \
		     "test_launch.py -k debian" "test_collector.py -k scrape" \
		     "test_wire.py" "test_sql.py -k psycopg2/" \
		     "test_requests.py -k django-sync,django-gthread,django-loop,uwsgi-nginx,asyncio" \
		     "test_async.py -k uvicorn-fastapi-psycopg,uvicorn-fastapi-def-mw"; do
		echo "== sanitized integration: $suite"
		# shellcheck disable=SC2086
		timeout 600 tests/integration/$suite >"$log" 2>&1
		rc=$?
		grep -E '^FAIL |passed, [0-9]+ failed' "$log"
		line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
		p=$(sed -n 's/^\([0-9]*\) passed.*/\1/p' <<<"$line")
		f=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$line")
		if [ -z "$line" ]; then
			echo "$suite: no result line (exit $rc)"
			tail -n 20 "$log"
			f=1
		elif [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
			echo "$suite: exit $rc"
			f=1
		fi
		if grep -qE "$reports" "$log"; then
			echo "$suite: sanitizer report"
			f=$((${f:-0} + 1))
		fi
		pass=$((pass + ${p:-0})) fail=$((fail + ${f:-0}))
	done
fi
echo "sanitize: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
