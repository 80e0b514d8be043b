// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* pprof writer: interned strings, functions and locations; protobuf-c encoding; gzip by zlib. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "hash.h"
#include "pprof.h"
#include "profile.pb-c.h"
#include "stacks.h"

struct loc { uint64_t fn; int64_t line; };
struct fn { int64_t name, file; };
struct sample { uint64_t *ids; size_t n; int64_t count; };

/* open addressing over indices + 1; eq(ctx, idx) says whether entry idx is the key */
struct itab { uint32_t *slot; size_t size, used; };

struct pprof {
	struct pprof_opts o;
	char **str;
	size_t nstr, capstr;
	struct itab strtab;
	struct fn *fn;
	size_t nfn, capfn;
	struct itab fntab;
	struct loc *loc;
	size_t nloc, caploc;
	struct itab loctab;
	struct sample *smp;
	size_t nsmp, capsmp;
	int64_t i_samples, i_count, i_cpu, i_ns, i_comment;
};

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	p = realloc(*arr, c * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

/* Finds key (hash h); *found set; returns the slot to fill when not found. */
static uint32_t *itab_find(struct itab *t, uint64_t h, bool (*eq)(const struct pprof *, uint32_t, const void *),
			   const struct pprof *p, const void *key, bool *found)
{
	size_t j;

	for (j = h & (t->size - 1); t->slot[j]; j = (j + 1) & (t->size - 1)) {
		if (eq(p, t->slot[j] - 1, key)) {
			*found = true;
			return &t->slot[j];
		}
	}
	*found = false;
	return &t->slot[j];
}

/* rehash needs each entry's hash: recomputed by hfn */
static int itab_reserve(struct itab *t, uint64_t (*hfn)(const struct pprof *, uint32_t), const struct pprof *p)
{
	size_t size;
	uint32_t *s;

	if ((t->used + 1) * 2 <= t->size)
		return 0;
	size = t->size ? t->size * 2 : 64;
	s = calloc(size, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < t->size; i++) {
		size_t j;

		if (!t->slot[i])
			continue;
		for (j = hfn(p, t->slot[i] - 1) & (size - 1); s[j]; j = (j + 1) & (size - 1))
			;
		s[j] = t->slot[i];
	}
	free(t->slot);
	t->slot = s;
	t->size = size;
	return 0;
}

struct strkey { const char *s; size_t len; };

static bool str_eq(const struct pprof *p, uint32_t i, const void *k)
{
	const struct strkey *key = k;

	return !strncmp(p->str[i], key->s, key->len) && p->str[i][key->len] == '\0';
}

static uint64_t str_hash(const struct pprof *p, uint32_t i)
{
	return hash64(p->str[i], strlen(p->str[i]));
}

/* string index, or -ENOMEM */
static int64_t intern(struct pprof *p, const char *s, size_t len)
{
	struct strkey key = { s, len };
	uint64_t h = hash64(s, len);
	uint32_t *slot;
	bool found;
	char *copy;

	if (itab_reserve(&p->strtab, str_hash, p) || grow((void **)&p->str, &p->capstr, p->nstr + 1, sizeof(char *)))
		return -ENOMEM;
	slot = itab_find(&p->strtab, h, str_eq, p, &key, &found);
	if (found)
		return *slot - 1;
	copy = strndup(s, len);
	if (!copy)
		return -ENOMEM;
	p->str[p->nstr] = copy;
	*slot = (uint32_t)++p->nstr;
	p->strtab.used++;
	return (int64_t)p->nstr - 1;
}

static bool fn_eq(const struct pprof *p, uint32_t i, const void *k)
{
	const struct fn *key = k;

	return p->fn[i].name == key->name && p->fn[i].file == key->file;
}

static uint64_t fn_hash_key(const struct fn *f)
{
	return hash64_mix((uint64_t)f->name * 0x9e3779b97f4a7c15ULL ^ (uint64_t)f->file);
}

static uint64_t fn_hash(const struct pprof *p, uint32_t i)
{
	return fn_hash_key(&p->fn[i]);
}

static bool loc_eq(const struct pprof *p, uint32_t i, const void *k)
{
	const struct loc *key = k;

	return p->loc[i].fn == key->fn && p->loc[i].line == key->line;
}

static uint64_t loc_hash_key(const struct loc *l)
{
	return hash64_mix(l->fn * 0x9e3779b97f4a7c15ULL ^ (uint64_t)l->line);
}

static uint64_t loc_hash(const struct pprof *p, uint32_t i)
{
	return loc_hash_key(&p->loc[i]);
}

/* location id (>= 1) of a frame, or 0 on ENOMEM */
static uint64_t frame_location(struct pprof *p, const char *frame)
{
	struct frame_parts fp;
	struct fn fk;
	struct loc lk;
	uint32_t *slot;
	bool found;

	frame__parse(frame, &fp);
	fk.name = intern(p, fp.name, fp.name_len);
	fk.file = fp.file ? intern(p, fp.file, fp.file_len) : 0;
	if (fk.name < 0 || fk.file < 0)
		return 0;
	if (itab_reserve(&p->fntab, fn_hash, p) || grow((void **)&p->fn, &p->capfn, p->nfn + 1, sizeof(*p->fn)))
		return 0;
	slot = itab_find(&p->fntab, fn_hash_key(&fk), fn_eq, p, &fk, &found);
	if (!found) {
		p->fn[p->nfn] = fk;
		*slot = (uint32_t)++p->nfn;
		p->fntab.used++;
	}
	lk.fn = *slot;	/* function id = index + 1 */
	lk.line = fp.has_line ? (int64_t)fp.line : 0;
	if (itab_reserve(&p->loctab, loc_hash, p) || grow((void **)&p->loc, &p->caploc, p->nloc + 1, sizeof(*p->loc)))
		return 0;
	slot = itab_find(&p->loctab, loc_hash_key(&lk), loc_eq, p, &lk, &found);
	if (!found) {
		p->loc[p->nloc] = lk;
		*slot = (uint32_t)++p->nloc;
		p->loctab.used++;
	}
	return *slot;
}

struct pprof *pprof__new(const struct pprof_opts *o)
{
	struct pprof *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (o)
		p->o = *o;
	if (intern(p, "", 0) != 0)
		goto fail;
	p->i_samples = intern(p, p->o.sample_type ? p->o.sample_type : "samples",
			      strlen(p->o.sample_type ? p->o.sample_type : "samples"));
	p->i_count = intern(p, p->o.sample_unit ? p->o.sample_unit : "count",
			    strlen(p->o.sample_unit ? p->o.sample_unit : "count"));
	p->i_cpu = intern(p, "cpu", 3);
	p->i_ns = intern(p, "nanoseconds", 11);
	p->i_comment = p->o.comment ? intern(p, p->o.comment, strlen(p->o.comment)) : 0;
	if (p->i_samples < 0 || p->i_count < 0 || p->i_cpu < 0 || p->i_ns < 0 || p->i_comment < 0)
		goto fail;
	p->o.sample_type = p->o.sample_unit = p->o.comment = NULL;	/* interned; not kept */
	return p;
fail:
	pprof__free(p);
	return NULL;
}

void pprof__free(struct pprof *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nstr; i++)
		free(p->str[i]);
	for (size_t i = 0; i < p->nsmp; i++)
		free(p->smp[i].ids);
	free(p->str);
	free(p->strtab.slot);
	free(p->fn);
	free(p->fntab.slot);
	free(p->loc);
	free(p->loctab.slot);
	free(p->smp);
	free(p);
}

int pprof__add(struct pprof *p, const char *const *frames, size_t nframes, uint64_t count)
{
	struct sample *s;

	if (!p || !frames || !nframes)
		return -EINVAL;
	if (grow((void **)&p->smp, &p->capsmp, p->nsmp + 1, sizeof(*p->smp)))
		return -ENOMEM;
	s = &p->smp[p->nsmp];
	s->ids = malloc(nframes * sizeof(uint64_t));
	if (!s->ids)
		return -ENOMEM;
	for (size_t i = 0; i < nframes; i++) {
		/* pprof wants the leaf first */
		s->ids[nframes - 1 - i] = frame_location(p, frames[i]);
		if (!s->ids[nframes - 1 - i]) {
			free(s->ids);
			return -ENOMEM;
		}
	}
	s->n = nframes;
	s->count = count > INT64_MAX ? INT64_MAX : (int64_t)count;
	p->nsmp++;
	return 0;
}

static int add_visit(void *ctx, const char *const *frames, size_t nframes, uint64_t weight)
{
	return nframes ? pprof__add(ctx, frames, nframes, weight) : 0;
}

int pprof__add_stacks(struct pprof *p, const struct stack_agg *a)
{
	return stack_agg__foreach(a, add_visit, p);
}

size_t pprof__nsamples(const struct pprof *p) { return p->nsmp; }
size_t pprof__nfunctions(const struct pprof *p) { return p->nfn; }
size_t pprof__nlocations(const struct pprof *p) { return p->nloc; }

int pprof__encode(struct pprof *p, uint8_t **out, size_t *len)
{
	Perftools__Profiles__Profile prof = PERFTOOLS__PROFILES__PROFILE__INIT;
	Perftools__Profiles__ValueType vt[2] = { PERFTOOLS__PROFILES__VALUE_TYPE__INIT,
						 PERFTOOLS__PROFILES__VALUE_TYPE__INIT };
	Perftools__Profiles__ValueType period = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	Perftools__Profiles__ValueType *vtp[2] = { &vt[0], &vt[1] };
	Perftools__Profiles__Mapping map = PERFTOOLS__PROFILES__MAPPING__INIT, *mapp = &map;
	Perftools__Profiles__Sample *smp = NULL, **smpp = NULL;
	Perftools__Profiles__Location *loc = NULL, **locp = NULL;
	Perftools__Profiles__Line *line = NULL, **linep = NULL;
	Perftools__Profiles__Function *fn = NULL, **fnp = NULL;
	int64_t *values = NULL;
	bool cpu = p->o.period_ns > 0;
	size_t nv = cpu ? 2 : 1;
	int err = -ENOMEM;

	*out = NULL;
	*len = 0;
	smp = calloc(p->nsmp + 1, sizeof(*smp));
	smpp = calloc(p->nsmp + 1, sizeof(*smpp));
	values = calloc(p->nsmp * nv + 1, sizeof(*values));
	loc = calloc(p->nloc + 1, sizeof(*loc));
	locp = calloc(p->nloc + 1, sizeof(*locp));
	line = calloc(p->nloc + 1, sizeof(*line));
	linep = calloc(p->nloc + 1, sizeof(*linep));
	fn = calloc(p->nfn + 1, sizeof(*fn));
	fnp = calloc(p->nfn + 1, sizeof(*fnp));
	if (!smp || !smpp || !values || !loc || !locp || !line || !linep || !fn || !fnp)
		goto out;

	vt[0].type = p->i_samples;
	vt[0].unit = p->i_count;
	vt[1].type = p->i_cpu;
	vt[1].unit = p->i_ns;
	prof.n_sample_type = nv;
	prof.sample_type = vtp;
	if (cpu) {
		period.type = p->i_cpu;
		period.unit = p->i_ns;
		prof.period_type = &period;
		prof.period = p->o.period_ns;
	}
	/* one mapping that says the profile is already symbolized, so pprof does not try to */
	map.id = 1;
	map.has_functions = map.has_filenames = map.has_line_numbers = 1;
	prof.n_mapping = 1;
	prof.mapping = &mapp;

	for (size_t i = 0; i < p->nsmp; i++) {
		perftools__profiles__sample__init(&smp[i]);
		smp[i].n_location_id = p->smp[i].n;
		smp[i].location_id = p->smp[i].ids;
		smp[i].n_value = nv;
		smp[i].value = &values[i * nv];
		values[i * nv] = p->smp[i].count;
		if (cpu)
			values[i * nv + 1] = p->smp[i].count * p->o.period_ns;
		smpp[i] = &smp[i];
	}
	for (size_t i = 0; i < p->nloc; i++) {
		perftools__profiles__location__init(&loc[i]);
		perftools__profiles__line__init(&line[i]);
		line[i].function_id = p->loc[i].fn;
		line[i].line = p->loc[i].line;
		linep[i] = &line[i];
		loc[i].id = i + 1;
		loc[i].mapping_id = 1;
		loc[i].n_line = 1;
		loc[i].line = &linep[i];
		locp[i] = &loc[i];
	}
	for (size_t i = 0; i < p->nfn; i++) {
		perftools__profiles__function__init(&fn[i]);
		fn[i].id = i + 1;
		/* no system_name: pprof then takes name as already demangled and keeps <module>, (*), <> */
		fn[i].name = p->fn[i].name;
		fn[i].filename = p->fn[i].file;
		fnp[i] = &fn[i];
	}
	prof.n_sample = p->nsmp;
	prof.sample = smpp;
	prof.n_location = p->nloc;
	prof.location = locp;
	prof.n_function = p->nfn;
	prof.function = fnp;
	prof.n_string_table = p->nstr;
	prof.string_table = p->str;
	prof.time_nanos = p->o.time_nanos;
	prof.duration_nanos = p->o.duration_nanos;
	if (p->i_comment) {
		prof.n_comment = 1;
		prof.comment = &p->i_comment;
	}
	*len = perftools__profiles__profile__get_packed_size(&prof);
	*out = malloc(*len ? *len : 1);
	if (!*out)
		goto out;
	perftools__profiles__profile__pack(&prof, *out);
	err = 0;
out:
	free(smp);
	free(smpp);
	free(values);
	free(loc);
	free(locp);
	free(line);
	free(linep);
	free(fn);
	free(fnp);
	return err;
}

int pprof__write_mem(struct pprof *p, struct membuf *b)
{
	uint8_t *raw, chunk[16384];
	size_t len;
	z_stream z;
	int err, zr;

	err = pprof__encode(p, &raw, &len);
	if (err)
		return err;
	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip wrapper, which is what pprof expects */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(raw);
		return -ENOMEM;
	}
	z.next_in = raw;
	z.avail_in = (uInt)len;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		zr = deflate(&z, Z_FINISH);
		if (zr == Z_STREAM_ERROR) {
			err = -EIO;
			break;
		}
		err = membuf__append(b, chunk, sizeof(chunk) - z.avail_out);
	} while (!err && zr != Z_STREAM_END);
	deflateEnd(&z);
	free(raw);
	return err;
}

int pprof__write_file(struct pprof *p, FILE *f)
{
	struct membuf b;
	int err;

	membuf__init(&b, 0);
	err = pprof__write_mem(p, &b);
	if (!err && b.len && fwrite(b.data, 1, b.len, f) != b.len)
		err = -EIO;
	if (!err && fflush(f))
		err = -EIO;
	membuf__free(&b);
	return err;
}
