#!/usr/bin/env bash
# Smoke test of scripts/pg-cluster.sh: start (twice), settings, pg_stat_statements, env, stop.
# Needs root and the postgresql packages (scripts/install-deps.sh). Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
no() { echo "FAIL $1"; fail=$((fail + 1)); }
check() {	# check NAME COMMAND...
	local name=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$name"; else no "$name"; fi
}

parent=$(mktemp -d)
chmod 0755 "$parent"
dir="$parent/pg"
trap 'scripts/pg-cluster.sh stop "$dir" >/dev/null 2>&1; rm -rf "$parent"' EXIT

check "start" scripts/pg-cluster.sh start "$dir"
check "start again (idempotent)" scripts/pg-cluster.sh start "$dir"
check "status while running" scripts/pg-cluster.sh status "$dir"
eval "$(scripts/pg-cluster.sh env "$dir")"
export PGHOST PGPORT PGDATABASE PGUSER
q() { /usr/lib/postgresql/15/bin/psql -X -tAc "$1" 2>/dev/null; }
[ "$PGHOST" = "$dir" ] && [ "$PGDATABASE" = pytrace ] && [ "$PGUSER" = postgres ] && ok "env" || no "env"
[ "$(q 'SELECT current_database()')" = pytrace ] && ok "database pytrace over the socket" || no "database pytrace over the socket"
[ "$(q 'SHOW fsync')" = off ] && ok "fsync off" || no "fsync off"
[ "$(q 'SHOW pg_stat_statements.track')" = all ] && ok "pg_stat_statements.track = all" || no "pg_stat_statements.track = all"
[ "$(q "SHOW listen_addresses")" = "" ] && ok "no TCP listener" || no "no TCP listener"
q 'SELECT 424242' >/dev/null
[ "$(q "SELECT count(*) > 0 FROM pg_stat_statements WHERE query LIKE 'SELECT \$1%'")" = t ] &&
	ok "pg_stat_statements records normalized queries" || no "pg_stat_statements records normalized queries"
check "stop" scripts/pg-cluster.sh stop "$dir"
scripts/pg-cluster.sh status "$dir" >/dev/null 2>&1; [ $? -eq 3 ] && ok "status after stop is 3" || no "status after stop is 3"
[ ! -e "$dir" ] && ok "stop removes DIR" || no "stop removes DIR"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
