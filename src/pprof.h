/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * pprof profiles from symbolized stacks, for `go tool pprof`, Pyroscope and Grafana Alloy's
 * pyroscope.scrape: the perftools.profiles.Profile message (proto/profile.proto), encoded by
 * protobuf-c and gzip-compressed by zlib, as pprof reads it.
 *
 * Frames are our names, root first: "qualname (path/file.py:LINE)" becomes a Function (name
 * qualname, filename path) and a Location (that function at LINE); "[native]", "[sql] ..." and
 * every other frame that does not have that form is a function named by the whole frame, with
 * no file and line 0. Functions are deduplicated by (name, file), locations by (function, line),
 * strings by value. The same stack added twice gives two samples (pprof adds them up).
 *
 * Sample values: with period_ns > 0 (a CPU profile sampled every period_ns), two per sample,
 * samples/count and cpu/nanoseconds (count x period_ns), period_type cpu/nanoseconds, as Go's
 * own CPU profiles; else one, sample_type/sample_unit (default samples/count).
 * Memory: one entry per distinct string, function, location and sample: the caller bounds it
 * with the stack aggregator's caps.
 */
#ifndef PYTRACE_PPROF_H
#define PYTRACE_PPROF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "membuf.h"

struct stack_agg;
struct pprof;

struct pprof_opts {
	const char *sample_type;	/* default "samples" */
	const char *sample_unit;	/* default "count" */
	int64_t period_ns;		/* > 0: CPU profile, see above */
	int64_t time_nanos;		/* start of the window, ns since the Unix epoch */
	int64_t duration_nanos;		/* length of the window */
	const char *comment;		/* optional, shown by pprof -comments */
};

struct pprof *pprof__new(const struct pprof_opts *o);
void pprof__free(struct pprof *p);

/* frames[0] is the root, frames[n-1] the leaf. Returns 0, -EINVAL (no frames), -ENOMEM. */
int pprof__add(struct pprof *p, const char *const *frames, size_t nframes, uint64_t count);
/* Every stack of an aggregator (its overflow stack included). */
int pprof__add_stacks(struct pprof *p, const struct stack_agg *a);

size_t pprof__nsamples(const struct pprof *p);
size_t pprof__nfunctions(const struct pprof *p);
size_t pprof__nlocations(const struct pprof *p);

/* The gzipped profile appended to b, or written to f. 0 or -errno (-EIO for f). */
int pprof__write_mem(struct pprof *p, struct membuf *b);
int pprof__write_file(struct pprof *p, FILE *f);
/* The encoded message without gzip (tests decode it with protobuf-c). Caller frees *out. */
int pprof__encode(struct pprof *p, uint8_t **out, size_t *len);

#endif /* PYTRACE_PPROF_H */
