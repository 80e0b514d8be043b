// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* SVG flame graph writer: stacks -> merged frame tree -> one <g> per frame plus a zoom/search script. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "flamegraph.h"
#include "stacks.h"

#define XPAD		10
#define FONT_WIDTH	0.59	/* average glyph width / font size, as flamegraph.pl */

struct fnode {
	const char *name;	/* interned by the aggregator */
	uint64_t total, x;	/* samples, and the offset of the first one */
	uint32_t first_kid, next_sib;	/* node index + 1 */
	uint32_t depth;
};

struct ftree {
	struct fnode *nodes;
	size_t n, cap;
	uint32_t *slots;	/* (parent, name) -> node index + 1 */
	size_t slot_cap;
	uint32_t *parents;	/* parent of each node, for lookup */
};

struct svg_ctx {
	FILE *f;
	const struct ftree *t;
	const char *count_name;
	bool time_us;
	double scale, min_width, font_size;
	unsigned width, frame_height, height, ypad1;
	bool inverted;
	uint64_t total;
};

/* The interaction: hover details, click to zoom, search; flamegraph.pl's design, inferno's exact zoom. */
static const char script[] =
	"var frames, details, unzoombtn, searchbtn, matchedtxt, width, searching = null;\n"
	"function num(g, a) { return +g.getAttribute(a); }\n"
	"function fname(g) { return g.firstChild.textContent.replace(/ \\([^()]*\\)$/, \"\"); }\n"
	"function frame_of(el) {\n"
	"\tfor (; el && el !== frames; el = el.parentNode)\n"
	"\t\tif (el.parentNode === frames)\n"
	"\t\t\treturn el;\n"
	"\treturn null;\n"
	"}\n"
	"function init() {\n"
	"\twidth = num(document.documentElement, \"width\");\n"
	"\tframes = document.getElementById(\"frames\");\n"
	"\tdetails = document.getElementById(\"details\");\n"
	"\tunzoombtn = document.getElementById(\"unzoom\");\n"
	"\tsearchbtn = document.getElementById(\"search\");\n"
	"\tmatchedtxt = document.getElementById(\"matched\");\n"
	"\tframes.addEventListener(\"click\", function (e) {\n"
	"\t\tvar g = frame_of(e.target);\n"
	"\t\tif (g)\n"
	"\t\t\tzoom(g);\n"
	"\t});\n"
	"\tframes.addEventListener(\"mouseover\", function (e) {\n"
	"\t\tvar g = frame_of(e.target);\n"
	"\t\tif (g)\n"
	"\t\t\tdetails.textContent = \"Function: \" + g.firstChild.textContent;\n"
	"\t});\n"
	"\tframes.addEventListener(\"mouseout\", function () { details.textContent = \" \"; });\n"
	"\tunzoombtn.addEventListener(\"click\", unzoom);\n"
	"\tsearchbtn.addEventListener(\"click\", function () {\n"
	"\t\tif (searching)\n"
	"\t\t\treset_search();\n"
	"\t\telse\n"
	"\t\t\tsearch_prompt();\n"
	"\t});\n"
	"\twindow.addEventListener(\"keydown\", function (e) {\n"
	"\t\tif (e.keyCode === 114 || ((e.ctrlKey || e.metaKey) && e.keyCode === 70)) {\n"
	"\t\t\te.preventDefault();\n"
	"\t\t\tsearch_prompt();\n"
	"\t\t} else if (e.keyCode === 27) {\n"
	"\t\t\tunzoom();\n"
	"\t\t}\n"
	"\t});\n"
	"}\n"
	"window.addEventListener(\"load\", init);\n"
	"function label(g, w) {\n"
	"\tvar t = g.childNodes[2], cw = fontsize * fontwidth, name, chars, fit;\n"
	"\tif (w < 3 * cw) {\n"
	"\t\tt.textContent = \"\";\n"
	"\t\treturn;\n"
	"\t}\n"
	"\tname = fname(g);\n"
	"\tchars = Array.from(name);\n"
	"\tfit = Math.floor(w / cw);\n"
	"\tt.textContent = chars.length <= fit ? name : chars.slice(0, fit - 2).join(\"\") + \"..\";\n"
	"}\n"
	"function place(g, x, w) {\n"
	"\tvar r = g.childNodes[1];\n"
	"\tr.setAttribute(\"x\", x.toFixed(2));\n"
	"\tr.setAttribute(\"width\", w.toFixed(2));\n"
	"\tg.childNodes[2].setAttribute(\"x\", (x + 3).toFixed(2));\n"
	"\tlabel(g, w);\n"
	"}\n"
	"// Sample counts on each frame keep zoom exact: a frame is shown when its range of samples lies\n"
	"// inside the clicked one (above it) or contains it (an ancestor, dimmed at full width).\n"
	"function zoom(g) {\n"
	"\tvar x0 = num(g, \"data-x\"), w0 = num(g, \"data-w\"), d0 = num(g, \"data-d\");\n"
	"\tvar scale = (width - 2 * xpad) / w0, list = frames.children, e, x, w, d, i;\n"
	"\tfor (i = 0; i < list.length; i++) {\n"
	"\t\te = list[i];\n"
	"\t\tx = num(e, \"data-x\");\n"
	"\t\tw = num(e, \"data-w\");\n"
	"\t\td = num(e, \"data-d\");\n"
	"\t\tif (d < d0 && x <= x0 && x + w >= x0 + w0) {\n"
	"\t\t\te.classList.remove(\"hide\");\n"
	"\t\t\te.classList.add(\"parent\");\n"
	"\t\t\tplace(e, xpad, width - 2 * xpad);\n"
	"\t\t} else if (d >= d0 && x >= x0 && x + w <= x0 + w0) {\n"
	"\t\t\te.classList.remove(\"hide\", \"parent\");\n"
	"\t\t\tplace(e, xpad + (x - x0) * scale, w * scale);\n"
	"\t\t} else {\n"
	"\t\t\te.classList.add(\"hide\");\n"
	"\t\t}\n"
	"\t}\n"
	"\tunzoombtn.classList.remove(\"hide\");\n"
	"}\n"
	"function unzoom() {\n"
	"\tvar scale = (width - 2 * xpad) / total, list = frames.children, e, i;\n"
	"\tfor (i = 0; i < list.length; i++) {\n"
	"\t\te = list[i];\n"
	"\t\te.classList.remove(\"hide\", \"parent\");\n"
	"\t\tplace(e, xpad + num(e, \"data-x\") * scale, num(e, \"data-w\") * scale);\n"
	"\t}\n"
	"\tunzoombtn.classList.add(\"hide\");\n"
	"}\n"
	"function search_prompt() {\n"
	"\tvar term = prompt(\"Enter a search term (regexp allowed, eg: ^django)\", searching || \"\");\n"
	"\tif (term === null)\n"
	"\t\treturn;\n"
	"\tif (term === \"\")\n"
	"\t\treset_search();\n"
	"\telse\n"
	"\t\tsearch(term);\n"
	"}\n"
	"function reset_search() {\n"
	"\tvar list = frames.children, r, i;\n"
	"\tfor (i = 0; i < list.length; i++) {\n"
	"\t\tr = list[i].childNodes[1];\n"
	"\t\tif (r.hasAttribute(\"data-fill\")) {\n"
	"\t\t\tr.setAttribute(\"fill\", r.getAttribute(\"data-fill\"));\n"
	"\t\t\tr.removeAttribute(\"data-fill\");\n"
	"\t\t}\n"
	"\t}\n"
	"\tsearching = null;\n"
	"\tsearchbtn.classList.remove(\"show\");\n"
	"\tsearchbtn.textContent = \"Search\";\n"
	"\tmatchedtxt.classList.add(\"hide\");\n"
	"}\n"
	"function search(term) {\n"
	"\tvar re, list = frames.children, ranges = [], e, r, x, w, i, end = -1, sum = 0;\n"
	"\ttry {\n"
	"\t\tre = new RegExp(term);\n"
	"\t} catch (err) {\n"
	"\t\talert(\"Invalid regular expression: \" + err.message);\n"
	"\t\treturn;\n"
	"\t}\n"
	"\treset_search();\n"
	"\tfor (i = 0; i < list.length; i++) {\n"
	"\t\te = list[i];\n"
	"\t\tif (!re.test(fname(e)))\n"
	"\t\t\tcontinue;\n"
	"\t\tr = e.childNodes[1];\n"
	"\t\tr.setAttribute(\"data-fill\", r.getAttribute(\"fill\"));\n"
	"\t\tr.setAttribute(\"fill\", \"rgb(230,0,230)\");\n"
	"\t\tranges.push([num(e, \"data-x\"), num(e, \"data-w\")]);\n"
	"\t}\n"
	"\t// a match nested in another lies inside its range: count the union of ranges, once\n"
	"\tranges.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });\n"
	"\tfor (i = 0; i < ranges.length; i++) {\n"
	"\t\tx = ranges[i][0];\n"
	"\t\tw = ranges[i][1];\n"
	"\t\tif (x >= end) {\n"
	"\t\t\tsum += w;\n"
	"\t\t\tend = x + w;\n"
	"\t\t} else if (x + w > end) {\n"
	"\t\t\tsum += x + w - end;\n"
	"\t\t\tend = x + w;\n"
	"\t\t}\n"
	"\t}\n"
	"\tsearching = term;\n"
	"\tsearchbtn.classList.add(\"show\");\n"
	"\tsearchbtn.textContent = \"Reset Search\";\n"
	"\tmatchedtxt.textContent = \"Matched: \" + (total ? 100 * sum / total : 0).toFixed(1) + \"%\";\n"
	"\tmatchedtxt.classList.remove(\"hide\");\n"
	"}\n";

static uint64_t hash_str(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h;
}

static uint64_t slot_hash(uint32_t parent, const char *name)
{
	uint64_t h = ((uint64_t)parent << 32) ^ (uintptr_t)name;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static int tree_grow_slots(struct ftree *t)
{
	size_t cap = t->slot_cap ? t->slot_cap * 2 : 1024;
	uint32_t *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 1; i < t->n; i++) {
		size_t j = slot_hash(t->parents[i], t->nodes[i].name) & (cap - 1);

		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = i + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->slot_cap = cap;
	return 0;
}

static int tree_new_node(struct ftree *t, uint32_t parent, const char *name)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct fnode *nodes = realloc(t->nodes, cap * sizeof(*nodes));
		uint32_t *parents;

		if (!nodes)
			return -ENOMEM;
		t->nodes = nodes;
		parents = realloc(t->parents, cap * sizeof(*parents));
		if (!parents)
			return -ENOMEM;
		t->parents = parents;
		t->cap = cap;
	}
	t->nodes[t->n] = (struct fnode){ .name = name };
	t->parents[t->n] = parent;
	if (t->n) {
		struct fnode *p = &t->nodes[parent];

		t->nodes[t->n].depth = p->depth + 1;
		t->nodes[t->n].next_sib = p->first_kid;
		p->first_kid = t->n + 1;
	}
	return (int)t->n++;
}

static int tree_add(void *ctx, const char *const *frames, size_t n, uint64_t weight)
{
	struct ftree *t = ctx;
	uint32_t cur = 0;

	t->nodes[0].total += weight;
	for (size_t i = 0; i < n; i++) {
		size_t j;
		uint32_t idx;
		int err;

		if ((t->n + 1) * 2 > t->slot_cap && (err = tree_grow_slots(t)))
			return err;
		for (j = slot_hash(cur, frames[i]) & (t->slot_cap - 1); (idx = t->slots[j]); j = (j + 1) & (t->slot_cap - 1)) {
			if (t->parents[idx - 1] == cur && t->nodes[idx - 1].name == frames[i])
				break;
		}
		if (!idx) {
			err = tree_new_node(t, cur, frames[i]);
			if (err < 0)
				return err;
			idx = (uint32_t)err + 1;
			t->slots[j] = idx;
		}
		cur = idx - 1;
		t->nodes[cur].total += weight;
	}
	return 0;
}

static int kid_cmp(const void *x, const void *y, void *ctx)
{
	const struct fnode *nodes = ctx;

	return strcmp(nodes[*(const uint32_t *)x - 1].name, nodes[*(const uint32_t *)y - 1].name);
}

/* Sorts every node's children by name and lays them out left to right. */
static int tree_layout(struct ftree *t)
{
	uint32_t *kids = malloc(t->n * sizeof(*kids));

	if (!kids)
		return -ENOMEM;
	/* children have higher indices than parents, so one forward pass sees parents placed first */
	for (size_t i = 0; i < t->n; i++) {
		struct fnode *p = &t->nodes[i];
		size_t nk = 0;
		uint64_t x = p->x;

		for (uint32_t k = p->first_kid; k; k = t->nodes[k - 1].next_sib)
			kids[nk++] = k;
		if (!nk)
			continue;
		qsort_r(kids, nk, sizeof(*kids), kid_cmp, t->nodes);
		p->first_kid = kids[0];
		for (size_t k = 0; k < nk; k++) {
			struct fnode *c = &t->nodes[kids[k] - 1];

			c->next_sib = k + 1 < nk ? kids[k + 1] : 0;
			c->x = x;
			x += c->total;
		}
	}
	free(kids);
	return 0;
}

static void tree_free(struct ftree *t)
{
	free(t->nodes);
	free(t->slots);
	free(t->parents);
}

int flamegraph__xml_escape(FILE *f, const char *s, size_t len)
{
	while (len) {
		uint32_t cp;
		size_t n = utf8_next(s, len, &cp);

		if ((cp < 0x20 && cp != '\t') || cp == 0xfffe || cp == 0xffff)
			cp = 0xfffd;
		switch (cp) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		case 0xfffd: fputs("\xef\xbf\xbd", f); break;
		default: fwrite(s, 1, n, f); break;
		}
		s += n;
		len -= n;
	}
	return ferror(f) ? -EIO : 0;
}

static void xml_puts(FILE *f, const char *s)
{
	flamegraph__xml_escape(f, s, strlen(s));
}

void flamegraph__frame_color(const char *frame, char *buf, size_t size)
{
	struct frame_parts p;
	uint64_t h;
	double v1, v2, v3;
	int r, g, b;

	frame__parse(frame, &p);
	h = hash_str(p.name, p.name_len);
	v1 = (double)(h & 0xffff) / 0xffff;
	v2 = (double)((h >> 16) & 0xffff) / 0xffff;
	v3 = (double)((h >> 32) & 0xffff) / 0xffff;
	if (strncmp(frame, "[sql]", 5) == 0) {
		r = 70 + (int)(50 * v1);
		g = 130 + (int)(50 * v2);
		b = 205 + (int)(50 * v3);
	} else if (frame[0] == '[') {
		r = g = b = 170 + (int)(40 * v1);
		b += 10;
	} else {
		r = 205 + (int)(50 * v3);
		g = (int)(230 * v1);
		b = (int)(55 * v2);
	}
	snprintf(buf, size, "rgb(%d,%d,%d)", r, g, b);
}

static void fmt_count(uint64_t v, char *buf)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v), o = 0;

	for (int i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = '\0';
}

void flamegraph__fmt_time_us(uint64_t us, char *buf, size_t size)
{
	if (us < 1000)
		snprintf(buf, size, "%llu us", (unsigned long long)us);
	else if (us < 1000000)
		snprintf(buf, size, "%.2f ms", us / 1e3);
	else
		snprintf(buf, size, "%.3f s", us / 1e6);
}

/* The visible label: as many code points as fit, cut with "..", as the script does on zoom. */
static void write_label(FILE *f, const char *name, double width, double font_size)
{
	double cw = font_size * FONT_WIDTH;
	size_t len = strlen(name), fit, chars = 0, cut = 0, off = 0;
	uint32_t cp;

	if (width < 3 * cw)
		return;
	fit = (size_t)(width / cw);
	while (off < len) {
		off += utf8_next(name + off, len - off, &cp);
		if (++chars == fit - 2)
			cut = off;
	}
	if (chars <= fit) {
		flamegraph__xml_escape(f, name, len);
	} else {
		flamegraph__xml_escape(f, name, cut);
		fputs("..", f);
	}
}

static bool node_visible(const struct svg_ctx *c, const struct fnode *n)
{
	return n->total && n->total * c->scale >= c->min_width;
}

static uint32_t max_depth(const struct svg_ctx *c)
{
	uint32_t d = 0;

	for (size_t i = 0; i < c->t->n; i++) {
		const struct fnode *n = &c->t->nodes[i];

		if (n->depth > d && node_visible(c, n))
			d = n->depth;
	}
	return d;
}

static void write_frame(const struct svg_ctx *c, const struct fnode *n)
{
	double x = XPAD + n->x * c->scale, w = n->total * c->scale, y;
	char col[32], cnt[32];

	if (c->inverted)
		y = c->ypad1 + (double)n->depth * c->frame_height;
	else
		y = c->height - 2 * c->font_size - 10 - (double)(n->depth + 1) * c->frame_height;
	flamegraph__frame_color(n->name, col, sizeof(col));
	fprintf(c->f, "<g data-x=\"%llu\" data-w=\"%llu\" data-d=\"%u\"><title>",
		(unsigned long long)n->x, (unsigned long long)n->total, n->depth);
	xml_puts(c->f, n->name);
	if (c->time_us) {
		flamegraph__fmt_time_us(n->total, cnt, sizeof(cnt));
		fprintf(c->f, " (%s", cnt);
	} else {
		fmt_count(n->total, cnt);
		fprintf(c->f, " (%s ", cnt);
		xml_puts(c->f, c->count_name);
	}
	fprintf(c->f, ", %.2f%%)</title><rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%u\" fill=\"%s\" rx=\"2\" ry=\"2\"/>"
		"<text x=\"%.2f\" y=\"%.1f\">", 100.0 * n->total / c->total, x, y, w,
		c->frame_height - 1, col, x + 3, y + c->frame_height / 2.0 + c->font_size / 3);
	write_label(c->f, n->name, w, c->font_size);
	fputs("</text></g>\n", c->f);
}

/* Pre-order walk; an omitted frame's descendants are narrower still, so they are skipped too. */
static void write_frames(const struct svg_ctx *c, uint32_t idx)
{
	const struct fnode *n = &c->t->nodes[idx];

	if (!node_visible(c, n))
		return;
	write_frame(c, n);
	for (uint32_t k = n->first_kid; k; k = c->t->nodes[k - 1].next_sib)
		write_frames(c, k - 1);
}

static void write_header(const struct svg_ctx *c, const char *title, const char *subtitle)
{
	FILE *f = c->f;
	double fs = c->font_size;

	fprintf(f, "<?xml version=\"1.0\" standalone=\"no\"?>\n"
		"<svg version=\"1.1\" width=\"%u\" height=\"%u\" viewBox=\"0 0 %u %u\" "
		"xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\">\n"
		"<!-- pytrace-bpf flame graph: click a frame to zoom, Ctrl-F to search -->\n",
		c->width, c->height, c->width, c->height);
	fprintf(f, "<defs><linearGradient id=\"background\" y1=\"0\" y2=\"1\" x1=\"0\" x2=\"0\">"
		"<stop stop-color=\"#eeeeee\" offset=\"5%%\"/><stop stop-color=\"#eeeeb0\" offset=\"95%%\"/>"
		"</linearGradient></defs>\n");
	fprintf(f, "<style type=\"text/css\">\n"
		"text { font-family: Verdana, \"DejaVu Sans\", sans-serif; font-size: %.0fpx; fill: rgb(0,0,0); }\n"
		"#title { text-anchor: middle; font-size: %.0fpx; }\n"
		"#subtitle { text-anchor: middle; fill: rgb(110,110,110); }\n"
		"#search, #matched { text-anchor: end; }\n"
		"#search { opacity: 0.1; cursor: pointer; }\n"
		"#search:hover, #search.show { opacity: 1; }\n"
		"#unzoom { cursor: pointer; }\n"
		"#frames > g { cursor: pointer; }\n"
		"#frames > g:hover > rect { stroke: rgb(0,0,0); stroke-width: 0.5; }\n"
		"#frames text { pointer-events: none; }\n"
		".hide { display: none; }\n"
		".parent { opacity: 0.5; }\n"
		"</style>\n", fs, fs + 5);
	fprintf(f, "<script type=\"text/ecmascript\"><![CDATA[\n"
		"var total = %llu, xpad = %d, fontsize = %.1f, fontwidth = %.2f;\n%s]]></script>\n",
		(unsigned long long)c->total, XPAD, fs, FONT_WIDTH, script);
	fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" fill=\"url(#background)\"/>\n",
		c->width, c->height);
	fprintf(f, "<text id=\"title\" x=\"%.1f\" y=\"%.0f\">", c->width / 2.0, fs * 2);
	xml_puts(f, title);
	fputs("</text>\n", f);
	if (subtitle) {
		fprintf(f, "<text id=\"subtitle\" x=\"%.1f\" y=\"%.0f\">", c->width / 2.0, fs * 3.5);
		xml_puts(f, subtitle);
		fputs("</text>\n", f);
	}
	fprintf(f, "<text id=\"unzoom\" class=\"hide\" x=\"%d\" y=\"%.0f\">Reset Zoom</text>\n", XPAD, fs * 2);
	fprintf(f, "<text id=\"search\" x=\"%d\" y=\"%.0f\">Search</text>\n", c->width - XPAD, fs * 2);
	fprintf(f, "<text id=\"details\" x=\"%d\" y=\"%.0f\"> </text>\n", XPAD, c->height - fs - 5);
	fprintf(f, "<text id=\"matched\" class=\"hide\" x=\"%d\" y=\"%.0f\"> </text>\n",
		c->width - XPAD, c->height - fs - 5);
}

int flamegraph__write_svg(const struct stack_agg *a, FILE *f, const struct flame_opts *opts)
{
	struct flame_opts o = opts ? *opts : (struct flame_opts){};
	struct ftree t = {};
	struct svg_ctx c = { .f = f, .t = &t };
	int err;

	if (!o.width)
		o.width = 1200;
	if (o.width < 2 * XPAD + 10)
		return -EINVAL;
	if (!o.frame_height)
		o.frame_height = 16;
	if (o.min_width == 0)
		o.min_width = 0.1;
	if (!o.count_name)
		o.count_name = "samples";
	if (!o.title)
		o.title = o.inverted ? "Icicle Graph" : "Flame Graph";

	err = tree_new_node(&t, 0, "all");
	if (err < 0)
		goto cleanup;
	err = stack_agg__foreach(a, tree_add, &t);
	if (err)
		goto cleanup;
	err = tree_layout(&t);
	if (err)
		goto cleanup;

	c.total = t.nodes[0].total;
	c.count_name = o.count_name;
	c.time_us = o.time_us;
	c.width = o.width;
	c.frame_height = o.frame_height;
	c.font_size = o.frame_height >= 16 ? 12 : o.frame_height * 0.75;
	c.min_width = o.min_width;
	c.inverted = o.inverted;
	c.scale = (double)(o.width - 2 * XPAD) / (c.total ? c.total : 1);
	c.ypad1 = (unsigned)(c.font_size * (o.subtitle ? 4.5 : 3));
	c.height = c.ypad1 + (max_depth(&c) + 1) * o.frame_height + (unsigned)(2 * c.font_size + 10);

	write_header(&c, o.title, o.subtitle);
	fputs("<g id=\"frames\">\n", f);
	write_frames(&c, 0);
	fputs("</g>\n</svg>\n", f);
	if (fflush(f) || ferror(f))
		err = -EIO;
cleanup:
	tree_free(&t);
	return err;
}
