// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "procmaps.h"

int procmaps__parse_line(const char *line, struct proc_map *m)
{
	unsigned long long start, end, offset, inode = 0;
	int path_at = 0;
	char perms[8] = "";
	size_t len;

	if (sscanf(line, "%llx-%llx %7s %llx %*s %llu %n", &start, &end, perms, &offset, &inode, &path_at) < 5)
		return -EINVAL;
	m->inode = inode;
	m->start = start;
	m->end = end;
	m->offset = offset;
	memcpy(m->perms, perms, 4);
	m->perms[4] = '\0';
	m->path[0] = '\0';
	if (path_at > 0) {
		snprintf(m->path, sizeof(m->path), "%s", line + path_at);
		len = strlen(m->path);
		while (len && (m->path[len - 1] == '\n' || m->path[len - 1] == ' '))
			m->path[--len] = '\0';
	}
	return 0;
}

int procmaps__foreach(pid_t pid, proc_map_fn fn, void *ctx)
{
	char path[64], line[1024];
	struct proc_map m;
	int err = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (procmaps__parse_line(line, &m))
			continue;
		err = fn(ctx, &m);
		if (err)
			break;
	}
	fclose(f);
	return err;
}

int procmaps__host_path(pid_t pid, const struct proc_map *m, char *buf, size_t size)
{
	struct stat sb;
	int i;

	for (i = 0; i < 3; i++) {
		if (i == 0)
			snprintf(buf, size, "/proc/%d/root%s", pid, m->path);
		else if (i == 1)
			snprintf(buf, size, "%s", m->path);
		else
			snprintf(buf, size, "/proc/%d/map_files/%llx-%llx", pid, (unsigned long long)m->start,
				 (unsigned long long)m->end);
		if (stat(buf, &sb) == 0 && (!m->inode || sb.st_ino == m->inode))
			return 0;
	}
	return -ENOENT;
}
