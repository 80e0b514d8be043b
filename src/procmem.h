/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef PYTRACE_PROCMEM_H
#define PYTRACE_PROCMEM_H

#include "memread.h"

/*
 * A mem_reader over a live process (through /proc/PID/mem: procmem.c says why not
 * process_vm_readv). ctx is the pid cast to a pointer.
 */
void procmem__reader(struct mem_reader *mr, pid_t pid);
/* pid exited or exec'd: the file kept open on it is closed. */
void procmem__forget(pid_t pid);

#endif
