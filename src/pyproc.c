// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "elfsym.h"
#include "procmaps.h"
#include "procmem.h"
#include "pyproc.h"
#include "util.h"

/* glibc's offsetof(struct pthread, specific_1stblock) on x86_64 (DOMAIN.md section 2). */
#define GLIBC_TSD_OFF 0x310

struct maps_scan {
	char exe[512];
	char lib[512];		/* libpython3.N*.so, if mapped */
	uint64_t exe_base, lib_base;	/* start of the mapping at file offset 0 */
};

static int scan_map(void *ctx, const struct proc_map *m)
{
	struct maps_scan *s = ctx;
	const char *base = strrchr(m->path, '/');

	if (!base)
		return 0;
	base++;
	if (!s->lib[0] && strncmp(base, "libpython", 9) == 0 && strstr(base, ".so")) {
		snprintf(s->lib, sizeof(s->lib), "%s", m->path);
		s->lib_base = UINT64_MAX;
	}
	if (s->lib[0] && strcmp(m->path, s->lib) == 0 && m->offset == 0 && m->start < s->lib_base)
		s->lib_base = m->start;
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
	size_t n = 0;
	FILE *f;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)size, f))
		n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	fclose(f);
}

/* Walk the main interpreter's threads and confirm where glibc keeps the TSS slot. */
static void calibrate_tsd(struct py_target *t, const struct mem_reader *mr)
{
	const struct py_layout *l = &t->layout;
	uint64_t interp, ts, tid, val;
	int guard, off;

	t->tsd_off = GLIBC_TSD_OFF;
	if (mem_read_u64(mr, t->runtime + l->rt_interp_head, &interp) || !interp)
		return;
	if (mem_read_u64(mr, interp + l->is_threads_head, &ts))
		return;
	for (guard = 0; ts && guard < 64; guard++) {
		if (mem_read_u64(mr, ts + l->ts_thread_id, &tid) == 0 && tid) {
			if (mem_read_u64(mr, tid + GLIBC_TSD_OFF + t->tss_key * 16 + 8, &val) == 0 &&
			    val == ts) {
				t->tsd_checked = true;
				return;
			}
			/* Another glibc: find the slot that holds this thread's state. */
			for (off = 0x80; off < 0x1000; off += 8) {
				if (mem_read_u64(mr, tid + off + t->tss_key * 16 + 8, &val) == 0 &&
				    val == ts) {
					t->tsd_off = off;
					t->tsd_checked = true;
					return;
				}
			}
		}
		if (mem_read_u64(mr, ts + l->ts_next, &ts))
			return;
	}
}

int py_target__inspect(pid_t pid, struct py_target *t, char *err, size_t errlen)
{
	struct elf_sym_query q[] = {
		{ .name = "_PyRuntime" }, { .name = "PyCode_Type" }, { .name = "Py_Version" },
	};
	struct maps_scan s = {};
	struct elf_info info;
	struct mem_reader mr;
	char path[600], comm[32];
	uint64_t bias = 0, base;
	unsigned major = 0, minor = 0;
	uint32_t tss[2];
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
		procmaps__host_path(pid, s.lib, path, sizeof(path));
		base = s.lib_base;
	} else {
		snprintf(t->binary, sizeof(t->binary), "%s", s.exe);
		snprintf(path, sizeof(path), "/proc/%d/exe", pid);
		base = s.exe_base;
	}
	ret = elfsym__lookup(path, q, ARRAY_SIZE(q), &info);
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
	t->pycode_type = q[1].value ? q[1].value + bias : 0;
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
			ret = py_layout__from_debug_offsets(&t->layout, buf, sizeof(buf));
		if (ret == 0)
			t->debug_offsets = true;
		else
			vlog("pid %d: _Py_DebugOffsets not usable (%s); using built-in offsets for 3.%u\n",
			     pid, strerror(-ret), minor);
	}

	ret = mem_read(&mr, t->runtime + t->layout.rt_tss, tss, sizeof(tss));
	if (ret) {
		snprintf(err, errlen, "pid %d: cannot read the interpreter's memory: %s", pid, strerror(-ret));
		return ret == -ESRCH ? -ESRCH : ret;
	}
	if (tss[0] != 1) {
		snprintf(err, errlen, "pid %d: the Python interpreter is not initialized yet", pid);
		return -EAGAIN;
	}
	if (tss[1] >= 32) {
		snprintf(err, errlen, "pid %d: thread-state key %u is outside glibc's first block; not supported", pid, tss[1]);
		return -ENOTSUP;
	}
	t->tss_key = tss[1];
	calibrate_tsd(t, &mr);
	return 0;
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
	p->tss_key = t->tss_key;
	p->tsd_off = t->tsd_off;
}
