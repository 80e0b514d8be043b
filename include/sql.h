/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types shared by the libpq uprobes and the loader. */
#ifndef PYTRACE_SQL_H
#define PYTRACE_SQL_H

#include "pytrace.h"

#define SQL_TEXT_MAX	8192	/* largest --sql-text-cap */
#define SQL_NAME_MAX	64	/* prepared statement names (NAMEDATALEN) */

enum sql_event_type {
	PT_EV_SQL_SEND = PT_EV_SQL_FIRST,	/* a statement leaves for the server */
	PT_EV_SQL_RESULT = 17,	/* PQgetResult returned (status, or NULL) */
	PT_EV_SQL_SYNC = 18,	/* PQpipelineSync: a sync point joins the queue */
	PT_EV_SQL_EXEC = 19,	/* PQexec* or PQprepare returned: a whole statement (struct sql_send) */
	PT_EV_SQL_ASYNC = 20,	/* exec probes only, and the asynchronous API was called (struct sql_result) */
	PT_EV_SQL_DLOPEN = 21,	/* ld.so changed a watched process's loaded objects (struct sql_result) */
};

/* struct sql_send.flags */
#define SQL_F_PREPARE	(1u << 1)	/* defines a prepared statement: name + text */
#define SQL_F_PREPARED	(1u << 2)	/* runs a prepared statement: name only */
#define SQL_F_PARAMS	(1u << 3)	/* parameters travel separately ($1, ...) */
#define SQL_F_TRUNCATED	(1u << 4)	/* text cut at the capture cap */
#define SQL_F_DRIVER_TEXT (1u << 5)	/* PREPARED: the text after the name is the one the driver's
					   sending frame holds (struct pt_proc's text_code), not libpq's */

/* PGresult status: ExecStatusType of libpq-fe.h */
#define SQL_ST_NULL		-1	/* PQgetResult returned NULL */
#define PGRES_BAD_RESPONSE_	5
#define PGRES_NONFATAL_ERROR_	6
#define PGRES_FATAL_ERROR_	7
#define PGRES_PIPELINE_SYNC_	10
#define PGRES_PIPELINE_ABORTED_	11

/* offsetof(struct pg_result, resultStatus) in libpq-int.h, unchanged since PostgreSQL 8 */
#define PG_RESULT_STATUS_OFF	40

struct sql_send {
	struct pt_event_hdr hdr;
	__u32 tid;
	__u32 flags;
	__u64 conn;		/* PGconn * */
	__u64 ts;
	__u64 stack_id;		/* key in the stacks map, 0 if no Python stack */
	__u16 name_len;		/* bytes of data[] that are the statement name (no NUL) */
	__u16 text_len;		/* bytes of data[] after the name that are the text (no NUL) */
	__s32 status;		/* PT_EV_SQL_EXEC: ExecStatusType of the result */
	__u64 end_ts;		/* PT_EV_SQL_EXEC: when PQexec* returned */
	__u64 task_frame;	/* who sent it (struct pt_stack's task_frame, root_frame), 0: unknown */
	__u64 root_frame;
	char data[SQL_NAME_MAX + SQL_TEXT_MAX];	/* sent cut to name_len + text_len */
};

/*
 * How a traced process calls libpq, kept per pid by the libpq probes and read by the loader.
 * PQexec, PQexecParams, PQexecPrepared and PQprepare call PQsend* and then PQgetResult until NULL:
 * probing those sees every API, at three to four probe hits per statement. A process whose sends
 * all come from inside libpq (psycopg2's synchronous cursors) needs only PQexec*'s entry and
 * return: one hit. The loader switches such a process to "exec" probes, and back for good when a
 * call only the asynchronous API makes (PQconsumeInput, PQflush) shows up.
 */
struct sql_proc {
	__u64 text_lo, text_hi;	/* libpq's code in this process: sends called from here are nested */
	__u64 direct;		/* PQsend* called by the application: the asynchronous API */
	__u64 nested;		/* PQsend* called by PQexec* or PQprepare */
	__u64 async_calls;	/* exec probes: asynchronous-API calls seen (sentinels) */
	__u64 exec_dropped_ns;	/* when the loader last dropped the exec probes (bpf_ktime_get_ns) */
	__u32 settled;		/* set by the loader: on the send probes for good, no exec probe left */
	__u32 pad;
};

struct sql_result {
	struct pt_event_hdr hdr;
	__u32 tid;
	__s32 status;		/* ExecStatusType, or SQL_ST_NULL */
	__u64 conn;
	__u64 ts;
};

#endif
