// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * How much work the kernel's verifier does on each program of BPF objects: loads every program
 * of each object given (as built: build/bpf/NAME.bpf.o, default configuration, maps created
 * afresh) with the verifier's statistics on, prints each program's "processed N insns" line, and
 * unloads. The programs that walk Python stacks are verified once per program: this is what a
 * change to the walker costs at every start of the tool (docs/PERFORMANCE.md).
 *
 * Usage: sudo build/verifier_stats build/bpf/http.bpf.o [more objects...]
 *        VLOG=1 for the whole log of a program the verifier refuses (its last 1,500 bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#define MAX_PROGS	64
#define LOG_SIZE	(1 << 16)

static char logs[MAX_PROGS][LOG_SIZE];

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s OBJECT.bpf.o...\n", argv[0]);
		return 2;
	}
	libbpf_set_print(silent);
	for (int a = 1; a < argc; a++) {
		struct bpf_object *o = bpf_object__open_file(argv[a], NULL);
		struct bpf_program *p;
		int i = 0, err;

		if (!o) {
			fprintf(stderr, "%s: cannot open\n", argv[a]);
			rc = 1;
			continue;
		}
		bpf_object__for_each_program(p, o) {
			if (i == MAX_PROGS)
				break;
			bpf_program__set_log_level(p, getenv("VLOG") ? 5 : 4);
			bpf_program__set_log_buf(p, logs[i], LOG_SIZE);
			i++;
		}
		err = bpf_object__load(o);
		i = 0;
		bpf_object__for_each_program(p, o) {
			const char *s;

			if (i == MAX_PROGS)
				break;
			s = strstr(logs[i], "processed ");
			printf("%-28s %-28s %s", argv[a], bpf_program__name(p), s ? s : "(not verified)\n");
			if (!s && logs[i][0]) {
				size_t n = strlen(logs[i]);

				fprintf(stderr, "%s\n", logs[i] + (n > 1500 ? n - 1500 : 0));
			}
			i++;
		}
		if (err) {
			printf("%s: load failed: %s\n", argv[a], strerror(-err));
			rc = 1;
		}
		bpf_object__close(o);
	}
	return rc;
}
