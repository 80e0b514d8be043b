// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "http.h"
#include "http.skel.h"
#include "httptrace.h"
#include "util.h"

struct httptrace {
	struct httptrace_shared sh;
	struct http_bpf *skel;
	struct requests *req;
	bool per_syscall;	/* per-syscall tracepoints; else raw syscall tracepoints */
};

#define TRACEFS "/sys/kernel/tracing"

/* Per-syscall tracepoints need tracefs (their ids): mount it where it is missing. */
static bool have_syscall_events(void)
{
	if (access(TRACEFS "/events/syscalls/sys_enter_accept4/id", R_OK) == 0)
		return true;
	if (access(TRACEFS, F_OK) == 0 && mount("nodev", TRACEFS, "tracefs", 0, NULL) == 0)
		vlog("HTTP: mounted tracefs on " TRACEFS "\n");
	return access(TRACEFS "/events/syscalls/sys_enter_accept4/id", R_OK) == 0;
}

/* Open and load the object with one set of programs: per-syscall ("tp_") or raw ("http_sys_"). */
static int open_load(struct httptrace *h, char *err, size_t errlen)
{
	struct bpf_program *prog;
	int ret;

	http_bpf__destroy(h->skel);
	h->skel = http_bpf__open();
	if (!h->skel) {
		ret = -errno;
		snprintf(err, errlen, "cannot open the HTTP BPF object: %s", strerror(errno));
		return ret;
	}
	bpf_object__for_each_program(prog, h->skel->obj)
		bpf_program__set_autoload(prog, strncmp(bpf_program__name(prog), "tp_", 3) ? !h->per_syscall :
					  h->per_syscall);
	if (bpf_map__reuse_fd(h->skel->maps.procs, bpf_map__fd(h->sh.procs)) ||
	    bpf_map__reuse_fd(h->skel->maps.tracked, bpf_map__fd(h->sh.tracked)) ||
	    bpf_map__reuse_fd(h->skel->maps.counters, bpf_map__fd(h->sh.counters)) ||
	    bpf_map__reuse_fd(h->skel->maps.events, bpf_map__fd(h->sh.events))) {
		ret = -errno;
		snprintf(err, errlen, "cannot share maps with the HTTP BPF object: %s", strerror(errno));
		return ret;
	}
	ret = http_bpf__load(h->skel);
	if (ret)
		snprintf(err, errlen, "cannot load the HTTP BPF programs: %s", strerror(-ret));
	return ret;
}

static uint64_t conn_last_write(void *ctx, uint32_t pid, int32_t fd)
{
	struct httptrace *h = ctx;
	struct http_conn_key k = { .pid = pid, .fd = fd };
	struct http_conn c;

	if (bpf_map_lookup_elem(bpf_map__fd(h->skel->maps.conns), &k, &c))
		return 0;
	return c.last_write_ts;
}

struct httptrace *httptrace__new(const struct requests_opts *ro, const struct httptrace_shared *sh,
				 char *err, size_t errlen)
{
	struct httptrace *h = calloc(1, sizeof(*h));
	struct requests_opts o = *ro;
	int ret;

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->sh = *sh;
	o.last_write = conn_last_write;
	o.ctx = h;
	h->req = requests__new(&o);
	if (!h->req) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* PYTRACE_HTTP_HOOK=raw: the raw syscall tracepoints even where tracefs is there (tests). */
	h->per_syscall = !(getenv("PYTRACE_HTTP_HOOK") && !strcmp(getenv("PYTRACE_HTTP_HOOK"), "raw")) &&
			 have_syscall_events();
	ret = open_load(h, err, errlen);
	if (ret && h->per_syscall) {
		vlog("HTTP: %s with per-syscall tracepoints; trying raw syscall tracepoints\n", err);
		h->per_syscall = false;
		ret = open_load(h, err, errlen);
	}
	if (ret)
		goto fail;
	return h;
fail:
	httptrace__free(h);
	return NULL;
}

int httptrace__attach(struct httptrace *h, char *err, size_t errlen)
{
	int ret = http_bpf__attach(h->skel);

	if (ret && h->per_syscall) {
		vlog("HTTP: cannot attach the per-syscall tracepoints (%s); trying raw syscall tracepoints\n",
		     strerror(-ret));
		h->per_syscall = false;
		ret = open_load(h, err, errlen);
		if (ret)
			return ret;
		ret = http_bpf__attach(h->skel);
	}
	if (ret)
		snprintf(err, errlen, "cannot attach the syscall tracepoints: %s", strerror(-ret));
	else
		vlog("HTTP: requests from %s\n", h->per_syscall ? "per-syscall tracepoints" : "raw syscall tracepoints");
	return ret;
}

void httptrace__handle(struct httptrace *h, const void *data, size_t size)
{
	const struct http_event *e = data;
	size_t at = offsetof(struct http_event, data);

	if (size < at || size < at + e->data_len || e->data_len > HTTP_PREFIX_MAX)
		return;
	switch (e->hdr.type) {
	case PT_EV_HTTP_REQ:
		requests__req(h->req, e->hdr.pid, e->tid, e->fd, e->ts, e->last_write_ts,
			      e->flags & HTTP_EF_MAYBE, e->data, e->data_len, e->len);
		break;
	case PT_EV_HTTP_DATA:
		requests__data(h->req, e->hdr.pid, e->tid, e->fd, e->ts, e->data, e->data_len, e->len);
		break;
	case PT_EV_HTTP_RESP:
		requests__resp(h->req, e->hdr.pid, e->tid, e->fd, e->ts, e->last_write_ts, e->data, e->data_len);
		break;
	case PT_EV_HTTP_CLOSE:
		requests__close(h->req, e->hdr.pid, e->fd, e->ts, e->last_write_ts);
		break;
	}
}

void httptrace__tick(struct httptrace *h)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	requests__tick(h->req, (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec);
}

void httptrace__flush(struct httptrace *h)
{
	requests__flush(h->req);
}

void httptrace__forget_pid(struct httptrace *h, pid_t pid)
{
	struct http_conn_key k, next;
	int fd = bpf_map__fd(h->skel->maps.conns);
	bool first = true;

	requests__forget_pid(h->req, pid);
	/* The exited process's connections: its close() calls were never seen (exit closes). */
	while (!bpf_map_get_next_key(fd, first ? NULL : &k, &next)) {
		if (!first && k.pid == (uint32_t)pid)
			bpf_map_delete_elem(fd, &k);
		k = next;
		first = false;
	}
	if (!first && k.pid == (uint32_t)pid)
		bpf_map_delete_elem(fd, &k);
}

void httptrace__stats(struct httptrace *h, struct httptrace_stats *st)
{
	__u64 vals[256];
	int ncpus = libbpf_num_possible_cpus(), c;
	__u32 key;

	memset(st, 0, sizeof(*st));
	st->hook = h->per_syscall ? "per-syscall tracepoints" : "raw syscall tracepoints";
	for (key = PT_CNT_HTTP_LOST; key <= PT_CNT_HTTP_CONN_DROPPED && ncpus > 0 && ncpus <= 256; key++) {
		if (bpf_map_lookup_elem(bpf_map__fd(h->sh.counters), &key, vals))
			continue;
		for (c = 0; c < ncpus; c++)
			*(key == PT_CNT_HTTP_LOST ? &st->lost : &st->conns_dropped) += vals[c];
	}
	requests__stats(h->req, &st->req);
}

struct requests *httptrace__requests(struct httptrace *h)
{
	return h->req;
}

void httptrace__free(struct httptrace *h)
{
	if (!h)
		return;
	http_bpf__destroy(h->skel);
	requests__free(h->req);
	free(h);
}
