// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* SQL statement aggregation by normalized pattern, with caps on patterns and call sites. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "jsonw.h"
#include "sqlnorm.h"
#include "sqlstats.h"
#include "utf8.h"

#define DROPPED_BITS 65536	/* linear counting of distinct dropped patterns */
#define TEXT_CACHE_LEN	480	/* longer statement texts are normalized every time */

/*
 * A statement text seen before and the pattern it gave: drivers that bind parameters on the
 * server (psycopg 3) send the same text again and again, and so do ORMs for repeated lookups.
 * Only texts of kept patterns are remembered; p is never freed before the cache.
 */
struct text_slot {
	uint64_t hash;		/* of the text and the truncated flag; 0: empty */
	struct sql_pattern *p;
	uint16_t len;
	bool truncated, invalid_utf8, nul;
	char text[TEXT_CACHE_LEN];
};

struct sql_stats {
	struct sql_stats_opts o;
	struct sql_pattern **table;	/* open addressing by pattern hash */
	size_t cap, n;
	struct sql_pattern other;
	struct sql_stats_summary sum;
	struct text_slot *texts;	/* direct-mapped on the text's hash, o.text_cache slots */
	uint64_t text_hits;
	uint64_t dropped_bits[DROPPED_BITS / 64];
	struct sql_pattern *last;	/* the pattern of the statement added last */
	struct sql_state_count states[SQL_STATS_ALL_STATES];
	char buf[SQL_STATS_PATTERN_MAX];
};

static void pattern_free(struct sql_pattern *p)
{
	for (unsigned i = 0; i < p->nsites; i++)
		free(p->sites[i].frame);
	free(p->sites);
	if (p->example != p->pattern)
		free((char *)p->example);
	free(p->pattern);
}

struct sql_stats *sql_stats__new(const struct sql_stats_opts *o)
{
	struct sql_stats *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (o)
		s->o = *o;
	if (!s->o.max_patterns)
		s->o.max_patterns = SQL_STATS_DEFAULT_MAX_PATTERNS;
	if (!s->o.max_sites_per_pattern)
		s->o.max_sites_per_pattern = SQL_STATS_DEFAULT_MAX_SITES;
	if (!s->o.text_cache)
		s->o.text_cache = SQL_STATS_DEFAULT_TEXT_CACHE;
	if (s->o.text_cache > 1u << 20)
		s->o.text_cache = 1u << 20;
	if (s->o.text_cache & (s->o.text_cache - 1))	/* a power of two */
		s->o.text_cache = 1u << (32 - __builtin_clz(s->o.text_cache));
	if (!s->o.no_text_cache) {
		s->texts = calloc(s->o.text_cache, sizeof(*s->texts));
		if (!s->texts) {
			sql_stats__free(s);
			return NULL;
		}
	}
	for (s->cap = 16; s->cap < 2 * (size_t)s->o.max_patterns; s->cap *= 2)
		;
	s->table = calloc(s->cap, sizeof(*s->table));
	s->other.pattern = strdup(SQL_STATS_OTHER_PATTERNS);
	if (!s->table || !s->other.pattern) {
		sql_stats__free(s);
		return NULL;
	}
	s->other.example = s->other.pattern;
	s->other.example_len = strlen(s->other.pattern);
	s->other.overflow = true;
	lathist__init(&s->other.hist);
	return s;
}

void sql_stats__free(struct sql_stats *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->table && i < s->cap; i++) {
		if (s->table[i]) {
			pattern_free(s->table[i]);
			free(s->table[i]);
		}
	}
	free(s->table);
	free(s->texts);
	pattern_free(&s->other);
	free(s);
}

static void check_utf8(const char *text, size_t len, bool *invalid, bool *has_nul)
{
	bool bad = false, nul = false;

	for (size_t i = 0; i < len;) {
		uint32_t cp;

		if ((unsigned char)text[i] < 0x80) {
			nul |= text[i] == '\0';
			i++;
			continue;
		}
		i += utf8_next(text + i, len - i, &cp);
		bad |= cp == 0xfffd;
	}
	*invalid = bad;
	*has_nul = nul;
}

static struct sql_pattern **slot(const struct sql_stats *s, const char *pattern, uint64_t h)
{
	size_t j;

	for (j = h & (s->cap - 1); s->table[j]; j = (j + 1) & (s->cap - 1)) {
		if (s->table[j]->hash == h && strcmp(s->table[j]->pattern, pattern) == 0)
			break;
	}
	return &s->table[j];
}

static struct sql_pattern *pattern_new(struct sql_stats *s, const char *text, size_t len,
				       bool truncated, uint64_t h)
{
	struct sql_pattern *p = calloc(1, sizeof(*p));

	if (!p || !(p->pattern = strdup(s->buf))) {
		free(p);
		return NULL;
	}
	p->hash = h;
	p->fingerprint = sqlnorm__fingerprint(text, len, truncated, p->pattern, &p->fp_from_pg_query);
	sqlnorm__operation(p->pattern, p->operation, sizeof(p->operation));
	lathist__init(&p->hist);
	p->example = p->pattern;
	p->example_len = strlen(p->pattern);
	if (s->o.show_literals) {
		size_t n = len < SQL_STATS_EXAMPLE_MAX ? len : SQL_STATS_EXAMPLE_MAX;
		char *ex = malloc(n + 1);

		if (!ex) {
			pattern_free(p);
			free(p);
			return NULL;
		}
		if (n)
			memcpy(ex, text, n);
		ex[n] = '\0';
		p->example = ex;
		p->example_len = n;
	}
	return p;
}

static int add_site(struct sql_stats *s, struct sql_pattern *p, const char *site)
{
	struct sql_site *sites = p->sites, tmp;
	unsigned i;

	for (i = 0; i < p->nsites && strcmp(sites[i].frame, site) != 0; i++)
		;
	if (i == p->nsites) {
		if (p->nsites == s->o.max_sites_per_pattern) {
			p->other_sites++;
			return 0;
		}
		sites = realloc(p->sites, (p->nsites + 1) * sizeof(*sites));
		if (!sites)
			return -ENOMEM;
		p->sites = sites;
		sites[i].frame = strdup(site);
		if (!sites[i].frame)
			return -ENOMEM;
		sites[i].count = 0;
		p->nsites++;
	}
	sites[i].count++;
	/* keep sorted: counts only grow by one, so one step up at a time suffices */
	for (; i > 0 && sites[i].count > sites[i - 1].count; i--) {
		tmp = sites[i];
		sites[i] = sites[i - 1];
		sites[i - 1] = tmp;
	}
	return 0;
}

/* The cache slot of this text (NULL: not cached); *hit: it holds this very text. */
static struct text_slot *text_slot(struct sql_stats *s, const char *text, size_t len, bool truncated,
				   uint64_t *h, bool *hit)
{
	struct text_slot *t;

	*hit = false;
	if (!s->texts || !text || len > TEXT_CACHE_LEN)
		return NULL;
	*h = hash64(text, len) ^ truncated;
	if (!*h)
		*h = 1;
	t = &s->texts[hash64_mix(*h) & (s->o.text_cache - 1)];
	*hit = t->hash == *h && t->len == len && t->truncated == truncated && memcmp(t->text, text, len) == 0;
	return t;
}

int sql_stats__add_pattern(struct sql_stats *s, const char *text, size_t len, bool truncated,
			   uint64_t dur_ns, bool error, const char *call_site, const char **pattern)
{
	struct sql_pattern **sl, *p;
	struct text_slot *ts;
	bool invalid, nul, hit;
	uint64_t h, th = 0;
	size_t plen;
	int ret = 0;

	if (pattern)
		*pattern = "";
	if (!text && len)
		return -EINVAL;
	ts = text_slot(s, text, len, truncated, &th, &hit);
	if (hit) {
		s->text_hits++;
		p = ts->p;
		invalid = ts->invalid_utf8;
		nul = ts->nul;
		s->sum.invalid_utf8 += invalid;
		s->sum.nul_bytes += nul;
		goto count;
	}
	check_utf8(text, len, &invalid, &nul);
	s->sum.invalid_utf8 += invalid;
	s->sum.nul_bytes += nul;
	plen = sqlnorm__pattern(text, len, truncated, s->buf, sizeof(s->buf));
	h = hash64(s->buf, plen);
	sl = slot(s, s->buf, h);
	p = *sl;
	if (!p && s->n < s->o.max_patterns) {
		p = pattern_new(s, text, len, truncated, h);
		if (!p) {
			if (pattern)
				*pattern = s->buf;
			return -ENOMEM;
		}
		*sl = p;
		s->n++;
	} else if (!p) {
		p = &s->other;
		s->dropped_bits[(h % DROPPED_BITS) / 64] |= 1ull << (h % 64);
		s->sum.dropped_statements++;
		ret = -E2BIG;
	}
	if (ts && p != &s->other) {
		ts->hash = th;
		ts->p = p;
		ts->len = len;
		ts->truncated = truncated;
		ts->invalid_utf8 = invalid;
		ts->nul = nul;
		if (len)
			memcpy(ts->text, text, len);
	}
count:
	s->last = p;
	if (pattern)
		*pattern = p == &s->other ? s->buf : p->pattern;
	s->sum.statements++;
	s->sum.errors += error;
	p->count++;
	p->errors += error;
	p->total_ns = p->total_ns + dur_ns < p->total_ns ? UINT64_MAX : p->total_ns + dur_ns;
	lathist__add(&p->hist, dur_ns);
	if (call_site) {
		int err = add_site(s, p, call_site);

		if (err)
			return err;
	}
	return ret;
}

/* Count code in the first of n slots holding it or free; false when all n hold others. */
static bool count_state(struct sql_state_count *t, unsigned n, const char *code)
{
	for (unsigned i = 0; i < n; i++) {
		if (!t[i].code[0])
			snprintf(t[i].code, sizeof(t[i].code), "%.5s", code);
		if (!strncmp(t[i].code, code, 5)) {
			t[i].count++;
			return true;
		}
	}
	return false;
}

void sql_stats__note_result(struct sql_stats *s, int64_t rows, const char *sqlstate)
{
	struct sql_pattern *p = s->last;

	if (!p)
		return;
	if (rows >= 0) {
		p->rows += (uint64_t)rows;
		p->rows_known++;
	}
	if (sqlstate && sqlstate[0]) {
		if (!count_state(p->states, SQL_STATS_STATES, sqlstate))
			p->other_states++;
		if (!count_state(s->states, SQL_STATS_ALL_STATES, sqlstate))
			s->sum.errors_other_states++;
	}
}

static void write_states(struct jsonw *w, const struct sql_state_count *t, unsigned n, uint64_t other)
{
	jsonw__start_object(w);
	for (unsigned i = 0; i < n && t[i].code[0]; i++)
		jsonw__uint_field(w, t[i].code, t[i].count);
	if (other)
		jsonw__uint_field(w, "other", other);
	jsonw__end_object(w);
}

int sql_stats__add(struct sql_stats *s, const char *text, size_t len, bool truncated,
		   uint64_t dur_ns, bool error, const char *call_site)
{
	return sql_stats__add_pattern(s, text, len, truncated, dur_ns, error, call_site, NULL);
}

uint64_t sql_stats__text_hits(const struct sql_stats *s)
{
	return s->text_hits;
}

void sql_stats__summary(const struct sql_stats *s, struct sql_stats_summary *sum)
{
	size_t zero = 0;

	*sum = s->sum;
	sum->patterns = s->n;
	for (size_t i = 0; i < DROPPED_BITS / 64; i++)
		zero += 64 - __builtin_popcountll(s->dropped_bits[i]);
	/* linear counting: n = -m ln(zero / m), exact enough far below m */
	if (zero == DROPPED_BITS)
		sum->dropped_patterns = 0;
	else if (!zero)
		sum->dropped_patterns = DROPPED_BITS * 11ull;
	else
		sum->dropped_patterns = llround(-(double)DROPPED_BITS * log((double)zero / DROPPED_BITS));
	if (sum->dropped_patterns > sum->dropped_statements)
		sum->dropped_patterns = sum->dropped_statements;
}

static int by_total(const void *a, const void *b)
{
	const struct sql_pattern *x = *(const struct sql_pattern *const *)a;
	const struct sql_pattern *y = *(const struct sql_pattern *const *)b;

	if (x->total_ns != y->total_ns)
		return x->total_ns > y->total_ns ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->pattern, y->pattern);
}

int sql_stats__sorted(const struct sql_stats *s, const struct sql_pattern **out, size_t max)
{
	const struct sql_pattern **all = malloc((s->n + 1) * sizeof(*all));
	size_t n = 0;

	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		if (s->table[i])
			all[n++] = s->table[i];
	}
	if (s->other.count)
		all[n++] = &s->other;
	qsort(all, n, sizeof(*all), by_total);
	if (n > max)
		n = max;
	memcpy(out, all, n * sizeof(*out));
	free(all);
	return (int)n;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void write_pattern(const struct sql_pattern *p, struct jsonw *w)
{
	char fp[17];

	snprintf(fp, sizeof(fp), "%016" PRIx64, p->fingerprint);
	jsonw__start_object(w);
	jsonw__string_field(w, "pattern", p->pattern);
	jsonw__string_field(w, "fingerprint", fp);
	jsonw__string_field(w, "operation", p->operation);
	jsonw__uint_field(w, "count", p->count);
	jsonw__uint_field(w, "errors", p->errors);
	jsonw__name(w, "errors_by_sqlstate");
	write_states(w, p->states, SQL_STATS_STATES, p->other_states);
	if (p->rows_known) {
		jsonw__uint_field(w, "rows", p->rows);
		jsonw__double_fixed_field(w, "rows_per_call", (double)p->rows / p->rows_known, 2);
	}
	jsonw__double_fixed_field(w, "total_ms", ms(p->total_ns), 3);
	jsonw__double_fixed_field(w, "mean_ms", lathist__mean(&p->hist) / 1e6, 3);
	jsonw__double_fixed_field(w, "p50_ms", ms(lathist__percentile(&p->hist, 50)), 3);
	jsonw__double_fixed_field(w, "p95_ms", ms(lathist__percentile(&p->hist, 95)), 3);
	jsonw__double_fixed_field(w, "p99_ms", ms(lathist__percentile(&p->hist, 99)), 3);
	jsonw__double_fixed_field(w, "max_ms", ms(p->hist.max), 3);
	jsonw__name(w, "example");
	jsonw__string_len(w, p->example, p->example_len);
	jsonw__name(w, "call_sites");
	jsonw__start_array(w);
	for (unsigned i = 0; i < p->nsites; i++) {
		jsonw__start_object(w);
		jsonw__string_field(w, "frame", p->sites[i].frame);
		jsonw__uint_field(w, "count", p->sites[i].count);
		jsonw__end_object(w);
	}
	if (p->other_sites) {
		jsonw__start_object(w);
		jsonw__string_field(w, "frame", SQL_STATS_OTHER_SITES);
		jsonw__uint_field(w, "count", p->other_sites);
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	jsonw__end_object(w);
}

int sql_stats__write_json(const struct sql_stats *s, struct jsonw *w)
{
	const struct sql_pattern **v = malloc((s->n + 1) * sizeof(*v));
	int n = v ? sql_stats__sorted(s, v, s->n + 1) : -ENOMEM;
	int err;

	if (n < 0) {
		free(v);
		return n;
	}
	jsonw__start_array(w);
	for (int i = 0; i < n; i++)
		write_pattern(v[i], w);
	err = jsonw__end_array(w);
	free(v);
	return err;
}

int sql_stats__write_summary_json(const struct sql_stats *s, struct jsonw *w)
{
	struct sql_stats_summary sum;

	sql_stats__summary(s, &sum);
	jsonw__start_object(w);
	jsonw__uint_field(w, "patterns", sum.patterns);
	jsonw__uint_field(w, "dropped_patterns", sum.dropped_patterns);
	jsonw__uint_field(w, "dropped_statements", sum.dropped_statements);
	jsonw__uint_field(w, "statements", sum.statements);
	jsonw__uint_field(w, "errors", sum.errors);
	jsonw__name(w, "errors_by_sqlstate");
	write_states(w, s->states, SQL_STATS_ALL_STATES, sum.errors_other_states);
	jsonw__uint_field(w, "invalid_utf8", sum.invalid_utf8);
	jsonw__uint_field(w, "nul_bytes", sum.nul_bytes);
	return jsonw__end_object(w);
}

/* At most width code points of s, control characters as spaces, "…" when cut. */
static void put_clipped(FILE *f, const char *s, size_t width)
{
	size_t len = strlen(s), cols = 0;

	while (len) {
		uint32_t cp;
		size_t n = utf8_next(s, len, &cp);

		if (cols + 1 == width && n < len) {
			fputs("\u2026", f);
			return;
		}
		if (cp < 0x20 || cp == 0x7f)
			fputc(' ', f);
		else
			fwrite(s, 1, n, f);
		cols++;
		s += n;
		len -= n;
	}
}

#define REPORT_PATTERN_WIDTH 100

int sql_stats__report(const struct sql_stats *s, FILE *f, unsigned top)
{
	const struct sql_pattern **v = malloc((s->n + 1) * sizeof(*v));
	struct sql_stats_summary sum;
	int n;

	if (!v)
		return -ENOMEM;
	n = sql_stats__sorted(s, v, top ? top : s->n + 1);
	if (n < 0) {
		free(v);
		return n;
	}
	sql_stats__summary(s, &sum);
	fprintf(f, "SQL: %" PRIu64 " statements, %" PRIu64 " patterns, %" PRIu64 " errors",
		sum.statements, sum.patterns, sum.errors);
	if (sum.dropped_statements)
		fprintf(f, ", %" PRIu64 " statements of ~%" PRIu64 " patterns over the cap",
			sum.dropped_statements, sum.dropped_patterns);
	if (sum.invalid_utf8 || sum.nul_bytes)
		fprintf(f, ", %" PRIu64 " with invalid UTF-8, %" PRIu64 " with NUL",
			sum.invalid_utf8, sum.nul_bytes);
	fputc('\n', f);
	if (n)
		fprintf(f, "%10s %7s %12s %10s %10s %10s  %s\n",
			"COUNT", "ERRORS", "TOTAL_MS", "MEAN_MS", "P95_MS", "MAX_MS", "PATTERN");
	for (int i = 0; i < n; i++) {
		const struct sql_pattern *p = v[i];

		fprintf(f, "%10" PRIu64 " %7" PRIu64 " %12.3f %10.3f %10.3f %10.3f  ",
			p->count, p->errors, ms(p->total_ns), lathist__mean(&p->hist) / 1e6,
			ms(lathist__percentile(&p->hist, 95)), ms(p->hist.max));
		put_clipped(f, p->pattern, REPORT_PATTERN_WIDTH);
		fputc('\n', f);
		if (p->nsites) {
			fprintf(f, "%66s<- ", "");
			put_clipped(f, p->sites[0].frame, REPORT_PATTERN_WIDTH);
			fprintf(f, " (%" PRIu64 " of %" PRIu64 ")\n", p->sites[0].count, p->count);
		}
	}
	free(v);
	return ferror(f) ? -EIO : 0;
}
