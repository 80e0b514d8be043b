// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Code object -> name, file and line, from the target's memory through a mem_reader.
 *
 * A cache entry per (key, code object) holds the name, the file name, co_firstlineno and a
 * copy of the line table, in one allocation, so a frame seen before costs no memory read.
 * Entries sit in a hash table and an LRU list; the least recently used goes when full.
 *
 * Families: the processes forked from one exec (a gunicorn master and its workers) share a
 * family number. A forked worker holds its parent's code objects at their parent's addresses,
 * and workers that import their application after the fork, as the master made them, mostly
 * allocate the same objects at the same addresses too. So a code object missing for one key is
 * first looked for among its family's entries (a second hash table, by family and address),
 * and taken after one read of its header shows the same object there (same_code: the test
 * every entry passes again after SYMBOLIZER_RECHECK_NS): one read instead of four (header,
 * name, file name, line table) for each code object of each new worker. An exiting member's
 * entries stay for the family's next ones while the family has members alive (under the
 * family's own key, ORPHANS(family)), one per address; they go with its last member.
 *
 * Which instruction the shipped value designates (checked on live frames of every version by
 * tests/tools/capture_code.py, whose fixtures the unit test replays):
 *   3.8, 3.9  f_lasti: byte offset of the instruction being executed (in a caller: the call).
 *   3.10      f_lasti in code units: x2.
 *   3.11/12   prev_instr: the last instruction started. Around a Python-to-Python call CALL
 *             skips its inline caches first, so prev_instr is the CALL's last CACHE unit; the
 *             location table gives the caches their instruction's entry: same line.
 *             prev_instr is one unit before the code until the first instruction (offset -2).
 *   3.13+     instr_ptr: the instruction currently executing. Each instruction stores its own
 *             address there as it starts and a call leaves it alone (the callee returns to
 *             instr_ptr + return_offset), so in a caller it is the CALL itself.
 * None needs an adjustment: offset = instr - (code + co_code_adaptive), as CPython's
 * _PyInterpreterFrame_LASTI(f) * sizeof(_Py_CODEUNIT).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "linetable.h"
#include "symbolize.h"
#include "utf8.h"

#define OB_TYPE 8		/* PyObject.ob_type, all versions (GIL builds) */
#define STR_LENGTH 16		/* PyASCIIObject.length, all versions */
#define STR_HASH 24		/* PyASCIIObject.hash: -1 until computed (GIL builds, all versions) */
#define STR_MAX_LEN (1L << 30)
#define MAX_BUCKETS (1UL << 20)

struct sym_entry {
	struct sym_entry *hnext;	/* by (key, code) */
	struct sym_entry *kprev, *knext;	/* the key's entries (symbolizer__forget's) */
	struct sym_entry *fnext;	/* by (family, code), when family != 0 */
	struct sym_entry *prev, *next;	/* LRU list, most recent first */
	uint64_t code;
	uint32_t key, family;
	size_t size;			/* of the allocation (a copy for another member) */
	int firstlineno;
	enum pyl_linetable kind;
	bool truncated;			/* the table was longer than SYMBOLIZER_MAX_TABLE */
	bool memo_valid;
	uint8_t mark;			/* py_frame_sym's mark */
	uint64_t memo_instr;
	int memo_line;
	const char *name, *file;
	const uint8_t *table;
	size_t table_len;
	/* what identifies the code object behind the address: checked again after RECHECK_NS */
	uint64_t name_addr, file_addr, table_addr;
	uint64_t checked_ns;
	uint64_t born_ns;		/* when it was read: its object has lived at least checked - born */
	/* its name str's length and CPython's hash of it: the pointers above are reused too */
	int64_t name_length, name_hash;
	char data[];			/* name, file, table */
};

/* The entries of one key: forget visits them, not the whole cache (a process exits every
 * second where gunicorn replaces its workers, and the cache holds tens of thousands). */
struct key_list {
	uint32_t key;
	struct sym_entry *head;
	struct key_list *next;
};

#define KEY_BUCKETS 256
/* The key of a family's entries whose processes exited (pids never have the top bit). */
#define ORPHANS(family) (0x80000000u | ((family) & 0x7fffffffu))

struct symbolizer {
	struct key_list *keys[KEY_BUCKETS];
	uint8_t hdrs[SYMBOLIZER_RECHECK_MAX][512];	/* symbolizer__recheck_many's reads */
	struct sym_entry **buckets;
	struct sym_entry **fbuckets;	/* the family table */
	size_t mask;
	struct sym_entry *head, *tail;	/* LRU list */
	size_t n, max;
	uint64_t hits, misses, stale, kin;
};

static size_t bucket(const struct symbolizer *s, uint32_t key, uint64_t code)
{
	uint64_t h = (code ^ ((uint64_t)key << 40 | key)) * 0x9e3779b97f4a7c15ULL;

	return (h ^ h >> 31) & s->mask;
}

struct symbolizer *symbolizer__new(size_t max_entries)
{
	struct symbolizer *s = calloc(1, sizeof(*s));
	size_t nb = 16;

	if (!s)
		return NULL;
	s->max = max_entries ? max_entries : SYMBOLIZER_DEFAULT_ENTRIES;
	while (nb < s->max && nb < MAX_BUCKETS)
		nb <<= 1;
	s->buckets = calloc(nb, sizeof(*s->buckets));
	s->fbuckets = calloc(nb, sizeof(*s->fbuckets));
	if (!s->buckets || !s->fbuckets) {
		free(s->buckets);
		free(s->fbuckets);
		free(s);
		return NULL;
	}
	s->mask = nb - 1;
	return s;
}

static void lru_unlink(struct symbolizer *s, struct sym_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct symbolizer *s, struct sym_entry *e)
{
	e->prev = NULL;
	e->next = s->head;
	if (s->head)
		s->head->prev = e;
	else
		s->tail = e;
	s->head = e;
}

/* The family table's hash: the key table's, with the family's number in the key's place. */
static struct sym_entry **family_bucket(const struct symbolizer *s, uint32_t family, uint64_t code)
{
	return &s->fbuckets[bucket(s, family, code)];
}

static struct key_list **key_slot(struct symbolizer *s, uint32_t key)
{
	struct key_list **pp = &s->keys[(key * 0x9e3779b1u) >> 24];

	while (*pp && (*pp)->key != key)
		pp = &(*pp)->next;
	return pp;
}

static void unlink_key(struct symbolizer *s, struct sym_entry *e)
{
	struct sym_entry **pp = &s->buckets[bucket(s, e->key, e->code)];
	struct key_list **kp;

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	e->hnext = NULL;
	if (e->knext)
		e->knext->kprev = e->kprev;
	if (e->kprev) {
		e->kprev->knext = e->knext;
	} else {
		kp = key_slot(s, e->key);
		if (*kp && (*kp)->head == e) {
			(*kp)->head = e->knext;
			if (!e->knext) {
				struct key_list *kl = *kp;

				*kp = kl->next;
				free(kl);
			}
		}
	}
	e->kprev = e->knext = NULL;
}

/* Into the (key, code) table and the key's list: false when out of memory (e left out). */
static bool link_key(struct symbolizer *s, struct sym_entry *e)
{
	struct sym_entry **b = &s->buckets[bucket(s, e->key, e->code)];
	struct key_list **kp = key_slot(s, e->key);

	if (!*kp) {
		*kp = calloc(1, sizeof(**kp));
		if (!*kp)
			return false;
		(*kp)->key = e->key;
	}
	e->kprev = NULL;
	e->knext = (*kp)->head;
	if (e->knext)
		e->knext->kprev = e;
	(*kp)->head = e;
	e->hnext = *b;
	*b = e;
	return true;
}

static void remove_entry_unlinked(struct symbolizer *s, struct sym_entry *e)
{
	if (e->family) {
		struct sym_entry **pp = family_bucket(s, e->family, e->code);

		while (*pp != e)
			pp = &(*pp)->fnext;
		*pp = e->fnext;
	}
	lru_unlink(s, e);
	s->n--;
	free(e);
}

static void remove_entry(struct symbolizer *s, struct sym_entry *e)
{
	unlink_key(s, e);
	remove_entry_unlinked(s, e);
}

void symbolizer__free(struct symbolizer *s)
{
	if (!s)
		return;
	while (s->head) {
		struct sym_entry *e = s->head;

		lru_unlink(s, e);
		free(e);
	}
	for (unsigned i = 0; i < KEY_BUCKETS; i++) {
		while (s->keys[i]) {
			struct key_list *kl = s->keys[i];

			s->keys[i] = kl->next;
			free(kl);
		}
	}
	free(s->buckets);
	free(s->fbuckets);
	free(s);
}

/* Another entry of e's family for e's code object, e excluded. */
static struct sym_entry *kin_of(const struct symbolizer *s, const struct sym_entry *e)
{
	struct sym_entry *k;

	for (k = *family_bucket(s, e->family, e->code); k; k = k->fnext)
		if (k != e && k->family == e->family && k->code == e->code)
			return k;
	return NULL;
}

/* Drop every entry of key; the families they were of in fams (at most 4, *nfams of them). */
static void drop_key(struct symbolizer *s, uint32_t key, uint32_t *fams, unsigned *nfams)
{
	struct key_list **kp = key_slot(s, key);
	struct sym_entry *e, *next;

	for (e = *kp ? (*kp)->head : NULL; e; e = next) {
		next = e->knext;
		if (fams && e->family && *nfams < 4 &&
		    (!*nfams || fams[*nfams - 1] != e->family))
			fams[(*nfams)++] = e->family;
		remove_entry(s, e);
	}
}

void symbolizer__forget(struct symbolizer *s, uint32_t key, bool family_lives)
{
	struct sym_entry *e, *next;
	uint32_t fams[4];
	unsigned nfams = 0;

	if (!s || !key || (key & 0x80000000u) || !*key_slot(s, key))
		return;
	if (!family_lives) {	/* the family's last member: its exited members' entries go too */
		drop_key(s, key, fams, &nfams);
		for (unsigned i = 0; i < nfams; i++)
			drop_key(s, ORPHANS(fams[i]), NULL, NULL);
		return;
	}
	for (e = (*key_slot(s, key))->head; e; e = next) {
		next = e->knext;
		if (!e->family || kin_of(s, e)) {
			remove_entry(s, e);
		} else {	/* the family's only one for this address: kept for its next members */
			unlink_key(s, e);
			e->key = ORPHANS(e->family);
			if (!link_key(s, e))
				remove_entry_unlinked(s, e);
		}
	}
}

uint64_t symbolizer__hits(const struct symbolizer *s)
{
	return s->hits;
}

uint64_t symbolizer__stale(const struct symbolizer *s)
{
	return s->stale;
}

uint64_t symbolizer__kin(const struct symbolizer *s)
{
	return s ? s->kin : 0;
}

uint64_t symbolizer__misses(const struct symbolizer *s)
{
	return s->misses;
}

size_t symbolizer__size(const struct symbolizer *s)
{
	return s->n;
}

/* A str's length and cached hash, from its header's bytes. */
static void str_id(const uint8_t *hdr, int64_t *length, int64_t *hash)
{
	memcpy(length, hdr + STR_LENGTH, 8);
	memcpy(hash, hdr + STR_HASH, 8);
}

static int read_str(const struct py_layout *l, const struct mem_reader *mr, uint64_t addr,
		    char *buf, size_t size, int64_t *id_length, int64_t *id_hash)
{
	uint8_t hdr[128], chunk[512];
	uint32_t state;
	int64_t length;
	uint64_t data;
	unsigned kind;
	bool ascii, compact;
	size_t n = 0, left;
	int err;

	if (!l || !mr || !buf || !size)
		return -EINVAL;
	buf[0] = 0;
	if (!addr)
		return -EINVAL;
	/* The ASCII header is the smallest a str can be: enough for state and length. */
	if (l->str_ascii_data > sizeof(hdr) || l->str_state + 4 > l->str_ascii_data ||
	    STR_LENGTH + 8 > l->str_ascii_data)
		return -EINVAL;
	err = mem_read(mr, addr, hdr, l->str_ascii_data);
	if (err)
		return err;
	if (id_length)
		str_id(hdr, id_length, id_hash);
	memcpy(&state, hdr + l->str_state, sizeof(state));
	memcpy(&length, hdr + STR_LENGTH, sizeof(length));
	/* state: interned:2, kind:3, compact:1, ascii:1 (3.8 .. 3.15, GIL builds) */
	kind = state >> 2 & 7;
	compact = state >> 5 & 1;
	ascii = state >> 6 & 1;
	if (length < 0 || length > STR_MAX_LEN || (kind != 1 && kind != 2 && kind != 4) ||
	    (ascii && kind != 1))
		return -EINVAL;
	if (compact) {
		data = addr + (ascii ? l->str_ascii_data : l->str_compact_data);
	} else {
		/* PyUnicodeObject: a pointer to the data after the compact header */
		err = mem_read_u64(mr, addr + l->str_compact_data, &data);
		if (err)
			return err;
		if (!data)
			return -EINVAL;
	}
	/* At least one UTF-8 byte per character: never more than size-1 characters needed. */
	left = (size_t)length < size - 1 ? (size_t)length : size - 1;
	while (left) {
		size_t nch = left < sizeof(chunk) / kind ? left : sizeof(chunk) / kind;

		err = mem_read(mr, data, chunk, nch * kind);
		if (err)
			return err;
		for (size_t i = 0; i < nch; i++) {
			uint32_t c = ucs_unit(chunk, i, kind);

			if ((ascii && c >= 0x80) || c > 0x10ffff) {
				buf[0] = 0;
				return -EILSEQ;
			}
			if (!utf8_put(buf, size, &n, c))
				goto out;
		}
		data += nch * kind;
		left -= nch;
	}
out:
	buf[n] = 0;
	return (int)n;
}

int py_read_str(const struct py_layout *l, const struct mem_reader *mr, uint64_t addr,
		char *buf, size_t size)
{
	return read_str(l, mr, addr, buf, size, NULL, NULL);
}

long py_read_bytes(const struct py_layout *l, const struct mem_reader *mr, uint64_t addr,
		   size_t max, uint8_t **data, size_t *len)
{
	int64_t size;
	size_t n;
	int err;

	*data = NULL;
	*len = 0;
	if (!addr)
		return -EINVAL;
	err = mem_read(mr, addr + l->bytes_size, &size, sizeof(size));
	if (err)
		return err;
	if (size < 0 || size > INT32_MAX)
		return -EINVAL;
	n = (size_t)size < max ? (size_t)size : max;
	*data = malloc(n ? n : 1);
	if (!*data)
		return -ENOMEM;
	if (n) {
		err = mem_read(mr, addr + l->bytes_data, *data, n);
		if (err) {
			free(*data);
			*data = NULL;
			return err;
		}
	}
	*len = n;
	return size;
}

static int entry_line(const struct sym_entry *e, const struct py_layout *l, uint64_t instr)
{
	int64_t off;
	bool ran_out;
	int line;

	switch (e->kind) {
	case PYL_LNOTAB:
		off = (int32_t)instr;
		break;
	case PYL_LINETABLE_310:
		off = (int64_t)(int32_t)instr * 2;
		break;
	case PYL_LOCATIONS:
		if (!instr || l->co_code_adaptive == PYL_NONE)
			return -1;
		off = (int64_t)(instr - (e->code + l->co_code_adaptive));
		break;
	default:
		return -1;
	}
	/* -1 (f_lasti) or -2 (prev_instr) before the first instruction; below that: garbage */
	if (off < -2 || off > INT_MAX)
		return -1;
	line = linetable__addr2line_ex(e->kind, e->table, e->table_len, e->firstlineno, (int)off,
				       &ran_out);
	return ran_out && e->truncated ? -1 : line;
}

static void fill(struct sym_entry *e, const struct py_layout *l, uint64_t instr,
		 struct py_frame_sym *out)
{
	if (!e->memo_valid || e->memo_instr != instr) {
		e->memo_line = entry_line(e, l, instr);
		e->memo_instr = instr;
		e->memo_valid = true;
	}
	out->name = e->name;
	out->file = e->file;
	out->firstlineno = e->firstlineno;
	out->line = e->memo_line >= 0 ? e->memo_line : e->firstlineno;
	out->mark = &e->mark;
}

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/* Read one code object into a new entry, or -errno. */
/* The bytes of a code object's header that load() and recheck() read. */
static uint32_t header_size(const struct py_layout *l)
{
	uint32_t need = max_u32(OB_TYPE + 8, l->co_firstlineno + 4);

	need = max_u32(need, l->co_filename + 8);
	need = max_u32(need, l->co_name + 8);
	need = max_u32(need, l->co_linetable + 8);
	if (l->co_qualname != PYL_NONE)
		need = max_u32(need, l->co_qualname + 8);
	return need;
}

static uint64_t coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * Whether e's header must be read again before it names a frame. Code objects that die young
 * (a module's top-level code after its import, a class body, code compiled by exec: .pth files
 * at start-up, namedtuple's and dataclasses' methods' makers, template engines) leave their
 * address to the next code object of their size, often compiled right after them: an entry is
 * checked at every use (once a tick of the coarse clock) until its object has been seen alive
 * for SYMBOLIZER_YOUNG_NS, and once every SYMBOLIZER_RECHECK_NS after that.
 */
static bool recheck_due(const struct sym_entry *e, uint64_t now)
{
	if (e->checked_ns - e->born_ns < SYMBOLIZER_YOUNG_NS)
		return now != e->checked_ns;
	return now - e->checked_ns > SYMBOLIZER_RECHECK_NS;
}

/*
 * Whether the code object at e->code is still the one e was read from. A code object that is
 * freed (a module's, once imported; a function's, with its module) leaves its address to the
 * next, and the cache would go on naming the newcomer after the departed: seen as `<module>`
 * leaves where `is_prime` ran, in a gunicorn worker that imported its app after it was sampled.
 * Its name, file and line table are objects of their own: a new code object has new ones.
 */
static bool same_code(const struct sym_entry *e, const struct py_layout *l, const uint8_t *hdr, uint64_t pycode_type)
{
	uint64_t ob_type, name_addr, file_addr, table_addr;
	int32_t firstlineno;

	memcpy(&ob_type, hdr + OB_TYPE, 8);
	memcpy(&firstlineno, hdr + l->co_firstlineno, 4);
	memcpy(&name_addr, hdr + (l->co_qualname != PYL_NONE ? l->co_qualname : l->co_name), 8);
	memcpy(&file_addr, hdr + l->co_filename, 8);
	memcpy(&table_addr, hdr + l->co_linetable, 8);
	return (!pycode_type || ob_type == pycode_type) && firstlineno == e->firstlineno &&
	       name_addr == e->name_addr && file_addr == e->file_addr && table_addr == e->table_addr;
}

#define STR_ID_LEN (STR_HASH + 8)

/*
 * The name's str as it was: a code object compiled after another one died often gets its
 * address and, with it, those of its name, its line table and the rest (the same sizes, freed
 * together): only the name's length and hash tell "f_001" from "f_000" then.
 */
static bool same_name(const struct sym_entry *e, const uint8_t *str_hdr)
{
	int64_t length, hash;

	str_id(str_hdr, &length, &hash);
	return length == e->name_length && hash == e->name_hash;
}

/*
 * 1: e still names the code object at its address; 0: another one is there; <0: it could not be
 * read (the process gone, most often: a sample read after its exit keeps the name it had).
 */
static int recheck(const struct sym_entry *e, const struct py_layout *l, const struct mem_reader *mr,
		   uint64_t pycode_type)
{
	uint8_t hdr[512], str[STR_ID_LEN];
	uint32_t need = header_size(l);
	int err;

	if (need > sizeof(hdr))
		return -EINVAL;
	err = mem_read(mr, e->code, hdr, need);
	if (err)
		return err;
	if (!same_code(e, l, hdr, pycode_type))
		return 0;
	err = mem_read(mr, e->name_addr, str, sizeof(str));
	return err ? err : same_name(e, str);
}

static struct sym_entry *find(const struct symbolizer *s, uint32_t key, uint64_t code)
{
	struct sym_entry *e;

	for (e = s->buckets[bucket(s, key, code)]; e; e = e->hnext)
		if (e->code == code && e->key == key)
			return e;
	return NULL;
}

/* e names another code object now: dropped, read again by the next resolve */
static void stale(struct symbolizer *s, struct sym_entry *e)
{
	s->stale++;
	remove_entry(s, e);
}

void symbolizer__recheck_many(struct symbolizer *s, uint32_t key, const struct py_layout *l,
			      const struct mem_reader *mr, uint64_t pycode_type, const uint64_t *codes, unsigned n)
{
	struct mem_span v[SYMBOLIZER_RECHECK_MAX];
	struct sym_entry *due[SYMBOLIZER_RECHECK_MAX];
	uint32_t need = l ? header_size(l) : 0;
	uint64_t now = coarse_ns();
	unsigned m = 0, k = 0;

	if (!s || !mr || !need || need > sizeof(s->hdrs[0]))
		return;
	for (unsigned i = 0; i < n && m < SYMBOLIZER_RECHECK_MAX; i++) {
		uint64_t code = l->code_mask ? codes[i] & l->code_mask : codes[i];
		struct sym_entry *e = code ? find(s, key, code) : NULL;
		bool dup = false;

		if (!e || !recheck_due(e, now))
			continue;
		for (unsigned j = 0; j < m && !dup; j++)
			dup = due[j] == e;	/* a recursive function's frames */
		if (dup)
			continue;
		due[m] = e;
		v[m] = (struct mem_span){ .addr = code, .buf = s->hdrs[m], .len = need };
		m++;
	}
	if (!m)
		return;
	mem_readv(mr, v, m);
	/* the entries whose header still matches: their names' ids, read at once in turn */
	for (unsigned j = 0; j < m; j++) {
		if (v[j].err)
			continue;	/* left due: resolve tries again, and keeps it if it cannot read */
		if (!same_code(due[j], l, s->hdrs[j], pycode_type)) {
			stale(s, due[j]);
			continue;
		}
		due[k] = due[j];
		v[k] = (struct mem_span){ .addr = due[j]->name_addr, .buf = s->hdrs[k], .len = STR_ID_LEN };
		k++;
	}
	mem_readv(mr, v, k);
	for (unsigned j = 0; j < k; j++) {
		if (v[j].err)
			continue;
		if (same_name(due[j], s->hdrs[j]))
			due[j]->checked_ns = now;
		else
			stale(s, due[j]);
	}
}

/* A new entry for the code object at code; its header already read into hdr if have_hdr. */
static int load(const struct py_layout *l, const struct mem_reader *mr, uint64_t pycode_type,
		uint64_t code, uint8_t hdr[512], bool have_hdr, struct sym_entry **out)
{
	uint32_t need;
	uint64_t ob_type, name_addr, file_addr, table_addr;
	int64_t name_length, name_hash;
	int32_t firstlineno;
	char name[SYMBOLIZER_MAX_STR], file[SYMBOLIZER_MAX_STR];
	uint8_t *table = NULL;
	size_t table_len, name_len, file_len;
	long table_size;
	struct sym_entry *e;
	int err;

	need = header_size(l);
	if (need > 512)
		return -EINVAL;
	err = have_hdr ? 0 : mem_read(mr, code, hdr, need);
	if (err)
		return err;
	memcpy(&ob_type, hdr + OB_TYPE, 8);
	if (pycode_type && ob_type != pycode_type)
		return -ENOENT;
	memcpy(&firstlineno, hdr + l->co_firstlineno, 4);
	memcpy(&name_addr, hdr + (l->co_qualname != PYL_NONE ? l->co_qualname : l->co_name), 8);
	memcpy(&file_addr, hdr + l->co_filename, 8);
	memcpy(&table_addr, hdr + l->co_linetable, 8);

	err = read_str(l, mr, name_addr, name, sizeof(name), &name_length, &name_hash);
	if (err < 0)
		return err;
	name_len = err;
	err = py_read_str(l, mr, file_addr, file, sizeof(file));
	if (err < 0)
		return err;
	file_len = err;
	table_size = py_read_bytes(l, mr, table_addr, SYMBOLIZER_MAX_TABLE, &table, &table_len);
	if (table_size < 0)
		return (int)table_size;

	e = calloc(1, sizeof(*e) + name_len + 1 + file_len + 1 + table_len);
	if (!e) {
		free(table);
		return -ENOMEM;
	}
	e->size = sizeof(*e) + name_len + 1 + file_len + 1 + table_len;
	e->code = code;
	e->firstlineno = firstlineno;
	e->name_addr = name_addr;
	e->file_addr = file_addr;
	e->table_addr = table_addr;
	e->checked_ns = coarse_ns();
	e->born_ns = e->checked_ns;
	e->name_length = name_length;
	e->name_hash = name_hash;
	e->kind = l->linetable;
	e->truncated = (size_t)table_size > table_len;
	memcpy(e->data, name, name_len + 1);
	memcpy(e->data + name_len + 1, file, file_len + 1);
	memcpy(e->data + name_len + 1 + file_len + 1, table, table_len);
	e->name = e->data;
	e->file = e->data + name_len + 1;
	e->table = (const uint8_t *)e->data + name_len + 1 + file_len + 1;
	e->table_len = table_len;
	free(table);
	*out = e;
	return 0;
}

/* A copy of a family member's entry k, for key. */
static struct sym_entry *adopt(const struct sym_entry *k, uint32_t key, uint64_t now)
{
	struct sym_entry *e = malloc(k->size);

	if (!e)
		return NULL;
	memcpy(e, k, k->size);
	e->hnext = e->fnext = e->prev = e->next = e->kprev = e->knext = NULL;
	e->key = key;
	e->checked_ns = now;
	e->name = e->data + (k->name - k->data);
	e->file = e->data + (k->file - k->data);
	e->table = (const uint8_t *)e->data + (k->table - (const uint8_t *)k->data);
	return e;
}

/*
 * The entry for (key, code) when the code object is not cached under key: its family's, if
 * the header read now shows the same object (an exited member's entry moves over, a live
 * one's is copied), or one read from the target.
 */
static int miss(struct symbolizer *s, uint32_t key, uint32_t family, const struct py_layout *l,
		const struct mem_reader *mr, uint64_t pycode_type, uint64_t code, struct sym_entry **out)
{
	uint8_t hdr[512];
	bool have_hdr = false;
	struct sym_entry *k = NULL, *e = NULL;
	uint32_t need = header_size(l);

	if (family && need <= sizeof(hdr)) {
		for (k = *family_bucket(s, family, code); k; k = k->fnext)
			if (k->family == family && k->code == code)
				break;
	}
	if (k) {
		int err = mem_read(mr, code, hdr, need);

		if (err)
			return err;
		have_hdr = true;
		if (same_code(k, l, hdr, pycode_type)) {
			s->kin++;
			if (k->key & 0x80000000u) {	/* an exited member's: moved over */
				unlink_key(s, k);
				k->key = key;
				if (!link_key(s, k)) {
					remove_entry_unlinked(s, k);
					return -ENOMEM;
				}
				k->checked_ns = coarse_ns();
				lru_unlink(s, k);
				lru_push(s, k);
				*out = k;
				return 0;
			}
			e = adopt(k, key, coarse_ns());
			if (!e)
				return -ENOMEM;
			goto insert;
		}
	}
	s->misses++;
	{
		int err = load(l, mr, pycode_type, code, hdr, have_hdr, &e);

		if (err)
			return err;
	}
	e->key = key;
	e->family = family;
insert:
	if (s->n >= s->max)
		remove_entry(s, s->tail);
	if (!link_key(s, e)) {
		free(e);
		return -ENOMEM;
	}
	if (family) {
		struct sym_entry **fb = family_bucket(s, family, code);

		e->fnext = *fb;
		*fb = e;
	}
	lru_push(s, e);
	s->n++;
	*out = e;
	return 0;
}

int symbolizer__resolve_in(struct symbolizer *s, uint32_t key, uint32_t family, const struct py_layout *l,
			   const struct mem_reader *mr, uint64_t pycode_type, uint64_t code,
			   uint64_t instr, struct py_frame_sym *out)
{
	struct sym_entry *e;
	int err;

	if (!s || !l || !mr || !out || !key || (key & 0x80000000u))
		return -EINVAL;
	if (l->code_mask)
		code &= l->code_mask;
	if (!code)
		return -EINVAL;
	e = find(s, key, code);
	if (e) {
		uint64_t now = coarse_ns();

		if (recheck_due(e, now)) {
			int same = recheck(e, l, mr, pycode_type);

			if (!same) {
				s->stale++;
				remove_entry(s, e);
				e = NULL;	/* read it again */
			} else if (same > 0) {
				e->checked_ns = now;
			}
		}
	}
	if (e) {
		s->hits++;
		lru_unlink(s, e);
		lru_push(s, e);
	} else {
		err = miss(s, key, family, l, mr, pycode_type, code, &e);
		if (err)
			return err;
	}
	fill(e, l, instr, out);
	return 0;
}

int symbolizer__resolve(struct symbolizer *s, uint32_t key, const struct py_layout *l,
			const struct mem_reader *mr, uint64_t pycode_type, uint64_t code,
			uint64_t instr, struct py_frame_sym *out)
{
	return symbolizer__resolve_in(s, key, 0, l, mr, pycode_type, code, instr, out);
}

bool py_frame_is(const char *name, const char *file, const char *qualname, const char *method,
		 const char *suffix)
{
	size_t n, f;

	if (!name || !file || (strcmp(name, qualname) && strcmp(name, method)))
		return false;
	n = strlen(file);
	f = strlen(suffix);
	return n >= f && !strcmp(file + n - f, suffix);
}
