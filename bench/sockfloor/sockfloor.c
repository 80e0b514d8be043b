// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sockfloor [--mode empty|miss|regs|sysexit-empty|sysexit-miss] [-p PID]...: loads bench/sockfloor/sockfloor.bpf.c on the
 * sock_send_length and sock_recv_length tracepoints (tp_btf), sets the bits of the given pids,
 * prints "ready" once attached and runs until SIGINT or SIGTERM. For the benchmarks
 * (bench/requests_overhead.py): bpftrace 0.17 cannot attach raw tracepoints.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "sockfloor.skel.h"

#define SF_PID_WORDS	((1u << 22) / 64)	/* as in sockfloor.bpf.c */
#define MAX_PIDS	64

static const char *const modes[] = { "empty", "miss", "regs", "sysexit-empty", "sysexit-miss" };
#define NMODES 5

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf's warnings carry the verifier's log: keep them, drop its chatter */
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sockfloor [--mode empty|miss|regs|sysexit-empty|sysexit-miss] [-p PID]...\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "pid", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	size_t bits_size = SF_PID_WORDS * sizeof(__u64);
	struct sockfloor_bpf *skel = NULL;
	unsigned long long runs = 0;
	__u64 *bits = MAP_FAILED;
	int mode = 0, npids = 0, err = 1, c, i;
	long pids[MAX_PIDS];
	sigset_t mask, old;
	char *end;

	while ((c = getopt_long(argc, argv, "m:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			for (mode = 0; mode < NMODES && strcmp(optarg, modes[mode]); mode++)
				;
			if (mode == NMODES) {
				fprintf(stderr, "sockfloor: --mode: empty, miss, regs, sysexit-empty or sysexit-miss, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'p':
			if (npids == MAX_PIDS) {
				fprintf(stderr, "sockfloor: at most %d pids\n", MAX_PIDS);
				return 2;
			}
			errno = 0;
			pids[npids] = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || pids[npids] <= 0 || pids[npids] >= 1L << 22) {
				fprintf(stderr, "sockfloor: -p: not a pid: '%s'\n", optarg);
				return 2;
			}
			npids++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (npids && (mode == 0 || mode == 3))
		fprintf(stderr, "sockfloor: -p is ignored in mode empty\n");

	/* blocked until sigsuspend: one that comes while loading is not lost, and stops it cleanly */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, &old) || signal(SIGINT, on_signal) == SIG_ERR ||
	    signal(SIGTERM, on_signal) == SIG_ERR) {
		fprintf(stderr, "sockfloor: signals: %s\n", strerror(errno));
		return 1;
	}
	libbpf_set_print(libbpf_print);
	skel = sockfloor_bpf__open();
	if (!skel) {
		fprintf(stderr, "sockfloor: cannot open the BPF object: %s\n", strerror(errno));
		return 1;
	}
	skel->rodata->mode = mode;
	/* mode empty runs the empty pair, the others the pair that tests the pid's bit */
	bpf_program__set_autoload(skel->progs.sf_send_empty, mode == 0);
	bpf_program__set_autoload(skel->progs.sf_recv_empty, mode == 0);
	bpf_program__set_autoload(skel->progs.sf_send, mode == 1 || mode == 2);
	bpf_program__set_autoload(skel->progs.sf_recv, mode == 1 || mode == 2);
	bpf_program__set_autoload(skel->progs.sf_sysexit_empty, mode == 3);
	bpf_program__set_autoload(skel->progs.sf_sysexit, mode == 4);
	c = sockfloor_bpf__load(skel);
	if (c) {
		fprintf(stderr, "sockfloor: cannot load the BPF programs (mode %s): %s\n", modes[mode], strerror(-c));
		goto out;
	}
	/* libbpf 1.1 maps only its own global-data maps: map `bits` here */
	bits = mmap(NULL, bits_size, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(skel->maps.bits), 0);
	if (bits == MAP_FAILED) {
		fprintf(stderr, "sockfloor: cannot mmap map bits: %s\n", strerror(errno));
		goto out;
	}
	for (i = 0; i < npids; i++)
		__atomic_fetch_or(&bits[pids[i] >> 6], 1ULL << (pids[i] & 63), __ATOMIC_RELAXED);
	c = sockfloor_bpf__attach(skel);
	if (c) {
		fprintf(stderr, "sockfloor: cannot attach to sock:sock_send_length and sock:sock_recv_length "
			"(tp_btf, Linux 6.3+): %s\n", strerror(-c));
		goto out;
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop)
		sigsuspend(&old);
	sockfloor_bpf__detach(skel);

	if (mode) {
		int ncpu = libbpf_num_possible_cpus();
		struct { __u64 runs, sum; } *v;
		__u32 zero = 0;

		if (ncpu <= 0 || !(v = calloc(ncpu, sizeof(*v)))) {
			fprintf(stderr, "sockfloor: cannot read the run count\n");
			goto out;
		}
		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.acc), &zero, v)) {
			fprintf(stderr, "sockfloor: cannot read the run count: %s\n", strerror(errno));
			free(v);
			goto out;
		}
		for (i = 0; i < ncpu; i++)
			runs += v[i].runs;
		free(v);
		printf("mode %s: %llu runs past the pid test\n", modes[mode], runs);
	}
	err = 0;
out:
	if (bits != MAP_FAILED)
		munmap(bits, bits_size);
	sockfloor_bpf__destroy(skel);
	return err;
}
