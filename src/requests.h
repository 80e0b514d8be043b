/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * HTTP requests assembled from socket events, with the SQL statements run while each was
 * served: per-route latency, SQL share, and N+1 findings (the same pattern from the same call
 * site at least n1_threshold times in one request).
 *
 * A request starts at the read of its request line and ends at the last write of its response:
 * when the next request starts on its connection, when the connection closes, after an idle
 * time, or at the end. Statements belong to the request whose response the same thread writes,
 * when they started after the request did.
 *
 * Attribution by task. A thread that reads another request while one it read is still
 * unanswered serves several at once (an event loop, gevent's hub thread). From then on its
 * statements are attributed by the task that sent them: the task is the address of the
 * outermost coroutine frame of the sender's Python stack (an asyncio task's top coroutine: the
 * frame lives in the coroutine object, so the address is the task's while it lives), or of its
 * outermost frame when it has none (a greenlet's run frame); it is unknown when the walk did not
 * reach the stack's root. The response's first write is walked the same way. The rule:
 *
 *   a statement sent at t by task K belongs to the request R whose response is the first one
 *   that K starts writing at or after t, if R was read at or before t, and if K's previous
 *   response was not still being written at t (then it could be that one's: neither gets it).
 *
 * Where Starlette's BaseHTTPMiddleware splits a request over several tasks, their key is the
 * request's ASGI scope dict instead (PT_TASK_SCOPE: struct pt_proc's scope_code), which all of
 * them hold; the same rule holds of it (made after its request is read, freed after it ends).
 *
 * A task's address is reused after it ends, but only by a task created later, and a task serving
 * a request is created after that request is read: so a statement sent before R was read is not
 * R's (counted outside requests). Statements whose task is unknown, that no response of their
 * task claimed within 30 s (a thread pool's worker, a child task), or that two responses could
 * own are counted apart, each with its reason; none is given to a request by guess. So are the
 * statements of a thread that serves no request in a process whose requests go by task (a thread
 * pool's worker: nothing ties its work to the request the loop thread answers). The statements a
 * task sends after its response began (streaming) are not attributed.
 *
 * Relays. uWSGI's --http router is a process of its workers' family (forked by their master, so
 * followed with them) that reads each request over HTTP and hands it to a worker in uWSGI's own
 * protocol; the worker runs it. The worker's request is the one counted: a request read from a
 * uWSGI packet takes an unanswered request of another process of its family, one that has not
 * read uWSGI packets itself, with the same method and target (as far as both were captured: a
 * long target is cut at different lengths in the two), read before it and less than a second
 * before, as its relay's copy, which is then not counted (requests_stats.relayed).
 */
#ifndef PYTRACE_REQUESTS_H
#define PYTRACE_REQUESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define REQUESTS_OTHER_ROUTES	"[other routes]"

struct jsonw;
struct requests;

/* The connection's last write and the bytes of the current response, or 0 if unknown. */
typedef uint64_t (*requests_last_write_fn)(void *ctx, uint32_t pid, int32_t fd);
/* The family of processes forked from one exec that pid belongs to (struct proc.family); 0: none. */
typedef uint32_t (*requests_family_fn)(void *ctx, uint32_t pid);
/*
 * The route of a request for target (as sent) that pid answered and no route template named:
 * its app's URL pattern (djapps.h) into out, or false (the folded path names it).
 */
typedef bool (*requests_route_fn)(void *ctx, uint32_t pid, const char *method, const char *target, char *out,
				  size_t size);

struct requests_opts {
	unsigned n1_threshold;		/* default 5 */
	unsigned max_routes;		/* distinct routes (default 500); then "[other routes]" */
	unsigned max_conns;		/* connections assembled at once (default 8192) */
	unsigned max_threads;		/* threads with statements kept (default 1024) */
	bool show_query;		/* keep query strings of paths in the log and -v lines */
	uint64_t idle_ns;		/* a response with no news this long is complete (default 1 s) */
	uint64_t task_hold_ns;		/* by task: a statement no response claimed this long is counted
					   unattributed (default 30 s) */
	FILE *log;			/* one JSON line per request, or NULL */
	FILE *lines;			/* one text line per request (-v), or NULL */
	requests_last_write_fn last_write;	/* optional */
	requests_route_fn route_of;		/* optional */
	requests_family_fn family_of;		/* optional: no relays found without it */
	void *ctx;
};

struct requests_stats {
	uint64_t requests;		/* completed and counted */
	uint64_t not_http;		/* request starts that were not HTTP/1.x */
	uint64_t no_response;		/* requests whose connection closed before a response */
	uint64_t orphan_responses;	/* responses with no request seen (started before tracing) */
	uint64_t dropped_conns;		/* connections over max_conns */
	uint64_t dropped_pipelined;	/* requests over the per-connection queue */
	uint64_t dropped_threads;	/* threads over max_threads */
	uint64_t dropped_routes;	/* requests counted in "[other routes]" */
	uint64_t framework_routes;	/* requests whose route is their framework's template (routes.h) */
	uint64_t unplaced_routes;	/* templates that did not fit the path: the app's table, else folded */
	uint64_t scope_routes;		/* requests named by a template read from their ASGI scope */
	uint64_t scope_routes_mismatched;	/* such templates whose scope held another path: folded */
	uint64_t dropped_findings;	/* N+1 findings over the cap */
	uint64_t dropped_patterns;	/* per-request patterns over the per-request cap */
	uint64_t queries_attributed;
	uint64_t queries_outside;	/* statements run while no request was served on the thread */
	uint64_t queries_unattributed;	/* statements of threads that served several requests at once */
	uint64_t multiplexed_requests;	/* requests served by such a thread */
	uint64_t queries_dropped;	/* per-thread statement buffer full */
	uint64_t requests_by_task;	/* requests whose statements were their task's */
	uint64_t requests_by_scope;	/* of which by their ASGI scope (a middleware's tasks: PT_TASK_SCOPE) */
	uint64_t requests_by_host_task;	/* of which streamed, with their writer's host task's statements too */
	uint64_t queries_task_unknown;	/* by task, and the statement's task is unknown (stack cut) */
	uint64_t queries_ambiguous;	/* by task, and two requests of its task could own it */
	uint64_t queries_no_response;	/* by task, and no response of its task claimed it */
	uint64_t queries_pool;		/* of a thread serving no request, in a process going by task */
	uint64_t queries_pool_task;	/* of which sent for a task (asgiref), and attributed by it */
	uint64_t relayed;		/* requests a relay (uWSGI's --http router) handed on, not counted */
};

/* A completed request, as listeners see it; pointers are valid during the call only. */
struct request_pat {
	const char *pattern;		/* NULL: "[other patterns]" (the request's own table was full) */
	const char *call_site;		/* "func (file.py:LINE)" or NULL */
	uint32_t count;
	uint64_t ns;
	bool n_plus_one;		/* count >= n1_threshold */
};

struct request_done {
	uint32_t pid, tid;		/* tid: the thread that wrote the response */
	const char *method;
	const char *route;		/* the folded path, or REQUESTS_OTHER_ROUTES over the cap */
	int status;
	uint64_t start_ns, total_ns, sql_ns;
	uint32_t queries;
	bool sql_attributed;		/* false: its thread served several requests at once */
	const struct request_pat *pats;
	unsigned npats;
};

typedef void (*requests_done_fn)(void *ctx, const struct request_done *d);
#define REQUESTS_MAX_LISTENERS	4

struct requests *requests__new(const struct requests_opts *o);
void requests__free(struct requests *r);

/* A read that may start a request; maybe: too short to tell (flags of http.h). len: bytes read. */
void requests__req(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
		   uint64_t last_write, bool maybe, const char *data, size_t data_len, size_t len);
/* A later read of the request being read (split request lines). */
void requests__data(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
		    const char *data, size_t data_len, size_t len);
/* A write that starts a response. */
void requests__resp(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
		    uint64_t last_write, const char *data, size_t data_len);
void requests__close(struct requests *r, uint32_t pid, int32_t fd, uint64_t ts, uint64_t last_write);
/*
 * The same with the task that wrote it (struct pt_stack's task_frame, or root_frame when it has
 * none; 0: unknown): see "Attribution by task" above.
 */
void requests__resp_task(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
			 uint64_t last_write, const char *data, size_t data_len, uint64_t task);
/*
 * The same with the route template of the framework that served it (src/routes.h; NULL: none),
 * which then names its route in place of the folded path (http_route_join places it; multi: it
 * has a multi-segment parameter).
 */
void requests__resp_route(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
			  uint64_t last_write, const char *data, size_t data_len, uint64_t task, const char *tmpl,
			  bool multi);
/*
 * The same with a template read from the request's own state (its ASGI scope, read while the
 * response was already on its way): it names the request only if for_path, the path that state
 * held, is the request's (without its query); else that memory held another request's by then,
 * and the folded path stands (counted: scope_routes_mismatched).
 */
void requests__resp_route_for(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
			      uint64_t last_write, const char *data, size_t data_len, uint64_t task,
			      const char *tmpl, bool multi, const char *for_path);
/*
 * The same for a streamed response whose writer is a child task of host (the task that awaits
 * the response: a plain StreamingResponse's request's task), 0 if none: host's statements are
 * the request's too, by the same rule as the writer's.
 */
void requests__resp_host(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
			 uint64_t last_write, const char *data, size_t data_len, uint64_t task, uint64_t host,
			 const char *tmpl, bool multi, const char *for_path);
/* A completed statement. pattern and call_site may be NULL. */
void requests__query(struct requests *r, uint32_t pid, uint32_t tid, uint64_t start_ns, uint64_t end_ns,
		     const char *pattern, const char *call_site);
/*
 * The same with pattern and call site as ids from requests__intern(), which a caller may keep
 * (they stay valid until requests__free()) to skip the lookups of statements it has seen.
 */
uint32_t requests__intern(struct requests *r, const char *s);	/* 0 for NULL, or the table full */
void requests__query_ids(struct requests *r, uint32_t pid, uint32_t tid, uint64_t start_ns, uint64_t end_ns,
			 uint32_t pattern, uint32_t call_site);
/* The same with the task that sent it (as for requests__resp_task). */
void requests__query_task(struct requests *r, uint32_t pid, uint32_t tid, uint64_t start_ns, uint64_t end_ns,
			  uint32_t pattern, uint32_t call_site, uint64_t task);
/* Completes answered requests idle since before now - idle_ns; flushes the log (every idle_ns / 4). */
void requests__tick(struct requests *r, uint64_t now_ns);
/* Completes every answered request (the end); unanswered ones are counted as no_response. */
void requests__flush(struct requests *r);
void requests__forget_pid(struct requests *r, uint32_t pid);

/* Hear of every completed request (after it is counted): 0, or -ENOSPC. */
int requests__listen(struct requests *r, requests_done_fn fn, void *ctx);
/*
 * Starts a new report window: routes, per-route aggregates, findings and counters are cleared;
 * requests in flight and interned patterns are kept, unless the pattern table is 3/4 full: then
 * it starts again, ids from requests__intern die (a caller that keeps them must forget them at
 * the same time; sqljoin does, on the SQL side's reset), and requests in flight lose their
 * pattern counts. 0 or -ENOMEM.
 */
int requests__reset(struct requests *r);
void requests__stats(const struct requests *r, struct requests_stats *st);
/* "requests" value: one object per (method, route, status), by count. */
int requests__write_json(const struct requests *r, struct jsonw *w);
/* "n_plus_one" value: one object per finding, by total time. */
int requests__write_n1_json(const struct requests *r, struct jsonw *w);
/* "http" value: counts of what was seen, dropped and left unattributed. */
int requests__write_summary_json(const struct requests *r, struct jsonw *w);
/* Slowest routes and N+1 findings with their call sites. */
int requests__report(const struct requests *r, FILE *f, unsigned top);

#endif
