/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* include/pytrace.h for user space: the kernel's __u32/__u64 names. */
#ifndef PYTRACE_USER_H
#define PYTRACE_USER_H

#include <linux/types.h>
#include <stdint.h>
#include "pytrace.h"
#include "sql.h"

/*
 * Who sent or wrote something (requests.h): its outermost coroutine frame, else its outermost
 * frame with bit 0 set (frames are 8-aligned), so that a listener can tell the two; 0: unknown.
 */
static inline uint64_t pt_task_key(uint64_t task_frame, uint64_t root_frame)
{
	return task_frame ? task_frame : root_frame ? root_frame | 1 : 0;
}

#endif
