#!/usr/bin/env python3
"""The command line as a user meets it: bad input refused at start with a clear message and a
non-zero exit, output paths checked before tracing, write errors reported with their cause, and
the outputs that take no database (--json's profile, --pprof read by go tool pprof).

Each case states the exit status and the message it expects; docs/RELIABILITY.md lists them.
"""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TOOL, log, record, skip, summary, start  # noqa: E402

BUSY = """
import threading, time
def hot(n):
    s = 0
    for i in range(n):
        s += i * i
    return s
def cold(n):
    return sum(range(n))
def worker():
    while True:
        hot(20000)
        cold(2000)
threading.Thread(target=worker, daemon=True, name="Worker-0").start()
time.sleep(60)
"""


class Target:
    """A CPU-busy Python process with a second thread, killed at the end."""

    def __init__(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", "-c", BUSY])
        self.pid = self.proc.pid
        deadline = time.time() + 10
        while time.time() < deadline and len(os.listdir("/proc/%d/task" % self.pid)) < 2:
            time.sleep(0.05)
        time.sleep(0.2)

    def thread(self):
        return int([t for t in os.listdir("/proc/%d/task" % self.pid) if int(t) != self.pid][0])

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def run(args, env=None, timeout=60, stdout=subprocess.PIPE):
    t0 = time.time()
    p = subprocess.run([TOOL] + args, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=timeout,
                       env=dict(os.environ, **(env or {})))
    return p, time.time() - t0


def expect(name, p, code, message, took=None, within=None):
    ok = p.returncode == code and message in p.stderr
    detail = "exit %d, stderr %r" % (p.returncode, p.stderr[-400:])
    if within is not None:
        ok = ok and took < within
        detail += ", %.1f s" % took
    return record(name, ok, detail)


def case_bad_input(t, tmp):
    p, _ = run(["-p", str(t.pid), "-d", "nan"])
    expect("bad input: -d nan refused", p, 64, "invalid duration: 'nan'")
    p, _ = run(["-p", str(t.pid), "-d", "inf"])
    expect("bad input: -d inf refused", p, 64, "invalid duration: 'inf'")
    p, _ = run(["-p", str(t.pid), "--slow-ms", "5"])
    expect("bad input: --slow-ms without --slow-log refused", p, 64, "--slow-ms needs --slow-log")
    p, _ = run(["-p", str(t.pid), "--no-samples", "--flame", os.path.join(tmp, "x.svg")])
    expect("bad input: --no-samples with a flame graph refused", p, 64, "--no-samples excludes")
    p, _ = run(["-p", str(t.pid), "-d", "1"], env={"PYTRACE_MAX_PROCS": "abc"})
    expect("bad input: invalid PYTRACE_MAX_PROCS refused", p, 2, "invalid PYTRACE_MAX_PROCS 'abc'")
    p, _ = run(["-p", str(t.pid), "-d", "1"], env={"PYTRACE_HTTP_HOOK": "kprobe"})
    expect("bad input: invalid PYTRACE_HTTP_HOOK refused", p, 2, "invalid PYTRACE_HTTP_HOOK 'kprobe'")
    p, _ = run(["-p", str(t.pid), "-d", "1"], env={"PYTRACE_UPROBES": "fast"})
    expect("bad input: invalid PYTRACE_UPROBES refused", p, 2, "invalid PYTRACE_UPROBES 'fast'")


def case_outputs_at_start(t, tmp):
    p, took = run(["-p", str(t.pid), "-d", "60", "--flame", "/nonexistent/dir/f.svg"])
    expect("output: missing directory refused at start, not after the trace", p, 1,
           "--flame /nonexistent/dir/f.svg: cannot write: No such file or directory", took, 10)
    p, took = run(["-p", str(t.pid), "-d", "60", "--json", tmp])
    expect("output: a directory as --json refused at start", p, 1, "is a directory", took, 10)
    p, took = run(["-p", str(t.pid), "-d", "60", "--flame", ""])
    expect("output: an empty file name refused", p, 1, "--flame: empty file name", took, 10)
    same = os.path.join(tmp, "same.out")
    p, took = run(["-p", str(t.pid), "-d", "60", "--flame", same, "--json", same])
    expect("output: two outputs on one path refused", p, 1, "name the same file", took, 10)
    record("output: the shared path was not written", not os.path.exists(same))
    real = os.path.join(tmp, "real.out")
    link = os.path.join(tmp, "link.out")
    open(real, "w").close()
    os.symlink(real, link)
    p, took = run(["-p", str(t.pid), "-d", "60", "--json", real, "--slow-log", link])
    expect("output: two names of one file (same inode) refused", p, 1, "name the same file", took, 10)
    # Root writes through permissions: a read-only bind mount is what stops it.
    ro = os.path.join(tmp, "ro")
    os.mkdir(ro)
    open(os.path.join(ro, "old.folded"), "w").close()
    if subprocess.run(["mount", "--bind", "-o", "ro", ro, ro]).returncode != 0 or \
            subprocess.run(["mount", "-o", "remount,bind,ro", ro]).returncode != 0:
        skip("output: a file on a read-only file system refused at start", "cannot make a read-only bind mount here")
        return
    try:
        for name in ("old.folded", "new.folded"):
            path = os.path.join(ro, name)
            p, took = run(["-p", str(t.pid), "-d", "60", "--collapsed", path])
            expect("output: %s on a read-only file system refused at start" % ("an existing file" if name[0] == "o"
                   else "a new file"), p, 1, "--collapsed %s: cannot write: Read-only file system" % path, took, 10)
    finally:
        subprocess.run(["umount", ro])


def case_write_errors(t, tmp):
    p, _ = run(["-p", str(t.pid), "-d", "1", "--no-sql", "--no-http"], stdout=open("/dev/full", "w"))
    expect("write error: the report to a full stdout fails with its cause", p, 1,
           "writing the report to standard output failed: No space left on device")


def case_thread_id(t, tmp):
    tid = t.thread()
    folded = os.path.join(tmp, "thread.folded")
    p, _ = run(["-p", str(tid), "-d", "2", "--no-sql", "--no-http", "--collapsed", folded])
    ok = p.returncode == 0 and "pid %d is a thread of process %d: tracing process %d" % (tid, t.pid, t.pid) in p.stderr
    record("thread id as --pid: its process is traced, and it says so", ok, p.stderr[-400:])
    text = open(folded).read() if os.path.exists(folded) else ""
    record("thread id as --pid: the process's stacks are sampled", "hot (" in text, text[:300])


def case_json_profile(t, tmp):
    out = os.path.join(tmp, "r.json")
    p, _ = run(["-p", str(t.pid), "-d", "2", "--json", out])
    try:
        js = json.load(open(out))
    except (OSError, ValueError) as e:
        record("--json alone: a JSON report", False, "%s; %s" % (e, p.stderr[-300:]))
        return
    taken = js.get("samples", {}).get("taken", 0)
    prof = js.get("profile", {})
    top = prof.get("top_self") or [{}]
    record("--json alone samples CPU (samples.taken > 0)", p.returncode == 0 and taken > 0, str(js.get("samples")))
    record("--json alone: the profile's top self function is the hot one",
           top[0].get("function", "").startswith("hot ("), json.dumps(prof)[:400])
    stacks = prof.get("hottest_stacks") or [{}]
    record("--json alone: hottest stacks with frames root first",
           stacks[0].get("frames", [""])[-1].startswith("hot (") and prof.get("unit") == "samples",
           json.dumps(stacks[:1])[:400])
    out2 = os.path.join(tmp, "r2.json")
    p, _ = run(["-p", str(t.pid), "-d", "1", "--json", out2, "--no-samples"])
    js = json.load(open(out2)) if os.path.exists(out2) else {}
    record("--no-samples: no sampling and no profile section",
           p.returncode == 0 and js.get("samples", {}).get("taken") == 0 and "profile" not in js, p.stderr[-300:])


def case_pprof(t, tmp):
    go = shutil.which("go")
    pb = os.path.join(tmp, "p.pb.gz")
    folded = os.path.join(tmp, "p.folded")
    p, _ = run(["-p", str(t.pid), "-d", "2", "--no-sql", "--no-http", "--pprof", pb, "--collapsed", folded])
    record("--pprof: written, gzipped", p.returncode == 0 and os.path.exists(pb) and
           open(pb, "rb").read(2) == b"\x1f\x8b", p.stderr[-300:])
    if not go:
        skip("--pprof: go tool pprof reads it", "golang-go is not installed (scripts/install-deps.sh installs it)")
        return
    home = os.path.join(tmp, "gohome")
    os.makedirs(home, exist_ok=True)
    env = dict(os.environ, HOME=home, GOCACHE=os.path.join(home, "cache"), GOPATH=os.path.join(home, "path"),
               GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    r = subprocess.run([go, "tool", "pprof", "-top", pb], capture_output=True, text=True, env=env, timeout=120)
    rows = [l.split() for l in r.stdout.splitlines() if l.strip() and l.split()[0].endswith(("s", "ms", "us"))
            and len(l.split()) >= 6]
    top = rows[0][5] if rows else None
    # the folded file's hottest leaf
    leaves = {}
    for line in open(folded):
        stack, _, n = line.rstrip("\n").rpartition(" ")
        leaf = stack.split(";")[-1].split(" (")[0]
        leaves[leaf] = leaves.get(leaf, 0) + int(n)
    want = max(leaves, key=leaves.get) if leaves else None
    record("--pprof: go tool pprof -top reads it; its top function is the flame graph's (%s)" % want,
           r.returncode == 0 and top is not None and top == want, "top %r; %s %s" % (top, r.stdout[:400], r.stderr[:300]))


def main():
    args, status = start()
    if status is not None:
        return status
    tmp = tempfile.mkdtemp(prefix="pytrace-cli.")
    t = Target()
    try:
        for name, fn in [("bad", case_bad_input), ("outputs", case_outputs_at_start), ("write", case_write_errors),
                         ("thread", case_thread_id), ("json", case_json_profile), ("pprof", case_pprof)]:
            if args.k in name:
                fn(t, tmp)
    finally:
        t.stop()
        subprocess.run(["chmod", "-R", "u+w", tmp])
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
