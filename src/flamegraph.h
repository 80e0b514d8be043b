/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Interactive SVG flame graphs in the manner of flamegraph.pl, from aggregated stacks. */
#ifndef PYTRACE_FLAMEGRAPH_H
#define PYTRACE_FLAMEGRAPH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct stack_agg;

struct flame_opts {
	const char *title;	/* default "Flame Graph" ("Icicle Graph" when inverted) */
	const char *subtitle;	/* optional, e.g. "pid 1234, 99 Hz, 12 s" */
	const char *count_name;	/* default "samples" */
	bool time_us;		/* weights are microseconds: tooltips give time (ms, s), not counts */
	unsigned width;		/* default 1200 */
	unsigned frame_height;	/* default 16 */
	double min_width;	/* px; narrower frames omitted, default 0.1 (negative: keep all) */
	bool inverted;		/* icicle: root at the top */
};

/* opts may be NULL. Numbers are printed with printf: call in the "C" numeric locale. */
int flamegraph__write_svg(const struct stack_agg *a, FILE *f, const struct flame_opts *opts);

/* A duration for people: "850 us", "12.35 ms", "4.567 s". */
void flamegraph__fmt_time_us(uint64_t us, char *buf, size_t size);

/* The fill colour a frame gets, "rgb(r,g,b)"; the same function always gets the same one. */
void flamegraph__frame_color(const char *frame, char *buf, size_t size);

/* XML text/attribute escaping, invalid UTF-8 and XML-illegal characters become U+FFFD. */
int flamegraph__xml_escape(FILE *f, const char *s, size_t len);

#endif /* PYTRACE_FLAMEGRAPH_H */
