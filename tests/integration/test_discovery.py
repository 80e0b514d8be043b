#!/usr/bin/python3
"""Integration tests of host-wide mode (--all, --comm, --exclude-comm, --cgroup): a Python process
started after the tool is followed within 1 s and forgotten when it exits; non-Python processes
are left alone (never in the BPF side's `tracked` map); the filters narrow; processes in another
mount namespace (an interpreter binary that exists only on a private tmpfs) and in a chroot (Debian
unstable's python3.13) are followed and their samples named; the flame graph's and folded
stacks' root frames are the services (OTEL_SERVICE_NAME).

The tool's -v lines "[+T s mono M] pid P: following (service S, ...)" and "... pid P: forgotten
(...)" carry CLOCK_MONOTONIC (M), which Python's time.monotonic() reads too: latency is measured
against the moment the test started the process. Other Python processes on the host (other
suites) are followed too: every check is about the test's own pids.

Run as root from the repository: tests/integration/test_discovery.py [-k SUBSTRING] [-v]
Ends with a line "N passed, N failed"; exits non-zero if anything failed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import TOOL, log, record  # noqa: E402

SPIN = """
import sys, time
def burn():
    x = 0
    for i in range(100000):
        x += i
    return x
def main():
    while True:
        burn()
print("ready", flush=True)
main()
"""

FOLLOW_RE = re.compile(r"^\[\+[\d.]+s mono ([\d.]+)\] pid (\d+): (following|forgotten) \(([^)]*)\)")
PYENV_SHARED = None  # a pyenv interpreter whose interpreter lives in libpython*.so


class HostTracer(harness.Tracer):
    """harness.Tracer, waiting for host-wide mode's "Tracing every Python process" line."""

    def _read_err(self):
        for line in self.proc.stderr:
            self.err.append(line)
            if line.startswith("Tracing every Python process"):
                self.tracing.set()
        self.tracing.set()

    def events(self):
        """[(mono, pid, 'following'|'forgotten', detail)] so far."""
        out = []
        for line in list(self.err):
            m = FOLLOW_RE.match(line)
            if m:
                out.append((float(m.group(1)), int(m.group(2)), m.group(3), m.group(4)))
        return out

    def wait_event(self, pid, kind, timeout):
        """The first event of pid of this kind. A process the test starts is a fork of the test
        (a Python process, so followed as such) until it execs: "following" events of the fork
        ("forked from") are not the one looked for."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for e in self.events():
                if e[1] == pid and e[2] == kind and "forked from" not in e[3] and e[3] != "exec":
                    return e
            time.sleep(0.02)
        return None


def start_host(args):
    t = HostTracer(["-v"] + args)
    if not t.wait_tracing(60) or t.proc.poll() is not None:
        rc, out, err = t.finish(10)
        raise RuntimeError("the tool did not start (%s): %s" % (rc, err[-1500:]))
    return t


def spawn(argv, env=None, **kw):
    e = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    e.pop("OTEL_SERVICE_NAME", None)
    e.update(env or {})
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e, **kw)
    return p, t0


def kill(p):
    if p.poll() is None:
        p.kill()
    p.wait()


def tracked_pids():
    """Every pid in every BPF map named `tracked` on the host (bpftool)."""
    out = subprocess.run(["bpftool", "-j", "map", "dump", "name", "tracked"], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError("bpftool map dump failed: " + out.stderr[-300:])
    pids = set()
    data = json.loads(out.stdout or "[]")
    # one map: a list of entries; several: a list of {"name", "elements"}? bpftool gives entries either way
    stack = [data]
    while stack:
        d = stack.pop()
        if isinstance(d, list):
            stack.extend(d)
        elif isinstance(d, dict):
            if "key" in d and isinstance(d["key"], list):
                pids.add(int.from_bytes(bytes(int(b, 16) for b in d["key"]), "little"))
            elif "formatted" in d and isinstance(d["formatted"], dict) and "key" in d["formatted"]:
                pids.add(int(d["formatted"]["key"]))
            else:
                stack.extend(v for v in d.values() if isinstance(v, (list, dict)))
    return pids


def read_folded(path):
    stacks = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                frames, _, n = line.rpartition(" ")
                stacks.append((frames.split(";"), int(n)))
    return stacks


def find_pyenv_shared():
    root = harness.pyenv_root()
    vdir = os.path.join(root, "versions") if root else None
    if not vdir or not os.path.isdir(vdir):
        return None
    for name in sorted(os.listdir(vdir), key=harness._version_key, reverse=True):
        m = re.match(r"3\.(\d+)", name)
        if not m or int(m.group(1)) < 8:
            continue
        exe = os.path.join(vdir, name, "bin", "python3.%s" % m.group(1))
        ldd = subprocess.run(["ldd", exe], capture_output=True, text=True).stdout if os.path.exists(exe) else ""
        if "libpython" in ldd:
            return exe
    return None


def case_discovery(tmp):
    """Latency, exit, non-Python left alone, in one run of --all."""
    script = os.path.join(tmp, "spin.py")
    t = start_host(["--all", "-d", "60", "--json", os.path.join(tmp, "all.json")])
    procs = []
    try:
        # Debian's python3 (libpython linked in) and a pyenv one with a shared libpython
        interps = [("debian", "/usr/bin/python3")]
        shared = find_pyenv_shared()
        record("a pyenv interpreter with a shared libpython exists", shared is not None,
               "none under %s" % harness.pyenv_root())
        if shared:
            interps.append(("pyenv-shared", shared))
        for label, exe in interps:
            p, t0 = spawn([exe, script], env={"OTEL_SERVICE_NAME": "disc-" + label})
            procs.append(p)
            e = t.wait_event(p.pid, "following", 5)
            lat = e[0] - t0 if e else None
            record("%s: a Python started after the tool is followed within 1 s" % label,
                   e is not None and lat < 1.0, "latency %s s" % (("%.3f" % lat) if lat is not None else "never"))
            record("%s: its service is OTEL_SERVICE_NAME" % label, e is not None and "service disc-%s," % label in e[3],
                   e[3] if e else "")
            record("%s: it is in the tracked map" % label, p.pid in tracked_pids())
            # The verdict at exec races the loader mapping libpython (seen: 1 start in 10 missed,
            # CI of f23734e): start it again a few times.
            lats = []
            for _ in range(6):
                q, t0 = spawn([exe, script])
                e = t.wait_event(q.pid, "following", 5)
                lats.append(e[0] - t0 if e else None)
                kill(q)
            record("%s: 6 more starts, each followed within 1 s" % label,
                   all(x is not None and x < 1.0 for x in lats),
                   "latencies %s" % ", ".join("never" if x is None else "%.3f" % x for x in lats))
        # non-Python processes: a sleeper and a busy shell loop
        sl, _ = spawn(["sleep", "30"])
        sh, _ = spawn(["sh", "-c", "while :; do :; done"])
        procs += [sl, sh]
        time.sleep(1.0)
        # a non-Python process may sit in `tracked` only while the loader maps its libraries
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline and {sl.pid, sh.pid} & tracked_pids():
            time.sleep(0.1)
        left = {sl.pid, sh.pid} & tracked_pids()
        record("non-Python (sleep, a busy sh loop): not in the tracked map", not left, "still tracked: %s" % left)
        followed = [e for e in t.events() if e[1] in (sl.pid, sh.pid) and e[2] == "following"
                    and "forked from" not in e[3]]
        record("non-Python: never followed after their exec", not followed, str(followed))
        forks = {e[1] for e in t.events() if e[1] in (sl.pid, sh.pid) and "forked from" in e[3]}
        execd = {e[1] for e in t.events() if e[1] in (sl.pid, sh.pid) and e[3] == "exec"}
        record("non-Python: the test's forks that became them are forgotten at their exec", forks <= execd,
               "forks %s, forgotten at exec %s" % (forks, execd))
        # exit: the Python processes are forgotten, and their pids leave the tracked map
        for p in procs[:len(interps)]:
            kill(p)
            e = t.wait_event(p.pid, "forgotten", 3)
            record("pid of %s: forgotten when it exits" % p.args[0], e is not None and "exited" in e[3],
                   str(e))
            record("pid of %s: out of the tracked map after its exit" % p.args[0], p.pid not in tracked_pids())
        # the tool keeps running though nothing of ours is left
        time.sleep(0.5)
        record("host-wide: keeps running when the traced processes are gone", t.proc.poll() is None)
        # a later one is still found
        p, t0 = spawn(["/usr/bin/python3", script], env={"OTEL_SERVICE_NAME": "disc-late"})
        procs.append(p)
        e = t.wait_event(p.pid, "following", 5)
        record("a Python started after others exited is followed within 1 s",
               e is not None and e[0] - t0 < 1.0, str(e))
    finally:
        for p in procs:
            kill(p)
        rc, out, err = t.stop()
    record("--all: exits 0 on SIGINT", rc == 0, err[-800:])
    try:
        with open(os.path.join(tmp, "all.json")) as f:
            rep = json.load(f)
    except (OSError, ValueError) as ex:
        record("--all: JSON report written", False, str(ex))
        return
    fol = {x["pid"]: x for x in rep.get("processes", {}).get("followed", [])}
    ok = all(p.pid in fol for p in procs if p.args[0] != "sleep" and p.args[0] != "sh")
    record("JSON: processes.followed lists the Python processes with their services", ok and
           fol[procs[0].pid]["service"] == "disc-debian" and fol[procs[0].pid]["python"] == "3.11", str(fol)[:600])
    record("JSON: non-Python processes are not listed", procs[-3].pid not in fol and procs[-2].pid not in fol)
    names = {s["name"] for s in rep["processes"].get("services", [])}
    record("JSON: services lists disc-debian and disc-late", {"disc-debian", "disc-late"} <= names, str(names))
    record("text report: the processes followed", "Python processes followed:" in out and "disc-debian" in out,
           out[:500])


def copy_python(tmp, name):
    path = os.path.join(tmp, name)
    shutil.copy("/usr/bin/python3.11", path)
    return path


def case_filters(tmp):
    script = os.path.join(tmp, "spin.py")
    keep, drop = copy_python(tmp, "disckeep"), copy_python(tmp, "discdrop")
    for args, label in ((["--comm", "disckeep", "--comm", "nosuchcomm"], "--comm"),
                        (["--all", "--exclude-comm", "discdrop"], "--exclude-comm")):
        t = start_host(args + ["-d", "30"])
        procs = []
        try:
            a, _ = spawn([keep, script])
            b, _ = spawn([drop, script])
            procs = [a, b]
            ea = t.wait_event(a.pid, "following", 3)
            time.sleep(0.5)
            eb = [e for e in t.events() if e[1] == b.pid and e[2] == "following" and "forked from" not in e[3]]
            record("%s: the matching process is followed" % label, ea is not None)
            record("%s: the other one is not" % label, not eb and b.pid not in tracked_pids(), str(eb))
        finally:
            for p in procs:
                kill(p)
            rc, _, err = t.stop()
        record("%s: exits 0" % label, rc == 0, err[-500:])

    # --cgroup: a cgroup made for the test, one Python moved into it, one outside; under the v2
    # hierarchy, which is /sys/fs/cgroup/unified on a hybrid host
    v2 = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if " - cgroup2 " in line:
                v2 = line.split()[4]
                break
    record("a cgroup v2 hierarchy is mounted", v2 is not None)
    cg = os.path.join(v2 or "/sys/fs/cgroup", "pytrace-disc-%d" % os.getpid())
    os.makedirs(cg, exist_ok=True)
    procs = []
    try:
        t = start_host(["--cgroup", os.path.basename(cg), "-d", "30"])
        try:
            inside, _ = spawn(["sh", "-c", 'echo $$ > %s/cgroup.procs && exec /usr/bin/python3 %s' % (cg, script)])
            outside, _ = spawn(["/usr/bin/python3", script])
            procs = [inside, outside]
            ei = t.wait_event(inside.pid, "following", 3)
            time.sleep(0.5)
            eo = [e for e in t.events() if e[1] == outside.pid and e[2] == "following" and "forked from" not in e[3]]
            record("--cgroup (relative): the process in the cgroup is followed", ei is not None)
            record("--cgroup: the process outside is not", not eo and outside.pid not in tracked_pids(), str(eo))
        finally:
            for p in procs:
                kill(p)
            rc, _, err = t.stop()
        record("--cgroup: exits 0", rc == 0, err[-500:])
        # absolute path, with a process already running in it at start (the /proc scan)
        inside, _ = spawn(["sh", "-c", 'echo $$ > %s/cgroup.procs && exec /usr/bin/python3 %s' % (cg, script)])
        procs = [inside]
        inside.stdout.readline()
        t = start_host(["--cgroup", cg, "-d", "30"])
        e = t.wait_event(inside.pid, "following", 2)
        kill(inside)
        rc, _, err = t.stop()
        record("--cgroup (absolute): a process running in it at start is found by the scan", e is not None,
               err[-800:])
    finally:
        for p in procs:
            kill(p)
        for _ in range(50):
            try:
                os.rmdir(cg)
                break
            except OSError:
                time.sleep(0.1)
    out = subprocess.run([TOOL, "--cgroup", "no/such/cgroup-xyz", "-d", "1"], capture_output=True, text=True)
    record("--cgroup that does not exist: refused, exit 2, clear message",
           out.returncode == 2 and "no such cgroup" in out.stderr, "%d %s" % (out.returncode, out.stderr))
    out = subprocess.run([TOOL, "-d", "1"], capture_output=True, text=True)
    record("no --pid and no --all: refused, the message names --all", out.returncode != 0 and "--all" in out.stderr,
           out.stderr)


def case_namespaces(tmp):
    script = os.path.join(tmp, "spin.py")
    mnt = os.path.join(tmp, "private")
    os.makedirs(mnt)
    folded = os.path.join(tmp, "ns.folded")
    t = start_host(["--all", "-d", "30", "--collapsed", folded])
    procs = []
    try:
        # the binary exists only on a tmpfs mounted inside the new mount namespace
        ns, t0 = spawn(["unshare", "--mount", "--fork", "--kill-child", "sh", "-c",
                        "mount -t tmpfs none %s && cp /usr/bin/python3.11 %s/pyns && cp %s %s/spin.py && "
                        "OTEL_SERVICE_NAME=disc-mntns exec %s/pyns %s/spin.py" % (mnt, mnt, script, mnt, mnt, mnt)])
        procs.append(ns)
        line = ns.stdout.readline()
        pid = None
        for e in t.events():
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and pid is None:
            for e in t.events():
                if "service disc-mntns" in e[3] and e[2] == "following":
                    pid = e[1]
            time.sleep(0.05)
        record("mount namespace: the process is followed", pid is not None, line + t.stderr()[-800:])
        record("mount namespace: its binary is not on the host's filesystem", not os.path.exists(os.path.join(mnt, "pyns")))
        # a chroot: Debian unstable's python3.13, whose binary exists only inside the root
        sid = harness.sid_root()
        record("chroot: the Debian unstable root is there", bool(sid))
        if sid:
            dest = os.path.join(sid, "tmp", "pytrace-disc-spin.py")
            shutil.copy(script, dest)
            ch, _ = spawn(["chroot", sid, "/usr/bin/python3.13", "/tmp/pytrace-disc-spin.py"],
                          env={"OTEL_SERVICE_NAME": "disc-chroot"})
            procs.append(ch)
            e = t.wait_event(ch.pid, "following", 5)
            if e is None:  # chroot execs the interpreter in the same process
                time.sleep(0.5)
            record("chroot: python3.13 (binary only in the root) is followed", e is not None and "disc-chroot" in e[3],
                   t.stderr()[-800:])
        time.sleep(2)
    finally:
        for p in procs:
            kill(p)
        rc, out, err = t.stop()
    record("namespaces: exits 0", rc == 0, err[-500:])
    try:
        st = read_folded(folded)
    except OSError as ex:
        record("namespaces: folded stacks written", False, str(ex))
        return
    for svc in ("disc-mntns",) + (("disc-chroot",) if sid else ()):
        mine = [f for f, n in st if f[0] == svc]
        named = [f for f in mine if any(fr.startswith("burn (") and "spin.py:" in fr for fr in f)]
        record("%s: samples named (burn in spin.py under the service root)" % svc, len(named) > 0,
               "%d stacks of %s, e.g. %s" % (len(mine), svc, mine[:2]))


def case_flame(tmp):
    script = os.path.join(tmp, "spin.py")
    svg, folded = os.path.join(tmp, "host.svg"), os.path.join(tmp, "host.folded")
    a, _ = spawn(["/usr/bin/python3", script], env={"OTEL_SERVICE_NAME": "svc-alpha"})
    a.stdout.readline()
    t = start_host(["--all", "-d", "4", "--flame", svg, "--collapsed", folded])
    b, _ = spawn(["/usr/bin/python3", script], env={"OTEL_SERVICE_NAME": "svc-beta"})
    rc, out, err = t.finish(60)
    kill(a)
    kill(b)
    record("--all -d 4 --flame: exits 0", rc == 0, err[-800:])
    try:
        st = read_folded(folded)
        with open(svg) as f:
            body = f.read()
    except OSError as ex:
        record("--all --flame: outputs written", False, str(ex))
        return
    roots = {f[0] for f, n in st}
    record("folded: both services are roots", {"svc-alpha", "svc-beta"} <= roots, str(sorted(roots))[:500])
    frame_like = [r for r in roots if re.search(r" \(.*:-?\d+\)$", r) or r.startswith("[thread")]
    record("folded: every root is a service, not a function or thread frame", not frame_like, str(frame_like))
    for svc in ("svc-alpha", "svc-beta"):
        record("folded: %s's stacks are service;<module>;main;burn" % svc,
               any(f[0] == svc and len(f) >= 4 and f[-1].startswith("burn (") for f, n in st),
               str([f for f, n in st if f[0] == svc][:2]))
        record("flame graph: %s is a frame" % svc, re.search(r"<title>%s \(" % svc, body) is not None)
    # with --threads, the service stays above the thread frame
    c, _ = spawn(["/usr/bin/python3", script], env={"OTEL_SERVICE_NAME": "svc-gamma"})
    c.stdout.readline()
    folded2 = os.path.join(tmp, "threads.folded")
    out2 = subprocess.run([TOOL, "--comm", "python3", "--threads", "-d", "2", "--collapsed", folded2],
                          capture_output=True, text=True, timeout=120)
    kill(c)
    st2 = read_folded(folded2) if os.path.exists(folded2) else []
    mine = [f for f, n in st2 if f[0] == "svc-gamma"]
    record("--threads: service root, then the thread frame", out2.returncode == 0 and mine and
           all(f[1].startswith("[thread ") for f in mine), out2.stderr[-500:] + str(mine[:2]))


def main():
    args, status = harness.start()
    if status is not None:
        return status
    tmp = tempfile.mkdtemp(prefix="pytrace-disc-")
    os.chmod(tmp, 0o755)
    with open(os.path.join(tmp, "spin.py"), "w") as f:
        f.write(SPIN)
    cases = [("discovery", case_discovery), ("filters", case_filters), ("namespaces", case_namespaces),
             ("flame", case_flame)]
    try:
        for name, fn in cases:
            if args.k and args.k not in name:
                continue
            log("== " + name)
            try:
                fn(tmp)
            except Exception as ex:  # a case that breaks is a failure, the others still run
                record(name + ": ran to the end", False, "%s: %s" % (type(ex).__name__, ex))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(1 for r in harness.results if r[1] == "PASS")
    failed = sum(1 for r in harness.results if r[1] != "PASS")
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
