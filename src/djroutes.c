// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Django's URL patterns as route names: see djroutes.h. */
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "djroutes.h"
#include "hash.h"
#include "pythreads.h"
#include "symbolize.h"

#define OB_TYPE		8	/* PyObject.ob_type */
#define VAR_SIZE	16	/* PyVarObject.ob_size */
#define LIST_ITEMS	24	/* PyListObject.ob_item */
#define LIST_MAX	4096	/* items read of one urlpatterns list */

/* ---- Python's regex syntax to POSIX ERE ------------------------------------------------------ */

struct sbuf {
	char *p;
	size_t n, size;
	bool over;
};

static void sb_put(struct sbuf *b, const char *s, size_t len)
{
	if (b->n + len >= b->size) {
		b->over = true;
		return;
	}
	memcpy(b->p + b->n, s, len);
	b->n += len;
	b->p[b->n] = 0;
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_putc(struct sbuf *b, char c)
{
	sb_put(b, &c, 1);
}

#define ERE_SPECIAL ".[]()*+?{}|^$\\"

/*
 * glibc's regcomp copies a bounded repetition's operand once per count: (x{64}){64}{64} would
 * take a quarter of a million nodes. Counts are capped, and a group's more so (URL patterns have
 * small ones: a UUID's {12}); beyond them the pattern is not translated.
 */
#define REPEAT_MAX		64	/* {m,n} of a character or a bracket */
#define GROUP_REPEAT_MAX	16	/* {m,n} of a group */
#define GROUP_REPEATS		2	/* groups with one, in one pattern */

/*
 * Those caps bound one piece, not an endpoint of several pieces nor a table of 2,048 endpoints:
 * regcomp takes about 100 bytes for each atom of the expanded regex and 3.5 kB for each regex
 * (glibc 2.36: 1,000 copies of ^((a{64}){16})$ take 115 MB). A process's table is held to a
 * budget of atoms, whatever its patterns (a UUID's regex is 44, a typical route's under 20);
 * the endpoints past it are kept opaque.
 */
#define ERE_COST_MAX		4096	/* atoms of one endpoint's regex */
#define TABLE_COST_MAX		(1UL << 18)	/* of one table's: 26 MB at most */
#define ERE_NEST_MAX		32	/* groups within groups costed; deeper: over any budget */

/*
 * A quantifier's braces at s ("{2}", "{1,3}", "{,4}"): their length, or 0 if Python reads a
 * literal; *max: its largest count.
 */
static size_t braces(const char *s, unsigned long *max)
{
	size_t i = 1;
	bool digits = false;

	*max = 0;
	while (isdigit((unsigned char)s[i]) || s[i] == ',') {
		if (isdigit((unsigned char)s[i])) {
			unsigned long v = strtoul(s + i, NULL, 10);

			digits = true;
			*max = v > *max ? v : *max;
			while (isdigit((unsigned char)s[i + 1]))
				i++;
		}
		i++;
	}
	return s[i] == '}' && digits ? i + 1 : 0;
}

int djroutes__py_to_ere(const char *src, char *out, size_t size)
{
	struct sbuf b = { .p = out, .size = size };
	bool quant = false;	/* the last thing written was a quantifier: a '?' after it is laziness */
	unsigned group_repeats = 0;
	const char *s = src;

	if (!size)
		return -E2BIG;
	out[0] = 0;
	while (*s) {
		char c = *s++;

		if (c == '\\') {
			char n = *s++;

			quant = false;
			switch (n) {
			case 'd': sb_puts(&b, "[0-9]"); continue;
			case 'D': sb_puts(&b, "[^0-9]"); continue;
			case 'w': sb_puts(&b, "[[:alnum:]_]"); continue;
			case 'W': sb_puts(&b, "[^[:alnum:]_]"); continue;
			case 's': sb_puts(&b, "[[:space:]]"); continue;
			case 'S': sb_puts(&b, "[^[:space:]]"); continue;
			case 'Z': case 'z': sb_putc(&b, '$'); continue;
			case 'A': sb_putc(&b, '^'); continue;
			}
			if (!n || isalnum((unsigned char)n) || (unsigned char)n >= 0x80)
				return -ENOTSUP;	/* \b, backreferences, \n, \x.., \u.... */
			if (strchr(ERE_SPECIAL, n))
				sb_putc(&b, '\\');
			sb_putc(&b, n);
			continue;
		}
		if (c == '(') {
			quant = false;
			if (*s == '?') {
				if (s[1] == ':') {
					s += 2;
				} else if (s[1] == 'P' && s[2] == '<') {
					const char *e = strchr(s + 3, '>');

					if (!e)
						return -ENOTSUP;
					s = e + 1;
				} else {
					return -ENOTSUP;	/* lookarounds, (?P=name), flags, comments */
				}
			}
			sb_putc(&b, '(');
			continue;
		}
		if (c == '[') {
			bool dash = false;

			quant = false;
			sb_putc(&b, '[');
			if (*s == '^')
				sb_putc(&b, *s++);
			if (*s == ']')
				sb_putc(&b, *s++);
			for (;;) {
				c = *s++;
				if (!c)
					return -ENOTSUP;
				if (c == ']')
					break;
				if (c == '[' && (*s == ':' || *s == '.' || *s == '='))
					return -ENOTSUP;	/* POSIX would read a class */
				if (c != '\\') {
					sb_putc(&b, c);
					continue;
				}
				c = *s++;
				switch (c) {
				case 'd': sb_puts(&b, "0-9"); continue;
				case 'w': sb_puts(&b, "[:alnum:]_"); continue;
				case 's': sb_puts(&b, "[:space:]"); continue;
				case '-': dash = true; continue;
				}
				if (!c || isalnum((unsigned char)c) || (unsigned char)c >= 0x80 || c == ']' ||
				    (c == '^' && b.p[b.n - 1] == '[') || (c == '[' && (*s == ':' || *s == '.' || *s == '=')))
					return -ENOTSUP;
				sb_putc(&b, c);	/* POSIX brackets have no escapes: "\\" is a backslash */
			}
			if (dash)
				sb_putc(&b, '-');
			sb_putc(&b, ']');
			continue;
		}
		if (c == '*' || c == '+' || c == '?') {
			if (quant && c == '?') {
				quant = false;	/* lazy: the same set of whole matches */
				continue;
			}
			if (quant)
				return -ENOTSUP;	/* possessive (3.11+) */
			sb_putc(&b, c);
			quant = true;
			continue;
		}
		if (c == '{') {
			unsigned long max;
			size_t n = braces(s - 1, &max);
			bool group = s - 1 > src && s[-2] == ')';

			/* a count after a quantifier: Python's "multiple repeat" (a{64}{64}{64}) */
			if (n && (quant || max > (group ? GROUP_REPEAT_MAX : REPEAT_MAX) ||
				  (group && ++group_repeats > GROUP_REPEATS)))
				return -ENOTSUP;
			if (n) {
				sb_put(&b, s - 1, n);
				s += n - 1;
				quant = true;
			} else {
				sb_puts(&b, "\\{");
				quant = false;
			}
			continue;
		}
		quant = false;
		sb_putc(&b, c);
	}
	return b.over ? -E2BIG : (int)b.n;
}

/*
 * The atoms of the sequence of ERE at *s, with its repetitions expanded as regcomp expands them,
 * up to the ')' that ends it (left at *s) or the end: at most ERE_COST_MAX + 1.
 */
static unsigned long ere_cost(const char **s, unsigned depth)
{
	unsigned long total = 0, last = 0;

	if (depth > ERE_NEST_MAX)
		return ERE_COST_MAX + 1;
	while (**s && **s != ')') {
		char c = *(*s)++;
		unsigned long atom = 1, max;
		size_t n;

		switch (c) {
		case '(':
			atom += ere_cost(s, depth + 1);
			if (**s == ')')
				(*s)++;
			break;
		case '[':
			/* to the bracket's end: a ']' first is a member, as are [:class:]'s */
			if (**s == '^')
				(*s)++;
			if (**s == ']')
				(*s)++;
			while (**s && **s != ']') {
				const char *end;

				if (**s == '[' && (*s)[1] == ':' && (end = strstr(*s + 2, ":]")))
					*s = end + 2;
				else
					(*s)++;
			}
			if (**s)
				(*s)++;
			break;
		case '\\':
			if (**s)
				(*s)++;
			break;
		case '*': case '+': case '?':
			atom = last;	/* regcomp copies x+'s x (xx*), and so is each of them costed */
			break;
		case '{':
			n = braces(*s - 1, &max);
			if (!n)
				break;
			*s += n - 1;
			/* {m,}: x m times and a star of it */
			atom = last * (max ? max : 1);
			if (max && last && atom / last != max)
				return ERE_COST_MAX + 1;
			break;
		case '|':
			atom = 0;
			break;
		}
		total += atom;
		last = c == '{' || c == '*' || c == '+' || c == '?' ? last + atom : atom;
		if (total > ERE_COST_MAX)
			return ERE_COST_MAX + 1;
	}
	return total;
}

/* Whether re has an alternation outside any group (then its matches share no start). */
static bool top_alternation(const char *re)
{
	size_t depth = 0;

	for (const char *s = re; *s; s++) {
		if (*s == '\\' && s[1]) {
			s++;
		} else if (*s == '[') {
			s += s[1] == '^' ? 2 : 1;
			if (*s == ']')
				s++;
			while (*s && *s != ']')
				s++;
			if (!*s)
				return true;	/* malformed: claim nothing */
		} else if (*s == '(') {
			depth++;
		} else if (*s == ')' && depth) {
			depth--;
		} else if (*s == '|' && !depth) {
			return true;
		}
	}
	return false;
}

/*
 * The literal text every match of re (ERE or Python syntax, anchors stripped) starts with, into
 * out (unescaped, size > 0): its length. *all: re is that text and nothing else.
 */
static size_t lit_prefix(const char *re, char *out, size_t size, bool *all)
{
	size_t n = 0;
	const char *s = re;

	*all = false;
	out[0] = 0;
	if (top_alternation(re))
		return 0;
	while (*s && n + 1 < size) {
		char c = *s;
		size_t step = 1;

		if (c == '\\') {
			if (!s[1] || isalnum((unsigned char)s[1]) || (unsigned char)s[1] >= 0x80)
				break;
			c = s[1];
			step = 2;
		} else if (strchr(".[]()*+?{}|^$", c)) {
			break;
		}
		/* a quantifier after it: the character may be absent or repeated */
		if (s[step] == '*' || s[step] == '?' || s[step] == '{')
			break;
		out[n++] = c;
		if (s[step] == '+')
			break;
		s += step;
	}
	out[n] = 0;
	*all = !*s;
	return n;
}

/* ---- one level of a pattern ------------------------------------------------------------------ */

/* What of Python regex re may be reached surely when it cannot be translated: its literal start. */
static void make_opaque(struct djr_piece *p, const char *re)
{
	char lit[DJROUTES_ERE_MAX / 2];
	struct sbuf b = { .p = p->ere, .size = sizeof(p->ere) };
	bool all;

	p->opaque = true;
	p->ere[0] = 0;
	if (!p->anchored)
		return;
	lit_prefix(re, lit, sizeof(lit), &all);
	for (const char *s = lit; *s; s++) {
		if (strchr(ERE_SPECIAL, *s))
			sb_putc(&b, '\\');
		sb_putc(&b, *s);
	}
}

/* text[0..len) as ERE literals into b */
static void put_literal(struct sbuf *b, const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (strchr(ERE_SPECIAL, text[i]))
			sb_putc(b, '\\');
		sb_putc(b, text[i]);
	}
}

int djroutes__route_piece(const char *route, bool is_endpoint, djr_conv_fn conv_re, void *ctx,
			  struct djr_piece *p)
{
	struct sbuf b = { .p = p->ere, .size = sizeof(p->ere) };
	const char *s = route;

	memset(p, 0, sizeof(*p));
	p->anchored = true;	/* Django compiles '^' + the route */
	p->end = is_endpoint;	/* and '\Z' after an endpoint's */
	if (strlen(route) >= sizeof(p->label))
		return -E2BIG;
	strcpy(p->label, route);
	while (*s) {
		const char *lt = strchr(s, '<'), *gt, *colon, *pyre;
		char conv[64], param[64], sub[DJROUTES_ERE_MAX];
		size_t clen, plen;
		int n;

		if (!lt) {
			put_literal(&b, s, strlen(s));
			break;
		}
		put_literal(&b, s, lt - s);
		gt = strchr(lt, '>');
		if (!gt)
			return -EINVAL;
		colon = memchr(lt, ':', gt - lt);
		clen = colon ? (size_t)(colon - lt - 1) : 3;
		plen = colon ? (size_t)(gt - colon - 1) : (size_t)(gt - lt - 1);
		if (clen >= sizeof(conv) || plen >= sizeof(param))
			return -E2BIG;
		memcpy(conv, colon ? lt + 1 : "str", clen);	/* no converter: Django's "str" */
		conv[clen] = 0;
		memcpy(param, colon ? colon + 1 : lt + 1, plen);
		param[plen] = 0;
		if (!clen || !plen)
			return -EINVAL;
		pyre = conv_re(ctx, conv, param);
		n = pyre ? djroutes__py_to_ere(pyre, sub, sizeof(sub)) : -ENOTSUP;
		if (n == -E2BIG)
			return n;
		if (n < 0) {
			/* the text before the first parameter is all that is sure */
			const char *first = strchr(route, '<');

			p->opaque = true;
			p->ere[0] = 0;
			b.n = 0;
			b.over = false;
			put_literal(&b, route, first - route);
			return b.over ? -E2BIG : 0;
		}
		sb_putc(&b, '(');
		sb_puts(&b, sub);
		sb_putc(&b, ')');
		s = gt + 1;
	}
	return b.over ? -E2BIG : 0;
}

int djroutes__literal_piece(const char *text, bool end, struct djr_piece *p)
{
	struct sbuf b = { .p = p->ere, .size = sizeof(p->ere) };

	memset(p, 0, sizeof(*p));
	p->anchored = true;
	p->end = end;
	if (strlen(text) >= sizeof(p->label))
		return -E2BIG;
	strcpy(p->label, text);
	put_literal(&b, text, strlen(text));
	return b.over ? -E2BIG : 0;
}

#define LANG_CODE_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_@"

int djroutes__lang_piece(const char *codes, struct djr_piece *p)
{
	size_t len = strspn(codes, LANG_CODE_CHARS "|");

	memset(p, 0, sizeof(*p));
	if (!*codes || codes[len] || *codes == '|' || codes[len - 1] == '|' || strstr(codes, "||"))
		return -EINVAL;
	if (snprintf(p->ere, sizeof(p->ere), "(%s)/", codes) >= (int)sizeof(p->ere))
		return -E2BIG;
	p->anchored = true;
	p->lang = true;
	return 0;
}

/* A re_path's name: its text without anchors, its named groups as "<name>". */
static int regex_label(const char *re, size_t len, char *out, size_t size)
{
	struct sbuf b = { .p = out, .size = size };
	size_t i = 0;

	out[0] = 0;
	while (i < len) {
		if (re[i] == '\\' && i + 1 < len) {
			sb_put(&b, re + i, 2);
			i += 2;
		} else if (!strncmp(re + i, "(?P<", 4) && memchr(re + i + 4, '>', len - i - 4)) {
			const char *gt = memchr(re + i + 4, '>', len - i - 4);
			size_t depth = 1, j = gt - re + 1;

			sb_putc(&b, '<');
			sb_put(&b, re + i + 4, gt - (re + i + 4));
			sb_putc(&b, '>');
			/* skip the group's body */
			while (j < len && depth) {
				if (re[j] == '\\')
					j++;
				else if (re[j] == '[')
					while (j + 1 < len && re[j + 1] != ']')
						j++;
				else if (re[j] == '(')
					depth++;
				else if (re[j] == ')')
					depth--;
				j++;
			}
			i = j;
		} else {
			sb_putc(&b, re[i++]);
		}
	}
	return b.over ? -E2BIG : 0;
}

int djroutes__regex_piece(const char *regex, bool is_endpoint, struct djr_piece *p)
{
	char body[DJROUTES_ERE_MAX];
	size_t len = strlen(regex), start = 0, bs = 0;
	int n;

	memset(p, 0, sizeof(*p));
	if (!strncmp(regex, "\\A", 2))
		start = 2;
	else if (regex[0] == '^')
		start = 1;
	p->anchored = start > 0;
	/* Django: an endpoint whose regex ends with '$' must match all of the path (fullmatch) */
	if (len > start && regex[len - 1] == '$') {
		while (bs < len - 1 - start && regex[len - 2 - bs] == '\\')
			bs++;
		p->end = true;
		if (is_endpoint)
			p->anchored = true;
		if (bs % 2 == 0)
			len--;
	} else if (len >= start + 2 && !strncmp(regex + len - 2, "\\Z", 2)) {
		p->end = true;
		len -= 2;
	}
	if (len - start >= sizeof(body))
		return -E2BIG;
	memcpy(body, regex + start, len - start);
	body[len - start] = 0;
	if (regex_label(body, strlen(body), p->label, sizeof(p->label)))
		return -E2BIG;
	n = djroutes__py_to_ere(body, p->ere, sizeof(p->ere));
	if (n == -E2BIG)
		return n;
	if (n < 0)
		make_opaque(p, body);
	return 0;
}

/* ---- the table ------------------------------------------------------------------------------- */

struct djr_entry {
	regex_t re;
	bool opaque;		/* no regex: a path starting with lit may be its */
	/*
	 * Its regex is lit and nothing else (Django's path("recipes/"), most of a site's routes):
	 * matched by comparison, not by regexec (which a cold collector pays microseconds for).
	 * exact: and ends there ('$'); else every path starting with lit matches.
	 */
	bool literal, exact;
	bool stop;		/* struct djr_piece's */
	bool lang;		/* its first piece's: the name starts with the path's first segment */
	uint16_t methods;	/* struct djr_piece's */
	char *ere, *label, *lit;
	size_t litlen;
};

struct djroutes {
	struct djr_entry *v;
	unsigned n, cap, nopaque;
	unsigned long cost;	/* atoms of its regexes (ere_cost): TABLE_COST_MAX at most */
	bool unique;		/* a path is named only by all the endpoints that match it */
	bool strict;		/* djroutes__set_strict_methods */
	char *prefix;		/* djroutes__set_prefix; NULL: none */
};

int djroutes__set_prefix(struct djroutes *t, const char *prefix)
{
	char *p = prefix && *prefix ? strdup(prefix) : NULL;

	if (prefix && *prefix && !p)
		return -ENOMEM;
	free(t->prefix);
	t->prefix = p;
	return 0;
}

void djroutes__set_strict_methods(struct djroutes *t)
{
	t->strict = true;
}

void djroutes__set_unique(struct djroutes *t)
{
	t->unique = true;
}

struct djroutes *djroutes__new(void)
{
	return calloc(1, sizeof(struct djroutes));
}

void djroutes__clear(struct djroutes *t)
{
	for (unsigned i = 0; i < t->n; i++) {
		if (!t->v[i].opaque)
			regfree(&t->v[i].re);
		free(t->v[i].ere);
		free(t->v[i].label);
		free(t->v[i].lit);
	}
	t->n = t->nopaque = 0;
	t->cost = 0;
	t->unique = t->strict = false;
	free(t->prefix);
	t->prefix = NULL;
}

void djroutes__move(struct djroutes *dst, struct djroutes *src)
{
	djroutes__clear(dst);
	free(dst->v);
	*dst = *src;
	free(src);
}

void djroutes__free(struct djroutes *t)
{
	if (!t)
		return;
	djroutes__clear(t);
	free(t->v);
	free(t);
}

int djroutes__add(struct djroutes *t, const struct djr_piece *pieces, unsigned n)
{
	char ere[DJROUTES_ERE_MAX * 2], label[DJROUTES_LABEL_MAX], lit[DJROUTES_ERE_MAX], pl[DJROUTES_ERE_MAX];
	struct sbuf e = { .p = ere, .size = sizeof(ere) }, lb = { .p = label, .size = sizeof(label) };
	struct sbuf lt = { .p = lit, .size = sizeof(lit) };
	bool opaque = false, lit_open = true, all;
	struct djr_entry *d;
	unsigned long cost = 0;
	int ret = 0;

	lit[0] = 0;
	if (!n)
		return -EINVAL;
	if (t->n >= DJROUTES_MAX)
		return -ENOSPC;
	if (t->n == t->cap) {
		unsigned cap = t->cap ? t->cap * 2 : 16;
		struct djr_entry *v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	sb_putc(&e, '^');	/* the root resolver's "^/" took the path's first '/' */
	sb_putc(&lb, '/');
	for (unsigned i = 0; i < n; i++) {
		const struct djr_piece *p = &pieces[i];
		const char *l = p->label;

		if (!p->anchored) {
			sb_puts(&e, ".*");	/* Python's search(): anywhere in what is left */
			lit_open = false;
		}
		sb_putc(&e, '(');
		sb_puts(&e, p->ere);
		sb_putc(&e, ')');
		if (lit_open) {
			lit_prefix(p->ere, pl, sizeof(pl), &all);
			sb_puts(&lt, pl);
			lit_open = all && !p->opaque;
		}
		/* ResolverMatch.route: the routes joined, each without its leading '^' */
		if (i && *l == '^')
			l++;
		sb_puts(&lb, l);
		if (p->opaque) {
			opaque = true;
			break;
		}
		if (i == n - 1 && p->end)
			sb_putc(&e, '$');
	}
	if (e.over || lt.over)
		return -E2BIG;
	if (!opaque) {
		const char *c = ere;

		cost = ere_cost(&c, 0);
		if (*c || cost > ERE_COST_MAX || t->cost + cost > TABLE_COST_MAX) {
			opaque = true;
			ret = -E2BIG;
		}
	}
	d = &t->v[t->n];
	memset(d, 0, sizeof(*d));
	if (!opaque && regcomp(&d->re, ere, REG_EXTENDED | REG_NOSUB)) {
		opaque = true;
		ret = -EINVAL;
	}
	if (!opaque)
		t->cost += cost;
	d->opaque = opaque;
	d->literal = !opaque && lit_open;
	d->exact = d->literal && pieces[n - 1].end;
	d->methods = pieces[n - 1].methods;
	d->stop = opaque && pieces[n - 1].stop;
	d->lang = pieces[0].lang;
	d->ere = strdup(ere);
	d->label = strdup(label);
	d->lit = strdup(lit);
	d->litlen = strlen(lit);
	if (!d->ere || !d->label || !d->lit) {
		if (!opaque)
			regfree(&d->re);
		free(d->ere);
		free(d->label);
		free(d->lit);
		return -ENOMEM;
	}
	t->n++;
	t->nopaque += opaque;
	return ret;
}

unsigned djroutes__count(const struct djroutes *t)
{
	return t->n;
}

unsigned djroutes__opaque(const struct djroutes *t)
{
	return t->nopaque;
}

const char *djroutes__label(const struct djroutes *t, unsigned i)
{
	return i < t->n ? t->v[i].label : NULL;
}

const char *djroutes__regex(const struct djroutes *t, unsigned i)
{
	return i < t->n ? (t->v[i].opaque ? NULL : t->v[i].ere) : NULL;
}

uint16_t djroutes__methods(const struct djroutes *t, unsigned i)
{
	return i < t->n ? t->v[i].methods : 0;
}

bool djroutes__lang(const struct djroutes *t, unsigned i)
{
	return i < t->n && t->v[i].lang;
}

int djroutes__literal(const struct djroutes *t, unsigned i)
{
	return i < t->n && t->v[i].literal ? 1 + t->v[i].exact : 0;
}

uint64_t djroutes__hash(const struct djroutes *t)
{
	uint64_t h = t->n * 4 + t->unique + t->strict * 2;

	if (t->prefix)
		h = hash64_mix(h ^ hash64(t->prefix, strlen(t->prefix)));

	for (unsigned i = 0; i < t->n; i++)
		h = hash64_mix(h ^ hash64(t->v[i].ere, strlen(t->v[i].ere)) ^
			       hash64(t->v[i].label, strlen(t->v[i].label)) * 3 ^ t->v[i].opaque ^
			       (uint64_t)t->v[i].methods << 1 ^ (uint64_t)t->v[i].stop << 20 ^ (uint64_t)t->v[i].lang << 21);
	return h;
}

bool djroutes__same(const struct djroutes *a, const struct djroutes *b)
{
	if (a->n != b->n || a->unique != b->unique || a->strict != b->strict || !a->prefix != !b->prefix ||
	    (a->prefix && strcmp(a->prefix, b->prefix)))
		return false;
	for (unsigned i = 0; i < a->n; i++)
		if (a->v[i].opaque != b->v[i].opaque || a->v[i].methods != b->v[i].methods || a->v[i].stop != b->v[i].stop ||
		    a->v[i].lang != b->v[i].lang ||
		    strcmp(a->v[i].ere, b->v[i].ere) ||
		    strcmp(a->v[i].label, b->v[i].label))
			return false;
	return true;
}

static int hexval(char c)
{
	return isdigit((unsigned char)c) ? c - '0' : isxdigit((unsigned char)c) ? (tolower((unsigned char)c) - 'a' + 10) : -1;
}

uint16_t djroutes__method_bit(const char *method)
{
	static const char *const names[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
					     "CONNECT" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(method, names[i]))
			return (uint16_t)(1u << i);
	return DJR_M_OTHER;
}

bool djroutes__match(const struct djroutes *t, const char *target, char *out, size_t size)
{
	return djroutes__match_method(t, NULL, target, out, size);
}

bool djroutes__match_method(const struct djroutes *t, const char *method, const char *target, char *out,
			    size_t size)
{
	uint16_t mbit = method ? djroutes__method_bit(method) : 0;
	const struct djr_entry *partial = NULL, *hit = NULL;
	char path[2048];
	size_t n = 0;
	const char *s = target;

	if (!t || !t->n || !size)
		return false;
	/* absolute-form targets ("http://host/path"): their path */
	if (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0) {
		s = strchr(strstr(s, "//") + 2, '/');
		if (!s)
			return false;
	}
	if (t->prefix) {
		/* gunicorn: PATH_INFO is what follows SCRIPT_NAME */
		size_t plen = strlen(t->prefix);

		if (strncmp(s, t->prefix, plen) || s[plen] != '/')
			return false;
		s += plen;
	}
	if (*s != '/')
		return false;
	/* Django matches the percent-decoded path (PATH_INFO) after its first '/' */
	for (s++; *s && *s != '?' && *s != '#' && n + 1 < sizeof(path); s++) {
		int hi, lo;

		if (*s == '%' && (hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0) {
			path[n++] = (char)(hi << 4 | lo);
			s += 2;
		} else {
			path[n++] = *s;
		}
	}
	if (*s && *s != '?' && *s != '#')
		return false;	/* longer than any route worth naming */
	path[n] = 0;
	if (memchr(path, 0, n))
		return false;	/* a "%00": regexec would stop there */

	for (unsigned i = 0; i < t->n; i++) {
		const struct djr_entry *d = &t->v[i];

		if (strncmp(path, d->lit, d->litlen))
			continue;
		if (d->opaque && d->stop)
			break;		/* nothing after it: a partial match before it holds */
		if (d->opaque)
			return false;	/* it may be this one's: the framework's answer is unknown */
		/* the path starts with lit (above) */
		if (d->literal ? d->exact && path[d->litlen] : regexec(&d->re, path, 0, NULL, 0) != 0)
			continue;
		if (!t->unique && mbit && d->methods && !(d->methods & mbit)) {
			partial = partial ?: d;		/* Starlette: 405, unless a later one takes it */
			continue;
		}
		if (hit && strcmp(hit->label, d->label))
			return false;	/* two names: which the framework prefers is not modelled */
		hit = d;
		if (!t->unique)
			break;		/* Django: the first */
	}
	if (!hit && !t->strict)
		hit = partial;
	if (!hit)
		return false;
	if (hit->lang) {
		/* i18n_patterns: Django's route starts with the language's code, the path's first segment */
		int n = snprintf(out, size, "/%.*s%s", (int)(strcspn(path, "/") + 1), path, hit->label + 1);

		return n > 0;
	}
	size_t len = strlen(hit->label);

	if (len >= size)
		len = size - 1;
	memcpy(out, hit->label, len);
	out[len] = 0;
	return true;
}

/* ---- reading a process's urlconf ------------------------------------------------------------- */

struct reader {
	const struct py_layout *l;
	const struct mem_reader *mr;
	struct djroutes *t;
	unsigned *skipped;
	bool full;
	uint64_t settings;		/* django.conf.settings._wrapped */
	struct djr_conv_src conv;	/* converters: the RoutePattern's being read */
	struct djr_piece pieces[DJROUTES_DEPTH];
};

/* Django's own converters (django/urls/converters.py), where a class's regex cannot be read. */
static const char *const builtin_conv[][2] = {
	{ "int", "[0-9]+" },
	{ "str", "[^/]+" },
	{ "slug", "[-a-zA-Z0-9_]+" },
	{ "uuid", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}" },
	{ "path", ".+" },
};

const char *djroutes__conv_regex(void *ctx, const char *converter, const char *param)
{
	struct djr_conv_src *src = ctx;
	const struct py_layout *l = src->l;
	const struct mem_reader *mr = src->mr;
	uint64_t obj, type, td, re;

	/* the instance's own (werkzeug's UnicodeConverter(length=3), AnyConverter), else its class's */
	if (src->converters && !pythreads__dict_get(l, mr, src->converters, param, &obj) &&
	    (!pythreads__attr(l, mr, obj, "regex", &re) ||
	     (!mem_read_u64(mr, obj + OB_TYPE, &type) && !mem_read_u64(mr, type + l->tp_dict, &td) && td &&
	      !pythreads__dict_get(l, mr, td, "regex", &re))) &&
	    py_read_str(l, mr, re, src->buf, sizeof(src->buf)) > 0)
		return src->buf;
	for (size_t i = 0; i < src->nbuiltin; i++)
		if (!strcmp(src->builtin[i][0], converter))
			return src->builtin[i][1];
	return NULL;
}

static int read_bool(const struct reader *rd, uint64_t obj, const char *attr, bool *v)
{
	uint64_t b;
	int64_t x;
	int ret = pythreads__attr(rd->l, rd->mr, obj, attr, &b);

	ret = ret ?: pythreads__read_long(rd->l, rd->mr, b, &x);
	if (!ret)
		*v = x != 0;
	return ret;
}

/* ---- finding an app object ------------------------------------------------------------------ */

#define TP_BASE		256	/* PyTypeObject.tp_base: the same place on 3.8-3.15 */
#define MODULES_MAX	8192	/* sys.modules entries looked at */
#define APP_MODULES_MAX	256	/* of which the process's own, whose globals are looked at */
#define BASES_MAX	8

struct finder {
	const struct py_layout *l;
	const struct mem_reader *mr;
	uint64_t module_type, cls;
	uint64_t *apps;
	unsigned max, n, modules, app_modules;
};

/* Whether a module's file is a library's: the standard library's, or an installed package's. */
static bool library_file(const char *f)
{
	return strstr(f, "/site-packages/") || strstr(f, "/dist-packages/") || strstr(f, "/lib/python3") ||
	       strstr(f, "/lib64/python3");
}

/* Whether type is cls or a subclass of it: true, or false (not, or unreadable). */
static bool subclass_of(const struct mem_reader *mr, uint64_t type, uint64_t cls)
{
	for (unsigned i = 0; i < BASES_MAX && type && type != cls; i++)
		if (mem_read_u64(mr, type + TP_BASE, &type))
			return false;
	return type && type == cls;
}

/* Whether obj's type is cls or a subclass of it: true, or false (not, or unreadable). */
static bool instance_of(const struct mem_reader *mr, uint64_t obj, uint64_t cls)
{
	uint64_t type;

	return !mem_read_u64(mr, obj + OB_TYPE, &type) && subclass_of(mr, type, cls);
}

int djroutes__is_instance(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t obj,
			  const char *module, const char *cls)
{
	uint64_t type;

	/* an unreadable object is no instance, as an unreadable type is no subclass */
	if (mem_read_u64(mr, obj + OB_TYPE, &type))
		type = 0;
	return djroutes__is_subclass(l, mr, runtime, type, module, cls);
}

int djroutes__list_each(const struct py_layout *l, const struct mem_reader *mr, uint64_t list, unsigned max,
			djr_item_fn fn, void *ctx, unsigned depth)
{
	uint64_t *v = malloc(max * sizeof(*v));
	int n, ret;

	if (!v)
		return -ENOMEM;
	n = pythreads__list_items(l, mr, list, v, max);
	ret = n < 0 ? n : 0;
	for (int i = 0; i < n && !ret; i++)
		ret = fn(ctx, v[i], depth);
	free(v);
	return ret;
}

int djroutes__is_subclass(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t type,
			  const char *module, const char *cls)
{
	uint64_t md, c;
	int ret = pythreads__module_dict(l, mr, runtime, module, &md);

	ret = ret ?: pythreads__dict_get(l, mr, md, cls, &c);
	if (ret)
		return ret;
	return subclass_of(mr, type, c) ? 0 : 1;
}

static int global(void *ctx, uint64_t key, uint64_t value, uint32_t ix)
{
	struct finder *f = ctx;
	unsigned i;

	if (!instance_of(f->mr, value, f->cls))
		return 0;
	for (i = 0; i < f->n && i < f->max; i++)
		if (f->apps[i] == value)
			return 0;	/* the same app under two names */
	if (f->n < f->max)
		f->apps[f->n] = value;
	f->n++;
	return 0;
}

static int module(void *ctx, uint64_t key, uint64_t value, uint32_t ix)
{
	struct finder *f = ctx;
	uint64_t type, md, file;
	char path[512];

	if (++f->modules > MODULES_MAX)
		return 1;
	if (mem_read_u64(f->mr, value + OB_TYPE, &type) || type != f->module_type ||
	    mem_read_u64(f->mr, value + f->l->mod_dict, &md) || !md)
		return 0;
	/* built-in modules have no file, libraries' files are where they are installed */
	if (pythreads__dict_get(f->l, f->mr, md, "__file__", &file) ||
	    py_read_str(f->l, f->mr, file, path, sizeof(path)) <= 0 || library_file(path))
		return 0;
	if (++f->app_modules > APP_MODULES_MAX)
		return 1;
	pythreads__dict_foreach(f->l, f->mr, md, global, f);
	return 0;
}

int djroutes__find_apps(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			const char *module_name, const char *cls, uint64_t *apps, unsigned max)
{
	struct finder f = { .l = l, .mr = mr, .apps = apps, .max = max };
	uint64_t md, mod, interp, modules;
	int ret;

	ret = pythreads__module_dict(l, mr, runtime, module_name, &md);
	if (ret)
		return ret;
	ret = pythreads__dict_get(l, mr, md, cls, &f.cls);
	/* the module type, from a module's own object: sys.modules -> module_name */
	ret = ret ?: mem_read_u64(mr, runtime + l->rt_interp_head, &interp);
	ret = ret ?: mem_read_u64(mr, interp + l->is_modules, &modules);
	ret = ret ?: pythreads__dict_get(l, mr, modules, module_name, &mod);
	ret = ret ?: mem_read_u64(mr, mod + OB_TYPE, &f.module_type);
	ret = ret ?: pythreads__dict_foreach(l, mr, modules, module, &f);
	if (ret)
		return ret == -ENOENT ? -EAGAIN : ret;
	return (int)f.n;
}

#define PATTERN_SOURCE	48	/* _sre's PatternObject.pattern: after the var head, groups, groupindex, indexgroup */

int djroutes__type_is(const struct mem_reader *mr, uint64_t obj, const char *name)
{
	char tn[64];
	int ret = pythreads__type_name(mr, obj, tn, sizeof(tn));

	return ret ? ret : !strcmp(tn, name);
}

bool djroutes__torn(int err)
{
	return err == -EFAULT || err == -ESRCH || err == -EIO || err == -ENOMEM;
}

void djroutes__add_stopper(struct djroutes *t, const char *lit, bool stop)
{
	struct djr_piece p;

	if (djroutes__literal_piece(lit, false, &p))
		return;
	p.opaque = true;
	p.stop = stop;
	djroutes__add(t, &p, 1);
}

void djroutes__add_one(struct djroutes *t, const struct djr_piece *p, unsigned *skipped)
{
	if (djroutes__add(t, p, 1) == -ENOSPC)
		(*skipped)++;
}

int djroutes__unknown(struct djroutes *t, unsigned *skipped, int err, const char *lit)
{
	if (djroutes__torn(err))
		return err;
	(*skipped)++;
	djroutes__add_stopper(t, lit, false);
	return 0;
}

int djroutes__pattern_source(const struct py_layout *l, const struct mem_reader *mr, uint64_t pat, char *buf,
			     size_t size)
{
	uint64_t s;
	int ret = djroutes__type_is(mr, pat, "re.Pattern");

	if (ret <= 0)
		return ret ?: -ENOTSUP;
	ret = mem_read_u64(mr, pat + PATTERN_SOURCE, &s);
	if (ret)
		return ret;
	ret = py_read_str(l, mr, s, buf, size);
	return ret == -EINVAL || ret == -EILSEQ ? -ENOTSUP : ret < 0 ? ret : 0;
}

int djroutes__str_attr(const struct py_layout *l, const struct mem_reader *mr, uint64_t obj, const char *attr,
		       char *buf, size_t size)
{
	uint64_t s;
	int ret = pythreads__attr(l, mr, obj, attr, &s);

	if (ret)
		return ret;
	ret = py_read_str(l, mr, s, buf, size);
	return ret < 0 ? ret : 0;
}

/* pattern object pat (a RoutePattern or RegexPattern) into p; -ENOTSUP for another kind. */
static int read_pattern(struct reader *rd, uint64_t pat, bool endpoint, struct djr_piece *p)
{
	char text[DJROUTES_ERE_MAX];
	bool is_endpoint = endpoint;
	int ret;

	read_bool(rd, pat, "_is_endpoint", &is_endpoint);
	ret = djroutes__str_attr(rd->l, rd->mr, pat, "_route", text, sizeof(text));
	if (!ret) {
		ret = pythreads__attr(rd->l, rd->mr, pat, "converters", &rd->conv.converters);
		if (ret)
			rd->conv.converters = 0;
		return djroutes__route_piece(text, is_endpoint, djroutes__conv_regex, &rd->conv, p);
	}
	if (ret != -ENOENT)
		return ret;
	ret = djroutes__str_attr(rd->l, rd->mr, pat, "_regex", text, sizeof(text));
	if (!ret)
		return djroutes__regex_piece(text, is_endpoint, p);
	return ret == -ENOENT ? -ENOTSUP : ret;
}

/* An endpoint (or a resolver standing for its endpoints) ending at pieces[depth]. */
static void add(struct reader *rd, unsigned depth)
{
	int ret = djroutes__add(rd->t, rd->pieces, depth + 1);

	if (ret == -ENOSPC) {
		rd->full = true;
		(*rd->skipped)++;
	}
}

static int walk(struct reader *rd, uint64_t list, unsigned depth);

/* A URLResolver's patterns: its urlconf_name, an included module (its urlpatterns) or a list. */
static int walk_resolver(struct reader *rd, uint64_t urlconf, unsigned depth)
{
	char tn[16];
	uint64_t md, list;
	int ret = pythreads__type_name(rd->mr, urlconf, tn, sizeof(tn));

	if (ret)
		return ret;
	if (!strcmp(tn, "module")) {
		ret = mem_read_u64(rd->mr, urlconf + rd->l->mod_dict, &md);
		ret = ret ?: pythreads__dict_get(rd->l, rd->mr, md, "urlpatterns", &list);
		if (ret == -ENOENT) {
			(*rd->skipped)++;
			return 0;
		}
		return ret ?: walk(rd, list, depth);
	}
	return walk(rd, urlconf, depth);
}

#define LANGUAGES_MAX	256

/*
 * i18n_patterns(): a URLResolver of the root urlconf (Django allows it nowhere else) whose
 * LocalePrefixPattern matches the active language's code and '/' (LocaleMiddleware activates
 * the one the path starts with, if it is one of settings.LANGUAGES), and, where
 * prefix_default_language is False, nothing for settings.LANGUAGE_CODE's. Its patterns are read
 * twice then: under any of the other codes (a piece marked lang: the name takes the path's code,
 * as Django's route does: "fr/recipes/<int:pk>/"), then with no prefix. -ENOTSUP: not understood.
 * A path under the default language's code then, or one whose language LocaleMiddleware takes
 * from a cookie or Accept-Language instead (Django redirects it), is named as the default's.
 */
static int walk_i18n(struct reader *rd, uint64_t pat, uint64_t urlconf, unsigned depth)
{
	struct djr_piece *p = &rd->pieces[depth];
	uint64_t list, v[LANGUAGES_MAX], code;
	char alts[DJROUTES_ERE_MAX] = "", c[32], dflt[32] = "";
	size_t len = 0;
	bool prefix_default = true;
	int n, ret;

	if (depth || !rd->settings || pythreads__attr(rd->l, rd->mr, rd->settings, "LANGUAGES", &list))
		return -ENOTSUP;
	/* without a prefix for the default language, its code is no prefix (Django answers 404) */
	read_bool(rd, pat, "prefix_default_language", &prefix_default);
	if (!prefix_default && djroutes__str_attr(rd->l, rd->mr, rd->settings, "LANGUAGE_CODE", dflt, sizeof(dflt)))
		return -ENOTSUP;
	n = pythreads__list_items(rd->l, rd->mr, list, v, LANGUAGES_MAX);
	if (n <= 0)
		return n == -EFAULT ? n : -ENOTSUP;
	for (int i = 0; i < n; i++) {
		/* (code, name) pairs; a code is letters, digits, '-', '_' or '@' (Django's language_code_re) */
		uint64_t pair[4];

		ret = pythreads__list_items(rd->l, rd->mr, v[i], pair, 4);
		if (ret < 1)
			return ret == -EFAULT ? ret : -ENOTSUP;
		code = pair[0];
		if (py_read_str(rd->l, rd->mr, code, c, sizeof(c)) <= 0 || c[strspn(c, LANG_CODE_CHARS)])
			return -ENOTSUP;
		if (!prefix_default && !strcmp(c, dflt))
			continue;
		ret = snprintf(alts + len, sizeof(alts) - len, "%s%s", len ? "|" : "", c);
		if (ret < 0 || (size_t)ret >= sizeof(alts) - len)
			return -ENOTSUP;
		len += (size_t)ret;
	}
	if (len) {
		if (djroutes__lang_piece(alts, p))
			return -ENOTSUP;
		ret = walk_resolver(rd, urlconf, depth + 1);
		if (ret || prefix_default)
			return ret;
	}
	/* the default language's paths: no prefix */
	memset(p, 0, sizeof(*p));
	p->anchored = true;
	return walk_resolver(rd, urlconf, depth + 1);
}

static int walk(struct reader *rd, uint64_t list, unsigned depth)
{
	uint64_t items, *v;
	int64_t n;
	char tn[16];
	int ret = pythreads__type_name(rd->mr, list, tn, sizeof(tn));

	if (ret)
		return ret;
	if (!strcmp(tn, "list"))
		ret = mem_read_u64(rd->mr, list + LIST_ITEMS, &items);
	else if (!strcmp(tn, "tuple"))
		items = list + rd->l->tuple_items;
	else
		return -EINVAL;
	ret = ret ?: mem_read(rd->mr, list + VAR_SIZE, &n, sizeof(n));
	if (ret)
		return ret;
	if (n < 0 || n > LIST_MAX)
		return -EINVAL;
	if (!n)
		return 0;
	v = malloc(n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	ret = mem_read(rd->mr, items, v, n * sizeof(*v));
	for (int64_t i = 0; !ret && i < n && !rd->full; i++) {
		uint64_t pat, urlconf;
		bool resolver = !pythreads__attr(rd->l, rd->mr, v[i], "urlconf_name", &urlconf);
		struct djr_piece *p = &rd->pieces[depth];

		ret = pythreads__attr(rd->l, rd->mr, v[i], "pattern", &pat);
		if (!ret && resolver && djroutes__type_is(rd->mr, pat, "LocalePrefixPattern") == 1) {
			ret = walk_i18n(rd, pat, urlconf, depth);
			if (!ret || ret != -ENOTSUP)
				continue;
		} else {
			ret = ret ?: read_pattern(rd, pat, !resolver, p);
		}
		if (ret == -ENOTSUP || ret == -E2BIG || ret == -EINVAL || ret == -ENOENT) {
			/*
			 * A kind of pattern not understood (an i18n_patterns' LocalePrefixPattern not
			 * in the root urlconf): any path may be its, and so no later pattern can name
			 * one surely.
			 */
			memset(p, 0, sizeof(*p));
			p->opaque = true;
			snprintf(p->label, sizeof(p->label), "?");
			add(rd, depth);
			(*rd->skipped)++;
			ret = 0;
			continue;
		}
		if (ret)
			break;
		if (!resolver || p->opaque)
			add(rd, depth);	/* an opaque resolver stands for all it includes */
		else if (depth + 1 >= DJROUTES_DEPTH)
			(*rd->skipped)++;
		else
			ret = walk_resolver(rd, urlconf, depth + 1);
	}
	free(v);
	return ret;
}

int djroutes__read(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
		   struct djroutes *t, unsigned *skipped)
{
	struct reader *rd;
	uint64_t md, settings, wrapped, urlconf, umd, list;
	char name[64];
	int ret;

	*skipped = 0;
	ret = pythreads__module_dict(l, mr, runtime, "django.conf", &md);
	if (ret)
		return ret;
	/* settings are set up by the first use, the urlconf imported by the first request */
	ret = pythreads__dict_get(l, mr, md, "settings", &settings);
	ret = ret ?: pythreads__attr(l, mr, settings, "_wrapped", &wrapped);
	ret = ret ?: pythreads__attr(l, mr, wrapped, "ROOT_URLCONF", &urlconf);
	if (!ret && py_read_str(l, mr, urlconf, name, sizeof(name)) <= 0)
		ret = -EINVAL;
	ret = ret ?: pythreads__module_dict(l, mr, runtime, name, &umd);
	ret = ret ?: pythreads__dict_get(l, mr, umd, "urlpatterns", &list);
	if (ret == -ENOENT)
		return -EAGAIN;
	if (ret)
		return ret;
	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return -ENOMEM;
	rd->l = l;
	rd->mr = mr;
	rd->conv = (struct djr_conv_src){ .l = l, .mr = mr, .builtin = builtin_conv,
					  .nbuiltin = sizeof(builtin_conv) / sizeof(builtin_conv[0]) };
	rd->t = t;
	rd->skipped = skipped;
	rd->settings = wrapped;
	ret = walk(rd, list, 0);
	free(rd);
	return ret;
}
