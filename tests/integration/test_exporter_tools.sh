#!/usr/bin/env bash
# The exporter's outputs read by the real tools: promtool on both exposition formats,
# go tool pprof on a profile from folded stacks, and a real Prometheus scraping the exporter
# (OpenMetrics negotiated) with up == 1. Needs build/tools/exporter_demo (make build/tools/exporter_demo).
# Bounded in time, picks free ports, removes what it made. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
DEMO=${DEMO:-build/tools/exporter_demo}
pass=0 fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

tmp=$(mktemp -d /tmp/exporter-tools.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

if [ ! -x "$DEMO" ]; then
	bad "$DEMO missing (make build/tools/exporter_demo)"
	echo "$pass passed, $fail failed"
	exit 1
fi

# 1. promtool check metrics on text 0.0.4: clean
"$DEMO" metrics text > "$tmp/m.txt"
if out=$(promtool check metrics < "$tmp/m.txt" 2>&1) && [ -z "$out" ]; then
	ok "promtool check metrics: text 0.0.4 clean"
else
	bad "promtool check metrics on text 0.0.4: $out"
fi

# 2. OpenMetrics: promtool (2.42) parses with the text-format parser, which reads "# EOF" and
# "# UNIT" as comments but sees OpenMetrics counters (TYPE x, sample x_total) as a different
# metric: "x_total no help text". Anything else it reports is a failure.
"$DEMO" metrics openmetrics > "$tmp/m.om"
out=$(promtool check metrics < "$tmp/m.om" 2>&1)
rc=$?
unexpected=$(printf '%s\n' "$out" | grep -v '^$' | while read -r name rest; do
	base=${name%_total}
	if [ "$rest" = "no help text" ] && [ "$base" != "$name" ] && grep -qx "# TYPE $base counter" "$tmp/m.om"; then
		continue
	fi
	echo "$name $rest"
done)
if [ "$rc" -ne 1 ] && [ -z "$unexpected" ] && [ "$(tail -n1 "$tmp/m.om")" = "# EOF" ]; then
	ok "promtool check metrics: OpenMetrics parsed; only the known counter-naming notes ($(printf '%s\n' "$out" | grep -c 'no help text'))"
else
	bad "promtool on OpenMetrics (rc $rc): $unexpected"
fi

# 3. go tool pprof reads a profile from folded stacks and names the top function
cat > "$tmp/in.folded" <<'EOF'
<module> (app.py:40);main (app.py:31);handle_request (app/views.py:12);render (app/templates.py:88) 5
<module> (app.py:40);main (app.py:31);handle_request (app/views.py:14);query (app/db.py:50);[sql] SELECT count(*) FROM "orders" 9
<module> (app.py:40);main (app.py:31);handle_request (app/views.py:15);fib (app/f.py:3);fib (app/f.py:5) 31
<module> (app.py:40);main (app.py:31);handle_request (app/views.py:15);fib (app/f.py:4) 6
[native] 2
EOF
export HOME="$tmp/home" GOCACHE="$tmp/gocache" GOPATH="$tmp/gopath" GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local
mkdir -p "$HOME"
want=$("$DEMO" pprof "$tmp/in.folded" "$tmp/p.pb.gz" 10101010 | sed -n 's/^top \(.*\) [0-9]*$/\1/p')
if top=$(timeout 60 go tool pprof -top "$tmp/p.pb.gz" 2>"$tmp/pprof.err"); then
	first=$(printf '%s\n' "$top" | awk '/flat%/ {getline; print; exit}' | sed 's/^ *[^ ]* *[^ ]* *[^ ]* *[^ ]* *[^ ]* *//')
	# stack_agg names functions "name (file)": pprof shows the name
	if [ "$first" = "fib" ] && [ "${want%% (*}" = "fib" ]; then
		ok "go tool pprof -top: top function $first (37 of 53 samples), as stack_agg says"
	else
		bad "go tool pprof -top: top is '$first', stack_agg says '$want'"
	fi
	if printf '%s\n' "$top" | grep -q 'SELECT count(\*) FROM "orders"'; then
		ok "go tool pprof keeps [sql] frame names as written"
	else
		bad "go tool pprof mangled the [sql] frame"
	fi
else
	bad "go tool pprof failed: $(head -3 "$tmp/pprof.err")"
fi

# 4. a real Prometheus scrapes the exporter once
port=$(free_port)
: > "$tmp/serve.out"
"$DEMO" serve "$port" > "$tmp/serve.out" 2>&1 &
spid=$!
pids+=("$spid")
for _ in $(seq 50); do grep -q listening "$tmp/serve.out" && break; sleep 0.1; done
if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then
	ok "exporter serves /healthz"
else
	bad "exporter did not start: $(cat "$tmp/serve.out")"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/flame.svg?seconds=-1")
[ "$code" = 400 ] && ok "curl: bad seconds -> 400" || bad "curl: bad seconds -> $code"

pport=$(free_port)
cat > "$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: pytrace
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
timeout 120 prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
	--web.listen-address="127.0.0.1:$pport" > "$tmp/prom.log" 2>&1 &
ppid=$!
pids+=("$ppid")
up=""
for _ in $(seq 60); do
	up=$(curl -s "http://127.0.0.1:$pport/api/v1/query?query=up%7Bjob%3D%22pytrace%22%7D" 2>/dev/null |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null)
	[ "$up" = 1 ] && break
	sleep 0.5
done
if [ "$up" = 1 ]; then
	ok "prometheus: up{job=\"pytrace\"} == 1"
else
	bad "prometheus: up is '$up'; $(tail -3 "$tmp/prom.log")"
fi
# what it stored: a histogram count, a counter, a nasty label value, the dropped counter
q() {
	curl -s "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
}
for _ in $(seq 20); do [ -n "$(q 'sum(http_server_request_duration_seconds_count)')" ] && break; sleep 0.5; done
v=$(q 'sum(http_server_request_duration_seconds_count)')
[ "$v" = 200 ] && ok "prometheus: sum of http_server_request_duration_seconds_count is 200" || bad "prometheus: count sum '$v'"
v=$(q 'pytrace_events_lost_total{kind="stack"}')
[ "$v" = 3 ] && ok "prometheus: counter pytrace_events_lost_total read" || bad "prometheus: pytrace_events_lost_total '$v'"
v=$(q 'count(http_server_request_duration_seconds_count{http_route="/say \"hi\""})')
[ "$v" = 1 ] && ok "prometheus: label value with quotes round-trips" || bad "prometheus: quoted label value '$v'"
v=$(q 'pytrace_label_values_dropped_total{metric="http_server_request_duration_seconds"}')
[ -n "$v" ] && [ "$v" != 0 ] && ok "prometheus: dropped label values counted ($v)" || bad "prometheus: dropped '$v'"

kill "$ppid" 2>/dev/null; wait "$ppid" 2>/dev/null
kill -TERM "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
stats=$(grep '^requests' "$tmp/serve.out")
om=$(printf '%s\n' "$stats" | sed -n 's/.* openmetrics \([0-9]*\) .*/\1/p')
if [ -n "$om" ] && [ "$om" -ge 1 ]; then
	ok "prometheus negotiated OpenMetrics ($stats)"
else
	bad "no OpenMetrics scrape: $stats"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
