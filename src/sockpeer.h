/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What a traced process's socket is connected to, from /proc: the wire reader's test of a socket
 * that carries TLS records it cannot read. An encrypted PostgreSQL connection opened before
 * tracing looks, on the wire, like any other TLS traffic (HTTPS to another service, a TLS server's
 * own connections); only where it leads tells them apart:
 *  - PostgreSQL never encrypts a unix-domain socket: the server answers an SSLRequest there 'N'
 *    (src/backend/postmaster/postmaster.c, ProcessStartupPacket: no SSL on AF_UNIX), and libpq
 *    ignores sslmode there (the libpq documentation, "sslmode");
 *  - a connection accepted on a listening port is a server's, not a client's;
 *  - an outgoing TCP connection leads to PostgreSQL if its port is one PostgreSQL or a pooler in
 *    front of it listens on by default (5432, PgBouncer's 6432, and 6543, where Supabase's pooler
 *    takes transaction-mode connections), one given with --pg-ports, one a PostgreSQL server of
 *    this host listens on (every server makes a unix socket .s.PGSQL.<port> beside its TCP port,
 *    unless unix_socket_directories is empty), or one a connection the wire reader follows leads
 *    to (the caller learns those: pgwiretrace.c).
 */
#ifndef PYTRACE_SOCKPEER_H
#define PYTRACE_SOCKPEER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum sockpeer_kind {
	SOCKPEER_UNKNOWN,	/* not a socket, gone, or in none of the tables read */
	SOCKPEER_UNIX,		/* a unix-domain socket */
	SOCKPEER_TCP_IN,	/* a TCP connection accepted on a port something listens on */
	SOCKPEER_TCP_OUT,	/* a TCP connection made to another port */
};

struct sockpeer {
	enum sockpeer_kind kind;
	uint16_t local_port, remote_port;
};

enum sockpeer_pg {
	SOCKPEER_PG_NO,		/* not a connection to PostgreSQL */
	SOCKPEER_PG_YES,	/* a client connection to a PostgreSQL port */
	SOCKPEER_PG_UNKNOWN,	/* /proc's tables could not be read: nothing can be told */
};

#define SOCKPEER_PORTS_MAX 16
struct sockpeer_ports {
	uint16_t port[SOCKPEER_PORTS_MAX];	/* PostgreSQL's ports besides a local server's */
	unsigned n;
};

/* The defaults: 5432, 6432, 6543. */
void sockpeer__default_ports(struct sockpeer_ports *p);
bool sockpeer__ports_has(const struct sockpeer_ports *p, uint16_t port);
/* Add port to p: true if added, false if it was there or p is full. */
bool sockpeer__ports_add(struct sockpeer_ports *p, uint16_t port);
/* "5432,6543": the list replaces the defaults. 0, or -EINVAL (a bad port, too many). */
int sockpeer__parse_ports(const char *s, struct sockpeer_ports *p);

/*
 * The socket fd of pid: 0, or -ENOENT (no such descriptor, or a socket of no connection),
 * -ENOTSOCK (not a socket, or not of these families), -ESRCH (no such process), -errno.
 * sockpeer__get_fast: from a copy of the descriptor (pidfd_getfd) and sock_diag's listeners, in
 * microseconds; -EXDEV for a process in another network namespace, -EPERM or -ENOSYS where it
 * cannot. sockpeer__get_tables: from /proc/PID/fd and /proc/PID/net/{tcp,tcp6,unix}, which
 * take milliseconds. sockpeer__get: the first, else the second.
 */
int sockpeer__get(pid_t pid, int fd, struct sockpeer *sp);
int sockpeer__get_fast(pid_t pid, int fd, struct sockpeer *sp);
int sockpeer__get_tables(pid_t pid, int fd, struct sockpeer *sp);
/*
 * Does pid's socket fd lead to PostgreSQL? ports: the ports known as PostgreSQL's; a port a
 * PostgreSQL server of pid's network namespace has its unix socket for counts too. sp (may be
 * NULL) gets what was found.
 */
enum sockpeer_pg sockpeer__pg(pid_t pid, int fd, const struct sockpeer_ports *ports, struct sockpeer *sp);

/*
 * The descriptors of pid that are the server side of a connection, found before tracing saw
 * them accepted: TCP connections established on a port something listens on in pid's network
 * namespace, and unix-domain stream connections accepted on a named socket (which carry its
 * name; a client's socket has none). Up to max of them into fds: how many, or -errno (-ESRCH).
 * From /proc/PID/fd and /proc/PID/net/{tcp,tcp6,unix}: any network namespace, milliseconds.
 */
#define SOCKPEER_ACCEPTED_MAX 65536
int sockpeer__accepted(pid_t pid, int *fds, int max);
/* The piece on the tables' text: the inodes of such sockets, sorted, at most max: how many. */
size_t sockpeer__accepted_inodes(const char *tcp, const char *tcp6, const char *ux, unsigned long *out, size_t max);

/*
 * The pieces, on the tables' text (for the tests): the line of socket inode ino in a /proc/net/tcp
 * or tcp6 table; its kind is TCP_IN when listen (the ports in LISTEN state in both tables, a
 * 65536-bit map) has its local port. true if found.
 */
bool sockpeer__parse_tcp(const char *table, unsigned long ino, const uint8_t *listen, struct sockpeer *sp);
/* Add the ports of table's LISTEN lines to listen (65536 bits). */
void sockpeer__listening(const char *table, uint8_t *listen);
/* Is inode ino in the /proc/net/unix table? */
bool sockpeer__unix_has(const char *table, unsigned long ino);
/* Does the /proc/net/unix table hold a PostgreSQL server's socket for port (".../.s.PGSQL.<port>")? */
bool sockpeer__pg_unix_socket(const char *table, uint16_t port);

#endif
