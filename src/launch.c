// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "launch.h"

#define MAX_GROUPS 256

/* What the child says through the error pipe when it cannot get to its command. */
struct child_err {
	int stage;		/* 0: exec, 1: setgroups, 2: setgid, 3: setuid */
	int err;
};

static const char *const stage_names[] = { "exec", "setgroups", "setgid", "setuid" };

/* SUDO_UID / SUDO_GID: a decimal id, else -1. */
static long env_id(const char *name)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !v[0])
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < 0 || n >= (long)UINT_MAX)
		return -1;
	return n;
}

static void child_fail(int fd, int stage, int err)
{
	struct child_err ce = { .stage = stage, .err = err };
	ssize_t n = write(fd, &ce, sizeof(ce));

	(void)n;
	_exit(stage ? 126 : err == ENOENT ? 127 : 126);
}

int launch__start(struct launch *l, char *const argv[], char *err, size_t errlen)
{
	gid_t groups[MAX_GROUPS];
	int ngroups = 0, go[2], ep[2];
	long uid = -1, gid = -1;
	pid_t pid;

	memset(l, 0, sizeof(*l));
	l->go_fd = l->err_fd = -1;
	l->uid = getuid();
	l->gid = getgid();
	/* root through sudo: the command runs as the user who typed it */
	if (getuid() == 0 && (uid = env_id("SUDO_UID")) > 0) {
		struct passwd *pw = getpwuid((uid_t)uid);

		gid = env_id("SUDO_GID");
		if (gid < 0)
			gid = pw ? (long)pw->pw_gid : uid;
		ngroups = MAX_GROUPS;
		if (!pw || getgrouplist(pw->pw_name, (gid_t)gid, groups, &ngroups) < 0) {
			groups[0] = (gid_t)gid;
			ngroups = 1;
		}
		l->uid = (uid_t)uid;
		l->gid = (gid_t)gid;
		l->dropped = true;
	}
	if (pipe2(go, O_CLOEXEC))
		goto fail_pipe;
	if (pipe2(ep, O_CLOEXEC)) {
		close(go[0]);
		close(go[1]);
		goto fail_pipe;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot start %s: fork: %s", argv[0], strerror(e));
		close(go[0]);
		close(go[1]);
		close(ep[0]);
		close(ep[1]);
		return -e;
	}
	if (pid == 0) {
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigset_t none;
		ssize_t n;
		char c;

		close(go[1]);
		close(ep[0]);
		sigemptyset(&dfl.sa_mask);
		sigaction(SIGINT, &dfl, NULL);
		sigaction(SIGTERM, &dfl, NULL);
		sigaction(SIGCHLD, &dfl, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (l->dropped) {
			if (setgroups(ngroups, groups))
				child_fail(ep[1], 1, errno);
			if (setgid(l->gid))
				child_fail(ep[1], 2, errno);
			if (setuid(l->uid))
				child_fail(ep[1], 3, errno);
		}
		/* held until the tracer is attached; end of file: the tracer is gone, so is it */
		c = 0;
		do
			n = read(go[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1 || c != 'g')
			_exit(125);
		close(go[0]);
		execvp(argv[0], argv);
		child_fail(ep[1], 0, errno);
	}
	close(go[0]);
	close(ep[1]);
	l->pid = pid;
	l->go_fd = go[1];
	l->err_fd = ep[0];
	return 0;
fail_pipe:
	snprintf(err, errlen, "cannot start %s: pipe: %s", argv[0], strerror(errno));
	return -errno;
}

int launch__go(struct launch *l)
{
	char c = 'g';
	ssize_t n;

	if (l->go_fd < 0)
		return -EBADF;
	do
		n = write(l->go_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	close(l->go_fd);
	l->go_fd = -1;
	return n == 1 ? 0 : -EPIPE;
}

bool launch__poll(struct launch *l)
{
	int st;
	pid_t r;

	if (l->reaped || l->pid <= 0)
		return l->reaped;
	do
		r = waitpid(l->pid, &st, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == l->pid) {
		l->status = st;
		l->reaped = true;
	} else if (r < 0 && errno == ECHILD) {
		l->status = 0;
		l->reaped = true;	/* someone else reaped it: nothing left to wait for */
	}
	return l->reaped;
}

bool launch__wait(struct launch *l, double timeout_s)
{
	struct timespec ts = { 0, 10 * 1000000L };
	double waited = 0;

	while (!launch__poll(l)) {
		if (timeout_s >= 0 && waited >= timeout_s)
			return false;
		nanosleep(&ts, NULL);
		waited += 0.01;
	}
	return true;
}

void launch__end(struct launch *l, double grace_s)
{
	if (l->pid <= 0 || launch__poll(l))
		return;
	if (l->go_fd >= 0) {	/* never let go: it has nothing to finish */
		close(l->go_fd);
		l->go_fd = -1;
		kill(l->pid, SIGKILL);
	} else {
		kill(l->pid, SIGTERM);
	}
	if (!launch__wait(l, grace_s)) {
		kill(l->pid, SIGKILL);
		launch__wait(l, -1);
	}
}

void launch__forward(const struct launch *l, int sig, const siginfo_t *si)
{
	int saved = errno;

	if (l->pid <= 0 || l->reaped)
		return;
	/* ^C at the terminal reaches the whole foreground group: the command had it already */
	if (!(si && si->si_code == SI_KERNEL && getpgid(l->pid) == getpgrp()))
		kill(l->pid, sig);
	errno = saved;
}

int launch__exit_code(struct launch *l, char *why, size_t whylen)
{
	struct child_err ce;

	if (l->err_fd >= 0 && l->reaped) {	/* its end is closed: whatever it wrote is there */
		ssize_t n = read(l->err_fd, &ce, sizeof(ce));

		close(l->err_fd);
		l->err_fd = -1;
		if (n == (ssize_t)sizeof(ce) && ce.stage >= 0 && ce.stage < 4)
			snprintf(l->why, sizeof(l->why), "%s: %s", stage_names[ce.stage], strerror(ce.err));
	}
	if (why && whylen)
		snprintf(why, whylen, "%s", l->why);
	if (!l->reaped)
		return 1;
	if (WIFEXITED(l->status))
		return WEXITSTATUS(l->status);
	if (WIFSIGNALED(l->status))
		return 128 + WTERMSIG(l->status);
	return 1;
}
