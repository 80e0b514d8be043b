/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Per-syscall tracepoints (syscalls:sys_enter_X / sys_exit_X) need tracefs for their ids. */
#ifndef PYTRACE_TRACEFS_H
#define PYTRACE_TRACEFS_H

#include <stdbool.h>

#define TRACEFS "/sys/kernel/tracing"

/* Whether the syscall tracepoints can be attached, mounting tracefs where it is missing. */
bool tracefs__syscall_events(void);

#endif
