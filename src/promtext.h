/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Metrics registry and exposition writer: counter, gauge and histogram families with fixed
 * label names, written as Prometheus text 0.0.4 or OpenMetrics 1.0.
 *
 * Bounded: each family holds at most max_series distinct label-value sets. An update for a new
 * set beyond the cap goes to the family's overflow series, whose label values are all
 * PROM_OTHER ("other"), and is counted; the counts are exported as
 * pytrace_label_values_dropped_total{metric="FAMILY"} (one series per family, always present).
 * Label values are cut to PROM_MAX_VALUE_LEN bytes (at a code point) and invalid UTF-8 becomes
 * U+FFFD before they are looked up, so memory is bounded by
 * families x (max_series + 1) x labels x PROM_MAX_VALUE_LEN.
 *
 * Threads: every function that takes a registry, family or series locks the registry's one
 * mutex, so the collector's loop may update while the HTTP thread writes. The writer holds the
 * mutex while it formats (the exposition is consistent: no half-updated histogram), which
 * blocks updates for that time: about a microsecond per series.
 *
 * Naming: a counter family is named without "_total" (a trailing "_total" is dropped): text
 * 0.0.4 writes "# TYPE x_total counter" and samples x_total, OpenMetrics "# TYPE x counter"
 * and samples x_total, as each format's specification wants. With a unit, the name must end
 * in "_UNIT" (OpenMetrics rule); "# UNIT" is written in OpenMetrics only. _created samples are
 * not written (optional in OpenMetrics 1.0).
 */
#ifndef PYTRACE_PROMTEXT_H
#define PYTRACE_PROMTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "membuf.h"

#define PROM_CONTENT_TYPE_TEXT		"text/plain; version=0.0.4; charset=utf-8"
#define PROM_CONTENT_TYPE_OPENMETRICS	"application/openmetrics-text; version=1.0.0; charset=utf-8"

#define PROM_OTHER		"other"
#define PROM_MAX_LABELS		8
#define PROM_MAX_BUCKETS	64
#define PROM_MAX_VALUE_LEN	256
#define PROM_DEFAULT_MAX_SERIES	1000
#define PROM_DROPPED_FAMILY	"pytrace_label_values_dropped"

/*
 * OpenTelemetry semantic conventions' ExplicitBucketBoundaries advisories, in seconds:
 * - http.server.request.duration: open-telemetry/semantic-conventions docs/http/http-metrics.md
 *   ("Metric: http.server.request.duration"),
 * - db.client.operation.duration: docs/db/database-metrics.md
 *   ("Metric: db.client.operation.duration"),
 * both read at commit 384d66161cb18704c729645fa8136a148df9571c.
 */
extern const double prom_buckets_http_server_duration[14];
extern const double prom_buckets_db_client_duration[9];
#define PROM_BUCKETS_HTTP_SERVER_DURATION_N	14
#define PROM_BUCKETS_DB_CLIENT_DURATION_N	9

enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM };
enum prom_format { PROM_FMT_TEXT, PROM_FMT_OPENMETRICS };

struct prom_registry;
struct prom_family;
struct prom_series;

struct prom_family_opts {
	const char *name;		/* [a-zA-Z_:][a-zA-Z0-9_:]*, not PROM_DROPPED_FAMILY */
	const char *help;		/* optional; any UTF-8, escaped on output */
	const char *unit;		/* optional, e.g. "seconds": name must end in "_seconds" */
	enum prom_type type;
	const char *const *labels;	/* [a-zA-Z_][a-zA-Z0-9_]*, no "__" prefix, distinct; "le" not for histograms */
	size_t nlabels;			/* <= PROM_MAX_LABELS */
	const double *buckets;		/* histograms: upper bounds, strictly increasing, finite */
	size_t nbuckets;		/* 1..PROM_MAX_BUCKETS; +Inf is added */
	size_t max_series;		/* distinct label-value sets; 0 = PROM_DEFAULT_MAX_SERIES */
};

struct prom_registry *prom_registry__new(void);
void prom_registry__free(struct prom_registry *r);

/* A new family, or NULL with errno EINVAL (bad name, labels, buckets), EEXIST, ENOMEM. */
struct prom_family *prom_registry__family(struct prom_registry *r, const struct prom_family_opts *o);

/*
 * The series of these label values (nlabels strings; NULL is ""), created if new. Never NULL
 * for a valid family except on ENOMEM: over the cap it is the overflow series. The handle stays
 * valid until prom_registry__free(): the collector may keep it to skip the lookup.
 */
struct prom_series *prom_family__series(struct prom_family *f, const char *const *values);
/* Updates through handles: -EINVAL for the wrong type or a negative counter increment. */
int prom_series__add(struct prom_series *s, double v);		/* counter, gauge */
int prom_series__set(struct prom_series *s, double v);		/* gauge; counter from a monotonic source */
int prom_series__observe(struct prom_series *s, double v);	/* histogram; NaN is ignored */
/* Lookup and update in one call (one lock). */
int prom_family__add(struct prom_family *f, const char *const *values, double v);
int prom_family__set(struct prom_family *f, const char *const *values, double v);
int prom_family__observe(struct prom_family *f, const char *const *values, double v);

/* Counts, for tests and self-monitoring. */
size_t prom_family__nseries(const struct prom_family *f);	/* overflow series not counted */
uint64_t prom_family__dropped(const struct prom_family *f);	/* updates sent to the overflow series */
/* Reads a series' value (counter/gauge) or count and sum (histogram). */
double prom_series__value(const struct prom_series *s);
uint64_t prom_series__count(const struct prom_series *s, double *sum);

/* The whole exposition appended to b: families in registration order, series in creation order. */
int prom_registry__write(struct prom_registry *r, enum prom_format fmt, struct membuf *b);

/*
 * The format for an HTTP Accept header (NULL or "" for none), as client_golang's
 * NegotiateIncludingOpenMetrics does: media ranges by q (highest first, then the more specific,
 * then in header order); q=0 is refused; the first that names a format served wins:
 * application/openmetrics-text with version 1.0.0, 0.0.1 or none -> OpenMetrics (served as
 * 1.0.0), text/plain with version 0.0.4 or none -> text. Wildcards (* / *, text / *) and
 * anything else fall back to text 0.0.4, the format every scraper reads.
 */
enum prom_format prom__negotiate(const char *accept);
const char *prom__content_type(enum prom_format fmt);

bool prom__valid_metric_name(const char *s);
bool prom__valid_label_name(const char *s);
/* A label value escaped for both formats (\\, \", \n; invalid UTF-8 as U+FFFD), unquoted. */
int prom__escape_label_value(struct membuf *b, const char *s, size_t len);
/* A float as both formats read it: shortest round-trip form, +Inf, -Inf, NaN. */
int prom__write_double(struct membuf *b, double v);

#endif /* PYTRACE_PROMTEXT_H */
