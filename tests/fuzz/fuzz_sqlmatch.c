/* fuzz-sources: src/sqlmatch.c */
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Pairing libpq sends with results, driven by bytes: statement texts and prepared-statement
 * names come from the traced process's memory and the events in any order (results of sends
 * made before tracing, lost events, a pipeline's syncs). Input: a header byte (max_conns 1..4),
 * then events, each an opcode byte and its fields:
 *   0 send   conn flags nlen name[nlen] tlen text[tlen]
 *   1 result conn status      (status - 2: SQL_ST_NULL, PGRES_* up to 13)
 *   2 exec   conn flags status nlen name[nlen] tlen text[tlen]
 *   3 sync   conn, 4 forget pid, 5 stats
 *   6 learn  conn nlen name[nlen] tlen text[tlen]   (a text found in the driver: sqltrace.c)
 * conn: bit 0 the pid, bits 1-2 the connection. Every completed statement's text and name are
 * read whole, so that ASan sees any that was freed or is shorter than said.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pytrace_user.h"	/* sql.h: SQL_F_*, SQL_ST_NULL */
#include "sqlmatch.h"

struct in {
	const uint8_t *p;
	size_t n;
};

static bool get(struct in *in, uint8_t *b)
{
	if (!in->n)
		return false;
	*b = *in->p++;
	in->n--;
	return true;
}

/* n bytes of the input in a buffer of exactly n, or NULL (then *len 0) for a 0xff length */
static bool take(struct in *in, char **out, size_t *len)
{
	uint8_t n;

	*out = NULL;
	*len = 0;
	if (!get(in, &n))
		return false;
	if (n == 0xff)
		return true;
	if (n > in->n)
		n = in->n;
	*out = malloc(n ? n : 1);
	memcpy(*out, in->p, n);
	*len = n;
	in->p += n;
	in->n -= n;
	return true;
}

static void completed(void *ctx, const struct sql_query *q)
{
	unsigned *sum = ctx;

	for (size_t i = 0; i < q->len; i++)
		*sum += (unsigned char)q->text[i];
	if (q->name)
		*sum += strlen(q->name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct sql_match_stats st;
	struct sql_match *m;
	uint8_t h = 0, op, conn, flags, status;
	unsigned sum = 0;
	uint64_t ts = 1;

	get(&in, &h);
	m = sql_match__new(1 + (h & 3), completed, &sum);
	if (!m)
		abort();
	while (get(&in, &op)) {
		char *name = NULL, *text = NULL;
		size_t nlen = 0, tlen = 0;

		ts += 1000;
		switch (op % 7) {
		case 0:
			if (!get(&in, &conn) || !get(&in, &flags) || !take(&in, &name, &nlen) ||
			    !take(&in, &text, &tlen))
				goto next;
			sql_match__send(m, conn & 1, 7, conn >> 1 & 3, ts, flags, name, nlen, text, tlen, ts);
			break;
		case 1:
			if (!get(&in, &conn) || !get(&in, &status))
				goto next;
			sql_match__result(m, conn & 1, conn >> 1 & 3, ts, (int32_t)(status % 16) - 2);
			break;
		case 2:
			if (!get(&in, &conn) || !get(&in, &flags) || !get(&in, &status) ||
			    !take(&in, &name, &nlen) || !take(&in, &text, &tlen))
				goto next;
			sql_match__exec(m, conn & 1, 7, conn >> 1 & 3, ts - 500, ts, flags, name, nlen, text, tlen,
					ts, (int32_t)(status % 16) - 2);
			break;
		case 3:
			if (!get(&in, &conn))
				goto next;
			sql_match__sync(m, conn & 1, conn >> 1 & 3, ts);
			break;
		case 4:
			if (!get(&in, &conn))
				goto next;
			sql_match__forget_pid(m, conn & 1);
			break;
		case 5:
			sql_match__stats(m, &st);
			break;
		case 6:
			if (!get(&in, &conn) || !take(&in, &name, &nlen) || !take(&in, &text, &tlen))
				goto next;
			if (name && !sql_match__knows(m, conn & 1, conn >> 1 & 3, name, nlen))
				sql_match__learn(m, conn & 1, conn >> 1 & 3, name, nlen, text ? text : "", tlen, false, ts);
			break;
		}
next:
		free(name);
		free(text);
	}
	sql_match__stats(m, &st);
	if (st.pending > 4 * 64)
		abort();	/* at most max_conns connections of QUEUE_MAX statements */
	sql_match__free(m);
	return 0;
}
