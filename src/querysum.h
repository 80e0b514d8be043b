/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * db.query.summary, db.operation.name and db.collection.name of a statement, for metric labels.
 *
 * The summary follows OpenTelemetry's "Generating a summary of the query"
 * (open-telemetry/semantic-conventions docs/db/database-spans.md, read at commit
 * 384d66161cb18704c729645fa8136a148df9571c): "{operation1} {target1} {operation2} {target2}
 * {target3} ...", operations and targets in the order the statement gives them, truncated to
 * 255 characters but never inside an operation or a target. "SELECT recipes_author",
 * "INSERT shipping_details SELECT orders", "SELECT SELECT orders customers", "BEGIN".
 *
 * Complete statements are parsed by libpg_query (pg_query_parse_protobuf, PostgreSQL's own
 * grammar): operations are SELECT (not a bare VALUES list), INSERT, UPDATE, DELETE, MERGE, and
 * the statement's first keyword for anything else (BEGIN, SAVEPOINT, CREATE, SET, ...);
 * targets are the relations (RangeVar) it names, schema-qualified as written, each once per
 * operation, in double quotes when not a plain lower-case identifier ("song list"). A WITH
 * clause is read first, as written; a CTE's name used in FROM counts as a target.
 * Cut or unparsable text falls back to the normalized pattern (sqlnorm.h): the first keyword
 * and the names after FROM, JOIN, INTO, UPDATE, TABLE, plus SELECT after "(".
 * Never a literal: targets are identifiers, and the fallback reads a pattern whose literals are
 * already "?". Savepoint, cursor and prepared-statement names are not targets.
 *
 * db.collection.name is the one relation when the statement names exactly one, else "".
 * Semantic conventions' SQL page now advises against deriving it (and db.operation.name) from
 * the query text; the issue asks for both labels, so they are derived, from the parse tree.
 *
 * Cost: a parse allocates and takes tens of microseconds. Callers compute a summary once per
 * distinct pattern and cache it (as sqlnorm__fingerprint), never per captured statement.
 * libpg_query keeps per-thread memory: see sqlnorm__exit().
 */
#ifndef PYTRACE_QUERYSUM_H
#define PYTRACE_QUERYSUM_H

#include <stdbool.h>
#include <stddef.h>

#define QUERYSUM_MAX_LEN	255

struct query_summary {
	char summary[QUERYSUM_MAX_LEN + 1];
	char operation[64];		/* the first operation, "" if none */
	char collection[QUERYSUM_MAX_LEN + 1];	/* the only relation, or "" */
	bool from_parse_tree;		/* false: from the normalized pattern */
};

/* From statement text; truncated: text is a prefix (the capture cap). */
void querysum__from_text(const char *text, size_t len, bool truncated, struct query_summary *out);
/* From a pattern of sqlnorm__pattern() alone (no parse). */
void querysum__from_pattern(const char *pattern, struct query_summary *out);

#endif /* PYTRACE_QUERYSUM_H */
