// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* pytrace-bpf: where a running Python service spends its time, seen from outside with BPF. */
#include <argp.h>
#include <math.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "collector.h"
#include "flamegraph.h"
#include "funcprobe.h"
#include "pytrace_user.h"
#include "jsonw.h"
#include "launch.h"
#include "pprof.h"
#include "pyproc.h"
#include "sampler.h"
#include "session.h"
#include "speedscope.h"
#include "sockpeer.h"
#include "sqlmode.h"
#include "stacks.h"
#include "uprobe.h"
#include "util.h"


static struct env {
	pid_t pid;
	double duration;
	unsigned rate;
	const char *flame, *collapsed, *speedscope, *pprof;
	const char *title;
	bool threads;
	bool no_children;
	size_t max_stacks;
	const char *json;
	bool no_sql;
	int libpq_probes;		/* enum sql_probe_opt */
	bool sql_in_flame;
	bool idle;			/* --idle: wall-clock time (on- and off-CPU) in the profile */
	unsigned idle_walks;		/* --idle-walks: a thread's blocks walked a second, exactly (0: all) */
	bool idle_walks_set;
	bool gil;			/* --gil: only samples of the GIL's holder */
	bool show_literals;
	unsigned text_cap;
	double slow_ms;
	const char *slow_log;
	unsigned max_patterns;
	const char *funcs[FN_MAX_PATTERNS];
	int nfuncs;
	bool funcs_sample;
	bool no_http;
	bool no_samples;
	int sql_source;			/* enum sql_source (pgwiretrace.h) */
	struct sockpeer_ports pg_ports;	/* --pg-ports */
	const char *requests_log;
	unsigned n1_threshold;
	unsigned max_routes;
	struct collector_opts collector;	/* --prometheus */
	const char *auth_file;
	unsigned max_series;
	bool all;			/* --all: every Python process on the host */
	bool host_wide;			/* --all, or a filter without --pid */
	const char *comms[PROCS_FILTERS_MAX];
	unsigned ncomms;
	const char *exclude_comms[PROCS_FILTERS_MAX];
	unsigned nexclude;
	const char *cgroup;
	const char *service_name;
	char **cmd;			/* -- COMMAND [ARGS...]: started under the tracer */
} env = {
	.rate = 99,
	.text_cap = 1024,
	.slow_ms = -1,
	.sql_source = SQL_SOURCE_AUTO,
	.idle_walks = 1000,
};

const char *argp_program_version = "pytrace-bpf " PYTRACE_VERSION;
const char *argp_program_bug_address = "https://github.com/pytrace-bpf/pytrace-bpf/issues";
static const char doc[] =
/* argp wraps at column 79: keep every line shorter */
"Trace a running CPython process (3.8-3.15) and its children, or every CPython\n"
"process on the host, from BPF, with no change to them.\n"
"\n"
"USAGE: pytrace-bpf --pid PID [--duration SEC] [--rate HZ] [--flame FILE]\n"
"                   [--collapsed FILE] [--speedscope FILE] [--threads]\n"
"                   [--json FILE] [--sql-in-flame] [--idle] [--gil]\n"
"                   [--slow-ms MS --slow-log FILE] [--show-literals]\n"
"       pytrace-bpf --all [--comm NAME]... [--exclude-comm NAME]...\n"
"                   [--cgroup PATH] [--service-name NAME] [OUTPUT OPTIONS]\n"
"       pytrace-bpf --prometheus [ADDR:]PORT [--comm NAME]... [--cgroup PATH]\n"
"       pytrace-bpf [OPTIONS] -- COMMAND [ARGS...]\n"
"\n"
"Samples Python stacks (on-CPU, or wall-clock with --idle) for the flame-graph\n"
"outputs, and records every PostgreSQL statement with its latency, rows,\n"
"errors and the Python line that sent it: read from PostgreSQL's wire protocol\n"
"for any driver (psycopg2, psycopg 3, asyncpg, pg8000, ...), and from libpq's\n"
"probes on TLS connections. Follows HTTP requests of WSGI and ASGI servers and\n"
"flags N+1 queries. Stops after --duration, on Ctrl-C or SIGTERM, or when\n"
"every traced process has exited; then writes the outputs. With no output\n"
"option it prints the hottest functions and stacks and the costliest SQL.\n"
"\n"
"Host-wide (--all, or --comm/--exclude-comm/--cgroup without --pid): every\n"
"CPython process running at start and every one that starts later (containers\n"
"included: pids are the host's), each named by its service (OTEL_SERVICE_NAME,\n"
"gunicorn's proc name, the module or script), which becomes the root frame of\n"
"its stacks. Runs until --duration, Ctrl-C or SIGTERM.\n"
"\n"
"With a COMMAND after --, starts it with tracing already attached (it is held\n"
"before its exec), follows its children, passes SIGINT and SIGTERM on to it,\n"
"writes the outputs when it exits and exits with its status (128+N if signal\n"
"N killed it). Run by root with SUDO_UID set (sudo), the command runs as that\n"
"user. With --duration, tracing stops then, the outputs are written and the\n"
"command is ended (SIGTERM, SIGKILL 2 s later), as py-spy record --duration\n"
"does.\n"
"\n"
"EXAMPLES:\n"
"  # sample until Ctrl-C, write a flame graph\n"
"  pytrace-bpf --pid 1234 --flame out.svg\n"
"  # 30 s of folded stacks for flamegraph.pl; 10 s at 999 Hz for speedscope\n"
"  pytrace-bpf -p 1234 -d 30 --collapsed out.folded\n"
"  pytrace-bpf -p 1234 -d 10 -F 999 --speedscope s.json --threads\n"
"  # gunicorn's master and all its workers\n"
"  pytrace-bpf -p $(pgrep -o gunicorn) -d 60 --flame web.svg\n"
"  # SQL, requests and N+1 as JSON, and a log of the slow statements\n"
"  pytrace-bpf -p 1234 -d 60 --json report.json --slow-ms 100 --slow-log s.jsonl\n"
"  # time waiting on SQL as leaves; wall-clock: blocked time too\n"
"  pytrace-bpf -p 1234 -d 30 --flame web.svg --sql-in-flame\n"
"  pytrace-bpf -p 1234 -d 30 --flame wall.svg --idle\n"
"  # latency per call of the functions that match\n"
"  pytrace-bpf -p 1234 -d 30 --functions 'myapp.*' --functions '*views.py:*'\n"
"  # every Python service on the host\n"
"  pytrace-bpf --all -d 30 --flame host.svg\n"
"  # a program from its first instruction\n"
"  sudo pytrace-bpf --flame app.svg --threads -- python3 app.py --port 8000\n"
"  pytrace-bpf --comm gunicorn --exclude-comm celery -d 60 --json web.json\n"
"  pytrace-bpf --cgroup system.slice/web.service -d 30 --collapsed web.folded\n";

enum {
	OPT_FLAME = 0x100,
	OPT_COLLAPSED,
	OPT_SPEEDSCOPE,
	OPT_THREADS,
	OPT_NO_CHILDREN,
	OPT_TITLE,
	OPT_MAX_STACKS,
	OPT_JSON,
	OPT_NO_SQL,
	OPT_LIBPQ_PROBES,
	OPT_SQL_IN_FLAME,
	OPT_SHOW_LITERALS,
	OPT_TEXT_CAP,
	OPT_SLOW_MS,
	OPT_SLOW_LOG,
	OPT_MAX_PATTERNS,
	OPT_FUNCTIONS,
	OPT_FUNCTIONS_SOURCE,
	OPT_NO_HTTP,
	OPT_REQUESTS_LOG,
	OPT_N1_THRESHOLD,
	OPT_MAX_ROUTES,
	OPT_NO_SAMPLES,
	OPT_PPROF,
	OPT_SQL_SOURCE,
	OPT_PG_PORTS,
	OPT_PROMETHEUS,
	OPT_PROM_AUTH,
	OPT_PROM_TLS_CERT,
	OPT_PROM_TLS_KEY,
	OPT_REPORT_INTERVAL,
	OPT_PROFILE_WINDOW,
	OPT_MAX_SERIES,
	OPT_ALL,
	OPT_COMM,
	OPT_EXCLUDE_COMM,
	OPT_CGROUP,
	OPT_SERVICE_NAME,
	OPT_IDLE,
	OPT_IDLE_WALKS,
	OPT_GIL,
};

static const struct argp_option opts[] = {
	{ "pid", 'p', "PID", 0, "Process to trace, with its descendants (or --all)", 0 },
	{ "all", OPT_ALL, NULL, 0, "Trace every CPython process on the host, those running and those that start", 0 },
	{ "comm", OPT_COMM, "NAME", 0, "Only processes whose kernel comm is NAME (repeatable; without --pid: host-wide)", 0 },
	{ "exclude-comm", OPT_EXCLUDE_COMM, "NAME", 0, "Not processes whose kernel comm is NAME (repeatable)", 0 },
	{ "cgroup", OPT_CGROUP, "PATH", 0, "Only processes in this cgroup v2 or below it (a directory under /sys/fs/cgroup, or relative to it)", 0 },
	{ "service-name", OPT_SERVICE_NAME, "NAME", 0, "The service name of every traced process (default: OTEL_SERVICE_NAME, gunicorn's name, the module or script)", 0 },
	{ "duration", 'd', "SEC", 0, "Stop after SEC seconds (default: until Ctrl-C)", 0 },
	{ "rate", 'F', "HZ", 0, "Samples per second per CPU (default 99)", 0 },
	{ "flame", OPT_FLAME, "FILE", 0, "Write an interactive flame graph (SVG)", 1 },
	{ "collapsed", OPT_COLLAPSED, "FILE", 0, "Write folded stacks (root;...;leaf COUNT)", 1 },
	{ "speedscope", OPT_SPEEDSCOPE, "FILE", 0, "Write speedscope JSON", 1 },
	{ "pprof", OPT_PPROF, "FILE", 0, "Write a gzipped pprof profile (go tool pprof, Pyroscope)", 1 },
	{ "threads", OPT_THREADS, NULL, 0, "Make each thread the root frame of its stacks, named by threading.Thread.name (else the kernel's name); speedscope: a profile per thread", 1 },
	{ "title", OPT_TITLE, "TEXT", 0, "Flame graph title", 1 },
	{ "json", OPT_JSON, "FILE", 0, "Write the report as one JSON document (SQL patterns, counters)", 1 },
	{ "idle", OPT_IDLE, NULL, 0, "Wall-clock profile: also the time threads spend blocked (off-CPU), with what they waited on as the leaf ([off-cpu: sleep|lock|socket|io|other], [sql] ...); weights in microseconds", 1 },
	{ "idle-walks", OPT_IDLE_WALKS, "N", 0, "With --idle: stack walks a second per thread before its blocks are sampled (1 in k walked, counted k times: an unbiased estimate; default 1000, 0: walk every block)", 1 },
	{ "gil", OPT_GIL, NULL, 0, "Only samples of the thread holding the GIL (not for free-threaded builds)", 1 },
	{ "sql-in-flame", OPT_SQL_IN_FLAME, NULL, 0, "Show time waiting on SQL as [sql] leaf frames (weights in microseconds)", 1 },
	{ "slow-ms", OPT_SLOW_MS, "MS", 0, "With --slow-log: statements at least this slow", 1 },
	{ "slow-log", OPT_SLOW_LOG, "FILE", 0, "Write slow statements as JSON lines", 1 },
	{ "show-literals", OPT_SHOW_LITERALS, NULL, 0, "Keep literal values in examples and the slow log, and query strings in the requests log (off: normalized away)", 1 },
	{ "sql-text-cap", OPT_TEXT_CAP, "BYTES", 0, "Statement text captured per query (default 1024, at most 8191)", 2 },
	{ "max-patterns", OPT_MAX_PATTERNS, "N", 0, "Cap on distinct SQL patterns kept (default 2000)", 2 },
	{ "requests-log", OPT_REQUESTS_LOG, "FILE", 0, "Write each HTTP request as a JSON line as it completes", 1 },
	{ "n1-threshold", OPT_N1_THRESHOLD, "N", 0, "N+1: the same statement at least N times in one request (default 5)", 1 },
	{ "max-routes", OPT_MAX_ROUTES, "N", 0, "Cap on distinct HTTP routes kept (default 500)", 2 },
	{ "no-http", OPT_NO_HTTP, NULL, 0, "Do not follow HTTP requests on the target's sockets", 2 },
	{ "functions", OPT_FUNCTIONS, "PATTERN", 0, "Latency per call of matching functions (repeatable; globs such as 'myapp.*', 'app.views.index', '*views.py:*'), from CPython's USDT probes, or their share of wall time from on- and off-CPU samples where the probes are missing or partial; also GC pauses and imports", 1 },
	{ "functions-source", OPT_FUNCTIONS_SOURCE, "auto|sample", 0, "With --functions: probes where complete (auto, default), or sampled shares only", 2 },
	{ "no-sql", OPT_NO_SQL, NULL, 0, "Do not trace SQL statements", 2 },
	{ "sql-source", OPT_SQL_SOURCE, "auto|wire|libpq", 0,
	  "Where statements come from: PostgreSQL's wire protocol on the socket syscalls, for every driver "
	  "with no uprobe trap, and libpq's uprobes for the encrypted connections of a process that has any "
	  "(auto, the default); the wire only (wire); libpq's uprobes only (libpq: psycopg2 and psycopg 3)", 2 },
	{ "pg-ports", OPT_PG_PORTS, "PORT,...", 0,
	  "Ports of PostgreSQL servers (and poolers) on other hosts, for encrypted connections opened before "
	  "tracing, which only their port tells from HTTPS (default 5432,6432,6543; a server of this host is "
	  "known by its unix socket, and the port of any PostgreSQL connection seen is learned)", 2 },
	{ "no-samples", OPT_NO_SAMPLES, NULL, 0, "Do not sample CPU stacks (no profile in the report; flame-graph outputs need them)", 2 },
	{ "libpq-probes", OPT_LIBPQ_PROBES, "auto|send|exec", 0,
	  "Which libpq calls to probe: auto (default) moves a process that only uses PQexec* to one probe "
	  "per statement; send keeps PQsend*/PQgetResult; exec starts on PQexec*", 2 },
	{ "no-children", OPT_NO_CHILDREN, NULL, 0, "Trace PID only, not its descendants", 2 },
	{ "max-stacks", OPT_MAX_STACKS, "N", 0, "Cap on distinct stacks kept (default 100000; with --prometheus, per 10 s of the profile windows, default 2000)", 2 },
	{ "prometheus", OPT_PROMETHEUS, "[ADDR:]PORT", 0,
	  "Run as a collector: serve /metrics (Prometheus text or OpenMetrics), /healthz, "
	  "/flame.svg?seconds=N, /debug/pprof/profile?seconds=N and /report.json on ADDR:PORT "
	  "(127.0.0.1 unless an address is given; [::1]:PORT for IPv6; port 0 picks one) until SIGTERM", 3 },
	{ "prometheus-auth", OPT_PROM_AUTH, "FILE", 0, "With --prometheus: require HTTP basic auth, user:password from FILE's first line", 3 },
	{ "prometheus-tls-cert", OPT_PROM_TLS_CERT, "FILE", 0, "With --prometheus: serve HTTPS with this PEM certificate (and --prometheus-tls-key)", 3 },
	{ "prometheus-tls-key", OPT_PROM_TLS_KEY, "FILE", 0, "With --prometheus: the certificate's PEM private key", 3 },
	{ "report-interval", OPT_REPORT_INTERVAL, "SEC", 0, "With --prometheus: the window of /report.json (default 60 s)", 3 },
	{ "profile-window", OPT_PROFILE_WINDOW, "SEC", 0, "With --prometheus: the longest ?seconds= of /flame.svg and pprof (default 600)", 3 },
	{ "max-series", OPT_MAX_SERIES, "N", 0, "With --prometheus: label-value sets per metric before \"other\" (default 1000)", 3 },
	{ "verbose", 'v', NULL, 0, "Say more (twice: libbpf's debug output)", 4 },
	{},
};

static long parse_num(const char *arg, const char *what, long min, long max, struct argp_state *state)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max)
		argp_error(state, "invalid %s: '%s' (expected %ld to %ld)", what, arg, min, max);
	return v;
}

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	char *end;

	switch (key) {
	case 'p':
		env.pid = (pid_t)parse_num(arg, "pid", 1, 0x7fffffff, state);
		break;
	case 'd':
		errno = 0;
		env.duration = strtod(arg, &end);
		if (errno || end == arg || *end || !isfinite(env.duration) || env.duration <= 0)
			argp_error(state, "invalid duration: '%s' (seconds, > 0)", arg);
		break;
	case 'F':
		env.rate = (unsigned)parse_num(arg, "rate", 1, 100000, state);
		break;
	case OPT_FLAME:
		env.flame = arg;
		break;
	case OPT_COLLAPSED:
		env.collapsed = arg;
		break;
	case OPT_SPEEDSCOPE:
		env.speedscope = arg;
		break;
	case OPT_PPROF:
		env.pprof = arg;
		break;
	case OPT_SQL_SOURCE:
		if (!strcmp(arg, "libpq"))
			env.sql_source = SQL_SOURCE_LIBPQ;
		else if (!strcmp(arg, "wire"))
			env.sql_source = SQL_SOURCE_WIRE;
		else if (!strcmp(arg, "auto"))
			env.sql_source = SQL_SOURCE_AUTO;
		else
			argp_error(state, "--sql-source: auto, wire or libpq, not '%s'", arg);
		break;
	case OPT_PG_PORTS:
		if (sockpeer__parse_ports(arg, &env.pg_ports))
			argp_error(state, "--pg-ports: a comma-separated list of 1 to %d ports (1-65535), not '%s'",
				   SOCKPEER_PORTS_MAX, arg);
		break;
	case OPT_THREADS:
		env.threads = true;
		break;
	case OPT_TITLE:
		env.title = arg;
		break;
	case OPT_NO_CHILDREN:
		env.no_children = true;
		break;
	case OPT_MAX_STACKS:
		env.max_stacks = (size_t)parse_num(arg, "stack cap", 1, 100000000, state);
		break;
	case OPT_JSON:
		env.json = arg;
		break;
	case OPT_LIBPQ_PROBES:
		if (!strcmp(arg, "auto"))
			env.libpq_probes = SQL_PROBES_AUTO;
		else if (!strcmp(arg, "send"))
			env.libpq_probes = SQL_PROBES_SEND;
		else if (!strcmp(arg, "exec"))
			env.libpq_probes = SQL_PROBES_EXEC;
		else
			argp_error(state, "--libpq-probes: auto, send or exec, not '%s'", arg);
		break;
	case OPT_NO_SQL:
		env.no_sql = true;
		break;
	case OPT_SQL_IN_FLAME:
		env.sql_in_flame = true;
		break;
	case OPT_IDLE:
		env.idle = true;
		break;
	case OPT_IDLE_WALKS:
		env.idle_walks = (unsigned)parse_num(arg, "walks a second", 0, 1000000, state);
		env.idle_walks_set = true;
		break;
	case OPT_GIL:
		env.gil = true;
		break;
	case OPT_SHOW_LITERALS:
		env.show_literals = true;
		break;
	case OPT_TEXT_CAP:
		env.text_cap = (unsigned)parse_num(arg, "text cap", 16, SQL_TEXT_MAX - 1, state);
		break;
	case OPT_SLOW_MS:
		errno = 0;
		env.slow_ms = strtod(arg, &end);
		if (errno || end == arg || *end || !isfinite(env.slow_ms) || env.slow_ms < 0)
			argp_error(state, "invalid --slow-ms: '%s' (milliseconds, >= 0)", arg);
		break;
	case OPT_SLOW_LOG:
		env.slow_log = arg;
		break;
	case OPT_FUNCTIONS:
		if (env.nfuncs >= FN_MAX_PATTERNS)
			argp_error(state, "at most %d --functions patterns", FN_MAX_PATTERNS);
		env.funcs[env.nfuncs++] = arg;
		break;
	case OPT_FUNCTIONS_SOURCE:
		if (strcmp(arg, "auto") && strcmp(arg, "sample"))
			argp_error(state, "invalid --functions-source: '%s' (auto or sample)", arg);
		env.funcs_sample = !strcmp(arg, "sample");
		break;
	case OPT_MAX_PATTERNS:
		env.max_patterns = (unsigned)parse_num(arg, "pattern cap", 1, 1000000, state);
		break;
	case OPT_NO_HTTP:
		env.no_http = true;
		break;
	case OPT_NO_SAMPLES:
		env.no_samples = true;
		break;
	case OPT_REQUESTS_LOG:
		env.requests_log = arg;
		break;
	case OPT_N1_THRESHOLD:
		env.n1_threshold = (unsigned)parse_num(arg, "N+1 threshold", 2, 1000000, state);
		break;
	case OPT_MAX_ROUTES:
		env.max_routes = (unsigned)parse_num(arg, "route cap", 1, 100000, state);
		break;
	case OPT_PROMETHEUS: {
		char msg[200];

		if (collector__parse_listen(arg, &env.collector, msg, sizeof(msg)))
			argp_error(state, "%s", msg);
		env.collector.enabled = true;
		break;
	}
	case OPT_PROM_AUTH:
		env.auth_file = arg;
		break;
	case OPT_PROM_TLS_CERT:
		env.collector.tls_cert = arg;
		break;
	case OPT_PROM_TLS_KEY:
		env.collector.tls_key = arg;
		break;
	case OPT_REPORT_INTERVAL:
		env.collector.report_s = (unsigned)parse_num(arg, "report interval", 1, 86400, state);
		break;
	case OPT_PROFILE_WINDOW:
		env.collector.window_max_s = (unsigned)parse_num(arg, "profile window", 10, 86400, state);
		break;
	case OPT_MAX_SERIES:
		env.max_series = (unsigned)parse_num(arg, "series cap", 1, 1000000, state);
		break;
	case OPT_ALL:
		env.all = true;
		break;
	case OPT_COMM:
	case OPT_EXCLUDE_COMM:
		if ((key == OPT_COMM ? env.ncomms : env.nexclude) >= PROCS_FILTERS_MAX)
			argp_error(state, "at most %d --%s names", PROCS_FILTERS_MAX, key == OPT_COMM ? "comm" : "exclude-comm");
		if (!arg[0] || strlen(arg) > 15)
			argp_error(state, "invalid --%s '%s': a kernel comm has 1 to 15 bytes",
				   key == OPT_COMM ? "comm" : "exclude-comm", arg);
		if (key == OPT_COMM)
			env.comms[env.ncomms++] = arg;
		else
			env.exclude_comms[env.nexclude++] = arg;
		break;
	case OPT_CGROUP:
		env.cgroup = arg;
		break;
	case OPT_SERVICE_NAME:
		if (!arg[0] || strlen(arg) >= SERVICE_NAME_MAX)
			argp_error(state, "invalid --service-name: 1 to %d bytes", SERVICE_NAME_MAX - 1);
		env.service_name = arg;
		break;
	case 'v':
		pt_verbose++;
		break;
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument '%s' (a command to start goes after --: pytrace-bpf [OPTIONS] -- COMMAND [ARGS...])", arg);
		break;
	case ARGP_KEY_END:
		if (env.all && env.pid)
			argp_error(state, "--all and --pid exclude each other (--comm, --exclude-comm and --cgroup narrow either)");
		if (env.cmd && (env.pid || env.all || env.collector.enabled))
			argp_error(state, "a command to start (-- %s) excludes %s: it traces the command and its children",
				   env.cmd[0], env.pid ? "--pid" : env.all ? "--all" : "--prometheus");
		env.host_wide = env.all || (!env.pid && !env.cmd && (env.ncomms || env.nexclude || env.cgroup || env.collector.enabled));
		if (!env.pid && !env.host_wide && !env.cmd)
			argp_error(state, "--pid is required, or --all for every Python process on the host, or -- COMMAND to start one");
		if (env.host_wide && env.no_children)
			argp_error(state, "--no-children needs --pid");
		if (env.no_samples && (env.flame || env.collapsed || env.speedscope || env.pprof))
			argp_error(state, "--no-samples excludes --flame, --collapsed, --speedscope and --pprof");
		if ((env.idle || env.gil) && (env.no_samples || env.collector.enabled))
			argp_error(state, "--idle and --gil shape the profile: not with --no-samples or --prometheus");
		if (env.idle_walks_set && !env.idle)
			argp_error(state, "--idle-walks sets how --idle samples blocks: only with --idle");
		if (env.idle && env.gil)
			argp_error(state, "--gil keeps the GIL holder's on-CPU samples, --idle adds time off the CPU: choose one");
		if (env.no_sql && (env.sql_in_flame || env.slow_log))
			argp_error(state, "--no-sql excludes --sql-in-flame and --slow-log");
		if (env.slow_ms >= 0 && !env.slow_log)
			argp_error(state, "--slow-ms needs --slow-log FILE (where the slow statements go)");
		if (env.slow_log && env.slow_ms < 0)
			env.slow_ms = 0;
		if (!env.collector.enabled && (env.auth_file || env.collector.tls_cert || env.collector.tls_key ||
					       env.collector.report_s || env.collector.window_max_s || env.max_series))
			argp_error(state, "--prometheus-auth, --prometheus-tls-*, --report-interval, --profile-window and --max-series go with --prometheus");
		if (env.collector.enabled && (env.flame || env.collapsed || env.speedscope || env.pprof || env.json))
			argp_error(state, "--prometheus serves its outputs over HTTP (/flame.svg, /debug/pprof/profile, /report.json): it takes no --flame, --collapsed, --speedscope, --pprof or --json");
		if (!env.collector.tls_cert != !env.collector.tls_key)
			argp_error(state, "--prometheus-tls-cert and --prometheus-tls-key go together");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static volatile sig_atomic_t stop;
static struct launch launched;		/* -- COMMAND */
static volatile sig_atomic_t released;	/* the command was let go: signals are its */

static void on_ready(void *ctx, const char *url)
{
	(void)ctx;
	fprintf(stderr, "Serving metrics on %s (also /healthz, /flame.svg?seconds=N, /debug/pprof/profile?seconds=N, /report.json)\n", url);
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	if (released)
		launch__forward(&launched, sig, si);	/* the tracer stops when the command does */
	else
		stop = 1;
}

static void on_child(int sig)
{
	/* nothing: interrupts the poll, so that the command's exit is seen at once */
}

/* Root, or CAP_BPF + CAP_PERFMON (BPF and perf events) + CAP_SYS_PTRACE (reading the target). */
static int check_privileges(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	static const struct { int cap; const char *name; } need[] = {
		{ 39, "CAP_BPF" }, { 38, "CAP_PERFMON" }, { CAP_SYS_PTRACE, "CAP_SYS_PTRACE" },
	};
	char missing[128] = "";
	size_t i;

	if (syscall(SYS_capget, &hdr, data))
		return 0;	/* cannot tell: let the kernel decide */
	for (i = 0; i < ARRAY_SIZE(need); i++) {
		int c = need[i].cap;

		if (!(data[c / 32].effective & (1u << (c % 32)))) {
			strcat(missing, missing[0] ? ", " : "");
			strcat(missing, need[i].name);
		}
	}
	if (missing[0]) {
		elog("insufficient privileges: run as root (sudo), or grant %s\n", missing);
		return -EPERM;
	}
	return 0;
}

static int write_output(const char *path, const char *what, int (*fn)(FILE *, void *), void *ctx)
{
	FILE *f = fopen(path, "we");
	int ret;

	if (!f) {
		elog("cannot write %s %s: %s\n", what, path, strerror(errno));
		return -errno;
	}
	ret = fn(f, ctx);
	if (fclose(f) && !ret)
		ret = -errno;
	if (ret)
		elog("writing %s %s failed: %s\n", what, path, strerror(-ret));
	else
		fprintf(stderr, "Wrote %s %s\n", what, path);
	return ret;
}

struct out_ctx {
	struct stack_agg *stacks;
	char subtitle[256];
	int64_t start_unix_ns, duration_ns;
};

static int out_flame(FILE *f, void *c)
{
	struct out_ctx *o = c;
	struct flame_opts fo = {
		.title = env.title ? env.title : env.idle ? "pytrace-bpf: Python wall-clock time (on-CPU and off-CPU)" :
			 env.sql_in_flame ? "pytrace-bpf: Python CPU samples and SQL time" : "pytrace-bpf: Python CPU samples",
		.time_us = env.idle,
		.subtitle = o->subtitle,
		.count_name = env.sql_in_flame || env.idle ? "us" : "samples",
	};

	return flamegraph__write_svg(o->stacks, f, &fo);
}

static int out_collapsed(FILE *f, void *c)
{
	return stack_agg__write_folded(((struct out_ctx *)c)->stacks, f);
}

static int out_speedscope(FILE *f, void *c)
{
	struct out_ctx *o = c;

	return (env.threads ? speedscope__write_threads : speedscope__write)(o->stacks, f, o->subtitle,
									  env.sql_in_flame || env.idle ? "microseconds" : "none");
}

/*
 * pprof's sample types: CPU samples with their period, or with --sql-in-flame microseconds of
 * CPU and SQL time together.
 */
static int out_pprof(FILE *f, void *c)
{
	struct out_ctx *o = c;
	struct pprof_opts po = {
		.sample_type = env.sql_in_flame || env.idle ? "time" : "samples",
		.sample_unit = env.sql_in_flame || env.idle ? "microseconds" : "count",
		.period_ns = env.sql_in_flame || env.idle ? 0 : 1000000000LL / env.rate,
		.time_nanos = o->start_unix_ns,
		.duration_nanos = o->duration_ns,
		.comment = o->subtitle,
	};
	struct pprof *p = pprof__new(&po);
	int ret;

	if (!p)
		return -ENOMEM;
	ret = pprof__add_stacks(p, o->stacks);
	if (!ret)
		ret = pprof__write_file(p, f);
	pprof__free(p);
	return ret;
}

struct json_ctx {
	struct session *session;
	double elapsed;
	bool target_gone;
};

static int out_json(FILE *f, void *c)
{
	struct json_ctx *j = c;
	struct jsonw *w = jsonw__new(f);
	int ret;

	if (!w)
		return -ENOMEM;
	jsonw__pretty(w, true);
	jsonw__start_object(w);
	jsonw__string_field(w, "tool", "pytrace-bpf");
	jsonw__string_field(w, "version", PYTRACE_VERSION);
	if (env.host_wide)
		jsonw__bool_field(w, "host_wide", true);
	else
		jsonw__uint_field(w, "pid", env.pid);
	if (env.cmd) {
		jsonw__name(w, "command");
		jsonw__start_array(w);
		for (char **a = env.cmd; *a; a++)
			jsonw__string(w, *a);
		jsonw__end_array(w);
		if (launched.reaped)	/* else still running: ended after the outputs (--duration) */
			jsonw__int_field(w, "command_status", launch__exit_code(&launched, NULL, 0));
	}
	jsonw__double_fixed_field(w, "duration_s", j->elapsed, 3);
	jsonw__bool_field(w, "target_exited", j->target_gone);
	session__write_json(j->session, w);
	jsonw__end_object(w);
	ret = jsonw__finish(w);
	jsonw__free(w);
	fputc('\n', f);
	return ret;
}

/*
 * The PYTRACE_* knobs, read here and nowhere else: a bad value is an error, not a silent default.
 * PYTRACE_BTF: a kernel BTF file; PYTRACE_MAX_PROCS: processes followed at once;
 * PYTRACE_AHEAD_TTL_MS: how long libpq probes ahead live; PYTRACE_HTTP_HOOK: "raw" for the raw
 * syscall tracepoints (tests; empty or "auto": the default); PYTRACE_UPROBES: "perf" attaches uprobes
 * as perf events even where uprobe_multi links work (tests); PYTRACE_TASK_HOLD_MS: how long a
 * statement of a process going by task waits for its task's response before it is counted
 * unattributed (30 s; tests shorten it).
 */
/* A numeric knob: 0 and *out untouched if unset or empty, 0 and *out set if in [lo, hi], else -EINVAL. */
static int knob_ull(const char *name, unsigned long long lo, unsigned long long hi, unsigned long long *out)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long n;

	if (!v || !v[0])
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n < lo || n > hi) {
		elog("invalid %s '%s' (expected %llu to %llu)\n", name, v, lo, hi);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

static int read_knobs(struct session_opts *o)
{
	const char *v;
	unsigned long long procs = 0, ahead_ms = 0, hold_ms = 0;

	o->btf_path = getenv("PYTRACE_BTF");
	if (o->btf_path && !o->btf_path[0])
		o->btf_path = NULL;
	if (knob_ull("PYTRACE_MAX_PROCS", 16, 1U << 22, &procs) ||
	    knob_ull("PYTRACE_AHEAD_TTL_MS", 1, 3600000, &ahead_ms) ||
	    knob_ull("PYTRACE_TASK_HOLD_MS", 100, 3600000, &hold_ms))
		return -EINVAL;
	if (procs)
		o->max_procs = procs;
	if (ahead_ms)
		o->sql.ahead_ttl_ns = ahead_ms * 1000000ULL;
	if (hold_ms)
		o->http.req.task_hold_ns = hold_ms * 1000000ULL;
	if ((v = getenv("PYTRACE_HTTP_HOOK")) && v[0]) {
		if (strcmp(v, "raw") && strcmp(v, "auto")) {
			elog("invalid PYTRACE_HTTP_HOOK '%s' (expected raw or auto)\n", v);
			return -EINVAL;
		}
		o->http.raw_hook = !strcmp(v, "raw");
	}
	if ((v = getenv("PYTRACE_UPROBES")) && v[0] && strcmp(v, "perf") && strcmp(v, "auto")) {
		elog("invalid PYTRACE_UPROBES '%s' (expected perf or auto)\n", v);
		return -EINVAL;
	}
	if (v && !strcmp(v, "perf"))
		uprobe__use_perf_events();
	return 0;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The process a thread id belongs to (Tgid in /proc/PID/status), or -errno. */
static pid_t tgid_of(pid_t pid)
{
	char path[64], line[256];
	pid_t tgid = -ESRCH;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

struct out_path {
	const char *opt, *path;
	bool at_end;		/* written after the trace: checked now, opened then */
};

/*
 * Every output path, checked before tracing starts: not empty, not a directory, writable (or
 * creatable in a writable directory), and no two outputs naming the same file, by name or by
 * device and inode. A trace must not run for minutes to fail at the end, nor two outputs
 * overwrite each other.
 */
static int check_outputs(void)
{
	const struct out_path outs[] = {
		{ "--flame", env.flame, true }, { "--collapsed", env.collapsed, true },
		{ "--speedscope", env.speedscope, true }, { "--pprof", env.pprof, true }, { "--json", env.json, true },
		{ "--slow-log", env.slow_log, false }, { "--requests-log", env.requests_log, false },
	};
	struct stat st[ARRAY_SIZE(outs)];
	bool exists[ARRAY_SIZE(outs)] = {};
	size_t i, j;
	int fd;

	for (i = 0; i < ARRAY_SIZE(outs); i++) {
		const char *p = outs[i].path;

		if (!p)
			continue;
		if (!p[0]) {
			elog("%s: empty file name\n", outs[i].opt);
			return -EINVAL;
		}
		exists[i] = stat(p, &st[i]) == 0;
		if (exists[i] && S_ISDIR(st[i].st_mode)) {
			elog("%s %s: is a directory\n", outs[i].opt, p);
			return -EISDIR;
		}
		/* Opened for writing as it will be (not truncated), or created and removed again. */
		fd = exists[i] ? open(p, O_WRONLY | O_CLOEXEC | O_NOCTTY) :
				 open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			int e = errno;

			elog("%s %s: cannot write: %s\n", outs[i].opt, p, strerror(e));
			return -e;
		}
		close(fd);
		if (!exists[i])
			unlink(p);
		for (j = 0; j < i; j++) {
			if (!outs[j].path)
				continue;
			if (!strcmp(outs[j].path, p) ||
			    (exists[i] && exists[j] && st[i].st_dev == st[j].st_dev && st[i].st_ino == st[j].st_ino)) {
				elog("%s and %s name the same file (%s): give each output its own\n", outs[j].opt,
				     outs[i].opt, p);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/*
 * A log written during the trace, opened before tracing starts but not truncated yet: a run that
 * is refused or interrupted before it traces leaves an existing file as it was, and removes one
 * it created (discard_log).
 */
static FILE *open_log(const char *path, const char *what, bool *created)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	FILE *f;

	*created = fd >= 0;
	if (fd < 0 && errno == EEXIST)
		fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		elog("cannot write the %s %s: %s\n", what, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	/*
	 * A line a request (or a slow statement): stdio's 4 KiB buffer made a write(2) every few
	 * /recipes/ requests, 7% of the collector's CPU. The logs are flushed at each tick anyway.
	 */
	setvbuf(f, NULL, _IOFBF, 1 << 16);
	return f;
}

static void discard_log(FILE **f, const char *path, bool created)
{
	if (!*f)
		return;
	fclose(*f);
	*f = NULL;
	if (created)
		unlink(path);
}

/* Close a log written during the trace; a write error is reported with its cause. */
static int close_log(FILE *f, const char *what, const char *path)
{
	int ret = 0;

	if (!f)
		return 0;
	errno = 0;
	if (fflush(f) || ferror(f))
		ret = errno ? -errno : -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	if (ret)
		elog("writing %s %s failed: %s\n", what, path, strerror(-ret));
	return ret;
}

int main(int argc, char **argv)
{
	static const struct argp argp = { .options = opts, .parser = parse_arg, .args_doc = "[-- COMMAND [ARGS...]]", .doc = doc };
	struct session_opts so = {};
	struct session *sess = NULL;
	struct out_ctx out = {};
	FILE *slow = NULL, *reqlog = NULL;
	bool slow_created = false, reqlog_created = false;
	double start, elapsed;
	bool target_gone = false;
	unsigned written = 0;
	pid_t tgid;
	char err[512], cgroup[4096];
	int ret;

	/*
	 * Ctrl-C and SIGTERM end a trace cleanly, and during start-up too (checked once attached).
	 * A parent may have left them blocked (a supervisor, a script): unblocked, or the tracer
	 * could not be stopped; one that came while blocked is taken now.
	 */
	{
		struct sigaction sa = { .sa_sigaction = on_signal, .sa_flags = SA_SIGINFO }, sc = { .sa_handler = on_child };
		sigset_t set;

		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigemptyset(&sc.sa_mask);
		sigaction(SIGCHLD, &sc, NULL);
		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			env.cmd = argv + i + 1;
			argc = i;
			if (!env.cmd[0]) {
				elog("nothing after --: give the command to start (pytrace-bpf [OPTIONS] -- COMMAND [ARGS...])\n");
				return 2;
			}
			break;
		}
	}
	sockpeer__default_ports(&env.pg_ports);
	ret = argp_parse(&argp, argc, argv, 0, NULL, NULL);
	if (ret)
		return 2;
	if (read_knobs(&so))
		return 2;
	if (env.auth_file &&
	    collector__read_auth(env.auth_file, (char **)&env.collector.auth_user, (char **)&env.collector.auth_password,
				 err, sizeof(err))) {
		elog("--prometheus-auth: %s\n", err);
		return 2;
	}
	if (env.cgroup) {
		if (procs__cgroup_path(env.cgroup, cgroup, sizeof(cgroup), err, sizeof(err))) {
			elog("%s\n", err);
			return 2;
		}
		so.filter.cgroup = cgroup;
	}
	memcpy(so.filter.comms, env.comms, sizeof(env.comms));
	so.filter.ncomms = env.ncomms;
	memcpy(so.filter.exclude_comms, env.exclude_comms, sizeof(env.exclude_comms));
	so.filter.nexclude = env.nexclude;
	so.service_name = env.service_name;
	so.host_wide = env.host_wide;
	if (!env.host_wide && !env.cmd && kill(env.pid, 0) && errno == ESRCH) {
		elog("no process with pid %d\n", env.pid);
		return 1;
	}
	tgid = env.host_wide || env.cmd ? 0 : tgid_of(env.pid);
	if (tgid > 0 && tgid != env.pid) {
		fprintf(stderr, "pid %d is a thread of process %d: tracing process %d\n", env.pid, tgid, tgid);
		env.pid = tgid;
	}
	if (check_outputs())
		return 1;
	if (check_privileges())
		return 1;
	if (access(so.btf_path ? so.btf_path : "/sys/kernel/btf/vmlinux", R_OK)) {
		if (so.btf_path)
			elog("no kernel BTF at %s (PYTRACE_BTF): %s\n", so.btf_path, strerror(errno));
		else
			elog("this kernel has no BTF (/sys/kernel/btf/vmlinux): pytrace-bpf needs a kernel built with CONFIG_DEBUG_INFO_BTF=y, or a BTF file for it named by PYTRACE_BTF\n");
		return 1;
	}

	so.follow_children = !env.no_children;
	so.threads = env.threads;
	so.sampler.enabled = !env.no_samples;
	so.sampler.rate_hz = env.rate;
	so.sampler.max_stacks = env.max_stacks;
	so.sampler.us_weights = env.sql_in_flame || env.idle;
	so.sampler.idle = env.idle;
	so.sampler.idle_walks_per_s = env.idle_walks;
	so.sampler.gil = env.gil;
	so.sql.enabled = !env.no_sql;

	so.sql.text_cap = env.text_cap;
	so.sql.show_literals = env.show_literals;
	so.sql.slow_ms = env.slow_ms;
	so.sql.max_patterns = env.max_patterns;
	so.sql.probes = env.libpq_probes;
	if (env.sql_source != SQL_SOURCE_LIBPQ && !env.no_sql) {
		so.sql.no_libpq = env.sql_source == SQL_SOURCE_WIRE;
		so.sql.libpq_on_demand = env.sql_source == SQL_SOURCE_AUTO;
		so.pgwire.enabled = true;
		so.pgwire.text_cap = env.text_cap;
		so.pgwire.call_sites = true;
		so.pgwire.libpq_for_tls = env.sql_source == SQL_SOURCE_AUTO;
		so.pgwire.pg_ports = env.pg_ports;
	}
	/* --idle: a wait on PostgreSQL is its statement's [sql] leaf (told from the wire's connections) */
	so.sql.in_flame = env.sql_in_flame || (env.idle && so.pgwire.enabled);
	so.pgwire.whole_stacks = so.sql.in_flame || env.slow_log;
	if (env.nfuncs) {
		struct py_target py;
		struct py_probes pp;

		so.funcs.enabled = true;
		so.funcs.patterns = env.funcs;
		so.funcs.npatterns = env.nfuncs;
		so.funcs.mode = env.funcs_sample ? FUNCS_SAMPLE : FUNCS_AUTO;
		so.funcs.rate_hz = env.rate;
		so.funcs.gc = true;
		/* Where the function probes are missing or partial, the answer comes from samples. */
		if (env.funcs_sample || env.host_wide || env.cmd || funcprobe__detect(env.pid, &py, &pp, err, sizeof(err)) ||
		    pp.level != PY_PROBES_COMPLETE) {
			so.sampler.enabled = true;
			so.sampler.offcpu = true;
		}
	}
	so.collector = env.collector;
	so.collector.max_series = env.max_series;
	so.collector.slot_max_stacks = env.max_stacks;	/* per 10 s of the profile ring */
	so.collector.on_ready = on_ready;
	so.http.enabled = !env.no_http;
	so.http.req.n1_threshold = env.n1_threshold;
	so.http.req.max_routes = env.max_routes;
	so.http.req.lines = pt_verbose ? stdout : NULL;
	so.http.req.show_query = env.show_literals;
	if (env.requests_log) {
		reqlog = open_log(env.requests_log, "requests log", &reqlog_created);
		if (!reqlog)
			return 1;
		so.http.req.log = reqlog;
	}
	if (env.slow_log) {
		slow = open_log(env.slow_log, "slow log", &slow_created);
		if (!slow) {
			discard_log(&reqlog, env.requests_log, reqlog_created);
			return 1;
		}
		so.sql.slow_log = slow;
	}
	if (env.cmd) {
		/* forked now, held before its exec until everything is attached */
		if (launch__start(&launched, env.cmd, err, sizeof(err))) {
			elog("%s\n", err);
			ret = 1;
			goto cleanup;
		}
		env.pid = launched.pid;
		so.hold_pid = launched.pid;
	}
	sess = session__new(&so, err, sizeof(err));
	if (!sess) {
		elog("%s\n", err);
		ret = 1;
		goto cleanup;
	}
	ret = env.host_wide ? session__add_host(sess, err, sizeof(err)) :
	      env.cmd ? session__add_launched(sess, env.pid, err, sizeof(err)) : session__add_root(sess, env.pid, err, sizeof(err));
	if (ret < 0) {
		elog("%s\n", err);
		goto cleanup;
	}
	if (env.host_wide)
		fprintf(stderr, "%d Python process%s found running%s.\n", ret, ret == 1 ? "" : "es",
			so.filter.ncomms || so.filter.nexclude || so.filter.cgroup ? " (filtered)" : "");
	ret = session__attach(sess, err, sizeof(err));
	if (ret) {
		elog("%s\n", err);
		goto cleanup;
	}
	if (stop) {
		elog("interrupted before tracing started\n");
		ret = 1;
		goto cleanup;
	}
	/* Tracing: the logs start afresh now, not before (a refused run leaves them as they were). */
	if ((reqlog && ftruncate(fileno(reqlog), 0)) || (slow && ftruncate(fileno(slow), 0)))
		wlog("cannot truncate a log: %s\n", strerror(errno));
	reqlog_created = slow_created = false;
	if (env.host_wide)
		fprintf(stderr, "Tracing every Python process on the host%s: ", so.filter.ncomms || so.filter.nexclude ||
			so.filter.cgroup ? " that passes the filters" : "");
	else if (env.cmd)
		fprintf(stderr, "Tracing pid %d (%s%s)%s: ", env.pid, env.cmd[0], launched.dropped ? ", as SUDO_UID" : "",
			env.no_children ? "" : " and its children");
	else
		fprintf(stderr, "Tracing pid %d%s: ", env.pid, env.no_children ? "" : " and its children");
	fprintf(stderr, "%s%s%s%s... %s\n",
		so.sampler.enabled ? (env.idle ? "CPU samples and off-CPU time" : "CPU samples") : "", so.sampler.enabled && so.sql.enabled ? ", " : "",
		!so.sql.enabled ? "" : so.pgwire.enabled ? "SQL from the wire protocol" : "SQL through libpq",
		env.duration || env.cmd ? "" : ", until Ctrl-C", pt_verbose ? "" : "(-v for details)");
	if (pt_verbose)
		session__describe(sess, stderr);
	if (session__cap(sess, "sql") && !so.pgwire.enabled && !env.host_wide && !env.cmd) {
		struct sqltrace_stats sst;

		sqltrace__stats(session__cap(sess, "sql"), &sst);
		if (!sst.libpq.processes_with_libpq)
			fprintf(stderr, "No libpq in pid %d%s yet: SQL is traced from when a driver loads it.\n",
				env.pid, env.no_children ? "" : " or its children");
	}

	start = mono_s();
	{
		struct timespec rt;

		clock_gettime(CLOCK_REALTIME, &rt);
		out.start_unix_ns = (int64_t)rt.tv_sec * 1000000000LL + rt.tv_nsec;
	}
	/* everything is attached: the command may exec (its signals are passed on from now) */
	if (env.cmd) {
		py_binary__prime(env.cmd[0]);
		released = 1;
		if (launch__go(&launched))
			wlog("the command %s (pid %d) did not wait to be let go\n", env.cmd[0], env.pid);
	}
	while (!stop) {
		if (env.cmd ? launch__poll(&launched) :
		    !env.host_wide && !env.collector.enabled && session__live(sess) == 0) {
			target_gone = true;
			break;
		}
		if (env.duration && mono_s() - start >= env.duration)
			break;
		ret = session__poll(sess, 100);
		if (ret < 0) {
			elog("reading events failed: %s\n", strerror(-ret));
			break;
		}
	}
	elapsed = mono_s() - start;
	out.duration_ns = (int64_t)(elapsed * 1e9);
	session__drain(sess);

	out.stacks = sampler__stacks(session__cap(sess, "sampler"));
	{
		struct sampler_stats sst;

		sampler__stats(session__cap(sess, "sampler"), &sst);
		char who[32] = "host-wide", what[96];

		if (!env.host_wide)
			snprintf(who, sizeof(who), "pid %d", env.pid);
		if (env.idle)
			snprintf(what, sizeof(what), "wall-clock time: %llu on-CPU samples + %.3f s off-CPU",
				 (unsigned long long)sst.samples, sst.idle_us / 1e6);
		else
			snprintf(what, sizeof(what), "%llu on-CPU samples", (unsigned long long)sst.samples);
		snprintf(out.subtitle, sizeof(out.subtitle), "%s, %u Hz, %.1f s, %s%s", who, env.rate, elapsed, what,
			 env.gil ? ", GIL holder only" : "");
	}
	if (target_gone && env.cmd)
		fprintf(stderr, "%s (pid %d) exited with status %d after %.1f s; writing what was collected.\n",
			env.cmd[0], env.pid, launch__exit_code(&launched, NULL, 0), elapsed);
	else if (target_gone)
		fprintf(stderr, "Target exited after %.1f s; writing what was collected.\n", elapsed);
	session__summary(sess, stderr);
	if (env.collector.enabled) {
		/* the collector's outputs were served while it ran; its logs are closed below */
		ret = 0;
		if (slow)
			ret |= close_log(slow, "slow log", env.slow_log);
		if (reqlog)
			ret |= close_log(reqlog, "requests log", env.requests_log);
		slow = reqlog = NULL;
		goto cleanup;
	}

	ret = 0;
	if (env.flame)
		ret |= write_output(env.flame, "flame graph", out_flame, &out);
	if (env.collapsed)
		ret |= write_output(env.collapsed, "folded stacks", out_collapsed, &out);
	if (env.speedscope)
		ret |= write_output(env.speedscope, "speedscope profile", out_speedscope, &out);
	if (env.pprof)
		ret |= write_output(env.pprof, "pprof profile", out_pprof, &out);
	if (env.json) {
		struct json_ctx jc = { .session = sess, .elapsed = elapsed, .target_gone = target_gone };

		ret |= write_output(env.json, "JSON report", out_json, &jc);
	}
	if (slow) {
		ret |= close_log(slow, "slow log", env.slow_log);
		if (!ret)
			fprintf(stderr, "Wrote slow log %s\n", env.slow_log);
		slow = NULL;
	}
	if (reqlog) {
		int r = close_log(reqlog, "requests log", env.requests_log);

		if (!r)
			fprintf(stderr, "Wrote requests log %s\n", env.requests_log);
		ret |= r;
		reqlog = NULL;
	}
	if (env.flame || env.collapsed || env.speedscope || env.pprof || env.json)
		written |= SESSION_WROTE_FILES;
	if (env.json)
		written |= SESSION_WROTE_JSON;
	session__report(sess, stdout, written);
	errno = 0;
	if (fflush(stdout) || ferror(stdout)) {
		elog("writing the report to standard output failed: %s\n", strerror(errno ? errno : EIO));
		ret = ret ? ret : -EIO;
	}
	/* An empty JSON report says "idle" by itself; an empty flame graph or text report would not. */
	if (so.sampler.enabled && (env.flame || env.collapsed || env.speedscope || env.pprof || !env.json) &&
	    !session__collected(sess)) {
		elog("nothing was collected: %s\n", env.host_wide ? "no Python process on the host was on CPU or sent SQL" :
		     "the target was idle (off-CPU) and sent no SQL");
		if (!env.cmd)	/* a command's status is the command's */
			ret = ret ? ret : -ENODATA;
	}
cleanup:
	if (env.cmd && launched.pid > 0) {
		int code;

		if (!released || !launch__poll(&launched)) {
			if (released)
				fprintf(stderr, "Tracing ended (--duration): ending %s (pid %d)\n", env.cmd[0], env.pid);
			launch__end(&launched, 2.0);
		}
		code = launch__exit_code(&launched, err, sizeof(err));
		if (err[0])
			elog("cannot run %s: %s\n", env.cmd[0], err);
		if (!released)
			code = 1;	/* the tracer failed to start: the command never ran */
		else if (!code && ret)
			code = 1;	/* the command succeeded, an output did not */
		ret = code;
	}
	session__free(sess);
	free((char *)env.collector.auth_user);
	free((char *)env.collector.auth_password);
	/* Still open here only when tracing never started: nothing of this run is in them. */
	discard_log(&slow, env.slow_log, slow_created);
	discard_log(&reqlog, env.requests_log, reqlog_created);
	if (env.cmd)
		return ret;
	return ret ? 1 : 0;
}
