// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The thread state's offset of the asyncio task it runs (3.14+), read from the _asyncio
 * module's .AsyncioDebug section (py_layout__asyncio_running_task), on the sections of Debian sid's
 * python3.14 (_asyncio a shared object) and python3.15 (built in) as `objdump -s -j
 * .AsyncioDebug` prints them; elfsym__section on a section of this test's own binary; proc_comm.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <cmocka.h>

#include "elfsym.h"
#include "pyproc.h"

/* Py_AsyncioModuleDebugOffsets: TaskObj's 7 words, the interpreter state's 2, the thread state's 4 */
static const uint64_t sid_314[13] = {
	0xa8, 0x88, 0x60, 0x6c, 0x6d, 0x80, 0x98,	/* TaskObj: size ... task_coro (0x80), task_node */
	0x37248, 0x2a80,				/* PyInterpreterState: size, asyncio_tasks_head */
	0x3a8, 0x360, 0x368, 0x370,			/* _PyThreadStateImpl: size, loop, task, tasks_head */
};
static const uint64_t sid_315[13] = {
	0xa8, 0x88, 0x60, 0x6c, 0x6d, 0x80, 0x98,
	0x373c0, 0x2a68,
	0x450, 0x400, 0x408, 0x418,
};
#define TASK_CORO_314	128	/* pylayout.c's TaskObj.task_coro for 3.14 and 3.15 */

static void test_sid_sections(void **state)
{
	(void)state;
	assert_int_equal(py_layout__asyncio_running_task(sid_314, sizeof(sid_314), TASK_CORO_314), 0x368);
	assert_int_equal(py_layout__asyncio_running_task(sid_315, sizeof(sid_315), TASK_CORO_314), 0x408);
}

static void test_refused(void **state)
{
	uint64_t w[13];

	(void)state;
	/* short */
	assert_int_equal(py_layout__asyncio_running_task(sid_314, sizeof(sid_314) - 8, TASK_CORO_314), 0);
	/* another TaskObj than the layout's: these offsets are not for this interpreter */
	assert_int_equal(py_layout__asyncio_running_task(sid_314, sizeof(sid_314), 136), 0);
	/* the task beyond the thread state's end */
	memcpy(w, sid_314, sizeof(w));
	w[9] = 0x368;
	assert_int_equal(py_layout__asyncio_running_task(w, sizeof(w), TASK_CORO_314), 0);
	/* misaligned, or the loop's own slot */
	memcpy(w, sid_314, sizeof(w));
	w[11] = 0x36c;
	assert_int_equal(py_layout__asyncio_running_task(w, sizeof(w), TASK_CORO_314), 0);
	memcpy(w, sid_314, sizeof(w));
	w[10] = w[11];
	assert_int_equal(py_layout__asyncio_running_task(w, sizeof(w), TASK_CORO_314), 0);
	/* zeroes (a section of another shape) */
	memset(w, 0, sizeof(w));
	assert_int_equal(py_layout__asyncio_running_task(w, sizeof(w), TASK_CORO_314), 0);
}

/* A section of this binary's own, as CPython's GENERATE_DEBUG_SECTION makes one. */
__attribute__((section(".PtUnitDebug"), used)) static const uint64_t own_section[4] = { 1, 2, 3, 0x0123456789abcdef };

static void test_section_from_file(void **state)
{
	uint64_t got[8] = { 0 };
	size_t len = 99;

	(void)state;
	assert_int_equal(elfsym__section("/proc/self/exe", ".PtUnitDebug", got, sizeof(got), &len), 0);
	assert_int_equal(len, sizeof(own_section));
	assert_memory_equal(got, own_section, sizeof(own_section));
	/* cap below the section's size: the first cap bytes */
	memset(got, 0, sizeof(got));
	assert_int_equal(elfsym__section("/proc/self/exe", ".PtUnitDebug", got, 12, &len), 0);
	assert_int_equal(len, 12);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1] & 0xffffffff, 2);
	assert_int_equal(got[1] >> 32, 0);
	/* no such section; no such file */
	assert_int_equal(elfsym__section("/proc/self/exe", ".AsyncioDebug", got, sizeof(got), &len), -ENOENT);
	assert_int_equal(len, 0);
	assert_int_equal(elfsym__section("/nonexistent/python3.14", ".AsyncioDebug", got, sizeof(got), &len),
			 -ENOENT);
}

/* A process's comm, without its newline, cut to the buffer; "" for a process that is not there. */
static void test_proc_comm(void **state)
{
	char want[16] = "", buf[32], tiny[4];

	(void)state;
	assert_int_equal(prctl(PR_SET_NAME, "comm-check"), 0);
	assert_int_equal(prctl(PR_GET_NAME, want), 0);
	proc_comm(getpid(), buf, sizeof(buf));
	assert_string_equal(buf, want);
	proc_comm(getpid(), tiny, sizeof(tiny));
	assert_string_equal(tiny, "com");
	proc_comm(getpid(), tiny, 1);
	assert_string_equal(tiny, "");
	buf[0] = 'x';
	proc_comm(0x7ffffff0, buf, sizeof(buf));	/* above any pid_max */
	assert_string_equal(buf, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sid_sections),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_section_from_file),
		cmocka_unit_test(test_proc_comm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
