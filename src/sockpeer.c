// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Where a traced process's socket leads, from /proc (see sockpeer.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockpeer.h"

#define TABLE_MAX (64u << 20)	/* a /proc/net table read whole: 64 MB is some 400,000 sockets */

void sockpeer__default_ports(struct sockpeer_ports *p)
{
	*p = (struct sockpeer_ports){ .port = { 5432, 6432 }, .n = 2 };
}

int sockpeer__parse_ports(const char *s, struct sockpeer_ports *p)
{
	struct sockpeer_ports out = { .n = 0 };

	for (;;) {
		char *end;
		unsigned long v;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno || !v || v > 65535 || out.n == SOCKPEER_PORTS_MAX)
			return -EINVAL;
		out.port[out.n++] = (uint16_t)v;
		if (!*end)
			break;
		if (*end != ',')
			return -EINVAL;
		s = end + 1;
	}
	*p = out;
	return 0;
}

/* The whole of a /proc file, NUL-terminated; NULL with errno set. */
static char *read_table(const char *path)
{
	FILE *f = fopen(path, "re");
	size_t cap = 1 << 16, len = 0;
	char *buf = NULL;

	if (!f)
		return NULL;
	for (;;) {
		char *nb;
		size_t n;

		if (cap > TABLE_MAX) {
			errno = EFBIG;
			goto fail;
		}
		nb = realloc(buf, cap + 1);
		if (!nb)
			goto fail;
		buf = nb;
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (len < cap) {
			if (ferror(f)) {
				errno = EIO;
				goto fail;
			}
			break;
		}
		cap *= 2;
	}
	fclose(f);
	buf[len] = 0;
	return buf;
fail:
	free(buf);
	fclose(f);
	return NULL;
}

/* The next line of a table after *pos (the header skipped by the callers' parse failing on it). */
static const char *next_line(const char **pos)
{
	const char *l = *pos, *nl;

	if (!*l)
		return NULL;
	nl = strchr(l, '\n');
	*pos = nl ? nl + 1 : l + strlen(l);
	return l;
}

/* One /proc/net/tcp or tcp6 line: local port, remote port, state, inode. */
static bool tcp_line(const char *l, unsigned *lport, unsigned *rport, unsigned *st, unsigned long *ino)
{
	return sscanf(l, " %*u: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%x %x %*s %*s %*s %*s %*s %lu", lport, rport, st,
		      ino) == 4 && *lport <= 65535 && *rport <= 65535;
}

#define TCP_LISTEN 0x0a

void sockpeer__listening(const char *table, uint8_t *listen)
{
	const char *pos = table, *l;

	while ((l = next_line(&pos))) {
		unsigned lport, rport, st;
		unsigned long ino;

		if (tcp_line(l, &lport, &rport, &st, &ino) && st == TCP_LISTEN)
			listen[lport >> 3] |= (uint8_t)(1u << (lport & 7));
	}
}

bool sockpeer__parse_tcp(const char *table, unsigned long ino, const uint8_t *listen, struct sockpeer *sp)
{
	const char *pos = table, *l;

	while ((l = next_line(&pos))) {
		unsigned lport, rport, st;
		unsigned long i;

		if (!tcp_line(l, &lport, &rport, &st, &i) || i != ino)
			continue;
		sp->local_port = (uint16_t)lport;
		sp->remote_port = (uint16_t)rport;
		sp->kind = (listen[lport >> 3] & (1u << (lport & 7))) ? SOCKPEER_TCP_IN : SOCKPEER_TCP_OUT;
		return true;
	}
	return false;
}

/* One /proc/net/unix line: inode, and where its path starts (or NULL). */
static bool unix_line(const char *l, unsigned long *ino, const char **path)
{
	int end = 0;

	if (sscanf(l, "%*s %*s %*s %*s %*s %*s %lu%n", ino, &end) != 1 || !end)
		return false;
	l += end;
	while (*l == ' ')
		l++;
	*path = *l && *l != '\n' ? l : NULL;
	return true;
}

bool sockpeer__unix_has(const char *table, unsigned long ino)
{
	const char *pos = table, *l, *path;

	while ((l = next_line(&pos))) {
		unsigned long i;

		if (unix_line(l, &i, &path) && i == ino)
			return true;
	}
	return false;
}

bool sockpeer__pg_unix_socket(const char *table, uint16_t port)
{
	const char *pos = table, *l, *path;
	char want[24];
	size_t wn = (size_t)snprintf(want, sizeof(want), "/.s.PGSQL.%u", port);

	while ((l = next_line(&pos))) {
		unsigned long i;
		const char *end;

		if (!unix_line(l, &i, &path) || !path)
			continue;
		end = path + strcspn(path, "\n");
		if ((size_t)(end - path) >= wn && !memcmp(end - wn, want, wn))
			return true;
	}
	return false;
}

/* The inode of pid's socket fd: 0 or -errno (-ENOTSOCK: fd is something else). */
static int socket_inode(pid_t pid, int fd, unsigned long *ino)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	if (sscanf(link, "socket:[%lu]", ino) != 1)
		return -ENOTSOCK;
	return 0;
}

static char *net_table(pid_t pid, const char *name)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/net/%s", (int)pid, name);
	return read_table(path);
}

int sockpeer__get(pid_t pid, int fd, struct sockpeer *sp)
{
	static const char *const tcp[] = { "tcp", "tcp6" };
	char *tables[2] = { NULL, NULL }, *ux;
	uint8_t *listen;
	unsigned long ino;
	bool found = false;
	int err, i;

	*sp = (struct sockpeer){ .kind = SOCKPEER_UNKNOWN };
	err = socket_inode(pid, fd, &ino);
	if (err)
		return err;
	listen = calloc(1, 65536 / 8);
	if (!listen)
		return -ENOMEM;
	for (i = 0; i < 2; i++) {
		tables[i] = net_table(pid, tcp[i]);
		if (tables[i])
			sockpeer__listening(tables[i], listen);
	}
	for (i = 0; i < 2 && !found; i++)
		found = tables[i] && sockpeer__parse_tcp(tables[i], ino, listen, sp);
	free(tables[0]);
	free(tables[1]);
	free(listen);
	if (found)
		return 0;
	ux = net_table(pid, "unix");
	if (ux && sockpeer__unix_has(ux, ino))
		sp->kind = SOCKPEER_UNIX;
	free(ux);
	return sp->kind == SOCKPEER_UNKNOWN ? -ENOENT : 0;
}

enum sockpeer_pg sockpeer__pg(pid_t pid, int fd, const struct sockpeer_ports *ports, struct sockpeer *out)
{
	struct sockpeer sp;
	enum sockpeer_pg r = SOCKPEER_PG_NO;
	char *ux;
	unsigned i;
	int err;

	err = sockpeer__get(pid, fd, &sp);
	if (err) {
		/* gone (the socket closed, the process exited) or of another family: nothing to read */
		if (err != -ENOENT && err != -ENOTSOCK && err != -ESRCH)
			r = SOCKPEER_PG_UNKNOWN;
		goto done;
	}
	if (sp.kind != SOCKPEER_TCP_OUT)
		goto done;
	for (i = 0; i < ports->n; i++)
		if (ports->port[i] == sp.remote_port) {
			r = SOCKPEER_PG_YES;
			goto done;
		}
	ux = net_table(pid, "unix");
	if (ux && sockpeer__pg_unix_socket(ux, sp.remote_port))
		r = SOCKPEER_PG_YES;
	free(ux);
done:
	if (out)
		*out = sp;
	return r;
}
