// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <pthread.h>
#include <stdlib.h>
#include <bpf/libbpf.h>
#include "links.h"

#define LINKS_THREADS	16

struct stripe {
	struct bpf_link ***links;	/* the caller's slots */
	size_t n, first, step;
};

static void *destroy_stripe(void *arg)
{
	const struct stripe *st = arg;

	for (size_t i = st->first; i < st->n; i += st->step) {
		bpf_link__destroy(*st->links[i]);
		*st->links[i] = NULL;
	}
	return NULL;
}

/* Destroy *slots[0..n) from up to LINKS_THREADS threads (in this one where a thread cannot start). */
static void destroy_slots(struct bpf_link ***slots, size_t n)
{
	pthread_t tids[LINKS_THREADS];
	struct stripe st[LINKS_THREADS];
	size_t k = n < LINKS_THREADS ? n : LINKS_THREADS, started = 0;

	for (size_t t = 0; t < k; t++) {
		st[t] = (struct stripe){ .links = slots, .n = n, .first = t, .step = k };
		if (k > 1 && !pthread_create(&tids[t], NULL, destroy_stripe, &st[t]))
			started++;
		else
			break;
	}
	for (size_t t = 0; t < started; t++)
		pthread_join(tids[t], NULL);
	for (size_t t = started; t < k; t++)
		destroy_stripe(&st[t]);
}

void links__destroy(struct bpf_link **links, size_t n)
{
	struct bpf_link **slots[64];
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		if (links[i])
			slots[m++] = &links[i];
		if (m == sizeof(slots) / sizeof(slots[0]) || (i + 1 == n && m)) {
			destroy_slots(slots, m);
			m = 0;
		}
	}
}

void links__detach_skeleton(struct bpf_object_skeleton *s)
{
	struct bpf_link **slots[64];
	size_t m = 0;

	if (!s)
		return;
	for (int i = 0; i < s->prog_cnt; i++) {
		struct bpf_prog_skeleton *p = (void *)((char *)s->progs + (size_t)i * s->prog_skel_sz);

		if (p->link && *p->link)
			slots[m++] = p->link;
		if (m == sizeof(slots) / sizeof(slots[0]) || (i + 1 == s->prog_cnt && m)) {
			destroy_slots(slots, m);
			m = 0;
		}
	}
}
