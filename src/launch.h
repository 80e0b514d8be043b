/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `pytrace-bpf [options] -- COMMAND [ARGS...]`: the command, started by the tracer and held
 * before its exec until tracing is attached, so that nothing of its start is missed.
 *
 * The child is forked first and blocks reading a pipe; the caller then tracks its pid, attaches
 * everything and lets it go (launch__go); the exec that follows is the tracker's ordinary exec
 * event, and the session holds the command again at its first module load until its interpreter
 * is known (session_opts.hold_pid, bpf/session.bpf.c). Run by root with SUDO_UID (and SUDO_GID) set, the child takes that user's uid, gid and
 * groups before its exec, as perf and py-spy do, so that `sudo pytrace-bpf -- python3 app.py`
 * runs app.py as the user who typed it. Exit statuses follow the shell's: the command's own,
 * 128+N when signal N killed it, 127 when it could not be found, 126 when it could not be run.
 */
#ifndef PYTRACE_LAUNCH_H
#define PYTRACE_LAUNCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct launch {
	pid_t pid;		/* the command, 0 before launch__start */
	int go_fd;		/* write end: one byte lets the child exec */
	int err_fd;		/* read end (the child's is close-on-exec): why its exec failed */
	bool reaped;
	int status;		/* waitpid's, once reaped */
	uid_t uid;		/* the identity it runs as (SUDO_UID or the tracer's) */
	gid_t gid;
	bool dropped;		/* it takes uid and gid instead of the tracer's */
	char why[128];		/* why its exec failed, once reaped */
};

/*
 * Fork the command (argv[0] looked up in PATH at its exec) and hold it. Root with SUDO_UID set:
 * it drops to that user first. 0, or -errno with a message in err.
 */
int launch__start(struct launch *l, char *const argv[], char *err, size_t errlen);
/* Let it exec. 0 or -errno. */
int launch__go(struct launch *l);
/* Reap it if it has exited (no waiting): true once it has. */
bool launch__poll(struct launch *l);
/* Wait for it up to timeout_s (< 0: for ever): true once reaped. */
bool launch__wait(struct launch *l, double timeout_s);
/* End it: SIGTERM, then SIGKILL after grace_s, reaped. */
void launch__end(struct launch *l, double grace_s);
/*
 * From a SIGINT/SIGTERM handler (async-signal-safe): send sig on to the command, unless the
 * terminal sent it to the whole foreground process group, which the command is in (it has it).
 */
void launch__forward(const struct launch *l, int sig, const siginfo_t *si);
/* The exit status a shell would give (see above); 1 if not reaped. why: a message if its exec failed. */
int launch__exit_code(struct launch *l, char *why, size_t whylen);

#endif
