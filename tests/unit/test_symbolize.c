// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * symbolizer__resolve on memory captured from real interpreters (tests/data/sym_*.txt, made by
 * tests/tools/capture_code.py): a mem_reader serves the captured regions and fails with
 * -EFAULT anywhere else. Plus py_read_str on hand-made str objects.
 */
#include <errno.h>
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "symbolize.h"
#include "utf8.h"

#ifndef TEST_DATA_DIR
#define TEST_DATA_DIR "tests/data"
#endif

struct region {
	uint64_t addr;
	size_t len;
	uint8_t *bytes;
};

struct want_instr {
	uint64_t code, instr;
	int line;
};

struct want_code {
	uint64_t code;
	char name[256], file[256];
	int firstlineno;
};

struct capture {
	char path[512];
	unsigned major, minor;
	uint64_t pycode_type;
	struct region regions[64];
	size_t nregions;
	struct want_code codes[16];
	size_t ncodes;
	struct want_instr instrs[128];
	size_t ninstrs;
	/* reader state */
	uint64_t exclude;	/* a region address reads may not touch (0: none) */
	unsigned long reads;
	uint64_t alias_from, alias_to;	/* reads at alias_from.. go to alias_to.. (an address reused) */
};

static int cap_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct capture *c = ctx;

	c->reads++;
	if (c->alias_from && addr >= c->alias_from && addr < c->alias_from + 512)
		addr = c->alias_to + (addr - c->alias_from);
	for (size_t i = 0; i < c->nregions; i++) {
		const struct region *r = &c->regions[i];

		if (r->addr == c->exclude)
			continue;
		if (addr >= r->addr && len <= r->len && addr - r->addr <= r->len - len) {
			memcpy(buf, r->bytes + (addr - r->addr), len);
			return 0;
		}
	}
	return -EFAULT;
}

/* A reader's vector read: counted as one call of n spans (procmem's process_vm_readv). */
static unsigned long readv_calls, readv_spans;

static void cap_readv(void *ctx, struct mem_span *v, unsigned n)
{
	struct capture *c = ctx;
	unsigned long reads = c->reads;

	readv_calls++;
	readv_spans += n;
	for (unsigned i = 0; i < n; i++)
		v[i].err = cap_read(ctx, v[i].addr, v[i].buf, v[i].len);
	c->reads = reads;
}

static void unhex_str(const char *hex, char *out, size_t size)
{
	size_t n = strlen(hex) / 2;

	assert_true(n < size);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (char)v;
	}
	out[n] = 0;
}

static void load_capture(const char *path, struct capture *c)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;

	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", path);
	assert_non_null(f);
	while (getline(&line, &cap, f) > 0) {
		char *hex = calloc(1, strlen(line) + 1);
		char *hex2 = calloc(1, strlen(line) + 1);

		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "version ", 8)) {
			assert_int_equal(sscanf(line, "version %u %u", &c->major, &c->minor), 2);
		} else if (!strncmp(line, "pycode_type ", 12)) {
			assert_int_equal(sscanf(line, "pycode_type %lx", &c->pycode_type), 1);
		} else if (!strncmp(line, "region ", 7)) {
			struct region *r = &c->regions[c->nregions++];

			assert_true(c->nregions <= 64);
			assert_int_equal(sscanf(line, "region %lx %s", &r->addr, hex), 2);
			r->len = strlen(hex) / 2;
			r->bytes = malloc(r->len);
			for (size_t i = 0; i < r->len; i++) {
				unsigned v;

				assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
				r->bytes[i] = v;
			}
		} else if (!strncmp(line, "code ", 5)) {
			struct want_code *w = &c->codes[c->ncodes++];

			assert_true(c->ncodes <= 16);
			assert_int_equal(sscanf(line, "code %lx %s %s %d", &w->code, hex, hex2,
						&w->firstlineno), 4);
			unhex_str(hex, w->name, sizeof(w->name));
			unhex_str(hex2, w->file, sizeof(w->file));
		} else if (!strncmp(line, "instr ", 6)) {
			struct want_instr *w = &c->instrs[c->ninstrs++];

			assert_true(c->ninstrs <= 128);
			assert_int_equal(sscanf(line, "instr %lx %lx %d", &w->code, &w->instr,
						&w->line), 3);
		}
		free(hex);
		free(hex2);
	}
	free(line);
	fclose(f);
	assert_int_equal(c->major, 3);
	assert_true(c->ncodes >= 5);
}

static void free_capture(struct capture *c)
{
	for (size_t i = 0; i < c->nregions; i++)
		free(c->regions[i].bytes);
}

static const struct want_code *want_code(const struct capture *c, uint64_t code)
{
	for (size_t i = 0; i < c->ncodes; i++)
		if (c->codes[i].code == code)
			return &c->codes[i];
	fail_msg("%s: no code line for 0x%lx", c->path, code);
	return NULL;
}

static void check_capture(struct capture *c)
{
	const struct py_layout *l = py_layout__builtin(c->major, c->minor);
	struct mem_reader mr = { .read = cap_read, .ctx = c };
	struct symbolizer *s = symbolizer__new(0);
	struct py_frame_sym sym;
	unsigned long reads;
	uint64_t misses;

	assert_non_null(l);
	assert_non_null(s);
	/* every recorded instruction: live frames' raw values, and offsets from co_lines() */
	for (size_t i = 0; i < c->ninstrs; i++) {
		const struct want_instr *w = &c->instrs[i];
		const struct want_code *wc = want_code(c, w->code);
		int rc = symbolizer__resolve(s, 1, l, &mr, c->pycode_type, w->code, w->instr, &sym);

		if (rc)
			fail_msg("%s: resolve 0x%lx: %d", c->path, w->code, rc);
		assert_string_equal(sym.name, wc->name);
		assert_string_equal(sym.file, wc->file);
		assert_int_equal(sym.firstlineno, wc->firstlineno);
		if (sym.line != (w->line < 0 ? wc->firstlineno : w->line))
			fail_msg("%s: %s instr 0x%lx: line %d, expected %d", c->path, wc->name,
				 w->instr, sym.line, w->line);
	}
	/* everything is cached now: no memory read at all */
	misses = symbolizer__misses(s);
	assert_int_equal(misses, c->ncodes);
	reads = c->reads;
	for (size_t i = 0; i < c->ninstrs; i++)
		assert_int_equal(symbolizer__resolve(s, 1, l, &mr, c->pycode_type, c->instrs[i].code,
						     c->instrs[i].instr, &sym), 0);
	assert_int_equal(c->reads, reads);
	assert_int_equal(symbolizer__misses(s), misses);
	assert_int_equal(symbolizer__hits(s), 2 * c->ninstrs - c->ncodes);
	/* another key is another namespace */
	assert_int_equal(symbolizer__resolve(s, 2, l, &mr, 0, c->codes[0].code, 0, &sym), 0);
	assert_int_equal(symbolizer__size(s), c->ncodes + 1);
	symbolizer__forget(s, 1, false);
	assert_int_equal(symbolizer__size(s), 1);
	assert_int_equal(symbolizer__resolve(s, 1, l, &mr, 0, c->codes[0].code, 0, &sym), 0);
	assert_int_equal(symbolizer__misses(s), misses + 2);
	/* not a code object by its type; nothing mapped there */
	assert_int_equal(symbolizer__resolve(s, 3, l, &mr, c->pycode_type + 8, c->codes[1].code, 0,
					     &sym), -ENOENT);
	assert_int_equal(symbolizer__resolve(s, 3, l, &mr, 0, 0x10, 0, &sym), -EFAULT);
	assert_int_equal(symbolizer__resolve(s, 3, l, &mr, 0, 0, 0, &sym), -EINVAL);
	symbolizer__free(s);

	/* each region unreadable in turn: an error for the codes that need it, never a crash */
	for (size_t r = 0; r < c->nregions; r++) {
		c->exclude = c->regions[r].addr;
		s = symbolizer__new(4);
		for (size_t i = 0; i < c->ncodes; i++) {
			int rc = symbolizer__resolve(s, 1, l, &mr, c->pycode_type, c->codes[i].code,
						     0, &sym);

			if (c->codes[i].code == c->exclude)
				assert_int_equal(rc, -EFAULT);
			assert_true(rc == 0 || rc == -EFAULT);
		}
		symbolizer__free(s);
	}
	c->exclude = 0;

	/* a bounded cache: the least recently used goes */
	s = symbolizer__new(2);
	assert_int_equal(symbolizer__resolve(s, 1, l, &mr, 0, c->codes[0].code, 0, &sym), 0);
	assert_int_equal(symbolizer__resolve(s, 1, l, &mr, 0, c->codes[1].code, 0, &sym), 0);
	assert_int_equal(symbolizer__resolve(s, 1, l, &mr, 0, c->codes[0].code, 0, &sym), 0);
	assert_int_equal(symbolizer__resolve(s, 1, l, &mr, 0, c->codes[2].code, 0, &sym), 0);
	assert_int_equal(symbolizer__size(s), 2);
	assert_int_equal(symbolizer__hits(s), 1);
	assert_int_equal(symbolizer__resolve(s, 1, l, &mr, 0, c->codes[0].code, 0, &sym), 0);
	assert_int_equal(symbolizer__hits(s), 2);
	assert_int_equal(symbolizer__resolve(s, 1, l, &mr, 0, c->codes[1].code, 0, &sym), 0);
	assert_int_equal(symbolizer__hits(s), 2);
	assert_string_equal(sym.name, c->codes[1].name);
	symbolizer__free(s);

	/*
	 * A code object freed and another allocated at its address: after SYMBOLIZER_RECHECK_NS the
	 * cache reads the header again and names the newcomer (once per run: it takes a second).
	 */
	static bool reuse_checked;
	if (!reuse_checked && c->ncodes >= 2 && strcmp(c->codes[0].name, c->codes[1].name)) {
		struct timespec ts = { 1, 100000000 };

		reuse_checked = true;
		s = symbolizer__new(0);
		assert_int_equal(symbolizer__resolve(s, 1, l, &mr, c->pycode_type, c->codes[0].code, 0, &sym), 0);
		assert_string_equal(sym.name, c->codes[0].name);
		c->alias_from = c->codes[0].code;
		c->alias_to = c->codes[1].code;
		/* within the recheck time the cache is trusted (no read) */
		reads = c->reads;
		assert_int_equal(symbolizer__resolve(s, 1, l, &mr, c->pycode_type, c->codes[0].code, 0, &sym), 0);
		assert_int_equal(c->reads, reads);
		nanosleep(&ts, NULL);
		assert_int_equal(symbolizer__resolve(s, 1, l, &mr, c->pycode_type, c->codes[0].code, 0, &sym), 0);
		assert_string_equal(sym.name, c->codes[1].name);
		assert_string_equal(sym.file, c->codes[1].file);
		assert_int_equal(symbolizer__stale(s), 1);
		/* and an unchanged one is trusted for another while */
		c->alias_from = 0;
		symbolizer__forget(s, 1, false);
		assert_int_equal(symbolizer__resolve(s, 1, l, &mr, c->pycode_type, c->codes[0].code, 0, &sym), 0);
		nanosleep(&ts, NULL);
		assert_int_equal(symbolizer__resolve(s, 1, l, &mr, c->pycode_type, c->codes[0].code, 0, &sym), 0);
		assert_string_equal(sym.name, c->codes[0].name);
		assert_int_equal(symbolizer__stale(s), 1);
		symbolizer__free(s);

		/*
		 * A stack's entries checked at once (symbolizer__recheck_many): one vector read for
		 * the due ones (a recursive frame's code once), the replaced one dropped, and the
		 * resolves after it read nothing but the replaced one.
		 */
		struct mem_reader vr = { .read = cap_read, .ctx = c, .readv = cap_readv };
		uint64_t stack[4] = { c->codes[0].code, c->codes[1].code, c->codes[0].code, 0x10 };

		s = symbolizer__new(0);
		assert_int_equal(symbolizer__resolve(s, 1, l, &vr, c->pycode_type, c->codes[0].code, 0, &sym), 0);
		assert_int_equal(symbolizer__resolve(s, 1, l, &vr, c->pycode_type, c->codes[1].code, 0, &sym), 0);
		symbolizer__recheck_many(s, 1, l, &vr, c->pycode_type, stack, 4);
		assert_int_equal(readv_calls, 0);	/* none due yet */
		nanosleep(&ts, NULL);
		c->alias_from = c->codes[0].code;
		c->alias_to = c->codes[1].code;
		symbolizer__recheck_many(s, 1, l, &vr, c->pycode_type, stack, 4);
		/* the two headers, then the name of the one whose header still matches */
		assert_int_equal(readv_calls, 2);
		assert_int_equal(readv_spans, 3);
		assert_int_equal(symbolizer__stale(s), 1);
		reads = c->reads;
		assert_int_equal(symbolizer__resolve(s, 1, l, &vr, c->pycode_type, c->codes[1].code, 0, &sym), 0);
		assert_int_equal(c->reads, reads);
		assert_int_equal(symbolizer__resolve(s, 1, l, &vr, c->pycode_type, c->codes[0].code, 0, &sym), 0);
		assert_true(c->reads > reads);
		assert_string_equal(sym.name, c->codes[1].name);
		c->alias_from = 0;
		symbolizer__free(s);

		/*
		 * A young entry is checked at its next use a tick later, by its name's id as well: a
		 * newcomer whose header holds the very same pointers (its name's str at the old one's
		 * address) but another name is told apart 20 ms later, not a second.
		 */
		struct timespec tick = { 0, 20000000 };
		uint32_t off = l->co_qualname != PYL_NONE ? l->co_qualname : l->co_name;
		uint64_t n0, n1;

		assert_int_equal(cap_read(c, c->codes[0].code + off, &n0, 8), 0);
		assert_int_equal(cap_read(c, c->codes[1].code + off, &n1, 8), 0);
		s = symbolizer__new(0);
		assert_int_equal(symbolizer__resolve(s, 1, l, &mr, c->pycode_type, c->codes[0].code, 0, &sym), 0);
		assert_string_equal(sym.name, c->codes[0].name);
		c->alias_from = n0;
		c->alias_to = n1;
		nanosleep(&tick, NULL);
		assert_int_equal(symbolizer__resolve(s, 1, l, &mr, c->pycode_type, c->codes[0].code, 0, &sym), 0);
		assert_string_equal(sym.name, c->codes[1].name);
		assert_int_equal(symbolizer__stale(s), 1);
		c->alias_from = 0;
		symbolizer__free(s);
	}
}

static void test_captured(void **state)
{
	glob_t g;
	bool seen[16] = { false };

	assert_int_equal(glob(TEST_DATA_DIR "/sym_3.*.txt", 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct capture *c = malloc(sizeof(*c));

		load_capture(g.gl_pathv[i], c);
		if (c->minor < 16)
			seen[c->minor] = true;
		check_capture(c);
		free_capture(c);
		free(c);
	}
	globfree(&g);
	for (unsigned m = 8; m <= 15; m++)
		if (!seen[m])
			fail_msg("no captured memory for 3.%u", m);
}

/*
 * Families (symbolizer__resolve_in): a member's code object is taken from another member's entry
 * after one header read, never from another family's or from a process whose header differs; an
 * exited member's entry waits for the next member, and a pid used again outside the family does
 * not see it.
 */
/* key of family 7 takes w's entry from another member: one read, named as w. */
static void expect_taken(struct symbolizer *s, struct capture *c, const struct py_layout *l,
			 const struct mem_reader *mr, uint32_t key, const struct want_code *w, uint64_t kin)
{
	struct py_frame_sym sym;
	unsigned long reads = c->reads;

	assert_int_equal(symbolizer__resolve_in(s, key, 7, l, mr, c->pycode_type, w->code, 0, &sym), 0);
	assert_int_equal(c->reads - reads, 1);
	assert_int_equal(symbolizer__kin(s), kin);
	assert_string_equal(sym.name, w->name);
	assert_string_equal(sym.file, w->file);
	assert_int_equal(sym.firstlineno, w->firstlineno);
}

static void check_family(struct capture *c)
{
	const struct py_layout *l = py_layout__builtin(c->major, c->minor);
	struct mem_reader mr = { .read = cap_read, .ctx = c };
	struct symbolizer *s = symbolizer__new(0);
	struct py_frame_sym sym;
	const struct want_code *w0 = &c->codes[0], *w1 = NULL;
	unsigned long reads;

	for (size_t i = 1; i < c->ncodes && !w1; i++)
		if (strcmp(c->codes[i].name, w0->name))
			w1 = &c->codes[i];
	assert_non_null(w1);
	/* the first member reads it; the second takes it with one read */
	assert_int_equal(symbolizer__resolve_in(s, 100, 7, l, &mr, c->pycode_type, w0->code, 0, &sym), 0);
	assert_int_equal(symbolizer__misses(s), 1);
	expect_taken(s, c, l, &mr, 101, w0, 1);
	assert_int_equal(symbolizer__misses(s), 1);
	assert_int_equal(symbolizer__size(s), 2);
	/* another family, or none: read from the target */
	assert_int_equal(symbolizer__resolve_in(s, 102, 8, l, &mr, c->pycode_type, w0->code, 0, &sym), 0);
	assert_int_equal(symbolizer__resolve(s, 103, l, &mr, c->pycode_type, w0->code, 0, &sym), 0);
	assert_int_equal(symbolizer__misses(s), 3);
	assert_int_equal(symbolizer__kin(s), 1);
	/* another code object at the address in this member: its header differs, it is read */
	c->alias_from = w0->code;
	c->alias_to = w1->code;
	assert_int_equal(symbolizer__resolve_in(s, 104, 7, l, &mr, c->pycode_type, w0->code, 0, &sym), 0);
	assert_string_equal(sym.name, w1->name);
	assert_int_equal(symbolizer__kin(s), 1);
	assert_int_equal(symbolizer__misses(s), 4);
	c->alias_from = 0;
	symbolizer__forget(s, 104, true);
	/* members exit: the entry that has kin goes, the family's last one stays, unseen by key */
	assert_int_equal(symbolizer__size(s), 4);
	symbolizer__forget(s, 100, true);
	assert_int_equal(symbolizer__size(s), 3);
	symbolizer__forget(s, 101, true);
	assert_int_equal(symbolizer__size(s), 3);
	/* pid 101 used again by another program: its own read */
	assert_int_equal(symbolizer__resolve_in(s, 101, 9, l, &mr, c->pycode_type, w0->code, 0, &sym), 0);
	assert_int_equal(symbolizer__misses(s), 5);
	assert_int_equal(symbolizer__size(s), 4);
	/* the family's next member takes the exited one's entry: no new entry */
	expect_taken(s, c, l, &mr, 105, w0, 2);
	assert_int_equal(symbolizer__size(s), 4);
	/* and once taken it is that member's: cached, no read */
	reads = c->reads;
	assert_int_equal(symbolizer__resolve_in(s, 105, 7, l, &mr, c->pycode_type, w0->code, 0, &sym), 0);
	assert_int_equal(c->reads, reads);
	/* unreadable in the new member: its reader's error, nothing taken */
	c->exclude = w0->code;
	assert_int_equal(symbolizer__resolve_in(s, 106, 7, l, &mr, c->pycode_type, w0->code, 0, &sym), -EFAULT);
	c->exclude = 0;
	assert_int_equal(symbolizer__kin(s), 2);
	/* the family's last member exits: its entries and those kept for the family go */
	assert_int_equal(symbolizer__resolve_in(s, 107, 7, l, &mr, c->pycode_type, w1->code, 0, &sym), 0);
	symbolizer__forget(s, 107, true);	/* w1's: kept for the family */
	assert_int_equal(symbolizer__size(s), 5);
	symbolizer__forget(s, 105, false);
	assert_int_equal(symbolizer__size(s), 3);	/* 102 (family 8), 103 (none), 101 (family 9) */
	reads = c->reads;
	assert_int_equal(symbolizer__resolve_in(s, 108, 7, l, &mr, c->pycode_type, w1->code, 0, &sym), 0);
	assert_true(c->reads - reads > 1);	/* read, not taken */
	assert_int_equal(symbolizer__kin(s), 2);
	/* keys with the top bit are not pids */
	assert_int_equal(symbolizer__resolve_in(s, 0x80000007u, 7, l, &mr, c->pycode_type, w0->code, 0, &sym), -EINVAL);
	symbolizer__free(s);

	/* a bounded cache evicts family entries as any other (ASan and valgrind check the lists) */
	s = symbolizer__new(2);
	for (uint32_t key = 200; key < 210; key++) {
		assert_int_equal(symbolizer__resolve_in(s, key, 7, l, &mr, c->pycode_type,
						       c->codes[key % c->ncodes].code, 0, &sym), 0);
		if (key % 3 == 0)
			symbolizer__forget(s, key, key % 2);
	}
	assert_int_equal(symbolizer__size(s), 2);
	symbolizer__free(s);
}

static void test_family(void **state)
{
	glob_t g;

	assert_int_equal(glob(TEST_DATA_DIR "/sym_3.*.txt", 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct capture *c = malloc(sizeof(*c));

		load_capture(g.gl_pathv[i], c);
		check_family(c);
		free_capture(c);
		free(c);
	}
	globfree(&g);
}

/* A str object of 3.12+ layout (state 32, ASCII data 40, compact data 56) in a flat buffer. */
struct fake_str {
	uint8_t mem[256];
};

static int flat_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	const struct fake_str *f = ctx;

	if (addr < 0x1000 || addr - 0x1000 > sizeof(f->mem) || len > sizeof(f->mem) - (addr - 0x1000))
		return -EFAULT;
	memcpy(buf, f->mem + (addr - 0x1000), len);
	return 0;
}

static void make_str(struct fake_str *f, int64_t length, unsigned kind, bool compact, bool ascii,
		     const void *data, size_t nbytes)
{
	uint32_t state = kind << 2 | compact << 5 | ascii << 6;

	memset(f, 0, sizeof(*f));
	memcpy(f->mem + 16, &length, 8);
	memcpy(f->mem + 32, &state, 4);
	if (compact) {
		memcpy(f->mem + (ascii ? 40 : 56), data, nbytes);
	} else {
		uint64_t p = 0x1000 + 128;

		memcpy(f->mem + 56, &p, 8);
		memcpy(f->mem + 128, data, nbytes);
	}
}

static void test_read_str(void **state)
{
	const struct py_layout *l = py_layout__builtin(3, 12);
	struct fake_str f;
	struct mem_reader mr = { .read = flat_read, .ctx = &f };
	char buf[16];
	const uint16_t ucs2[] = { 0x95a2, 0x6570, 'x' };	/* 関数x */
	const uint32_t ucs4[] = { 0x20000, 'a', 0x1f40d };	/* 𠀀a🐍 */
	const uint32_t bad4[] = { 'a', 0x110000 };
	const uint16_t surr[] = { 'a', 0xdc80 };

	assert_non_null(l);
	make_str(&f, 5, 1, true, true, "hello", 6);
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, sizeof(buf)), 5);
	assert_string_equal(buf, "hello");
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, 4), 3);	/* cut */
	assert_string_equal(buf, "hel");
	make_str(&f, 3, 1, true, false, "gr\xfc", 3);		/* latin-1 */
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, sizeof(buf)), 4);
	assert_string_equal(buf, "gr\xc3\xbc");
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, 4), 2);	/* not half a character */
	assert_string_equal(buf, "gr");
	make_str(&f, 3, 2, true, false, ucs2, sizeof(ucs2));
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "\xe9\x96\xa2\xe6\x95\xb0x");
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, 6), 3);
	make_str(&f, 3, 4, true, false, ucs4, sizeof(ucs4));
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, sizeof(buf)), 9);
	assert_string_equal(buf, "\xf0\xa0\x80\x80" "a" "\xf0\x9f\x90\x8d");
	make_str(&f, 3, 4, false, false, ucs4, sizeof(ucs4));	/* data behind a pointer */
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, sizeof(buf)), 9);
	make_str(&f, 2, 2, true, false, surr, sizeof(surr));
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, sizeof(buf)), 4);
	assert_string_equal(buf, "a\xef\xbf\xbd");
	/* invalid */
	make_str(&f, 2, 4, true, false, bad4, sizeof(bad4));
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, sizeof(buf)), -EILSEQ);
	make_str(&f, 3, 1, true, true, "a\x80z", 3);
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, sizeof(buf)), -EILSEQ);
	make_str(&f, 3, 3, true, false, "abc", 3);
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, sizeof(buf)), -EINVAL);
	make_str(&f, 3, 2, true, true, "abc", 3);
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, sizeof(buf)), -EINVAL);
	make_str(&f, -1, 1, true, true, "abc", 3);
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, sizeof(buf)), -EINVAL);
	make_str(&f, 1000, 1, true, true, "abc", 3);		/* runs off the mapping */
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, sizeof(buf)), 15);
	assert_int_equal(py_read_str(l, &mr, 0x1000 + 100, buf, sizeof(buf)), -EINVAL);
	make_str(&f, 300, 1, true, true, "abc", 3);
	char big[512];
	assert_int_equal(py_read_str(l, &mr, 0x1000, big, sizeof(big)), -EFAULT);
	assert_int_equal(py_read_str(l, &mr, 0x9000, buf, sizeof(buf)), -EFAULT);
	assert_int_equal(py_read_str(l, &mr, 0, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(py_read_str(l, &mr, 0x1000, buf, 0), -EINVAL);
}

/* A str's code units as the wire programs copy them (a driver's text): UTF-8, whole points only */
static void test_utf8_from_ucs(void **state)
{
	const uint16_t ucs2[] = { 0x0446, 0x0435, 'x' };		/* цеx */
	const uint32_t ucs4[] = { 0x1f600, 'a', 0x110000, 0 };	/* 😀a, past Unicode, NUL */
	char buf[16];
	size_t used = 99;

	assert_int_equal(utf8_from_ucs("caf\xe9", 4, 1, buf, sizeof(buf), &used), 5);
	assert_string_equal(buf, "caf\xc3\xa9");
	assert_int_equal(used, 4);
	assert_int_equal(utf8_from_ucs("caf\xe9", 4, 1, buf, 5, &used), 3);	/* not half of é */
	assert_string_equal(buf, "caf");
	assert_int_equal(used, 3);
	assert_int_equal(utf8_from_ucs(ucs2, 3, 2, buf, sizeof(buf), &used), 5);
	assert_string_equal(buf, "\xd1\x86\xd0\xb5x");
	assert_int_equal(utf8_from_ucs(ucs4, 4, 4, buf, sizeof(buf), &used), 9);
	assert_string_equal(buf, "\xf0\x9f\x98\x80" "a" "\xef\xbf\xbd" "?");
	assert_int_equal(used, 4);
	assert_int_equal(utf8_from_ucs(ucs4, 1, 4, buf, 4, &used), 0);	/* 4 bytes, 3 of room */
	assert_string_equal(buf, "");
	assert_int_equal(used, 0);
	assert_int_equal(utf8_from_ucs(ucs4, 4, 3, buf, sizeof(buf), &used), 0);	/* no such kind */
	assert_int_equal(used, 0);
	assert_int_equal(utf8_from_ucs(ucs2, 0, 2, buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, "");
}

static void test_frame_is(void **state)
{
	const char *sfx = "/starlette/routing.py";

	assert_true(py_frame_is("Route.handle", "/usr/lib/python3/dist-packages/starlette/routing.py", "Route.handle",
				"handle", sfx));
	assert_true(py_frame_is("handle", "/x/starlette/routing.py", "Route.handle", "handle", sfx));	/* <= 3.10 */
	assert_false(py_frame_is("Route.handle", "/x/starlette/routing.pyc", "Route.handle", "handle", sfx));
	assert_false(py_frame_is("Mount.handle2", "/x/starlette/routing.py", "Route.handle", "handle", sfx));
	assert_false(py_frame_is("Route.handle", "routing.py", "Route.handle", "handle", sfx));
	assert_false(py_frame_is(NULL, "/x/starlette/routing.py", "Route.handle", "handle", sfx));
	assert_false(py_frame_is("handle", NULL, "Route.handle", "handle", sfx));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_is),
		cmocka_unit_test(test_captured),
		cmocka_unit_test(test_family),
		cmocka_unit_test(test_read_str),
		cmocka_unit_test(test_utf8_from_ucs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
