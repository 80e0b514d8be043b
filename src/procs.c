// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "jsonw.h"
#include "pidtab.h"
#include "procmem.h"
#include "procs.h"
#include "procs_int.h"
#include "pythreads.h"
#include "pytrace_user.h"
#include "util.h"

#define RETRY_NS (100 * 1000000ULL)	/* how often to retry inspecting a process */
#define NOT_PYTHON_RETRY_NS (500 * 1000000ULL)	/* under --pid: a sampled "not Python" looked at again */
#define PENDING_RETRY_NS (40 * 1000000ULL)	/* host-wide: a new process, inspected again this often */
#define PENDING_RETRY_SUBTREE_NS (5 * 1000000ULL)	/* under --pid or a command: few processes, retried sooner */
#define PENDING_MAX_NS (3000 * 1000000ULL)	/* ... for at most this long, then it is not Python */
#define OURS_RETRY_NS (1000000ULL)	/* ... and at an event of its own (procs__ours) at most this often */
#define PF_KTHREAD 0x00200000


static void seen_add(struct procs *p, const struct proc *pr, bool forked)
{
	struct procs_seen *e;
	unsigned i;

	/* the same program found again (an exec'd Python re-exec'ing itself): listed once */
	for (i = p->nseen; i > 0; i--) {
		e = &p->seen[i - 1];
		if (e->pid == pr->pid && !strcmp(e->service, pr->service) && e->major == pr->py.major &&
		    e->minor == pr->py.minor) {
			e->live = true;
			return;
		}
	}
	if (p->nseen >= PROCS_SEEN_MAX) {
		p->seen_not_listed++;
		return;
	}
	e = &p->seen[p->nseen++];
	e->pid = pr->pid;
	e->major = pr->py.major;
	e->minor = pr->py.minor;
	e->live = true;
	e->forked = forked;
	memcpy(e->comm, pr->comm, sizeof(e->comm));
	memcpy(e->service, pr->service, sizeof(e->service));
}

static void seen_exit(struct procs *p, uint32_t pid)
{
	unsigned i;

	for (i = p->nseen; i > 0; i--)
		if (p->seen[i - 1].pid == pid && p->seen[i - 1].live) {
			p->seen[i - 1].live = false;
			return;
		}
}

/* A forked Python child exec'd: it was a subprocess being started, not a Python process to list. */
static void seen_exec(struct procs *p, uint32_t pid)
{
	unsigned i;

	for (i = p->nseen; i > 0; i--) {
		struct procs_seen *e = &p->seen[i - 1];

		if (e->pid != pid || !e->live)
			continue;
		if (e->forked) {
			memmove(e, e + 1, (p->nseen - i) * sizeof(*e));
			p->nseen--;
		} else {
			e->live = false;
		}
		return;
	}
}

static void set_service(struct procs *p, struct proc *pr)
{
	if (p->o.service_name)
		service__sanitize(p->o.service_name, strlen(p->o.service_name), pr->service, sizeof(pr->service));
	else
		service__name(pr->pid, pr->service, sizeof(pr->service));
	if (!pr->service[0])
		snprintf(pr->service, sizeof(pr->service), "unknown");
}

struct procs *procs__new(const struct procs_opts *o)
{
	struct procs *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->o = *o;
	p->start_ns = mono_ns();
	if (!p->o.max_procs)
		p->o.max_procs = PROCS_DEFAULT_MAX;
	if (pidtab__init(&p->tab, p->o.max_procs, sizeof(struct proc))) {
		free(p);
		return NULL;
	}
	if (pidtab__init(&p->fams, p->o.max_procs, sizeof(struct family))) {
		pidtab__fini(&p->tab);
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
	pidtab__fini(&p->fams);
	free(p);
}

/* pr is no longer a live Python process of its family (it exited, exec'd, or is inspected anew). */
static void family_leave(struct procs *p, struct proc *pr)
{
	struct family *f;

	if (!pr->in_family)
		return;
	pr->in_family = false;
	f = pidtab__get(&p->fams, pr->family);
	if (f && !--f->live)
		pidtab__del(&p->fams, f);
}

/* pr is a live Python process of family (a new one at its exec, its parent's at a fork). */
static void family_join(struct procs *p, struct proc *pr, uint32_t family)
{
	struct family *f;
	bool created;

	family_leave(p, pr);
	pr->family = family;
	f = pidtab__add(&p->fams, family, &created);
	if (f) {	/* else counted as none alive: its members' shared names go with each */
		f->live++;
		pr->in_family = true;
	}
}

bool procs__family_alive(const struct procs *p, uint32_t family)
{
	const struct family *f = family ? pidtab__get(&p->fams, family) : NULL;

	return f && f->live;
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

/* Hand pr's configuration, changed, to the BPF side: 0, or -errno (the process left meanwhile). */
int procs_reconfigure(struct procs *p, struct proc *pr)
{
	struct pt_proc cfg;

	py_target__to_bpf(&pr->py, &cfg);
	return bpf_map_update_elem(p->o.procs_fd, &pr->pid, &cfg, BPF_EXIST) ? -errno : 0;
}

/*
 * How pr hashes a str, once (pythreads__learn_hash; a fork inherits it with the layout): from
 * then on every lookup in its dicts (sys.modules by the frame finder, uvloop's probe and the
 * route readers) goes by hash instead of reading every key.
 */
void procs_learn_hash(struct procs *p, struct proc *pr, const struct mem_reader *mr)
{
	int ret;

	if (pr->py.layout.hash_rounds != PYL_HASH_UNKNOWN || !pr->py.hash_secret || pr->py.free_threaded)
		return;
	ret = pythreads__learn_hash(&pr->py.layout, mr, pr->py.runtime, pr->py.hash_secret);
	if (!ret)
		p->st.dicts_by_hash++;
	if (!ret)
		dlog("pid %d: dicts looked up by hash (SipHash-%u-%u)\n", pr->pid, pr->py.layout.hash_rounds,
		     pr->py.layout.hash_rounds + 2);
	else if (ret == -ENOTSUP)
		vlog("pid %d: its strs' hashes are not SipHash's: dicts are read key by key\n", pr->pid);
}

static pid_t read_ppid(pid_t pid);

/*
 * The family of pr's parent when pr, found running (not seen forking), is a fork of it that did
 * not exec: the same interpreter file at the same address and the same main stack, which each
 * exec places anew at random (ASLR) and a fork keeps. 0: its own family.
 */
static uint32_t forked_family(struct procs *p, struct proc *pr)
{
	pid_t ppid = read_ppid(pr->pid);
	const struct proc *parent = ppid > 0 ? procs__get(p, (uint32_t)ppid, false) : NULL;

	if (parent && parent != pr && parent->state == PROC_PYTHON && parent->in_family && parent->live &&
	    pr->py.stack_end && parent->py.stack_end == pr->py.stack_end &&
	    parent->py.runtime == pr->py.runtime && !strcmp(parent->py.binary, pr->py.binary))
		return parent->family;
	return 0;
}

/* Inspect pr and, if it is Python, hand its configuration to the BPF side. */
static int inspect(struct procs *p, struct proc *pr, char *err, size_t errlen)
{
	struct pt_proc cfg;
	char msg[512];
	int ret;

	pr->last_try_ns = mono_ns();
	ret = py_target__inspect(pr->pid, &pr->py, err ? err : msg, err ? errlen : sizeof(msg));
	if (ret == -EAGAIN) {
		pr->last_err = ret;
		return ret;
	}
	if (ret) {
		if (ret != -ESRCH)
			pr->state = PROC_NOT_PYTHON;
		/* every other process on the host, or the same verdict again: too many to tell of */
		if (p->o.host_wide || pr->last_err == ret)
			dlog("pid %d: %s\n", pr->pid, err ? err : msg);
		else
			vlog("pid %d: %s\n", pr->pid, err ? err : msg);
		pr->last_err = ret;
		return ret;
	}
	pr->last_err = 0;
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
	{
		uint32_t fam = forked_family(p, pr);

		if (fam)
			p->st.forks_found_running++;
		family_join(p, pr, fam ? fam : ++p->families ? p->families : ++p->families);
	}
	pr->pending_ns = 0;
	{
		struct mem_reader mr;

		procmem__reader(&mr, pr->pid);
		procs_learn_hash(p, pr, &mr);
	}
	set_service(p, pr);
	seen_add(p, pr, false);
	tlog(p, "pid %d: following (service %s, comm %s, CPython %u.%u.%u)\n", pr->pid, pr->service, pr->comm,
	     pr->py.major, pr->py.minor, pr->py.micro);
	vlog("pid %d: CPython %u.%u.%u in %s, _PyRuntime 0x%llx, thread state: %s%s%s\n",
	     pr->pid, pr->py.major, pr->py.minor, pr->py.micro, pr->py.binary,
	     (unsigned long long)pr->py.runtime, pr->py.tstate_how,
	     pr->py.tstate_checked ? "" : " (unchecked)",
	     pr->py.debug_offsets ? ", offsets from _Py_DebugOffsets" : "");
	pr->pool_next_ns = 0;
	pr->pool_gap_ns = 0;
	pr->mods_none = false;
	procs_find_frames(p, pr, mono_ns());
	if (p->o.listener.on_python)
		p->o.listener.on_python(p->o.listener.ctx, pr);
	return 0;
}

void procs__retry(struct procs *p, struct proc *pr)
{
	uint64_t since = mono_ns() - pr->last_try_ns;

	if (pr->pending_ns)
		return;	/* inspected at each poll already */
	/*
	 * Under --pid, a process found "not Python" (no interpreter in its files) that is still
	 * sampled is looked at again now and then: a verdict taken while its loader was at work
	 * must not stand for its whole life.
	 */
	if ((pr->state == PROC_UNKNOWN && since > RETRY_NS) ||
	    (!p->o.host_wide && pr->state == PROC_NOT_PYTHON && pr->last_err != -ENOTSUP && since > NOT_PYTHON_RETRY_NS))
		inspect(p, pr, NULL, 0);
}

/* /proc/PID/stat: parent, state letter and flags. 0 or -errno. */
static int read_stat(pid_t pid, pid_t *ppid, char *state, unsigned long *flags)
{
	char path[64], buf[1024], *rp;
	unsigned long fl = 0;
	int pp = -1, ret = -ESRCH;
	char st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	/* comm may hold spaces and parentheses: parse after the last ')'. */
	if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')) &&
	    sscanf(rp + 2, "%c %d %*d %*d %*d %*d %lu", &st, &pp, &fl) == 3)
		ret = 0;
	fclose(f);
	if (ppid)
		*ppid = pp;
	if (state)
		*state = st;
	if (flags)
		*flags = fl;
	return ret;
}

static bool in_cgroup(pid_t pid, const char *cg)
{
	char path[64], line[4096];
	bool in = false;
	size_t n = strlen(cg);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char *c = line;

		if (strncmp(c, "0::", 3))
			continue;	/* v1 hierarchies */
		c += 3;
		c[strcspn(c, "\n")] = '\0';
		/* strip " (deleted)" of a removed cgroup: not ours then */
		if (!strcmp(cg, "/") || (!strncmp(c, cg, n) && (c[n] == '\0' || c[n] == '/')))
			in = true;
		break;
	}
	fclose(f);
	return in;
}

bool procs__admit(const struct procs *p, pid_t pid, const char *comm)
{
	const struct procs_filter *f = &p->o.filter;
	unsigned i;
	bool ok = !f->ncomms;

	for (i = 0; i < f->ncomms && !ok; i++)
		ok = !strcmp(comm, f->comms[i]);
	for (i = 0; i < f->nexclude && ok; i++)
		ok = strcmp(comm, f->exclude_comms[i]) != 0;
	if (ok && f->cgroup)
		ok = in_cgroup(pid, f->cgroup);
	return ok;
}

/* Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). */
static int cgroup2_mount(char *out, size_t outlen)
{
	char line[4096], mnt[PATH_MAX];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");

		/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE SUPEROPTS" */
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		snprintf(out, outlen, "%s", mnt);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/* real is mnt or below it: the rest ("/a/b", "/") in out. */
static bool under(const char *real, const char *mnt, char *out, size_t outlen)
{
	size_t n = strlen(mnt);

	if (!strcmp(mnt, "/"))
		n = 0;
	if (strncmp(real, mnt, n) || (real[n] && real[n] != '/'))
		return false;
	snprintf(out, outlen, "%s", real[n] ? real + n : "/");
	return true;
}

int procs__cgroup_path(const char *arg, char *out, size_t outlen, char *err, size_t errlen)
{
	char mnt[PATH_MAX], joined[2 * PATH_MAX + 2], real[PATH_MAX];
	int i;

	if (!arg || !arg[0]) {
		snprintf(err, errlen, "--cgroup: empty path");
		return -EINVAL;
	}
	if (cgroup2_mount(mnt, sizeof(mnt))) {
		snprintf(err, errlen, "--cgroup %s: no cgroup v2 hierarchy is mounted", arg);
		return -ENOENT;
	}
	/* absolute; or relative to /sys/fs/cgroup, then to the v2 mount (where they differ) */
	for (i = 0; i < (arg[0] == '/' ? 1 : 2); i++) {
		struct stat st;

		if (arg[0] == '/')
			snprintf(joined, sizeof(joined), "%s", arg);
		else
			snprintf(joined, sizeof(joined), "%s/%s", i ? mnt : "/sys/fs/cgroup", arg);
		if (!realpath(joined, real) || stat(real, &st) || !S_ISDIR(st.st_mode))
			continue;
		if (under(real, mnt, out, outlen))
			return 0;
		if (arg[0] == '/' || i) {
			snprintf(err, errlen, "--cgroup %s: %s is not in the cgroup v2 hierarchy (mounted at %s)", arg,
				 real, mnt);
			return -EINVAL;
		}
	}
	snprintf(err, errlen, "--cgroup %s: no such cgroup (a directory under %s, or a path relative to it)", arg, mnt);
	return -ENOENT;
}

/*
 * Stop following pr: out of the BPF side's maps (its samples and socket events stop), its
 * listeners told it is gone, its record freed. A process that never ran Python is not counted.
 */
/*
 * The BPF side's one-bit-per-pid prefilter of `tracked` (see bpf/maps.bpf.h): set before a pid
 * enters tracked, cleared after it leaves. BPF programs change other bits of the same words.
 */
static void track_bit(struct procs *p, uint32_t pid, bool on)
{
	uint64_t *w, bit = 1ULL << (pid & 63);

	if (!p->o.tracked_bits || pid >> 6 >= PT_PID_WORDS)
		return;
	w = &p->o.tracked_bits[pid >> 6];
	if (on)
		__atomic_fetch_or(w, bit, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_and(w, ~bit, __ATOMIC_SEQ_CST);
}

static int track_pid(struct procs *p, uint32_t pid, __u32 how)
{
	track_bit(p, pid, true);
	if (bpf_map_update_elem(p->o.tracked_fd, &pid, &how, BPF_ANY))
		return -errno;
	return 0;
}

static void forget(struct procs *p, struct proc *pr, const char *why)
{
	uint32_t pid = pr->pid;
	bool was_python = pr->state == PROC_PYTHON;

	family_leave(p, pr);
	bpf_map_delete_elem(p->o.tracked_fd, &pid);
	track_bit(p, pid, false);
	bpf_map_delete_elem(p->o.procs_fd, &pid);
	if (p->o.listener.on_exit)
		p->o.listener.on_exit(p->o.listener.ctx, pid);
	if (pr->live)
		p->st.live--;
	if (was_python) {
		seen_exit(p, pid);
		tlog(p, "pid %d: forgotten (%s)\n", pid, why);
	} else {
		p->st.processes--;
		dlog("pid %d (%s): left alone (%s)\n", pid, pr->comm, why);
	}
	pidtab__del(&p->tab, pr);
}

/*
 * Whether an inspection that failed with ret may succeed shortly: the interpreter is not
 * initialized yet, the loader has not mapped the libraries yet, or it is mapping them (its
 * segments not all in place: a read of the interpreter's state faults, a file is not found).
 */
static bool retryable(int ret)
{
	return ret == -EAGAIN || ret == -EFAULT || ret == -EIO || ret == -ENOENT;
}

/*
 * Host-wide: the verdict on pr after an inspection (ret). A Python that is not ready, or a
 * program whose libraries are not mapped yet (libpython may be one), is tried again for a while;
 * anything else that is not a supported Python is forgotten.
 */
static uint64_t pending_retry_ns(const struct procs *p)
{
	return p->o.host_wide ? PENDING_RETRY_NS : PENDING_RETRY_SUBTREE_NS;
}

static void host_verdict(struct procs *p, struct proc *pr, int ret, uint64_t now)
{
	if (!ret)
		return;
	if (!pr->pending_ns)
		pr->pending_ns = now;
	if (retryable(ret) && now - pr->pending_ns < PENDING_MAX_NS) {
		pr->state = PROC_UNKNOWN;
		p->any_pending = true;
		if (pr->last_try_ns + pending_retry_ns(p) < p->pending_due_ns)
			p->pending_due_ns = pr->last_try_ns + pending_retry_ns(p);
		return;
	}
	if (!p->o.host_wide) {
		/* under --pid: still followed for its descendants, just not Python */
		pr->pending_ns = 0;
		if (ret != -ESRCH && pr->state == PROC_UNKNOWN)
			pr->state = PROC_NOT_PYTHON;
		if (ret != -ESRCH)
			tlog(p, "pid %d (%s): not a supported Python after its exec: %s\n", pr->pid, pr->comm, strerror(-ret));
		return;
	}
	forget(p, pr, ret == -ESRCH ? "exited" : ret == -EAGAIN ? "its interpreter never became ready" :
		      ret == -ENOTSUP ? "unsupported Python" : "not Python");
}

/* Host-wide: a process appeared (exec, fork of an unknown, the scan): filter, then inspect. */
static void host_consider(struct procs *p, struct proc *pr)
{
	uint64_t now = mono_ns();

	if (!procs__admit(p, pr->pid, pr->comm)) {
		forget(p, pr, "filtered out");
		return;
	}
	pr->pending_ns = now;
	host_verdict(p, pr, inspect(p, pr, NULL, 0), now);
}

void procs__pending(struct procs *p, uint64_t now)
{
	uint64_t retry = pending_retry_ns(p);
	uint32_t i;
	bool any = false;

	/* a walk of the whole table, at most once a retry period (not at every poll) */
	if (!p->any_pending || now < p->pending_due_ns)
		return;
	p->pending_due_ns = UINT64_MAX;		/* host_verdict() brings it forward */
	for (i = 0; i < p->tab.cap; i++) {
		struct proc *pr = pidtab__slot(&p->tab, i);

		if (!pr || pr->state != PROC_UNKNOWN || !pr->pending_ns || !pr->live)
			continue;
		if (now - pr->last_try_ns < retry) {
			any = true;
			if (pr->last_try_ns + retry < p->pending_due_ns)
				p->pending_due_ns = pr->last_try_ns + retry;
			continue;
		}
		host_verdict(p, pr, inspect(p, pr, NULL, 0), now);
		/* forget() may shift a later record into slot i: look at it again */
		if (pidtab__slot(&p->tab, i) != pr)
			i--;
		else if (pr->state == PROC_UNKNOWN)
			any = true;
	}
	p->any_pending = any;
}

static int track(struct procs *p, pid_t pid, __u32 how)
{
	int ret = track_pid(p, pid, how);

	if (ret)
		return ret;
	return procs__get(p, pid, true) ? 0 : -E2BIG;
}

static pid_t read_ppid(pid_t pid)
{
	pid_t ppid = -1;

	read_stat(pid, &ppid, NULL, NULL);
	return ppid;
}

/* Under --pid: inspect pr unless the filters leave it out (then followed for its children only). */
static int inspect_filtered(struct procs *p, struct proc *pr, char *err, size_t errlen)
{
	if (!procs__admit(p, pr->pid, pr->comm)) {
		pr->state = PROC_FILTERED;
		bpf_map_delete_elem(p->o.procs_fd, &pr->pid);
		vlog("pid %d (%s): filtered out; its descendants are still followed\n", pr->pid, pr->comm);
		return 0;
	}
	return inspect(p, pr, err, errlen);
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
				inspect_filtered(p, procs__get(p, pid, false), NULL, 0);
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
		ret = inspect_filtered(p, procs__get(p, pid, false), err, errlen);
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

int procs__add_launched(struct procs *p, pid_t pid, char *err, size_t errlen)
{
	int ret = track(p, pid, PT_TRACK_ROOT);

	if (ret)
		snprintf(err, errlen, "cannot track pid %d: %s", pid, strerror(-ret));
	return ret;
}

bool procs__settle(struct procs *p, pid_t pid)
{
	struct proc *pr = procs__get(p, pid, false);

	if (p->o.host_wide || !pr || !pr->live)
		return true;
	if (pr->state == PROC_UNKNOWN)
		host_verdict(p, pr, inspect_filtered(p, pr, NULL, 0), mono_ns());
	return pr->state != PROC_UNKNOWN;
}

bool procs__ours(struct procs *p, uint32_t pid)
{
	struct proc *pr;
	uint64_t now;

	if (!p->o.host_wide)
		return true;
	pr = procs__get(p, pid, false);
	if (!pr) {
		uint32_t how;

		/*
		 * Not announced yet (a fork whose event waits in the other ring buffer), or forgotten
		 * (not Python: its last events were queued before): the BPF side still follows the
		 * first only.
		 */
		if (!pid || bpf_map_lookup_elem(p->o.tracked_fd, &pid, &how))
			return false;
		pr = procs__get(p, pid, true);
		if (!pr)
			return false;
		host_consider(p, pr);
		pr = procs__get(p, pid, false);	/* forget() freed it if it is not Python */
	} else if (pr->state == PROC_UNKNOWN && pr->live && pr->pending_ns) {
		now = mono_ns();
		if (now - pr->last_try_ns < OURS_RETRY_NS)
			return false;
		host_verdict(p, pr, inspect(p, pr, NULL, 0), now);
		pr = procs__get(p, pid, false);	/* forget() freed it if it is not Python */
	}
	return pr && pr->state == PROC_PYTHON;
}

bool procs__any_pending(const struct procs *p)
{
	return p->any_pending;
}

int procs__add_host(struct procs *p, char *err, size_t errlen)
{
	pid_t self = getpid();
	struct dirent *d;
	DIR *dir = opendir("/proc");
	int found = 0;

	if (!dir) {
		snprintf(err, errlen, "cannot read /proc: %s", strerror(errno));
		return -errno;
	}
	while ((d = readdir(dir))) {
		pid_t pid = atoi(d->d_name);
		unsigned long flags;
		struct proc *pr;
		char state, comm[16];
		int ret;

		if (pid <= 0 || pid == self || procs__get(p, pid, false))
			continue;
		if (read_stat(pid, NULL, &state, &flags) || (flags & PF_KTHREAD) || state == 'Z' || state == 'X')
			continue;
		proc_comm(pid, comm, sizeof(comm));
		if (!procs__admit(p, pid, comm))
			continue;
		/* Inspected before it is tracked: the others are never in the BPF side's maps. */
		pr = procs__get(p, pid, true);
		if (!pr)
			break;
		ret = inspect(p, pr, NULL, 0);
		if (ret == 0 || ret == -EAGAIN) {
			__u32 how = PT_TRACK_HOST;

			ret = track_pid(p, pr->pid, how);
			if (ret) {
				snprintf(err, errlen, "cannot track pid %d: %s", pid, strerror(-ret));
				closedir(dir);
				return ret;
			}
			found += ret == 0;
		}
		host_verdict(p, pr, ret, mono_ns());
	}
	closedir(dir);
	return found;
}

static void proc_fork(struct procs *p, const struct pt_proc_event *e)
{
	struct proc *pr = procs__get(p, e->hdr.pid, false), *parent;

	dlog("pid %d: forked from %d\n", e->hdr.pid, e->ppid);
	if (pr && pr->live && !pr->dead_ns && pr->state == PROC_PYTHON)
		return;	/* found by the scan of the root's descendants already */
	pr = procs__get(p, e->hdr.pid, true);
	parent = procs__get(p, e->ppid, false);
	if (!pr)
		return;
	if (p->o.host_wide && (!parent || parent->state != PROC_PYTHON)) {
		host_consider(p, pr);	/* a parent not known yet: the child is inspected on its own */
		return;
	}
	if (!parent)
		return;
	memcpy(pr->comm, parent->comm, sizeof(pr->comm));
	if (parent->state == PROC_FILTERED || (parent->state == PROC_PYTHON && p->o.filter.cgroup &&
						!procs__admit(p, pr->pid, pr->comm))) {
		if (p->o.host_wide) {
			forget(p, pr, "filtered out");
			return;
		}
		pr->state = PROC_FILTERED;
		bpf_map_delete_elem(p->o.procs_fd, &pr->pid);
		return;
	}
	if (parent->state != PROC_PYTHON)
		return;
	/* The BPF side copied the parent's configuration; so do we. */
	pr->py = parent->py;
	pr->py.pid = e->hdr.pid;
	pr->state = PROC_PYTHON;
	family_join(p, pr, parent->family);
	memcpy(pr->service, parent->service, sizeof(pr->service));
	p->st.python++;
	seen_add(p, pr, true);
	tlog(p, "pid %d: following (service %s, comm %s, CPython %u.%u.%u, forked from %d)\n", pr->pid,
	     pr->service, pr->comm, pr->py.major, pr->py.minor, pr->py.micro, parent->pid);
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
	if (pr->state == PROC_PYTHON) {
		seen_exec(p, pr->pid);
		tlog(p, "pid %d: forgotten (exec)\n", pr->pid);
	}
	family_leave(p, pr);
	pr->state = PROC_UNKNOWN;
	pr->pending_ns = 0;
	if (p->o.listener.on_exec)
		p->o.listener.on_exec(p->o.listener.ctx, e->hdr.pid);
	memcpy(pr->comm, e->comm, sizeof(pr->comm));
	pr->comm[sizeof(pr->comm) - 1] = '\0';
	dlog("pid %d: exec %s\n", e->hdr.pid, pr->comm);
	if (p->o.host_wide) {
		host_consider(p, pr);
	} else {
		/*
		 * Just exec'd: its interpreter is not initialized yet, or its libpython not mapped
		 * yet (the loader runs after this event): inspected again every few milliseconds
		 * until it is, as host-wide, so that a command started under the tracer loses
		 * nothing of its start.
		 */
		uint64_t now = mono_ns();
		int ret = inspect_filtered(p, pr, NULL, 0);

		if (ret) {
			pr->pending_ns = now;
			host_verdict(p, pr, ret, now);
		}
	}
}

static void proc_exit(struct procs *p, const struct pt_proc_event *e)
{
	struct proc *pr = procs__get(p, e->hdr.pid, false);

	if (pr && pr->live) {
		pr->live = false;
		p->st.live--;
	}
	if (pr)
		family_leave(p, pr);
	if (pr && pr->state == PROC_PYTHON) {
		seen_exit(p, pr->pid);
		tlog(p, "pid %d: forgotten (exited)\n", pr->pid);
	} else if (pr && p->o.host_wide) {
		forget(p, pr, "exited");	/* never Python: not even counted; listeners told */
		return;
	}
	if (p->o.listener.on_exit)
		p->o.listener.on_exit(p->o.listener.ctx, e->hdr.pid);
	if (pr && !pr->dead_ns)
		pr->dead_ns = mono_ns();
	dlog("pid %d: exited\n", e->hdr.pid);
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
		if (pr && pr->dead_ns && now - pr->dead_ns > PROCS_FREE_AFTER_NS) {
			family_leave(p, pr);
			pidtab__del(&p->tab, pr);
		}
		else if (pr)
			procs_find_frames(p, pr, now);
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
		fprintf(f, "  pid %d (%s, service %s): CPython %u.%u in %s, offsets: %s, stacks: walked in BPF\n",
			pr->pid, pr->comm, pr->service, pr->py.major, pr->py.minor, pr->py.binary,
			pr->py.debug_offsets ? "_Py_DebugOffsets" : "built-in table");
	}
}

/* The services of the processes listed, with how many processes each: names[i], counts[i]. */
static unsigned services(const struct procs *p, const char **names, unsigned *counts, unsigned max)
{
	unsigned i, j, n = 0;

	for (i = 0; i < p->nseen; i++) {
		for (j = 0; j < n && strcmp(names[j], p->seen[i].service); j++)
			;
		if (j == n) {
			if (n == max)
				continue;
			names[n] = p->seen[i].service;
			counts[n++] = 0;
		}
		counts[j]++;
	}
	return n;
}

#define REPORT_SERVICES_MAX 64
#define REPORT_TEXT_PROCS 40

void procs__report(const struct procs *p, FILE *f)
{
	const char *names[REPORT_SERVICES_MAX];
	unsigned counts[REPORT_SERVICES_MAX], n = services(p, names, counts, REPORT_SERVICES_MAX), i;

	fprintf(f, "Python processes followed: %u, services: %u\n", p->nseen + (unsigned)p->seen_not_listed, n);
	for (i = 0; i < n; i++)
		fprintf(f, "  service %-30s %u process%s\n", names[i], counts[i], counts[i] == 1 ? "" : "es");
	for (i = 0; i < p->nseen && i < REPORT_TEXT_PROCS; i++) {
		const struct procs_seen *e = &p->seen[i];

		fprintf(f, "  pid %-8u %-16s %-24s CPython %u.%u%s\n", e->pid, e->comm, e->service, e->major,
			e->minor, e->live ? "" : " (exited)");
	}
	if (p->nseen + p->seen_not_listed > REPORT_TEXT_PROCS)
		fprintf(f, "  ... and %llu more (the JSON report lists up to %d)\n",
			(unsigned long long)(p->nseen + p->seen_not_listed - REPORT_TEXT_PROCS), PROCS_SEEN_MAX);
	fputc('\n', f);
}

void procs__write_json(const struct procs *p, struct jsonw *w)
{
	const char *names[REPORT_SERVICES_MAX];
	unsigned counts[REPORT_SERVICES_MAX], n = services(p, names, counts, REPORT_SERVICES_MAX), i;
	char ver[16];

	jsonw__name(w, "processes");
	jsonw__start_object(w);
	jsonw__uint_field(w, "traced", p->st.processes);
	jsonw__uint_field(w, "python", p->st.python);
	jsonw__uint_field(w, "events_not_followed", p->st.dropped);
	jsonw__uint_field(w, "thread_pools_for_tasks", p->st.thread_pools);
	jsonw__uint_field(w, "route_frames", p->st.route_frames);
	jsonw__uint_field(w, "asyncio_running_tasks", p->st.run_tasks);
	jsonw__uint_field(w, "dicts_by_hash", p->st.dicts_by_hash);
	jsonw__uint_field(w, "forks_found_running", p->st.forks_found_running);
	jsonw__uint_field(w, "asgi_middleware_scopes", p->st.scope_frames);
	jsonw__uint_field(w, "streaming_response_hosts", p->st.stream_hosts);
	jsonw__bool_field(w, "host_wide", p->o.host_wide);
	/* the Python processes followed, in the order found (at most PROCS_SEEN_MAX) */
	jsonw__name(w, "followed");
	jsonw__start_array(w);
	for (i = 0; i < p->nseen; i++) {
		const struct procs_seen *e = &p->seen[i];

		jsonw__start_object(w);
		jsonw__uint_field(w, "pid", e->pid);
		jsonw__string_field(w, "service", e->service);
		jsonw__string_field(w, "comm", e->comm);
		snprintf(ver, sizeof(ver), "%u.%u", e->major, e->minor);
		jsonw__string_field(w, "python", ver);
		jsonw__bool_field(w, "exited", !e->live);
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	jsonw__uint_field(w, "followed_not_listed", p->seen_not_listed);
	jsonw__name(w, "services");
	jsonw__start_array(w);
	for (i = 0; i < n; i++) {
		jsonw__start_object(w);
		jsonw__string_field(w, "name", names[i]);
		jsonw__uint_field(w, "processes", counts[i]);
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	jsonw__end_object(w);
}
