// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* --functions patterns, their BPF prefilter, and the SDT note reader. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "funcpat.h"
#include "usdt.h"

static bool m(const char *pat, const char *file, const char *name, const char *qual)
{
	struct fn_pattern p;
	struct fn_filter f;

	assert_int_equal(fn_pattern__compile(pat, &p, &f), 0);
	return fn_pattern__match(&p, file, name, qual);
}

static void test_qualified(void **state)
{
	assert_true(m("app.services.checkout", "/srv/app/services.py", "checkout", NULL));
	assert_true(m("services.checkout", "/srv/app/services.py", "checkout", NULL));
	assert_false(m("app.services.checkout", "/srv/app/services.py", "checkin", NULL));
	assert_false(m("app.services.checkout", "/srv/other/services.py", "checkout", NULL));
	assert_true(m("myapp.*", "/srv/myapp/views.py", "index", NULL));
	assert_true(m("myapp.*", "/srv/myapp.py", "index", NULL));
	assert_false(m("myapp.*", "/srv/other/views.py", "index", NULL));
	/* packages: __init__ is not part of the name */
	assert_true(m("myapp.setup", "/srv/myapp/__init__.py", "setup", NULL));
	/* methods by qualified name (samples know it, the probes do not) */
	assert_true(m("app.cart.Cart.total", "/srv/app/cart.py", "total", "Cart.total"));
	assert_true(m("*.Cart.*", "/srv/app/cart.py", "total", "Cart.total"));
	/* a bare function name */
	assert_true(m("checkout", "/srv/app/services.py", "checkout", NULL));
	assert_true(m("check*", "/srv/app/services.py", "checkout", NULL));
}

static void test_file_form(void **state)
{
	assert_true(m("*views.py:*", "/srv/app/views.py", "index", NULL));
	assert_false(m("*views.py:*", "/srv/app/models.py", "index", NULL));
	assert_true(m("*/app/*:get_*", "/srv/app/x.py", "get_user", NULL));
	assert_false(m("*/app/*:get_*", "/srv/app/x.py", "set_user", NULL));
	assert_true(m("*cart.py:Cart.*", "/srv/cart.py", "total", "Cart.total"));
}

static void test_invalid(void **state)
{
	struct fn_pattern p;
	struct fn_filter f;

	assert_int_equal(fn_pattern__compile("", &p, &f), -EINVAL);
	assert_int_equal(fn_pattern__compile(":x", &p, &f), -EINVAL);
	assert_int_equal(fn_pattern__compile("x.py:", &p, &f), -EINVAL);
}

static void test_filter_kinds(void **state)
{
	struct fn_pattern p;
	struct fn_filter f;

	fn_pattern__compile("app.services.checkout", &p, &f);
	assert_int_equal(f.name_kind, FN_M_EXACT);
	assert_string_equal(f.name, "checkout");
	assert_int_equal(f.file_kind, FN_M_ANY);
	fn_pattern__compile("myapp.*", &p, &f);
	assert_int_equal(f.name_kind, FN_M_ANY);
	fn_pattern__compile("*_handler", &p, &f);
	assert_int_equal(f.name_kind, FN_M_SUFFIX);
	assert_string_equal(f.name, "_handler");
	fn_pattern__compile("*views.py:*", &p, &f);
	assert_int_equal(f.file_kind, FN_M_SUFFIX);
	assert_string_equal(f.file, "views.py");
	assert_int_equal(f.name_kind, FN_M_ANY);
	fn_pattern__compile("*.render", &p, &f);
	assert_int_equal(f.name_kind, FN_M_EXACT);
	assert_string_equal(f.name, "render");
	/* cheap rejection: a different name stops at the prefilter */
	fn_pattern__compile("app.services.checkout", &p, &f);
	assert_false(fn_filter__pass(&f, "/srv/app/services.py", "leaf"));
}

/* Whatever the glob matches, the prefilter must pass: it only ever rejects early. */
static void test_prefilter_superset(void **state)
{
	static const char *pats[] = {
		"app.services.checkout", "myapp.*", "*views.py:*", "*/app/*:get_*", "check*", "*_handler",
		"*.Cart.*", "a*b", "*cart.py:Cart.*", "app.serv*", "*.render", "x?z", "[ab]pp.*",
	};
	static const struct { const char *file, *name, *qual; } fns[] = {
		{ "/srv/app/services.py", "checkout", NULL }, { "/srv/myapp/views.py", "index", NULL },
		{ "/srv/app/x.py", "get_user", NULL }, { "/srv/app/cart.py", "total", "Cart.total" },
		{ "/x/y.py", "on_handler", NULL }, { "/x/a.py", "b", NULL }, { "/x/ab.py", "zzb", NULL },
		{ "/srv/app/services/__init__.py", "run", NULL }, { "/t/t.py", "render", "View.render" },
		{ "/t/xyz.py", "f", NULL }, { "/t/t.py", "xyz", NULL }, { "/bpp/q.py", "f", NULL },
		{ "<string>", "checkout", NULL },
	};
	size_t i, j;

	for (i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
		struct fn_pattern p;
		struct fn_filter f;

		assert_int_equal(fn_pattern__compile(pats[i], &p, &f), 0);
		for (j = 0; j < sizeof(fns) / sizeof(fns[0]); j++) {
			if (!fn_pattern__match(&p, fns[j].file, fns[j].name, fns[j].qual))
				continue;
			if (!fn_filter__pass(&f, fns[j].file, fns[j].name))
				fail_msg("'%s' matches %s:%s but its prefilter rejects it", pats[i], fns[j].file,
					 fns[j].name);
		}
	}
}

/* A descriptor as in Debian's python3.15: pc, base, semaphore, then three strings. */
static void test_note_desc(void **state)
{
	unsigned char d[128] = {};
	uint64_t pc = 0x548bc0, base = 0xb34d8c, sema = 0xc952e8;
	const char strs[] = "python\0function__entry\0" "8@%rbx 8@%r12 -4@%eax";
	struct usdt_note n;

	memcpy(d, &pc, 8);
	memcpy(d + 8, &base, 8);
	memcpy(d + 16, &sema, 8);
	memcpy(d + 24, strs, sizeof(strs));
	assert_int_equal(usdt__parse_desc(d, 24 + sizeof(strs), &n), 0);
	assert_string_equal(n.provider, "python");
	assert_string_equal(n.name, "function__entry");
	assert_string_equal(n.args, "8@%rbx 8@%r12 -4@%eax");
	assert_true(n.sema == sema && n.pc == pc && n.base == base);
	/* cut short: no terminator for the last string */
	assert_int_equal(usdt__parse_desc(d, 24 + 10, &n), -EINVAL);
}

/* Argument strings as SystemTap's sys/sdt.h writes them on x86_64, into usdt.bpf.h's terms. */
static void test_note_args(void **state)
{
	struct usdt_arg a[12];

	/* Debian's python3.15 function__entry: two pointers and a signed 32-bit line number */
	assert_int_equal(usdt__parse_args("8@%rbx 8@%r12 -4@%eax", a, 12), 3);
	assert_true(a[0].type == USDT_ARG_REG && a[0].reg_off == 40 && !a[0].is_signed && a[0].bitshift == 0);
	assert_true(a[1].type == USDT_ARG_REG && a[1].reg_off == 24);
	assert_true(a[2].type == USDT_ARG_REG && a[2].reg_off == 80 && a[2].is_signed && a[2].bitshift == 32);
	/* memory at a register plus an offset, constants, sub-registers of r8-r15 */
	assert_int_equal(usdt__parse_args("8@-24(%rbp) 4@$5 2@%r9w  1@16(%rsp) -8@%rdi", a, 12), 5);
	assert_true(a[0].type == USDT_ARG_REG_DEREF && a[0].reg_off == 32 && a[0].val_off == -24);
	assert_true(a[1].type == USDT_ARG_CONST && a[1].val_off == 5 && a[1].bitshift == 32);
	assert_true(a[2].type == USDT_ARG_REG && a[2].reg_off == 64 && a[2].bitshift == 48);
	assert_true(a[3].type == USDT_ARG_REG_DEREF && a[3].reg_off == 152 && a[3].val_off == 16 &&
		    a[3].bitshift == 56);
	assert_true(a[4].type == USDT_ARG_REG && a[4].reg_off == 112 && a[4].is_signed);
	assert_int_equal(usdt__parse_args("", a, 12), 0);
	/* refused: unknown register, size 3, no size, junk after the register, too many for max */
	assert_int_equal(usdt__parse_args("8@%xmm0", a, 12), -EINVAL);
	assert_int_equal(usdt__parse_args("3@%rax", a, 12), -EINVAL);
	assert_int_equal(usdt__parse_args("%rax", a, 12), -EINVAL);
	assert_int_equal(usdt__parse_args("8@8(%rbp)x", a, 12), -EINVAL);
	assert_int_equal(usdt__parse_args("8@%rax 8@%rbx", a, 1), -EINVAL);
}

static void test_classify(void **state)
{
	struct usdt_note notes[4] = {
		{ "python", "function__entry" }, { "python", "function__return" },
		{ "python", "gc__start" }, { "python", "gc__done" },
	};
	struct py_probes pp;

	usdt__classify(notes, 4, 3, 15, &pp);
	assert_int_equal(pp.level, PY_PROBES_COMPLETE);
	assert_true(pp.gc_start && pp.gc_done && !pp.import_start);
	usdt__classify(notes, 4, 3, 11, &pp);
	assert_int_equal(pp.level, PY_PROBES_PARTIAL);
	usdt__classify(notes, 4, 3, 13, &pp);
	assert_int_equal(pp.level, PY_PROBES_SILENT);
	usdt__classify(notes, 4, 3, 10, &pp);
	assert_int_equal(pp.level, PY_PROBES_COMPLETE);
	usdt__classify(notes + 2, 2, 3, 13, &pp);
	assert_int_equal(pp.level, PY_PROBES_NONE);
	assert_true(pp.gc_start);
	usdt__classify(NULL, 0, 3, 12, &pp);
	assert_int_equal(pp.level, PY_PROBES_NONE);
	assert_string_equal(usdt__level_str(PY_PROBES_NONE), "no USDT probes");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qualified),
		cmocka_unit_test(test_file_form),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_filter_kinds),
		cmocka_unit_test(test_prefilter_superset),
		cmocka_unit_test(test_note_desc),
		cmocka_unit_test(test_note_args),
		cmocka_unit_test(test_classify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
