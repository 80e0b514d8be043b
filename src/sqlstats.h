/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Per-pattern aggregation of captured SQL statements: counts, errors, latency, call sites. */
#ifndef PYTRACE_SQLSTATS_H
#define PYTRACE_SQLSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lathist.h"

#define SQL_STATS_DEFAULT_MAX_PATTERNS	2000
#define SQL_STATS_DEFAULT_MAX_SITES	16
#define SQL_STATS_DEFAULT_TEXT_CACHE	1024
#define SQL_STATS_PATTERN_MAX		8192	/* bytes of pattern kept, cut mark included */
#define SQL_STATS_EXAMPLE_MAX		8192	/* bytes of example text kept (show_literals) */
#define SQL_STATS_OTHER_PATTERNS	"[other patterns]"
#define SQL_STATS_OTHER_SITES		"[other]"

struct jsonw;
struct sql_stats;

struct sql_stats_opts {
	unsigned max_patterns;		/* 0 = default; beyond it statements go to "[other patterns]" */
	unsigned max_sites_per_pattern;	/* 0 = default; beyond it sites are counted as "[other]" */
	bool show_literals;		/* example = first statement as sent; else the pattern */
	unsigned text_cache;		/* statement texts remembered with their pattern (0 = default) */
	bool no_text_cache;		/* normalize every statement (tests) */
};

#define SQL_STATS_STATES	4	/* SQLSTATEs kept per pattern */
#define SQL_STATS_ALL_STATES	64	/* SQLSTATEs kept over all patterns */

struct sql_site {
	char *frame;
	uint64_t count;
};

/* Read-only for users of the aggregator. */
struct sql_pattern {
	char *pattern;
	const char *example;	/* the pattern itself unless show_literals */
	size_t example_len;
	uint64_t fingerprint;	/* see sqlnorm__fingerprint(); 0 for the overflow pattern */
	bool fp_from_pg_query;
	bool overflow;		/* this is "[other patterns]" */
	char operation[24];
	uint64_t count, errors, total_ns;
	struct lathist hist;
	struct sql_site *sites;	/* sorted by count, descending */
	unsigned nsites;
	uint64_t other_sites;	/* statements whose site did not fit */
	uint64_t hash;
	uint64_t rows;		/* rows affected or returned, summed over the statements that said */
	uint64_t rows_known;	/* statements whose command tag gave a row count (the wire's) */
	struct sql_state_count {
		char code[6];	/* SQLSTATE */
		uint64_t count;
	} states[SQL_STATS_STATES];	/* errors by SQLSTATE, the first codes seen */
	uint64_t other_states;	/* errors with a code that did not fit */
};

struct sql_stats_summary {
	uint64_t statements, errors;
	uint64_t errors_other_states;	/* errors whose SQLSTATE did not fit the summary's table */
	uint64_t patterns;		/* distinct patterns kept */
	uint64_t dropped_patterns;	/* distinct patterns over the cap (estimated) */
	uint64_t dropped_statements;
	uint64_t invalid_utf8;		/* statements with invalid UTF-8 */
	uint64_t nul_bytes;		/* statements containing NUL */
};

/* o may be NULL for the defaults */
struct sql_stats *sql_stats__new(const struct sql_stats_opts *o);
void sql_stats__free(struct sql_stats *s);

/*
 * Counts one statement. call_site is "func (file.py:LINE)" or NULL (not counted as a site).
 * The first statement of a new pattern computes its fingerprint (libpg_query, slow); later ones
 * only normalize, and a text seen before (up to text_cache of them, the shorter ones) not even
 * that. Returns 0, -E2BIG when it was counted in "[other patterns]", -ENOMEM, -EINVAL.
 */
/*
 * What the server said of the statement last added (sql_stats__add_pattern): rows < 0 when not
 * known (libpq's probes), sqlstate NULL or "" when it did not fail with one. Bounded: a pattern
 * keeps SQL_STATS_STATES codes and the summary SQL_STATS_ALL_STATES; the rest are counted apart.
 */
void sql_stats__note_result(struct sql_stats *s, int64_t rows, const char *sqlstate);
int sql_stats__add(struct sql_stats *s, const char *text, size_t len, bool truncated,
		   uint64_t dur_ns, bool error, const char *call_site);
/*
 * sql_stats__add, and *pattern set to the statement's pattern (what sqlnorm__pattern() gives
 * with a SQL_STATS_PATTERN_MAX buffer): a kept pattern's own string, valid until
 * sql_stats__free(), or for one counted in "[other patterns]" a buffer valid until the next add.
 */
int sql_stats__add_pattern(struct sql_stats *s, const char *text, size_t len, bool truncated,
			   uint64_t dur_ns, bool error, const char *call_site, const char **pattern);
/* Statements whose text was found in the text cache (not normalized again). */
uint64_t sql_stats__text_hits(const struct sql_stats *s);

void sql_stats__summary(const struct sql_stats *s, struct sql_stats_summary *sum);
/*
 * Up to max patterns by total time descending (then count, then pattern), the overflow pattern
 * included when it has statements. Pointers valid until the next add or free. Returns the
 * number filled or -ENOMEM.
 */
int sql_stats__sorted(const struct sql_stats *s, const struct sql_pattern **out, size_t max);

/* The "queries" array value (the caller writes the name): patterns by total time. */
int sql_stats__write_json(const struct sql_stats *s, struct jsonw *w);
/* {"patterns":N,"dropped_patterns":N,"statements":N,"invalid_utf8":N,...} object value */
int sql_stats__write_summary_json(const struct sql_stats *s, struct jsonw *w);
/* Aligned table of the top patterns by total time (0 = all), top call site under each. */
int sql_stats__report(const struct sql_stats *s, FILE *f, unsigned top);

#endif /* PYTRACE_SQLSTATS_H */
