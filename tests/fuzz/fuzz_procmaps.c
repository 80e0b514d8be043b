/* fuzz-sources: src/procmaps.c */
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * /proc/PID/maps lines, as procmaps__foreach reads them: the input cut the way fgets() into
 * its 1024-byte buffer cuts it (at each newline, and every 1023 bytes of a longer line), each
 * piece parsed. The file is the kernel's, but its paths are any name a traced process gave
 * the files it maps (spaces, newlines, " (deleted)", 4095 bytes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "procmaps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i = 0;

	while (i < size) {
		struct proc_map m;
		size_t n = 0;
		char *line;

		while (i + n < size && n < 1023 && data[i + n] != '\n')
			n++;
		if (i + n < size && n < 1023)
			n++;	/* the newline, which fgets keeps */
		line = malloc(n + 1);	/* exactly the line and its NUL */
		memcpy(line, data + i, n);
		line[n] = '\0';
		memset(&m, 0xa5, sizeof(m));
		if (procmaps__parse_line(line, &m) == 0 &&
		    (m.perms[4] || !memchr(m.path, 0, sizeof(m.path))))
			abort();
		free(line);
		i += n;
	}
	return 0;
}
