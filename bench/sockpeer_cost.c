// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What it costs to tell where a socket leads (src/sockpeer.h), the two ways, side by side:
 * a copy of the descriptor with sock_diag's listeners (sockpeer__get_fast) and the /proc/net
 * tables (sockpeer__get_tables), on an outgoing TCP connection of this process. Rounds
 * alternate the two; the median and the range of the per-call times are printed, with the
 * number of TCP sockets on the host (the tables' length; their cost is mostly the walk of the
 * kernel's hash tables, whatever their length).
 *
 *   make bench-tools && build/sockpeer_cost [ROUNDS [CALLS]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "sockpeer.h"

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static unsigned lines(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned n = 0;
	int c;

	if (!f)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n ? n - 1 : 0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 7, calls = argc > 2 ? atoi(argv[2]) : 200, r, i, w;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int (*const way[2])(pid_t, int, struct sockpeer *) = { sockpeer__get_fast, sockpeer__get_tables };
	const char *const name[2] = { "pidfd_getfd + sock_diag", "/proc/net tables" };
	double *t[2];
	struct sockpeer sp;
	int ls, cs;

	if (rounds < 1 || calls < 1)
		return fprintf(stderr, "usage: %s [ROUNDS [CALLS]]\n", argv[0]), 64;
	ls = socket(AF_INET, SOCK_STREAM, 0);
	cs = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || cs < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 1) ||
	    getsockname(ls, (struct sockaddr *)&a, &alen) || connect(cs, (struct sockaddr *)&a, sizeof(a)))
		return perror("a connection to measure on"), 1;
	t[0] = calloc(rounds, sizeof(double));
	t[1] = calloc(rounds, sizeof(double));
	for (r = 0; r < rounds; r++)
		for (w = 0; w < 2; w++) {
			int k = (r + w) % 2;	/* alternate which goes first */
			double t0 = now_us();

			for (i = 0; i < calls; i++)
				if (way[k](getpid(), cs, &sp) || sp.kind != SOCKPEER_TCP_OUT)
					return fprintf(stderr, "%s: wrong answer\n", name[k]), 1;
			t[k][r] = (now_us() - t0) / calls;
		}
	printf("TCP sockets on the host: %u (tcp) + %u (tcp6); %d rounds of %d calls\n", lines("/proc/net/tcp"),
	       lines("/proc/net/tcp6"), rounds, calls);
	for (w = 0; w < 2; w++) {
		qsort(t[w], rounds, sizeof(double), cmp);
		printf("%-26s %9.1f us a socket (median; %.1f-%.1f)\n", name[w], t[w][rounds / 2], t[w][0],
		       t[w][rounds - 1]);
	}
	/* the whole verdict on a socket whose port is no known one: the fast way, then the unix
	 * table for a local server's .s.PGSQL.<port> */
	{
		struct sockpeer_ports ports;

		sockpeer__default_ports(&ports);
		for (r = 0; r < rounds; r++) {
			double t0 = now_us();

			for (i = 0; i < calls; i++)
				if (sockpeer__pg(getpid(), cs, &ports, &sp) != SOCKPEER_PG_NO)
					return fprintf(stderr, "sockpeer__pg: wrong answer\n"), 1;
			t[0][r] = (now_us() - t0) / calls;
		}
		qsort(t[0], rounds, sizeof(double), cmp);
		printf("%-26s %9.1f us a socket (median; %.1f-%.1f; %u unix sockets)\n", "sockpeer__pg, port unknown",
		       t[0][rounds / 2], t[0][0], t[0][rounds - 1], lines("/proc/net/unix"));
	}
	return 0;
}
