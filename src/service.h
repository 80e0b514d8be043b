/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A process's service name, as a fleet would label it: OTEL_SERVICE_NAME from its environment
 * (the OpenTelemetry convention), then gunicorn's proc name (the "gunicorn: worker [NAME]" title
 * setproctitle leaves, or -n/--name, or the app module of "myapp.wsgi:application"), then
 * `python -m MODULE` -> MODULE, `python path/script.py` -> script, else the kernel comm.
 * Bounded (SERVICE_NAME_MAX with its NUL), printable UTF-8 only, never a pid.
 */
#ifndef PYTRACE_SERVICE_H
#define PYTRACE_SERVICE_H

#include <stddef.h>
#include <sys/types.h>

#define SERVICE_NAME_MAX 64

/*
 * The name from a process's /proc/PID/environ and /proc/PID/cmdline contents (NUL-separated;
 * either may be NULL or empty) and its comm. Writes a NUL-terminated name of at most len - 1
 * bytes into buf; returns its length (never 0: "unknown" when nothing usable is left).
 */
size_t service__from_buffers(const char *environ, size_t envlen, const char *cmdline, size_t cmdlen,
			     const char *comm, char *buf, size_t len);
/* The same for a live process, read from /proc. */
size_t service__name(pid_t pid, char *buf, size_t len);
/* Copy src into buf keeping printable UTF-8 only (others dropped), at most len - 1 bytes. */
size_t service__sanitize(const char *src, size_t srclen, char *buf, size_t len);

#endif
