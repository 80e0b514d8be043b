/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * SQL text -> pattern: one pass, no allocation, output bounded by the caller's buffer.
 * Literals and parameter markers become ?, value lists collapse to (...), comments go, keywords
 * are upper-cased and identifiers lower-cased, so statements differing only in values share a
 * pattern. The result is always valid UTF-8.
 */
#ifndef PYTRACE_SQLNORM_H
#define PYTRACE_SQLNORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* smallest useful outsize; below it the pattern is empty */
#define SQLNORM_MIN_OUT		16
/* appended when the text was cut (capture cap, unterminated literal or comment, full buffer) */
#define SQLNORM_CUT_MARK	" \u2026"

/*
 * Writes the NUL-terminated pattern of text[0..len) to out and returns its length (< outsize).
 * truncated: the text is a prefix of the statement; the partial word or operator at its end is
 * dropped and an open value list collapsed, so cuts at nearby offsets tend to agree.
 * Invalid UTF-8 becomes U+FFFD, NUL and control bytes count as white space.
 */
size_t sqlnorm__pattern(const char *text, size_t len, bool truncated, char *out, size_t outsize);

/* Whether a pattern is marked as cut (ends with SQLNORM_CUT_MARK). */
bool sqlnorm__is_cut(const char *pattern);

/*
 * 64-bit statement fingerprint. For complete text that libpg_query parses, the value of
 * pg_query_fingerprint() (the same for statements differing only in constants, as
 * pg_stat_statements would group them) and *from_libpg_query = true; otherwise FNV-1a of
 * pattern. libpg_query parses the whole statement and allocates: tens of microseconds, so call
 * this once per new pattern and cache the result, never per captured statement.
 * from_libpg_query may be NULL.
 */
uint64_t sqlnorm__fingerprint(const char *text, size_t len, bool truncated, const char *pattern,
			      bool *from_libpg_query);
/* FNV-1a 64 of a NUL-terminated string: the fallback fingerprint */
uint64_t sqlnorm__hash(const char *s);
/*
 * Frees libpg_query's per-thread memory context (valgrind only calls it "still reachable"
 * otherwise). libpg_query cannot be used again in that thread: later fingerprints there are
 * pattern hashes. For the end of a thread or program only.
 */
void sqlnorm__exit(void);

/*
 * The statement's operation for db.operation.name: its first keyword (SELECT, INSERT, BEGIN,
 * ...); for WITH the keyword of the main statement after the CTEs if found, else "WITH".
 * Writes "" when the pattern does not start with a word. Returns the length written.
 */
size_t sqlnorm__operation(const char *pattern, char *buf, size_t size);

#endif /* PYTRACE_SQLNORM_H */
