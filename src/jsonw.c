// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Streaming JSON writer: one frame per open container remembers whether a comma is due. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "utf8.h"

struct jsonw {
	FILE *f;
	bool pretty;
	bool want_value;	/* a name was written, its value is due */
	int err;
	unsigned depth;
	bool is_obj[JSONW_MAX_DEPTH];
	size_t nitems[JSONW_MAX_DEPTH];
};

struct jsonw *jsonw__new(FILE *f)
{
	struct jsonw *w = calloc(1, sizeof(*w));

	if (w)
		w->f = f;
	return w;
}

void jsonw__free(struct jsonw *w)
{
	free(w);
}

void jsonw__pretty(struct jsonw *w, bool on)
{
	w->pretty = on;
}

/*
 * Runs of characters that need no escape (printable ASCII and valid UTF-8) go out in one fwrite:
 * a call per character was the largest item of the collector's CPU while it wrote a requests log.
 */
int jsonw__quote(FILE *f, const char *s, size_t len)
{
	const char *run = s;	/* written as they are, up to s */

	fputc('"', f);
	while (len) {
		unsigned char c = (unsigned char)*s;
		uint32_t cp;
		size_t n;

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
		fwrite(run, 1, s - run, f);
		if (cp == '"' || cp == '\\')
			fprintf(f, "\\%c", (char)cp);
		else if (cp == '\n')
			fputs("\\n", f);
		else if (cp == '\t')
			fputs("\\t", f);
		else if (cp == '\r')
			fputs("\\r", f);
		else if (cp < 0x20)
			fprintf(f, "\\u%04x", cp);
		else
			fputs("\\ufffd", f);	/* invalid UTF-8 (or U+FFFD itself) */
		s += n;
		len -= n;
		run = s;
	}
	fwrite(run, 1, s - run, f);
	fputc('"', f);
	return ferror(f) ? -EIO : 0;
}

static void newline(struct jsonw *w)
{
	fputc('\n', w->f);
	for (unsigned i = 0; i < w->depth; i++)
		fputs("  ", w->f);
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
			fputc('\n', w->f);
		return 0;
	}
	if (w->is_obj[d - 1] != is_name)
		return fail(w, -EINVAL);
	if (w->nitems[d - 1]++)
		fputc(',', w->f);
	if (w->pretty)
		newline(w);
	return 0;
}

static int end_item(struct jsonw *w)
{
	if (ferror(w->f))
		return fail(w, -EIO);
	return w->err;
}

static int start(struct jsonw *w, bool obj)
{
	int err = begin_item(w, false);

	if (err)
		return err;
	if (w->depth + 1 >= JSONW_MAX_DEPTH)
		return fail(w, -EINVAL);
	fputc(obj ? '{' : '[', w->f);
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
	fputc(obj ? '}' : ']', w->f);
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
	jsonw__quote(w->f, name, strlen(name));
	fputs(w->pretty ? ": " : ":", w->f);
	w->want_value = true;
	return end_item(w);
}

int jsonw__string_len(struct jsonw *w, const char *s, size_t len)
{
	int err = begin_item(w, false);

	if (err)
		return err;
	jsonw__quote(w->f, s, len);
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
	va_list ap;

	if (err)
		return err;
	va_start(ap, fmt);
	vfprintf(w->f, fmt, ap);
	va_end(ap);
	return end_item(w);
}

int jsonw__uint(struct jsonw *w, uint64_t v) { return raw(w, "%" PRIu64, v); }
int jsonw__int(struct jsonw *w, int64_t v) { return raw(w, "%" PRId64, v); }
int jsonw__bool(struct jsonw *w, bool v) { return raw(w, "%s", v ? "true" : "false"); }
int jsonw__null(struct jsonw *w) { return raw(w, "null"); }

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
	if (!w->err && fflush(w->f))
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
