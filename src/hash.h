/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A fast 64-bit hash for the collector's tables (frames, patterns, statement texts): eight bytes
 * per multiply where FNV-1a takes one, which matters on strings hashed once per event. Not for
 * anything written out: values may change between versions.
 */
#ifndef PYTRACE_HASH_H
#define PYTRACE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t hash64_mix(uint64_t h)
{
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ULL;
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ULL;
	h ^= h >> 32;
	return h;
}

static inline uint64_t hash64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0xff51afd7ed558ccdULL), a = 0, b = 0, v;

	for (; len >= 16; len -= 16, p += 16) {
		memcpy(&v, p, 8);
		a = (a ^ v) * 0xbf58476d1ce4e5b9ULL;
		a ^= a >> 31;
		memcpy(&v, p + 8, 8);
		b = (b ^ v) * 0x94d049bb133111ebULL;
		b ^= b >> 29;
	}
	if (len >= 8) {
		memcpy(&v, p, 8);
		a = (a ^ v) * 0xbf58476d1ce4e5b9ULL;
		a ^= a >> 31;
		len -= 8;
		p += 8;
	}
	v = 0;
	memcpy(&v, p, len);
	b = (b ^ v) * 0x94d049bb133111ebULL;
	return hash64_mix(h ^ a ^ (b << 1 | b >> 63));
}

#endif /* PYTRACE_HASH_H */
