// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "httpparse.h"

/* Is buf[0..len) a prefix of want (all of buf matched) or does it start with all of want? */
static int match_prefix(const char *buf, size_t len, const char *want)
{
	size_t n = strlen(want), m = len < n ? len : n;

	if (memcmp(buf, want, m))
		return HTTP_PARSE_BAD;
	return len >= n ? HTTP_PARSE_OK : HTTP_PARSE_MORE;
}

/* A var's value, if its key is key (klen bytes at k). */
static bool var_is(const char *k, size_t klen, const char *key)
{
	return klen == strlen(key) && !memcmp(k, key, klen);
}

/* Copy a target of n bytes (visible ASCII) into out->path: false if it is not one. */
static bool take_target(const char *v, size_t n, bool cut, struct http_req_line *out)
{
	size_t p = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = v[i];

		if (c <= 0x20 || c >= 0x7f)
			return false;
		if (p + 1 < HTTP_PATH_MAX)
			out->path[p++] = c;
		else
			out->path_cut = true;
	}
	out->path[p] = 0;
	out->path_cut |= cut;
	return p > 0;
}

/*
 * uWSGI's request packet: a 4-byte header (modifier1 0, the vars' size little-endian, modifier2
 * 0), then vars, each key and value a 16-bit little-endian length and its bytes (uWSGI's
 * documentation, "The uwsgi Protocol"; uwsgi_params of nginx sends QUERY_STRING, REQUEST_METHOD,
 * ..., REQUEST_URI, PATH_INFO, ...). The method is REQUEST_METHOD; the target REQUEST_URI, the
 * request target as the client sent it (what an HTTP request line gives), else PATH_INFO. What
 * follows the vars is the body: consumed stays 0 (no pipelining on a uwsgi connection).
 * What BPF sends is such a packet cut down to the vars read here, the target last (bpf/http.bpf.c,
 * uwsgi_request); whole packets (the fuzzer's, the tests') parse the same.
 */
static int parse_uwsgi(const unsigned char *buf, size_t len, bool cut, struct http_req_line *out)
{
	size_t size, end, i = 4;
	bool have_uri = false, have_info = false;
	struct http_req_line info;

	if (len < 4)
		return cut ? HTTP_PARSE_BAD : HTTP_PARSE_MORE;
	size = buf[1] | (size_t)buf[2] << 8;
	if (buf[3] != 0 || size < 6)
		return HTTP_PARSE_BAD;
	end = 4 + size;
	memset(&info, 0, sizeof(info));
	while (i < end) {
		size_t klen, vlen;
		const char *k, *v;
		bool vcut = false;

		if (i + 2 > len)
			goto short_;
		klen = buf[i] | (size_t)buf[i + 1] << 8;
		if (!klen || i + 2 + klen + 2 > end)
			return HTTP_PARSE_BAD;
		if (i + 2 + klen + 2 > len)
			goto short_;
		k = (const char *)buf + i + 2;
		i += 2 + klen;
		vlen = buf[i] | (size_t)buf[i + 1] << 8;
		i += 2;
		if (i + vlen > end)
			return HTTP_PARSE_BAD;
		v = (const char *)buf + i;
		if (i + vlen > len) {
			if (!cut)
				return HTTP_PARSE_MORE;
			vcut = true;	/* its start, as far as the capture goes */
			vlen = len - i;
		}
		if (var_is(k, klen, "REQUEST_METHOD")) {
			if (!vlen || vlen >= HTTP_METHOD_MAX || vcut)
				return HTTP_PARSE_BAD;
			for (size_t j = 0; j < vlen; j++)
				if (v[j] < 'A' || v[j] > 'Z')
					return HTTP_PARSE_BAD;
			memcpy(out->method, v, vlen);
			out->method[vlen] = 0;
		} else if (var_is(k, klen, "REQUEST_URI")) {
			if (!take_target(v, vlen, vcut, out))
				return HTTP_PARSE_BAD;
			have_uri = true;
		} else if (var_is(k, klen, "PATH_INFO") && vlen) {
			have_info = take_target(v, vlen, vcut, &info);
		} else if (var_is(k, klen, "SERVER_PROTOCOL") && vlen == 8 && !memcmp(v, "HTTP/1.", 7) &&
			   v[7] >= '0' && v[7] <= '9') {
			out->minor = v[7] - '0';
		}
		if (vcut)
			break;
		i += vlen;
		if (out->method[0] && have_uri && out->minor >= 0)
			break;	/* all it needs */
	}
	goto done;
short_:
	if (!cut)
		return HTTP_PARSE_MORE;
done:
	if (!have_uri && have_info) {
		memcpy(out->path, info.path, sizeof(out->path));
		out->path_cut = info.path_cut;
		have_uri = true;
	}
	if (!out->method[0] || !have_uri)
		return HTTP_PARSE_BAD;	/* not there, or past what was captured */
	if (out->minor < 0)
		out->minor = 1;
	out->uwsgi = true;
	return HTTP_PARSE_OK;
}

int http_parse_request_line(const char *buf, size_t len, bool cut, struct http_req_line *out)
{
	size_t i = 0, m = 0, vs;
	int r;

	memset(out, 0, sizeof(*out));
	out->minor = -1;
	/* a request line never starts with NUL, uWSGI's request packet does */
	if (len && buf[0] == 0)
		return parse_uwsgi((const unsigned char *)buf, len, cut, out);
	/* method: a token of capital letters, then one space */
	while (i < len && buf[i] >= 'A' && buf[i] <= 'Z') {
		if (m + 1 >= HTTP_METHOD_MAX)
			return HTTP_PARSE_BAD;
		out->method[m++] = buf[i++];
	}
	if (i == len)
		return cut ? HTTP_PARSE_BAD : HTTP_PARSE_MORE;
	if (m == 0 || buf[i] != ' ')
		return HTTP_PARSE_BAD;
	i++;
	/* target: visible ASCII up to the next space */
	vs = i;
	while (i < len && buf[i] != ' ')
		i++;
	if (i > vs && !take_target(buf + vs, i - vs, false, out))
		return HTTP_PARSE_BAD;
	if (i == len) {
		if (!cut)
			return HTTP_PARSE_MORE;
		if (i == vs)
			return HTTP_PARSE_BAD;
		out->path_cut = true;
		return HTTP_PARSE_OK;
	}
	if (i == vs)
		return HTTP_PARSE_BAD;
	i++;
	/* version, then CRLF (or a bare LF) */
	r = match_prefix(buf + i, len - i, "HTTP/1.");
	if (r != HTTP_PARSE_OK)
		return r == HTTP_PARSE_MORE && cut ? HTTP_PARSE_OK : r;
	i += 7;
	if (i == len)
		return cut ? HTTP_PARSE_OK : HTTP_PARSE_MORE;
	if (!isdigit((unsigned char)buf[i]))
		return HTTP_PARSE_BAD;
	out->minor = buf[i++] - '0';
	if (i < len && buf[i] == '\r')
		i++;
	if (i == len)
		return cut ? HTTP_PARSE_OK : HTTP_PARSE_MORE;
	if (buf[i] != '\n')
		return HTTP_PARSE_BAD;
	out->consumed = i + 1;
	return HTTP_PARSE_OK;
}

int http_parse_status_line(const char *buf, size_t len, int *status)
{
	int r = match_prefix(buf, len, "HTTP/1.");
	size_t i;

	*status = 0;
	if (r != HTTP_PARSE_OK)
		return r;
	if (len < 12)
		return HTTP_PARSE_MORE;
	if (!isdigit((unsigned char)buf[7]) || buf[8] != ' ')
		return HTTP_PARSE_BAD;
	for (i = 9; i < 12; i++) {
		if (!isdigit((unsigned char)buf[i]))
			return HTTP_PARSE_BAD;
		*status = *status * 10 + (buf[i] - '0');
	}
	if (len > 12 && buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n')
		return HTTP_PARSE_BAD;
	if (*status < 100)
		return HTTP_PARSE_BAD;
	return HTTP_PARSE_OK;
}

static bool header_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

size_t http_next_request(const char *buf, size_t len)
{
	size_t i = 0, body = 0;
	bool chunked = false;

	/* skip the request line, then read header lines up to the empty one */
	while (i < len && buf[i] != '\n')
		i++;
	if (i == len)
		return 0;
	i++;
	for (;;) {
		size_t s = i, e;

		while (i < len && buf[i] != '\n')
			i++;
		if (i == len)
			return 0;
		e = i > s && buf[i - 1] == '\r' ? i - 1 : i;
		i++;
		if (e == s)
			break;
		if (header_is(buf + s, e - s, "content-length")) {
			char num[24] = "";
			size_t k = s + 15, n = 0;

			while (k < e && buf[k] == ' ')
				k++;
			while (k < e && n + 1 < sizeof(num))
				num[n++] = buf[k++];
			body = strtoul(num, NULL, 10);
		} else if (header_is(buf + s, e - s, "transfer-encoding")) {
			chunked = true;
		}
	}
	if (chunked || body > len - i || i + body >= len)
		return 0;
	return i + body;
}

static bool all_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return n > 0;
}

static bool is_uuid(const char *s, size_t n)
{
	static const int dash[] = { 8, 13, 18, 23 };
	size_t i, d = 0;

	if (n != 36)
		return false;
	for (i = 0; i < n; i++) {
		if (d < 4 && (int)i == dash[d]) {
			if (s[i] != '-')
				return false;
			d++;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

/* 16+ hex digits with at least one decimal digit: hashes, object ids, 32-digit UUIDs. */
static bool is_long_hex(const char *s, size_t n)
{
	bool digit = false;
	size_t i;

	if (n < 16)
		return false;
	for (i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return false;
		digit |= isdigit((unsigned char)s[i]) != 0;
	}
	return digit;
}

size_t http_route(const char *target, char *out, size_t size)
{
	const char *p = target, *end;
	size_t o = 0;

	if (!size)
		return 0;
	/* absolute form: scheme://host/path */
	if (strncmp(p, "http://", 7) == 0 || strncmp(p, "https://", 8) == 0) {
		p = strchr(strchr(p, ':') + 3, '/');
		if (!p)
			p = "/";
	}
	end = p + strcspn(p, "?#");
	while (p < end && o + 1 < size) {
		const char *seg;
		size_t n;

		if (*p == '/') {
			out[o++] = '/';
			p++;
			continue;
		}
		seg = p;
		while (p < end && *p != '/')
			p++;
		n = p - seg;
		if (all_digits(seg, n) || is_uuid(seg, n) || is_long_hex(seg, n)) {
			seg = HTTP_ROUTE_ID;
			n = strlen(HTTP_ROUTE_ID);
		}
		if (n > size - 1 - o)
			n = size - 1 - o;
		memcpy(out + o, seg, n);
		o += n;
	}
	if (o == 0 && size > 1)
		out[o++] = target[0] == '*' ? '*' : '/';
	out[o] = '\0';
	return o;
}

int http_route_template(const char *raw, char *out, size_t size, bool *multi)
{
	bool in = false, conv = false;	/* inside {...}; inside its :converter */
	size_t o = 0;
	const char *p;

	*multi = false;
	if (!size)
		return -EINVAL;
	out[0] = '\0';
	if (!raw || raw[0] != '/')
		return -EINVAL;
	for (p = raw; *p && o + 1 < size; p++) {
		if (*p == '{') {
			in = true;
		} else if (*p == '}') {
			in = conv = false;
		} else if (in && !conv && *p == ':') {
			conv = true;
			if (!strncmp(p + 1, "path}", 5))
				*multi = true;
		}
		if (!conv)
			out[o++] = *p;
	}
	out[o] = '\0';
	return 0;
}

static unsigned slashes(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '/';
	return n;
}

size_t http_route_join(const char *tmpl, bool multi, const char *target, char *out, size_t size)
{
	char folded[HTTP_ROUTE_MAX];
	size_t plen = 0, tlen = strlen(tmpl), flen;
	unsigned ft, tt, i;

	if (!size)
		return 0;
	out[0] = '\0';
	flen = http_route(target, folded, sizeof(folded));
	ft = slashes(folded);
	tt = slashes(tmpl);
	if (multi) {
		/* the literal part before the first parameter, found at a segment start of the path */
		size_t lit = strcspn(tmpl, "{");
		const char *at;

		if (lit <= 1 && tt < ft)
			return 0;	/* "/{rest:path}" under some mount: where it starts is unknown */
		for (at = folded; at && strncmp(at, tmpl, lit); at = strchr(at + 1, '/'))
			;
		if (!at)
			return 0;
		plen = at - folded;
	} else if (tt < ft) {
		/* a mount's route: the path's leading segments, as many as the template lacks */
		for (i = 0; plen < flen; plen++)
			if (folded[plen] == '/' && ++i == ft - tt + 1)
				break;
	} else if (tt > ft) {
		return 0;
	}
	if (plen + tlen + 1 > size)
		return 0;
	memcpy(out, folded, plen);
	memcpy(out + plen, tmpl, tlen + 1);
	return plen + tlen;
}
