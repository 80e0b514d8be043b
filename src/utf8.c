// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <string.h>
#include "utf8.h"

size_t utf8_next(const char *str, size_t len, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	uint32_t c, min;
	size_t n;

	if (!len) {
		*cp = 0;
		return 0;
	}
	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2, c &= 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, c &= 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		goto bad;
	}
	if (n > len)
		goto bad;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			goto bad;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		goto bad;
	*cp = c;
	return n;
bad:
	*cp = 0xfffd;
	return 1;
}

bool utf8_put(char *buf, size_t size, size_t *n, uint32_t c)
{
	char tmp[4];
	size_t k;

	if ((c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		c = 0xfffd;	/* a lone surrogate, or past Unicode: not encodable */
	else if (c == 0)
		c = '?';	/* keep the result a C string */
	if (c < 0x80) {
		tmp[0] = (char)c;
		k = 1;
	} else if (c < 0x800) {
		tmp[0] = (char)(0xc0 | c >> 6);
		tmp[1] = (char)(0x80 | (c & 0x3f));
		k = 2;
	} else if (c < 0x10000) {
		tmp[0] = (char)(0xe0 | c >> 12);
		tmp[1] = (char)(0x80 | (c >> 6 & 0x3f));
		tmp[2] = (char)(0x80 | (c & 0x3f));
		k = 3;
	} else {
		tmp[0] = (char)(0xf0 | c >> 18);
		tmp[1] = (char)(0x80 | (c >> 12 & 0x3f));
		tmp[2] = (char)(0x80 | (c >> 6 & 0x3f));
		tmp[3] = (char)(0x80 | (c & 0x3f));
		k = 4;
	}
	if (!size || *n + k > size - 1)
		return false;
	memcpy(buf + *n, tmp, k);
	*n += k;
	return true;
}

uint32_t ucs_unit(const void *data, size_t i, unsigned kind)
{
	const unsigned char *p = data;
	uint16_t v2;
	uint32_t v4;

	if (kind == 1)
		return p[i];
	if (kind == 2) {
		memcpy(&v2, p + 2 * i, 2);
		return v2;
	}
	memcpy(&v4, p + 4 * i, 4);
	return v4;
}

size_t utf8_from_ucs(const void *data, size_t count, unsigned kind, char *buf, size_t size, size_t *used)
{
	const unsigned char *p = data;
	size_t n = 0, i;

	for (i = 0; i < count && (kind == 1 || kind == 2 || kind == 4); i++)
		if (!utf8_put(buf, size, &n, ucs_unit(p, i, kind)))
			break;
	if (size)
		buf[n] = 0;
	if (used)
		*used = i;
	return n;
}
