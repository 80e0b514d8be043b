/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Streaming JSON writer in the manner of bpftool's json_writer: it places commas itself. */
#ifndef PYTRACE_JSONW_H
#define PYTRACE_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSONW_MAX_DEPTH 64

struct jsonw;

struct jsonw *jsonw__new(FILE *f);
/*
 * Writes what the writer holds to f and frees it: unclosed containers stay unclosed, f is neither
 * flushed nor closed.
 */
void jsonw__free(struct jsonw *w);
/* Newlines and two-space indentation, "name": value; compact by default. */
void jsonw__pretty(struct jsonw *w, bool on);

/*
 * Every call returns 0 or a negative errno, and the first error sticks: -EIO when the stream
 * failed, -EINVAL for misuse (a value where a name is due, unbalanced end, too deep).
 */
int jsonw__start_object(struct jsonw *w);
int jsonw__end_object(struct jsonw *w);
int jsonw__start_array(struct jsonw *w);
int jsonw__end_array(struct jsonw *w);
int jsonw__name(struct jsonw *w, const char *name);

/* Any bytes: invalid UTF-8 becomes U+FFFD, NUL and control characters are escaped. */
int jsonw__string(struct jsonw *w, const char *s);
int jsonw__string_len(struct jsonw *w, const char *s, size_t len);
int jsonw__uint(struct jsonw *w, uint64_t v);
int jsonw__int(struct jsonw *w, int64_t v);
/* 15 significant digits; NaN and infinities are written as null. */
int jsonw__double(struct jsonw *w, double v);
/* "%.*f" with decimals digits after the point (0..17); non-finite as null. */
int jsonw__double_fixed(struct jsonw *w, double v, int decimals);
int jsonw__bool(struct jsonw *w, bool v);
int jsonw__null(struct jsonw *w);

/* "name": value in one call, as bpftool's jsonw_*_field. */
int jsonw__string_field(struct jsonw *w, const char *name, const char *s);
int jsonw__uint_field(struct jsonw *w, const char *name, uint64_t v);
int jsonw__int_field(struct jsonw *w, const char *name, int64_t v);
int jsonw__double_field(struct jsonw *w, const char *name, double v);
int jsonw__double_fixed_field(struct jsonw *w, const char *name, double v, int decimals);
int jsonw__bool_field(struct jsonw *w, const char *name, bool v);

/* The sticky error; -EINVAL as well if containers are still open. */
int jsonw__finish(struct jsonw *w);

/*
 * The escaper shared with writers that format JSON by hand: s[0..len) as a quoted JSON
 * string; invalid UTF-8 (and U+FFFD itself) written as \ufffd. Returns 0 or -EIO.
 */
int jsonw__quote(FILE *f, const char *s, size_t len);

#endif /* PYTRACE_JSONW_H */
