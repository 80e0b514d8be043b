/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* (code object, instruction) pairs shipped by BPF -> function, file and line, read from the
 * target's memory and cached per (pid, code object). */
#ifndef PYTRACE_SYMBOLIZE_H
#define PYTRACE_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memread.h"
#include "pylayout.h"

#define SYMBOLIZER_DEFAULT_ENTRIES 65536
#define SYMBOLIZER_MAX_TABLE (64 * 1024)	/* line table bytes kept per code object */
#define SYMBOLIZER_MAX_STR 1024			/* UTF-8 bytes kept per name or file name */
/*
 * A cached code object is read again (its header and its name's id: two reads) when it is used
 * after this long: a freed code object's address goes to the next one, which must not inherit
 * its name. Until it has been seen alive for SYMBOLIZER_YOUNG_NS, at every use (code that dies
 * young is what leaves its address to another most often).
 */
#define SYMBOLIZER_RECHECK_NS 2000000000ULL
#define SYMBOLIZER_YOUNG_NS 250000000ULL

struct py_frame_sym {
	const char *name;	/* co_qualname (3.11+) or co_name */
	const char *file;	/* co_filename */
	int line;		/* current line, or firstlineno if unknown */
	int firstlineno;
	uint8_t *mark;		/* the caller's byte for this code object: 0 when it is (re)loaded,
				   then kept with it (pystacks.c notes there what it found of it once) */
};

struct symbolizer;

/* max_entries code objects are cached (0: SYMBOLIZER_DEFAULT_ENTRIES); the least recently
 * used one is evicted when full. NULL on allocation failure. */
struct symbolizer *symbolizer__new(size_t max_entries);
void symbolizer__free(struct symbolizer *s);

/*
 * code: code object address (tag bits are masked with l->code_mask);
 * instr: the raw value shipped by BPF: f_lasti for <= 3.10, the instruction pointer 3.11+.
 * pycode_type: address of PyCode_Type in the target (0 = don't check); when nonzero, an
 * object whose ob_type differs is not a code object: -ENOENT.
 * key: a cache namespace (the pid): not 0, top bit clear.
 * Returns 0 and fills *out, whose strings belong to the symbolizer and stay valid until the
 * entry is evicted (by a later resolve) or symbolizer__forget(key): callers copy what they
 * keep. Or -errno: -EINVAL for a bad argument or something that is not a str or bytes where
 * one is expected, -EILSEQ for invalid characters, the reader's error (-EFAULT, -ESRCH...).
 */
int symbolizer__resolve(struct symbolizer *s, uint32_t key, const struct py_layout *l,
			const struct mem_reader *mr, uint64_t pycode_type, uint64_t code,
			uint64_t instr, struct py_frame_sym *out);
/*
 * The same, for a process of a family (family != 0: the processes forked from one exec, whose
 * memory began as one): a code object not cached under key is taken from another member's entry
 * for its address when the header at that address in key's process shows the same object (one
 * read), and read from the target only otherwise. An exited member's entries (forget) stay for
 * the family's next ones, one per address, while the family lives.
 */
int symbolizer__resolve_in(struct symbolizer *s, uint32_t key, uint32_t family, const struct py_layout *l,
			   const struct mem_reader *mr, uint64_t pycode_type, uint64_t code,
			   uint64_t instr, struct py_frame_sym *out);
/*
 * The entries of codes (a stack's, n of them) that are due for their check against the code
 * object now at their address, checked at once: their headers read in one call of the reader's
 * (mem_readv), at most SYMBOLIZER_RECHECK_MAX of them; those found replaced are dropped. The
 * resolves that follow then read none (a sample's stack made up to one read a frame, about a
 * tenth of the collector's CPU under 99 Hz sampling).
 */
#define SYMBOLIZER_RECHECK_MAX 128
void symbolizer__recheck_many(struct symbolizer *s, uint32_t key, const struct py_layout *l,
			      const struct mem_reader *mr, uint64_t pycode_type, const uint64_t *codes, unsigned n);
/*
 * Drop every entry of key (the process exited or exec'd). family_lives: other processes of its
 * family are alive, and its entries that no other member has stay for the family's next ones;
 * else the family's entries kept so go too. key 0: nothing.
 */
void symbolizer__forget(struct symbolizer *s, uint32_t key, bool family_lives);
uint64_t symbolizer__hits(const struct symbolizer *s);
uint64_t symbolizer__misses(const struct symbolizer *s);
/* Code objects taken from a family member's entry (symbolizer__resolve_in) instead of read. */
uint64_t symbolizer__kin(const struct symbolizer *s);
/* Entries found to name another code object than the one now at their address. */
uint64_t symbolizer__stale(const struct symbolizer *s);
size_t symbolizer__size(const struct symbolizer *s);

/*
 * Whether a frame named name (its code's co_qualname, 3.11+, or co_name) in file (co_filename)
 * is the function qualname ("Class.method"; method: its co_name) of a file whose path ends with
 * suffix ("/pkg/module.py").
 */
bool py_frame_is(const char *name, const char *file, const char *qualname, const char *method,
		 const char *suffix);

/*
 * Read the Python str at addr into buf (size > 0) as NUL-terminated UTF-8: compact ASCII,
 * compact latin-1/UCS-2/UCS-4, and non-compact strings (data behind a pointer). Strings
 * longer than buf are cut at a character boundary. Lone surrogates (surrogateescape'd bytes
 * of undecodable file names) become U+FFFD and NUL characters '?', so that the result is
 * always valid UTF-8 and a C string. Returns the length written, or -errno (-EINVAL: not a
 * sane str, -EILSEQ: a code point past U+10FFFF or non-ASCII data in an ASCII string).
 */
int py_read_str(const struct py_layout *l, const struct mem_reader *mr, uint64_t addr,
		char *buf, size_t size);

/* Read a bytes object into a new malloc'd buffer, at most max bytes of it. Returns the
 * object's full size (may exceed *len = what was read), or -errno. */
long py_read_bytes(const struct py_layout *l, const struct mem_reader *mr, uint64_t addr,
		   size_t max, uint8_t **data, size_t *len);

#endif
