// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The collector: metrics, profile windows and report windows behind the exporter. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector.h"
#include "exporter.h"
#include "flamegraph.h"
#include "flamering.h"
#include "hash.h"
#include "httptrace.h"
#include "jsonw.h"
#include "pgwiretrace.h"
#include "pidtab.h"
#include "pprof.h"
#include "promtext.h"
#include "pystacks.h"
#include "pytrace_user.h"
#include "querysum.h"
#include "requests.h"
#include "sampler.h"
#include "selfprogs.h"
#include "session.h"
#include "sqlmatch.h"
#include "sqltrace.h"
#include "stacks.h"
#include "util.h"

#define NS_PER_S	1000000000ULL
#define SUM_CACHE	4096	/* pattern -> query summary, by content */
#define SERIES_CACHE	4096	/* (pattern pointer, service, state) -> db histogram series */
#define GAUGE_EVERY_NS	NS_PER_S
#define MAPS_EVERY_NS	(10 * NS_PER_S)
#define WINDOW_STACKS	20000	/* an endpoint answer's own cap on distinct stacks */
#define OTHER_SERVICE	0	/* index of "other" in the service table */

struct svc {
	char name[COLLECTOR_SERVICE_MAX];
	struct prom_series *cpu;
	unsigned procs;		/* live processes */
};

struct pidsvc {
	uint32_t pid;		/* pidtab key */
	uint32_t svc;
};

struct sum_entry {
	uint64_t hash;
	char *pattern;		/* NULL: free */
	struct query_summary sum;
};

struct series_entry {
	const char *pattern;	/* the statistics' own string (pointer identity) */
	uint32_t svc;
	char state[6];
	struct prom_series *series;
};

struct collector {
	struct collector_opts o;
	struct session *session;
	struct sampler *sampler;
	struct exporter *exporter;
	struct prom_registry *reg;
	struct prom_family *f_http, *f_db, *f_qpr, *f_n1, *f_cpu;
	struct prom_family *f_procs, *f_services, *f_lost, *f_dropped_stacks, *f_map_entries, *f_map_max;
	struct prom_family *f_route_tables, *f_route_dropped;
	struct prom_family *f_tls_unread, *f_unattr, *f_named_only;
	uint64_t unattr_before[6];	/* UNATTR's counts of the windows before this one */
	uint16_t tls_ports_shown[2 * PGWIRE_OTHER_PORTS];	/* server_port values set so far: one no
							   longer reported (learned as PostgreSQL's) goes to 0 */
	struct prom_family *f_build, *f_proc_cpu, *f_proc_rss, *f_proc_fds, *f_proc_start;
	struct prom_family *f_bpf_seconds, *f_bpf_runs, *f_bpf_stats;
	struct selfprogs *self;	/* the tool's own BPF programs' run time (update_self) */
	struct flamering *ring;
	unsigned rate_hz;

	pthread_mutex_t lock;	/* services, the report: read by the endpoint's threads */
	struct svc *svcs;
	unsigned nsvcs;
	struct pidtab pids;
	char *report;		/* the last window's JSON, NULL before the first */
	size_t report_len;
	uint64_t report_next_ns;	/* CLOCK_MONOTONIC */
	double window_start;	/* Unix seconds */

	struct sum_entry *sums;
	size_t nsums;
	struct series_entry *series;
	uint64_t last_gauges, last_maps;
	double start_time;
	struct collector_stats st;
};

/* ---- options ---------------------------------------------------------------------------- */

int collector__parse_listen(const char *arg, struct collector_opts *o, char *err, size_t errlen)
{
	const char *port = arg, *colon;
	char addr[sizeof(o->address)] = "";
	unsigned long v;
	char *end;

	if (!arg || !*arg) {
		snprintf(err, errlen, "--prometheus needs [ADDR:]PORT, e.g. 9464 or 0.0.0.0:9464");
		return -EINVAL;
	}
	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');

		if (!close || close[1] != ':' || (size_t)(close - arg - 1) >= sizeof(addr)) {
			snprintf(err, errlen, "--prometheus %.80s: an IPv6 address is written [ADDR]:PORT", arg);
			return -EINVAL;
		}
		memcpy(addr, arg + 1, close - arg - 1);
		addr[close - arg - 1] = 0;
		port = close + 2;
	} else if ((colon = strrchr(arg, ':'))) {
		if (colon == arg) {
			snprintf(err, errlen, "--prometheus %.80s: name the address to listen on (127.0.0.1:PORT, or 0.0.0.0:PORT for every interface)", arg);
			return -EINVAL;
		}
		if (strchr(arg, ':') != colon || (size_t)(colon - arg) >= sizeof(addr)) {
			snprintf(err, errlen, "--prometheus %.80s: an IPv6 address is written [ADDR]:PORT", arg);
			return -EINVAL;
		}
		memcpy(addr, arg, colon - arg);
		addr[colon - arg] = 0;
		port = colon + 1;
	}
	errno = 0;
	v = strtoul(port, &end, 10);
	if (!*port || *end || errno || v > 65535 || *port == '-' || *port == '+') {
		snprintf(err, errlen, "--prometheus %.80s: the port must be a number from 0 to 65535", arg);
		return -EINVAL;
	}
	if (addr[0]) {
		unsigned char buf[sizeof(struct in6_addr)];

		if (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1) {
			snprintf(err, errlen, "--prometheus %.80s: %s is not a numeric IPv4 or IPv6 address", arg, addr);
			return -EINVAL;
		}
	}
	snprintf(o->address, sizeof(o->address), "%s", addr[0] ? addr : EXPORTER_DEFAULT_ADDRESS);
	o->port = (uint16_t)v;
	return 0;
}

int collector__read_auth(const char *path, char **user, char **password, char *err, size_t errlen)
{
	char line[512], *colon;
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!fgets(line, sizeof(line), f)) {
		snprintf(err, errlen, "%s is empty: it should hold one line user:password", path);
		fclose(f);
		return -EINVAL;
	}
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = 0;
	colon = strchr(line, ':');
	if (!colon || colon == line || !colon[1]) {
		snprintf(err, errlen, "%s: the first line should be user:password", path);
		return -EINVAL;
	}
	*colon = 0;
	*user = strdup(line);
	*password = strdup(colon + 1);
	memset(line, 0, sizeof(line));
	if (!*user || !*password) {
		free(*user);
		free(*password);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* ---- services ----------------------------------------------------------------------------- */

static uint32_t svc_intern(struct collector *c, const char *name)
{
	const char *values[1];
	uint32_t i;

	for (i = 1; i < c->nsvcs; i++)
		if (!strcmp(c->svcs[i].name, name))
			return i;
	if (c->nsvcs == c->o.max_services + 1) {
		c->st.services_dropped++;
		return OTHER_SERVICE;
	}
	snprintf(c->svcs[i].name, sizeof(c->svcs[i].name), "%s", name);
	values[0] = c->svcs[i].name;
	c->svcs[i].cpu = prom_family__series(c->f_cpu, values);
	pthread_mutex_lock(&c->lock);
	c->nsvcs++;
	pthread_mutex_unlock(&c->lock);
	return i;
}

static const char *proc_service(const struct proc *p)
{
	return p->service[0] ? p->service : p->comm[0] ? p->comm : "python";
}

static void set_pid_service(struct collector *c, uint32_t pid, uint32_t svc)
{
	bool created;
	struct pidsvc *e = pidtab__add(&c->pids, pid, &created);

	if (!e)
		return;		/* the table has the size of the process table */
	if (!created && c->svcs[e->svc].procs)
		c->svcs[e->svc].procs--;
	e->svc = svc;
	c->svcs[svc].procs++;
}

static uint32_t pid_service(struct collector *c, uint32_t pid)
{
	struct pidsvc *e = pidtab__get(&c->pids, pid);
	struct proc *p;
	uint32_t svc;

	if (e)
		return e->svc;
	/* a process followed before it was announced to us: ask the process table */
	p = procs__get(session__procs(c->session), pid, false);
	if (!p || p->state != PROC_PYTHON)
		return OTHER_SERVICE;
	svc = svc_intern(c, proc_service(p));
	/* one that exited (a request completed after it, a queued sample) is not followed again */
	if (p->live)
		set_pid_service(c, pid, svc);
	return svc;
}

static void collector_on_python(void *cc, const struct proc *p)
{
	struct collector *c = cc;

	set_pid_service(c, p->pid, svc_intern(c, proc_service(p)));
}

static void collector_on_fork(void *cc, const struct proc *child, const struct proc *parent)
{
	struct collector *c = cc;
	struct pidsvc *e = pidtab__get(&c->pids, parent->pid);

	set_pid_service(c, child->pid, e ? e->svc : svc_intern(c, proc_service(child)));
}

static void collector_forget(void *cc, pid_t pid)
{
	struct collector *c = cc;
	struct pidsvc *e = pidtab__get(&c->pids, pid);

	if (!e)
		return;
	if (c->svcs[e->svc].procs)
		c->svcs[e->svc].procs--;
	pidtab__del(&c->pids, e);
}

/* ---- query summaries -------------------------------------------------------------------- */

/* The summary of a pattern, computed from the statement's text the first time (text may be NULL). */
static const struct query_summary *summary_of(struct collector *c, const char *pattern, const char *text,
					      size_t len, bool truncated)
{
	uint64_t h = hash64(pattern, strlen(pattern));
	size_t i = h & (SUM_CACHE - 1);
	struct sum_entry *e;

	for (;; i = (i + 1) & (SUM_CACHE - 1)) {
		e = &c->sums[i];
		if (!e->pattern)
			break;
		if (e->hash == h && !strcmp(e->pattern, pattern))
			return &e->sum;
	}
	if (c->nsums >= SUM_CACHE / 2) {
		/* full: start again (the summaries are recomputed as statements come) */
		for (i = 0; i < SUM_CACHE; i++)
			free(c->sums[i].pattern);
		memset(c->sums, 0, SUM_CACHE * sizeof(*c->sums));
		c->nsums = 0;
		i = h & (SUM_CACHE - 1);
		e = &c->sums[i];
	}
	if (!(e->pattern = strdup(pattern)))
		return NULL;
	e->hash = h;
	c->nsums++;
	if (text)
		querysum__from_text(text, len, truncated, &e->sum);
	else
		querysum__from_pattern(pattern, &e->sum);
	return &e->sum;
}

static void series_flush(void *cc)
{
	struct collector *c = cc;

	memset(c->series, 0, SERIES_CACHE * sizeof(*c->series));
}

static void on_query(void *cc, const struct sql_query *q, const char *const *frames, size_t nframes,
		     const char *pattern, const char *call_site)
{
	struct collector *c = cc;
	uint32_t svc = pid_service(c, q->pid);
	const char *state = q->error ? (q->sqlstate[0] ? q->sqlstate : "error") : "";
	struct series_entry *e;
	uint64_t h;

	(void)frames, (void)nframes, (void)call_site;
	if (!pattern)
		return;
	c->st.statements++;
	/* state is "", "error" or a 5-character SQLSTATE: its fifth byte only when it is not "" */
	h = hash64_mix((uintptr_t)pattern ^ ((uint64_t)svc << 48) ^ ((uint64_t)(uint8_t)state[0] << 40) ^
		     ((uint64_t)(state[0] ? (uint8_t)state[4] : 0) << 32));
	e = &c->series[h & (SERIES_CACHE - 1)];
	if (e->pattern != pattern || e->svc != svc || strcmp(e->state, state) || !e->series) {
		const struct query_summary *sum = summary_of(c, pattern, q->text, q->len, q->truncated);
		const char *values[6] = {
			c->svcs[svc].name, "postgresql", sum ? sum->operation : "", sum ? sum->collection : "",
			sum ? sum->summary : "", state,
		};

		e->pattern = pattern;
		e->svc = svc;
		snprintf(e->state, sizeof(e->state), "%s", state);
		e->series = prom_family__series(c->f_db, values);
		if (!e->series)
			return;
	}
	prom_series__observe(e->series, (q->end_ns > q->start_ns ? q->end_ns - q->start_ns : 0) / 1e9);
}

/* ---- requests ------------------------------------------------------------------------------ */

static void on_request(void *cc, const struct request_done *d)
{
	struct collector *c = cc;
	uint32_t svc = pid_service(c, d->pid);
	const char *svc_name = c->svcs[svc].name;
	char status[12];
	unsigned i;

	c->st.requests++;
	snprintf(status, sizeof(status), "%d", d->status);
	{
		const char *values[4] = { svc_name, d->method, d->route, status };

		prom_family__observe(c->f_http, values, d->total_ns / 1e9);
	}
	if (d->sql_attributed) {
		const char *values[3] = { svc_name, d->method, d->route };

		prom_family__observe(c->f_qpr, values, d->queries);
	}
	for (i = 0; i < d->npats; i++) {
		const struct request_pat *p = &d->pats[i];
		const struct query_summary *sum;
		struct frame_parts fp = { 0 };
		char fn[256] = "", file[512] = "", line[16] = "";

		if (!p->n_plus_one)
			continue;
		sum = summary_of(c, p->pattern, NULL, 0, false);
		if (p->call_site) {
			frame__parse(p->call_site, &fp);
			if (fp.file) {
				snprintf(fn, sizeof(fn), "%.*s", (int)fp.name_len, fp.name);
				snprintf(file, sizeof(file), "%.*s", (int)fp.file_len, fp.file);
			} else {
				snprintf(fn, sizeof(fn), "%s", p->call_site);
			}
			if (fp.has_line)
				snprintf(line, sizeof(line), "%lu", fp.line);
		}
		{
			const char *values[7] = { svc_name, d->method, d->route, sum ? sum->summary : "", fn, file, line };

			prom_family__add(c->f_n1, values, 1);
		}
		c->st.n_plus_one++;
	}
}

/* ---- samples ------------------------------------------------------------------------------- */

static double unix_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_sample(void *cc, uint32_t pid, uint32_t tid, const char *const *frames, size_t n,
		      uint64_t weight_ns, bool offcpu)
{
	struct collector *c = cc;
	const char *f[PYSTACKS_MAX_FRAMES + 1];
	uint32_t svc;

	(void)tid, (void)weight_ns;
	if (offcpu)
		return;
	svc = pid_service(c, pid);
	c->st.samples++;
	if (c->svcs[svc].cpu)
		prom_series__add(c->svcs[svc].cpu, 1);
	if (!n)
		return;
	/* every stack under its service, as in host-wide flame graphs (once, if the sampler did it) */
	if (strcmp(frames[0], c->svcs[svc].name)) {
		f[0] = c->svcs[svc].name;
		memcpy(f + 1, frames, (n < PYSTACKS_MAX_FRAMES ? n : PYSTACKS_MAX_FRAMES) * sizeof(*f));
		n = (n < PYSTACKS_MAX_FRAMES ? n : PYSTACKS_MAX_FRAMES) + 1;
		frames = f;
	}
	flamering__add(c->ring, mono_ns(), frames, n, 1);
}

/* ---- the endpoint's routes (its threads) ----------------------------------------------------- */

static bool known_service(struct collector *c, const char *name)
{
	bool found = false;

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 1; i < c->nsvcs && !found; i++)
		found = !strcmp(c->svcs[i].name, name);
	pthread_mutex_unlock(&c->lock);
	return found;
}

/* The window's stacks into a new aggregate, or a status with the reason. */
static int window(struct collector *c, const struct exporter_request *req, struct exporter_reply *rep,
		  struct stack_agg **out, uint64_t *from_ns, uint64_t *now_ns)
{
	struct stack_agg *a;

	if (req->service && !known_service(c, req->service)) {
		snprintf(rep->reason, sizeof(rep->reason), "unknown service %.100s", req->service);
		return 404;
	}
	a = stack_agg__new(WINDOW_STACKS);
	if (!a) {
		snprintf(rep->reason, sizeof(rep->reason), "out of memory");
		return 503;
	}
	*now_ns = mono_ns();
	if (flamering__collect(c->ring, *now_ns, req->seconds, req->service, a, from_ns)) {
		stack_agg__free(a);
		snprintf(rep->reason, sizeof(rep->reason), "out of memory");
		return 503;
	}
	*out = a;
	return 200;
}

static int route_flame(void *cc, const struct exporter_request *req, struct exporter_reply *rep)
{
	struct collector *c = cc;
	struct stack_agg *a;
	uint64_t from, now;
	char subtitle[200];
	int ret = window(c, req, rep, &a, &from, &now);

	if (ret != 200)
		return ret;
	snprintf(subtitle, sizeof(subtitle), "%s%s%.0f s up to now, %u Hz, %llu samples",
		 req->service ? req->service : "all services", ", ", (now - from) / 1e9, c->rate_hz,
		 (unsigned long long)stack_agg__total(a));
	struct flame_opts fo = { .title = "pytrace-bpf: CPU", .subtitle = subtitle };
	ret = flamegraph__write_svg(a, rep->body, &fo);
	stack_agg__free(a);
	if (ret) {
		snprintf(rep->reason, sizeof(rep->reason), "cannot write the flame graph: %s", strerror(-ret));
		return 503;
	}
	return 200;
}

static int route_pprof(void *cc, const struct exporter_request *req, struct exporter_reply *rep)
{
	struct collector *c = cc;
	struct stack_agg *a;
	uint64_t from, now;
	int ret = window(c, req, rep, &a, &from, &now);
	double wall_now = unix_s();
	struct pprof_opts po = {
		.period_ns = NS_PER_S / c->rate_hz,
		.time_nanos = (int64_t)((wall_now - (now - from) / 1e9) * 1e9),
		.duration_nanos = (int64_t)(now - from),
		.comment = req->service ? req->service : "all services",
	};
	struct pprof *p;

	if (ret != 200)
		return ret;
	p = pprof__new(&po);
	ret = p ? pprof__add_stacks(p, a) : -ENOMEM;
	if (!ret)
		ret = pprof__write_file(p, rep->body);
	pprof__free(p);
	stack_agg__free(a);
	if (ret) {
		snprintf(rep->reason, sizeof(rep->reason), "cannot write the profile: %s", strerror(-ret));
		return 503;
	}
	return 200;
}

static int route_report(void *cc, const struct exporter_request *req, struct exporter_reply *rep)
{
	struct collector *c = cc;
	int ret = 200;

	(void)req;
	pthread_mutex_lock(&c->lock);
	if (!c->report) {
		snprintf(rep->reason, sizeof(rep->reason), "the first report window (%u s) has not ended yet",
			 c->o.report_s);
		ret = 503;
	} else if (fwrite(c->report, 1, c->report_len, rep->body) != c->report_len) {
		snprintf(rep->reason, sizeof(rep->reason), "out of memory");
		ret = 503;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* process_* gauges at each scrape: our own /proc entries only, safe on the endpoint's thread. */
static void before_scrape(void *cc)
{
	struct collector *c = cc;
	struct rusage ru;
	unsigned long pages = 0, rss = 0;
	unsigned nfds = 0;
	FILE *f;
	DIR *d;

	if (!getrusage(RUSAGE_SELF, &ru))
		prom_family__set(c->f_proc_cpu, NULL, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
					 ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	if ((f = fopen("/proc/self/statm", "re"))) {
		if (fscanf(f, "%lu %lu", &pages, &rss) == 2)
			prom_family__set(c->f_proc_rss, NULL, (double)rss * sysconf(_SC_PAGESIZE));
		fclose(f);
	}
	if ((d = opendir("/proc/self/fd"))) {
		struct dirent *de;

		while ((de = readdir(d)))
			nfds += de->d_name[0] != '.';
		closedir(d);
		prom_family__set(c->f_proc_fds, NULL, nfds ? nfds - 1 : 0);	/* not the directory's own */
	}
}

/* ---- the loop's side ------------------------------------------------------------------------- */

static unsigned map_entries(int fd)
{
	uint8_t key[64], next[64];
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	unsigned n = 0;
	void *prev = NULL;

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) || info.key_size > sizeof(key))
		return 0;
	while (!bpf_map_get_next_key(fd, prev, next) && n < info.max_entries) {
		memcpy(key, next, info.key_size);
		prev = key;
		n++;
	}
	return n;
}

static void update_maps(struct collector *c)
{
	const struct session_maps *m = session__maps(c->session);
	struct bpf_map *maps[] = { m->procs, m->tracked };

	for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
		const char *values[1] = { bpf_map__name(maps[i]) };

		prom_family__set(c->f_map_entries, values, map_entries(bpf_map__fd(maps[i])));
		prom_family__set(c->f_map_max, values, bpf_map__max_entries(maps[i]));
	}
}

/*
 * pytrace_bpf_program_run_seconds_total, _runs_total: the kernel's counts of the tool's own
 * programs (its file descriptors that are BPF programs), which move only while
 * kernel.bpf_stats_enabled is 1 (that accounting adds two clock reads to every run of every
 * program on the host: about 28 ns here, docs/PERFORMANCE.md); pytrace_bpf_stats_enabled says
 * whether it is.
 */
static void update_self(struct collector *c)
{
	char path[64], link[64], buf[8] = "";
	struct dirent *de;
	DIR *d;
	FILE *f;

	if (!c->self)
		return;
	selfprogs__begin(c->self);
	d = opendir("/proc/self/fd");
	while (d && (de = readdir(d))) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		ssize_t l;
		int fd;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		fd = atoi(de->d_name);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		l = readlink(path, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = 0;
		if (!strcmp(link, "anon_inode:bpf-prog") && !bpf_obj_get_info_by_fd(fd, &info, &len))
			selfprogs__add(c->self, info.id, info.name, info.run_time_ns, info.run_cnt);
	}
	if (d)
		closedir(d);
	selfprogs__end(c->self);
	for (unsigned i = 0; i < c->self->nnames; i++) {
		const char *v[1] = { c->self->names[i].name };

		prom_family__set(c->f_bpf_seconds, v, c->self->names[i].ns / 1e9);
		prom_family__set(c->f_bpf_runs, v, (double)c->self->names[i].runs);
	}
	f = fopen("/proc/sys/kernel/bpf_stats_enabled", "re");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	prom_family__set(c->f_bpf_stats, NULL, atoi(buf) ? 1 : 0);
}

/*
 * pytrace_db_operations_unattributed: statements given to no request, by why (requests.h). Where a
 * server's statements all land here (Starlette's BaseHTTPMiddleware: README), its
 * per-request metrics and N+1 counts are empty for that reason, not for want of statements.
 */
static const char *const UNATTR[] = { "outside_requests", "thread_served_several", "task_unknown", "task_ambiguous",
				      "no_response", "buffer_full" };
_Static_assert(sizeof(UNATTR) / sizeof(UNATTR[0]) == sizeof(((struct collector *)0)->unattr_before) / sizeof(uint64_t),
	       "one count kept per reason");

static void unattr_counts(struct collector *c, uint64_t *n)
{
	struct httptrace *h = session__cap(c->session, "http");
	struct httptrace_stats st;

	memset(n, 0, sizeof(uint64_t) * ARRAY_SIZE(UNATTR));
	if (!h)
		return;
	httptrace__stats(h, &st);
	n[0] = st.req.queries_outside;
	n[1] = st.req.queries_unattributed;
	n[2] = st.req.queries_task_unknown;
	n[3] = st.req.queries_ambiguous;
	n[4] = st.req.queries_no_response;
	n[5] = st.req.queries_dropped;
}

static void update_unattr(struct collector *c)
{
	uint64_t n[ARRAY_SIZE(UNATTR)];

	unattr_counts(c, n);
	for (size_t i = 0; i < ARRAY_SIZE(UNATTR); i++) {
		const char *values[1] = { UNATTR[i] };

		prom_family__set(c->f_unattr, values, (double)(c->unattr_before[i] + n[i]));
	}
}

/* The route tables (djapps.h) held, and the processes whose table was not kept (its caps). */
static void update_route_tables(struct collector *c)
{
	struct httptrace *h = session__cap(c->session, "http");
	struct httptrace_stats st;

	if (!h)
		return;
	httptrace__stats(h, &st);
	prom_family__set(c->f_route_tables, NULL, (double)st.django.tables);
	prom_family__set(c->f_route_dropped, NULL, (double)st.django.dropped);
}

/* pytrace_tls_sockets_unread: by the port each leads to, the sockets beyond the first ports as "other" */
static void update_tls_unread(struct collector *c)
{
	struct pgwiretrace *pw = session__cap(c->session, "pgwire");
	struct pgwiretrace_port ports[PGWIRE_OTHER_PORTS];
	char buf[8];
	const char *values[1] = { buf };
	uint64_t more = 0;
	unsigned n = 0, i, j;

	if (!pw)
		return;
	n = pgwiretrace__tls_unread(pw, ports, &more);
	for (i = 0; i < ARRAY_SIZE(c->tls_ports_shown) && c->tls_ports_shown[i]; i++) {
		for (j = 0; j < n && ports[j].port != c->tls_ports_shown[i]; j++)
			;
		if (j == n) {
			snprintf(buf, sizeof(buf), "%u", c->tls_ports_shown[i]);
			prom_family__set(c->f_tls_unread, values, 0);
		}
	}
	for (j = 0; j < n; j++) {
		snprintf(buf, sizeof(buf), "%u", ports[j].port);
		prom_family__set(c->f_tls_unread, values, (double)ports[j].sockets);
		for (i = 0; i < ARRAY_SIZE(c->tls_ports_shown) && c->tls_ports_shown[i] &&
			    c->tls_ports_shown[i] != ports[j].port; i++)
			;
		if (i < ARRAY_SIZE(c->tls_ports_shown))
			c->tls_ports_shown[i] = ports[j].port;
	}
	if (more) {
		values[0] = "other";
		prom_family__set(c->f_tls_unread, values, (double)more);
	}
}

/*
 * pytrace_db_operations_named_only: statements whose pattern is "EXECUTE name" (prepared before
 * tracing, their text not read from the driver: README), which a dashboard of patterns lumps
 * together.
 */
static void update_named_only(struct collector *c)
{
	struct sqltrace *s = session__cap(c->session, "sql");
	struct sqltrace_stats st;

	if (!s)
		return;
	sqltrace__stats(s, &st);
	prom_family__set(c->f_named_only, NULL, (double)st.named_only);
}

static void update_gauges(struct collector *c)
{
	static const struct { const char *kind; unsigned cnt; } lost[] = {
		{ "samples", PT_CNT_LOST },
		{ "process", PT_CNT_PROC_LOST },
		{ "libpq", PT_CNT_SQL_LOST },
		{ "http", PT_CNT_HTTP_LOST },
		{ "http_connection", PT_CNT_HTTP_CONN_DROPPED },
		{ "pgwire", PT_CNT_PG_LOST },
		{ "pgwire_connection", PT_CNT_PG_CONN_DROPPED },
		{ "functions", PT_CNT_FUNC_LOST },
	};
	unsigned live = 0;

	for (size_t i = 0; i < ARRAY_SIZE(lost); i++) {
		const char *values[1] = { lost[i].kind };

		prom_family__set(c->f_lost, values, session__counter(c->session, lost[i].cnt));
	}
	update_tls_unread(c);
	update_unattr(c);
	update_named_only(c);
	update_route_tables(c);
	for (unsigned i = 0; i < c->nsvcs; i++)
		live += c->svcs[i].procs;
	prom_family__set(c->f_procs, NULL, live);
	prom_family__set(c->f_services, NULL, c->nsvcs - 1);
	prom_family__set(c->f_dropped_stacks, NULL, flamering__dropped(c->ring));
}

/* The session's JSON report of the window that ends now; then a new window. */
static void end_window(struct collector *c)
{
	double end = unix_s();
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct jsonw *w = f ? jsonw__new(f) : NULL;
	int ret = -ENOMEM;

	if (w) {
		jsonw__pretty(w, true);
		jsonw__start_object(w);
		jsonw__string_field(w, "tool", "pytrace-bpf");
		jsonw__string_field(w, "version", PYTRACE_VERSION);
		jsonw__name(w, "window");
		jsonw__start_object(w);
		jsonw__double_fixed_field(w, "start_unix_s", c->window_start, 3);
		jsonw__double_fixed_field(w, "end_unix_s", end, 3);
		jsonw__double_fixed_field(w, "seconds", end - c->window_start, 3);
		jsonw__end_object(w);
		session__write_json(c->session, w);
		jsonw__end_object(w);
		ret = jsonw__finish(w);
		jsonw__free(w);
	}
	if (f) {
		fputc('\n', f);
		if (fclose(f))
			ret = -errno;
	}
	if (!ret) {
		pthread_mutex_lock(&c->lock);
		free(c->report);
		c->report = buf;
		c->report_len = len;
		pthread_mutex_unlock(&c->lock);
		buf = NULL;
	}
	free(buf);
	c->st.windows++;
	{
		uint64_t n[ARRAY_SIZE(UNATTR)];

		/* the window's counts go with its reset: kept here, the counter goes on */
		unattr_counts(c, n);
		for (size_t i = 0; i < ARRAY_SIZE(UNATTR); i++)
			c->unattr_before[i] += n[i];
	}
	session__reset(c->session);
	c->window_start = end;
	/*
	 * The window's aggregates were just freed: give whole free pages back to the kernel, or a
	 * heap fragmented by months of windows keeps them resident (glibc's malloc_trim also
	 * releases free pages inside the heap, not only at its top).
	 */
	malloc_trim(0);
}

static void collector_tick(void *cc, uint64_t now)
{
	struct collector *c = cc;

	if (now - c->last_gauges >= GAUGE_EVERY_NS) {
		c->last_gauges = now;
		update_gauges(c);
	}
	if (now - c->last_maps >= MAPS_EVERY_NS) {
		c->last_maps = now;
		update_maps(c);
		update_self(c);
	}
	if (now >= c->report_next_ns) {
		c->report_next_ns = now + (uint64_t)c->o.report_s * NS_PER_S;
		end_window(c);
	}
}

/* ---- capability ------------------------------------------------------------------------------ */

static void collector_free(void *cc)
{
	struct collector *c = cc;

	if (!c)
		return;
	exporter__stop(c->exporter);	/* no route runs after this */
	prom_registry__free(c->reg);
	flamering__free(c->ring);
	pidtab__fini(&c->pids);
	if (c->sums)
		for (size_t i = 0; i < SUM_CACHE; i++)
			free(c->sums[i].pattern);
	free(c->sums);
	free(c->series);
	free(c->svcs);
	free(c->report);
	free(c->self);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static const char *const L_SVC[] = { "service_name" };
static const char *const L_HTTP[] = { "service_name", "http_request_method", "http_route", "http_response_status_code" };
static const char *const L_DB[] = { "service_name", "db_system_name", "db_operation_name", "db_collection_name",
				     "db_query_summary", "db_response_status_code" };
static const char *const L_QPR[] = { "service_name", "http_request_method", "http_route" };
static const char *const L_N1[] = { "service_name", "http_request_method", "http_route", "db_query_summary",
				     "code_function_name", "code_file_path", "code_line_number" };
static const char *const L_KIND[] = { "kind" };
static const char *const L_PORT[] = { "server_port" };
static const char *const L_REASON[] = { "reason" };
static const char *const L_MAP[] = { "map" };
static const char *const L_PROG[] = { "program" };
static const char *const L_VERSION[] = { "version" };
static const double QPR_BUCKETS[] = { 0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500 };

static struct prom_family *family(struct collector *c, const char *name, const char *help, const char *unit,
				  enum prom_type type, const char *const *labels, size_t nlabels,
				  const double *buckets, size_t nbuckets)
{
	struct prom_family_opts fo = {
		.name = name, .help = help, .unit = unit, .type = type, .labels = labels, .nlabels = nlabels,
		.buckets = buckets, .nbuckets = nbuckets, .max_series = c->o.max_series,
	};

	return prom_registry__family(c->reg, &fo);
}

static int make_families(struct collector *c)
{
	c->f_http = family(c, "http_server_request_duration_seconds", "Duration of HTTP server requests, seen on the server's sockets.",
			   "seconds", PROM_HISTOGRAM, L_HTTP, ARRAY_SIZE(L_HTTP), prom_buckets_http_server_duration,
			   PROM_BUCKETS_HTTP_SERVER_DURATION_N);
	c->f_db = family(c, "db_client_operation_duration_seconds", "Duration of database client operations, from the send of the statement to its completion.",
			 "seconds", PROM_HISTOGRAM, L_DB, ARRAY_SIZE(L_DB), prom_buckets_db_client_duration,
			 PROM_BUCKETS_DB_CLIENT_DURATION_N);
	c->f_qpr = family(c, "pytrace_http_request_db_operations", "Database statements run while serving one HTTP request.",
			  NULL, PROM_HISTOGRAM, L_QPR, ARRAY_SIZE(L_QPR), QPR_BUCKETS, ARRAY_SIZE(QPR_BUCKETS));
	c->f_n1 = family(c, "pytrace_n_plus_one", "Requests in which one statement pattern ran at least the N+1 threshold times from one call site.",
			 NULL, PROM_COUNTER, L_N1, ARRAY_SIZE(L_N1), NULL, 0);
	c->f_cpu = family(c, "pytrace_cpu_samples", "On-CPU stack samples of the service's processes.",
			  NULL, PROM_COUNTER, L_SVC, ARRAY_SIZE(L_SVC), NULL, 0);
	c->f_procs = family(c, "pytrace_processes_followed", "Python processes followed now.", NULL, PROM_GAUGE, NULL, 0, NULL, 0);
	c->f_services = family(c, "pytrace_services", "Distinct services seen (capped, then counted as other).", NULL, PROM_GAUGE, NULL, 0, NULL, 0);
	c->f_lost = family(c, "pytrace_events_lost", "Events the BPF side could not hand over (ring buffer or map full), by kind.",
			   NULL, PROM_COUNTER, L_KIND, ARRAY_SIZE(L_KIND), NULL, 0);
	c->f_unattr = family(c, "pytrace_db_operations_unattributed", "Database statements given to no HTTP request, by reason: outside_requests (sent while the thread served none: background work), thread_served_several, task_unknown (a stack cut or unreadable, or a loop callback's), task_ambiguous, no_response (a task that writes no response: a background task, a task the handler spawned, a streamed response's statements sent while it streams), buffer_full.",
			     NULL, PROM_COUNTER, L_REASON, ARRAY_SIZE(L_REASON), NULL, 0);
	c->f_tls_unread = family(c, "pytrace_tls_sockets_unread", "Encrypted sockets from before tracing left unread: they lead to no port known as PostgreSQL's (HTTPS, or a PostgreSQL server on a port --pg-ports does not name), by that port.",
				 NULL, PROM_GAUGE, L_PORT, ARRAY_SIZE(L_PORT), NULL, 0);
	c->f_named_only = family(c, "pytrace_db_operations_named_only", "Database statements run by the name of a statement prepared before tracing whose text was never seen, counted under the pattern EXECUTE name: a name's first executions after tracing starts, and those of drivers whose frames give no text (README).",
				 NULL, PROM_COUNTER, NULL, 0, NULL, 0);
	c->f_dropped_stacks = family(c, "pytrace_profile_stacks_dropped", "Samples folded into an overflow stack: a profile interval held its cap of distinct stacks.",
				     NULL, PROM_COUNTER, NULL, 0, NULL, 0);
	c->f_route_tables = family(c, "pytrace_route_tables", "Route tables held: the URL patterns, rules or routes of the distinct apps the traced processes serve (at most 64), which name their requests' http_route.",
				   NULL, PROM_GAUGE, NULL, 0, NULL, 0);
	c->f_route_dropped = family(c, "pytrace_route_tables_dropped", "Processes whose route table was not kept (over 4096 processes or 64 distinct tables): their requests keep folded paths as http_route.",
				    NULL, PROM_COUNTER, NULL, 0, NULL, 0);
	c->f_map_entries = family(c, "pytrace_bpf_map_entries", "Entries in a BPF hash map (every 10 s).", NULL, PROM_GAUGE,
				  L_MAP, ARRAY_SIZE(L_MAP), NULL, 0);
	c->f_map_max = family(c, "pytrace_bpf_map_max_entries", "Capacity of a BPF hash map.", NULL, PROM_GAUGE, L_MAP,
			      ARRAY_SIZE(L_MAP), NULL, 0);
	c->f_bpf_seconds = family(c, "pytrace_bpf_program_run_seconds", "Time the kernel spent running the tool's own BPF programs, by program (every 10 s; moves only while kernel.bpf_stats_enabled is 1).",
				  "seconds", PROM_COUNTER, L_PROG, ARRAY_SIZE(L_PROG), NULL, 0);
	c->f_bpf_runs = family(c, "pytrace_bpf_program_runs", "Runs of the tool's own BPF programs, by program (every 10 s; counted only while kernel.bpf_stats_enabled is 1).",
			       NULL, PROM_COUNTER, L_PROG, ARRAY_SIZE(L_PROG), NULL, 0);
	c->f_bpf_stats = family(c, "pytrace_bpf_stats_enabled", "Whether the kernel counts BPF programs' run time (kernel.bpf_stats_enabled), which the program counters need.",
				NULL, PROM_GAUGE, NULL, 0, NULL, 0);
	c->f_build = family(c, "pytrace_build_info", "pytrace-bpf's version.", NULL, PROM_GAUGE, L_VERSION,
			    ARRAY_SIZE(L_VERSION), NULL, 0);
	c->f_proc_cpu = family(c, "process_cpu_seconds_total", "Total user and system CPU time of the collector in seconds.",
			       "seconds", PROM_COUNTER, NULL, 0, NULL, 0);
	c->f_proc_rss = family(c, "process_resident_memory_bytes", "Resident memory of the collector in bytes.", "bytes",
			       PROM_GAUGE, NULL, 0, NULL, 0);
	c->f_proc_fds = family(c, "process_open_fds", "Open file descriptors of the collector.", NULL, PROM_GAUGE, NULL, 0, NULL, 0);
	c->f_proc_start = family(c, "process_start_time_seconds", "Start time of the collector since the Unix epoch in seconds.",
				 "seconds", PROM_GAUGE, NULL, 0, NULL, 0);
	if (!c->f_http || !c->f_db || !c->f_qpr || !c->f_n1 || !c->f_cpu || !c->f_procs || !c->f_services ||
	    !c->f_tls_unread || !c->f_unattr || !c->f_named_only ||
	    !c->f_lost || !c->f_dropped_stacks || !c->f_map_entries || !c->f_map_max || !c->f_build ||
	    !c->f_route_tables || !c->f_route_dropped || !c->f_bpf_seconds || !c->f_bpf_runs || !c->f_bpf_stats ||
	    !c->f_proc_cpu || !c->f_proc_rss || !c->f_proc_fds || !c->f_proc_start)
		return -errno ? -errno : -EINVAL;
	{
		const char *v[1] = { PYTRACE_VERSION };

		prom_family__set(c->f_build, v, 1);
	}
	prom_family__set(c->f_proc_start, NULL, c->start_time);
	return 0;
}

static void *collector_open(struct session *s, const struct session_opts *so, char *err, size_t errlen)
{
	const struct collector_opts *o = &so->collector;
	struct flamering_opts ro = { .max_s = o->window_max_s, .slot_max_stacks = o->slot_max_stacks };
	struct collector *c;
	int ret;

	if (!o->enabled)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c || pthread_mutex_init(&c->lock, NULL)) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->o = *o;
	c->self = calloc(1, sizeof(*c->self));	/* 12 kB; without it, no program counters */
	if (!c->o.max_services)
		c->o.max_services = COLLECTOR_DEFAULT_MAX_SERVICES;
	if (!c->o.report_s)
		c->o.report_s = COLLECTOR_DEFAULT_REPORT_S;
	if (!c->o.window_max_s)
		c->o.window_max_s = FLAMERING_DEFAULT_MAX_S;
	ro.max_s = c->o.window_max_s;
	c->session = s;
	c->sampler = session__cap(s, "sampler");
	c->rate_hz = c->sampler ? sampler__rate(c->sampler) : 99;
	c->start_time = unix_s();
	c->window_start = c->start_time;
	c->reg = prom_registry__new();
	c->ring = flamering__new(&ro);
	c->svcs = calloc(c->o.max_services + 1, sizeof(*c->svcs));
	c->sums = calloc(SUM_CACHE, sizeof(*c->sums));
	c->series = calloc(SERIES_CACHE, sizeof(*c->series));
	if (!c->reg || !c->ring || !c->svcs || !c->sums || !c->series ||
	    pidtab__init(&c->pids, so->max_procs ? so->max_procs : PROCS_DEFAULT_MAX, sizeof(struct pidsvc))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ret = make_families(c);
	if (ret) {
		snprintf(err, errlen, "cannot register the metrics: %s", strerror(-ret));
		goto fail;
	}
	snprintf(c->svcs[OTHER_SERVICE].name, sizeof(c->svcs[0].name), "%s", PROM_OTHER);
	c->svcs[OTHER_SERVICE].cpu = prom_family__series(c->f_cpu, (const char *[]){ PROM_OTHER });
	c->nsvcs = 1;
	return c;
fail:
	collector_free(c);
	return NULL;
}

static int collector_attach(void *cc, char *err, size_t errlen)
{
	struct collector *c = cc;
	struct sqltrace *sql = session__cap(c->session, "sql");
	struct httptrace *http = session__cap(c->session, "http");
	struct exporter_opts eo = {
		.address = c->o.address,
		.port = c->o.port,
		.basic_auth_user = c->o.auth_user,
		.basic_auth_password = c->o.auth_password,
		.tls_cert_file = c->o.tls_cert,
		.tls_key_file = c->o.tls_key,
		.max_seconds = c->o.window_max_s,
		.registry = c->reg,
		.before_scrape = before_scrape,
		.flame = route_flame,
		.pprof = route_pprof,
		.report = route_report,
		.ctx = c,
	};
	char url[128];
	int ret;

	if (c->sampler)
		sampler__listen(c->sampler, on_sample, c);
	if (sql) {
		struct sqltrace_listener l = { .on_query = on_query, .on_stack_named = series_flush, .ctx = c };

		if (sqltrace__listen(sql, &l)) {
			snprintf(err, errlen, "too many listeners of SQL statements");
			return -ENOSPC;
		}
	}
	if (http && requests__listen(httptrace__requests(http), on_request, c)) {
		snprintf(err, errlen, "too many listeners of requests");
		return -ENOSPC;
	}
	update_gauges(c);
	update_maps(c);
	update_self(c);
	c->last_gauges = c->last_maps = mono_ns();
	c->report_next_ns = c->last_gauges + (uint64_t)c->o.report_s * NS_PER_S;
	ret = exporter__start(&eo, &c->exporter, err, errlen);
	if (ret)
		return ret;
	snprintf(url, sizeof(url), strchr(c->o.address, ':') ? "http%s://[%s]:%u/metrics" : "http%s://%s:%u/metrics",
		 c->o.tls_cert ? "s" : "", c->o.address, exporter__port(c->exporter));
	if (c->o.on_ready)
		c->o.on_ready(c->o.ready_ctx, url);
	return 0;
}

static void collector_json(void *cc, struct jsonw *w)
{
	struct collector *c = cc;

	jsonw__name(w, "collector");
	jsonw__start_object(w);
	jsonw__uint_field(w, "services", c->nsvcs - 1);
	jsonw__uint_field(w, "services_dropped", c->st.services_dropped);
	jsonw__uint_field(w, "samples", c->st.samples);
	jsonw__uint_field(w, "statements", c->st.statements);
	jsonw__uint_field(w, "requests", c->st.requests);
	jsonw__uint_field(w, "n_plus_one", c->st.n_plus_one);
	jsonw__uint_field(w, "profile_stacks_dropped", flamering__dropped(c->ring));
	jsonw__name(w, "service_processes");
	jsonw__start_object(w);
	for (unsigned i = 0; i < c->nsvcs; i++)
		if (c->svcs[i].procs)
			jsonw__uint_field(w, c->svcs[i].name, c->svcs[i].procs);
	jsonw__end_object(w);
	jsonw__end_object(w);
}

static void collector_summary(void *cc, FILE *f)
{
	struct collector *c = cc;
	struct exporter_stats es = { 0 };

	if (c->exporter)
		exporter__stats(c->exporter, &es);
	fprintf(f, "Collector: %u services, %llu samples, %llu statements, %llu requests, %llu N+1; %llu scrapes, %llu report windows.\n",
		c->nsvcs - 1, (unsigned long long)c->st.samples, (unsigned long long)c->st.statements,
		(unsigned long long)c->st.requests, (unsigned long long)c->st.n_plus_one,
		(unsigned long long)(es.scrapes_text + es.scrapes_openmetrics), (unsigned long long)c->st.windows);
}

void collector__stats(struct collector *c, struct collector_stats *st)
{
	*st = c->st;
}

const struct capability collector_capability = {
	.name = "collector",
	.open = collector_open,
	.attach = collector_attach,
	.on_python = collector_on_python,
	.on_fork = collector_on_fork,
	.on_exec = collector_forget,
	.on_exit = collector_forget,
	.tick = collector_tick,
	.summary = collector_summary,
	.write_json = collector_json,
	.free = collector_free,
};
