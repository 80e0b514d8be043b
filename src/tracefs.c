// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <sys/mount.h>
#include <unistd.h>
#include "tracefs.h"
#include "util.h"

#define PROBE_EVENT TRACEFS "/events/syscalls/sys_enter_close/id"

bool tracefs__syscall_events(void)
{
	if (access(PROBE_EVENT, R_OK) == 0)
		return true;
	if (access(TRACEFS, F_OK) == 0 && mount("nodev", TRACEFS, "tracefs", 0, NULL) == 0)
		vlog("mounted tracefs on " TRACEFS "\n");
	return access(PROBE_EVENT, R_OK) == 0;
}
