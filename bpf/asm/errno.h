/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* <bpf/usdt.bpf.h> includes <linux/errno.h>, whose <asm/errno.h> lives in the multiarch
 * directory the BPF target does not search: the generic numbers are the x86 and arm64 ones. */
#include <asm-generic/errno.h>
