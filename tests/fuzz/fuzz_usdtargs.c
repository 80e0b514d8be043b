/* fuzz-sources: src/usdt.c */
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The USDT argument spec parser ("8@%rbx -4@-20(%rbp) 4@$5") on any string, as it comes from
 * the notes of a binary the traced process runs. Checks each parsed argument is one libbpf's
 * usdt.bpf.h can read: a size of 1, 2, 4 or 8 bytes and a register of struct pt_regs.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usdt.h"

#define MAX_ARGS 12	/* BPF_USDT_MAX_ARG_CNT */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usdt_arg args[MAX_ARGS];
	char *s = malloc(size + 1);
	int n;

	memcpy(s, data, size);
	s[size] = '\0';
	n = usdt__parse_args(s, args, MAX_ARGS);
	if (n > MAX_ARGS)
		abort();
	for (int i = 0; i < n; i++) {
		const struct usdt_arg *a = &args[i];

		if (a->bitshift != 0 && a->bitshift != 32 && a->bitshift != 48 && a->bitshift != 56)
			abort();
		if (a->type != USDT_ARG_CONST &&
		    (a->reg_off < 0 || a->reg_off > 160 || a->reg_off % 8))
			abort();
	}
	free(s);
	return 0;
}
