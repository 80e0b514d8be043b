// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Where a traced process's socket leads (see sockpeer.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "sockpeer.h"

#define TABLE_MAX (64u << 20)	/* a /proc/net table read whole: 64 MB is some 400,000 sockets */

void sockpeer__default_ports(struct sockpeer_ports *p)
{
	*p = (struct sockpeer_ports){ .port = { 5432, 6432, 6543 }, .n = 3 };
}

bool sockpeer__ports_has(const struct sockpeer_ports *p, uint16_t port)
{
	for (unsigned i = 0; i < p->n; i++)
		if (p->port[i] == port)
			return true;
	return false;
}

bool sockpeer__ports_add(struct sockpeer_ports *p, uint16_t port)
{
	if (sockpeer__ports_has(p, port) || p->n == SOCKPEER_PORTS_MAX)
		return false;
	p->port[p->n++] = port;
	return true;
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

/*
 * The fast way: a copy of the process's descriptor (pidfd_getfd, Linux 5.6, root's
 * CAP_SYS_PTRACE) tells the socket's family and its two ports in a few microseconds; whether an
 * IPv4/IPv6 connection was accepted comes from the ports TCP listens on, asked of sock_diag for
 * listening sockets alone. The /proc/net tables take milliseconds even nearly empty: each read
 * walks every bucket of the kernel's TCP hash tables (2 ms a read on this 24 GiB machine kind,
 * with 10 sockets; docs/PERFORMANCE.md, "Where a socket leads"). sock_diag answers for the
 * collector's network namespace: a process in another one gets the tables (-EXDEV here).
 */
static int same_netns(pid_t pid)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if (stat(path, &a) || stat("/proc/self/ns/net", &b))
		return -errno;
	return a.st_ino == b.st_ino && a.st_dev == b.st_dev ? 0 : -EXDEV;
}

/* Set the ports of TCP sockets listening in this network namespace in listen (65536 bits). */
static int listening_nl(uint8_t *listen)
{
	static const int families[] = { AF_INET, AF_INET6 };
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
	int s, i, err = 0;

	s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (s < 0)
		return -errno;
	for (i = 0; i < 2 && !err; i++) {
		struct {
			struct nlmsghdr nlh;
			struct inet_diag_req_v2 r;
		} req = {
			.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
				 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
			.r = { .sdiag_family = (uint8_t)families[i], .sdiag_protocol = IPPROTO_TCP,
			       .idiag_states = 1u << 10 /* TCP_LISTEN: the kernel walks the listeners only */ },
		};
		bool done = false;

		if (send(s, &req, sizeof(req), 0) < 0) {
			err = -errno;
			break;
		}
		while (!done && !err) {
			ssize_t n = recv(s, buf, sizeof(buf), 0);
			struct nlmsghdr *h;

			if (n < 0) {
				err = -errno;
				break;
			}
			if (n == 0)
				break;
			for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
				const struct inet_diag_msg *m;
				unsigned port;

				if (h->nlmsg_type == NLMSG_DONE) {
					done = true;
					break;
				}
				if (h->nlmsg_type == NLMSG_ERROR) {
					const struct nlmsgerr *e = NLMSG_DATA(h);

					err = e->error ? e->error : -EIO;
					break;
				}
				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
					continue;
				m = NLMSG_DATA(h);
				port = ntohs(m->id.idiag_sport);
				listen[port >> 3] |= (uint8_t)(1u << (port & 7));
			}
		}
	}
	close(s);
	return err;
}

int sockpeer__get_fast(pid_t pid, int fd, struct sockpeer *sp)
{
	struct sockaddr_storage a;
	socklen_t len;
	int pfd, s, dom, type, err;

	*sp = (struct sockpeer){ .kind = SOCKPEER_UNKNOWN };
	err = same_netns(pid);
	if (err)
		return err == -ENOENT ? -ESRCH : err;
	pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	s = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
	err = s < 0 ? -errno : 0;
	close(pfd);
	if (err)
		return err == -EBADF ? -ENOENT : err;
	len = sizeof(dom);
	if (getsockopt(s, SOL_SOCKET, SO_DOMAIN, &dom, &len)) {
		err = errno == ENOTSOCK ? -ENOTSOCK : -errno;
		goto out;
	}
	if (dom == AF_UNIX) {
		sp->kind = SOCKPEER_UNIX;
		goto out;
	}
	len = sizeof(type);
	if ((dom != AF_INET && dom != AF_INET6) || getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len) ||
	    type != SOCK_STREAM) {
		err = -ENOTSOCK;
		goto out;
	}
	len = sizeof(a);
	if (getsockname(s, (struct sockaddr *)&a, &len)) {
		err = -errno;
		goto out;
	}
	sp->local_port = ntohs(((struct sockaddr_in *)&a)->sin_port);	/* sin6_port is at the same place */
	len = sizeof(a);
	if (getpeername(s, (struct sockaddr *)&a, &len)) {
		err = errno == ENOTCONN ? -ENOENT : -errno;	/* a listener, or not connected */
		goto out;
	}
	sp->remote_port = ntohs(((struct sockaddr_in *)&a)->sin_port);
	{
		uint8_t *listen = calloc(1, 65536 / 8);

		if (!listen) {
			err = -ENOMEM;
			goto out;
		}
		err = listening_nl(listen);
		if (!err)
			sp->kind = listen[sp->local_port >> 3] & (1u << (sp->local_port & 7)) ? SOCKPEER_TCP_IN
											       : SOCKPEER_TCP_OUT;
		free(listen);
	}
out:
	close(s);
	if (err)
		*sp = (struct sockpeer){ .kind = SOCKPEER_UNKNOWN };
	return err;
}

int sockpeer__get(pid_t pid, int fd, struct sockpeer *sp)
{
	int err = sockpeer__get_fast(pid, fd, sp);

	/* gone, or not a socket of these families: the tables would say the same */
	if (!err || err == -ENOENT || err == -ENOTSOCK || err == -ESRCH)
		return err;
	return sockpeer__get_tables(pid, fd, sp);
}

int sockpeer__get_tables(pid_t pid, int fd, struct sockpeer *sp)
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
	if (sockpeer__ports_has(ports, sp.remote_port)) {
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

#define TCP_ESTABLISHED 0x01
#define UNIX_CONNECTED 0x03
#define UNIX_ACCEPTCON 0x10000	/* a listening socket's flag in /proc/net/unix */

static int cmp_ino(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

size_t sockpeer__accepted_inodes(const char *tcp, const char *tcp6, const char *ux, unsigned long *out, size_t max)
{
	const char *tables[2] = { tcp, tcp6 }, *pos, *l;
	uint8_t *listen = calloc(1, 65536 / 8);
	size_t n = 0;

	if (!listen)
		return 0;
	for (int t = 0; t < 2; t++)
		if (tables[t])
			sockpeer__listening(tables[t], listen);
	for (int t = 0; t < 2; t++) {
		for (pos = tables[t] ? tables[t] : ""; (l = next_line(&pos)) && n < max;) {
			unsigned lport, rport, st;
			unsigned long ino;

			if (tcp_line(l, &lport, &rport, &st, &ino) && st == TCP_ESTABLISHED && ino &&
			    (listen[lport >> 3] & (1u << (lport & 7))))
				out[n++] = ino;
		}
	}
	/* a unix-domain connection accepted on a named socket has that name too; a client's has none */
	for (pos = ux ? ux : ""; (l = next_line(&pos)) && n < max;) {
		unsigned long flags, type, st, ino;
		int end = 0;

		if (sscanf(l, "%*s %*s %*s %lx %lx %lx %lu%n", &flags, &type, &st, &ino, &end) != 4 || !end)
			continue;
		l += end;
		while (*l == ' ')
			l++;
		if (st == UNIX_CONNECTED && type == SOCK_STREAM && !(flags & UNIX_ACCEPTCON) && *l && *l != '\n' && ino)
			out[n++] = ino;
	}
	free(listen);
	qsort(out, n, sizeof(*out), cmp_ino);
	return n;
}

int sockpeer__accepted(pid_t pid, int *fds, int max)
{
	char path[64];
	unsigned long *inos = NULL, ino;
	size_t ninos;
	char *tcp, *tcp6, *ux;
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	tcp = net_table(pid, "tcp");
	tcp6 = net_table(pid, "tcp6");
	ux = net_table(pid, "unix");
	inos = malloc(SOCKPEER_ACCEPTED_MAX * sizeof(*inos));
	ninos = inos ? sockpeer__accepted_inodes(tcp, tcp6, ux, inos, SOCKPEER_ACCEPTED_MAX) : 0;
	while (ninos && n < max && (de = readdir(d))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);

		if (*end || fd < 0 || fd > INT32_MAX || socket_inode(pid, (int)fd, &ino))
			continue;
		if (bsearch(&ino, inos, ninos, sizeof(*inos), cmp_ino))
			fds[n++] = (int)fd;
	}
	closedir(d);
	free(inos);
	free(tcp);
	free(tcp6);
	free(ux);
	return n;
}
