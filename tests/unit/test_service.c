// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Service names from environ and cmdline buffers (src/service.h), without /proc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "service.h"

/* NUL-separated buffers written as string literals with "\0" between the strings. */
#define BUF(s) s, sizeof(s) - 1

static const char *name(const char *env, size_t envlen, const char *cmd, size_t cmdlen, const char *comm)
{
	static char buf[SERVICE_NAME_MAX];
	size_t n = service__from_buffers(env, envlen, cmd, cmdlen, comm, buf, sizeof(buf));

	assert_int_equal(n, strlen(buf));
	assert_true(n > 0 && n < SERVICE_NAME_MAX);
	return buf;
}

static void test_otel_first(void **state)
{
	assert_string_equal(name(BUF("PATH=/bin\0OTEL_SERVICE_NAME=checkout\0HOME=/"),
				 BUF("/usr/bin/python3\0-m\0http.server"), "python3"), "checkout");
	/* an empty value does not count; a similar key neither */
	assert_string_equal(name(BUF("OTEL_SERVICE_NAME=\0XOTEL_SERVICE_NAME=no\0"),
				 BUF("python3\0app.py"), "python3"), "app");
	/* the last variable without a trailing NUL */
	assert_string_equal(name(BUF("A=1\0OTEL_SERVICE_NAME=billing"), NULL, 0, "python3"), "billing");
}

static void test_gunicorn_title(void **state)
{
	assert_string_equal(name(NULL, 0, BUF("gunicorn: master [shop]\0\0\0"), "gunicorn"), "shop");
	assert_string_equal(name(NULL, 0, BUF("gunicorn: worker [myapp.wsgi:application]          "), "gunicorn"),
			    "myapp.wsgi:application");
}

static void test_gunicorn_args(void **state)
{
	assert_string_equal(name(NULL, 0, BUF("/usr/bin/python3\0/usr/bin/gunicorn\0-w\0004\0-n\0recipes\0app:app"),
				 "gunicorn"), "recipes");
	assert_string_equal(name(NULL, 0, BUF("gunicorn\0--name=orders\0app:app"), "gunicorn"), "orders");
	assert_string_equal(name(NULL, 0, BUF("/usr/bin/python3\0/usr/bin/gunicorn\0-b\0127.0.0.1:8000\0"
					      "--workers\0002\0--preload\0myapp.wsgi:application"), "gunicorn"),
			    "myapp.wsgi");
	/* the app first, options after; -b's value looks like module:callable but is not one */
	assert_string_equal(name(NULL, 0, BUF("gunicorn\0myapp.wsgi\0-b\0unix:/tmp/s.sock"), "gunicorn"),
			    "myapp.wsgi");
	assert_string_equal(name(NULL, 0, BUF("python3\0-m\0gunicorn\0-k\0gthread\0web.app:create_app()"),
				 "python3"), "web.app");
	/* nothing usable: the comm */
	assert_string_equal(name(NULL, 0, BUF("gunicorn\0-c\0conf.py"), "gunicorn"), "gunicorn");
}

static void test_python_module_and_script(void **state)
{
	assert_string_equal(name(NULL, 0, BUF("/usr/bin/python3.11\0-u\0-W\0ignore\0-m\0celery\0worker"),
				 "python3.11"), "celery");
	assert_string_equal(name(NULL, 0, BUF("python3\0-mhttp.server\0008000"), "python3"), "http.server");
	assert_string_equal(name(NULL, 0, BUF("/root/.pyenv/versions/3.12.4/bin/python3.12\0/srv/app/manage.py\0runserver"),
				 "python3.12"), "manage");
	assert_string_equal(name(NULL, 0, BUF("python3\0worker"), "python3"), "worker");
	/* python -c: no name in the code; the comm */
	assert_string_equal(name(NULL, 0, BUF("python3\0-c\0import time"), "python3"), "python3");
	/* not a Python command line: the comm */
	assert_string_equal(name(NULL, 0, BUF("/opt/svc/bin/daemon\0--flag"), "daemon"), "daemon");
}

static void test_bounded_printable(void **state)
{
	char env[400], big[300];
	const char *n;
	size_t i;

	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	snprintf(env, sizeof(env), "OTEL_SERVICE_NAME=%s", big);
	n = name(env, strlen(env), NULL, 0, "x");
	assert_int_equal(strlen(n), SERVICE_NAME_MAX - 1);
	/* control characters dropped, UTF-8 kept, invalid bytes dropped */
	assert_string_equal(name(BUF("OTEL_SERVICE_NAME=caf\xc3\xa9\n\t-\x01shop\xff"), NULL, 0, "x"), "caf\xc3\xa9-shop");
	/* a multibyte character is never cut at the bound */
	for (i = 0; i < 100; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2);
	big[200] = '\0';
	snprintf(env, sizeof(env), "OTEL_SERVICE_NAME=%s", big);
	n = name(env, strlen(env), NULL, 0, "x");
	assert_int_equal(strlen(n), 62);
	/* a name of blanks and controls only: the next source */
	assert_string_equal(name(BUF("OTEL_SERVICE_NAME=  \x01 "), BUF("python3\0job.py"), "python3"), "job");
	/* nothing at all: never empty, never a pid */
	assert_string_equal(name(NULL, 0, NULL, 0, ""), "unknown");
	assert_string_equal(name(NULL, 0, NULL, 0, NULL), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_otel_first),
		cmocka_unit_test(test_gunicorn_title),
		cmocka_unit_test(test_gunicorn_args),
		cmocka_unit_test(test_python_module_and_script),
		cmocka_unit_test(test_bounded_printable),
	};

	return cmocka_run_group_tests_name("service", tests, NULL, NULL);
}
