// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Where a socket leads, from /proc's tables: accepted or outgoing TCP, unix, PostgreSQL's ports. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "sockpeer.h"

/* /proc/net/tcp as a 6.1 kernel writes it: a server on 8000 with a connection accepted from
 * 127.0.0.1:51234, and an outgoing connection from 127.0.0.1:40000 to 443 */
static const char TCP[] =
	"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	"   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 "
	"0000000000000000 100 0 0 10 0\n"
	"   1: 0100007F:1F40 0100007F:C822 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 "
	"0000000000000000 20 4 30 10 -1\n"
	"   2: 0100007F:9C40 0100007F:01BB 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 "
	"0000000000000000 20 4 30 10 -1\n";
/* tcp6: a server listening on [::]:5432 (IPv4 clients appear mapped), an outgoing connection to it */
static const char TCP6[] =
	"  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
	"tm->when retrnsmt   uid  timeout inode\n"
	"   0: 00000000000000000000000000000000:1538 00000000000000000000000000000000:0000 0A 00000000:00000000 "
	"00:00000000 00000000   108        0 2001 1 0000000000000000 100 0 0 10 0\n"
	"   1: 0000000000000000FFFF00000100007F:A000 0000000000000000FFFF00000100007F:1538 01 00000000:00000000 "
	"00:00000000 00000000  1000        0 2002 1 0000000000000000 20 4 30 10 -1\n";
static const char UNIX[] =
	"Num       RefCount Protocol Flags    Type St Inode Path\n"
	"0000000000000000: 00000002 00000000 00010000 0001 01 3001 /run/postgresql/.s.PGSQL.5433\n"
	"0000000000000000: 00000003 00000000 00000000 0001 03 3002\n"
	"0000000000000000: 00000002 00000000 00010000 0001 01 3003 @/tmp/.X11-unix/X0\n"
	"0000000000000000: 00000002 00000000 00010000 0001 01 3004 /tmp/.s.PGSQL.54471.lock-not-a-socket\n";

static void test_tcp(void **state)
{
	uint8_t *listen = calloc(1, 65536 / 8);
	struct sockpeer sp;

	(void)state;
	sockpeer__listening(TCP, listen);
	sockpeer__listening(TCP6, listen);
	/* the accepted connection: its local port listens */
	assert_true(sockpeer__parse_tcp(TCP, 1002, listen, &sp));
	assert_int_equal(sp.kind, SOCKPEER_TCP_IN);
	assert_int_equal(sp.local_port, 8000);
	assert_int_equal(sp.remote_port, 51234);
	/* the outgoing one */
	assert_true(sockpeer__parse_tcp(TCP, 1003, listen, &sp));
	assert_int_equal(sp.kind, SOCKPEER_TCP_OUT);
	assert_int_equal(sp.local_port, 40000);
	assert_int_equal(sp.remote_port, 443);
	assert_true(sockpeer__parse_tcp(TCP6, 2002, listen, &sp));
	assert_int_equal(sp.kind, SOCKPEER_TCP_OUT);
	assert_int_equal(sp.remote_port, 5432);
	/* a listening socket is "accepted" (its own port listens): never a client connection */
	assert_true(sockpeer__parse_tcp(TCP6, 2001, listen, &sp));
	assert_int_equal(sp.kind, SOCKPEER_TCP_IN);
	/* not there; the header line is no socket */
	assert_false(sockpeer__parse_tcp(TCP, 2002, listen, &sp));
	assert_false(sockpeer__parse_tcp(TCP, 0, listen, &sp));
	assert_false(sockpeer__parse_tcp("", 1002, listen, &sp));
	assert_false(sockpeer__parse_tcp("   0: garbage\n", 1002, listen, &sp));
	free(listen);
}

static void test_unix(void **state)
{
	(void)state;
	assert_true(sockpeer__unix_has(UNIX, 3001));
	assert_true(sockpeer__unix_has(UNIX, 3002));	/* no path */
	assert_false(sockpeer__unix_has(UNIX, 1002));
	assert_true(sockpeer__pg_unix_socket(UNIX, 5433));
	assert_false(sockpeer__pg_unix_socket(UNIX, 5432));
	assert_false(sockpeer__pg_unix_socket(UNIX, 543));	/* a suffix of the name, not the port */
	assert_false(sockpeer__pg_unix_socket(UNIX, 54471));	/* only the whole name */
	assert_false(sockpeer__pg_unix_socket("", 5433));
}

static void test_ports(void **state)
{
	struct sockpeer_ports p;

	(void)state;
	sockpeer__default_ports(&p);
	assert_int_equal(p.n, 3);
	assert_int_equal(p.port[0], 5432);
	assert_int_equal(p.port[1], 6432);
	assert_int_equal(p.port[2], 6543);
	assert_true(sockpeer__ports_has(&p, 6543));
	assert_false(sockpeer__ports_has(&p, 443));
	assert_int_equal(sockpeer__parse_ports("6543", &p), 0);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.port[0], 6543);
	assert_int_equal(sockpeer__parse_ports("5432,26257,65535", &p), 0);
	assert_int_equal(p.n, 3);
	assert_int_equal(p.port[2], 65535);
	/* errors leave the list as it was */
	assert_int_equal(sockpeer__parse_ports("", &p), -EINVAL);
	assert_int_equal(sockpeer__parse_ports("0", &p), -EINVAL);
	assert_int_equal(sockpeer__parse_ports("65536", &p), -EINVAL);
	assert_int_equal(sockpeer__parse_ports("5432,", &p), -EINVAL);
	assert_int_equal(sockpeer__parse_ports("5432;6432", &p), -EINVAL);
	assert_int_equal(sockpeer__parse_ports("-1", &p), -EINVAL);
	assert_int_equal(sockpeer__parse_ports("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", &p), -EINVAL);
	assert_int_equal(p.n, 3);
	/* learned ports: added once, up to the list's size */
	assert_false(sockpeer__ports_add(&p, 26257));
	assert_true(sockpeer__ports_add(&p, 15432));
	assert_int_equal(p.n, 4);
	assert_true(sockpeer__ports_has(&p, 15432));
	for (unsigned v = 1; p.n < SOCKPEER_PORTS_MAX; v++)
		assert_true(sockpeer__ports_add(&p, (uint16_t)v));
	assert_false(sockpeer__ports_add(&p, 40000));
	assert_false(sockpeer__ports_has(&p, 40000));
}

/* This process's own sockets, through /proc: a listener, a connection to it and the accepted end. */
/* The server sides of connections: TCP established on a listened port, named unix ones connected */
static void test_accepted_tables(void **state)
{
	static const char ux[] =
		"Num       RefCount Protocol Flags    Type St Inode Path\n"
		"0000000000000000: 00000002 00000000 00010000 0001 01 4001 /run/app.sock\n"	/* the listener */
		"0000000000000000: 00000003 00000000 00000000 0001 03 4002 /run/app.sock\n"	/* accepted on it */
		"0000000000000000: 00000003 00000000 00000000 0001 03 4003\n"			/* a client's */
		"0000000000000000: 00000003 00000000 00000000 0002 03 4004 /run/dgram\n";	/* not a stream */
	unsigned long ino[8];

	(void)state;
	assert_int_equal(sockpeer__accepted_inodes(TCP, TCP6, ux, ino, 8), 2);
	assert_int_equal(ino[0], 1002);	/* accepted on 8000; 1003 goes out to 443, 2002 to 5432 */
	assert_int_equal(ino[1], 4002);
	assert_int_equal(sockpeer__accepted_inodes(NULL, NULL, NULL, ino, 8), 0);
	assert_int_equal(sockpeer__accepted_inodes(TCP, TCP6, ux, ino, 1), 1);	/* capped */
}

static void test_live(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	struct sockpeer_ports ports;
	struct sockpeer sp;
	int ls, cs, as, us[2];

	(void)state;
	ls = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(ls >= 0);
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 1), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
	cs = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(cs, (struct sockaddr *)&a, sizeof(a)), 0);
	as = accept(ls, NULL, NULL);
	assert_true(as >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, us), 0);

	/* both ways, and the one that tries the fast way first: the same answers */
	for (int way = 0; way < 3; way++) {
		int (*get)(pid_t, int, struct sockpeer *) =
			way == 0 ? sockpeer__get_fast : way == 1 ? sockpeer__get_tables : sockpeer__get;

		assert_int_equal(get(getpid(), cs, &sp), 0);
		assert_int_equal(sp.kind, SOCKPEER_TCP_OUT);
		assert_int_equal(sp.remote_port, ntohs(a.sin_port));
		assert_int_equal(get(getpid(), as, &sp), 0);
		assert_int_equal(sp.kind, SOCKPEER_TCP_IN);
		assert_int_equal(sp.local_port, ntohs(a.sin_port));
		assert_int_equal(get(getpid(), us[0], &sp), 0);
		assert_int_equal(sp.kind, SOCKPEER_UNIX);
		assert_int_equal(get(getpid(), 0x7fff, &sp), -ENOENT);	/* no such fd */
	}
	/* not a socket; a listener (no peer) */
	{
		int nf = open("/dev/null", O_RDONLY);

		assert_true(nf >= 0);
		assert_int_equal(sockpeer__get_fast(getpid(), nf, &sp), -ENOTSOCK);
		assert_int_equal(sockpeer__get(getpid(), nf, &sp), -ENOTSOCK);
		close(nf);
	}
	assert_int_equal(sockpeer__get_fast(getpid(), ls, &sp), -ENOENT);

	/* PostgreSQL's: only the outgoing connection, and only when its port is named */
	sockpeer__default_ports(&ports);
	assert_int_equal(sockpeer__pg(getpid(), cs, &ports, &sp), ntohs(a.sin_port) == 5432 || ntohs(a.sin_port) == 6432
							     ? SOCKPEER_PG_YES : SOCKPEER_PG_NO);
	ports.port[0] = ntohs(a.sin_port);
	assert_int_equal(sockpeer__pg(getpid(), cs, &ports, &sp), SOCKPEER_PG_YES);
	assert_int_equal(sockpeer__pg(getpid(), as, &ports, &sp), SOCKPEER_PG_NO);
	assert_int_equal(sockpeer__pg(getpid(), us[0], &ports, &sp), SOCKPEER_PG_NO);
	assert_int_equal(sockpeer__pg(getpid(), 0x7fff, &ports, &sp), SOCKPEER_PG_NO);	/* gone: nothing to read */
	/* this process's own: the accepted TCP connection only (not the listener, the client, the pair) */
	{
		int fds[16], n = sockpeer__accepted(getpid(), fds, 16);

		assert_int_equal(n, 1);
		assert_int_equal(fds[0], as);
		assert_int_equal(sockpeer__accepted(0x7ffffff0, fds, 16), -ESRCH);
	}
	close(us[0]);
	close(us[1]);
	close(as);
	close(cs);
	close(ls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_unix),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_accepted_tables),
		cmocka_unit_test(test_live),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
