/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A growable byte buffer for outputs built in memory and handed to someone else (the HTTP
 * server sends it and frees it). Errors stick: after the first failed append every later one
 * fails too and membuf__error() says why, so writers can check once at the end.
 */
#ifndef PYTRACE_MEMBUF_H
#define PYTRACE_MEMBUF_H

#include <stdarg.h>
#include <stddef.h>

struct membuf {
	char *data;	/* NUL-terminated when len > 0 */
	size_t len, cap;
	size_t max;	/* 0: no limit; else appends beyond max bytes fail with -E2BIG */
	int err;	/* 0, -ENOMEM or -E2BIG */
};

void membuf__init(struct membuf *b, size_t max);
void membuf__free(struct membuf *b);
/* Empties the buffer (keeps its memory) and clears the error. */
void membuf__reset(struct membuf *b);
int membuf__append(struct membuf *b, const void *p, size_t n);
int membuf__puts(struct membuf *b, const char *s);
int membuf__putc(struct membuf *b, char c);
int membuf__printf(struct membuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int membuf__vprintf(struct membuf *b, const char *fmt, va_list ap);
/* The sticky error, 0 if none. */
int membuf__error(const struct membuf *b);
/* Hands the data (malloc'd, possibly NULL when empty) to the caller and empties the buffer. */
char *membuf__steal(struct membuf *b, size_t *len);

#endif /* PYTRACE_MEMBUF_H */
