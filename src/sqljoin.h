/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Where statements meet the other capabilities: each completed statement goes to the request
 * its thread was serving (requests.h: per-route SQL time and counts, N+1), and with --sql-in-flame
 * its time becomes a leaf "[sql] <pattern>" under the stack that sent it, in the sampler's stacks
 * (weights then in microseconds). What a (process, stack id, pattern) turned into is remembered
 * (querycache.h), so a statement from a known place costs a lookup.
 */
#ifndef PYTRACE_SQLJOIN_H
#define PYTRACE_SQLJOIN_H

extern const struct capability sqljoin_capability;

#endif
