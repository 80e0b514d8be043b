/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* include/pytrace.h for user space: the kernel's __u32/__u64 names. */
#ifndef PYTRACE_USER_H
#define PYTRACE_USER_H

#include <linux/types.h>
#include "pytrace.h"
#include "sql.h"

#endif
