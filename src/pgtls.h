/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The plaintext of encrypted PostgreSQL connections of drivers without libpq (asyncpg, pg8000):
 * probes on the OpenSSL a process maps (bpf/pgtls.bpf.c), attached to that process alone when
 * the wire reader sees one of its connections turn encrypted and it has no libpq (whose own
 * probes serve libpq's connections). The BPF object is opened with the wire reader and loaded
 * with the first such process.
 */
#ifndef PYTRACE_PGTLS_H
#define PYTRACE_PGTLS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct bpf_map;
struct session_maps;

struct pgtls_opts {
	const struct session_maps *maps;	/* the session's shared maps */
	struct bpf_map *pg_stacks, *pg_last_stack;	/* the wire reader's: the same stacks */
	uint32_t text_cap;			/* as the wire reader's (its rodata) */
	bool call_sites;
	bool whole_stacks;	/* as the wire reader's */
	const char *btf_path;
};

struct pgtls_stats {
	unsigned processes;	/* processes probed */
	unsigned internal;	/* of which at OpenSSL's internal write and read functions (pgtls.c) */
	unsigned failed;	/* processes whose probes could not be attached (no OpenSSL mapped, ...) */
	unsigned with_libpq;	/* encrypted connections left to libpq's probes: the process maps libpq */
};

struct pgtls;

/* NULL with a message in err. */
struct pgtls *pgtls__new(const struct pgtls_opts *o, char *err, size_t errlen);
void pgtls__free(struct pgtls *t);
enum pgtls_verdict {
	PGTLS_READ,		/* its OpenSSL is probed: the plaintext is read */
	PGTLS_LIBPQ,		/* it maps libpq: libpq's probes are the ones to serve it */
	PGTLS_NONE,		/* neither (no OpenSSL mapped, probes refused, too many processes) */
};

/* An encrypted connection of pid: probe its OpenSSL, unless it maps libpq. Decided once per pid. */
enum pgtls_verdict pgtls__encrypted(struct pgtls *t, pid_t pid);
/* pid exited or exec'd: its probes go. */
void pgtls__forget(struct pgtls *t, pid_t pid);
void pgtls__stats(const struct pgtls *t, struct pgtls_stats *st);

#endif
