// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "service.h"

#define ARGV_MAX 64
#define READ_MAX 16384		/* bytes of environ and cmdline looked at */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t need, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4;
	else
		return 0;
	if (n < need)
		return 0;
	for (i = 1; i < need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong and surrogate forms */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	/* C1 controls (U+0080..U+009F) */
	if (s[0] == 0xc2 && s[1] < 0xa0)
		return 0;
	return need;
}

size_t service__sanitize(const char *src, size_t srclen, char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0, o = 0, k;

	if (!len)
		return 0;
	while (i < srclen && s[i]) {
		if (s[i] < 0x80) {
			if (s[i] >= 0x20 && s[i] < 0x7f && o + 1 < len)
				buf[o++] = s[i];
			else if (o + 1 >= len)
				break;
			i++;
			continue;
		}
		k = utf8_len(s + i, srclen - i);
		if (!k) {
			i++;
			continue;
		}
		if (o + k >= len)
			break;	/* never cut a character */
		memcpy(buf + o, s + i, k);
		o += k;
		i += k;
	}
	/* no leading or trailing blanks */
	while (o && buf[o - 1] == ' ')
		o--;
	buf[o] = '\0';
	for (k = 0; buf[k] == ' '; k++)
		;
	if (k) {
		memmove(buf, buf + k, o - k + 1);
		o -= k;
	}
	return o;
}

/* Split a NUL-separated buffer into at most max strings (pointers into it, bounded by end). */
static int split(const char *b, size_t n, const char **v, size_t *vl, int max)
{
	size_t i = 0;
	int c = 0;

	while (b && i < n && c < max) {
		size_t s = i;

		while (i < n && b[i])
			i++;
		v[c] = b + s;
		vl[c] = i - s;
		c++;
		i++;
	}
	/* trailing empty strings (setproctitle pads with NULs) */
	while (c && !vl[c - 1])
		c--;
	return c;
}

static const char *base_of(const char *s, size_t n, size_t *bl)
{
	const char *p = s + n;

	while (p > s && p[-1] != '/')
		p--;
	*bl = s + n - p;
	return p;
}

static bool is_ident(const char *s, size_t n, bool dotted)
{
	size_t i;

	if (!n || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return false;
	for (i = 1; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      (dotted && c == '.' && s[i - 1] != '.')))
			return false;
	}
	return s[n - 1] != '.';
}

static bool eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && !memcmp(s, lit, n);
}

static bool is_python(const char *s, size_t n)
{
	size_t bl;
	const char *b = base_of(s, n, &bl);

	return bl >= 6 && !memcmp(b, "python", 6);
}

/* Python's own options that take a value (python -W ignore x.py). */
static bool py_opt_takes_value(const char *s, size_t n)
{
	return n == 2 && (s[1] == 'W' || s[1] == 'X' || s[1] == 'Q');
}

/* gunicorn's options with no value; every other option takes one (gunicorn --help). */
static bool gunicorn_flag(const char *s, size_t n)
{
	static const char *const flags[] = {
		"-D", "--daemon", "-R", "--enable-stdio-inheritance", "--reload", "--preload", "--spew",
		"--check-config", "--print-config", "--capture-output", "--no-sendfile", "--reuse-port",
		"--proxy-protocol", "--strip-header-spaces", "--suppress-ragged-eofs", "--do-handshake-on-connect",
		"--paste-global-conf", "-v", "--version", "-h", "--help", "--permit-unconventional-http-method",
		"--permit-unconventional-http-version", "--casefold-http-method", "--header-map",
	};
	size_t i;

	if (memchr(s, '=', n))
		return true;	/* --opt=value */
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (eq(s, n, flags[i]))
			return true;
	return false;
}

/* gunicorn's arguments after the program: -n/--name, else the app's module. */
static size_t from_gunicorn(const char **v, const size_t *vl, int c, int first, char *buf, size_t len)
{
	const char *app = NULL;
	size_t appl = 0;
	int i;

	for (i = first; i < c; i++) {
		const char *a = v[i];
		size_t n = vl[i];

		if ((eq(a, n, "-n") || eq(a, n, "--name")) && i + 1 < c)
			return service__sanitize(v[i + 1], vl[i + 1], buf, len);
		if (n > 7 && !memcmp(a, "--name=", 7))
			return service__sanitize(a + 7, n - 7, buf, len);
		if (n > 2 && !memcmp(a, "-n", 2) && a[2] != '-')
			return service__sanitize(a + 2, n - 2, buf, len);
		if (n && a[0] == '-') {
			if (!gunicorn_flag(a, n) && !(n > 2 && a[1] != '-'))
				i++;	/* its value */
			continue;
		}
		app = a;	/* the last positional argument is the app */
		appl = n;
	}
	if (app) {
		const char *colon = memchr(app, ':', appl);
		size_t ml = colon ? (size_t)(colon - app) : appl;

		if (is_ident(app, ml, true))
			return service__sanitize(app, ml, buf, len);
	}
	return 0;
}

static size_t from_cmdline(const char *cmd, size_t cmdlen, char *buf, size_t len)
{
	const char *v[ARGV_MAX];
	size_t vl[ARGV_MAX], bl;
	int c = split(cmd, cmdlen, v, vl, ARGV_MAX), i;
	const char *b;

	if (!c)
		return 0;
	/* setproctitle: "gunicorn: master [NAME]" (one string, maybe padded with spaces) */
	if (vl[0] > 10 && !memcmp(v[0], "gunicorn: ", 10)) {
		const char *o = memchr(v[0], '[', vl[0]), *e;

		if (o && (e = memchr(o, ']', vl[0] - (o - v[0]))) && e > o + 1)
			return service__sanitize(o + 1, e - o - 1, buf, len);
	}
	b = base_of(v[0], vl[0], &bl);
	if (eq(b, bl, "gunicorn"))
		return from_gunicorn(v, vl, c, 1, buf, len);
	if (!is_python(v[0], vl[0]))
		return 0;
	for (i = 1; i < c; i++) {
		const char *a = v[i];
		size_t n = vl[i];

		if (n >= 2 && a[0] == '-' && a[1] != '-') {
			if (a[1] == 'c')
				return 0;	/* python -c CODE: no name in it */
			if (a[1] == 'm') {
				const char *m = n > 2 ? a + 2 : i + 1 < c ? v[i + 1] : NULL;
				size_t ml = n > 2 ? n - 2 : i + 1 < c ? vl[i + 1] : 0;

				if (!m)
					return 0;
				if (eq(m, ml, "gunicorn"))
					return from_gunicorn(v, vl, c, i + (n > 2 ? 1 : 2), buf, len);
				return service__sanitize(m, ml, buf, len);
			}
			if (py_opt_takes_value(a, n))
				i++;
			continue;
		}
		if (n && a[0] == '-')
			continue;	/* --long options of python itself (--check-hash-based-pycs x) are rare */
		/* the script */
		b = base_of(a, n, &bl);
		if (eq(b, bl, "gunicorn"))
			return from_gunicorn(v, vl, c, i + 1, buf, len);
		if (bl > 3 && !memcmp(b + bl - 3, ".py", 3))
			bl -= 3;
		return service__sanitize(b, bl, buf, len);
	}
	return 0;
}

size_t service__from_buffers(const char *env, size_t envlen, const char *cmd, size_t cmdlen,
			     const char *comm, char *buf, size_t len)
{
	static const char key[] = "OTEL_SERVICE_NAME=";
	size_t i = 0, n;

	if (len < 8) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	while (env && i < envlen) {
		size_t s = i;

		while (i < envlen && env[i])
			i++;
		if (i - s > sizeof(key) - 1 && !memcmp(env + s, key, sizeof(key) - 1)) {
			n = service__sanitize(env + s + sizeof(key) - 1, i - s - (sizeof(key) - 1), buf, len);
			if (n)
				return n;
		}
		i++;
	}
	n = from_cmdline(cmd, cmdlen, buf, len);
	if (n)
		return n;
	n = comm ? service__sanitize(comm, strlen(comm), buf, len) : 0;
	if (n)
		return n;
	snprintf(buf, len, "unknown");
	return strlen(buf);
}

static size_t read_all(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t r;

	if (fd < 0)
		return 0;
	while (n < size && (r = read(fd, buf + n, size - n)) > 0)
		n += r;
	close(fd);
	return n;
}

size_t service__name(pid_t pid, char *buf, size_t len)
{
	char path[64], comm[32] = "";
	char *env = malloc(READ_MAX), *cmd = malloc(READ_MAX);
	size_t envn = 0, cmdn = 0, n;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	n = read_all(path, comm, sizeof(comm) - 1);
	comm[n] = '\0';
	while (n && comm[n - 1] == '\n')
		comm[--n] = '\0';
	if (env) {
		snprintf(path, sizeof(path), "/proc/%d/environ", pid);
		envn = read_all(path, env, READ_MAX);
	}
	if (cmd) {
		snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
		cmdn = read_all(path, cmd, READ_MAX);
	}
	n = service__from_buffers(env, envn, cmd, cmdn, comm, buf, len);
	free(env);
	free(cmd);
	return n;
}
