/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef PYTRACE_PROCMEM_H
#define PYTRACE_PROCMEM_H

#include "memread.h"

/* A mem_reader over a live process (process_vm_readv). ctx is the pid cast to a pointer. */
void procmem__reader(struct mem_reader *mr, pid_t pid);

#endif
