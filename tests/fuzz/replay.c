// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Replays a fuzz target's inputs without libFuzzer, as a cmocka test: each file of
 * tests/fuzz/regressions/NAME/ (inputs that once crashed) as a test of its own, and the seed
 * corpus tests/fuzz/corpus/NAME/ as one. Built with the unit tests' flags (so with ASan+UBSan
 * under make check-sanitize) and linked with the target's tests/fuzz/fuzz_NAME.c.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *read_all(const char *path, size_t *size)
{
	char *buf = NULL;
	long n;
	FILE *f = fopen(path, "rb");

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc(n ? n : 1)) && fread(buf, 1, n, f) == (size_t)n) {
		*size = n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Feeds one file to the target; as libFuzzer does, through a buffer of exactly its size. */
static void replay_file(const char *path)
{
	size_t size = 0;
	char *buf = read_all(path, &size);

	if (!buf)
		fail_msg("cannot read %s", path);
	LLVMFuzzerTestOneInput((const uint8_t *)buf, size);
	free(buf);
}

static int names(const char *dir, char ***out)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort), k = 0;

	*out = NULL;
	if (n < 0)
		return 0;
	*out = calloc(n ? n : 1, sizeof(**out));
	for (int i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.' && asprintf(&(*out)[k], "%s/%s", dir, ents[i]->d_name) > 0)
			k++;
		free(ents[i]);
	}
	free(ents);
	return k;
}

static void test_regression(void **state)
{
	replay_file(*state);
}

static void test_corpus(void **state)
{
	char **files;
	int n = names(*state, &files);

	for (int i = 0; i < n; i++) {
		replay_file(files[i]);
		free(files[i]);
	}
	free(files);
	print_message("%d seed inputs of %s\n", n, (const char *)*state);
}

int main(void)
{
	static char corpus[] = FUZZ_DIR "/corpus/" FUZZ_NAME;
	struct CMUnitTest *tests;
	char **regs;
	int n = names(FUZZ_DIR "/regressions/" FUZZ_NAME, &regs), rc;

	tests = calloc(n + 1, sizeof(*tests));
	for (int i = 0; i < n; i++) {
		tests[i].name = strrchr(regs[i], '/') + 1;
		tests[i].test_func = test_regression;
		tests[i].initial_state = regs[i];
	}
	tests[n].name = "seed corpus";
	tests[n].test_func = test_corpus;
	tests[n].initial_state = corpus;
	rc = _cmocka_run_group_tests("replay_" FUZZ_NAME, tests, n + 1, NULL, NULL);
	for (int i = 0; i < n; i++)
		free(regs[i]);
	free(regs);
	free(tests);
	return rc;
}
