/* fuzz-sources: src/pgwire.c src/pgwire_conn.c */
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for src/pgwire.c: framer, classifier and statement pairing fed with both
 * directions of one connection.
 *
 * Input: one options byte, then chunks. Options: bit 0 midstream, bits 1-2 text_cap
 * (16, 64, 1024, 4096), bit 3 max_names 2, bit 4 max_inflight 4, bit 5 records instead of raw
 * chunks for the server side (pgwire_conn__msg with the chunk as a message's payload), bit 6
 * close before freeing, bit 7 a text learned before each client chunk (pgwire_conn__learn: the
 * statement s0, s1 or s2 by the chunk's place, the chunk's first bytes as its text), after the
 * chunk is read as a Bind's body and as a statement's text (pgwire__stmt_name, bind_params,
 * max_param).
 * Chunk: header byte (bit 7: server, bits 0-6: length; 127: a 16-bit little-endian length
 * follows), then the bytes. tests/tools/pgwire_capture.py --seeds writes captures this way.
 * Without bit 5 the input is fed twice, as chunks and byte by byte: when neither run lost the
 * stream, both must give the same statements (abort otherwise), as must every statement's
 * fields be sane.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc src/pgwire.c src/pgwire_conn.c \
 *        tests/fuzz/fuzz_pgwire.c -o /tmp/fuzz_pgwire
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "pgwire.h"

#include <stdlib.h>

static uint64_t fuzz_sink;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--)
		h = (h ^ *b++) * 1099511628211ull;
	return h;
}

/* Checks what a consumer relies on; hashes what must not depend on chunking into *ctx. */
static void fuzz_on_stmt(void *ctx, const struct pgwire_stmt *s)
{
	uint64_t *h = ctx;

	if (s->end_ns < s->start_ns || s->rows < -1 || (unsigned)s->status > PGWIRE_LOST ||
	    (unsigned)s->kind > PGWIRE_FUNCTION || strlen(s->tag) >= sizeof(s->tag) ||
	    (s->text && strlen(s->text) != s->text_len) || (!s->text && s->text_len) ||
	    (s->kind == PGWIRE_PREPARED_UNKNOWN && !s->name) || strlen(s->sqlstate) > 5)
		abort();
	if (s->text)
		*h = fnv(*h, s->text, s->text_len);
	if (s->name)
		*h = fnv(*h, s->name, strlen(s->name));
	*h = fnv(*h, s->tag, strlen(s->tag));
	*h = fnv(*h, s->sqlstate, strlen(s->sqlstate));
	*h = fnv(*h, s->message, strlen(s->message));
	*h = fnv(*h, &s->rows, sizeof(s->rows));
	*h = fnv(*h, &s->status, sizeof(s->status));
	*h = fnv(*h, &s->kind, sizeof(s->kind));
	*h = fnv(*h, &s->txn, 1);
	*h = fnv(*h, &s->text_cut, 1);
	fuzz_sink += s->end_ns - s->start_ns;
}

/* One run; bytewise: every chunk fed one byte at a time. Returns the lost count. */
static uint64_t fuzz_run(const uint8_t *data, size_t size, bool bytewise, uint64_t *hash)
{
	static const uint32_t caps[] = { 16, 64, 1024, 4096 };
	struct pgwire_conn_opts o = {};
	struct pgwire_conn *c;
	struct pgwire_stats st;
	size_t off = 1, i;
	uint64_t ts = 1;

	o.midstream = data[0] & 1;
	o.text_cap = caps[(data[0] >> 1) & 3];
	o.max_names = data[0] & 8 ? 2 : 0;
	o.max_inflight = data[0] & 16 ? 4 : 0;
	o.on_stmt = fuzz_on_stmt;
	o.ctx = hash;
	c = pgwire_conn__new(&o);
	if (!c)
		abort();
	while (off < size) {
		uint8_t h = data[off++];
		size_t n = h & 0x7f;
		enum pgwire_dir dir = h & 0x80 ? PGWIRE_SERVER : PGWIRE_CLIENT;

		if (n == 127) {
			if (size - off < 2)
				break;
			n = data[off] | (size_t)data[off + 1] << 8;
			off += 2;
		}
		if (n > size - off)
			n = size - off;
		if ((data[0] & 128) && dir == PGWIRE_CLIENT) {
			char name[3] = { 's', (char)('0' + off % 3), 0 }, got[PGWIRE_NAME_MAX];
			int k = pgwire__max_param((const char *)data + off, n);

			/* driver_text's checks (pgwiretrace.c) on the chunk as a Bind's body and as a text */
			if ((pgwire__stmt_name('B', data + off, n, got) && strlen(got) >= PGWIRE_NAME_MAX) || k < 0 ||
			    k > 65535 || pgwire__bind_params(data + off, n) > 65535)
				abort();
			fuzz_sink += pgwire_conn__knows(c, name);
			fuzz_sink += (uint64_t)pgwire_conn__learn(c, name, (const char *)data + off, n < 48 ? n : 48,
								  n > 48);
		}
		if (!bytewise)
			fuzz_sink += pgwire__classify_client(data + off, n) +
				     pgwire__classify_server(data + off, n) +
				     (uint64_t)pgwire__chain(dir, data + off, n);
		if (dir == PGWIRE_SERVER && (data[0] & 32) && n >= 1) {
			struct pgwire_msg m = { .rec = PGWIRE_REC_MSG, .type = data[off], .len = (uint32_t)n + 3,
						.data = data + off + 1, .data_len = (uint32_t)n - 1,
						.ts = ts, .end_ts = ts + 1 };

			pgwire_conn__msg(c, dir, &m);
		} else if (bytewise) {
			for (i = 0; i < n; i++)
				pgwire_conn__feed(c, dir, data + off + i, 1, ts);
		} else {
			pgwire_conn__feed(c, dir, data + off, n, ts);
		}
		off += n;
		ts += 3;
	}
	pgwire_conn__stats(c, &st);
	fuzz_sink += st.stmts;
	if (data[0] & 64)
		pgwire_conn__close(c, ts);
	pgwire_conn__free(c);
	return st.lost;
}

/*
 * Framing must not depend on how the bytes were cut: without a loss (resync decisions are per
 * chunk by design) the statements fed as chunks and fed byte by byte are the same.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t h1 = 14695981039346656037ull, h2 = h1, lost1, lost2;

	if (!size)
		return 0;
	lost1 = fuzz_run(data, size, false, &h1);
	if (data[0] & 32)
		return 0;
	lost2 = fuzz_run(data, size, true, &h2);
	if (!lost1 && !lost2 && h1 != h2)
		abort();
	return 0;
}
