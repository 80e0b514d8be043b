// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The collector's pieces: --prometheus's address, the auth file, the profile ring's windows and caps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "collector.h"
#include "flamering.h"
#include "selfprogs.h"
#include "stacks.h"

#define S 1000000000ULL

static void test_parse_listen(void **state)
{
	static const struct { const char *arg; const char *addr; int port; } good[] = {
		{ "9464", "127.0.0.1", 9464 },
		{ "0", "127.0.0.1", 0 },
		{ "127.0.0.1:9464", "127.0.0.1", 9464 },
		{ "0.0.0.0:80", "0.0.0.0", 80 },
		{ "[::1]:9464", "::1", 9464 },
		{ "[::]:65535", "::", 65535 },
	};
	static const char *const bad[] = {
		"", ":9464", "65536", "-1", "+5", "x", "9464x", "localhost:9464", "::1:9464", "[::1]9464",
		"[::1", "1.2.3:80", "[nothex]:80", "127.0.0.1:", "127.0.0.1:99999",
	};
	char err[200];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct collector_opts o = { 0 };

		assert_int_equal(collector__parse_listen(good[i].arg, &o, err, sizeof(err)), 0);
		assert_string_equal(o.address, good[i].addr);
		assert_int_equal(o.port, good[i].port);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct collector_opts o = { 0 };

		err[0] = 0;
		assert_int_equal(collector__parse_listen(bad[i], &o, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != 0);
	}
	/* ":PORT" names no address: the message says how to write one */
	{
		struct collector_opts o = { 0 };

		collector__parse_listen(":9464", &o, err, sizeof(err));
		assert_non_null(strstr(err, "0.0.0.0:PORT"));
	}
}

static void test_read_auth(void **state)
{
	char path[] = "/tmp/pytrace-auth-XXXXXX", err[200], *user = NULL, *pw = NULL;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "prom:s3cr:et\nsecond line\n", 25), 25);
	close(fd);
	assert_int_equal(collector__read_auth(path, &user, &pw, err, sizeof(err)), 0);
	assert_string_equal(user, "prom");
	assert_string_equal(pw, "s3cr:et");	/* the password may hold ':' */
	free(user);
	free(pw);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "nocolon\n", 8), 8);
	close(fd);
	assert_int_equal(collector__read_auth(path, &user, &pw, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "user:password"));
	unlink(path);
	assert_true(collector__read_auth(path, &user, &pw, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "No such file"));
}

#define ADD(r, t, ...) ({							\
	const char *_f[] = { __VA_ARGS__ };					\
	flamering__add(r, t, _f, sizeof(_f) / sizeof(_f[0]), 1);		\
})

static uint64_t window_total(struct flamering *r, uint64_t now, unsigned seconds, const char *root, uint64_t *from)
{
	struct stack_agg *a = stack_agg__new(0);
	uint64_t t;

	assert_int_equal(flamering__collect(r, now, seconds, root, a, from), 0);
	t = stack_agg__total(a);
	stack_agg__free(a);
	return t;
}

static void test_ring_windows(void **state)
{
	struct flamering_opts o = { .slot_s = 10, .max_s = 60 };
	struct flamering *r = flamering__new(&o);
	uint64_t t0 = 1000 * S, from;

	assert_non_null(r);
	/* one sample a second for 100 s, two services */
	for (unsigned i = 0; i < 100; i++)
		ADD(r, t0 + i * S, i % 2 ? "svc-a" : "svc-b", "main (a.py:1)", "work (a.py:5)");
	/* now = t0 + 99 s: the last 5 s are in the current slot [t0+90, t0+100): 10 samples */
	assert_int_equal(window_total(r, t0 + 99 * S, 5, NULL, &from), 10);
	assert_int_equal(from, t0 + 90 * S);
	/* 15 s: the current slot and the one before */
	assert_int_equal(window_total(r, t0 + 99 * S, 15, NULL, &from), 20);
	assert_int_equal(from, t0 + 80 * S);
	/* beyond max_s: capped at 60 s, whatever is asked */
	assert_int_equal(window_total(r, t0 + 99 * S, 3600, NULL, NULL), 70);
	/* a service's own stacks */
	assert_int_equal(window_total(r, t0 + 99 * S, 15, "svc-a", NULL), 10);
	assert_int_equal(window_total(r, t0 + 99 * S, 15, "nosuch", NULL), 0);
	/* time goes on with no samples: old slots fall out of the window, not out of memory only */
	assert_int_equal(window_total(r, t0 + 300 * S, 60, NULL, &from), 0);
	assert_int_equal(from, t0 + 300 * S);
	/* a slot that comes round again starts empty */
	ADD(r, t0 + 170 * S, "svc-a", "x");	/* slot of t0+170 is the one of t0+100 (7 slots) */
	assert_int_equal(window_total(r, t0 + 171 * S, 5, NULL, NULL), 1);
	flamering__free(r);
}

static void test_ring_caps(void **state)
{
	struct flamering_opts o = { .slot_s = 10, .max_s = 20, .slot_max_stacks = 4 };
	struct flamering *r = flamering__new(&o);
	uint64_t t0 = 50 * S;
	char name[32];

	for (int i = 0; i < 10; i++) {
		const char *f[2] = { "svc", name };

		snprintf(name, sizeof(name), "f%d", i);
		flamering__add(r, t0 + i, f, 2, 1);
	}
	/* 4 distinct stacks kept, 6 samples folded into the overflow stack and counted */
	assert_int_equal(flamering__dropped(r), 6);
	assert_int_equal(flamering__stacks(r), 5);
	assert_int_equal(window_total(r, t0 + 1, 10, NULL, NULL), 10);
	/* the memory held stays bounded however long it runs: slots are reused */
	for (uint64_t t = 0; t < 10000; t++) {
		const char *f[2] = { "svc", "g" };

		flamering__add(r, t0 + t * S, f, 2, 1);
	}
	assert_true(flamering__stacks(r) <= 3 * 5);
	flamering__free(r);
}

/* The programs' counts summed by name only grow, though programs come and go. */
static void test_selfprogs(void **state)
{
	struct selfprogs *sp = calloc(1, sizeof(*sp));
	char name[16];

	assert_non_null(sp);
	/* a program's first read counts all it ran since its load; a second fd of it nothing */
	selfprogs__begin(sp);
	selfprogs__add(sp, 10, "pg_sys_exit", 1000, 4);
	selfprogs__add(sp, 10, "pg_sys_exit", 1000, 4);
	selfprogs__add(sp, 11, "uvloop_write", 50, 1);
	selfprogs__end(sp);
	assert_int_equal(sp->nnames, 2);
	assert_string_equal(sp->names[0].name, "pg_sys_exit");
	assert_int_equal(sp->names[0].ns, 1000);
	assert_int_equal(sp->names[0].runs, 4);
	/* growth added; uvloop_write's instance unloaded, another loaded: the sum keeps growing */
	selfprogs__begin(sp);
	selfprogs__add(sp, 10, "pg_sys_exit", 1600, 7);
	selfprogs__add(sp, 12, "uvloop_write", 30, 1);
	selfprogs__end(sp);
	assert_int_equal(sp->nprogs, 2);
	assert_int_equal(sp->names[0].ns, 1600);
	assert_int_equal(sp->names[0].runs, 7);
	assert_int_equal(sp->names[1].ns, 80);
	assert_int_equal(sp->names[1].runs, 2);
	/* counts that went back (statistics reset by the kernel? never): nothing subtracted */
	selfprogs__begin(sp);
	selfprogs__add(sp, 10, "pg_sys_exit", 100, 1);
	selfprogs__add(sp, 12, "uvloop_write", 40, 2);
	selfprogs__add(sp, 13, "", 5, 1);
	selfprogs__end(sp);
	assert_int_equal(sp->names[0].ns, 1600);
	assert_int_equal(sp->names[1].ns, 90);
	assert_int_equal(sp->names[1].runs, 3);
	assert_string_equal(sp->names[2].name, "unnamed");
	/* names past the cap: "other", the last one */
	selfprogs__begin(sp);
	for (unsigned i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "p%u", i);
		selfprogs__add(sp, 100 + i, name, 1, 1);
	}
	selfprogs__end(sp);
	assert_int_equal(sp->nnames, SELFPROGS_NAMES);
	assert_string_equal(sp->names[SELFPROGS_NAMES - 1].name, "other");
	assert_int_equal(sp->names[SELFPROGS_NAMES - 1].runs, 100 - (SELFPROGS_NAMES - 4));
	/* all of them unloaded; then more programs than the cap: the rest counted as dropped */
	selfprogs__begin(sp);
	selfprogs__end(sp);
	assert_int_equal(sp->nprogs, 0);
	selfprogs__begin(sp);
	for (unsigned i = 0; i < SELFPROGS_MAX + 5; i++)
		selfprogs__add(sp, 1000 + i, "x", 1, 1);
	selfprogs__end(sp);
	assert_int_equal(sp->nprogs, SELFPROGS_MAX);
	assert_int_equal(sp->dropped, 5);
	free(sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_listen),
		cmocka_unit_test(test_selfprogs),
		cmocka_unit_test(test_read_auth),
		cmocka_unit_test(test_ring_windows),
		cmocka_unit_test(test_ring_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
