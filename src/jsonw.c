// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Streaming JSON writer: one frame per open container remembers whether a comma is due.
 *
 * Output is gathered in the writer's own buffer and goes to the stream in one fwrite when the
 * buffer fills, when a top-level value ends, and at jsonw__finish and jsonw__free: a stdio call
 * per piece (each takes the stream's lock: the collector has threads) was most of what a
 * requests log's line cost.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "utf8.h"

#define SINK_LEN 4096

/* Bytes on their way to f; a write that fails (short fwrite, or f already in error) sets err. */
struct sink {
	FILE *f;
	size_t n;
	int err;
	char buf[SINK_LEN];
};

struct jsonw {
	bool pretty;
	bool want_value;	/* a name was written, its value is due */
	int err;
	unsigned depth;
	bool is_obj[JSONW_MAX_DEPTH];
	size_t nitems[JSONW_MAX_DEPTH];
	struct sink out;
};

static void sink_flush(struct sink *k)
{
	if (k->n && fwrite(k->buf, 1, k->n, k->f) != k->n)
		k->err = -EIO;
	k->n = 0;
	if (ferror(k->f))
		k->err = -EIO;
}

static void sink_put(struct sink *k, const void *p, size_t len)
{
	if (k->n + len > sizeof(k->buf)) {
		sink_flush(k);
		if (len > sizeof(k->buf)) {	/* a long string: straight through */
			if (fwrite(p, 1, len, k->f) != len)
				k->err = -EIO;
			return;
		}
	}
	memcpy(k->buf + k->n, p, len);
	k->n += len;
}

static void sink_putc(struct sink *k, char c)
{
	if (k->n == sizeof(k->buf))
		sink_flush(k);
	k->buf[k->n++] = c;
}

/*
 * s[0..len) quoted. Runs of characters that need no escape (printable ASCII and valid UTF-8) are
 * copied as runs, an escape from a few bytes formatted here: SQL patterns quote every identifier
 * ("app_table"."id").
 */
static void sink_quote(struct sink *k, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;	/* written as they are, up to s */

	sink_putc(k, '"');
	while (len) {
		unsigned char c = (unsigned char)*s;
		char esc[6] = { '\\' };
		size_t n, elen = 2;
		uint32_t cp;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			s++;
			len--;
			continue;
		}
		n = utf8_next(s, len, &cp);
		if (cp >= 0x80 && cp != 0xfffd) {
			s += n;
			len -= n;
			continue;
		}
		if (cp == '"' || cp == '\\') {
			esc[1] = (char)cp;
		} else if (cp == '\n') {
			esc[1] = 'n';
		} else if (cp == '\t') {
			esc[1] = 't';
		} else if (cp == '\r') {
			esc[1] = 'r';
		} else if (cp < 0x20) {
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[cp >> 4];
			esc[5] = hex[cp & 15];
			elen = 6;
		} else {
			memcpy(esc + 1, "ufffd", 5);	/* invalid UTF-8 (or U+FFFD itself) */
			elen = 6;
		}
		sink_put(k, run, s - run);
		sink_put(k, esc, elen);
		s += n;
		len -= n;
		run = s;
	}
	sink_put(k, run, s - run);
	sink_putc(k, '"');
}

int jsonw__quote(FILE *f, const char *s, size_t len)
{
	struct sink k;

	k.f = f;
	k.n = 0;
	k.err = 0;
	sink_quote(&k, s, len);
	sink_flush(&k);
	return k.err;
}

struct jsonw *jsonw__new(FILE *f)
{
	struct jsonw *w = malloc(sizeof(*w));

	if (!w)
		return NULL;
	/* all but the buffer's bytes: a writer per requests-log line must not clear 4 kB each time */
	memset(w, 0, offsetof(struct jsonw, out.buf));
	w->out.f = f;
	return w;
}

void jsonw__free(struct jsonw *w)
{
	if (!w)
		return;
	sink_flush(&w->out);
	free(w);
}

void jsonw__pretty(struct jsonw *w, bool on)
{
	w->pretty = on;
}

static void newline(struct jsonw *w)
{
	sink_putc(&w->out, '\n');
	for (unsigned i = 0; i < w->depth; i++)
		sink_put(&w->out, "  ", 2);
}

static int fail(struct jsonw *w, int err)
{
	if (!w->err)
		w->err = err;
	return w->err;
}

/* Comma and indentation before a value or a name; checks that a value may go here. */
static int begin_item(struct jsonw *w, bool is_name)
{
	unsigned d = w->depth;

	if (w->err)
		return w->err;
	if (w->want_value) {
		if (is_name)
			return fail(w, -EINVAL);
		w->want_value = false;
		return 0;
	}
	if (d == 0) {
		/* top level: one value, or several separated by newlines (JSON lines) */
		if (is_name)
			return fail(w, -EINVAL);
		if (w->nitems[0]++)
			sink_putc(&w->out, '\n');
		return 0;
	}
	if (w->is_obj[d - 1] != is_name)
		return fail(w, -EINVAL);
	if (w->nitems[d - 1]++)
		sink_putc(&w->out, ',');
	if (w->pretty)
		newline(w);
	return 0;
}

/* After a value or a name: a top-level value is complete, so it goes to the stream now. */
static int end_item(struct jsonw *w)
{
	if (!w->depth && !w->want_value)
		sink_flush(&w->out);
	if (w->out.err)
		return fail(w, w->out.err);
	return w->err;
}

static int start(struct jsonw *w, bool obj)
{
	int err = begin_item(w, false);

	if (err)
		return err;
	if (w->depth + 1 >= JSONW_MAX_DEPTH)
		return fail(w, -EINVAL);
	sink_putc(&w->out, obj ? '{' : '[');
	w->is_obj[w->depth] = obj;
	w->nitems[w->depth] = 0;
	w->depth++;
	return end_item(w);
}

static int end(struct jsonw *w, bool obj)
{
	if (w->err)
		return w->err;
	if (!w->depth || w->is_obj[w->depth - 1] != obj || w->want_value)
		return fail(w, -EINVAL);
	w->depth--;
	if (w->pretty && w->nitems[w->depth])
		newline(w);
	sink_putc(&w->out, obj ? '}' : ']');
	return end_item(w);
}

int jsonw__start_object(struct jsonw *w) { return start(w, true); }
int jsonw__end_object(struct jsonw *w) { return end(w, true); }
int jsonw__start_array(struct jsonw *w) { return start(w, false); }
int jsonw__end_array(struct jsonw *w) { return end(w, false); }

int jsonw__name(struct jsonw *w, const char *name)
{
	int err = begin_item(w, true);

	if (err)
		return err;
	sink_quote(&w->out, name, strlen(name));
	sink_put(&w->out, ": ", w->pretty ? 2 : 1);
	w->want_value = true;
	return end_item(w);
}

int jsonw__string_len(struct jsonw *w, const char *s, size_t len)
{
	int err = begin_item(w, false);

	if (err)
		return err;
	sink_quote(&w->out, s, len);
	return end_item(w);
}

int jsonw__string(struct jsonw *w, const char *s)
{
	return jsonw__string_len(w, s, strlen(s));
}

static int raw(struct jsonw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int raw(struct jsonw *w, const char *fmt, ...)
{
	int err = begin_item(w, false);
	char buf[512];
	va_list ap;
	int n;

	if (err)
		return err;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))	/* not with these formats: %.17f of DBL_MAX is 327 */
		return fail(w, -EINVAL);
	sink_put(&w->out, buf, (size_t)n);
	return end_item(w);
}

/* The bytes s[0..len) as a value: numbers and literals without a printf call each. */
static int literal(struct jsonw *w, const char *s, size_t len)
{
	int err = begin_item(w, false);

	if (err)
		return err;
	sink_put(&w->out, s, len);
	return end_item(w);
}

/* v in decimal, ending at end (exclusive); returns where it starts. */
static char *utoa_end(uint64_t v, char *end)
{
	do
		*--end = (char)('0' + v % 10);
	while (v /= 10);
	return end;
}

int jsonw__uint(struct jsonw *w, uint64_t v)
{
	char buf[20], *p = utoa_end(v, buf + sizeof(buf));

	return literal(w, p, buf + sizeof(buf) - p);
}

int jsonw__int(struct jsonw *w, int64_t v)
{
	char buf[21], *p = utoa_end(v < 0 ? -(uint64_t)v : (uint64_t)v, buf + sizeof(buf));

	if (v < 0)
		*--p = '-';
	return literal(w, p, buf + sizeof(buf) - p);
}

int jsonw__bool(struct jsonw *w, bool v) { return v ? literal(w, "true", 4) : literal(w, "false", 5); }
int jsonw__null(struct jsonw *w) { return literal(w, "null", 4); }

int jsonw__double(struct jsonw *w, double v)
{
	if (!isfinite(v))
		return jsonw__null(w);
	return raw(w, "%.15g", v);
}

int jsonw__double_fixed(struct jsonw *w, double v, int decimals)
{
	if (!isfinite(v))
		return jsonw__null(w);
	if (decimals < 0 || decimals > 17)
		return fail(w, -EINVAL);
	return raw(w, "%.*f", decimals, v);
}

int jsonw__finish(struct jsonw *w)
{
	if (!w->err && (w->depth || w->want_value))
		return -EINVAL;
	sink_flush(&w->out);
	if (!w->err && (w->out.err || fflush(w->out.f)))
		return -EIO;
	return w->err;
}

int jsonw__string_field(struct jsonw *w, const char *name, const char *s)
{
	jsonw__name(w, name);
	return jsonw__string(w, s);
}

int jsonw__uint_field(struct jsonw *w, const char *name, uint64_t v)
{
	jsonw__name(w, name);
	return jsonw__uint(w, v);
}

int jsonw__int_field(struct jsonw *w, const char *name, int64_t v)
{
	jsonw__name(w, name);
	return jsonw__int(w, v);
}

int jsonw__double_field(struct jsonw *w, const char *name, double v)
{
	jsonw__name(w, name);
	return jsonw__double(w, v);
}

int jsonw__double_fixed_field(struct jsonw *w, const char *name, double v, int decimals)
{
	jsonw__name(w, name);
	return jsonw__double_fixed(w, v, decimals);
}

int jsonw__bool_field(struct jsonw *w, const char *name, bool v)
{
	jsonw__name(w, name);
	return jsonw__bool(w, v);
}
