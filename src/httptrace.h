/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* HTTP requests of traced processes from their socket syscalls, assembled by src/requests.c. */
#ifndef PYTRACE_HTTPTRACE_H
#define PYTRACE_HTTPTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "djapps.h"
#include "requests.h"
#include "uvwrite.h"

struct httptrace_opts {
	bool enabled;
	struct requests_opts req;	/* last_write and ctx are set here */
	bool raw_hook;			/* raw syscall tracepoints even where per-syscall ones exist (tests) */
};

struct httptrace_stats {
	const char *hook;		/* "per-syscall tracepoints" or "raw syscall tracepoints" */
	uint64_t lost;			/* socket events dropped: ring buffer full */
	uint64_t conns_dropped;		/* accepted connections not followed: BPF map full */
	uint64_t route_reads;		/* route objects whose templates were read (routes.h) */
	uint64_t route_errors;		/* of which without one */
	uint64_t scope_reads;		/* streamed responses whose request's scope was read (procs.h) */
	uint64_t scope_errors;		/* of which without one */
	uint64_t host_reads;		/* streamed responses' task groups read to learn their host task */
	uint64_t host_errors;		/* of which without it */
	uint64_t scope_route_reads;	/* ASGI scopes whose route was read (FastAPI behind middleware) */
	uint64_t adopted;		/* connections accepted before tracing, followed (sockpeer__accepted) */
	uint64_t adopt_failed;		/* of which the map had no room for */
	uint64_t scope_route_errors;	/* of which unreadable (freed meanwhile) */
	uint64_t queued_writers;	/* responses written by uvloop's loop, whose task its probe gave */
	struct uvwrite_stats uvloop;
	struct djapps_stats django;	/* Django's URL patterns (djapps.h) */
	struct requests_stats req;
};

struct httptrace;

extern const struct capability httptrace_capability;

void httptrace__stats(struct httptrace *h, struct httptrace_stats *st);
struct requests *httptrace__requests(struct httptrace *h);

#endif
