/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Pairing libpq sends with their results. Per connection, statements wait in a queue in the
 * order they were sent (several at once in pipeline mode); each result belongs to the head of
 * the queue, and a NULL from PQgetResult after at least one result completes it.
 */
#ifndef PYTRACE_SQLMATCH_H
#define PYTRACE_SQLMATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sql_query {
	uint32_t pid, tid;
	uint64_t conn;
	uint64_t start_ns, end_ns;
	const char *text;	/* statement text (not NUL-terminated: use len) */
	size_t len;
	const char *name;	/* prepared statement name, or NULL */
	bool truncated;		/* text cut at the capture cap */
	bool error;		/* an error result, or the pipeline was aborted */
	bool prepared;		/* ran a prepared statement */
	bool named_only;	/* prepared before tracing, its text never seen: text is "EXECUTE name" */
	bool params;		/* parameters sent apart from the text */
	uint64_t stack_id;	/* Python stack at the send, 0 if none */
	uint64_t task;		/* who sent it (requests.h: a task or greenlet), 0: unknown */
	bool rows_known;	/* rows is the server's count (the wire's CommandComplete) */
	int64_t rows;
	char sqlstate[6];	/* the error's SQLSTATE where known (the wire's ErrorResponse), else "" */
};

typedef void (*sql_query_fn)(void *ctx, const struct sql_query *q);

struct sql_match_stats {
	uint64_t completed;
	uint64_t orphan_results;	/* results with no statement waiting (sent before tracing) */
	uint64_t unknown_prepared;	/* prepared statements whose text was never seen */
	uint64_t learned;		/* names given a text by sql_match__learn */
	uint64_t evicted;		/* statements dropped with an evicted connection or a full queue */
	uint64_t pending;		/* statements still waiting for their results */
};

struct sql_match;

/* max_conns: connections followed at once (least recently used evicted); 0: 4096. */
struct sql_match *sql_match__new(size_t max_conns, sql_query_fn fn, void *ctx);
void sql_match__free(struct sql_match *m);
/* flags: SQL_F_* of sqltrace.h */
void sql_match__send(struct sql_match *m, uint32_t pid, uint32_t tid, uint64_t conn, uint64_t ts,
		     uint32_t flags, const char *name, size_t name_len, const char *text, size_t text_len,
		     uint64_t stack_id);
/* status: ExecStatusType, or SQL_ST_NULL */
void sql_match__result(struct sql_match *m, uint32_t pid, uint64_t conn, uint64_t ts, int32_t status);
/*
 * A whole statement seen at once (PQexec* entry and return): completed at once, apart from the
 * connection's queue; PREPARE defines a name, PREPARED runs one. status: ExecStatusType.
 */
void sql_match__exec(struct sql_match *m, uint32_t pid, uint32_t tid, uint64_t conn, uint64_t start,
		     uint64_t end, uint32_t flags, const char *name, size_t name_len, const char *text,
		     size_t text_len, uint64_t stack_id, int32_t status);
/* The same with the task that sent it (struct sql_query.task). */
void sql_match__send_task(struct sql_match *m, uint32_t pid, uint32_t tid, uint64_t conn, uint64_t ts,
			  uint32_t flags, const char *name, size_t name_len, const char *text, size_t text_len,
			  uint64_t stack_id, uint64_t task);
void sql_match__exec_task(struct sql_match *m, uint32_t pid, uint32_t tid, uint64_t conn, uint64_t start,
			  uint64_t end, uint32_t flags, const char *name, size_t name_len, const char *text,
			  size_t text_len, uint64_t stack_id, int32_t status, uint64_t task);
void sql_match__sync(struct sql_match *m, uint32_t pid, uint64_t conn, uint64_t ts);
/*
 * A statement prepared before tracing (its PQprepare never seen): whether the connection knows
 * a text for name, and giving it one found elsewhere (the driver's memory, src/sqltrace.c), as
 * its PQprepare would have: its later executions carry it. learn: 0 or -ENOMEM.
 */
bool sql_match__knows(struct sql_match *m, uint32_t pid, uint64_t conn, const char *name, size_t name_len);
int sql_match__learn(struct sql_match *m, uint32_t pid, uint64_t conn, const char *name, size_t name_len,
		     const char *text, size_t len, bool truncated, uint64_t ts);
void sql_match__forget_pid(struct sql_match *m, uint32_t pid);
void sql_match__stats(const struct sql_match *m, struct sql_match_stats *st);

#endif
