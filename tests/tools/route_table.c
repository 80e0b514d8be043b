// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The route table of a running process, as the tool reads it: its Django URL patterns (src/djroutes.c), or where
 * Django is not imported, its Flask app's rules (src/flaskroutes.c), else its Starlette app's routes
 * (src/starroutes.c); src/routeread.h's routeread__table:
 *   route_table PID [TARGET...]
 *   route_table -n N PID [TARGET...]   also the time of N reads of the patterns and of N
 *                                        matches of each TARGET (what a request costs the tool)
 *   route_table --wsgi-worker ADDR PID [TARGET...]   the rules of the Flask app that the gunicorn
 *                                        worker at ADDR serves (its `wsgi`: src/flaskroutes.c)
 *   route_table --direct ...   the same without the page cache the tool reads through (src/memcache.h)
 *   route_table --aiohttp ADDR PID [TARGET...]   the resources of the aiohttp app whose request
 *                                        handler (app._handle, bound) is at ADDR (src/aioroutes.c)
 * prints each endpoint ("name<TAB>regex", "-" for a pattern that cannot be translated; " METHODS"
 * after the name where it allows only some), then for each TARGET "TARGET<TAB>name" ("-": no
 * name); a TARGET "METHOD /path" is matched for that method. Exit 1 if the patterns cannot be read, 3 if Django
 * is not set up yet (try again). Root (or CAP_SYS_PTRACE) to read another user's process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "routeread.h"
#include "routes.h"
#include "djroutes.h"
#include "memcache.h"
#include "procmem.h"
#include "pyproc.h"

static int direct;	/* --direct: no page cache (src/memcache.h), to compare */
static unsigned handler_kind = ROUTE_APP_HANDLER;	/* --wsgi-worker: ROUTE_APP_WSGI_WORKER */

/* One read of the table, as the tool makes it: through a fresh page cache. */
static int read_table(struct py_target *t, const struct mem_reader *mr, uint64_t handler, struct djroutes *r,
		      unsigned *skipped, const char **kind)
{
	struct memcache mc;
	int ret;

	if (direct)
		return routeread__table(&t->layout, mr, t->runtime, handler, handler_kind, r, skipped, kind);
	if (memcache__init(&mc, mr))
		return -ENOMEM;
	ret = routeread__table(&t->layout, &mc.mr, t->runtime, handler, handler_kind, r, skipped, kind);
	memcache__fini(&mc);
	return ret;
}

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
	const char *kind;
	unsigned skipped;
	int pid, ret;

	if (argc >= 3 && !strcmp(argv[1], "--direct")) {
		direct = 1;
		argv++;
		argc--;
	}
	if (argc >= 4 && (!strcmp(argv[1], "--aiohttp") || !strcmp(argv[1], "--wsgi-worker"))) {
		handler_kind = argv[1][2] == 'w' ? ROUTE_APP_WSGI_WORKER : ROUTE_APP_HANDLER;
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
		fprintf(stderr, "usage: route_table [--direct] [--aiohttp HANDLER | --wsgi-worker WORKER] [-n N] PID [TARGET...]\n");
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
	ret = read_table(&t, &mr, handler, r, &skipped, &kind);
	if (ret) {
		fprintf(stderr, "pid %d: %s: %s\n", pid, kind, ret == -EAGAIN ? "not set up yet" :
			ret == -ENOENT ? "none of Django, Flask and Starlette is imported" :
			ret == -ENODATA ? "no app object among the modules' globals" : strerror(-ret));
		djroutes__free(r);
		return ret == -EAGAIN ? 3 : 1;
	}
	for (unsigned i = 0; i < djroutes__count(r); i++) {
		static const char *const mnames[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
						      "TRACE", "CONNECT", "other" };
		unsigned m = djroutes__methods(r, i);

		/* i18n_patterns: the name starts with the path's language code */
		printf("%s%s", djroutes__lang(r, i) ? "/[language]" : "", djroutes__label(r, i));
		for (unsigned b = 0, first = 1; b < sizeof(mnames) / sizeof(mnames[0]); b++)
			if (m & (1u << b)) {
				printf("%s%s", first ? " " : ",", mnames[b]);
				first = 0;
			}
		printf("\t%s\n", djroutes__regex(r, i) ?: "-");
	}
	printf("skipped\t%u\n", skipped);
	for (int i = 2; i < argc; i++) {
		/* "METHOD /path" */
		const char *sp = strchr(argv[i], ' '), *target = sp ? sp + 1 : argv[i];
		char method[16] = "";

		if (sp)
			snprintf(method, sizeof(method), "%.*s", (int)(sp - argv[i]), argv[i]);
		printf("%s\t%s\n", argv[i], djroutes__match_method(r, sp ? method : NULL, target, name, sizeof(name)) ?
		       name : "-");
	}
	if (iters > 0) {
		t0 = now_us();
		for (int i = 0; i < iters; i++) {
			struct djroutes *again = djroutes__new();

			if (again)
				read_table(&t, &mr, handler, again, &skipped, &kind);
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
