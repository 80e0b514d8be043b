#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for the tests and the demo, independent of any system cluster.
#
# Usage: scripts/pg-cluster.sh start|stop|status|env [DIR]      (default DIR: /tmp/pytrace-pg)
#   start   initdb (once) and start the cluster, wait until it accepts connections, create
#           database "pytrace" with pg_stat_statements. Idempotent.
#   stop    stop the cluster and remove its data, log and socket (and DIR if then empty)
#   status  say whether it runs (exit 0) or not (exit 3)
#   env     print shell exports for clients:  eval "$(scripts/pg-cluster.sh env DIR)"
#
# The cluster listens on a Unix socket in DIR only; PYTRACE_PG_TCP=1 also listens on
# 127.0.0.1. PYTRACE_PG_PORT (default 54329) names the socket (.s.PGSQL.PORT) and the TCP port.
# Authentication is "trust" for local clients; every client connects as user postgres.
# initdb and pg_ctl run as user postgres, so DIR and its parents must be reachable by it.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PORT=${PYTRACE_PG_PORT:-54329}
TCP=${PYTRACE_PG_TCP:-0}
DBNAME=pytrace

usage() {
	sed -n '3,9s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

die() { echo "pg-cluster: $*" >&2; exit 1; }
log() { echo "pg-cluster: $*" >&2; }

[ $# -ge 1 ] && [ $# -le 2 ] || usage
cmd=$1
dir=${2:-/tmp/pytrace-pg}
case "$dir" in /*) ;; *) dir="$(pwd)/$dir" ;; esac
dir=${dir%/}
data="$dir/data"
logfile="$dir/postgres.log"

# Run a command as user postgres (directly when we already are postgres), from /: the caller's
# directory may be closed to postgres (a clone in a mktemp directory).
as_pg() {
	if [ "$(id -un)" = postgres ]; then
		"$@"
	elif [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		die "run as root or as user postgres"
	fi
}

psql_pg() {	# psql_pg DB SQL: one statement, unaligned tuples only
	as_pg env PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$PORT" -U postgres -d "$1" -tAc "$2"
}

running() {
	[ -f "$data/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" status -D "$data" >/dev/null 2>&1
}

cmd_start() {
	[ -x "$PGBIN/initdb" ] || die "$PGBIN/initdb not found: install postgresql-15 (scripts/install-deps.sh)"
	id postgres >/dev/null 2>&1 || die "no user postgres: install postgresql-15 (scripts/install-deps.sh)"
	# Unix socket paths are limited to 107 bytes.
	[ ${#dir} -le 80 ] || die "DIR is too long for a Unix socket path: $dir"

	local created=0
	if [ ! -d "$dir" ]; then
		mkdir -p "$dir"
		created=1
	fi
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres:postgres "$dir"
		chmod 0755 "$dir"
	fi
	if ! as_pg test -w "$dir" -a -x "$dir"; then
		[ $created = 1 ] && rmdir "$dir"
		die "user postgres cannot write to $dir (are its parent directories searchable by it?)"
	fi

	if [ ! -f "$data/PG_VERSION" ]; then
		log "initdb in $data"
		rm -rf "$data"
		as_pg "$PGBIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
			--no-sync >"$dir/initdb.log" 2>&1 ||
			{ tail -n 20 "$dir/initdb.log" >&2; die "initdb failed (log: $dir/initdb.log)"; }
		local listen=""
		[ "$TCP" = 1 ] && listen=127.0.0.1
		as_pg tee -a "$data/postgresql.conf" >/dev/null <<-EOF

		# pytrace-bpf test cluster (scripts/pg-cluster.sh)
		port = $PORT
		listen_addresses = '$listen'
		unix_socket_directories = '$dir'
		max_connections = 50
		shared_preload_libraries = 'pg_stat_statements'
		pg_stat_statements.track = all
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		logging_collector = off
		EOF
	fi

	if running; then
		log "already running in $dir"
	else
		log "starting (socket $dir/.s.PGSQL.$PORT$([ "$TCP" = 1 ] && echo ", 127.0.0.1:$PORT"))"
		as_pg "$PGBIN/pg_ctl" start -D "$data" -l "$logfile" -w -t 60 -s ||
			{ tail -n 20 "$logfile" >&2 || true; die "pg_ctl start failed (log: $logfile)"; }
	fi
	# pg_ctl -w returns once the server accepts connections; pg_isready double-checks the socket.
	local i
	for i in $(seq 1 100); do
		as_pg "$PGBIN/pg_isready" -q -h "$dir" -p "$PORT" && break
		[ "$i" -eq 100 ] && die "server does not accept connections (log: $logfile)"
		sleep 0.1
	done

	if [ "$(psql_pg postgres "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'")" != 1 ]; then
		psql_pg postgres "CREATE DATABASE $DBNAME"
	fi
	psql_pg "$DBNAME" "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
	log "ready: database $DBNAME, socket dir $dir, port $PORT"
}

cmd_stop() {
	if running; then
		log "stopping $dir"
		as_pg "$PGBIN/pg_ctl" stop -D "$data" -m fast -w -t 60 -s ||
			as_pg "$PGBIN/pg_ctl" stop -D "$data" -m immediate -w -t 30 -s || true
	fi
	# Remove only what start created.
	if [ -f "$data/PG_VERSION" ]; then
		rm -rf "$data"
	elif [ -d "$data" ] && [ -z "$(ls -A "$data")" ]; then
		rmdir "$data"
	elif [ -e "$data" ]; then
		die "$data does not look like a PostgreSQL data directory; not removing it"
	fi
	rm -f "$logfile" "$dir/initdb.log" "$dir/.s.PGSQL.$PORT" "$dir/.s.PGSQL.$PORT.lock"
	[ -d "$dir" ] && rmdir "$dir" 2>/dev/null || true
}

cmd_status() {
	if running; then
		local pid
		pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || echo '?')
		echo "running: pid $pid, socket $dir/.s.PGSQL.$PORT, database $DBNAME"
	else
		echo "not running ($dir)"
		return 3
	fi
}

cmd_env() {
	printf 'export PGHOST=%q PGPORT=%q PGDATABASE=%q PGUSER=postgres\n' "$dir" "$PORT" "$DBNAME"
}

case "$cmd" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*) usage ;;
esac
