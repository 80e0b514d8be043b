#!/usr/bin/env bash
# `make demo`: trace a real Django service under gunicorn while it serves traffic.
#
# Starts a private PostgreSQL cluster (scripts/pg-cluster.sh), creates and seeds the demo's
# tables, starts demo/ under Debian's gunicorn (2 sync workers), runs build/pytrace-bpf on the
# gunicorn master while demo/traffic.py drives every endpoint, and writes into out/:
#   demo-flame.svg  demo.folded  demo-speedscope.json  demo-report.txt  demo-traffic.txt
#   demo-gunicorn.log  demo-tracer.log  demo-report.json  demo-requests.jsonl
# The flame graph carries SQL time as [sql] leaves; the JSON and text reports carry the per-route
# timings and the N+1 of /recipes/ with its call site (demo/recipes/views.py:12).
# gunicorn and the cluster are stopped on exit, Ctrl-C or failure.
#
# Environment: DEMO_PORT (default 8077, another free port if that one is taken and DEMO_PORT
# is unset), DEMO_GUNICORN_ARGS (e.g. "--worker-class gthread --threads 4"),
# DEMO_TRACE_SECONDS (15), DEMO_TRAFFIC_SECONDS (12), DEMO_RATE (99 Hz).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

PY=/usr/bin/python3		# Debian's: Django, psycopg2 and gunicorn live there, not in pyenv
GUNICORN=/usr/bin/gunicorn
TRACER=$repo/build/pytrace-bpf
OUT=out
TRACE_SECONDS=${DEMO_TRACE_SECONDS:-15}
TRAFFIC_SECONDS=${DEMO_TRAFFIC_SECONDS:-12}
RATE=${DEMO_RATE:-99}
RECIPES=50

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

pgdir= gunicorn_pid= tracer_pid= report_pid=

stop_pid() {	# stop_pid PID SIGNAL SECONDS: signal, wait, then SIGKILL
	local pid=$1 sig=$2 i
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -"$sig" "$pid" 2>/dev/null || true
	for i in $(seq 1 $(($3 * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$tracer_pid$report_pid$gunicorn_pid$pgdir" ] && step "Cleaning up"
	stop_pid "$tracer_pid" INT 10
	stop_pid "$report_pid" INT 10
	if [ -n "$gunicorn_pid" ] && kill -0 "$gunicorn_pid" 2>/dev/null; then
		echo "stopping gunicorn (pid $gunicorn_pid)"
		stop_pid "$gunicorn_pid" TERM 10
	fi
	if [ -n "$pgdir" ]; then
		scripts/pg-cluster.sh stop "$pgdir" || true
	fi
	[ $rc -eq 0 ] || echo "demo: failed (exit $rc)" >&2
	exit $rc
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT TERM

step "Checking prerequisites"
[ "$(id -u)" -eq 0 ] || die "run as root: the tracer loads BPF programs"
[ -x "$TRACER" ] || die "$TRACER is missing: run make first"
[ -x "$GUNICORN" ] || die "$GUNICORN is missing: scripts/install-deps.sh installs gunicorn"
"$PY" -c 'import django, psycopg2' 2>/dev/null ||
	die "$PY cannot import django and psycopg2: scripts/install-deps.sh installs python3-django, python3-psycopg2"
port_free() { "$PY" -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null; }
if [ -n "${DEMO_PORT:-}" ]; then
	port=$DEMO_PORT
	port_free "$port" || die "127.0.0.1:$port (DEMO_PORT) is in use"
else
	port=8077
	if ! port_free "$port"; then
		port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		echo "127.0.0.1:8077 is in use; using port $port"
	fi
fi
mkdir -p "$OUT"
rm -f "$OUT"/demo-flame.svg "$OUT"/demo.folded "$OUT"/demo-speedscope.json "$OUT"/demo-report.txt \
	"$OUT"/demo-traffic.txt "$OUT"/demo-gunicorn.log "$OUT"/demo-tracer.log "$OUT"/demo-report.json \
	"$OUT"/demo-requests.jsonl
echo "ok: $("$PY" -c 'import django, sys; print("Python", sys.version.split()[0], "Django", django.get_version())'), $("$TRACER" --version | head -n 1)"

step "Starting a private PostgreSQL cluster"
pgdir=$(mktemp -d /tmp/pytrace-demo-pg.XXXXXX)
scripts/pg-cluster.sh start "$pgdir"
eval "$(scripts/pg-cluster.sh env "$pgdir")"
export PGHOST PGPORT PGDATABASE PGUSER

step "Creating and seeding the demo tables"
(cd demo && "$PY" manage.py migrate --noinput -v 0 && "$PY" manage.py seed --recipes "$RECIPES")

step "Starting gunicorn on 127.0.0.1:$port"
export DEMO_PORT=$port
# shellcheck disable=SC2086  # DEMO_GUNICORN_ARGS is a list of options
"$PY" "$GUNICORN" -c "$repo/demo/gunicorn.conf.py" ${DEMO_GUNICORN_ARGS:-} >"$OUT/demo-gunicorn.log" 2>&1 &
gunicorn_pid=$!
if ! "$PY" demo/traffic.py --url "http://127.0.0.1:$port" --wait 30; then
	tail -n 20 "$OUT/demo-gunicorn.log" >&2
	die "gunicorn did not answer on 127.0.0.1:$port within 30 s (log: $OUT/demo-gunicorn.log)"
fi
sleep 0.5	# let every worker finish booting
workers=$(pgrep -P "$gunicorn_pid" | tr '\n' ' ')
echo "gunicorn master pid $gunicorn_pid, workers: ${workers:-none}"

step "Tracing gunicorn (pid $gunicorn_pid and its workers) for $TRACE_SECONDS s"
# ---------------------------------------------------------------------------------------------
# The tracer invocation. Add new tracer options (SQL, N+1, ...) to tracer_opts; the second run
# (the text report: no output options, so it prints the hot functions) gets the same ones.
tracer_opts=(--pid "$gunicorn_pid" --duration "$TRACE_SECONDS" --rate "$RATE")
tracer_outputs=(--flame "$OUT/demo-flame.svg" --collapsed "$OUT/demo.folded"
		--speedscope "$OUT/demo-speedscope.json" --title "pytrace-bpf demo: Django under gunicorn"
		--sql-in-flame --json "$OUT/demo-report.json" --requests-log "$OUT/demo-requests.jsonl")
echo "+ pytrace-bpf ${tracer_opts[*]} ${tracer_outputs[*]}"
"$TRACER" "${tracer_opts[@]}" "${tracer_outputs[@]}" >"$OUT/demo-tracer.log" 2>&1 &
tracer_pid=$!
echo "+ pytrace-bpf ${tracer_opts[*]} > $OUT/demo-report.txt"
"$TRACER" "${tracer_opts[@]}" >"$OUT/demo-report.txt" 2>&1 &
report_pid=$!
# ---------------------------------------------------------------------------------------------
for i in $(seq 1 300); do	# both say "Tracing pid ..." once attached
	grep -q '^Tracing' "$OUT/demo-tracer.log" && grep -q '^Tracing' "$OUT/demo-report.txt" && break
	kill -0 "$tracer_pid" 2>/dev/null || { cat "$OUT/demo-tracer.log" >&2; die "the tracer exited early"; }
	[ "$i" -eq 300 ] && die "the tracer did not start sampling within 30 s (log: $OUT/demo-tracer.log)"
	sleep 0.1
done
echo "tracing."

step "Driving traffic for $TRAFFIC_SECONDS s: /recipes/ (N+1), /recipes-fixed/, /recipes/<id>/, /authors/<name>/, /cpu/, /health/"
"$PY" demo/traffic.py --url "http://127.0.0.1:$port" --seconds "$TRAFFIC_SECONDS" --recipes "$RECIPES" \
	| tee "$OUT/demo-traffic.txt"
kill -0 "$gunicorn_pid" 2>/dev/null || die "gunicorn exited during the traffic (log: $OUT/demo-gunicorn.log)"

step "Waiting for the tracer to finish"
tracer_rc=0 report_rc=0
wait "$tracer_pid" || tracer_rc=$?
tracer_pid=
wait "$report_pid" || report_rc=$?
report_pid=
cat "$OUT/demo-tracer.log"
[ "$tracer_rc" -eq 0 ] || die "the tracer failed (exit $tracer_rc): see $OUT/demo-tracer.log"
for f in demo-flame.svg demo.folded demo-speedscope.json demo-report.json; do
	[ -s "$OUT/$f" ] || die "the tracer wrote no $OUT/$f"
done

step "Summary"
# Samples under each view function of demo/recipes/views.py (a stack counts once per view).
awk -v total=0 '
	{ n = $NF; total += n
	  split("recipes recipes_fixed recipe_detail cpu health recipe_name count_primes", v, " ")
	  for (i in v) if ($0 ~ ("(^|;)" v[i] " \\([^)]*/recipes/views\\.py:")) s[v[i]] += n }
	END {
	  printf "Time in the Django views, CPU samples and SQL (%d us in all, from %s):\n", total, FILENAME
	  split("recipes recipes_fixed recipe_detail cpu health", o, " ")
	  for (i = 1; i <= 5; i++) printf "  %-15s %6d  %5.1f%%\n", o[i], s[o[i]], total ? 100 * s[o[i]] / total : 0
	  printf "  of which recipe_name (the N+1 call site) %d, count_primes %d\n", s["recipe_name"], s["count_primes"]
	}' "$OUT/demo.folded"
echo
if [ "$report_rc" -eq 0 ]; then
	echo "Hot functions (from $OUT/demo-report.txt):"
	awk '/^Top functions by self/ { on = 1 } on && (NF == 0 || ++n > 12) { exit } on' "$OUT/demo-report.txt"
else
	echo "WARNING: the tracer's text report run failed (exit $report_rc); its output is in $OUT/demo-report.txt:" >&2
	tail -n 3 "$OUT/demo-report.txt" | sed 's/^/    /' >&2
	{
		echo
		echo "# The report run above failed (exit $report_rc); top functions by self time computed"
		echo "# by scripts/demo.sh from $OUT/demo.folded instead:"
	} >>"$OUT/demo-report.txt"
	awk '{ n = $NF; total += n; sub(/ [0-9]+$/, ""); k = split($0, f, ";"); self[f[k]] += n }
	     END { for (x in self) printf "  %6.2f%%  %s\n", 100 * self[x] / total, x }' "$OUT/demo.folded" |
		sort -k1,1nr | awk 'NR <= 10' | tee -a "$OUT/demo-report.txt"
fi

echo
if grep -q '^HTTP requests:' "$OUT/demo-report.txt"; then
	echo "Requests and N+1 queries (from $OUT/demo-report.txt):"
	awk '/^HTTP requests:/ { on = 1 } on' "$OUT/demo-report.txt" | sed 's/^/  /'
else
	echo "WARNING: no HTTP requests in $OUT/demo-report.txt" >&2
fi
# the same finding from the other run's JSON (traced beside it: its counts differ a little)
"$PY" - "$OUT/demo-report.json" <<'PYEOF'
import json, sys
doc = json.load(open(sys.argv[1]))
for f in doc.get("n_plus_one", []):
    print("N+1 in %s %s (%s, the run with the flame graph): %d queries per request in %d requests (%.1f ms), at %s"
          % (f["method"], f["route"], sys.argv[1], f["per_request"], f["requests"], f["total_ms"], f["call_site"]))
PYEOF

echo
echo "Outputs in $repo/$OUT/:"
for f in demo-flame.svg demo.folded demo-speedscope.json demo-report.txt demo-report.json demo-requests.jsonl \
	demo-traffic.txt demo-gunicorn.log demo-tracer.log; do
	printf '  %-22s %s\n' "$f" "$(du -h "$OUT/$f" | cut -f1)"
done
echo "Open $OUT/demo-flame.svg in a browser (click to zoom, Ctrl-F to search \"recipe_name\"),"
echo "or load $OUT/demo-speedscope.json into https://www.speedscope.app."
