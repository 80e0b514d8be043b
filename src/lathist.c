// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Log-linear latency histogram. */
#include <math.h>
#include <string.h>

#include "lathist.h"

void lathist__init(struct lathist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned lathist__bucket(uint64_t ns)
{
	unsigned e;

	if (ns < LATHIST_SUB)
		return (unsigned)ns;
	e = 63 - __builtin_clzll(ns);
	if (e >= LATHIST_MAX_LOG2)
		return LATHIST_NBUCKETS - 1;
	/* octave e holds [2^e, 2^(e+1)) in LATHIST_SUB steps of 2^(e - SUB_BITS) */
	return LATHIST_SUB + (e - LATHIST_SUB_BITS) * LATHIST_SUB +
	       (unsigned)((ns >> (e - LATHIST_SUB_BITS)) - LATHIST_SUB);
}

void lathist__bucket_range(unsigned idx, uint64_t *lo, uint64_t *hi)
{
	unsigned e, sub;

	if (idx < LATHIST_SUB) {
		*lo = *hi = idx;
		return;
	}
	if (idx >= LATHIST_NBUCKETS)
		idx = LATHIST_NBUCKETS - 1;
	e = (idx - LATHIST_SUB) / LATHIST_SUB + LATHIST_SUB_BITS;
	sub = (idx - LATHIST_SUB) % LATHIST_SUB;
	*lo = (uint64_t)(LATHIST_SUB + sub) << (e - LATHIST_SUB_BITS);
	*hi = *lo + (1ull << (e - LATHIST_SUB_BITS)) - 1;
	if (idx == LATHIST_NBUCKETS - 1)
		*hi = UINT64_MAX;
}

void lathist__add(struct lathist *h, uint64_t ns)
{
	h->count++;
	h->sum = h->sum + ns < h->sum ? UINT64_MAX : h->sum + ns;
	if (ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
	h->buckets[lathist__bucket(ns)]++;
}

void lathist__merge(struct lathist *dst, const struct lathist *src)
{
	if (!src->count)
		return;
	dst->count += src->count;
	dst->sum = dst->sum + src->sum < dst->sum ? UINT64_MAX : dst->sum + src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	for (unsigned i = 0; i < LATHIST_NBUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
}

double lathist__mean(const struct lathist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0;
}

uint64_t lathist__percentile(const struct lathist *h, double p)
{
	uint64_t rank, seen = 0, lo, hi, v;

	if (!h->count)
		return 0;
	if (p >= 100 || isnan(p))
		return h->max;
	if (p <= 0)
		return h->min;
	rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < LATHIST_NBUCKETS; i++) {
		seen += h->buckets[i];
		if (seen < rank)
			continue;
		if (i == LATHIST_NBUCKETS - 1)
			return h->max;
		lathist__bucket_range(i, &lo, &hi);
		v = lo + (hi - lo + 1) / 2;
		if (v < h->min)
			v = h->min;
		if (v > h->max)
			v = h->max;
		return v;
	}
	return h->max;
}
