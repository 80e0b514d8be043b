// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Find where this glibc keeps pthread keys < 32: the tracer reads key k of a thread at
 * fsbase + OFF + k*16 + 8 (struct pthread_key_data { uintptr_t seq; void *data; }
 * specific_1stblock[32], OFF its offset in struct pthread; fsbase == pthread_self()).
 * Sets known values in a few keys and scans the thread descriptor for them; prints OFF.
 * Exits non-zero if the slots are not found, or not where OFF + k*16 + 8 predicts for all keys.
 * Usage: tsd_offset [-q]     (-q: print only the number)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define NKEYS 3
#define SCAN 4096	/* struct pthread is ~2.3 KiB in glibc 2.36 */

static int find(const char *base, const void *val, size_t from)
{
	for (size_t o = from; o + sizeof(val) <= SCAN; o += sizeof(void *))
		if (!memcmp(base + o, &val, sizeof(val)))
			return (int)o;
	return -1;
}

static void *run(void *arg)
{
	static char marks[NKEYS];
	pthread_key_t keys[NKEYS];
	const char *self = (const char *)pthread_self();
	long *off = arg;
	int i, at, guess = -1;

	for (i = 0; i < NKEYS; i++) {
		if (pthread_key_create(&keys[i], NULL))
			return NULL;
		if (keys[i] >= 32) {
			fprintf(stderr, "tsd_offset: key %u is not in the first block\n", keys[i]);
			return NULL;
		}
		pthread_setspecific(keys[i], &marks[i]);
	}
	for (i = 0; i < NKEYS; i++) {
		at = find(self, &marks[i], 0);
		if (at < 0 || find(self, &marks[i], at + 8) >= 0) {
			fprintf(stderr, "tsd_offset: key %u: %s\n", keys[i], at < 0 ? "not found" : "found twice");
			return NULL;
		}
		at -= keys[i] * 16 + 8;
		if (guess >= 0 && at != guess) {
			fprintf(stderr, "tsd_offset: key %u says %#x, key %u said %#x\n",
				keys[i], at, keys[0], guess);
			return NULL;
		}
		guess = at;
	}
	*off = guess;
	return NULL;
}

int main(int argc, char **argv)
{
	long off_main = -1, off_thread = -1;
	pthread_t t;

	/* Once on the main thread, once on a new one: both descriptors must agree. */
	run(&off_main);
	if (pthread_create(&t, NULL, run, &off_thread) || pthread_join(t, NULL))
		return 1;
	if (off_main < 0 || off_main != off_thread) {
		fprintf(stderr, "tsd_offset: main thread %#lx, new thread %#lx\n", off_main, off_thread);
		return 1;
	}
	if (argc > 1 && !strcmp(argv[1], "-q"))
		printf("%ld\n", off_main);
	else
		printf("specific_1stblock at %#lx (%ld) in struct pthread\n", off_main, off_main);
	return 0;
}
