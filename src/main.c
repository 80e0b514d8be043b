// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* pytrace-bpf: where a running Python service spends its time, seen from outside with BPF. */
#include <argp.h>
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "flamegraph.h"
#include "profile.h"
#include "report.h"
#include "speedscope.h"
#include "stacks.h"
#include "util.h"

int pt_verbose;

static struct env {
	pid_t pid;
	double duration;
	unsigned rate;
	const char *flame, *collapsed, *speedscope;
	const char *title;
	bool threads;
	bool no_children;
	size_t max_stacks;
} env = {
	.rate = 99,
};

const char *argp_program_version = "pytrace-bpf " PYTRACE_VERSION;
const char *argp_program_bug_address = "https://github.com/pytrace-bpf/pytrace-bpf/issues";
static const char doc[] =
"Trace a running CPython process (3.8-3.15) and its children from BPF, with no change to it.\n"
"\n"
"USAGE: pytrace-bpf --pid PID [--duration SEC] [--rate HZ] [--flame FILE] [--collapsed FILE]\n"
"                   [--speedscope FILE] [--threads]\n"
"\n"
"Stops after --duration, on Ctrl-C or SIGTERM, or when every traced process has exited;\n"
"then writes the outputs. With no output option it prints the hottest functions and stacks.\n"
"\n"
"EXAMPLES:\n"
"    pytrace-bpf --pid 1234 --flame out.svg              # sample until Ctrl-C, write a flame graph\n"
"    pytrace-bpf -p 1234 -d 30 --collapsed out.folded    # 30 s, folded stacks for flamegraph.pl\n"
"    pytrace-bpf -p 1234 -d 10 -F 999 --speedscope s.json --threads\n"
"    pytrace-bpf -p $(pgrep -o gunicorn) -d 60 --flame web.svg   # master and all its workers\n";

enum {
	OPT_FLAME = 0x100,
	OPT_COLLAPSED,
	OPT_SPEEDSCOPE,
	OPT_THREADS,
	OPT_NO_CHILDREN,
	OPT_TITLE,
	OPT_MAX_STACKS,
};

static const struct argp_option opts[] = {
	{ "pid", 'p', "PID", 0, "Process to trace, with its descendants (required)", 0 },
	{ "duration", 'd', "SEC", 0, "Stop after SEC seconds (default: until Ctrl-C)", 0 },
	{ "rate", 'F', "HZ", 0, "Samples per second per CPU (default 99)", 0 },
	{ "flame", OPT_FLAME, "FILE", 0, "Write an interactive flame graph (SVG)", 1 },
	{ "collapsed", OPT_COLLAPSED, "FILE", 0, "Write folded stacks (root;...;leaf COUNT)", 1 },
	{ "speedscope", OPT_SPEEDSCOPE, "FILE", 0, "Write speedscope JSON", 1 },
	{ "threads", OPT_THREADS, NULL, 0, "Make each thread the root frame of its stacks", 1 },
	{ "title", OPT_TITLE, "TEXT", 0, "Flame graph title", 1 },
	{ "no-children", OPT_NO_CHILDREN, NULL, 0, "Trace PID only, not its descendants", 2 },
	{ "max-stacks", OPT_MAX_STACKS, "N", 0, "Cap on distinct stacks kept (default 100000)", 2 },
	{ "verbose", 'v', NULL, 0, "Say more (twice: libbpf's debug output)", 2 },
	{},
};

static long parse_num(const char *arg, const char *what, long min, long max, struct argp_state *state)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max)
		argp_error(state, "invalid %s: '%s' (expected %ld to %ld)", what, arg, min, max);
	return v;
}

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	char *end;

	switch (key) {
	case 'p':
		env.pid = (pid_t)parse_num(arg, "pid", 1, 0x7fffffff, state);
		break;
	case 'd':
		errno = 0;
		env.duration = strtod(arg, &end);
		if (errno || end == arg || *end || env.duration <= 0)
			argp_error(state, "invalid duration: '%s' (seconds, > 0)", arg);
		break;
	case 'F':
		env.rate = (unsigned)parse_num(arg, "rate", 1, 100000, state);
		break;
	case OPT_FLAME:
		env.flame = arg;
		break;
	case OPT_COLLAPSED:
		env.collapsed = arg;
		break;
	case OPT_SPEEDSCOPE:
		env.speedscope = arg;
		break;
	case OPT_THREADS:
		env.threads = true;
		break;
	case OPT_TITLE:
		env.title = arg;
		break;
	case OPT_NO_CHILDREN:
		env.no_children = true;
		break;
	case OPT_MAX_STACKS:
		env.max_stacks = (size_t)parse_num(arg, "stack cap", 1, 100000000, state);
		break;
	case 'v':
		pt_verbose++;
		break;
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument '%s'", arg);
		break;
	case ARGP_KEY_END:
		if (!env.pid)
			argp_error(state, "--pid is required");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

/* Root, or CAP_BPF + CAP_PERFMON (BPF and perf events) + CAP_SYS_PTRACE (reading the target). */
static int check_privileges(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	static const struct { int cap; const char *name; } need[] = {
		{ 39, "CAP_BPF" }, { 38, "CAP_PERFMON" }, { CAP_SYS_PTRACE, "CAP_SYS_PTRACE" },
	};
	char missing[128] = "";
	size_t i;

	if (syscall(SYS_capget, &hdr, data))
		return 0;	/* cannot tell: let the kernel decide */
	for (i = 0; i < ARRAY_SIZE(need); i++) {
		int c = need[i].cap;

		if (!(data[c / 32].effective & (1u << (c % 32)))) {
			strcat(missing, missing[0] ? ", " : "");
			strcat(missing, need[i].name);
		}
	}
	if (missing[0]) {
		elog("insufficient privileges: run as root (sudo), or grant %s\n", missing);
		return -EPERM;
	}
	return 0;
}

static int write_output(const char *path, const char *what, int (*fn)(FILE *, void *), void *ctx)
{
	FILE *f = fopen(path, "we");
	int ret;

	if (!f) {
		elog("cannot write %s %s: %s\n", what, path, strerror(errno));
		return -errno;
	}
	ret = fn(f, ctx);
	if (fclose(f) && !ret)
		ret = -errno;
	if (ret)
		elog("writing %s %s failed: %s\n", what, path, strerror(-ret));
	else
		fprintf(stderr, "Wrote %s %s\n", what, path);
	return ret;
}

struct out_ctx {
	struct stack_agg *stacks;
	char subtitle[256];
};

static int out_flame(FILE *f, void *c)
{
	struct out_ctx *o = c;
	struct flame_opts fo = {
		.title = env.title ? env.title : "pytrace-bpf: Python CPU samples",
		.subtitle = o->subtitle,
		.count_name = "samples",
	};

	return flamegraph__write_svg(o->stacks, f, &fo);
}

static int out_collapsed(FILE *f, void *c)
{
	return stack_agg__write_folded(((struct out_ctx *)c)->stacks, f);
}

static int out_speedscope(FILE *f, void *c)
{
	struct out_ctx *o = c;

	return speedscope__write(o->stacks, f, o->subtitle, "none");
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const struct argp argp = { .options = opts, .parser = parse_arg, .doc = doc };
	struct profiler_opts po = {};
	struct profiler_stats st;
	struct profiler *p = NULL;
	struct out_ctx out = {};
	double start, elapsed;
	bool target_gone = false;
	char err[512];
	int ret;

	ret = argp_parse(&argp, argc, argv, 0, NULL, NULL);
	if (ret)
		return 2;
	if (kill(env.pid, 0) && errno == ESRCH) {
		elog("no process with pid %d\n", env.pid);
		return 1;
	}
	if (check_privileges())
		return 1;
	/* PYTRACE_BTF names a BTF file for kernels built without /sys/kernel/btf/vmlinux. */
	po.btf_path = getenv("PYTRACE_BTF");
	if (access(po.btf_path ? po.btf_path : "/sys/kernel/btf/vmlinux", R_OK)) {
		if (po.btf_path)
			elog("no kernel BTF at %s (PYTRACE_BTF): %s\n", po.btf_path, strerror(errno));
		else
			elog("this kernel has no BTF (/sys/kernel/btf/vmlinux): pytrace-bpf needs a kernel built with CONFIG_DEBUG_INFO_BTF=y, or a BTF file for it named by PYTRACE_BTF\n");
		return 1;
	}

	po.rate_hz = env.rate;
	po.follow_children = !env.no_children;
	po.threads = env.threads;
	po.max_stacks = env.max_stacks;
	p = profiler__new(&po, err, sizeof(err));
	if (!p) {
		elog("%s\n", err);
		return 1;
	}
	ret = profiler__add_root(p, env.pid, err, sizeof(err));
	if (ret) {
		elog("%s\n", err);
		goto cleanup;
	}
	ret = profiler__attach(p, err, sizeof(err));
	if (ret) {
		elog("%s\n", err);
		goto cleanup;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fprintf(stderr, "Sampling pid %d%s at %u Hz%s... %s\n", env.pid,
		env.no_children ? "" : " and its children", env.rate,
		env.duration ? "" : " until Ctrl-C",
		pt_verbose ? "" : "(-v for details)");
	if (pt_verbose)
		profiler__describe(p, stderr);

	start = mono_s();
	while (!stop) {
		profiler__stats(p, &st);
		if (st.live == 0) {
			target_gone = true;
			break;
		}
		if (env.duration && mono_s() - start >= env.duration)
			break;
		ret = profiler__poll(p, 100);
		if (ret < 0) {
			elog("reading events failed: %s\n", strerror(-ret));
			break;
		}
	}
	elapsed = mono_s() - start;
	profiler__drain(p);
	profiler__stats(p, &st);

	out.stacks = profiler__stacks(p);
	snprintf(out.subtitle, sizeof(out.subtitle), "pid %d, %u Hz, %.1f s, %llu samples", env.pid, env.rate,
		 elapsed, (unsigned long long)stack_agg__total(out.stacks));
	if (target_gone)
		fprintf(stderr, "Target exited after %.1f s; writing what was collected.\n", elapsed);
	fprintf(stderr, "%llu samples in %u process%s (%u Python), deepest stack %u frames; lost %llu, "
		"native %llu, not Python %llu, truncated %llu, unresolved frames %llu, dropped (stack cap) %llu\n",
		(unsigned long long)st.samples, st.processes, st.processes == 1 ? "" : "es",
		st.python_processes, st.max_depth, (unsigned long long)st.lost,
		(unsigned long long)st.native, (unsigned long long)st.no_python,
		(unsigned long long)st.truncated, (unsigned long long)st.unresolved,
		(unsigned long long)st.stacks_dropped);
	if (st.lost)
		wlog("%llu samples were lost (ring buffer full): lower --rate\n", (unsigned long long)st.lost);

	ret = 0;
	if (env.flame)
		ret |= write_output(env.flame, "flame graph", out_flame, &out);
	if (env.collapsed)
		ret |= write_output(env.collapsed, "folded stacks", out_collapsed, &out);
	if (env.speedscope)
		ret |= write_output(env.speedscope, "speedscope profile", out_speedscope, &out);
	if (!env.flame && !env.collapsed && !env.speedscope)
		report__hot(out.stacks, stdout, 15);
	if (!stack_agg__total(out.stacks)) {
		elog("no samples were collected: was the target idle (off-CPU) the whole time?\n");
		ret = ret ? ret : -ENODATA;
	}
cleanup:
	profiler__free(p);
	return ret ? 1 : 0;
}
