// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* speedscope JSON writer: shared frame table, then one weighted sample per distinct stack. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "speedscope.h"
#include "stacks.h"
#include "util.h"

#define SPEEDSCOPE_SCHEMA "https://www.speedscope.app/file-format-schema.json"

/* interned frame pointer -> index in shared.frames */
struct frame_map {
	const char **keys;
	size_t *vals;
	size_t cap, n;
};

struct ss_ctx {
	FILE *f;
	struct frame_map map;
	size_t nstacks;
	const char *root;	/* per-thread profiles: only the stacks under this root, without it */
	const char **roots;	/* the distinct roots, in order of appearance */
	size_t nroots, roots_cap;
	uint64_t total;
};

static const char *const units[] = {
	"none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes",
};

int speedscope__json_string(FILE *f, const char *s, size_t len)
{
	return jsonw__quote(f, s, len);
}

static size_t ptr_hash(const char *p, size_t cap)
{
	uint64_t h = (uintptr_t)p * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 20) & (cap - 1);
}

static int map_grow(struct frame_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	const char **keys = calloc(cap, sizeof(*keys));
	size_t *vals = calloc(cap, sizeof(*vals));

	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (!m->keys[i])
			continue;
		for (j = ptr_hash(m->keys[i], cap); keys[j]; j = (j + 1) & (cap - 1))
			;
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = cap;
	return 0;
}

/* Index of frame p, or -1 after inserting it as a new one with the next index. */
static long map_get(struct frame_map *m, const char *p, bool insert)
{
	size_t j;

	for (j = ptr_hash(p, m->cap); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
		if (m->keys[j] == p)
			return (long)m->vals[j];
	}
	if (insert) {
		m->keys[j] = p;
		m->vals[j] = m->n++;
	}
	return -1;
}

static void write_frame(FILE *f, const char *frame)
{
	struct frame_parts p;

	frame__parse(frame, &p);
	fputs("{\"name\":", f);
	speedscope__json_string(f, p.name, p.name_len);
	if (p.file) {
		fputs(",\"file\":", f);
		speedscope__json_string(f, p.file, p.file_len);
	}
	if (p.has_line)
		fprintf(f, ",\"line\":%lu", p.line);
	fputc('}', f);
}

static int add_frames(void *ctx, const char *const *frames, size_t n, uint64_t weight)
{
	struct ss_ctx *c = ctx;
	int err;

	for (size_t i = 0; i < n; i++) {
		if ((c->map.n + 1) * 2 > c->map.cap && (err = map_grow(&c->map)))
			return err;
		if (map_get(&c->map, frames[i], true) < 0) {
			fputs(c->map.n > 1 ? ",\n" : "\n", c->f);
			write_frame(c->f, frames[i]);
		}
	}
	return 0;
}

static int write_sample(void *ctx, const char *const *frames, size_t n, uint64_t weight)
{
	struct ss_ctx *c = ctx;
	size_t first = c->root != NULL;

	if (c->root && (!n || frames[0] != c->root))
		return 0;
	if (first == n)
		first = 0;	/* a root alone: keep it, a sample needs a frame */
	fputs(c->nstacks++ ? ",\n[" : "\n[", c->f);
	for (size_t i = first; i < n; i++)
		fprintf(c->f, i > first ? ",%ld" : "%ld", map_get(&c->map, frames[i], false));
	fputc(']', c->f);
	return 0;
}

static int write_weight(void *ctx, const char *const *frames, size_t n, uint64_t weight)
{
	struct ss_ctx *c = ctx;

	if (c->root && (!n || frames[0] != c->root))
		return 0;
	fprintf(c->f, c->nstacks++ ? ",%llu" : "%llu", (unsigned long long)weight);
	return 0;
}

/* The distinct root frames (interned: one pointer each) and the weight under the current root. */
static int add_root(void *ctx, const char *const *frames, size_t n, uint64_t weight)
{
	struct ss_ctx *c = ctx;
	size_t i;

	if (!n)
		return 0;
	for (i = 0; i < c->nroots && c->roots[i] != frames[0]; i++)
		;
	if (i < c->nroots)
		return 0;
	if (c->nroots == c->roots_cap) {
		size_t cap = c->roots_cap ? c->roots_cap * 2 : 64;
		const char **r = realloc(c->roots, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		c->roots = r;
		c->roots_cap = cap;
	}
	c->roots[c->nroots++] = frames[0];
	return 0;
}

static int root_total(void *ctx, const char *const *frames, size_t n, uint64_t weight)
{
	struct ss_ctx *c = ctx;

	if (n && frames[0] == c->root)
		c->total += weight;
	return 0;
}

/* "[thread Worker-0 tid=12]" -> "Worker-0 tid=12" */
static void write_root_name(FILE *f, const char *root)
{
	size_t len = strlen(root);

	if (!strncmp(root, "[thread ", 8) && len > 9 && root[len - 1] == ']')
		speedscope__json_string(f, root + 8, len - 9);
	else
		speedscope__json_string(f, root, len);
}

/* Defaults for name and unit, the unit checked, the frame map started: what both writers do first. */
static int ss_begin(struct ss_ctx *c, const char **name, const char **unit)
{
	size_t i;

	if (!*name)
		*name = "pytrace-bpf";
	if (!*unit)
		*unit = "none";
	for (i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(*unit, units[i]) == 0)
			break;
	}
	if (i == ARRAY_SIZE(units))
		return -EINVAL;
	return map_grow(&c->map);
}

int speedscope__write_threads(const struct stack_agg *a, FILE *f, const char *name, const char *unit)
{
	struct ss_ctx c = { .f = f };
	size_t i;
	int err;

	err = ss_begin(&c, &name, &unit);
	if (err == -EINVAL)
		return err;
	if (!err)
		err = stack_agg__foreach(a, add_root, &c);
	if (err)
		goto cleanup;
	fprintf(f, "{\"$schema\":\"%s\",\n\"shared\":{\"frames\":[", SPEEDSCOPE_SCHEMA);
	err = stack_agg__foreach(a, add_frames, &c);
	if (err)
		goto cleanup;
	fputs("]},\n\"profiles\":[", f);
	for (i = 0; i < c.nroots; i++) {
		c.root = c.roots[i];
		c.total = 0;
		stack_agg__foreach(a, root_total, &c);
		fputs(i ? ",\n{\"type\":\"sampled\",\"name\":" : "{\"type\":\"sampled\",\"name\":", f);
		write_root_name(f, c.root);
		fprintf(f, ",\"unit\":\"%s\",\"startValue\":0,\"endValue\":%llu,\n\"samples\":[", unit,
			(unsigned long long)c.total);
		c.nstacks = 0;
		err = stack_agg__foreach(a, write_sample, &c);
		if (err)
			goto cleanup;
		fputs("],\n\"weights\":[", f);
		c.nstacks = 0;
		err = stack_agg__foreach(a, write_weight, &c);
		if (err)
			goto cleanup;
		fputs("]}", f);
	}
	fputs("],\n\"name\":", f);
	speedscope__json_string(f, name, strlen(name));
	fputs(",\"activeProfileIndex\":0,\"exporter\":\"pytrace-bpf\"}\n", f);
	if (fflush(f) || ferror(f))
		err = -EIO;
cleanup:
	free(c.roots);
	free(c.map.keys);
	free(c.map.vals);
	return err;
}

int speedscope__write(const struct stack_agg *a, FILE *f, const char *name, const char *unit)
{
	struct ss_ctx c = { .f = f };
	int err;

	err = ss_begin(&c, &name, &unit);
	if (err)
		return err;

	fprintf(f, "{\"$schema\":\"%s\",\n\"shared\":{\"frames\":[", SPEEDSCOPE_SCHEMA);
	err = stack_agg__foreach(a, add_frames, &c);
	if (err)
		goto cleanup;
	fputs("]},\n\"profiles\":[{\"type\":\"sampled\",\"name\":", f);
	speedscope__json_string(f, name, strlen(name));
	fprintf(f, ",\"unit\":\"%s\",\"startValue\":0,\"endValue\":%llu,\n\"samples\":[",
		unit, (unsigned long long)stack_agg__total(a));
	err = stack_agg__foreach(a, write_sample, &c);
	if (err)
		goto cleanup;
	fputs("],\n\"weights\":[", f);
	c.nstacks = 0;
	err = stack_agg__foreach(a, write_weight, &c);
	if (err)
		goto cleanup;
	fputs("]}],\n\"name\":", f);
	speedscope__json_string(f, name, strlen(name));
	fputs(",\"activeProfileIndex\":0,\"exporter\":\"pytrace-bpf\"}\n", f);
	if (fflush(f) || ferror(f))
		err = -EIO;
cleanup:
	free(c.map.keys);
	free(c.map.vals);
	return err;
}
