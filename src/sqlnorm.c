// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* SQL normalizer: a single-pass lexer writing tokens into a bounded buffer. */
#include <ctype.h>
#include <pg_query.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sqlnorm.h"
#include "utf8.h"
#include "util.h"

/* sorted for bsearch; words outside this list are identifiers and get lower-cased */
static const char *const keywords[] = {
	"ABORT", "ALL", "ALTER", "ANALYZE", "AND", "ANY", "ARRAY", "AS", "ASC", "BEGIN",
	"BETWEEN", "BY", "CALL", "CASCADE", "CASE", "CAST", "CHECK", "COALESCE", "COLLATE",
	"COLUMN", "COMMIT", "CONCURRENTLY", "CONFLICT", "CONSTRAINT", "COPY", "COUNT", "CREATE",
	"CROSS", "CURRENT_DATE", "CURRENT_TIMESTAMP", "CURRENT_USER", "DEALLOCATE", "DECLARE",
	"DEFAULT", "DELETE", "DESC", "DISTINCT", "DO", "DROP", "ELSE", "END", "ESCAPE", "EXCEPT",
	"EXECUTE", "EXISTS", "EXPLAIN", "EXTRACT", "FALSE", "FETCH", "FILTER", "FIRST", "FOR",
	"FOREIGN", "FROM", "FULL", "GRANT", "GROUP", "HAVING", "ILIKE", "IN", "INDEX", "INNER",
	"INSERT", "INTERSECT", "INTERVAL", "INTO", "IS", "ISNULL", "JOIN", "KEY", "LAST",
	"LATERAL", "LEFT", "LIKE", "LIMIT", "LISTEN", "LOCK", "LOCKED", "MERGE", "NATURAL",
	"NOT", "NOTHING", "NOTIFY", "NOTNULL", "NOWAIT", "NULL", "NULLIF", "NULLS", "OF",
	"OFFSET", "ON", "ONLY", "OR", "ORDER", "OUTER", "OVER", "PARTITION", "PREPARE", "PRIMARY",
	"RECURSIVE", "REFERENCES", "RELEASE", "RESET", "RETURNING", "REVOKE", "RIGHT",
	"ROLLBACK", "ROW", "ROWS", "SAVEPOINT", "SELECT", "SET", "SHARE", "SHOW", "SIMILAR",
	"SKIP", "SOME", "START", "TABLE", "THEN", "TO", "TRANSACTION", "TRUE", "TRUNCATE",
	"UNION", "UNIQUE", "UNLISTEN", "UPDATE", "USING", "VACUUM", "VALUES", "VIEW", "WHEN",
	"WHERE", "WINDOW", "WITH", "WITHIN", "WORK",
};
#define KW_MAXLEN 17

enum tok { T_NONE, T_WORD, T_KW, T_QIDENT, T_VALUE, T_OPEN, T_CLOSE, T_COMMA, T_OP, T_CAST, T_SEMI };
enum gkind { G_OTHER, G_IN, G_ROW, G_ARRAY };

#define MAX_GROUPS 32

struct group {
	size_t start;		/* output offset just after the bracket */
	size_t prev_row, merge_to; /* G_ROW after another: where that row starts and ends */
	unsigned nvals;
	enum gkind kind;
	bool plain;		/* only values, commas, casts and plain sub-groups so far */
};

struct lexer {
	const char *in;
	size_t inlen;
	bool truncated;
	char *out;
	size_t room, len;	/* room excludes the cut mark and NUL */
	size_t tok_start;	/* output offset before the last token and its space */
	enum tok prev;
	const char *prev_kw;
	bool space, cast, stop, cut;
	int row_state;		/* 1: a VALUES row just closed, 2: and a comma followed */
	unsigned row_depth;
	size_t row_start, row_end;	/* the last VALUES row kept */
	unsigned depth, deep;	/* deep: brackets opened beyond MAX_GROUPS */
	int squash;		/* index of the group written as "..." early, or -1 */
	struct group g[MAX_GROUPS];
};

/* keywords[kw_from[c] .. kw_from[c + 1]) start with 'A' + c; kw_len[k] = strlen(keywords[k]) */
static uint8_t kw_from[27], kw_len[ARRAY_SIZE(keywords)];

__attribute__((constructor)) static void kw_index(void)
{
	unsigned k = 0;

	for (unsigned c = 0; c < ARRAY_SIZE(kw_from); c++) {
		while (k < ARRAY_SIZE(keywords) && keywords[k][0] < (int)('A' + c))
			k++;
		kw_from[c] = k;
	}
	for (k = 0; k < ARRAY_SIZE(keywords); k++)
		kw_len[k] = strlen(keywords[k]);
}

/* Identifiers are ASCII-case-insensitive, whatever the locale: ASCII rules, not <ctype.h>. */
static bool is_digit(unsigned char c)
{
	return (unsigned)(c - '0') < 10;
}

static bool is_alpha(unsigned char c)
{
	return (unsigned)((c | 0x20) - 'a') < 26;
}

static const char *keyword(const char *w, size_t n)
{
	char up[KW_MAXLEN];
	unsigned c;

	if (!n || n > KW_MAXLEN)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)w[i] >= 0x80)
			return NULL;
		up[i] = w[i] >= 'a' && w[i] <= 'z' ? w[i] - ('a' - 'A') : w[i];
	}
	c = (unsigned char)up[0] - 'A';
	if (c >= 26)
		return NULL;
	for (unsigned k = kw_from[c]; k < kw_from[c + 1]; k++)
		if (kw_len[k] == n && memcmp(keywords[k], up, n) == 0)
			return keywords[k];
	return NULL;
}

static bool is_kw(const struct lexer *l, const char *kw)
{
	return l->prev == T_KW && strcmp(l->prev_kw, kw) == 0;
}

static bool ident_start(unsigned char c)
{
	return is_alpha(c) || c == '_' || c >= 0x80;
}

static bool ident_char(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c == '_' || c == '$' || c >= 0x80;
}

static bool prev_is_dots(const struct lexer *l, const struct group *g)
{
	return g->merge_to && g->merge_to - g->prev_row == 5 &&
	       memcmp(l->out + g->prev_row, "(...)", 5) == 0;
}

/* Out of room inside a value list: write it as "..." now and drop the rest of its contents. */
static bool squash(struct lexer *l)
{
	if (l->deep)
		return false;
	for (unsigned k = l->depth; k-- > 0;) {
		struct group *g = &l->g[k];

		if (!g->plain)
			return false;
		if (g->kind == G_OTHER)
			continue;
		if (prev_is_dots(l, g)) {
			l->len = g->merge_to;
		} else {
			if (g->start + 3 > l->room)
				return false;
			memcpy(l->out + g->start, "...", 3);
			l->len = g->start + 3;
		}
		l->squash = k;
		return true;
	}
	return false;
}

static bool put(struct lexer *l, const char *s, size_t n)
{
	if (l->squash >= 0)
		return true;
	if (l->len + n > l->room) {
		if (squash(l))
			return true;
		l->cut = l->stop = true;
		l->len = l->tok_start;	/* no half tokens */
		return false;
	}
	memcpy(l->out + l->len, s, n);
	l->len += n;
	return true;
}

/* Copies bytes as valid UTF-8; folds ASCII to lower case if asked. */
static bool put_utf8(struct lexer *l, const char *s, size_t n, bool lower)
{
	while (n) {
		uint32_t cp;
		size_t k = 0;

		/*
		 * A run of ASCII without NUL in one step. Byte by byte would come to the same: where
		 * one byte of it does not fit, put() squashes or cuts, and neither looks at the bytes
		 * of the token written before.
		 */
		while (k < n && (unsigned char)s[k] - 1u < 0x7f)
			k++;
		if (k) {
			if (l->squash < 0 && l->len + k <= l->room) {
				char *o = l->out + l->len;

				if (lower) {
					for (size_t i = 0; i < k; i++)
						o[i] = s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A') : s[i];
				} else {
					memcpy(o, s, k);
				}
				l->len += k;
			} else if (!put(l, s, k)) {
				return false;
			}
			s += k;
			n -= k;
			continue;
		}
		k = utf8_next(s, n, &cp);

		if (cp == 0xfffd) {
			if (!put(l, "\xef\xbf\xbd", 3))
				return false;
		} else if (cp == 0) {
			/* NUL: skipped */
		} else if (!put(l, s, k)) {
			return false;
		}
		s += k;
		n -= k;
	}
	return true;
}

static bool value_kw(const char *kw)
{
	return !strcmp(kw, "NULL") || !strcmp(kw, "TRUE") || !strcmp(kw, "FALSE") ||
	       !strcmp(kw, "DEFAULT") || !strcmp(kw, "ARRAY");
}

/*
 * Starts a token ending at input offset end: space, group and row bookkeeping. False when
 * lexing stops: the token is the cut-off tail of truncated text, or the buffer is full.
 */
static bool begin(struct lexer *l, enum tok t, const char *kw, size_t end)
{
	struct group *g = l->depth && !l->deep ? &l->g[l->depth - 1] : NULL;
	char last = l->len ? l->out[l->len - 1] : '(';

	if (l->stop)
		return false;
	if (l->truncated && end >= l->inlen && (t == T_WORD || t == T_KW || t == T_OP || t == T_CAST)) {
		l->stop = true;
		return false;
	}
	l->tok_start = l->len;
	if (l->space && last != '(' && last != '[' && t != T_COMMA && t != T_CLOSE &&
	    !put(l, " ", 1))
		return false;
	l->space = false;

	if (g) {
		switch (t) {
		case T_VALUE:
			g->nvals++;
			break;
		case T_COMMA: case T_OPEN: case T_CLOSE: case T_CAST:
			break;
		case T_WORD: case T_QIDENT:
			if (!l->cast)
				g->plain = false;
			break;
		case T_KW:
			if (!l->cast && !value_kw(kw))
				g->plain = false;
			break;
		default:
			g->plain = false;
		}
	}
	if (l->squash >= 0 && g && !g->plain) {
		l->cut = l->stop = true;
		return false;
	}
	l->cast = t == T_CAST || (l->cast && (t == T_WORD || t == T_KW || t == T_QIDENT));
	l->row_state = t == T_COMMA && l->row_state == 1 && l->depth == l->row_depth ? 2 : 0;
	l->prev = t;
	l->prev_kw = kw;
	return true;
}

static void simple(struct lexer *l, enum tok t, const char *s, size_t n, size_t end)
{
	if (begin(l, t, NULL, end))
		put(l, s, n);
}

static void open_group(struct lexer *l, char c, size_t end)
{
	enum gkind kind = G_OTHER;
	size_t merge_to = 0, prev_row = 0;
	struct group *g;

	if (c == '(' && is_kw(l, "IN")) {
		kind = G_IN;
	} else if (c == '(' && is_kw(l, "VALUES")) {
		kind = G_ROW;
	} else if (c == '(' && l->row_state == 2 && l->depth == l->row_depth) {
		kind = G_ROW;
		merge_to = l->row_end;
		prev_row = l->row_start;
	} else if (c == '[' && is_kw(l, "ARRAY")) {
		kind = G_ARRAY;
	}
	if (!begin(l, T_OPEN, NULL, end) || !put(l, &c, 1))
		return;
	if (l->deep || l->depth == MAX_GROUPS) {
		if (l->depth)
			l->g[l->depth - 1].plain = false;
		l->deep++;
		return;
	}
	g = &l->g[l->depth++];
	g->start = l->len;
	g->merge_to = merge_to;
	g->prev_row = prev_row;
	g->kind = kind;
	g->nvals = 0;
	g->plain = true;
}

/* Replaces a plain value list's contents by "..."; false if it could not. */
static bool collapse(struct lexer *l, const struct group *g, unsigned nvals)
{
	if (g->kind == G_OTHER || !g->plain || !nvals)
		return false;
	if (g->start + 3 > l->room)
		return false;
	l->len = g->start;
	memcpy(l->out + l->len, "...", 3);
	l->len += 3;
	return true;
}

static void close_group(struct lexer *l, char c, size_t end)
{
	struct group g;
	bool squashed, merged;

	if (!begin(l, T_CLOSE, NULL, end))
		return;
	if (l->deep) {
		l->deep--;
		put(l, &c, 1);
		return;
	}
	if (!l->depth) {
		put(l, &c, 1);
		return;
	}
	g = l->g[--l->depth];
	if (l->squash >= 0 && (int)l->depth > l->squash) {
		l->g[l->depth - 1].plain &= g.plain;
		l->g[l->depth - 1].nvals += g.nvals;
		return;
	}
	squashed = l->squash == (int)l->depth;
	if (squashed)
		l->squash = -1;
	if (!squashed)
		collapse(l, &g, g.nvals);
	merged = squashed && g.merge_to && l->len == g.merge_to;
	if (!merged && !put(l, &c, 1))
		return;
	if (l->depth) {
		l->g[l->depth - 1].plain &= g.plain;
		l->g[l->depth - 1].nvals += g.nvals;
	}
	if (g.kind != G_ROW)
		return;
	/* "VALUES (...), (...)" -> "VALUES (...)", and any row repeating the one before it */
	if (!merged && g.merge_to && l->len - (g.start - 1) == g.merge_to - g.prev_row &&
	    memcmp(l->out + g.start - 1, l->out + g.prev_row, g.merge_to - g.prev_row) == 0)
		merged = true;
	if (merged) {
		l->len = g.merge_to;
	} else {
		l->row_start = g.start - 1;
		l->row_end = l->len;
	}
	l->row_state = 1;
	l->row_depth = l->depth;
}

/* A quoted string from s[i] (the opening quote); returns the offset after it or 0 if open. */
static size_t skip_string(const struct lexer *l, size_t i, bool backslash)
{
	for (i++; i < l->inlen; i++) {
		char c = l->in[i];

		if (backslash && c == '\\')
			i++;
		else if (c == '\'' && i + 1 < l->inlen && l->in[i + 1] == '\'')
			i++;
		else if (c == '\'')
			return i + 1;
	}
	return 0;
}

/* $tag$ ... $tag$ from s[i]; returns the offset after it, 0 if open, i if not a dollar quote */
static size_t skip_dollar(const struct lexer *l, size_t i)
{
	size_t j = i + 1;
	const char *end;

	if (j < l->inlen && ident_start(l->in[j])) {
		while (j < l->inlen && ident_char(l->in[j]) && l->in[j] != '$')
			j++;
	}
	if (j >= l->inlen || l->in[j] != '$')
		return i;
	j++;
	end = memmem(l->in + j, l->inlen - j, l->in + i, j - i);
	return end ? (size_t)(end - l->in) + (j - i) : 0;
}

static size_t skip_number(const struct lexer *l, size_t i)
{
	const char *s = l->in;
	size_t n = l->inlen;

	if (s[i] == '0' && i + 2 < n && strchr("xXoObB", s[i + 1]) && isxdigit((unsigned char)s[i + 2])) {
		for (i += 2; i < n && (isxdigit((unsigned char)s[i]) || s[i] == '_'); i++)
			;
		return i;
	}
	while (i < n && (isdigit((unsigned char)s[i]) || s[i] == '_'))
		i++;
	if (i < n && s[i] == '.' && !(i + 1 < n && s[i + 1] == '.'))
		for (i++; i < n && isdigit((unsigned char)s[i]); i++)
			;
	if (i + 1 < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;

		if (j + 1 < n && (s[j] == '+' || s[j] == '-'))
			j++;
		if (isdigit((unsigned char)s[j]))
			for (i = j; i < n && isdigit((unsigned char)s[i]); i++)
				;
	}
	return i;
}

static bool number_at(const struct lexer *l, size_t i)
{
	return i < l->inlen && (is_digit(l->in[i]) ||
		(l->in[i] == '.' && i + 1 < l->inlen && is_digit(l->in[i + 1])));
}

/* A sign that belongs to the number after it: nothing that could end an operand precedes. */
static bool unary_context(const struct lexer *l)
{
	switch (l->prev) {
	case T_NONE: case T_OPEN: case T_COMMA: case T_OP: case T_SEMI:
		return true;
	case T_KW:
		return !value_kw(l->prev_kw) && strcmp(l->prev_kw, "END") != 0;
	default:
		return false;
	}
}

/* psycopg2's %s and %(name)s; returns the offset after the marker or i */
static size_t skip_pyformat(const struct lexer *l, size_t i)
{
	size_t j = i + 1;

	if (j < l->inlen && l->in[j] == 's')
		return j + 1 < l->inlen && ident_char(l->in[j + 1]) ? i : j + 1;
	if (j >= l->inlen || l->in[j] != '(')
		return i;
	for (j++; j < l->inlen && l->in[j] != ')'; j++)
		if (!ident_char(l->in[j]))
			return i;
	return j + 2 <= l->inlen && l->in[j + 1] == 's' ? j + 2 : i;
}

static void word(struct lexer *l, size_t i, size_t j)
{
	const char *kw = keyword(l->in + i, j - i);

	if (!begin(l, kw ? T_KW : T_WORD, kw, j))
		return;
	if (kw)
		put(l, kw, strlen(kw));
	else
		put_utf8(l, l->in + i, j - i, true);
}

/* "ident" with "" escapes, verbatim; i at the prefix (U&) or quote. Returns the end or 0. */
static size_t quoted_ident(struct lexer *l, size_t i, size_t q)
{
	size_t j;

	for (j = q + 1; j < l->inlen; j++) {
		if (l->in[j] != '"')
			continue;
		if (j + 1 < l->inlen && l->in[j + 1] == '"') {
			j++;
			continue;
		}
		if (begin(l, T_QIDENT, NULL, j + 1))
			put_utf8(l, l->in + i, j + 1 - i, false);
		return j + 1;
	}
	return 0;
}

static void lex(struct lexer *l)
{
	const char *s = l->in;
	size_t n = l->inlen, i = 0, j;

	while (i < n && !l->stop) {
		unsigned char c = s[i], d = i + 1 < n ? s[i + 1] : 0;

		if (c <= ' ' || c == 0x7f) {
			l->space = true;
			i++;
		} else if (c == '-' && d == '-') {
			while (i < n && s[i] != '\n')
				i++;
			l->space = true;
		} else if (c == '/' && d == '*') {
			unsigned nest = 0;

			for (; i < n; i++) {
				if (s[i] == '/' && i + 1 < n && s[i + 1] == '*')
					nest++, i++;
				else if (s[i] == '*' && i + 1 < n && s[i + 1] == '/' && !--nest)
					break;
			}
			if (i >= n) {
				l->cut = true;
				break;
			}
			i += 2;
			l->space = true;
		} else if (c == '\'' || (d == '\'' && strchr("eEbBxXnN", c)) ||
			   ((c == 'u' || c == 'U') && d == '&' && i + 2 < n && s[i + 2] == '\'')) {
			size_t q = c == '\'' ? i : (d == '\'' ? i + 1 : i + 2);

			j = skip_string(l, q, c == 'e' || c == 'E');
			simple(l, T_VALUE, "?", 1, j ? j : n);
			if (!j) {
				l->cut = true;
				break;
			}
			i = j;
		} else if (c == '"' || ((c == 'u' || c == 'U') && d == '&' && i + 2 < n && s[i + 2] == '"')) {
			j = quoted_ident(l, i, c == '"' ? i : i + 2);
			if (!j) {
				l->cut = true;
				break;
			}
			i = j;
		} else if (c == '$' && isdigit(d)) {
			for (j = i + 1; j < n && isdigit((unsigned char)s[j]); j++)
				;
			simple(l, T_VALUE, "?", 1, j);
			i = j;
		} else if (c == '$' && (j = skip_dollar(l, i)) != i) {
			simple(l, T_VALUE, "?", 1, j ? j : n);
			if (!j) {
				l->cut = true;
				break;
			}
			i = j;
		} else if (number_at(l, i)) {
			j = skip_number(l, i);
			simple(l, T_VALUE, "?", 1, j);
			i = j;
		} else if ((c == '-' || c == '+') && unary_context(l)) {
			for (j = i + 1; j < n && (unsigned char)s[j] <= ' '; j++)
				;
			if (number_at(l, j)) {
				j = skip_number(l, j);
				simple(l, T_VALUE, "?", 1, j);
			} else {
				simple(l, T_OP, s + i, 1, i + 1);
				j = i + 1;
			}
			i = j;
		} else if (c == '%' && (j = skip_pyformat(l, i)) != i) {
			simple(l, T_VALUE, "?", 1, j);
			i = j;
		} else if (c == '?') {
			simple(l, T_VALUE, "?", 1, i + 1);
			i++;
		} else if (ident_start(c)) {
			for (j = i + 1; j < n && ident_char(s[j]); j++)
				;
			word(l, i, j);
			i = j;
		} else if (c == '(' || c == '[') {
			open_group(l, c, i + 1);
			i++;
		} else if (c == ')' || c == ']') {
			close_group(l, c, i + 1);
			i++;
		} else if (c == ',') {
			simple(l, T_COMMA, ",", 1, i + 1);
			i++;
		} else if (c == ';') {
			if (l->prev != T_SEMI)
				simple(l, T_SEMI, ";", 1, i + 1);
			i++;
		} else if (c == ':' && d == ':') {
			simple(l, T_CAST, "::", 2, i + 2);
			i += 2;
		} else {
			simple(l, T_OP, s + i, 1, i + 1);
			i++;
		}
	}
}

/* Cut text: the innermost open value list becomes "(..." so its length does not matter. */
static void collapse_open(struct lexer *l)
{
	unsigned nvals = 0;

	if (l->deep || l->squash >= 0)
		return;
	for (unsigned k = l->depth; k-- > 0;) {
		struct group *g = &l->g[k];

		nvals += g->nvals;
		if (!g->plain)
			return;
		if (g->kind == G_ROW && prev_is_dots(l, g) && nvals) {
			l->len = g->merge_to;
			return;
		}
		if (collapse(l, g, nvals))
			return;
	}
}

size_t sqlnorm__pattern(const char *text, size_t len, bool truncated, char *out, size_t outsize)
{
	static const char mark[] = SQLNORM_CUT_MARK;
	struct lexer l;

	/* not g[]: open_group() fills each group before it is read (zeroing it is a tenth of the time) */
	memset(&l, 0, offsetof(struct lexer, g));
	l.in = text;
	l.inlen = text ? len : 0;
	l.truncated = truncated;
	l.out = out;
	l.squash = -1;
	if (outsize < SQLNORM_MIN_OUT) {
		if (outsize)
			out[0] = '\0';
		return 0;
	}
	l.room = outsize - sizeof(mark);
	lex(&l);
	if (truncated)
		l.cut = true;
	if (l.prev == T_SEMI)
		l.len = l.tok_start;
	if (l.cut) {
		collapse_open(&l);
		if (!l.len) {
			memcpy(out, mark + 1, sizeof(mark) - 1);
			return sizeof(mark) - 2;
		}
		memcpy(out + l.len, mark, sizeof(mark));
		return l.len + sizeof(mark) - 1;
	}
	out[l.len] = '\0';
	return l.len;
}

bool sqlnorm__is_cut(const char *pattern)
{
	size_t n = strlen(pattern), m = strlen(SQLNORM_CUT_MARK + 1);

	return n >= m && memcmp(pattern + n - m, SQLNORM_CUT_MARK + 1, m) == 0;
}

uint64_t sqlnorm__hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* pg_query_exit() crashes in a thread that never used libpg_query, and so does any use after it */
static __thread bool pgq_used, pgq_closed;

uint64_t sqlnorm__fingerprint(const char *text, size_t len, bool truncated, const char *pattern,
			      bool *from_libpg_query)
{
	PgQueryFingerprintResult r;
	uint64_t fp = 0;
	bool ok = false;
	char *copy;

	if (!truncated && !pgq_closed && text && len && !memchr(text, '\0', len) && !sqlnorm__is_cut(pattern) &&
	    (copy = strndup(text, len))) {
		pgq_used = true;
		r = pg_query_fingerprint(copy);
		if (!r.error) {
			fp = r.fingerprint;
			ok = true;
		}
		pg_query_free_fingerprint_result(r);
		free(copy);
	}
	if (from_libpg_query)
		*from_libpg_query = ok;
	return ok ? fp : sqlnorm__hash(pattern);
}

void sqlnorm__exit(void)
{
	if (pgq_used)
		pg_query_exit();
	pgq_closed = true;
}

/* next word of p at paren depth 0, skipping quoted identifiers; NULL at the end */
static const char *next_word(const char *p, size_t *n, unsigned *depth)
{
	while (*p) {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				;
			if (*p)
				p++;
		} else if (isalpha((unsigned char)*p) || *p == '_') {
			const char *w = p;

			while (isalnum((unsigned char)*p) || *p == '_' || *p == '$')
				p++;
			*n = p - w;
			return w;
		} else {
			if (*p == '(')
				(*depth)++;
			else if (*p == ')' && *depth)
				(*depth)--;
			p++;
		}
	}
	return NULL;
}

size_t sqlnorm__operation(const char *pattern, char *buf, size_t size)
{
	static const char *const main_kw[] = { "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE" };
	const char *w, *p = pattern;
	unsigned depth = 0;
	size_t n = 0;

	if (!size)
		return 0;
	buf[0] = '\0';
	while (*p == ' ' || *p == '(')
		p++;
	if (!isalpha((unsigned char)*p))
		return 0;
	w = next_word(p, &n, &depth);
	if (n == 4 && strncasecmp(w, "WITH", 4) == 0) {
		const char *m;
		size_t k;

		for (m = w + n; (m = next_word(m, &k, &depth)); m += k) {
			for (size_t i = 0; depth == 0 && i < ARRAY_SIZE(main_kw); i++) {
				if (k == strlen(main_kw[i]) && !strncasecmp(m, main_kw[i], k)) {
					w = m, n = k;
					goto found;
				}
			}
		}
	}
found:
	if (n >= size)
		n = size - 1;
	for (size_t i = 0; i < n; i++)
		buf[i] = toupper((unsigned char)w[i]);
	buf[n] = '\0';
	return n;
}
