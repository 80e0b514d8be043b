// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* PostgreSQL wire protocol v3: the framer and the classifier (rules in pgwire.h). */
#include <string.h>
#include "pgwire.h"


static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* ---- the framing rule ---- */

enum { T_KNOWN = 1, T_BIG = 2, T_FIX4 = 4 };

static unsigned type_flags(enum pgwire_dir dir, uint8_t t)
{
	if (dir == PGWIRE_CLIENT) {
		switch (t) {
		case 'Q': case 'P': case 'B': case 'F': case 'd': case 'p':
			return T_KNOWN | T_BIG;
		case 'E': case 'D': case 'C': case 'f':
			return T_KNOWN;
		case 'S': case 'H': case 'c': case 'X':
			return T_KNOWN | T_FIX4;
		}
		return 0;
	}
	switch (t) {
	case 'D': case 'd': case 'T': case 'E': case 'N': case 'V':
		return T_KNOWN | T_BIG;
	case 'R': case 'K': case 'S': case 'Z': case 'C': case 'A': case 't':
	case 'G': case 'H': case 'W': case 'v':
		return T_KNOWN;
	case '1': case '2': case '3': case 'n': case 'I': case 's': case 'c':
		return T_KNOWN | T_FIX4;
	}
	return 0;
}

bool pgwire__header_ok(enum pgwire_dir dir, uint8_t type, uint32_t len)
{
	unsigned fl = type_flags(dir, type);

	if (!fl || len < 4)
		return false;
	if (fl & T_BIG ? len >= PGWIRE_BIG_MAX : len > PGWIRE_SMALL_MAX)
		return false;
	if (fl & T_FIX4)
		return len == 4;
	if (dir == PGWIRE_SERVER) {
		if (type == 'Z')
			return len == 5;
		if (type == 'K')
			return len >= 12;
		if (type == 'R')
			return len >= 8;
	}
	return true;
}

uint32_t pgwire__capture_len(enum pgwire_dir dir, uint8_t type, uint32_t len, uint32_t cap)
{
	uint32_t plen = len >= 4 ? len - 4 : 0;

	if (type == 'd' || (dir == PGWIRE_SERVER && type == 'D'))
		return 0;
	return plen < cap ? plen : cap;
}

/* ---- chains and the classifier ---- */

/* Length of a NUL-terminated printable name at p (within n and PGWIRE_NAME_MAX), or -1. */
static int name_len(const uint8_t *p, size_t n)
{
	size_t i, lim = n < PGWIRE_NAME_MAX ? n : PGWIRE_NAME_MAX;

	for (i = 0; i < lim; i++) {
		if (p[i] == 0)
			return (int)i;
		if (p[i] < 0x21 || p[i] > 0x7e)
			return -1;
	}
	return -1;
}

static bool text_start_ok(uint8_t b)
{
	return b == 0 || b == '\t' || b == '\n' || b == '\r' || (b >= 0x20 && b != 0x7f);
}

static bool payload_ok(enum pgwire_dir dir, uint8_t t, const uint8_t *p, uint32_t n)
{
	int a, b;

	if (dir == PGWIRE_CLIENT) {
		switch (t) {
		case 'Q':
			return n >= 1 && p[n - 1] == 0 && text_start_ok(p[0]);
		case 'P':
			a = name_len(p, n);
			return a >= 0 && n >= (uint32_t)a + 4 && text_start_ok(p[a + 1]);
		case 'B':
			a = name_len(p, n);
			if (a < 0)
				return false;
			b = name_len(p + a + 1, n - a - 1);
			return b >= 0 && n >= (uint32_t)(a + b) + 2 + 6;
		case 'E':
			a = name_len(p, n);
			return a >= 0 && n == (uint32_t)a + 1 + 4;
		case 'D': case 'C':
			if (n < 2 || (p[0] != 'S' && p[0] != 'P'))
				return false;
			a = name_len(p + 1, n - 1);
			return a >= 0 && n == (uint32_t)a + 2;
		case 'f':
			return n >= 1 && p[n - 1] == 0;
		case 'F':
			return n >= 10;
		case 'p':
			return false;	/* startup phase only: never part of a chain */
		}
		return true;
	}
	switch (t) {
	case 'Z':
		return p[0] == 'I' || p[0] == 'T' || p[0] == 'E';
	case 'C':
		return n >= 2 && p[0] >= 'A' && p[0] <= 'Z' && p[n - 1] == 0;
	case 'S':
		return n >= 2 && p[0] >= 0x21 && p[0] <= 0x7e && p[n - 1] == 0;
	case 'E': case 'N':
		return n >= 2 && (p[0] == 'S' || p[0] == 'V' || p[0] == 'C') && p[n - 1] == 0;
	case 'R':
		return be32(p) <= 12;
	case 'T': case 'D':
		return n >= 2 && be16(p) <= 1664;
	}
	return true;
}

int pgwire__chain(enum pgwire_dir dir, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	int n;

	for (n = 0; n < PGWIRE_CHAIN_MAX && off < len; n++) {
		uint32_t mlen;

		if (len - off < 5)
			return 0;
		mlen = be32(buf + off + 1);
		if (!pgwire__header_ok(dir, buf[off], mlen) || mlen > len - off - 1)
			return 0;
		if (!payload_ok(dir, buf[off], buf + off + 5, mlen - 4))
			return 0;
		off += 1 + (size_t)mlen;
	}
	return off == len && n > 0 ? n : 0;
}

static bool ready_tail(const uint8_t *b, size_t len)
{
	if (len < 6)
		return false;
	b += len - 6;
	return b[0] == 'Z' && be32(b + 1) == 5 && (b[5] == 'I' || b[5] == 'T' || b[5] == 'E');
}

static bool sync_tail(const uint8_t *b, size_t len)
{
	return len >= 5 && b[len - 5] == 'S' && be32(b + len - 4) == 4;
}

enum pgwire_class pgwire__classify_client(const uint8_t *buf, size_t len)
{
	if (len >= 8 && be32(buf) == len) {
		uint32_t code = be32(buf + 4);

		if (len == 8 && code == PGWIRE_CODE_SSL)
			return PGWIRE_CLASS_SSL_REQUEST;
		if (len == 8 && code == PGWIRE_CODE_GSSENC)
			return PGWIRE_CLASS_GSSENC_REQUEST;
		if (len == 16 && code == PGWIRE_CODE_CANCEL)
			return PGWIRE_CLASS_CANCEL;
		if (code >> 16 == 3 && len <= PGWIRE_STARTUP_MAX && buf[len - 1] == 0)
			return PGWIRE_CLASS_STARTUP;
	}
	return pgwire__chain(PGWIRE_CLIENT, buf, len) ? PGWIRE_CLASS_MIDSTREAM : PGWIRE_CLASS_NOT_PG;
}

enum pgwire_class pgwire__classify_server(const uint8_t *buf, size_t len)
{
	if (pgwire__chain(PGWIRE_SERVER, buf, len))
		return PGWIRE_CLASS_MIDSTREAM;
	return ready_tail(buf, len) ? PGWIRE_CLASS_READY_TAIL : PGWIRE_CLASS_NOT_PG;
}

const char *pgwire__class_name(enum pgwire_class c)
{
	static const char *const names[] = { "not_pg", "startup", "ssl_request", "gssenc_request",
					     "cancel", "midstream", "ready_tail" };

	return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "?";
}

/* ---- the framer ---- */

void pgwire_framer__init(struct pgwire_framer *f, enum pgwire_dir dir, enum pgwire_phase phase,
			 uint8_t *buf, uint32_t cap)
{
	memset(f, 0, sizeof(*f));
	f->dir = dir;
	f->phase = dir == PGWIRE_SERVER && phase == PGWIRE_PH_STARTUP ? PGWIRE_PH_TYPED : phase;
	f->buf = buf;
	f->cap = buf ? cap : 0;
}

static void emit_state(struct pgwire_framer *f, enum pgwire_rec rec, uint64_t ts,
		       pgwire_msg_fn fn, void *ctx)
{
	struct pgwire_msg m = { .rec = rec, .ts = ts, .end_ts = ts };

	fn(ctx, f->dir, &m);
}

/* A chunk ending with ReadyForQuery (server) or Sync (client): the next starts a message. */
static bool boundary_tail(uint8_t dir, const uint8_t *data, size_t len)
{
	return dir == PGWIRE_SERVER ? ready_tail(data, len) : sync_tail(data, len);
}

static void framer_lose(struct pgwire_framer *f, size_t n, const uint8_t *chunk, size_t len,
			uint64_t ts, pgwire_msg_fn fn, void *ctx)
{
	f->phase = PGWIRE_PH_LOST;
	f->hdr_have = 0;
	f->skip = 0;
	f->lost++;
	f->dropped_bytes += n;
	emit_state(f, PGWIRE_REC_LOST, ts, fn, ctx);
	if (f->phase == PGWIRE_PH_LOST && boundary_tail(f->dir, chunk, len)) {
		f->phase = PGWIRE_PH_TYPED;
		f->resyncs++;
		emit_state(f, PGWIRE_REC_RESYNC, ts, fn, ctx);
	}
}

static void framer_emit(struct pgwire_framer *f, uint64_t ts, pgwire_msg_fn fn, void *ctx)
{
	struct pgwire_msg m = { .ts = f->ts, .end_ts = ts, .data = f->buf, .data_len = f->have };

	if (f->phase == PGWIRE_PH_STARTUP) {
		m.rec = PGWIRE_REC_STARTUP;
		m.len = be32(f->hdr);
		m.code = be32(f->hdr + 4);
		m.cut = f->have < m.len - 8;
		if (m.code == PGWIRE_CODE_CANCEL)
			f->phase = PGWIRE_PH_DONE;
		else if (m.code >> 16 == 3)
			f->phase = PGWIRE_PH_TYPED;
	} else {
		m.rec = PGWIRE_REC_MSG;
		m.type = f->hdr[0];
		m.len = be32(f->hdr + 1);
		m.cut = f->have < m.len - 4;
	}
	f->msgs++;
	f->hdr_have = 0;
	fn(ctx, f->dir, &m);
}

void pgwire_framer__feed(struct pgwire_framer *f, const uint8_t *data, size_t len, uint64_t ts,
			 pgwire_msg_fn fn, void *ctx)
{
	size_t off = 0;

	f->bytes += len;
	if (f->phase == PGWIRE_PH_ENCRYPTED || f->phase == PGWIRE_PH_DONE || len == 0)
		return;
	if (f->phase == PGWIRE_PH_LOST) {
		bool chain = pgwire__chain(f->dir, data, len) > 0;

		if (!chain)
			f->dropped_bytes += len;
		if (chain || boundary_tail(f->dir, data, len)) {
			f->phase = PGWIRE_PH_TYPED;
			f->resyncs++;
			emit_state(f, PGWIRE_REC_RESYNC, ts, fn, ctx);
		}
		if (!chain)
			return;
	}
	while (off < len) {
		unsigned hsize = f->phase == PGWIRE_PH_STARTUP ? 8 : 5;

		if (f->phase != PGWIRE_PH_STARTUP && f->phase != PGWIRE_PH_TYPED)
			return;	/* encrypted, done, or lost inside the callback */
		if (f->hdr_have < hsize) {
			if (f->hdr_have == 0) {
				if (f->answer_pending) {
					uint8_t b = data[off];

					f->answer_pending = false;
					if (b == 'S' || b == 'G' || b == 'N') {
						struct pgwire_msg m = { .rec = PGWIRE_REC_ANSWER, .type = b,
									.ts = ts, .end_ts = ts };

						off++;
						f->msgs++;
						if (b != 'N')
							f->phase = PGWIRE_PH_ENCRYPTED;
						fn(ctx, f->dir, &m);
						if (b != 'N') {
							emit_state(f, PGWIRE_REC_ENCRYPTED, ts, fn, ctx);
							return;
						}
						continue;
					}
				}
				f->ts = ts;
			}
			while (f->hdr_have < hsize && off < len)
				f->hdr[f->hdr_have++] = data[off++];
			if (f->hdr_have < hsize)
				return;
			if (hsize == 8) {
				uint32_t l = be32(f->hdr), code = be32(f->hdr + 4);
				bool ok;

				if (code == PGWIRE_CODE_SSL || code == PGWIRE_CODE_GSSENC)
					ok = l == 8;
				else if (code == PGWIRE_CODE_CANCEL)
					ok = l == 16;
				else
					ok = code >> 16 == 3 && l >= 8 && l <= PGWIRE_STARTUP_MAX;
				if (!ok) {
					framer_lose(f, len - off, data, len, ts, fn, ctx);
					return;
				}
				f->skip = l - 8;
				f->want = f->skip < f->cap ? f->skip : f->cap;
			} else {
				uint32_t l = be32(f->hdr + 1);

				if (!pgwire__header_ok(f->dir, f->hdr[0], l)) {
					framer_lose(f, len - off, data, len, ts, fn, ctx);
					return;
				}
				f->skip = l - 4;
				f->want = pgwire__capture_len(f->dir, f->hdr[0], l, f->cap);
			}
			f->have = 0;
		}
		if (f->skip) {
			size_t n = len - off < f->skip ? len - off : f->skip;

			if (f->have < f->want) {
				uint32_t c = f->want - f->have < n ? f->want - f->have : (uint32_t)n;

				memcpy(f->buf + f->have, data + off, c);
				f->have += c;
			}
			off += n;
			f->skip -= (uint32_t)n;
		}
		if (!f->skip)
			framer_emit(f, ts, fn, ctx);
	}
}

/* A NUL-terminated string at *q within end, cut to size - 1 bytes into out (NULL: skipped): false if the body ends first. */
static bool body_str(const uint8_t **q, const uint8_t *end, char *out, size_t size)
{
	const uint8_t *z = memchr(*q, 0, (size_t)(end - *q));
	size_t n;

	if (!z)
		return false;
	if (out) {
		n = (size_t)(z - *q) < size - 1 ? (size_t)(z - *q) : size - 1;
		memcpy(out, *q, n);
		out[n] = 0;
	}
	*q = z + 1;
	return true;
}

bool pgwire__stmt_name(uint8_t type, const uint8_t *body, size_t len, char out[PGWIRE_NAME_MAX])
{
	const uint8_t *q = body, *end = body + len;

	if (type != 'B' && type != 'P')
		return false;
	if (type == 'B' && !body_str(&q, end, NULL, 0))
		return false;	/* the portal's name first */
	return body_str(&q, end, out, PGWIRE_NAME_MAX);
}

int pgwire__bind_params(const uint8_t *body, size_t len)
{
	const uint8_t *q = body, *end = body + len;
	size_t nfmt;

	if (!body_str(&q, end, NULL, 0) || !body_str(&q, end, NULL, 0) || end - q < 2)
		return -1;
	nfmt = (size_t)q[0] << 8 | q[1];
	q += 2;
	if ((size_t)(end - q) < 2 * nfmt + 2)
		return -1;
	q += 2 * nfmt;
	return q[0] << 8 | q[1];
}

static bool ident_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
	       ch == '$' || (unsigned char)ch >= 0x80;
}

int pgwire__max_param(const char *t, size_t len)
{
	size_t i = 0, j, tag;
	int max = 0;

	while (i < len) {
		char ch = t[i];

		if (ch == '\'' || ch == '"') {	/* a string or a quoted identifier; '' and "" double */
			for (i++; i < len && t[i] != ch; i++)
				;
			i++;
		} else if (ch == '-' && i + 1 < len && t[i + 1] == '-') {
			while (i < len && t[i] != '\n')
				i++;
		} else if (ch == '/' && i + 1 < len && t[i + 1] == '*') {
			for (i += 2; i + 1 < len && !(t[i] == '*' && t[i + 1] == '/'); i++)
				;
			i += 2;
		} else if (ch == '$' && i + 1 < len && t[i + 1] >= '0' && t[i + 1] <= '9' &&
			   (i == 0 || !ident_char(t[i - 1]))) {
			long v = 0;

			for (i++; i < len && t[i] >= '0' && t[i] <= '9'; i++)
				v = v < 100000 ? v * 10 + (t[i] - '0') : v;
			if (v > max && v <= 65535)
				max = (int)v;
		} else if (ch == '$' && (i == 0 || !ident_char(t[i - 1]))) {
			/* a dollar quote, $$ or $tag$: its body up to the same delimiter */
			for (j = i + 1; j < len && t[j] != '$' && ident_char(t[j]); j++)
				;
			if (j >= len || t[j] != '$') {
				i++;
				continue;
			}
			tag = j + 1 - i;
			for (j++; j + tag <= len && memcmp(t + j, t + i, tag); j++)
				;
			i = j + tag;
		} else {
			i++;
		}
	}
	return max;
}
