/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Detaching BPF programs several at a time. Each detach of a program from a perf-event
 * tracepoint waits for the kernel's RCU grace periods before it returns (60-80 ms each on this
 * machine kind: tracepoint_synchronize_unregister), so the tool's two dozen tracepoint links,
 * detached one after the other, made every run end a second after its trace did. Detached from
 * several threads, the waits overlap.
 */
#ifndef PYTRACE_LINKS_H
#define PYTRACE_LINKS_H

#include <stddef.h>

struct bpf_link;
struct bpf_object_skeleton;

/* bpf_link__destroy() each non-NULL links[i], from up to LINKS_THREADS threads; each set to NULL. */
void links__destroy(struct bpf_link **links, size_t n);
/* The same for the links of a skeleton's programs (its destroy then has none left to detach). */
void links__detach_skeleton(struct bpf_object_skeleton *s);

#endif
