// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "jsonw.h"
#include "pidtab.h"
#include "procs.h"
#include "pytrace_user.h"
#include "util.h"

#define RETRY_NS (100 * 1000000ULL)	/* how often to retry inspecting a process */

struct procs {
	struct procs_opts o;
	struct pidtab tab;	/* struct proc */
	struct procs_stats st;
};

struct procs *procs__new(const struct procs_opts *o)
{
	struct procs *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->o = *o;
	if (!p->o.max_procs)
		p->o.max_procs = PROCS_DEFAULT_MAX;
	if (pidtab__init(&p->tab, p->o.max_procs, sizeof(struct proc))) {
		free(p);
		return NULL;
	}
	return p;
}

void procs__free(struct procs *p)
{
	if (!p)
		return;
	pidtab__fini(&p->tab);
	free(p);
}

struct proc *procs__get(struct procs *p, uint32_t pid, bool create)
{
	struct proc *pr;
	bool created;

	if (!create)
		return pid ? pidtab__get(&p->tab, pid) : NULL;
	pr = pid ? pidtab__add(&p->tab, pid, &created) : NULL;
	if (!pr) {
		p->st.dropped++;
		return NULL;
	}
	if (created) {
		pr->live = true;
		proc_comm(pid, pr->comm, sizeof(pr->comm));
		p->st.processes++;
		p->st.live++;
	}
	return pr;
}

/* Inspect pr and, if it is Python, hand its configuration to the BPF side. */
static int inspect(struct procs *p, struct proc *pr, char *err, size_t errlen)
{
	struct pt_proc cfg;
	char msg[512];
	int ret;

	pr->last_try_ns = mono_ns();
	ret = py_target__inspect(pr->pid, &pr->py, err ? err : msg, err ? errlen : sizeof(msg));
	if (ret == -EAGAIN)
		return ret;
	if (ret) {
		if (ret != -ESRCH)
			pr->state = PROC_NOT_PYTHON;
		vlog("pid %d: %s\n", pr->pid, err ? err : msg);
		return ret;
	}
	py_target__to_bpf(&pr->py, &cfg);
	ret = bpf_map_update_elem(p->o.procs_fd, &pr->pid, &cfg, BPF_ANY);
	if (ret) {
		ret = -errno;
		if (err)
			snprintf(err, errlen, "cannot configure pid %d: %s", pr->pid, strerror(-ret));
		return ret;
	}
	if (pr->state != PROC_PYTHON)
		p->st.python++;
	pr->state = PROC_PYTHON;
	vlog("pid %d: CPython %u.%u.%u in %s, _PyRuntime 0x%llx, thread state: %s%s%s\n",
	     pr->pid, pr->py.major, pr->py.minor, pr->py.micro, pr->py.binary,
	     (unsigned long long)pr->py.runtime, pr->py.tstate_how,
	     pr->py.tstate_checked ? "" : " (unchecked)",
	     pr->py.debug_offsets ? ", offsets from _Py_DebugOffsets" : "");
	if (p->o.listener.on_python)
		p->o.listener.on_python(p->o.listener.ctx, pr);
	return 0;
}

void procs__retry(struct procs *p, struct proc *pr)
{
	if (pr->state == PROC_UNKNOWN && mono_ns() - pr->last_try_ns > RETRY_NS)
		inspect(p, pr, NULL, 0);
}

static int track(struct procs *p, pid_t pid, __u32 how)
{
	if (bpf_map_update_elem(p->o.tracked_fd, &pid, &how, BPF_ANY))
		return -errno;
	return procs__get(p, pid, true) ? 0 : -E2BIG;
}

static pid_t read_ppid(pid_t pid)
{
	char path[64], buf[512], *rp;
	pid_t ppid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	/* comm may hold spaces and parentheses: parse after the last ')'. */
	if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')))
		sscanf(rp + 2, "%*c %d", &ppid);
	fclose(f);
	return ppid;
}

/* Add the present descendants of root (new ones arrive through the fork tracepoint). */
static void track_descendants(struct procs *p, pid_t root)
{
	bool added = true;
	int rounds;

	for (rounds = 0; added && rounds < 64; rounds++) {
		struct dirent *d;
		DIR *dir = opendir("/proc");

		added = false;
		if (!dir)
			return;
		while ((d = readdir(dir))) {
			pid_t pid = atoi(d->d_name), ppid;

			if (pid <= 0 || pid == root || procs__get(p, pid, false))
				continue;
			ppid = read_ppid(pid);
			if (ppid <= 0 || !procs__get(p, ppid, false))
				continue;
			if (track(p, pid, PT_TRACK_CHILD) == 0) {
				inspect(p, procs__get(p, pid, false), NULL, 0);
				added = true;
			}
		}
		closedir(dir);
	}
}

int procs__add_root(struct procs *p, pid_t pid, char *err, size_t errlen)
{
	int ret, tries;

	ret = track(p, pid, PT_TRACK_ROOT);
	if (ret) {
		snprintf(err, errlen, "cannot track pid %d: %s", pid, strerror(-ret));
		return ret;
	}
	/* A process started just now may still be initializing its interpreter. */
	for (tries = 0; tries < 20; tries++) {
		ret = inspect(p, procs__get(p, pid, false), err, errlen);
		if (ret != -EAGAIN)
			break;
		usleep(50000);
	}
	if (ret)
		return ret;
	if (p->o.follow_children)
		track_descendants(p, pid);
	return 0;
}

static void proc_fork(struct procs *p, const struct pt_proc_event *e)
{
	struct proc *pr = procs__get(p, e->hdr.pid, true), *parent = procs__get(p, e->ppid, false);

	vlog("pid %d: forked from %d\n", e->hdr.pid, e->ppid);
	if (!pr || !parent || parent->state != PROC_PYTHON)
		return;
	/* The BPF side copied the parent's configuration; so do we. */
	pr->py = parent->py;
	pr->py.pid = e->hdr.pid;
	pr->state = PROC_PYTHON;
	p->st.python++;
	if (p->o.listener.on_fork)
		p->o.listener.on_fork(p->o.listener.ctx, pr, parent);
}

static void proc_exec(struct procs *p, const struct pt_proc_event *e)
{
	struct proc *pr = procs__get(p, e->hdr.pid, true);

	if (!pr)
		return;
	/* st.python counts the Python programs run, not those running: one that ran Python and
	 * exec'd into something else stays counted (its samples are in the report). */
	pr->state = PROC_UNKNOWN;
	if (p->o.listener.on_exec)
		p->o.listener.on_exec(p->o.listener.ctx, e->hdr.pid);
	proc_comm(pr->pid, pr->comm, sizeof(pr->comm));
	vlog("pid %d: exec %s\n", e->hdr.pid, pr->comm);
	inspect(p, pr, NULL, 0);
}

static void proc_exit(struct procs *p, const struct pt_proc_event *e)
{
	struct proc *pr = procs__get(p, e->hdr.pid, false);

	if (pr && pr->live) {
		pr->live = false;
		p->st.live--;
	}
	if (p->o.listener.on_exit)
		p->o.listener.on_exit(p->o.listener.ctx, e->hdr.pid);
	if (pr && !pr->dead_ns)
		pr->dead_ns = mono_ns();
	vlog("pid %d: exited\n", e->hdr.pid);
}

void procs__handle(struct procs *p, const void *data, size_t size)
{
	const struct pt_proc_event *e = data;

	if (size < sizeof(*e))
		return;
	switch (e->hdr.type) {
	case PT_EV_FORK:
		proc_fork(p, e);
		break;
	case PT_EV_EXEC:
		proc_exec(p, e);
		break;
	case PT_EV_EXIT:
		proc_exit(p, e);
		break;
	}
}

void procs__tick(struct procs *p, uint64_t now)
{
	uint32_t i;

	for (i = 0; i < p->tab.cap; i++) {
		struct proc *pr = pidtab__slot(&p->tab, i);

		/* a record shifted into slot i waits for the next round */
		if (pr && pr->dead_ns && now - pr->dead_ns > PROCS_FREE_AFTER_NS)
			pidtab__del(&p->tab, pr);
	}
}

void procs__stats(const struct procs *p, struct procs_stats *st)
{
	*st = p->st;
}

void procs__describe(const struct procs *p, FILE *f)
{
	uint32_t i;

	for (i = 0; i < p->tab.cap; i++) {
		const struct proc *pr = pidtab__slot(&p->tab, i);

		if (!pr || pr->state != PROC_PYTHON)
			continue;
		fprintf(f, "  pid %d (%s): CPython %u.%u in %s, offsets: %s, stacks: walked in BPF\n",
			pr->pid, pr->comm, pr->py.major, pr->py.minor, pr->py.binary,
			pr->py.debug_offsets ? "_Py_DebugOffsets" : "built-in table");
	}
}

void procs__write_json(const struct procs *p, struct jsonw *w)
{
	jsonw__name(w, "processes");
	jsonw__start_object(w);
	jsonw__uint_field(w, "traced", p->st.processes);
	jsonw__uint_field(w, "python", p->st.python);
	jsonw__uint_field(w, "events_not_followed", p->st.dropped);
	jsonw__end_object(w);
}
