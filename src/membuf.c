// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Growable byte buffer with a sticky error. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membuf.h"

void membuf__init(struct membuf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void membuf__free(struct membuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void membuf__reset(struct membuf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int reserve(struct membuf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (b->err)
		return b->err;
	if (n > SIZE_MAX / 2 - b->len - 1)
		return b->err = -ENOMEM;
	need = b->len + n + 1;
	if (b->max && b->len + n > b->max)
		return b->err = -E2BIG;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return b->err = -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int membuf__append(struct membuf *b, const void *p, size_t n)
{
	int err = reserve(b, n);

	if (err)
		return err;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int membuf__puts(struct membuf *b, const char *s)
{
	return membuf__append(b, s, strlen(s));
}

int membuf__putc(struct membuf *b, char c)
{
	return membuf__append(b, &c, 1);
}

int membuf__vprintf(struct membuf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n, err;

	if (b->err)
		return b->err;
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return b->err = -EINVAL;
	err = reserve(b, (size_t)n);
	if (err)
		return err;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int membuf__printf(struct membuf *b, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = membuf__vprintf(b, fmt, ap);
	va_end(ap);
	return err;
}

int membuf__error(const struct membuf *b)
{
	return b->err;
}

char *membuf__steal(struct membuf *b, size_t *len)
{
	char *p = b->data;

	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
