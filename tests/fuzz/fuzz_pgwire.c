/* fuzz-sources: src/pgwire.c */
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for src/pgwire.c: framer, classifier and statement pairing fed with both
 * directions of one connection.
 *
 * Input: one options byte, then chunks. Options: bit 0 midstream, bits 1-2 text_cap
 * (16, 64, 1024, 4096), bit 3 max_names 2, bit 4 max_inflight 4, bit 5 records instead of raw
 * chunks for the server side (pgwire_conn__msg with the chunk as a message's payload).
 * Chunk: header byte (bit 7: server, bits 0-6: length; 127: a 16-bit little-endian length
 * follows), then the bytes. tests/tools/pgwire_capture.py --seeds writes captures this way.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc src/pgwire.c \
 *        tests/fuzz/fuzz_pgwire.c -o /tmp/fuzz_pgwire
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "pgwire.h"

static uint64_t fuzz_sink;

static void fuzz_on_stmt(void *ctx, const struct pgwire_stmt *s)
{
	size_t i;

	/* touch everything a consumer would read */
	if (s->text)
		for (i = 0; i < s->text_len; i++)
			fuzz_sink += (uint8_t)s->text[i];
	if (s->name)
		fuzz_sink += strlen(s->name);
	fuzz_sink += strlen(s->tag) + strlen(s->sqlstate) + strlen(s->message) + strlen(s->severity);
	fuzz_sink += s->end_ns - s->start_ns + (uint64_t)s->rows + s->status + s->kind;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t caps[] = { 16, 64, 1024, 4096 };
	struct pgwire_conn_opts o = {};
	struct pgwire_conn *c;
	struct pgwire_stats st;
	size_t off = 1;
	uint64_t ts = 1;

	if (!size)
		return 0;
	o.midstream = data[0] & 1;
	o.text_cap = caps[(data[0] >> 1) & 3];
	o.max_names = data[0] & 8 ? 2 : 0;
	o.max_inflight = data[0] & 16 ? 4 : 0;
	o.on_stmt = fuzz_on_stmt;
	c = pgwire_conn__new(&o);
	if (!c)
		return 0;
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
		fuzz_sink += pgwire__classify_client(data + off, n) + pgwire__classify_server(data + off, n);
		if (dir == PGWIRE_SERVER && (data[0] & 32) && n >= 1) {
			struct pgwire_msg m = { .rec = PGWIRE_REC_MSG, .type = data[off], .len = (uint32_t)n + 3,
						.data = data + off + 1, .data_len = (uint32_t)n - 1,
						.ts = ts, .end_ts = ts + 1 };

			pgwire_conn__msg(c, dir, &m);
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
	return 0;
}
