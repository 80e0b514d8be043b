// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdbool.h>
#include <bpf/bpf.h>
#include "pidsweep.h"

struct pid_key {
	uint32_t pid;
	int32_t rest;
};

static bool waiting(const struct pidsweep *ps, uint32_t pid)
{
	for (unsigned i = 0; i < ps->n; i++)
		if (ps->pids[i] == pid)
			return true;
	return false;
}

static int next_key(const struct pidsweep *ps, int fd, const void *key, void *next)
{
	return ps->ops ? ps->ops->next_key(fd, key, next) : bpf_map_get_next_key(fd, key, next);
}

static bool delete_key(struct pidsweep *ps, int fd, const void *key)
{
	if (ps->ops ? ps->ops->delete_key(fd, key) : bpf_map_delete_elem(fd, key))
		return false;
	ps->deleted++;
	return true;
}

void pidsweep__run(struct pidsweep *ps, int fd)
{
	struct pid_key k, next;
	bool first = true;

	if (!ps->n || fd < 0)
		return;
	/* delete the key behind the walk, never the one it stands on */
	while (!next_key(ps, fd, first ? NULL : &k, &next)) {
		if (!first && waiting(ps, k.pid))
			delete_key(ps, fd, &k);
		k = next;
		first = false;
	}
	if (!first && waiting(ps, k.pid))
		delete_key(ps, fd, &k);
	ps->n = 0;
	ps->sweeps++;
}

void pidsweep__add(struct pidsweep *ps, int fd, uint32_t pid, uint64_t now_ns)
{
	if (waiting(ps, pid))
		return;
	if (ps->n == PIDSWEEP_MAX)
		pidsweep__run(ps, fd);
	if (!ps->n)
		ps->first_ns = now_ns;
	ps->pids[ps->n++] = pid;
}

void pidsweep__tick(struct pidsweep *ps, int fd, uint64_t now_ns)
{
	if (ps->n && now_ns - ps->first_ns >= PIDSWEEP_GAP_NS)
		pidsweep__run(ps, fd);
}
