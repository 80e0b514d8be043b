/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which libpq probes a process gets. A statement through PQexec* costs three to four probe hits
 * with the "send" probes (PQsend*, PQgetResult entry and return) and one with the "exec" probes
 * (PQexec* entry and return); see struct sql_proc in sql.h. A process starts on the send probes,
 * which see every API; once it has sent enough statements, all from inside PQexec*, it moves to
 * the exec probes, and back for good at its first asynchronous-API call.
 */
#ifndef PYTRACE_SQLMODE_H
#define PYTRACE_SQLMODE_H

#include <stdbool.h>
#include <stdint.h>

enum sql_probe_opt {		/* --libpq-probes */
	SQL_PROBES_AUTO,	/* learn per process (default) */
	SQL_PROBES_SEND,	/* send probes only */
	SQL_PROBES_EXEC,	/* start on the exec probes; still back to send at an asynchronous call */
};

enum sql_set { SQL_SET_SEND, SQL_SET_EXEC };

#define SQL_LEARN_SENDS	32	/* statements seen, all nested in PQexec*, before moving to exec probes */

struct sql_mode_in {
	enum sql_probe_opt opt;
	enum sql_set cur;
	bool pinned;		/* back on send probes for good */
	uint64_t direct, nested, async_calls;	/* struct sql_proc's counters */
};

struct sql_mode_out {
	enum sql_set set;
	bool pin;
};

static inline struct sql_mode_out sql_mode__next(const struct sql_mode_in *in)
{
	struct sql_mode_out out = { in->cur, in->pinned };

	if (in->opt == SQL_PROBES_SEND || in->pinned) {
		out.set = SQL_SET_SEND;
		return out;
	}
	if (in->cur == SQL_SET_EXEC) {
		if (in->async_calls) {
			out.set = SQL_SET_SEND;
			out.pin = true;
		}
		return out;
	}
	if (in->direct) {
		out.pin = true;		/* the application calls PQsend* itself */
		return out;
	}
	if (in->nested >= SQL_LEARN_SENDS)
		out.set = SQL_SET_EXEC;
	return out;
}

static inline const char *sql_set__name(enum sql_set s)
{
	return s == SQL_SET_EXEC ? "exec" : "send";
}

#endif
