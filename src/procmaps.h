/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* /proc/PID/maps, and opening the files a process maps as that process sees them. */
#ifndef PYTRACE_PROCMAPS_H
#define PYTRACE_PROCMAPS_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct proc_map {
	uint64_t start, end, offset;
	uint64_t inode;
	char perms[5];
	char path[512];		/* as the process sees it; empty for anonymous mappings */
};

/* Call fn for each mapping of pid; stops early when fn returns non-zero (returned). -errno on error. */
typedef int (*proc_map_fn)(void *ctx, const struct proc_map *m);
int procmaps__foreach(pid_t pid, proc_map_fn fn, void *ctx);
/* Parse one maps line; 0 or -EINVAL. */
int procmaps__parse_line(const char *line, struct proc_map *m);
/*
 * A path that opens the file of mapping m from here. /proc/PID/maps names files as seen from
 * the reader's root, which for a process in a chroot is a host path, and for one in another
 * mount namespace a path in its namespace: try pid's root + path, the path itself, then the
 * mapping's /proc/PID/map_files entry, and keep the first with the mapping's inode.
 * Returns 0 or -ENOENT.
 */
int procmaps__host_path(pid_t pid, const struct proc_map *m, char *buf, size_t size);

#endif
