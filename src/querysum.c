// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* db.query.summary from libpg_query's parse tree, or from the normalized pattern. */
#include <ctype.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "querysum.h"
#include "sqlnorm.h"

#define MAX_TARGETS	64

struct builder {
	struct query_summary *out;
	size_t len;
	bool full;			/* a token did not fit: no more tokens */
	/* targets of the current operation, for once-per-operation */
	char seen[MAX_TARGETS][QUERYSUM_MAX_LEN + 1];
	size_t nseen;
	/* distinct targets of the statement, for db.collection.name */
	size_t ndistinct;
	char first[QUERYSUM_MAX_LEN + 1];
};

static void add_token(struct builder *b, const char *tok)
{
	size_t n = strlen(tok);

	if (b->full || !n)
		return;
	if (b->len + (b->len ? 1 : 0) + n > QUERYSUM_MAX_LEN) {
		b->full = true;
		return;
	}
	if (b->len)
		b->out->summary[b->len++] = ' ';
	memcpy(b->out->summary + b->len, tok, n + 1);
	b->len += n;
}

static void add_operation(struct builder *b, const char *op)
{
	if (!b->out->operation[0])
		snprintf(b->out->operation, sizeof(b->out->operation), "%.63s", op);
	b->nseen = 0;
	add_token(b, op);
}

static void add_target(struct builder *b, const char *name)
{
	for (size_t i = 0; i < b->nseen; i++)
		if (!strcmp(b->seen[i], name))
			return;
	if (b->nseen < MAX_TARGETS)
		snprintf(b->seen[b->nseen++], sizeof(b->seen[0]), "%s", name);
	if (!b->ndistinct) {
		snprintf(b->first, sizeof(b->first), "%s", name);
		b->ndistinct = 1;
	} else if (b->ndistinct == 1 && strcmp(b->first, name)) {
		b->ndistinct = 2;
	}
	add_token(b, name);
}

static bool plain_ident(const char *s)
{
	if (!*s || !(islower((unsigned char)*s) || *s == '_'))
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' || *s == '$'))
			return false;
	return true;
}

/* appends name, quoted ("a""b") unless plain */
static void append_ident(char *buf, size_t size, const char *name)
{
	size_t n = strlen(buf);

	if (plain_ident(name)) {
		snprintf(buf + n, size - n, "%s", name);
		return;
	}
	if (n + 1 < size)
		buf[n++] = '"';
	for (; *name && n + 2 < size; name++) {
		if (*name == '"')
			buf[n++] = '"';
		buf[n++] = *name;
	}
	if (n + 1 < size)
		buf[n++] = '"';
	buf[n] = '\0';
}

static void range_var(struct builder *b, const PgQuery__RangeVar *rv)
{
	char name[QUERYSUM_MAX_LEN + 1] = "";

	if (!rv->relname || !*rv->relname)
		return;
	if (rv->catalogname && *rv->catalogname) {
		append_ident(name, sizeof(name), rv->catalogname);
		strncat(name, ".", sizeof(name) - strlen(name) - 1);
	}
	if (rv->schemaname && *rv->schemaname) {
		append_ident(name, sizeof(name), rv->schemaname);
		strncat(name, ".", sizeof(name) - strlen(name) - 1);
	}
	append_ident(name, sizeof(name), rv->relname);
	add_target(b, name);
}

static void walk(struct builder *b, const ProtobufCMessage *m, int depth);

static void walk_field(struct builder *b, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, int depth)
{
	const char *base = (const char *)m;

	if (f->type != PROTOBUF_C_TYPE_MESSAGE)
		return;
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t n = *(const size_t *)(base + f->quantifier_offset);
		ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + f->offset);

		for (size_t i = 0; i < n; i++)
			walk(b, arr[i], depth + 1);
		return;
	}
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		/* the oneof case is the field number of the member that is set */
		if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
			return;
	}
	walk(b, *(ProtobufCMessage *const *)(base + f->offset), depth + 1);
}

/* A statement's WITH clause as a message, or NULL (no member access through a null pointer). */
static const ProtobufCMessage *with_base(const PgQuery__WithClause *w)
{
	return w ? &w->base : NULL;
}

static void walk(struct builder *b, const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d;
	const ProtobufCMessage *with = NULL;

	if (!m || depth > 200 || b->full)
		return;
	d = m->descriptor;
	if (d == &pg_query__range_var__descriptor) {
		range_var(b, (const PgQuery__RangeVar *)m);
		return;
	}
	if (d == &pg_query__select_stmt__descriptor) {
		const PgQuery__SelectStmt *s = (const PgQuery__SelectStmt *)m;

		with = with_base(s->with_clause);
		walk(b, with, depth + 1);
		/* UNION & co. are two selects; a bare VALUES list (INSERT ... VALUES) is no operation */
		if (s->op <= PG_QUERY__SET_OPERATION__SETOP_NONE && !s->n_values_lists)
			add_operation(b, "SELECT");
	} else if (d == &pg_query__insert_stmt__descriptor) {
		with = with_base(((const PgQuery__InsertStmt *)m)->with_clause);
		walk(b, with, depth + 1);
		add_operation(b, "INSERT");
	} else if (d == &pg_query__update_stmt__descriptor) {
		with = with_base(((const PgQuery__UpdateStmt *)m)->with_clause);
		walk(b, with, depth + 1);
		add_operation(b, "UPDATE");
	} else if (d == &pg_query__delete_stmt__descriptor) {
		with = with_base(((const PgQuery__DeleteStmt *)m)->with_clause);
		walk(b, with, depth + 1);
		add_operation(b, "DELETE");
	} else if (d == &pg_query__merge_stmt__descriptor) {
		with = with_base(((const PgQuery__MergeStmt *)m)->with_clause);
		walk(b, with, depth + 1);
		add_operation(b, "MERGE");
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (with && f->type == PROTOBUF_C_TYPE_MESSAGE && f->descriptor == &pg_query__with_clause__descriptor)
			continue;	/* done first */
		walk_field(b, m, f, depth);
	}
}

static void finish(struct builder *b)
{
	if (b->ndistinct == 1)
		snprintf(b->out->collection, sizeof(b->out->collection), "%s", b->first);
}

static bool from_parse_tree(const char *text, size_t len, struct builder *b)
{
	char *sql = strndup(text, len);
	PgQueryProtobufParseResult r;
	PgQuery__ParseResult *tree;
	bool ok = false;

	if (!sql)
		return false;
	r = pg_query_parse_protobuf(sql);
	if (r.error || !r.parse_tree.data)
		goto out;
	tree = pg_query__parse_result__unpack(NULL, r.parse_tree.len, (const uint8_t *)r.parse_tree.data);
	if (!tree)
		goto out;
	for (size_t i = 0; i < tree->n_stmts; i++) {
		const PgQuery__RawStmt *rs = tree->stmts[i];
		const PgQuery__Node *n = rs->stmt;
		size_t off = (size_t)rs->stmt_location;

		if (!n || off > len)
			continue;
		if (n->node_case != PG_QUERY__NODE__NODE_SELECT_STMT && n->node_case != PG_QUERY__NODE__NODE_INSERT_STMT &&
		    n->node_case != PG_QUERY__NODE__NODE_UPDATE_STMT && n->node_case != PG_QUERY__NODE__NODE_DELETE_STMT &&
		    n->node_case != PG_QUERY__NODE__NODE_MERGE_STMT) {
			/* a utility statement: its first keyword (BEGIN, SAVEPOINT, CREATE, ...), then its relations */
			size_t slen = rs->stmt_len ? (size_t)rs->stmt_len : len - off;
			char pat[128], op[64];

			sqlnorm__pattern(text + off, slen < len - off ? slen : len - off, false, pat, sizeof(pat));
			sqlnorm__operation(pat, op, sizeof(op));
			if (*op)
				add_operation(b, op);
		}
		walk(b, &n->base, 0);
	}
	pg_query__parse_result__free_unpacked(tree, NULL);
	ok = true;
out:
	pg_query_free_protobuf_parse_result(r);
	free(sql);
	return ok;
}

static void reset(struct query_summary *out, struct builder *b)
{
	memset(out, 0, sizeof(*out));
	memset(b, 0, sizeof(*b));
	b->out = out;
}

void querysum__from_text(const char *text, size_t len, bool truncated, struct query_summary *out)
{
	struct builder *b = malloc(sizeof(*b));
	char pattern[2048];

	if (!b) {
		memset(out, 0, sizeof(*out));
		return;
	}
	reset(out, b);
	if (!truncated && from_parse_tree(text, len, b)) {
		finish(b);
		out->from_parse_tree = true;
		free(b);
		return;
	}
	free(b);
	sqlnorm__pattern(text, len, truncated, pattern, sizeof(pattern));
	querysum__from_pattern(pattern, out);
}

/* ---- fallback: tokens of a normalized pattern ---- */

/* next token: a word, a "quoted identifier" (returned unquoted, quoted=true), or one character */
static const char *next_token(const char *p, char *tok, size_t size, bool *quoted)
{
	size_t n = 0;

	*quoted = false;
	while (*p && isspace((unsigned char)*p))
		p++;
	if (!*p)
		return NULL;
	if (*p == '"') {
		*quoted = true;
		for (p++; *p; p++) {
			if (*p == '"') {
				if (p[1] != '"')
					break;
				p++;
			}
			if (n + 1 < size)
				tok[n++] = *p;
		}
		if (*p)
			p++;
	} else if (isalnum((unsigned char)*p) || *p == '_' || (unsigned char)*p >= 0x80) {
		while (*p && (isalnum((unsigned char)*p) || *p == '_' || *p == '$' || (unsigned char)*p >= 0x80)) {
			if (n + 1 < size)
				tok[n++] = *p;
			p++;
		}
	} else {
		tok[n++] = *p++;
	}
	tok[n] = '\0';
	return p;
}

static bool kw(const char *tok, bool quoted, const char *k)
{
	return !quoted && !strcasecmp(tok, k);
}

void querysum__from_pattern(const char *pattern, struct query_summary *out)
{
	struct builder *b = malloc(sizeof(*b));
	char tok[QUERYSUM_MAX_LEN + 1], prev[64] = "", op[64];
	const char *p = pattern;
	bool quoted, want_target = false, first = true;

	if (!b) {
		memset(out, 0, sizeof(*out));
		return;
	}
	reset(out, b);
	sqlnorm__operation(pattern, op, sizeof(op));
	while ((p = next_token(p, tok, sizeof(tok), &quoted))) {
		if (first) {
			first = false;
			if (*op)
				add_operation(b, op);
			if (kw(tok, quoted, "UPDATE"))
				want_target = true;
			if (kw(tok, quoted, op) || kw(tok, quoted, "WITH"))
				goto next;
		}
		if (want_target) {
			want_target = false;
			if (quoted || (isalpha((unsigned char)tok[0]) || tok[0] == '_')) {
				char name[QUERYSUM_MAX_LEN + 1] = "";

				if (!quoted && (kw(tok, quoted, "ONLY") || kw(tok, quoted, "LATERAL"))) {
					want_target = true;
					goto next;
				}
				append_ident(name, sizeof(name), tok);
				/* schema.table */
				while (*p == '.') {
					const char *q = next_token(p + 1, tok, sizeof(tok), &quoted);

					if (!q || !(quoted || isalpha((unsigned char)tok[0]) || tok[0] == '_'))
						break;
					strncat(name, ".", sizeof(name) - strlen(name) - 1);
					append_ident(name, sizeof(name), tok);
					p = q;
				}
				add_target(b, name);
				goto next;
			}
		}
		if (kw(tok, quoted, "FROM") || kw(tok, quoted, "JOIN") || kw(tok, quoted, "INTO") ||
		    kw(tok, quoted, "TABLE") || (kw(tok, quoted, "UPDATE") && strcasecmp(prev, "FOR") &&
						 strcasecmp(prev, "DO") && strcmp(prev, "KEY")))
			want_target = true;
		if (kw(tok, quoted, "SELECT") && !strcmp(prev, "("))
			add_operation(b, "SELECT");
		if ((kw(tok, quoted, "INSERT") || kw(tok, quoted, "UPDATE") || kw(tok, quoted, "DELETE")) &&
		    !strcmp(prev, "("))
			add_operation(b, tok);
	next:
		snprintf(prev, sizeof(prev), "%.63s", quoted ? "\"" : tok);
	}
	finish(b);
	free(b);
}
