// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Metrics registry with caps, and its exposition as Prometheus text 0.0.4 or OpenMetrics 1.0. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hash.h"
#include "promtext.h"
#include "stacks.h"

const double prom_buckets_http_server_duration[14] = {
	0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
};
const double prom_buckets_db_client_duration[9] = {
	0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10,
};

struct prom_series {
	struct prom_family *fam;
	struct prom_series *next;	/* creation order */
	uint64_t hash;
	double value;			/* counter, gauge */
	double sum;			/* histogram */
	uint64_t count;
	uint64_t *bucket;		/* histogram: nbuckets + 1 (the last is +Inf), not cumulative */
	const char *val[PROM_MAX_LABELS];
	size_t keylen;
	char key[];			/* the values, each NUL-terminated */
};

struct prom_family {
	struct prom_registry *reg;
	struct prom_family *next;
	char *name, *help, *unit;
	enum prom_type type;
	size_t nlabels;
	char *labels[PROM_MAX_LABELS];
	size_t nbuckets;
	double buckets[PROM_MAX_BUCKETS];
	size_t max_series, nseries;
	struct prom_series **table;	/* open addressing, power of two */
	size_t table_size;
	struct prom_series *first, *last, *overflow;
	uint64_t dropped;
};

struct prom_registry {
	pthread_mutex_t lock;
	struct prom_family *first, *last;
};

static bool name_char(char c, bool first, bool colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (colon && c == ':')
		return true;
	return !first && c >= '0' && c <= '9';
}

bool prom__valid_metric_name(const char *s)
{
	if (!s || !*s)
		return false;
	for (size_t i = 0; s[i]; i++)
		if (!name_char(s[i], i == 0, true))
			return false;
	return true;
}

bool prom__valid_label_name(const char *s)
{
	if (!s || !*s || !strncmp(s, "__", 2))
		return false;
	for (size_t i = 0; s[i]; i++)
		if (!name_char(s[i], i == 0, false))
			return false;
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

struct prom_registry *prom_registry__new(void)
{
	struct prom_registry *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

static void family_free(struct prom_family *f)
{
	struct prom_series *s, *n;

	for (s = f->first; s; s = n) {
		n = s->next;
		free(s->bucket);
		free(s);
	}
	for (size_t i = 0; i < f->nlabels; i++)
		free(f->labels[i]);
	free(f->table);
	free(f->name);
	free(f->help);
	free(f->unit);
	free(f);
}

void prom_registry__free(struct prom_registry *r)
{
	struct prom_family *f, *n;

	if (!r)
		return;
	for (f = r->first; f; f = n) {
		n = f->next;
		family_free(f);
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static int check_opts(const struct prom_family_opts *o, char *base, size_t basesize)
{
	size_t n;

	if (!o || !prom__valid_metric_name(o->name) || o->nlabels > PROM_MAX_LABELS ||
	    (o->nlabels && !o->labels) || o->type > PROM_HISTOGRAM)
		return -EINVAL;
	n = strlen(o->name);
	if (n >= basesize)
		return -EINVAL;
	memcpy(base, o->name, n + 1);
	if (o->type == PROM_COUNTER && ends_with(base, "_total")) {
		base[n - 6] = '\0';
		if (!prom__valid_metric_name(base))
			return -EINVAL;
	}
	if (!strcmp(base, PROM_DROPPED_FAMILY))
		return -EEXIST;
	if (o->unit) {
		char suffix[64];

		if (!*o->unit || strlen(o->unit) > 48 || !prom__valid_label_name(o->unit))
			return -EINVAL;
		snprintf(suffix, sizeof(suffix), "_%s", o->unit);
		if (!ends_with(base, suffix))
			return -EINVAL;
	}
	for (size_t i = 0; i < o->nlabels; i++) {
		if (!prom__valid_label_name(o->labels[i]))
			return -EINVAL;
		if (o->type == PROM_HISTOGRAM && !strcmp(o->labels[i], "le"))
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(o->labels[i], o->labels[j]))
				return -EINVAL;
	}
	if (o->type == PROM_HISTOGRAM) {
		if (!o->buckets || !o->nbuckets || o->nbuckets > PROM_MAX_BUCKETS)
			return -EINVAL;
		for (size_t i = 0; i < o->nbuckets; i++)
			if (!isfinite(o->buckets[i]) || (i && o->buckets[i] <= o->buckets[i - 1]))
				return -EINVAL;
	}
	return 0;
}

struct prom_family *prom_registry__family(struct prom_registry *r, const struct prom_family_opts *o)
{
	struct prom_family *f = NULL, *g;
	char base[256];
	int err;

	if (!r) {
		errno = EINVAL;
		return NULL;
	}
	err = check_opts(o, base, sizeof(base));
	if (err) {
		errno = -err;
		return NULL;
	}
	pthread_mutex_lock(&r->lock);
	for (g = r->first; g; g = g->next) {
		if (!strcmp(g->name, base)) {
			err = -EEXIST;
			goto out;
		}
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		goto nomem;
	f->reg = r;
	f->type = o->type;
	f->name = strdup(base);
	f->help = o->help ? strdup(o->help) : strdup(base);
	f->unit = o->unit ? strdup(o->unit) : NULL;
	if (!f->name || !f->help || (o->unit && !f->unit))
		goto nomem;
	f->nlabels = o->nlabels;
	for (size_t i = 0; i < o->nlabels; i++)
		if (!(f->labels[i] = strdup(o->labels[i])))
			goto nomem;
	if (o->type == PROM_HISTOGRAM) {
		f->nbuckets = o->nbuckets;
		memcpy(f->buckets, o->buckets, o->nbuckets * sizeof(double));
	}
	f->max_series = o->max_series ? o->max_series : PROM_DEFAULT_MAX_SERIES;
	if (r->last)
		r->last->next = f;
	else
		r->first = f;
	r->last = f;
	pthread_mutex_unlock(&r->lock);
	return f;
nomem:
	err = -ENOMEM;
	if (f)
		family_free(f);
	f = NULL;
out:
	pthread_mutex_unlock(&r->lock);
	errno = -err;
	return NULL;
}

/* s cut to PROM_MAX_VALUE_LEN bytes at a code point, invalid UTF-8 as U+FFFD; returns the length */
static size_t sanitize(const char *s, char *out)
{
	size_t len = strlen(s), o = 0, n;
	uint32_t cp;

	while (len) {
		n = utf8_next(s, len, &cp);
		if (cp == 0xFFFD) {
			if (o + 3 > PROM_MAX_VALUE_LEN)
				break;
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
		} else {
			if (o + n > PROM_MAX_VALUE_LEN)
				break;
			memcpy(out + o, s, n);
			o += n;
		}
		s += n;
		len -= n;
	}
	out[o] = '\0';
	return o;
}

static int table_grow(struct prom_family *f)
{
	size_t size = f->table_size ? f->table_size * 2 : 16;
	struct prom_series **t = calloc(size, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < f->table_size; i++) {
		struct prom_series *s = f->table[i];
		size_t j;

		if (!s)
			continue;
		for (j = s->hash & (size - 1); t[j]; j = (j + 1) & (size - 1))
			;
		t[j] = s;
	}
	free(f->table);
	f->table = t;
	f->table_size = size;
	return 0;
}

static struct prom_series *series_new(struct prom_family *f, const char *key, size_t keylen, uint64_t hash)
{
	struct prom_series *s = calloc(1, sizeof(*s) + keylen);
	const char *p;
	size_t j;

	if (!s)
		return NULL;
	if (f->type == PROM_HISTOGRAM && !(s->bucket = calloc(f->nbuckets + 1, sizeof(uint64_t)))) {
		free(s);
		return NULL;
	}
	if ((f->nseries + 2) * 2 > f->table_size && table_grow(f)) {
		free(s->bucket);
		free(s);
		return NULL;
	}
	s->fam = f;
	s->hash = hash;
	s->keylen = keylen;
	memcpy(s->key, key, keylen);
	p = s->key;
	for (size_t i = 0; i < f->nlabels; i++) {
		s->val[i] = p;
		p += strlen(p) + 1;
	}
	for (j = hash & (f->table_size - 1); f->table[j]; j = (j + 1) & (f->table_size - 1))
		;
	f->table[j] = s;
	if (f->last)
		f->last->next = s;
	else
		f->first = s;
	f->last = s;
	return s;
}

static struct prom_series *lookup(struct prom_family *f, const char *const *values)
{
	char key[PROM_MAX_LABELS * (PROM_MAX_VALUE_LEN + 1) + 1];
	size_t keylen = 0;
	uint64_t hash;
	struct prom_series *s;

	for (size_t i = 0; i < f->nlabels; i++) {
		const char *v = values && values[i] ? values[i] : "";

		keylen += sanitize(v, key + keylen) + 1;
	}
	if (!keylen)	/* no labels: one series; keep the key non-empty */
		key[keylen++] = '\0';
	hash = hash64(key, keylen);
	if (f->table_size) {
		for (size_t j = hash & (f->table_size - 1); (s = f->table[j]); j = (j + 1) & (f->table_size - 1))
			if (s->hash == hash && s->keylen == keylen && !memcmp(s->key, key, keylen))
				return s;
	}
	if (f->nseries >= f->max_series) {
		f->dropped++;
		if (!f->overflow) {
			keylen = 0;
			for (size_t i = 0; i < f->nlabels; i++) {
				memcpy(key + keylen, PROM_OTHER, sizeof(PROM_OTHER));
				keylen += sizeof(PROM_OTHER);
			}
			if (!keylen)
				key[keylen++] = '\0';
			f->overflow = series_new(f, key, keylen, hash64(key, keylen));
		}
		return f->overflow;
	}
	s = series_new(f, key, keylen, hash);
	if (s)
		f->nseries++;
	return s;
}

struct prom_series *prom_family__series(struct prom_family *f, const char *const *values)
{
	struct prom_series *s;

	if (!f) {
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_lock(&f->reg->lock);
	s = lookup(f, values);
	pthread_mutex_unlock(&f->reg->lock);
	if (!s)
		errno = ENOMEM;
	return s;
}

enum op { OP_ADD, OP_SET, OP_OBSERVE };

/* called with the lock held */
static int apply(struct prom_series *s, enum op op, double v)
{
	struct prom_family *f = s->fam;
	size_t i;

	switch (op) {
	case OP_ADD:
		if (f->type == PROM_HISTOGRAM || (f->type == PROM_COUNTER && !(v >= 0)))
			return -EINVAL;
		s->value += v;
		return 0;
	case OP_SET:
		if (f->type == PROM_HISTOGRAM)
			return -EINVAL;
		s->value = v;
		return 0;
	case OP_OBSERVE:
		if (f->type != PROM_HISTOGRAM)
			return -EINVAL;
		if (isnan(v))
			return 0;
		for (i = 0; i < f->nbuckets && v > f->buckets[i]; i++)
			;
		s->bucket[i]++;
		s->count++;
		s->sum += v;
		return 0;
	}
	return -EINVAL;
}

static int series_op(struct prom_series *s, enum op op, double v)
{
	int err;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->fam->reg->lock);
	err = apply(s, op, v);
	pthread_mutex_unlock(&s->fam->reg->lock);
	return err;
}

static int family_op(struct prom_family *f, const char *const *values, enum op op, double v)
{
	struct prom_series *s;
	int err;

	if (!f)
		return -EINVAL;
	pthread_mutex_lock(&f->reg->lock);
	s = lookup(f, values);
	err = s ? apply(s, op, v) : -ENOMEM;
	pthread_mutex_unlock(&f->reg->lock);
	return err;
}

int prom_series__add(struct prom_series *s, double v) { return series_op(s, OP_ADD, v); }
int prom_series__set(struct prom_series *s, double v) { return series_op(s, OP_SET, v); }
int prom_series__observe(struct prom_series *s, double v) { return series_op(s, OP_OBSERVE, v); }

int prom_family__add(struct prom_family *f, const char *const *values, double v)
{
	return family_op(f, values, OP_ADD, v);
}

int prom_family__set(struct prom_family *f, const char *const *values, double v)
{
	return family_op(f, values, OP_SET, v);
}

int prom_family__observe(struct prom_family *f, const char *const *values, double v)
{
	return family_op(f, values, OP_OBSERVE, v);
}

size_t prom_family__nseries(const struct prom_family *f)
{
	size_t n;

	pthread_mutex_lock(&f->reg->lock);
	n = f->nseries;
	pthread_mutex_unlock(&f->reg->lock);
	return n;
}

uint64_t prom_family__dropped(const struct prom_family *f)
{
	uint64_t n;

	pthread_mutex_lock(&f->reg->lock);
	n = f->dropped;
	pthread_mutex_unlock(&f->reg->lock);
	return n;
}

double prom_series__value(const struct prom_series *s)
{
	double v;

	pthread_mutex_lock(&s->fam->reg->lock);
	v = s->value;
	pthread_mutex_unlock(&s->fam->reg->lock);
	return v;
}

uint64_t prom_series__count(const struct prom_series *s, double *sum)
{
	uint64_t n;

	pthread_mutex_lock(&s->fam->reg->lock);
	n = s->count;
	if (sum)
		*sum = s->sum;
	pthread_mutex_unlock(&s->fam->reg->lock);
	return n;
}

/* ---- writing ---- */

static int format_double(char *buf, size_t size, double v)
{
	if (isnan(v))
		return snprintf(buf, size, "NaN");
	if (isinf(v))
		return snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
	if (v == 0)
		return snprintf(buf, size, "0");
	if (v == floor(v) && fabs(v) < 1e15)
		return snprintf(buf, size, "%.0f", v);
	snprintf(buf, size, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, size, "%.17g", v);
	return (int)strlen(buf);
}

int prom__write_double(struct membuf *b, double v)
{
	char buf[40];

	format_double(buf, sizeof(buf), v);
	return membuf__puts(b, buf);
}

/* OpenMetrics wants canonical numbers in le: an integer bound as "1.0" */
static int write_le(struct membuf *b, double v, enum prom_format fmt)
{
	char buf[40];

	format_double(buf, sizeof(buf), v);
	if (fmt == PROM_FMT_OPENMETRICS && !strpbrk(buf, ".eIN"))
		strcat(buf, ".0");
	return membuf__puts(b, buf);
}

int prom__escape_label_value(struct membuf *b, const char *s, size_t len)
{
	size_t n, start = 0, i = 0;
	uint32_t cp;

	while (i < len) {
		n = utf8_next(s + i, len - i, &cp);
		if (cp == '\\' || cp == '"' || cp == '\n' || (cp == 0xFFFD && n == 1) || cp == 0) {
			membuf__append(b, s + start, i - start);
			membuf__puts(b, cp == '\\' ? "\\\\" : cp == '"' ? "\\\"" : cp == '\n' ? "\\n" :
				     cp == 0 ? "" : "\xEF\xBF\xBD");
			start = i + n;
		}
		i += n;
	}
	membuf__append(b, s + start, i - start);
	return membuf__error(b);
}

/* HELP text: \\ and \n in both formats, \" too in OpenMetrics */
static void escape_help(struct membuf *b, const char *s, enum prom_format fmt)
{
	size_t len = strlen(s), n, i = 0, start = 0;
	uint32_t cp;

	while (i < len) {
		n = utf8_next(s + i, len - i, &cp);
		if (cp == '\\' || cp == '\n' || (cp == '"' && fmt == PROM_FMT_OPENMETRICS) ||
		    (cp == 0xFFFD && n == 1)) {
			membuf__append(b, s + start, i - start);
			membuf__puts(b, cp == '\\' ? "\\\\" : cp == '\n' ? "\\n" : cp == '"' ? "\\\"" : "\xEF\xBF\xBD");
			start = i + n;
		}
		i += n;
	}
	membuf__append(b, s + start, i - start);
}

static const char *type_name(enum prom_type t)
{
	return t == PROM_COUNTER ? "counter" : t == PROM_GAUGE ? "gauge" : "histogram";
}

static void write_meta(struct membuf *b, const char *name, const char *suffix, const char *help,
		       enum prom_type type, const char *unit, enum prom_format fmt)
{
	membuf__printf(b, "# HELP %s%s ", name, suffix);
	escape_help(b, help, fmt);
	membuf__printf(b, "\n# TYPE %s%s %s\n", name, suffix, type_name(type));
	if (unit && fmt == PROM_FMT_OPENMETRICS)
		membuf__printf(b, "# UNIT %s%s %s\n", name, suffix, unit);
}

/* name{l1="v1",...[,le="x"]} */
static void write_sample_start(struct membuf *b, const struct prom_family *f, const char *suffix,
			       const struct prom_series *s, const double *le, enum prom_format fmt)
{
	bool any = false;

	membuf__printf(b, "%s%s", f->name, suffix);
	for (size_t i = 0; i < f->nlabels; i++) {
		membuf__puts(b, any ? ",": "{");
		membuf__printf(b, "%s=\"", f->labels[i]);
		prom__escape_label_value(b, s->val[i], strlen(s->val[i]));
		membuf__putc(b, '"');
		any = true;
	}
	if (le) {
		membuf__puts(b, any ? ",le=\"" : "{le=\"");
		write_le(b, *le, fmt);
		membuf__putc(b, '"');
		any = true;
	}
	if (any)
		membuf__putc(b, '}');
	membuf__putc(b, ' ');
}

static void write_family(struct membuf *b, const struct prom_family *f, enum prom_format fmt)
{
	const char *meta_suffix = f->type == PROM_COUNTER && fmt == PROM_FMT_TEXT ? "_total" : "";
	static const double inf = INFINITY;

	write_meta(b, f->name, meta_suffix, f->help, f->type, f->unit, fmt);
	for (const struct prom_series *s = f->first; s; s = s->next) {
		if (f->type != PROM_HISTOGRAM) {
			write_sample_start(b, f, f->type == PROM_COUNTER ? "_total" : "", s, NULL, fmt);
			prom__write_double(b, s->value);
			membuf__putc(b, '\n');
			continue;
		}
		uint64_t cum = 0;

		for (size_t i = 0; i <= f->nbuckets; i++) {
			cum += s->bucket[i];
			write_sample_start(b, f, "_bucket", s, i < f->nbuckets ? &f->buckets[i] : &inf, fmt);
			membuf__printf(b, "%llu\n", (unsigned long long)cum);
		}
		write_sample_start(b, f, "_sum", s, NULL, fmt);
		prom__write_double(b, s->sum);
		membuf__putc(b, '\n');
		write_sample_start(b, f, "_count", s, NULL, fmt);
		membuf__printf(b, "%llu\n", (unsigned long long)s->count);
	}
}

int prom_registry__write(struct prom_registry *r, enum prom_format fmt, struct membuf *b)
{
	const struct prom_family *f;

	if (!r || !b)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	for (f = r->first; f; f = f->next)
		write_family(b, f, fmt);
	write_meta(b, PROM_DROPPED_FAMILY, fmt == PROM_FMT_TEXT ? "_total" : "",
		   "Updates sent to a metric's overflow series (every label value other) by its cap on distinct label-value sets.",
		   PROM_COUNTER, NULL, fmt);
	for (f = r->first; f; f = f->next) {
		membuf__printf(b, PROM_DROPPED_FAMILY "_total{metric=\"%s\"} %llu\n", f->name,
			       (unsigned long long)f->dropped);
	}
	pthread_mutex_unlock(&r->lock);
	if (fmt == PROM_FMT_OPENMETRICS)
		membuf__puts(b, "# EOF\n");
	return membuf__error(b);
}

/* ---- Accept negotiation ---- */

struct media_range {
	char type[48], subtype[64], version[32];
	double q;
	int specificity, pos;
};

static void trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
		(*e)--;
}

static void copy_lower(char *dst, size_t size, const char *s, const char *e)
{
	size_t n = (size_t)(e - s) < size - 1 ? (size_t)(e - s) : size - 1;

	for (size_t i = 0; i < n; i++)
		dst[i] = (s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i];
	dst[n] = '\0';
}

/* one media range s..e; false if malformed or q=0 */
static bool parse_range(const char *s, const char *e, struct media_range *m)
{
	const char *semi = memchr(s, ';', e - s), *te = semi ? semi : e, *slash;

	memset(m, 0, sizeof(*m));
	m->q = 1;
	trim(&s, &te);
	slash = memchr(s, '/', te - s);
	if (!slash || slash == s || slash + 1 >= te)
		return false;
	copy_lower(m->type, sizeof(m->type), s, slash);
	copy_lower(m->subtype, sizeof(m->subtype), slash + 1, te);
	m->specificity = (strcmp(m->type, "*") != 0) + (strcmp(m->subtype, "*") != 0);
	while (semi) {
		const char *ps = semi + 1, *pe, *eq;
		char key[16], val[32];

		semi = memchr(ps, ';', e - ps);
		pe = semi ? semi : e;
		eq = memchr(ps, '=', pe - ps);
		if (!eq)
			continue;
		{
			const char *ks = ps, *ke = eq, *vs = eq + 1, *ve = pe;

			trim(&ks, &ke);
			trim(&vs, &ve);
			if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
				vs++;
				ve--;
			}
			copy_lower(key, sizeof(key), ks, ke);
			copy_lower(val, sizeof(val), vs, ve);
		}
		if (!strcmp(key, "q")) {
			char *end;

			m->q = strtod(val, &end);
			if (end == val || *end || !(m->q >= 0) || m->q > 1)
				return false;
		} else if (!strcmp(key, "version")) {
			snprintf(m->version, sizeof(m->version), "%s", val);
		}
	}
	return m->q > 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct media_range *x = a, *y = b;

	if (x->q != y->q)
		return x->q > y->q ? -1 : 1;
	if (x->specificity != y->specificity)
		return y->specificity - x->specificity;
	return x->pos - y->pos;
}

enum prom_format prom__negotiate(const char *accept)
{
	struct media_range r[32];
	const char *s = accept, *e;
	int n = 0;

	if (!accept)
		return PROM_FMT_TEXT;
	while (*s && n < (int)(sizeof(r) / sizeof(r[0]))) {
		e = strchr(s, ',');
		if (!e)
			e = s + strlen(s);
		if (parse_range(s, e, &r[n])) {
			r[n].pos = n;
			n++;
		}
		s = *e ? e + 1 : e;
	}
	qsort(r, n, sizeof(r[0]), cmp_range);
	for (int i = 0; i < n; i++) {
		if (!strcmp(r[i].type, "application") && !strcmp(r[i].subtype, "openmetrics-text") &&
		    (!*r[i].version || !strcmp(r[i].version, "1.0.0") || !strcmp(r[i].version, "0.0.1")))
			return PROM_FMT_OPENMETRICS;
		if (!strcmp(r[i].type, "text") && !strcmp(r[i].subtype, "plain") &&
		    (!*r[i].version || !strcmp(r[i].version, "0.0.4")))
			return PROM_FMT_TEXT;
		if (!strcmp(r[i].subtype, "*") && (!strcmp(r[i].type, "*") || !strcmp(r[i].type, "text")))
			return PROM_FMT_TEXT;
	}
	return PROM_FMT_TEXT;
}

const char *prom__content_type(enum prom_format fmt)
{
	return fmt == PROM_FMT_OPENMETRICS ? PROM_CONTENT_TYPE_OPENMETRICS : PROM_CONTENT_TYPE_TEXT;
}
