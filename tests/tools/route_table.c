// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The route table of a running process, as the tool reads it: its Django URL patterns (src/djroutes.c), or where
 * Django is not imported, its Flask app's rules (src/flaskroutes.c):
 *   route_table PID [TARGET...]
 *   route_table -n N PID [TARGET...]   also the time of N reads of the patterns and of N
 *                                        matches of each TARGET (what a request costs the tool)
 *   route_table --aiohttp ADDR PID [TARGET...]   the resources of the aiohttp app whose request
 *                                        handler (app._handle, bound) is at ADDR (src/aioroutes.c)
 * prints each endpoint ("name<TAB>regex", "-" for a pattern that cannot be translated), then for
 * each TARGET "TARGET<TAB>name" ("-": no name). Exit 1 if the patterns cannot be read, 3 if Django
 * is not set up yet (try again). Root (or CAP_SYS_PTRACE) to read another user's process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aioroutes.h"
#include "djroutes.h"
#include "flaskroutes.h"
#include "procmem.h"
#include "pyproc.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	int iters = 0;
	unsigned long long handler = 0;
	double t0;

	struct py_target t;
	struct mem_reader mr;
	struct djroutes *r;
	char err[512], name[DJROUTES_LABEL_MAX];
	unsigned skipped;
	int pid, ret;

	if (argc >= 4 && !strcmp(argv[1], "--aiohttp")) {
		handler = strtoull(argv[2], NULL, 0);
		argv += 2;
		argc -= 2;
	}
	if (argc >= 4 && !strcmp(argv[1], "-n")) {
		iters = atoi(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc < 2 || (pid = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: route_table [--aiohttp HANDLER] [-n N] PID [TARGET...]\n");
		return 2;
	}
	if (py_target__inspect(pid, &t, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	procmem__reader(&mr, pid);
	r = djroutes__new();
	if (!r)
		return 1;
	ret = handler ? aioroutes__read(&t.layout, &mr, handler, r, &skipped)
		      : djroutes__read(&t.layout, &mr, t.runtime, r, &skipped);
	if (ret == -ENOENT && !handler) {
		djroutes__free(r);
		r = djroutes__new();
		if (!r)
			return 1;
		ret = flaskroutes__read(&t.layout, &mr, t.runtime, r, &skipped);
	}
	if (ret) {
		fprintf(stderr, "pid %d: %s\n", pid, ret == -EAGAIN ? "Django is not set up yet" : ret == -ENOENT ? "neither Django nor Flask is imported" : strerror(-ret));
		djroutes__free(r);
		return ret == -EAGAIN ? 3 : 1;
	}
	for (unsigned i = 0; i < djroutes__count(r); i++)
		printf("%s\t%s\n", djroutes__label(r, i), djroutes__regex(r, i) ?: "-");
	printf("skipped\t%u\n", skipped);
	for (int i = 2; i < argc; i++)
		printf("%s\t%s\n", argv[i], djroutes__match(r, argv[i], name, sizeof(name)) ? name : "-");
	if (iters > 0) {
		t0 = now_us();
		for (int i = 0; i < iters; i++) {
			struct djroutes *again = djroutes__new();

			if (handler)
				aioroutes__read(&t.layout, &mr, handler, again, &skipped);
			else if (djroutes__read(&t.layout, &mr, t.runtime, again, &skipped) == -ENOENT)
				flaskroutes__read(&t.layout, &mr, t.runtime, again, &skipped);
			djroutes__free(again);
		}
		printf("read of %u endpoints: %.1f us\n", djroutes__count(r), (now_us() - t0) / iters);
		for (int i = 2; i < argc; i++) {
			t0 = now_us();
			for (int j = 0; j < iters; j++)
				djroutes__match(r, argv[i], name, sizeof(name));
			printf("match of %s: %.3f us\n", argv[i], (now_us() - t0) / iters);
		}
	}
	djroutes__free(r);
	return 0;
}
