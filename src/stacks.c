// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Stack aggregation: interned frames, a hash of distinct stacks, folded text in and out. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "stacks.h"
#include "util.h"

/* An interned string; frames hand out pointers to s. */
struct istr {
	uint64_t hash;
	struct istr *fn;	/* this frame's function (itself for a function key) */
	uint32_t fn_id;		/* dense id, valid when fn == this */
	uint32_t len;		/* strlen(s), for comparisons that stay inside s */
	char s[];
};

struct stack {
	const char **frames;
	size_t nframes;
	uint64_t weight;
	uint64_t hash;
};

struct stack_agg {
	size_t max_stacks;
	struct istr **strs;	/* open addressing, power-of-two capacity */
	size_t str_cap, str_cnt;
	uint32_t nfuncs;
	struct stack *stacks;
	size_t nstacks, stacks_cap;
	size_t *slots;		/* stack index + 1, open addressing */
	size_t slot_cap;
	size_t overflow;	/* index + 1 of the overflow stack, 0 if none */
	uint64_t total, dropped;
};

#define istr_of(p) ((struct istr *)((char *)(p) - offsetof(struct istr, s)))

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h;
}

struct stack_agg *stack_agg__new(size_t max_stacks)
{
	struct stack_agg *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->max_stacks = max_stacks ? max_stacks : STACK_AGG_DEFAULT_MAX;
	return a;
}

static void release(struct stack_agg *a)
{
	for (size_t i = 0; i < a->str_cap; i++)
		free(a->strs[i]);
	for (size_t i = 0; i < a->nstacks; i++)
		free(a->stacks[i].frames);
	free(a->strs);
	free(a->stacks);
	free(a->slots);
}

void stack_agg__free(struct stack_agg *a)
{
	if (!a)
		return;
	release(a);
	free(a);
}

void stack_agg__clear(struct stack_agg *a)
{
	size_t max = a->max_stacks;

	release(a);
	memset(a, 0, sizeof(*a));
	a->max_stacks = max;
}

static int str_grow(struct stack_agg *a)
{
	size_t cap = a->str_cap ? a->str_cap * 2 : 256;
	struct istr **strs = calloc(cap, sizeof(*strs));

	if (!strs)
		return -ENOMEM;
	for (size_t i = 0; i < a->str_cap; i++) {
		struct istr *e = a->strs[i];
		size_t j;

		if (!e)
			continue;
		for (j = e->hash & (cap - 1); strs[j]; j = (j + 1) & (cap - 1))
			;
		strs[j] = e;
	}
	free(a->strs);
	a->strs = strs;
	a->str_cap = cap;
	return 0;
}

/* s[0..len) must already be sanitized */
static struct istr *intern(struct stack_agg *a, const char *s, size_t len)
{
	uint64_t h = hash64(s, len);
	struct istr *e;
	size_t j;

	if ((a->str_cnt + 1) * 2 > a->str_cap && str_grow(a))
		return NULL;
	for (j = h & (a->str_cap - 1); (e = a->strs[j]); j = (j + 1) & (a->str_cap - 1)) {
		if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0)
			return e;
	}
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return NULL;
	e->hash = h;
	e->fn = NULL;
	e->fn_id = 0;
	e->len = len;
	memcpy(e->s, s, len);
	e->s[len] = '\0';
	a->strs[j] = e;
	a->str_cnt++;
	return e;
}

/* Length of the function key of a frame: "f (a.py:12)" -> "f (a.py" (")" appended later). */
static size_t func_key_len(const char *s, size_t len, bool *strip)
{
	struct frame_parts p;

	*strip = false;
	frame__parse(s, &p);
	if (!p.has_line)
		return len;
	*strip = true;
	return (size_t)(p.file + p.file_len - s);
}

static struct istr *intern_frame(struct stack_agg *a, const char *frame)
{
	size_t len = strlen(frame), klen;
	struct istr *e, *fn;
	char *buf = NULL;
	bool strip;

	if (strpbrk(frame, ";\r\n")) {
		buf = strdup(frame);
		if (!buf)
			return NULL;
		for (char *p = buf; *p; p++) {
			if (*p == ';')
				*p = ':';
			else if (*p == '\r' || *p == '\n')
				*p = ' ';
		}
		frame = buf;
	}
	e = intern(a, frame, len);
	if (!e || e->fn)
		goto out;

	klen = func_key_len(frame, len, &strip);
	if (strip) {
		char *key = malloc(klen + 2);

		if (!key) {
			e = NULL;
			goto out;
		}
		memcpy(key, frame, klen);
		memcpy(key + klen, ")", 2);
		fn = intern(a, key, klen + 1);
		free(key);
	} else {
		fn = e;
	}
	if (!fn) {
		e = NULL;
		goto out;
	}
	if (!fn->fn) {
		fn->fn = fn;
		fn->fn_id = a->nfuncs++;
	}
	e->fn = fn;
out:
	free(buf);
	return e;
}

static int slots_grow(struct stack_agg *a)
{
	size_t cap = a->slot_cap ? a->slot_cap * 2 : 256;
	size_t *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < a->nstacks; i++) {
		size_t j;

		for (j = a->stacks[i].hash & (cap - 1); slots[j]; j = (j + 1) & (cap - 1))
			;
		slots[j] = i + 1;
	}
	free(a->slots);
	a->slots = slots;
	a->slot_cap = cap;
	return 0;
}

/* Appends a stack that takes ownership of frames; returns its index + 1, or 0. */
static size_t stack_append(struct stack_agg *a, const char **frames, size_t n, uint64_t h, size_t slot)
{
	if (a->nstacks == a->stacks_cap) {
		size_t cap = a->stacks_cap ? a->stacks_cap * 2 : 256;
		struct stack *st = realloc(a->stacks, cap * sizeof(*st));

		if (!st)
			return 0;
		a->stacks = st;
		a->stacks_cap = cap;
	}
	a->stacks[a->nstacks] = (struct stack){ .frames = frames, .nframes = n, .hash = h };
	a->slots[slot] = ++a->nstacks;
	return a->nstacks;
}

/* Index + 1 of the stack of interned frames fr, or 0 with *slot set to where it would go. */
static size_t stack_find(const struct stack_agg *a, const char **fr, size_t n, uint64_t h, size_t *slot)
{
	size_t j, idx;

	for (j = h & (a->slot_cap - 1); (idx = a->slots[j]); j = (j + 1) & (a->slot_cap - 1)) {
		const struct stack *st = &a->stacks[idx - 1];

		if (st->hash == h && st->nframes == n && memcmp(st->frames, fr, n * sizeof(*fr)) == 0)
			return idx;
	}
	*slot = j;
	return 0;
}

/* Interns frames into fr[]; returns the stack hash through *h. */
static int intern_stack(struct stack_agg *a, const char *const *frames, size_t n, const char **fr, uint64_t *h)
{
	*h = 0;
	for (size_t i = 0; i < n; i++) {
		struct istr *e;

		if (!frames[i])
			return -EINVAL;
		e = intern_frame(a, frames[i]);
		if (!e)
			return -ENOMEM;
		fr[i] = e->s;
		*h = mix(*h, e->hash);
	}
	*h = mix(*h, n);
	return 0;
}

/* Finds or creates the stack; capped: a new stack beyond max_stacks is not created (returns 0). */
static int stack_get(struct stack_agg *a, const char *const *frames, size_t n, bool capped, size_t *idx)
{
	const char **fr, *buf[64];
	size_t slot = 0;
	uint64_t h;
	int err;

	fr = n <= ARRAY_SIZE(buf) ? buf : malloc(n * sizeof(*fr));
	if (!fr)
		return -ENOMEM;
	err = intern_stack(a, frames, n, fr, &h);
	if (err)
		goto cleanup;
	if ((a->nstacks + 1) * 2 > a->slot_cap && (err = slots_grow(a)))
		goto cleanup;
	*idx = stack_find(a, fr, n, h, &slot);
	if (*idx || (capped && a->nstacks - !!a->overflow >= a->max_stacks))
		goto cleanup;
	if (fr == buf) {
		fr = malloc(n * sizeof(*fr));
		if (!fr)
			return -ENOMEM;
		memcpy(fr, buf, n * sizeof(*fr));
	}
	*idx = stack_append(a, fr, n, h, slot);
	if (!*idx)
		err = -ENOMEM;
	else
		fr = NULL;
cleanup:
	if (fr != buf)
		free(fr);
	return err;
}

/* In an id: the weight goes to the overflow stack because the cap turned the stack away. */
#define ID_DIVERTED ((size_t)1 << (sizeof(size_t) * 8 - 1))

int stack_agg__add_get_id(struct stack_agg *a, const char *const *frames, size_t nframes, uint64_t weight,
			  size_t *id)
{
	static const char *const drop[] = { STACK_AGG_DROPPED_FRAME };
	size_t idx = 0;
	int err;

	if (id)
		*id = 0;
	if (!a || !frames || !nframes)
		return -EINVAL;
	err = stack_get(a, frames, nframes, true, &idx);
	if (err)
		return err;
	if (!idx) {
		if (!a->overflow) {
			err = stack_get(a, drop, 1, false, &a->overflow);
			if (err)
				return err;
		}
		idx = a->overflow | ID_DIVERTED;
	}
	if (id)
		*id = idx;
	return stack_agg__add_id(a, idx, weight);
}

int stack_agg__add(struct stack_agg *a, const char *const *frames, size_t nframes, uint64_t weight)
{
	return stack_agg__add_get_id(a, frames, nframes, weight, NULL);
}

int stack_agg__add_id(struct stack_agg *a, size_t id, uint64_t weight)
{
	size_t idx = id & ~ID_DIVERTED;
	int err = 0;

	if (!a || !idx || idx > a->nstacks)
		return -EINVAL;
	if (id & ID_DIVERTED) {
		a->dropped += weight;
		err = -E2BIG;
	}
	a->stacks[idx - 1].weight += weight;
	a->total += weight;
	return err;
}

size_t stack_agg__count(const struct stack_agg *a)
{
	return a->nstacks;
}

uint64_t stack_agg__total(const struct stack_agg *a)
{
	return a->total;
}

uint64_t stack_agg__dropped(const struct stack_agg *a)
{
	return a->dropped;
}

/* Next byte of the folded form, ';' between frames, -1 at the end. */
static int fold_next(const struct stack *s, size_t *i, const char **p)
{
	if (**p)
		return (unsigned char)*(*p)++;
	if (*i + 1 >= s->nframes)
		return -1;
	*p = s->frames[++*i];
	return ';';
}

/*
 * The folded forms' order (byte by byte, ';' between frames), without going through the frames
 * the two stacks share: frames are interned, so a frame at the same depth is the same string
 * exactly when it is the same pointer. Stacks of one service share most of their outer frames:
 * the report windows' sort compared them byte by byte, a tenth of the collector's CPU.
 */
static int fold_cmp(const void *x, const void *y)
{
	const struct stack *s = *(const struct stack *const *)x, *t = *(const struct stack *const *)y;
	size_t k = 0, n = s->nframes < t->nframes ? s->nframes : t->nframes, i, j;
	const char *p, *q;

	while (k < n && s->frames[k] == t->frames[k])
		k++;
	if (k == s->nframes && k == t->nframes)
		return 0;
	if (k) {	/* from the end of the last frame in common: ';', or the end, next */
		i = j = k - 1;
		p = q = s->frames[k - 1] + strlen(s->frames[k - 1]);
	} else {
		i = j = 0;
		p = s->frames[0];
		q = t->frames[0];
	}

	for (;;) {
		int c = fold_next(s, &i, &p), d = fold_next(t, &j, &q);

		if (c != d)
			return c < d ? -1 : 1;
		if (c < 0)
			return 0;
	}
}

int stack_agg__foreach(const struct stack_agg *a, stack_agg_visit_fn fn, void *ctx)
{
	const struct stack **order;
	size_t n = 0;
	int err = 0;

	if (!a->nstacks)
		return 0;
	order = malloc(a->nstacks * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < a->nstacks; i++)
		if (a->stacks[i].weight)	/* created before its weight came (--idle) */
			order[n++] = &a->stacks[i];
	qsort(order, n, sizeof(*order), fold_cmp);
	for (size_t i = 0; i < n && !err; i++)
		err = fn(ctx, order[i]->frames, order[i]->nframes, order[i]->weight);
	free(order);
	return err;
}

static int write_folded_one(void *ctx, const char *const *frames, size_t n, uint64_t weight)
{
	FILE *f = ctx;

	for (size_t i = 0; i < n; i++) {
		if ((i && fputc(';', f) == EOF) || fputs(frames[i], f) == EOF)
			return -EIO;
	}
	return fprintf(f, " %llu\n", (unsigned long long)weight) < 0 ? -EIO : 0;
}

int stack_agg__write_folded(const struct stack_agg *a, FILE *f)
{
	int err = stack_agg__foreach(a, write_folded_one, f);

	if (!err && fflush(f))
		err = -errno;
	return err;
}

int stack_agg__read_folded(struct stack_agg *a, FILE *f)
{
	const char **frames = NULL;
	size_t cap = 0, lcap = 0, n;
	char *line = NULL, *sp, *end, *p;
	unsigned long long cnt;
	int err = 0, e;
	ssize_t len;

	while ((len = getline(&line, &lcap, f)) >= 0) {
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (!len || line[0] == '#')
			continue;
		sp = strrchr(line, ' ');
		if (!sp || sp == line || sp[1] < '0' || sp[1] > '9') {
			err = -EINVAL;
			break;
		}
		errno = 0;
		cnt = strtoull(sp + 1, &end, 10);
		if (*end || errno) {
			err = -EINVAL;
			break;
		}
		*sp = '\0';
		n = 0;
		for (p = line;; p++) {
			char *semi = strchr(p, ';');

			if (n == cap) {
				const char **nf = realloc(frames, (cap = cap ? cap * 2 : 64) * sizeof(*nf));

				if (!nf) {
					err = -ENOMEM;
					goto cleanup;
				}
				frames = nf;
			}
			frames[n++] = p;
			if (!semi)
				break;
			*semi = '\0';
			p = semi;
		}
		e = stack_agg__add(a, frames, n, cnt);
		if (e == -E2BIG)
			err = e;
		else if (e) {
			err = e;
			break;
		}
	}
	if (!err && ferror(f))
		err = -EIO;
cleanup:
	free(frames);
	free(line);
	return err;
}

static int fn_cmp_self(const void *x, const void *y)
{
	const struct stack_agg_fn *s = x, *t = y;

	if (s->self != t->self)
		return s->self > t->self ? -1 : 1;
	if (s->total != t->total)
		return s->total > t->total ? -1 : 1;
	return strcmp(s->frame, t->frame);
}

static int fn_cmp_total(const void *x, const void *y)
{
	const struct stack_agg_fn *s = x, *t = y;

	if (s->total != t->total)
		return s->total > t->total ? -1 : 1;
	if (s->self != t->self)
		return s->self > t->self ? -1 : 1;
	return strcmp(s->frame, t->frame);
}

int stack_agg__top_functions(const struct stack_agg *a, struct stack_agg_fn *out, size_t max, bool by_self)
{
	struct stack_agg_fn *fns;
	size_t *seen, n = 0;

	if (!a->nfuncs || !max)
		return 0;
	fns = calloc(a->nfuncs, sizeof(*fns));
	seen = calloc(a->nfuncs, sizeof(*seen));
	if (!fns || !seen) {
		free(fns);
		free(seen);
		return -ENOMEM;
	}
	for (size_t i = 0; i < a->nstacks; i++) {
		const struct stack *st = &a->stacks[i];
		struct istr *fn;

		for (size_t k = 0; k < st->nframes; k++) {
			fn = istr_of(st->frames[k])->fn;
			fns[fn->fn_id].frame = fn->s;
			if (seen[fn->fn_id] != i + 1) {
				seen[fn->fn_id] = i + 1;
				fns[fn->fn_id].total += st->weight;
			}
		}
		fn = istr_of(st->frames[st->nframes - 1])->fn;
		fns[fn->fn_id].self += st->weight;
	}
	/* keys interned by a failed add belong to no stack */
	for (size_t i = 0; i < a->nfuncs; i++) {
		if (fns[i].frame && fns[i].total)
			fns[n++] = fns[i];
	}
	qsort(fns, n, sizeof(*fns), by_self ? fn_cmp_self : fn_cmp_total);
	if (n > max)
		n = max;
	memcpy(out, fns, n * sizeof(*fns));
	free(fns);
	free(seen);
	return (int)n;
}

void frame__parse(const char *frame, struct frame_parts *p)
{
	size_t len = strlen(frame);
	const char *open = NULL, *colon, *d;

	*p = (struct frame_parts){ .name = frame, .name_len = len };
	if (frame[0] == '[' || len < 4 || frame[len - 1] != ')')
		return;
	/* qualnames have no spaces, paths might: the first " (" starts the location */
	open = strstr(frame, " (");
	if (open)
		open++;
	if (!open || open + 1 == frame + len - 1)
		return;
	p->name_len = (size_t)(open - 1 - frame);
	p->file = open + 1;
	p->file_len = (size_t)(frame + len - 1 - p->file);
	colon = memrchr(p->file, ':', p->file_len);
	if (!colon || colon + 1 == frame + len - 1 || colon == p->file)
		return;
	for (d = colon + 1; d < frame + len - 1; d++) {
		if (*d < '0' || *d > '9')
			return;
	}
	p->line = strtoul(colon + 1, NULL, 10);
	p->has_line = true;
	p->file_len = (size_t)(colon - p->file);
}
