/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The entries that exited processes left in a BPF hash map whose keys begin with their pid (a
 * socket's, say: an exit closes its files without the close() the programs would have seen).
 * Finding them walks every bucket of the map (bpf_map_get_next_key: 65,536 of them for the
 * HTTP layer's connections), whatever the map holds: done for each exit, that walk was a few
 * per cent of the collector's CPU where gunicorn replaces a worker every second. So the exits are
 * swept together: at most PIDSWEEP_GAP_NS after the first one waiting, or when PIDSWEEP_MAX wait.
 * A pid is given to a new process only after the kernel has gone round its whole range
 * (pid_max), never within a second: the delay cannot take a new process's entries for an old one's.
 */
#ifndef PYTRACE_PIDSWEEP_H
#define PYTRACE_PIDSWEEP_H

#include <stdint.h>

#define PIDSWEEP_MAX 64
#define PIDSWEEP_GAP_NS 1000000000ULL

/*
 * How the sweep walks and deletes keys: a BPF map's (libbpf's bpf_map_get_next_key and
 * bpf_map_delete_elem) where ops is NULL; another map with a hash map's semantics (a key not
 * found gives the first), for a test that has no privilege to make a BPF map.
 */
struct pidsweep_ops {
	int (*next_key)(int fd, const void *key, void *next);
	int (*delete_key)(int fd, const void *key);
};

/* Zeroed to begin with. The map (fd): keys of 8 bytes, the pid (__u32) first. */
struct pidsweep {
	const struct pidsweep_ops *ops;	/* NULL: a BPF map's */
	uint32_t pids[PIDSWEEP_MAX];
	unsigned n;
	uint64_t first_ns;	/* when the oldest waiting one was added */
	uint64_t sweeps, deleted;
};

/* pid exited (or exec'd): its entries go at the next sweep, now if PIDSWEEP_MAX wait. */
void pidsweep__add(struct pidsweep *ps, int fd, uint32_t pid, uint64_t now_ns);
/* Sweep if the oldest has waited PIDSWEEP_GAP_NS. */
void pidsweep__tick(struct pidsweep *ps, int fd, uint64_t now_ns);
/* Sweep what waits, now. */
void pidsweep__run(struct pidsweep *ps, int fd);

#endif
