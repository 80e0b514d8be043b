// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "pythreads.h"
#include "symbolize.h"

#define OB_TYPE 8		/* PyObject.ob_type */
#define VAR_SIZE 16		/* PyVarObject.ob_size */
#define LIST_ITEMS 24		/* PyListObject.ob_item */
#define TP_NAME 24		/* PyTypeObject.tp_name */
#define STR_LENGTH 16		/* PyASCIIObject.length */
#define DESCR_MEMBER 40		/* PyMemberDescrObject.d_member: the head, d_type, d_name, d_qualname */
#define MEMBER_TYPE 8		/* PyMemberDef.type (int) */
#define MEMBER_OFFSET 16	/* PyMemberDef.offset (Py_ssize_t) */
#define T_OBJECT 6		/* PyMemberDef types of an object member (Py_T_OBJECT, Py_T_OBJECT_EX) */
#define T_OBJECT_EX 16
#define TPFLAGS_INLINE_VALUES (1UL << 2)	/* 3.13+ */
#define TPFLAGS_MANAGED_DICT (1UL << 4)		/* 3.11+ */
#define MANAGED_DICT_OFF 24	/* the dict (or 3.12's dict-or-values) at obj - 24, 3.11+ */
#define MANAGED_VALUES_311 32	/* 3.11's values pointer at obj - 32 */
#define DV_VALID 3		/* 3.13+ PyDictValues.valid */
#define CHUNK 128		/* entries read at once */
#define KEY_MAX 64		/* longest key looked up (module names: "uvicorn.protocols.http.httptools_impl") */

/* One table of keys and, for a split table, its values array (0: values in the entries). */
struct table {
	uint64_t keys, values;
};

typedef int (*entry_fn)(void *ctx, uint64_t key, uint64_t value, uint32_t ix);	/* > 0: stop; ix: the entry's */

static int read_i64(const struct mem_reader *mr, uint64_t addr, int64_t *v)
{
	return mem_read(mr, addr, v, sizeof(*v));
}

/*
 * Where a keys object's entries are: their address, size and the key's offset in one, and how
 * many; where its indices are, how many slots, and the bytes of one index (dictkeys_get_index).
 */
struct keys_layout {
	uint64_t entries;
	int64_t nentries;
	unsigned esize, key_off;
	bool has_hash;		/* the entries hold the key's hash (before the key) */
	uint64_t indices;
	int64_t size;
	unsigned ixw;
};

static int keys_layout(const struct py_layout *l, const struct mem_reader *mr, uint64_t keys, struct keys_layout *k)
{
	uint8_t hdr[64];
	int64_t size;
	int ret;

	if (!keys || l->dk_indices > sizeof(hdr) || l->dk_nentries + 8 > sizeof(hdr))
		return -EINVAL;
	ret = mem_read(mr, keys, hdr, l->dk_indices);
	if (ret)
		return ret;
	memcpy(&k->nentries, hdr + l->dk_nentries, 8);
	if (l->dk_log2) {
		uint8_t log2_size = hdr[l->dk_size], log2_ix = hdr[l->dk_size + 1], kind = hdr[l->dk_size + 2];

		/* the indices take 2^log2_ix bytes: 1 to 8 per slot of 2^log2_size */
		if (log2_size < 3 || log2_size > 30 || log2_ix < log2_size || log2_ix > log2_size + 3 || kind > 2)
			return -EINVAL;
		k->entries = keys + l->dk_indices + (1ULL << log2_ix);
		size = 1LL << log2_size;
		k->ixw = 1u << (log2_ix - log2_size);
		k->esize = kind == 0 ? 24 : 16;	/* DICT_KEYS_GENERAL: hash, key, value; else key, value */
		k->key_off = kind == 0 ? 8 : 0;
	} else {
		memcpy(&size, hdr + l->dk_size, 8);
		if (size < 8 || size > (1LL << 30) || (size & (size - 1)))
			return -EINVAL;
		k->ixw = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;
		k->entries = keys + l->dk_indices + (uint64_t)size * k->ixw;
		k->esize = 24;
		k->key_off = 8;
	}
	k->has_hash = k->key_off == 8;
	k->indices = keys + l->dk_indices;
	k->size = size;
	/* a table holds at most 2/3 of its slots; one being resized can be read torn: refuse */
	if (k->nentries < 0 || k->nentries > size || k->nentries > PYTHREADS_MAX_ENTRIES)
		return -EINVAL;
	return 0;
}

/*
 * Call fn for each live (key, value) of the table, in insertion order, from entry start on
 * (clamped to the table's); *end, if given, is set to the entries the table had.
 */
static int table_foreach_from(const struct py_layout *l, const struct mem_reader *mr, const struct table *t,
			      int64_t start, int64_t *end, entry_fn fn, void *ctx)
{
	uint8_t buf[CHUNK * 24];
	uint64_t vals[CHUNK];
	struct keys_layout kl;
	uint64_t entries;
	int64_t nentries;
	unsigned esize, key_off, val_off;
	int ret = keys_layout(l, mr, t->keys, &kl);

	if (ret)
		return ret;
	entries = kl.entries;
	nentries = kl.nentries;
	esize = kl.esize;
	key_off = kl.key_off;
	val_off = key_off + 8;
	if (end)
		*end = nentries;
	for (int64_t i = start < 0 ? 0 : start; i < nentries; i += CHUNK) {
		unsigned n = nentries - i < CHUNK ? (unsigned)(nentries - i) : CHUNK;

		ret = mem_read(mr, entries + i * esize, buf, n * esize);
		if (!ret && t->values)
			ret = mem_read(mr, t->values + l->dv_values + i * 8, vals, n * 8);
		if (ret)
			return ret;
		for (unsigned j = 0; j < n; j++) {
			uint64_t k, v;

			memcpy(&k, buf + j * esize + key_off, 8);
			if (t->values)
				v = vals[j];
			else
				memcpy(&v, buf + j * esize + val_off, 8);
			if (!k || !v)
				continue;	/* a deleted entry, or a split table's missing value */
			ret = fn(ctx, k, v, (uint32_t)(i + j));
			if (ret)
				return ret > 0 ? 0 : ret;
		}
	}
	return 0;
}

static int table_foreach(const struct py_layout *l, const struct mem_reader *mr, const struct table *t,
			 entry_fn fn, void *ctx)
{
	return table_foreach_from(l, mr, t, 0, NULL, fn, ctx);
}

static int dict_table(const struct py_layout *l, const struct mem_reader *mr, uint64_t dict, struct table *t)
{
	int ret;

	if (!dict)
		return -EINVAL;
	ret = mem_read_u64(mr, dict + l->dict_keys, &t->keys);
	if (!ret)
		ret = mem_read_u64(mr, dict + l->dict_values, &t->values);
	return ret;
}

/* Whether the object at addr is the compact ASCII str s (one read). */
static bool str_is(const struct py_layout *l, const struct mem_reader *mr, uint64_t addr, const char *s)
{
	uint8_t buf[128 + KEY_MAX];
	size_t len = strlen(s);
	uint32_t state;
	int64_t length;

	if (len > KEY_MAX || l->str_ascii_data > 128 || l->str_state + 4 > l->str_ascii_data ||
	    mem_read(mr, addr, buf, l->str_ascii_data + len))
		return false;
	memcpy(&state, buf + l->str_state, 4);
	memcpy(&length, buf + STR_LENGTH, 8);
	/* compact (bit 5) and ASCII (bit 6), one byte per character (kind 1) */
	return (state >> 5 & 3) == 3 && (state >> 2 & 7) == 1 && length == (int64_t)len &&
	       !memcmp(buf + l->str_ascii_data, s, len);
}

/*
 * The compact ASCII str at addr read once for several comparisons: its length (-1: not such a
 * str, longer than max, or unreadable), its bytes in buf. A read of max bytes that
 * would run past the mapping is retried at the str's own length.
 */
static int64_t str_load(const struct py_layout *l, const struct mem_reader *mr, uint64_t addr, uint8_t *buf,
			size_t max)
{
	uint32_t state;
	int64_t length;

	if (max > KEY_MAX || l->str_ascii_data > 128 || l->str_state + 4 > l->str_ascii_data)
		return -1;
	if (mem_read(mr, addr, buf, l->str_ascii_data + max)) {
		if (mem_read(mr, addr, buf, l->str_ascii_data))
			return -1;
		memcpy(&length, buf + STR_LENGTH, 8);
		if (length < 0 || (uint64_t)length > max ||
		    mem_read(mr, addr + l->str_ascii_data, buf + l->str_ascii_data, (size_t)length))
			return -1;
	}
	memcpy(&state, buf + l->str_state, 4);
	memcpy(&length, buf + STR_LENGTH, 8);
	/*
	 * compact (bit 5) and ASCII (bit 6), one byte per character (kind 1), and no longer than
	 * what was read (a longer str's length is its own: the callers read buf by it)
	 */
	if ((state >> 5 & 3) != 3 || (state >> 2 & 7) != 1 || length < 0 || (uint64_t)length > max)
		return -1;
	return length;
}

/*
 * Key objects already compared, by address, within one read of the registry: every Thread's
 * attribute names are the same interned strs (its type's shared keys), so after the first
 * Thread none is read again (30 reads a Thread become about 10).
 */
#define KEYCACHE 64

struct keycache {
	uint64_t addr[KEYCACHE];
	int8_t match[KEYCACHE];		/* index in the names looked up, -1: none of them */
};

/* Several str keys looked up in one pass over a table. */
struct lookup {
	const struct py_layout *l;
	const struct mem_reader *mr;
	const char *const *names;
	uint64_t *values;
	unsigned n, found;
	size_t maxlen;			/* of the names */
	struct keycache *kc;		/* NULL: compare every key */
};

/* The index of the names that the str at key is, or -1: the key read once for all of them. */
static int match_key(const struct lookup *lk, uint64_t key)
{
	uint8_t buf[128 + KEY_MAX];
	int64_t len = str_load(lk->l, lk->mr, key, buf, lk->maxlen);

	if (len < 0 || (uint64_t)len > lk->maxlen)
		return -1;
	for (unsigned i = 0; i < lk->n; i++)
		if (strlen(lk->names[i]) == (size_t)len && !memcmp(buf + lk->l->str_ascii_data, lk->names[i], (size_t)len))
			return (int)i;
	return -1;
}

static int lookup_entry(void *ctx, uint64_t key, uint64_t value, uint32_t ix)
{
	struct lookup *lk = ctx;
	unsigned slot = (unsigned)(key >> 4) % KEYCACHE;
	int match = -1;

	if (lk->kc && lk->kc->addr[slot] == key) {
		match = lk->kc->match[slot];
	} else {
		match = match_key(lk, key);
		if (lk->kc) {
			lk->kc->addr[slot] = key;
			lk->kc->match[slot] = (int8_t)match;
		}
	}
	if (match < 0 || lk->values[match])
		return 0;
	lk->values[match] = value;
	return ++lk->found == lk->n;
}

/*
 * SipHash with c compression and 3 + c - 1 finalization rounds (c = 1: SipHash-1-3, c = 2:
 * SipHash-2-4) of m, as CPython's Python/pyhash.c computes it for a str's bytes (the reference
 * algorithm of Aumasson and Bernstein, little-endian words).
 */
#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do { \
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
} while (0)

uint64_t pythreads__siphash(uint64_t k0, uint64_t k1, const void *src, size_t len, unsigned c)
{
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
	const uint8_t *m = src;
	uint64_t b = (uint64_t)len << 56, w;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, m + i, 8);	/* x86-64 and arm64: little-endian, as SipHash reads */
		v3 ^= w;
		for (unsigned r = 0; r < c; r++)
			SIPROUND;
		v0 ^= w;
	}
	for (unsigned j = 0; i + j < len; j++)
		b |= (uint64_t)m[i + j] << (8 * j);
	v3 ^= b;
	for (unsigned r = 0; r < c; r++)
		SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	for (unsigned r = 0; r < c + 2; r++)
		SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* hash() of the ASCII str s in the process whose key and rounds l holds (_Py_HashBytes). */
static int64_t str_hash(const struct py_layout *l, const char *s, size_t len)
{
	int64_t h;

	if (!len)
		return 0;
	h = (int64_t)pythreads__siphash(l->hash_k0, l->hash_k1, s, len, l->hash_rounds);
	return h == -1 ? -2 : h;
}

static bool hashed(const struct py_layout *l)
{
	return l->hash_rounds == 1 || l->hash_rounds == 2;
}

#define DKIX_EMPTY (-1)
#define PERTURB_SHIFT 5
#define PROBES_MAX 64	/* a table at most 2/3 full needs a few; more: being resized as it is read */

/*
 * The value of the ASCII str key name in table t, looked up as CPython does (lookdict): from the
 * slot its hash gives, along the same probe sequence, to its entry or an empty slot. -ENOENT:
 * not there; -ENOTSUP: the process's hash is not known; -EAGAIN: a table that reads torn (the
 * caller reads the entries in order instead).
 */
static int table_find_in(const struct py_layout *l, const struct mem_reader *mr, const struct table *t,
			 const struct keys_layout *k, const char *name, uint64_t *value)
{
	size_t len = strlen(name);
	struct keys_layout kl = *k;
	uint64_t mask, perturb, i;
	int64_t h;
	int ret;

	if (!hashed(l) || !len || len > KEY_MAX)
		return -ENOTSUP;
	h = str_hash(l, name, len);
	mask = (uint64_t)kl.size - 1;
	perturb = (uint64_t)h;
	i = (uint64_t)h & mask;
	for (unsigned probe = 0; probe < PROBES_MAX; probe++) {
		uint8_t ixb[8] = { 0 }, e[24];
		int64_t ix;

		ret = mem_read(mr, kl.indices + i * kl.ixw, ixb, kl.ixw);
		if (ret)
			return ret;
		switch (kl.ixw) {
		case 1: ix = (int8_t)ixb[0]; break;
		case 2: { int16_t v; memcpy(&v, ixb, 2); ix = v; break; }
		case 4: { int32_t v; memcpy(&v, ixb, 4); ix = v; break; }
		default: memcpy(&ix, ixb, 8); break;
		}
		if (ix == DKIX_EMPTY)
			return -ENOENT;
		if (ix >= kl.nentries)
			return -EAGAIN;
		if (ix >= 0) {
			uint64_t k, v;
			int64_t eh;

			ret = mem_read(mr, kl.entries + (uint64_t)ix * kl.esize, e, kl.esize);
			if (ret)
				return ret;
			memcpy(&eh, e, 8);
			memcpy(&k, e + kl.key_off, 8);
			if (k && (!kl.has_hash || eh == h) && str_is(l, mr, k, name)) {
				if (t->values)
					ret = mem_read_u64(mr, t->values + l->dv_values + (uint64_t)ix * 8, &v);
				else
					memcpy(&v, e + kl.key_off + 8, 8);
				if (ret)
					return ret;
				if (!v)
					return -ENOENT;	/* a split table's key this dict has no value for */
				*value = v;
				return 0;
			}
		}
		perturb >>= PERTURB_SHIFT;
		i = (i * 5 + perturb + 1) & mask;
	}
	return -EAGAIN;
}

static int table_find(const struct py_layout *l, const struct mem_reader *mr, const struct table *t,
		      const char *name, uint64_t *value)
{
	struct keys_layout kl;
	int ret = hashed(l) ? keys_layout(l, mr, t->keys, &kl) : -ENOTSUP;

	return ret ?: table_find_in(l, mr, t, &kl, name, value);
}

/* Each of names by hash (0 for those not there): 0, or not 0 when the caller must read in order. */
static int table_find_all(const struct py_layout *l, const struct mem_reader *mr, const struct table *t,
			  const char *const *names, uint64_t *values, unsigned n)
{
	struct keys_layout kl;
	int ret = keys_layout(l, mr, t->keys, &kl);

	if (ret)
		return ret;
	for (unsigned i = 0; i < n; i++) {
		ret = table_find_in(l, mr, t, &kl, names[i], &values[i]);
		if (ret == -ENOENT)
			values[i] = 0;
		else if (ret)
			return ret;
	}
	return 0;
}

static int table_get(const struct py_layout *l, const struct mem_reader *mr, const struct table *t,
		     const char *const *names, uint64_t *values, unsigned n, struct keycache *kc)
{
	struct lookup lk = { .l = l, .mr = mr, .names = names, .values = values, .n = n, .kc = kc };

	if (hashed(l) && !table_find_all(l, mr, t, names, values, n))
		return 0;

	for (unsigned i = 0; i < n; i++) {
		size_t len = strlen(names[i]);

		if (len <= KEY_MAX && len > lk.maxlen)	/* a longer name matches nothing */
			lk.maxlen = len;
	}
	memset(values, 0, n * sizeof(*values));
	return table_foreach(l, mr, t, lookup_entry, &lk);
}

int pythreads__dict_get(const struct py_layout *l, const struct mem_reader *mr, uint64_t dict,
			const char *name, uint64_t *value)
{
	struct table t;
	int ret = dict_table(l, mr, dict, &t);

	if (!ret)
		ret = table_get(l, mr, &t, &name, value, 1, NULL);
	if (!ret && !*value)
		ret = -ENOENT;
	return ret;
}

int pythreads__dict_foreach(const struct py_layout *l, const struct mem_reader *mr, uint64_t dict,
			    pythreads_entry_fn fn, void *ctx)
{
	struct table t;
	int ret = dict_table(l, mr, dict, &t);

	return ret ?: table_foreach(l, mr, &t, fn, ctx);
}

int pythreads__list_items(const struct py_layout *l, const struct mem_reader *mr, uint64_t seq, uint64_t *items,
			  int max)
{
	char name[7] = "";
	uint64_t at;
	int64_t n;
	int ret;

	ret = pythreads__type_name(mr, seq, name, sizeof(name));
	if (ret)
		return ret;
	if (!memcmp(name, "list", 5))
		ret = mem_read_u64(mr, seq + LIST_ITEMS, &at);
	else if (!memcmp(name, "tuple", 6))
		at = seq + l->tuple_items;
	else
		return -EINVAL;
	ret = ret ?: mem_read(mr, seq + VAR_SIZE, &n, sizeof(n));
	if (ret)
		return ret;
	if (n < 0 || n > max)
		return -E2BIG;
	return n ? mem_read(mr, at, items, n * sizeof(*items)) ?: (int)n : 0;
}

struct entry_at {
	const struct py_layout *l;
	const struct mem_reader *mr;
	const char *name;
	uint64_t value;
	int64_t ix;
};

static int entry_index(void *ctx, uint64_t key, uint64_t value, uint32_t ix)
{
	struct entry_at *e = ctx;

	if (!str_is(e->l, e->mr, key, e->name))
		return 0;
	e->value = value;
	e->ix = ix;
	return 1;
}

int pythreads__dict_entry(const struct py_layout *l, const struct mem_reader *mr, uint64_t dict, const char *name,
			  uint32_t *off, uint64_t *key, uint64_t *value)
{
	struct entry_at e = { .l = l, .mr = mr, .name = name, .ix = -1 };
	struct keys_layout kl;
	struct table t;
	int ret = dict_table(l, mr, dict, &t);

	if (!ret && t.values)
		return -ENOTSUP;	/* a split table: its values are elsewhere */
	ret = ret ?: keys_layout(l, mr, t.keys, &kl);
	ret = ret ?: table_foreach(l, mr, &t, entry_index, &e);
	if (ret)
		return ret;
	if (e.ix < 0)
		return -ENOENT;
	*off = (uint32_t)(kl.entries - t.keys) + (uint32_t)e.ix * kl.esize + kl.key_off;
	ret = mem_read_u64(mr, t.keys + *off, key);
	*value = e.value;
	return ret;
}

/* Where the instance obj keeps its attributes: a dict's table, or values with the type's keys. */
static int obj_table(const struct py_layout *l, const struct mem_reader *mr, uint64_t obj, struct table *t)
{
	uint64_t type, flags = 0, p = 0;
	int64_t off;
	int ret;

	ret = mem_read_u64(mr, obj + OB_TYPE, &type);
	if (!ret && l->objdict != PYL_DICT_OFFSET)
		ret = mem_read_u64(mr, type + l->tp_flags, &flags);
	if (ret)
		return ret;
	if (l->objdict == PYL_DICT_OFFSET || !(flags & TPFLAGS_MANAGED_DICT)) {
		/* a dict at a fixed offset (a negative one: variable-sized objects, not Threads) */
		ret = read_i64(mr, type + l->tp_dictoffset, &off);
		if (ret)
			return ret;
		if (off <= 0 || off > 4096)
			return -ENOENT;
		ret = mem_read_u64(mr, obj + off, &p);
		return ret ? ret : p ? dict_table(l, mr, p, t) : -ENOENT;
	}
	t->keys = t->values = 0;
	switch (l->objdict) {
	case PYL_DICT_MANAGED_311:
		ret = mem_read_u64(mr, obj - MANAGED_VALUES_311, &t->values);
		if (!ret && !t->values) {
			ret = mem_read_u64(mr, obj - MANAGED_DICT_OFF, &p);
			return ret ? ret : p ? dict_table(l, mr, p, t) : -ENOENT;
		}
		break;
	case PYL_DICT_MANAGED_312:
		ret = mem_read_u64(mr, obj - MANAGED_DICT_OFF, &p);
		if (!ret && !(p & 1))
			return p ? dict_table(l, mr, p, t) : -ENOENT;
		t->values = p + 1;	/* tagged: values - 1 (_PyDictOrValues_SetValues) */
		break;
	case PYL_DICT_INLINE: {
		uint8_t valid;

		ret = mem_read_u64(mr, obj - MANAGED_DICT_OFF, &p);
		if (!ret && p)
			return dict_table(l, mr, p, t);
		if (!ret && !(flags & TPFLAGS_INLINE_VALUES))
			return -ENOENT;
		if (!ret)
			ret = read_i64(mr, type + l->tp_basicsize, &off);
		if (!ret && (off <= 0 || off > 4096))
			return -EINVAL;
		t->values = obj + off;
		if (!ret)
			ret = mem_read(mr, t->values + DV_VALID, &valid, 1);
		if (!ret && !valid)
			return -ENOENT;	/* the values moved to a dict being made: try next time */
		break;
	}
	default:
		return -EINVAL;
	}
	if (!ret)
		ret = mem_read_u64(mr, type + l->ht_cached_keys, &t->keys);
	if (!ret && (!t->keys || !t->values))
		ret = -ENOENT;
	return ret;
}

static int attrs(const struct py_layout *l, const struct mem_reader *mr, uint64_t obj, const char *const *names,
		 uint64_t *values, unsigned n, struct keycache *kc)
{
	struct table t;
	int ret = obj_table(l, mr, obj, &t);

	return ret ? ret : table_get(l, mr, &t, names, values, n, kc);
}

/* The entry of the str key name (match), by its index in the table (ix). */
int pythreads__attr_recipe(const struct py_layout *l, const struct mem_reader *mr, uint64_t obj, const char *name,
			   struct py_attr_recipe *out)
{
	struct entry_at e = { .l = l, .mr = mr, .name = name, .ix = -1 };
	uint64_t type, base = 0, p = 0;
	int64_t off = 0;
	struct table t;
	int ret = obj_table(l, mr, obj, &t);

	if (ret)
		return ret;
	if (!t.values)
		return -ENOTSUP;	/* a dict of its own (combined): no slot shared by its class */
	ret = table_foreach(l, mr, &t, entry_index, &e);
	if (ret)
		return ret;
	if (e.ix < 0 || e.ix > 1000)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	ret = mem_read_u64(mr, obj + OB_TYPE, &type);
	switch (l->objdict) {
	case PYL_DICT_OFFSET:
		ret = ret ?: read_i64(mr, type + l->tp_dictoffset, &off);
		ret = ret ?: mem_read_u64(mr, obj + off, &p);
		ret = ret ?: mem_read_u64(mr, p + l->dict_values, &base);
		out->mode = PY_ATTR_DICT;
		out->off = (uint32_t)off;
		break;
	case PYL_DICT_MANAGED_311:
		ret = ret ?: mem_read_u64(mr, obj - MANAGED_VALUES_311, &base);
		out->mode = PY_ATTR_VALUES_311;
		break;
	case PYL_DICT_MANAGED_312:
		ret = ret ?: mem_read_u64(mr, obj - MANAGED_DICT_OFF, &p);
		base = p & 1 ? p + 1 : 0;
		out->mode = PY_ATTR_VALUES_312;
		break;
	case PYL_DICT_INLINE:
		ret = ret ?: read_i64(mr, type + l->tp_basicsize, &off);
		base = obj + off;
		out->mode = PY_ATTR_INLINE;
		out->off = (uint32_t)off;
		break;
	}
	if (ret)
		return ret;
	/* the recipe finds the values obj_table() found, and in them the value found by key */
	if (base != t.values || off < 0 || off > 4096)
		return -EINVAL;
	out->slot = l->dv_values + 8 * (uint32_t)e.ix;
	out->dict_values = l->dict_values;
	return mem_read_u64(mr, base + out->slot, &p) ?: p == e.value ? 0 : -EINVAL;
}

int pythreads__type_attr_recipe(const struct py_layout *l, const struct mem_reader *mr, uint64_t type,
				const char *name, struct py_attr_recipe *out)
{
	struct keys_layout kl;
	uint64_t keys = 0, flags = 0, k;
	int64_t off = 0, ix = -1;
	int ret;

	ret = mem_read_u64(mr, type + l->ht_cached_keys, &keys);
	if (!ret && l->objdict != PYL_DICT_OFFSET)
		ret = mem_read_u64(mr, type + l->tp_flags, &flags);
	if (ret)
		return ret;
	if (!keys)
		return -ENOENT;	/* no instance has set an attribute yet */
	ret = keys_layout(l, mr, keys, &kl);
	if (ret)
		return ret;
	/* the instances' values are in the order of their class's keys */
	for (int64_t i = 0; i < kl.nentries && i < 1000 && ix < 0; i++) {
		ret = mem_read_u64(mr, kl.entries + i * kl.esize + kl.key_off, &k);
		if (ret)
			return ret;
		if (k && str_is(l, mr, k, name))
			ix = i;
	}
	if (ix < 0)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	switch (l->objdict) {
	case PYL_DICT_OFFSET:
		ret = read_i64(mr, type + l->tp_dictoffset, &off);
		out->mode = PY_ATTR_DICT;
		break;
	case PYL_DICT_MANAGED_311:
	case PYL_DICT_MANAGED_312:
		if (!(flags & TPFLAGS_MANAGED_DICT))
			return -ENOTSUP;
		out->mode = l->objdict == PYL_DICT_MANAGED_311 ? PY_ATTR_VALUES_311 : PY_ATTR_VALUES_312;
		break;
	case PYL_DICT_INLINE:
		if (!(flags & TPFLAGS_INLINE_VALUES))
			return -ENOTSUP;
		ret = read_i64(mr, type + l->tp_basicsize, &off);
		out->mode = PY_ATTR_INLINE;
		break;
	default:
		return -EINVAL;
	}
	if (ret)
		return ret;
	if (off < 0 || off > 4096 || (out->mode == PY_ATTR_DICT && !off))
		return -EINVAL;
	out->off = (uint32_t)off;
	out->slot = l->dv_values + 8 * (uint32_t)ix;
	out->dict_values = l->dict_values;
	return 0;
}

int pythreads__attr(const struct py_layout *l, const struct mem_reader *mr, uint64_t obj,
		    const char *name, uint64_t *value)
{
	int ret = attrs(l, mr, obj, &name, value, 1, NULL);

	return !ret && !*value ? -ENOENT : ret;
}

int pythreads__read_long(const struct py_layout *l, const struct mem_reader *mr, uint64_t addr, int64_t *v)
{
	uint32_t digits[3];
	uint64_t ndigits, u = 0;
	bool neg;
	int64_t size;
	int ret;

	ret = read_i64(mr, addr + l->long_size, &size);
	if (ret)
		return ret;
	if (l->long_tag) {
		/* lv_tag: digit count << 3 | sign (0 positive, 1 zero, 2 negative) */
		ndigits = (uint64_t)size >> 3;
		neg = (size & 3) == 2;
		if ((size & 3) == 3)
			return -EINVAL;
	} else {
		neg = size < 0;
		ndigits = neg ? -(uint64_t)size : (uint64_t)size;
	}
	if (ndigits > 3)
		return -ERANGE;
	if (ndigits && (ret = mem_read(mr, addr + l->long_digits, digits, ndigits * 4)))
		return ret;
	for (uint64_t i = ndigits; i > 0; i--) {
		if (digits[i - 1] >> 30 || (i == 3 && digits[2] >> 3))
			return i == 3 ? -ERANGE : -EINVAL;	/* 30-bit digits; < 2^63 */
		u = u << 30 | digits[i - 1];
	}
	*v = neg ? -(int64_t)u : (int64_t)u;
	return 0;
}

/* The pointer at addr into *v; a null one is if_null (-EAGAIN: not set up yet; -ENOENT: none). */
static int read_ptr(const struct mem_reader *mr, uint64_t addr, int if_null, uint64_t *v)
{
	int ret = mem_read_u64(mr, addr, v);

	return ret ?: (*v ? 0 : if_null);
}

/* sys.modules of the interpreter whose _PyRuntime is at runtime. */
static int modules_dict(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t *modules)
{
	uint64_t interp;
	int ret;

	if (l->is_modules == PYL_NONE || l->dk_indices == 0)
		return -ENOTSUP;
	ret = read_ptr(mr, runtime + l->rt_interp_head, -EAGAIN, &interp);
	return ret ?: read_ptr(mr, interp + l->is_modules, -EAGAIN, modules);
}

#define LEARN_KEYS 4	/* sys.modules' keys whose cached hashes decide */
#define STR_HASH 24	/* PyASCIIObject.hash (GIL builds) */

struct learn {
	const struct py_layout *l;
	const struct mem_reader *mr;
	uint64_t k0, k1;
	unsigned n, votes[3];	/* keys checked; of them matched by SipHash-1-3, SipHash-2-4 */
};

static int learn_key(void *ctx, uint64_t key, uint64_t value, uint32_t ix)
{
	struct learn *lr = ctx;
	uint8_t buf[128 + KEY_MAX];
	int64_t len = str_load(lr->l, lr->mr, key, buf, KEY_MAX), cached;

	(void)value;
	(void)ix;
	if (len <= 0)
		return 0;	/* not a compact ASCII str of at most KEY_MAX characters */
	memcpy(&cached, buf + STR_HASH, 8);
	for (unsigned c = 1; c <= 2; c++) {
		int64_t h = (int64_t)pythreads__siphash(lr->k0, lr->k1, buf + lr->l->str_ascii_data, (size_t)len, c);

		if ((h == -1 ? -2 : h) == cached)
			lr->votes[c]++;
	}
	return ++lr->n == LEARN_KEYS;
}

int pythreads__learn_hash(struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t secret)
{
	struct learn lr = { .l = l, .mr = mr };
	uint64_t modules, k[2];
	struct table t;
	int ret;

	if (!secret || l->str_ascii_data < STR_HASH + 8)
		return -ENOTSUP;
	ret = mem_read(mr, secret, k, sizeof(k));
	ret = ret ?: modules_dict(l, mr, runtime, &modules);
	ret = ret ?: dict_table(l, mr, modules, &t);
	if (ret)
		return ret;
	lr.k0 = k[0];
	lr.k1 = k[1];
	ret = table_foreach(l, mr, &t, learn_key, &lr);
	if (ret)
		return ret;
	if (lr.n < 2)
		return -EAGAIN;	/* starting: too few modules to tell */
	for (unsigned c = 1; c <= 2; c++) {
		if (lr.votes[c] == lr.n) {
			l->hash_k0 = k[0];
			l->hash_k1 = k[1];
			l->hash_rounds = (uint8_t)c;
			return 0;
		}
	}
	l->hash_rounds = PYL_HASH_NONE;	/* another hash (a build's --with-hash-algorithm=fnv): in order */
	return -ENOTSUP;
}

int pythreads__module_dict(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			   const char *name, uint64_t *md)
{
	uint64_t modules, mod;
	int ret = modules_dict(l, mr, runtime, &modules);

	ret = ret ?: pythreads__dict_get(l, mr, modules, name, &mod);
	return ret ?: read_ptr(mr, mod + l->mod_dict, -ENOENT, md);
}

int pythreads__module_dict_since(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
				 const char *name, uint64_t *md, struct py_modules_stamp *seen)
{
	struct lookup lk = { .l = l, .mr = mr, .names = &name, .n = 1, .maxlen = strlen(name) };
	uint64_t modules, mod = 0;
	int64_t start, end = 0;
	struct table t;
	int ret;

	lk.values = &mod;
	if (lk.maxlen > KEY_MAX)
		return -EINVAL;
	ret = modules_dict(l, mr, runtime, &modules);
	ret = ret ?: dict_table(l, mr, modules, &t);
	if (ret)
		goto fail;
	if (hashed(l)) {
		ret = table_find(l, mr, &t, name, &mod);
		if (ret == -ENOENT)
			return ret;
		if (!ret)
			return read_ptr(mr, mod + l->mod_dict, -ENOENT, md);
	}
	/* the same keys table: entries are only added at its end (a resize makes a new one) */
	start = seen->keys && seen->keys == t.keys ? seen->nentries : 0;
	ret = table_foreach_from(l, mr, &t, start, &end, lookup_entry, &lk);
	if (ret)
		goto fail;
	if (!mod) {
		seen->keys = t.keys;
		seen->nentries = end > start ? end : start;
		return -ENOENT;
	}
	memset(seen, 0, sizeof(*seen));	/* found: the next look, if any, looks at every entry */
	return read_ptr(mr, mod + l->mod_dict, -ENOENT, md);
fail:
	memset(seen, 0, sizeof(*seen));
	return ret;
}

int pythreads__module_dicts(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			    const char *const *names, uint64_t *mds, unsigned n)
{
	uint64_t modules, mods[PYTHREADS_MAX_MODULES];
	struct table t;
	int ret, found = 0;

	if (n > PYTHREADS_MAX_MODULES)
		return -EINVAL;
	ret = modules_dict(l, mr, runtime, &modules);
	ret = ret ?: dict_table(l, mr, modules, &t);
	ret = ret ?: table_get(l, mr, &t, names, mods, n, NULL);
	if (ret)
		return ret;
	for (unsigned i = 0; i < n; i++) {
		mds[i] = 0;
		if (mods[i] && !read_ptr(mr, mods[i] + l->mod_dict, -ENOENT, &mds[i]))
			found++;
	}
	return found;
}

int pythreads__modules_stamp(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			     struct py_modules_stamp *st)
{
	uint64_t modules;
	struct table t;
	int ret = modules_dict(l, mr, runtime, &modules);

	ret = ret ?: dict_table(l, mr, modules, &t);
	if (ret)
		return ret;
	if (!t.keys || l->dk_nentries == PYL_NONE)
		return -EINVAL;
	st->keys = t.keys;
	return read_i64(mr, t.keys + l->dk_nentries, &st->nentries);
}

bool pythreads__modules_changed(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
				struct py_modules_stamp *seen)
{
	struct py_modules_stamp now;
	bool same;

	if (pythreads__modules_stamp(l, mr, runtime, &now)) {
		memset(seen, 0, sizeof(*seen));
		return true;
	}
	same = seen->keys && now.keys == seen->keys && now.nentries == seen->nentries;
	*seen = now;
	return !same;
}

int pythreads__method_code_in(const struct py_layout *l, const struct mem_reader *mr, uint64_t md, const char *cls,
			      const char *method, uint64_t *code)
{
	uint64_t type, td, func;
	int ret = pythreads__dict_get(l, mr, md, cls, &type);

	ret = ret ?: read_ptr(mr, type + l->tp_dict, -ENOENT, &td);
	ret = ret ?: pythreads__dict_get(l, mr, td, method, &func);
	return ret ?: read_ptr(mr, func + l->func_code, -ENOENT, code);
}

/* An environment variable's entry of os.environ._data (bytes keys and values on POSIX). */
struct env_lookup {
	const struct py_layout *l;
	const struct mem_reader *mr;
	const char *name;
	char *buf;
	size_t size;
	int ret;
};

/* The bytes object at addr into buf (NUL-terminated, at most size - 1 bytes): its length, or -errno. */
static int read_bytes(const struct py_layout *l, const struct mem_reader *mr, uint64_t addr, char *buf, size_t size)
{
	int64_t n;
	int ret = mem_read(mr, addr + l->bytes_size, &n, sizeof(n));

	if (ret)
		return ret;
	if (n < 0 || (uint64_t)n >= size)
		return -E2BIG;
	ret = mem_read(mr, addr + l->bytes_data, buf, (size_t)n);
	buf[ret ? 0 : n] = 0;
	return ret ?: (int)n;
}

static int env_entry(void *ctx, uint64_t key, uint64_t value, uint32_t ix)
{
	struct env_lookup *e = ctx;
	char k[64];

	if (read_bytes(e->l, e->mr, key, k, sizeof(k)) < 0 || strcmp(k, e->name))
		return 0;
	e->ret = read_bytes(e->l, e->mr, value, e->buf, e->size);
	return 1;
}

int pythreads__environ(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, const char *name,
		       char *buf, size_t size)
{
	struct env_lookup e = { .l = l, .mr = mr, .name = name, .buf = buf, .size = size, .ret = -ENOENT };
	uint64_t md, env, data;
	int ret = pythreads__module_dict(l, mr, runtime, "os", &md);

	ret = ret ?: pythreads__dict_get(l, mr, md, "environ", &env);
	ret = ret ?: pythreads__attr(l, mr, env, "_data", &data);
	ret = ret ?: pythreads__dict_foreach(l, mr, data, env_entry, &e);
	return ret ?: e.ret < 0 ? e.ret : 0;
}

int pythreads__find_active(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			   uint64_t *active)
{
	uint64_t md;
	int ret = pythreads__module_dict(l, mr, runtime, "threading", &md);

	return ret ?: pythreads__dict_get(l, mr, md, "_active", active);
}

int pythreads__method_code(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			   const char *module, const char *cls, const char *method, uint64_t *code)
{
	uint64_t md;
	int ret = pythreads__module_dict(l, mr, runtime, module, &md);

	return ret ?: pythreads__method_code_in(l, mr, md, cls, method, code);
}

/* The index of the str s in the tuple at tup (at most 256 items), or -1. */
static int tuple_index(const struct py_layout *l, const struct mem_reader *mr, uint64_t tup, const char *s)
{
	uint64_t n = 0, item;

	if (!tup || mem_read_u64(mr, tup + l->bytes_size, &n))
		return -1;
	for (uint64_t i = 0; i < n && i < 256; i++)
		if (!mem_read_u64(mr, tup + l->tuple_items + 8 * i, &item) && item && str_is(l, mr, item, s))
			return (int)i;
	return -1;
}

int pythreads__nested_code(const struct py_layout *l, const struct mem_reader *mr, uint64_t pycode_type,
			   uint64_t code, const char *name, uint64_t *out)
{
	uint64_t consts = 0, n = 0, item, type, nm;

	if (l->co_consts == PYL_NONE || !pycode_type)
		return -ENOTSUP;
	if (read_ptr(mr, code + l->co_consts, -ENOENT, &consts) || mem_read_u64(mr, consts + l->bytes_size, &n))
		return -ENOENT;
	for (uint64_t i = 0; i < n && i < 256; i++) {
		if (mem_read_u64(mr, consts + l->tuple_items + 8 * i, &item) || !item ||
		    mem_read_u64(mr, item + OB_TYPE, &type) || type != pycode_type ||
		    mem_read_u64(mr, item + l->co_name, &nm) || !str_is(l, mr, nm, name))
			continue;
		*out = item;
		return 0;
	}
	return -ENOENT;
}

/* co_localspluskinds (3.11+: after co_localsplusnames): a byte per variable, these bits */
#define CO_FAST_CELL	0x40
#define CO_FAST_FREE	0x80

int pythreads__cell_index(const struct py_layout *l, const struct mem_reader *mr, uint64_t code, const char *var)
{
	uint64_t names = 0, kinds = 0, cells = 0, frees = 0;
	int32_t nlocals = 0;
	uint8_t kind = 0;
	int i, ncells;

	if (l->co_nlocals == PYL_NONE) {
		/* 3.11+: one table of every variable, with its kinds */
		if (mem_read_u64(mr, code + l->co_varnames, &names) || mem_read_u64(mr, code + l->co_varnames + 8, &kinds))
			return -1;
		i = tuple_index(l, mr, names, var);
		if (i < 0 || !kinds || mem_read(mr, kinds + l->bytes_data + i, &kind, 1) ||
		    !(kind & (CO_FAST_CELL | CO_FAST_FREE)))
			return -1;
		return i;
	}
	/* <= 3.10: the locals (co_varnames), then the cells (co_cellvars), then the free variables */
	if (mem_read(mr, code + l->co_nlocals, &nlocals, sizeof(nlocals)) || nlocals < 0 ||
	    mem_read_u64(mr, code + l->co_cellvars, &cells) || mem_read_u64(mr, code + l->co_freevars, &frees))
		return -1;
	i = tuple_index(l, mr, cells, var);
	if (i >= 0)
		return nlocals + i;
	{
		uint64_t n = 0;

		if (!cells || mem_read_u64(mr, cells + l->bytes_size, &n) || n > 256)
			return -1;
		ncells = (int)n;
	}
	i = tuple_index(l, mr, frees, var);
	return i < 0 ? -1 : nlocals + ncells + i;
}

/*
 * A method_descriptor (Objects/descrobject.c): PyDescr_COMMON (the object's head, d_type, d_name,
 * d_qualname), then d_method, the PyMethodDef {ml_name, ml_meth, ml_flags, ml_doc}: the same in
 * 3.8-3.15 (Include/cpython/descrobject.h, Include/methodobject.h).
 */
#define DESCR_METHOD	40
#define MDEF_METH	8
#define MDEF_FLAGS	16
#define PY_METH_O	0x0008
#define PY_METH_CALLS	0x008f	/* METH_VARARGS | KEYWORDS | NOARGS | O | FASTCALL */

int pythreads__method_cfunc(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			    const char *module, const char *cls, const char *method, uint64_t *addr)
{
	uint64_t md, type, td, descr, def, name, fn;
	uint32_t flags = 0;
	char buf[16];
	int ret = pythreads__module_dict(l, mr, runtime, module, &md);

	ret = ret ?: pythreads__dict_get(l, mr, md, cls, &type);
	ret = ret ?: read_ptr(mr, type + l->tp_dict, -ENOENT, &td);
	ret = ret ?: pythreads__dict_get(l, mr, td, method, &descr);
	ret = ret ?: read_ptr(mr, descr + DESCR_METHOD, -EINVAL, &def);
	ret = ret ?: read_ptr(mr, def, -EINVAL, &name);
	ret = ret ?: read_ptr(mr, def + MDEF_METH, -EINVAL, &fn);
	ret = ret ?: mem_read(mr, def + MDEF_FLAGS, &flags, sizeof(flags));
	if (ret)
		return ret;
	/* the PyMethodDef names the method it is (a C string), and takes one argument */
	if (mem_read(mr, name, buf, sizeof(buf)) || memchr(buf, 0, sizeof(buf)) == NULL || strcmp(buf, method) ||
	    (flags & PY_METH_CALLS) != PY_METH_O)
		return -EINVAL;
	*addr = fn;
	return 0;
}

struct reading {
	const struct py_layout *l;
	const struct mem_reader *mr;
	struct py_thread_name *out;
	int n, max;
	struct keycache kc;
};

static int read_thread(void *ctx, uint64_t ident, uint64_t thread, uint32_t ix)
{
	static const char *const names[] = { "_name", "_native_id" };
	struct reading *r = ctx;
	struct py_thread_name *t = &r->out[r->n];
	uint64_t v[2];
	int64_t tid;

	if (r->n >= r->max)
		return 1;
	/* one thread's state may be torn (it is starting or ending): the others still count */
	if (attrs(r->l, r->mr, thread, names, v, 2, &r->kc) || !v[0] || !v[1] ||
	    pythreads__read_long(r->l, r->mr, v[1], &tid) || tid <= 0 || tid > INT32_MAX ||
	    py_read_str(r->l, r->mr, v[0], t->name, sizeof(t->name)) < 0)
		return 0;
	t->tid = (uint32_t)tid;
	r->n++;
	return 0;
}

int pythreads__read_active(const struct py_layout *l, const struct mem_reader *mr, uint64_t active,
			   struct py_thread_name *out, int max)
{
	struct reading *r = calloc(1, sizeof(*r));
	struct table t;
	int ret;

	if (!r)
		return -ENOMEM;
	*r = (struct reading){ .l = l, .mr = mr, .out = out, .max = max };
	ret = dict_table(l, mr, active, &t);
	if (!ret)
		ret = table_foreach(l, mr, &t, read_thread, r);
	if (!ret)
		ret = r->n;
	free(r);
	return ret;
}

int pythreads__type_name(const struct mem_reader *mr, uint64_t obj, char *name, size_t size)
{
	uint64_t type, tp_name;
	int ret = mem_read_u64(mr, obj + OB_TYPE, &type);

	ret = ret ?: mem_read_u64(mr, type + TP_NAME, &tp_name);
	ret = ret ?: mem_read(mr, tp_name, name, size - 1);
	name[size - 1] = 0;
	return ret;
}

int pythreads__member_offset(const struct py_layout *l, const struct mem_reader *mr, uint64_t type, const char *name,
			     uint32_t *off)
{
	uint64_t dict = 0, descr = 0, def = 0;
	char tn[24];
	int64_t o = 0;
	int32_t t = 0;
	int ret;

	ret = mem_read_u64(mr, type + l->tp_dict, &dict);
	if (!ret && !dict)
		return -ENOENT;
	ret = ret ?: pythreads__dict_get(l, mr, dict, name, &descr);
	ret = ret ?: pythreads__type_name(mr, descr, tn, sizeof(tn));
	if (ret)
		return ret;
	if (strcmp(tn, "member_descriptor"))
		return -EINVAL;
	ret = mem_read_u64(mr, descr + DESCR_MEMBER, &def);
	ret = ret ?: mem_read(mr, def + MEMBER_TYPE, &t, sizeof(t));
	ret = ret ?: read_i64(mr, def + MEMBER_OFFSET, &o);
	if (ret)
		return ret;
	if ((t != T_OBJECT && t != T_OBJECT_EX) || o < 16 || o > 4096 || (o & 7))
		return -EINVAL;
	*off = (uint32_t)o;
	return 0;
}
