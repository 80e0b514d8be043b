// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The Django URL patterns of a running process, as the tool reads them (src/djroutes.c):
 *   django_routes PID [TARGET...]
 * prints each endpoint ("name<TAB>regex", "-" for a pattern that cannot be translated), then for
 * each TARGET "TARGET<TAB>name" ("-": no name). Exit 1 if the patterns cannot be read, 3 if Django
 * is not set up yet (try again). Root (or CAP_SYS_PTRACE) to read another user's process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djroutes.h"
#include "procmem.h"
#include "pyproc.h"

int main(int argc, char **argv)
{
	struct py_target t;
	struct mem_reader mr;
	struct djroutes *r;
	char err[512], name[DJROUTES_LABEL_MAX];
	unsigned skipped;
	int pid, ret;

	if (argc < 2 || (pid = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: django_routes PID [TARGET...]\n");
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
	ret = djroutes__read(&t.layout, &mr, t.runtime, r, &skipped);
	if (ret) {
		fprintf(stderr, "pid %d: %s\n", pid, ret == -EAGAIN ? "Django is not set up yet" : ret == -ENOENT ? "Django is not imported" : strerror(-ret));
		djroutes__free(r);
		return ret == -EAGAIN ? 3 : 1;
	}
	for (unsigned i = 0; i < djroutes__count(r); i++)
		printf("%s\t%s\n", djroutes__label(r, i), djroutes__regex(r, i) ?: "-");
	printf("skipped\t%u\n", skipped);
	for (int i = 2; i < argc; i++)
		printf("%s\t%s\n", argv[i], djroutes__match(r, argv[i], name, sizeof(name)) ? name : "-");
	djroutes__free(r);
	return 0;
}
