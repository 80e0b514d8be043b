// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Drives the --functions USDT side (bpf/funcs.bpf.c through src/funcprobe.c) against a process that
 * is not a real interpreter: tests/sdt/fake_python, which fires python:function__* with CPython's
 * argument layout. The process is declared CPython 3.15 with its probes in its executable.
 *
 * usage: sdt_harness PID SECONDS PATTERN...   -> the "functions" JSON section on stdout
 * Stops after SECONDS or when PID exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "funcprobe.h"
#include "jsonw.h"
#include "session.skel.h"
#include "session.h"
#include "uprobe.h"

static int on_event(void *ctx, void *data, size_t size)
{
	const struct pt_event_hdr *h = data;

	if (h->type >= PT_EV_FUNC_CALL && h->type <= PT_EV_FUNC_LAST)
		funcprobe__handle(ctx, data, size);
	return 0;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct funcs_opts fo = { .mode = FUNCS_AUTO, .rate_hz = 99 };
	struct session_bpf *skel;
	struct py_target py = {};
	struct ring_buffer *rb;
	struct funcprobe *f;
	struct jsonw *w;
	char err[512];
	double end;
	__u32 how = PT_TRACK_ROOT;
	pid_t pid;

	if (argc < 4) {
		fprintf(stderr, "usage: %s PID SECONDS PATTERN...\n", argv[0]);
		return 2;
	}
	pid = atoi(argv[1]);
	/* as the tool does for PYTRACE_UPROBES=perf (main.c) */
	if (getenv("PYTRACE_UPROBES") && !strcmp(getenv("PYTRACE_UPROBES"), "perf"))
		uprobe__use_perf_events();
	end = mono() + atof(argv[2]);
	fo.patterns = (const char *const *)argv + 3;
	fo.npatterns = argc - 3;
	skel = session_bpf__open();
	if (!skel || session_bpf__load(skel)) {
		fprintf(stderr, "cannot load the session object\n");
		return 1;
	}
	/* as procs.c does: the pid's bit in the prefilter, then the pid in tracked */
	__u32 word = (__u32)pid >> 6;
	__u64 bits = 1ULL << (pid & 63);

	bpf_map_update_elem(bpf_map__fd(skel->maps.tracked_bits), &word, &bits, BPF_ANY);
	bpf_map_update_elem(bpf_map__fd(skel->maps.tracked), &pid, &how, BPF_ANY);
	struct session_maps maps = { .procs = skel->maps.procs, .tracked = skel->maps.tracked,
				     .counters = skel->maps.counters, .events = skel->maps.events,
				     .pq_current = skel->maps.pq_current, .tracked_bits = skel->maps.tracked_bits,
				     .pg_conns = skel->maps.pg_conns };
	f = funcprobe__new(&fo, &maps, NULL, err, sizeof(err));
	if (!f) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	py.pid = pid;
	py.major = 3;
	py.minor = 15;
	snprintf(py.binary, sizeof(py.binary), "/proc/%d/exe", pid);
	snprintf(py.binary_host, sizeof(py.binary_host), "/proc/%d/exe", pid);
	if (funcprobe__add_pid(f, pid, &py, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, f, NULL);
	fprintf(stderr, "attached\n");
	while (mono() < end && kill(pid, 0) == 0) {
		ring_buffer__poll(rb, 50);
		ring_buffer__consume(rb);
	}
	ring_buffer__consume(rb);
	w = jsonw__new(stdout);
	funcprobe__write_json(f, w);
	jsonw__finish(w);
	jsonw__free(w);
	printf("\n");
	ring_buffer__free(rb);
	funcprobe__free(f);
	session_bpf__destroy(skel);
	return 0;
}
