"""Shared by the benchmarks: cgroup v2 CPU accounting and the BPF run time of a process's programs.

CPU per request (or per statement) of everything under test, from cgroup v2's cpu.stat, is the
figure the noise of a shared 2-CPU VM moves least: other work on the host slows the service down
but does not add to its CPU time.
"""
import json
import os
import re
import subprocess
import sys
import time


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cgroup2_root():
    try:
        for line in open("/proc/self/mountinfo"):
            parts = line.split()
            sep = parts.index("-")
            if parts[sep + 1] == "cgroup2":
                return parts[4]
    except (OSError, ValueError, IndexError):
        pass
    return None


class Cgroup:
    """A leaf cgroup v2 of its own (no controllers enabled: cpu.stat's usage_usec is always there)."""

    def __init__(self, name):
        self.path = None
        root = cgroup2_root()
        if root:
            p = os.path.join(root, name)
            try:
                os.makedirs(p, exist_ok=True)
                if os.path.exists(os.path.join(p, "cpu.stat")):
                    self.path = p
            except OSError as e:
                log("cannot make cgroup %s: %s" % (p, e))

    def enter(self):
        """preexec_fn: the child moves itself in before exec."""
        if self.path:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write("0")

    def cpu_s(self):
        if not self.path:
            return None
        for line in open(os.path.join(self.path, "cpu.stat")):
            k, v = line.split()
            if k == "usage_usec":
                return int(v) / 1e6
        return None

    def remove(self):
        if not self.path:
            return
        root = cgroup2_root()
        for _ in range(50):
            try:
                pids = open(os.path.join(self.path, "cgroup.procs")).read().split()
                for pid in pids:  # stragglers back to the root, so that the directory can go
                    try:
                        with open(os.path.join(root, "cgroup.procs"), "w") as f:
                            f.write(pid)
                    except OSError:
                        pass
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)
        log("could not remove cgroup " + self.path)


def enable_bpf_stats():
    """BPF_ENABLE_STATS: run time counted while the returned fd is open, whatever other tools do
    with the kernel.bpf_stats_enabled sysctl meanwhile. -1 if refused."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(8)  # union bpf_attr { struct { __u32 type; } enable_stats; }: RUN_TIME = 0
    return libc.syscall(321, 32, attr, 8)  # __NR_bpf, BPF_ENABLE_STATS


def bpf_prog_stats(prog_ids):
    """{name: (run_cnt, run_time_ns)} of the given BPF program ids (with BPF stats enabled)."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True)
    stats = {}
    for p in json.loads(out.stdout or "[]"):
        if p["id"] in prog_ids:
            n, t = stats.get(p.get("name", "?"), (0, 0))
            stats[p.get("name", "?")] = (n + p.get("run_cnt", 0), t + p.get("run_time_ns", 0))
    return stats


def tool_prog_ids(pid):
    """Ids of the BPF programs a process holds (its fds)."""
    ids = set()
    for fd in os.listdir("/proc/%d/fdinfo" % pid):
        try:
            m = re.search(r"prog_id:\s+(\d+)", open("/proc/%d/fdinfo/%s" % (pid, fd)).read())
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    return ids


def bpf_ns(pid):
    """Total BPF run time (ns) of the programs pid holds, or 0 when it holds none."""
    try:
        return sum(t for _, t in bpf_prog_stats(tool_prog_ids(pid)).values())
    except OSError:
        return 0


def cpu_seconds(pid):
    """CPU time of all of pid's threads, in seconds, to the nanosecond (schedstat), not the tick."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            total += int(open("/proc/%d/task/%s/schedstat" % (pid, tid)).read().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def pg_cluster_start(d, prefix=(), preexec_fn=None):
    """scripts/pg-cluster.sh's cluster in d, started (under prefix, e.g. taskset's, and
    preexec_fn): its client environment (PGHOST, PGPORT, ...)."""
    pgc = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "pg-cluster.sh")
    subprocess.run(list(prefix) + [pgc, "start", d], check=True, stdout=subprocess.DEVNULL, preexec_fn=preexec_fn)
    out = subprocess.run([pgc, "env", d], check=True, capture_output=True, text=True).stdout
    env = {}
    for word in out.replace("export ", " ").split():
        if "=" in word:
            k, v = word.split("=", 1)
            env[k] = v.strip("'\"")
    return env
