/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Log-linear latency histogram of nanosecond values (HDR-histogram layout): values below 32
 * exactly, above that 32 buckets per power of two, so a percentile is within 1/64 (1.6%) of
 * the true value. Buckets cover up to 2^42 ns (73 min); larger values go to the last bucket,
 * while min, max and sum stay exact. Fixed size (about 10 KiB), no allocation.
 */
#ifndef PYTRACE_LATHIST_H
#define PYTRACE_LATHIST_H

#include <stdint.h>

#define LATHIST_SUB_BITS	5
#define LATHIST_SUB		(1u << LATHIST_SUB_BITS)
#define LATHIST_MAX_LOG2	42
#define LATHIST_NBUCKETS	(LATHIST_SUB + (LATHIST_MAX_LOG2 - LATHIST_SUB_BITS) * LATHIST_SUB)
/* bound on |percentile - exact| / exact */
#define LATHIST_REL_ERROR	(1.0 / (2 * LATHIST_SUB))

struct lathist {
	uint64_t count;
	uint64_t sum;		/* saturates */
	uint64_t min, max;	/* min is UINT64_MAX while empty */
	uint64_t buckets[LATHIST_NBUCKETS];
};

void lathist__init(struct lathist *h);
void lathist__add(struct lathist *h, uint64_t ns);
void lathist__merge(struct lathist *dst, const struct lathist *src);
/* 0 when empty */
double lathist__mean(const struct lathist *h);
/*
 * The value at percentile p (0..100): the smallest recorded value v with at least p% of the
 * values <= v, within LATHIST_REL_ERROR (clamped to [min, max]; p >= 100 gives max exactly).
 * 0 when empty.
 */
uint64_t lathist__percentile(const struct lathist *h, double p);

/* Bucket index of a value and the bucket's range [lo, hi]: for exporters. */
unsigned lathist__bucket(uint64_t ns);
void lathist__bucket_range(unsigned idx, uint64_t *lo, uint64_t *hi);

#endif /* PYTRACE_LATHIST_H */
