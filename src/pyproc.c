// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "elfsym.h"
#include "procmaps.h"
#include "procmem.h"
#include "pyproc.h"
#include "routes.h"
#include "util.h"

/* glibc's offsetof(struct pthread, specific_1stblock) on x86_64 (DOMAIN.md section 2). */
#define GLIBC_TSD_OFF 0x310

struct maps_scan {
	char exe[512];
	char lib[512];		/* libpython3.N*.so, if mapped */
	uint64_t exe_base, lib_base;	/* start of the mapping at file offset 0 */
	struct proc_map lib_map;	/* that mapping of lib */
	bool ld, libs;		/* the dynamic loader is mapped; a shared library is */
	uint64_t stack_end;	/* the main thread's stack: its top */
};

static int scan_map(void *ctx, const struct proc_map *m)
{
	struct maps_scan *s = ctx;
	const char *base = strrchr(m->path, '/');

	if (!strcmp(m->path, "[stack]"))
		s->stack_end = m->end;	/* its start moves down as it grows */
	if (!base)
		return 0;
	base++;
	if (!strncmp(base, "ld-linux", 8) || !strncmp(base, "ld-musl", 7) || !strncmp(base, "ld.so", 5))
		s->ld = true;
	else if (strstr(base, ".so"))
		s->libs = true;
	if (!s->lib[0] && strncmp(base, "libpython", 9) == 0 && strstr(base, ".so")) {
		snprintf(s->lib, sizeof(s->lib), "%s", m->path);
		s->lib_base = UINT64_MAX;
	}
	if (s->lib[0] && strcmp(m->path, s->lib) == 0 && m->offset == 0 && m->start < s->lib_base) {
		s->lib_base = m->start;
		s->lib_map = *m;
	}
	if (s->exe[0] && strcmp(m->path, s->exe) == 0 && m->offset == 0 && !s->exe_base)
		s->exe_base = m->start;
	return 0;
}

/* "python3.11", "libpython3.11.so.1.0", "python2.7" -> major, minor. */
static int version_from_name(const char *path, unsigned *major, unsigned *minor)
{
	const char *base = strrchr(path, '/'), *p;

	base = base ? base + 1 : path;
	p = strstr(base, "python");
	if (!p || sscanf(p, "python%u.%u", major, minor) != 2)
		return -ENOENT;
	return 0;
}

void proc_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	buf[0] = '\0';
	if (!size)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	/* read(2), not stdio: a FILE's buffer and its fstat for 16 bytes, at every exec host-wide */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
}

#define MAX_THREADS 64
#define TLS_SCAN 16384		/* bytes below the thread pointer searched for _Py_tss_gilstate */

struct py_thread {
	uint64_t tstate;
	uint64_t pthread;	/* pthread_t: glibc's struct pthread, where fsbase points */
};

/* The main interpreter's threads, from its own list. Returns how many. */
static int list_threads(const struct py_target *t, const struct mem_reader *mr, struct py_thread *th)
{
	const struct py_layout *l = &t->layout;
	uint64_t interp, ts;
	int n = 0;

	if (mem_read_u64(mr, t->runtime + l->rt_interp_head, &interp) || !interp)
		return 0;
	if (mem_read_u64(mr, interp + l->is_threads_head, &ts))
		return 0;
	while (ts && n < MAX_THREADS) {
		th[n].tstate = ts;
		if (mem_read_u64(mr, ts + l->ts_thread_id, &th[n].pthread) == 0 && th[n].pthread)
			n++;
		if (mem_read_u64(mr, ts + l->ts_next, &ts))
			break;
	}
	return n;
}

/* The GIL (--gil): in _PyRuntime (<= 3.11), or where the main interpreter's ceval.gil points. */
static void find_gil(struct py_target *t, const struct mem_reader *mr)
{
	const struct py_layout *l = &t->layout;
	uint64_t interp = 0, gil = 0;

	t->gil = 0;
	if (t->free_threaded)
		return;
	if (l->rt_gil != PYL_NONE) {
		t->gil = t->runtime + l->rt_gil;
		return;
	}
	if (l->is_ceval_gil == PYL_NONE || mem_read_u64(mr, t->runtime + l->rt_interp_head, &interp) || !interp ||
	    mem_read_u64(mr, interp + l->is_ceval_gil, &gil))
		return;
	t->gil = gil;
}

/* <= 3.14: the autoTSSkey's slot in glibc's specific_1stblock, checked against live threads. */
static int find_tss_slot(struct py_target *t, const struct mem_reader *mr, char *err, size_t errlen)
{
	struct py_thread th[MAX_THREADS];
	uint32_t tss[2];
	uint64_t val;
	int n, i, off, ret;

	ret = mem_read(mr, t->runtime + t->layout.rt_tss, tss, sizeof(tss));
	if (ret) {
		snprintf(err, errlen, "pid %d: cannot read the interpreter's memory: %s", t->pid, strerror(-ret));
		return ret;
	}
	if (tss[0] != 1) {
		snprintf(err, errlen, "pid %d: the Python interpreter is not initialized yet", t->pid);
		return -EAGAIN;
	}
	if (tss[1] >= 32) {
		snprintf(err, errlen, "pid %d: thread-state key %u is outside glibc's first block; not supported",
			 t->pid, tss[1]);
		return -ENOTSUP;
	}
	t->tstate_off = GLIBC_TSD_OFF + tss[1] * 16 + 8;
	snprintf(t->tstate_how, sizeof(t->tstate_how), "pthread key %u, glibc TSD at 0x%x", tss[1], GLIBC_TSD_OFF);
	n = list_threads(t, mr, th);
	for (i = 0; i < n; i++) {
		if (mem_read_u64(mr, th[i].pthread + t->tstate_off, &val) == 0 && val == th[i].tstate) {
			t->tstate_checked = true;
			return 0;
		}
	}
	/* Another glibc: find the slot that holds a thread's own state. */
	for (i = 0; i < n; i++) {
		for (off = 0x80; off < 0x1000; off += 16) {
			if (mem_read_u64(mr, th[i].pthread + off + tss[1] * 16 + 8, &val) == 0 && val == th[i].tstate) {
				t->tstate_off = off + tss[1] * 16 + 8;
				snprintf(t->tstate_how, sizeof(t->tstate_how), "pthread key %u, glibc TSD at 0x%x",
					 tss[1], off);
				t->tstate_checked = true;
				return 0;
			}
		}
	}
	return 0;	/* keep glibc's usual offset; samples will say if it is wrong */
}

/*
 * 3.15: no autoTSSkey; the bound thread state is the thread-local _Py_tss_gilstate, which is
 * not exported. Static TLS sits just below the thread pointer, so look there for the word that
 * holds each thread's own PyThreadState, at the same offset in every thread.
 */
static int find_tls_slot(struct py_target *t, const struct mem_reader *mr, char *err, size_t errlen)
{
	static uint64_t buf[TLS_SCAN / 8];
	struct py_thread th[MAX_THREADS];
	bool cand[TLS_SCAN / 8];
	int n, i, j, round, found = -1, ncand = 0;

	n = list_threads(t, mr, th);
	if (!n) {
		snprintf(err, errlen, "pid %d: the Python interpreter has no threads yet", t->pid);
		return -EAGAIN;
	}
	for (j = 0; j < TLS_SCAN / 8; j++)
		cand[j] = true;
	/* Several rounds: _Py_tss_tstate also matches while a thread holds the GIL, but not after. */
	for (round = 0; round < 5; round++) {
		for (i = 0; i < n; i++) {
			if (mem_read(mr, th[i].pthread - TLS_SCAN, buf, sizeof(buf))) {
				snprintf(err, errlen, "pid %d: cannot read thread-local storage", t->pid);
				return -EFAULT;
			}
			for (j = 0; j < TLS_SCAN / 8; j++)
				cand[j] = cand[j] && buf[j] == th[i].tstate;
		}
		if (round < 4)
			usleep(2000);
	}
	/*
	 * A single thread that holds the GIL throughout leaves two survivors: _Py_tss_tstate and
	 * _Py_tss_gilstate. Take the one furthest from the thread pointer: on Debian's 3.15.2 that
	 * is _Py_tss_gilstate (fsbase-0x28; the only survivor when the thread sleeps), which stays
	 * set while the thread runs native code without the GIL.
	 */
	for (j = 0; j < TLS_SCAN / 8; j++) {
		if (cand[j]) {
			ncand++;
			if (found < 0)
				found = j;
		}
	}
	if (found < 0) {
		snprintf(err, errlen, "pid %d: cannot find the thread state in thread-local storage (CPython %u.%u)",
			 t->pid, t->major, t->minor);
		return -ENOENT;
	}
	t->tstate_off = -(int64_t)TLS_SCAN + found * 8;
	t->tstate_checked = true;
	snprintf(t->tstate_how, sizeof(t->tstate_how), "thread-local at fsbase-0x%llx (%d candidate%s, %d thread%s)",
		 (unsigned long long)-t->tstate_off, ncand, ncand == 1 ? "" : "s", n, n == 1 ? "" : "s");
	return 0;
}

/*
 * elfsym__lookup of the interpreter's symbols, remembered per file (device, inode, size, mtime):
 * a host-wide collector inspects every program that starts, and reading python3.11's symbol
 * table again for each new interpreter (or /bin/sh's for each shell) took milliseconds apiece.
 */
#define LOOKUP_CACHE 32
#define LOOKUP_SYMS 4

static struct lookup_entry {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	int ret;
	uint64_t value[LOOKUP_SYMS], symsize[LOOKUP_SYMS];
	struct elf_info info;
	bool used;
} lookup_cache[LOOKUP_CACHE];
static unsigned lookup_next;

static int lookup_cached(const char *path, struct elf_sym_query *q, size_t n, struct elf_info *info)
{
	struct lookup_entry *e;
	struct stat st;
	int ret;

	if (n > LOOKUP_SYMS || stat(path, &st))
		return elfsym__lookup(path, q, n, info);
	for (unsigned i = 0; i < LOOKUP_CACHE; i++) {
		e = &lookup_cache[i];
		if (e->used && e->dev == st.st_dev && e->ino == st.st_ino && e->size == st.st_size &&
		    e->mtime.tv_sec == st.st_mtim.tv_sec && e->mtime.tv_nsec == st.st_mtim.tv_nsec) {
			for (size_t j = 0; j < n; j++) {
				q[j].value = e->value[j];
				q[j].size = e->symsize[j];
			}
			*info = e->info;
			return e->ret;
		}
	}
	ret = elfsym__lookup(path, q, n, info);
	if (ret)
		return ret;	/* an error reading it (gone, say): not a verdict on the file */
	e = &lookup_cache[lookup_next++ % LOOKUP_CACHE];
	*e = (struct lookup_entry){ .dev = st.st_dev, .ino = st.st_ino, .size = st.st_size,
				    .mtime = st.st_mtim, .ret = ret, .info = *info, .used = true };
	for (size_t j = 0; j < n; j++) {
		e->value[j] = q[j].value;
		e->symsize[j] = q[j].size;
	}
	return ret;
}

void py_binary__prime(const char *argv0)
{
	struct elf_sym_query q[] = {
		{ .name = "_PyRuntime" }, { .name = "PyCode_Type" }, { .name = "Py_Version" },
		{ .name = "_Py_HashSecret" },
	};
	const char *path_env = getenv("PATH"), *dir, *end;
	struct elf_info info;
	char path[PATH_MAX];

	if (strchr(argv0, '/')) {
		if (!access(argv0, X_OK))
			lookup_cached(argv0, q, ARRAY_SIZE(q), &info);
		return;
	}
	for (dir = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin"; *dir; dir = *end ? end + 1 : end) {
		end = strchrnul(dir, ':');
		if (snprintf(path, sizeof(path), "%.*s/%s", (int)(end - dir), end > dir ? dir : ".", argv0) >=
		    (int)sizeof(path))
			continue;
		if (!access(path, X_OK)) {
			lookup_cached(path, q, ARRAY_SIZE(q), &info);
			return;
		}
	}
}

int py_target__inspect(pid_t pid, struct py_target *t, char *err, size_t errlen)
{
	struct elf_sym_query q[] = {
		{ .name = "_PyRuntime" }, { .name = "PyCode_Type" }, { .name = "Py_Version" },
		{ .name = "_Py_HashSecret" },
	};
	struct maps_scan s = {};
	struct elf_info info;
	struct mem_reader mr;
	char path[600], comm[32];
	uint64_t bias = 0, base;
	unsigned major = 0, minor = 0;
	ssize_t n;
	int ret;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (access(path, F_OK)) {
		snprintf(err, errlen, "no process with pid %d", pid);
		return -ESRCH;
	}
	proc_comm(pid, comm, sizeof(comm));
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, s.exe, sizeof(s.exe) - 1);
	if (n < 0) {
		ret = -errno;
		if (ret == -ENOENT) {
			snprintf(err, errlen, "pid %d (%s) is not a Python process (no executable: a kernel thread or a zombie)", pid, comm);
			return -ENOEXEC;
		}
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return ret;
	}
	s.exe[n] = '\0';
	if (n > 10 && strcmp(s.exe + n - 10, " (deleted)") == 0)
		s.exe[n - 10] = '\0';
	ret = procmaps__foreach(pid, scan_map, &s);
	if (ret) {
		snprintf(err, errlen, "cannot read /proc/%d/maps: %s", pid, strerror(-ret));
		return ret == -ENOENT ? -ESRCH : ret;
	}

	if (s.lib[0]) {
		t->shared = true;
		snprintf(t->binary, sizeof(t->binary), "%s", s.lib);
		ret = procmaps__host_path(pid, &s.lib_map, path, sizeof(path));
		if (ret) {
			snprintf(err, errlen, "pid %d: cannot open %s: %s", pid, s.lib,
				 strerror(ret < 0 ? -ret : ENOENT));
			return -ENOENT;
		}
		base = s.lib_base;
	} else {
		snprintf(t->binary, sizeof(t->binary), "%s", s.exe);
		snprintf(path, sizeof(path), "/proc/%d/exe", pid);
		base = s.exe_base;
	}
	snprintf(t->binary_host, sizeof(t->binary_host), "%s", path);
	ret = lookup_cached(path, q, ARRAY_SIZE(q), &info);
	if (ret == -ENOENT && !t->shared) {
		snprintf(err, errlen, "pid %d exited", pid);
		return -ESRCH;
	}
	version_from_name(t->binary, &major, &minor);
	if (ret || !q[0].value) {
		if (major == 2 || (major == 3 && minor < 8)) {
			t->major = major;
			t->minor = minor;
			snprintf(err, errlen, "pid %d (%s) runs CPython %u.%u (%s), which pytrace-bpf does not support: it supports CPython 3.8 to 3.15",
				 pid, comm, major, minor, t->binary);
			return -ENOTSUP;
		}
		/*
		 * Just exec'd: the loader is mapped but no library yet, so libpython may still come.
		 * Told from this same read of the maps: a second read could see libpython mapped
		 * in between and take it for a program whose libraries are all in place.
		 */
		if (!t->shared && s.ld && !s.libs) {
			snprintf(err, errlen, "pid %d (%s): its libraries are not mapped yet", pid, comm);
			return -EAGAIN;
		}
		snprintf(err, errlen, "pid %d (%s, %s) is not a Python process: no CPython interpreter (_PyRuntime) in its executable or libraries",
			 pid, comm, s.exe);
		return -ENOEXEC;
	}
	if (info.is_dyn) {
		if (!base || base == UINT64_MAX) {
			snprintf(err, errlen, "pid %d: cannot find where %s is loaded", pid, t->binary);
			return -ENOENT;
		}
		bias = base - info.min_vaddr;
	}
	t->runtime = q[0].value + bias;
	t->stack_end = s.stack_end;
	t->pycode_type = q[1].value ? q[1].value + bias : 0;
	t->hash_secret = q[3].value ? q[3].value + bias : 0;
	procmem__reader(&mr, pid);

	if (q[2].value) {
		uint32_t hex;

		/* Py_Version (3.11+) is PY_VERSION_HEX: the interpreter's own word on its version. */
		if (mem_read_u32(&mr, q[2].value + bias, &hex) == 0 && (hex >> 24) == 3) {
			major = hex >> 24;
			minor = (hex >> 16) & 0xff;
			t->micro = (hex >> 8) & 0xff;
		}
	}
	t->major = major;
	t->minor = minor;
	if (!major) {
		snprintf(err, errlen, "pid %d (%s): cannot tell the Python version of %s", pid, comm, t->binary);
		return -ENOTSUP;
	}
	{
		const struct py_layout *l = py_layout__builtin(major, minor);

		if (!l) {
			snprintf(err, errlen, "pid %d (%s) runs CPython %u.%u (%s), which pytrace-bpf does not support: it supports CPython 3.8 to 3.15",
				 pid, comm, major, minor, t->binary);
			return -ENOTSUP;
		}
		t->layout = *l;
	}
	if (minor >= 13) {
		char buf[4096];

		ret = mem_read(&mr, t->runtime, buf, sizeof(buf));
		if (ret == 0)
			t->free_threaded = *(uint64_t *)(buf + 16) != 0;	/* _Py_DebugOffsets.free_threaded */
		if (ret == 0)
			ret = py_layout__from_debug_offsets(&t->layout, buf, sizeof(buf));
		if (ret == 0)
			t->debug_offsets = true;
		else
			vlog("pid %d: _Py_DebugOffsets not usable (%s); using built-in offsets for 3.%u\n",
			     pid, strerror(-ret), minor);
	}

	find_gil(t, &mr);
	if (t->layout.rt_tss != PYL_NONE)
		return find_tss_slot(t, &mr, err, errlen);
	return find_tls_slot(t, &mr, err, errlen);
}

/* How much of a frame the walker reads at once: up to the end of its last field. */
static uint16_t frame_span(const struct py_layout *l)
{
	uint32_t end = l->fr_code + 8;

	if (l->fr_back + 8 > end)
		end = l->fr_back + 8;
	if (l->fr_instr + (l->instr_is_ptr ? 8 : 4) > end)
		end = l->fr_instr + (l->instr_is_ptr ? 8 : 4);
	if (l->fr_owner != PYL_NONE && l->fr_owner + 1 > end)
		end = l->fr_owner + 1;
	if (l->fr_gen != PYL_NONE && l->fr_gen + (l->owner_gen ? 1 : 8) > end)
		end = l->fr_gen + (l->owner_gen ? 1 : 8);
	return end;
}

#define AIO_SECTION	".AsyncioDebug"

struct aio_map {
	struct proc_map m;
	bool found;
};

static int find_aio_map(void *ctx, const struct proc_map *m)
{
	struct aio_map *a = ctx;
	const char *base = strrchr(m->path, '/');

	base = base ? base + 1 : m->path;
	if (strncmp(base, "_asyncio.", 9) || !strstr(base, ".so"))
		return 0;
	a->m = *m;
	a->found = true;
	return 1;
}

int py_target__find_running_task(struct py_target *t)
{
	uint8_t sec[PYL_ASYNCIO_DEBUG_LEN];
	struct aio_map a = {};
	char path[600];
	size_t len = 0;
	int ret;

	if (t->major != 3 || t->minor < 14 || t->free_threaded)
		return -ENOTSUP;
	/* _asyncio built into the interpreter (Debian's 3.15): its section is in that file */
	ret = elfsym__section(t->binary_host, AIO_SECTION, sec, sizeof(sec), &len);
	if (ret == -ENOENT) {
		/* else its shared object, mapped once imported */
		ret = procmaps__foreach(t->pid, find_aio_map, &a);
		if (ret < 0)
			return ret;
		if (!a.found)
			return -EAGAIN;
		if (procmaps__host_path(t->pid, &a.m, path, sizeof(path)))
			return -ENOENT;
		ret = elfsym__section(path, AIO_SECTION, sec, sizeof(sec), &len);
	}
	if (ret)
		return ret;
	t->ts_run_task = py_layout__asyncio_running_task(sec, len, t->layout.task_coro);
	return t->ts_run_task ? 0 : -ENOENT;
}

void py_target__to_bpf(const struct py_target *t, struct pt_proc *p)
{
	const struct py_layout *l = &t->layout;

	memset(p, 0, sizeof(*p));
	p->off.ts_cframe = l->ts_cframe == PYL_NONE ? PT_NONE : l->ts_cframe;
	p->off.ts_frame = l->ts_frame;
	p->off.fr_code = l->fr_code;
	p->off.fr_back = l->fr_back;
	p->off.fr_instr = l->fr_instr;
	p->off.fr_owner = l->fr_owner == PYL_NONE ? PT_NONE : l->fr_owner;
	p->off.instr_is_ptr = l->instr_is_ptr;
	p->off.owner_cstack = l->owner_cstack;
	p->off.code_mask = l->code_mask;
	p->off.fr_span = frame_span(l);
	p->off.fr_gen = l->fr_gen == PYL_NONE ? PT_NONE : l->fr_gen;
	p->off.gen_is_ptr = !l->owner_gen;
	p->off.owner_gen = l->owner_gen;
	p->off.co_flags = l->co_flags == PYL_NONE ? PT_NONE : l->co_flags;
	p->off.ts_datastack = l->ts_datastack == PYL_NONE ? PT_NONE : l->ts_datastack;
	p->tstate_off = t->tstate_off;
	p->gil = t->gil;
	p->gil_locked = l->gil_locked;
	p->gil_holder = l->gil_holder;
	/* a coroutine's frame: <= 3.10 point at a frame object, 3.11+ embed it */
	p->task_coro = l->task_coro;
	p->coro_frame = l->gen_frame;
	p->coro_frame_is_ptr = t->minor <= 10;
	p->fut_callback0 = l->fut_callback0;
	p->wakeup_task = l->wakeup_task;
	if (t->proxy_code) {
		p->proxy_code = t->proxy_code;
		p->proxy_local = l->fr_localsplus + 8 * t->proxy_local;
		p->proxy_via_future = t->proxy_via_future;
	}
	if (t->route_code) {
		p->route_code = t->route_code;
		p->route_local = l->fr_localsplus + 8 * t->route_local;
		p->route_cell = t->route_cell;
		p->route_via_attr = t->route_frame < routes__nframes && routes__frames[t->route_frame].app_attr;
		if (t->route_attr.mode) {
			p->route_attr.mode = (__u8)t->route_attr.mode;
			p->route_attr.off = (__u16)t->route_attr.off;
			p->route_attr.slot = (__u16)t->route_attr.slot;
			p->attr_dict_values = (__u16)t->route_attr.dict_values;
		}
	}
	for (int i = 0; i < PT_TEXT_CODES; i++) {
		if (t->text_code[i] && t->text_local[i] < 4096) {
			p->text_code[i] = t->text_code[i];
			p->text_local[i] = (__u16)(l->fr_localsplus + 8 * t->text_local[i]);
			p->text_member[i] = (__u16)t->text_member[i];
		}
	}
	if (t->text_code[0]) {
		p->text_data = (__u16)(t->text_bytes ? l->bytes_data : l->str_ascii_data);
		p->text_state = (__u16)(t->text_bytes ? 0 : l->str_state);
		p->text_cdata = (__u16)(t->text_bytes ? 0 : l->str_compact_data);
		p->text_want = t->want_text;
	}
	p->cell_ref = 16;	/* PyCellObject: the object's head, then ob_ref (3.8-3.15) */
	p->dict_keys = (__u16)l->dict_keys;
	/*
	 * Read only where a statement's walk can stop: at an event loop's route frame (a gunicorn
	 * worker's is a thread's, whose statements would pay two reads of an empty dict each)
	 */
	if ((t->run_tasks || t->ts_run_task) && t->route_code && t->route_frame < routes__nframes &&
	    routes__frames[t->route_frame].app != ROUTE_APP_WSGI_WORKER) {
		if (t->ts_run_task && t->ts_run_task < 65536) {
			p->ts_run_task = (__u16)t->ts_run_task;	/* 3.14+: one read of the thread state */
		} else if (t->run_tasks && l->dk_log2 && l->dk_size < 64 && l->dk_nentries < 64 &&
			   l->dk_indices < 64) {
			p->run_tasks = t->run_tasks;
			p->dk_log2_size = (__u8)l->dk_size;
			p->dk_nentries = (__u8)l->dk_nentries;
			p->dk_indices = (__u8)l->dk_indices;
		}
	}
	if (t->scope_code && t->scope_child_code) {
		p->scope_code = t->scope_code;
		p->scope_child_code = t->scope_child_code;
		p->scope_cell = l->fr_localsplus + 8 * t->scope_cell;
		p->scope_child_cell = l->fr_localsplus + 8 * t->scope_child_cell;
		if (t->writer_code && t->send_code[0]) {
			p->writer_code = t->writer_code;
			p->send_code[0] = t->send_code[0];
			p->send_code[1] = t->send_code[1];
			p->send_local = l->fr_localsplus + 8 * t->send_local;
			p->attr_mode = (__u8)t->scope_attr.mode;
			p->attr_off = (__u16)t->scope_attr.off;
			p->attr_slot = (__u16)t->scope_attr.slot;
			p->attr_dict_values = (__u16)t->scope_attr.dict_values;
			p->scope_route_off = t->scope_route_off;
			p->scope_route_key = t->scope_route_key;
		}
	}
	if (t->writer_code && t->host_cell) {
		/* a streamed response's writer: its task group's host task, beside its own key */
		p->writer_code = t->writer_code;
		p->host_cell = l->fr_localsplus + 8 * t->host_cell;
		if (t->host_attr[0].mode)
			p->attr_dict_values = (__u16)t->host_attr[0].dict_values;
		for (int i = 0; i < 2; i++) {
			p->host_attr[i].mode = (__u8)t->host_attr[i].mode;
			p->host_attr[i].off = (__u16)t->host_attr[i].off;
			p->host_attr[i].slot = (__u16)t->host_attr[i].slot;
		}
	}
}
