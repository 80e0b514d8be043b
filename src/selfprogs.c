// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The tool's own BPF programs' run time, summed by name: see selfprogs.h. */
#include <stdio.h>
#include <string.h>
#include "selfprogs.h"

void selfprogs__begin(struct selfprogs *sp)
{
	for (unsigned i = 0; i < sp->nprogs; i++)
		sp->progs[i].seen = false;
}

/* The entry of name; past SELFPROGS_NAMES - 1 names, the last one's, "other". */
static struct selfprogs_name *name_of(struct selfprogs *sp, const char *name)
{
	unsigned i;

	for (;;) {
		for (i = 0; i < sp->nnames; i++)
			if (!strncmp(sp->names[i].name, name, SELFPROGS_NAME_LEN - 1))
				return &sp->names[i];
		if (sp->nnames < SELFPROGS_NAMES - 1 || !strcmp(name, "other"))
			break;
		name = "other";
	}
	snprintf(sp->names[i].name, sizeof(sp->names[i].name), "%s", name);
	sp->nnames++;
	return &sp->names[i];
}

void selfprogs__add(struct selfprogs *sp, uint32_t id, const char *name, uint64_t run_ns, uint64_t runs)
{
	struct selfprogs_prog *p = NULL;
	struct selfprogs_name *n;
	unsigned i;

	for (i = 0; i < sp->nprogs; i++)
		if (sp->progs[i].id == id) {
			p = &sp->progs[i];
			break;
		}
	if (p && p->seen)
		return;		/* another fd of the same program */
	if (!p) {
		if (sp->nprogs == SELFPROGS_MAX) {
			sp->dropped++;
			return;
		}
		p = &sp->progs[sp->nprogs++];
		*p = (struct selfprogs_prog){ .id = id };
	}
	p->seen = true;
	n = name_of(sp, name && *name ? name : "unnamed");
	n->ns += run_ns >= p->ns ? run_ns - p->ns : 0;
	n->runs += runs >= p->runs ? runs - p->runs : 0;
	p->ns = run_ns;
	p->runs = runs;
}

void selfprogs__end(struct selfprogs *sp)
{
	unsigned i, j;

	/* programs unloaded since the last read: forgotten, their runs up to it counted */
	for (i = j = 0; i < sp->nprogs; i++)
		if (sp->progs[i].seen)
			sp->progs[j++] = sp->progs[i];
	sp->nprogs = j;
}
