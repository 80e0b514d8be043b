#!/usr/bin/python3
"""`pytrace-bpf [options] -- COMMAND` and Python thread names, on every interpreter the flame
suite runs on (Debian's, pyenv's, and Debian unstable's 3.13-3.15 in their root, started
through chroot):

- the command's first half second is in the profile (its function that runs only then), its
  exit status is the tool's (3), a child it forks is followed;
- with --threads, ten named threads that work and sleep by turns, one with a non-ASCII name
  running a function with a non-ASCII name, and one renamed after its start are named by
  threading.Thread.name in the folded stacks, speedscope's profile names and the JSON, the main
  thread is MainThread;
- held at its start: with the tool itself stopped as the command execs its interpreter (so it
  cannot look at it yet), the interpreter waits at its first module load and its first half
  second is still in the profile (Debian's 3.11, the oldest and the newest interpreter); the
  same when the shell starts the interpreter as a child (Debian's 3.11);
- SIGINT sent to the tool reaches the command (KeyboardInterrupt, its exit status 5);
- once: run by root with SUDO_UID/SUDO_GID, the command runs as that user (Debian's python3:
  pyenv's live under /root and sid's need chroot, which that user cannot run); bad
  combinations, a command that cannot be run (127), --duration ending the command, and the
  first statement a command sends to a private PostgreSQL in the report; a command that lives a few
  hundredths of a second has its frames named, and so does one's last 30 ms in code new to it.

Run as root from the repository: tests/integration/test_launch.py [-k SUBSTRING] [-v]
Ends with a line "N passed, N failed"; exits non-zero if anything failed.
"""
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import TOOL, WORKLOADS, find_interpreters, log, record  # noqa: E402

ROOT_RE = re.compile(r"^\[thread (?P<name>.*) tid=(?P<tid>\d+)(?P<main> main)?\]$")
WORKERS = ["Worker-%d" % i for i in range(10)]
ODD = "Wörker-ü-€-𝄞"


def run(argv, env=None, timeout=60):
    e = dict(os.environ)
    e.update(env or {})
    out = subprocess.run(argv, capture_output=True, text=True, errors="replace", env=e, timeout=timeout)
    harness.check_sanitizer(" ".join(argv)[:120], out.returncode, out.stderr)
    return out


def read_folded(path):
    stacks = []
    if not os.path.exists(path):
        return stacks
    with open(path, encoding="utf-8") as f:
        for line in f:
            frames, _, count = line.rstrip("\n").rpartition(" ")
            if frames:
                stacks.append((frames.split(";"), int(count)))
    return stacks


def fname(frame):
    return frame.split(" (", 1)[0]


def check_launch(it, tmp):
    tag = it.label
    folded, speed, js = (os.path.join(tmp, tag + ext) for ext in (".folded", ".speedscope.json", ".json"))
    # the SQL and HTTP programs take seconds to load: with them on one interpreter, without elsewhere
    lean = [] if it.label.startswith("debian") else ["--no-sql", "--no-http"]
    t0 = time.monotonic()
    out = run([TOOL, "--threads", "--collapsed", folded, "--speedscope", speed, "--json", js] + lean + ["--"] +
              it.argv(it.workload("launched.py")))
    took = time.monotonic() - t0
    if not record(tag + ": exits with the command's status (3)", out.returncode == 3,
                  "exit %d after %.1f s: %s" % (out.returncode, took, out.stderr[-1500:])):
        return
    stacks = read_folded(folded)
    total = sum(c for _, c in stacks)
    early = sum(c for f, c in stacks if any(fname(x) == "early_phase" for x in f))
    # 0.5 s at 99 Hz is ~50 samples on an idle machine; an attach after the start would see none
    summary = "; ".join(l for l in out.stderr.splitlines() if "samples" in l or "process" in l)
    record(tag + ": the command's first half second is sampled (early_phase)", early >= 8,
           "%d early_phase samples of %d; roots %s; %s" %
           (early, total, collections.Counter(f[1] if len(f) > 1 else f[0] for f, c in stacks).most_common(4), summary))
    child = sum(c for f, c in stacks if any(fname(x) == "child_work" for x in f))
    # it shares two CPUs with its parent's twelve threads: a few samples, none if not followed
    record(tag + ": the child it forks is followed", child >= 3, "%d child_work samples" % child)

    roots = collections.Counter()
    main_ok = False
    named = unnamed = 0
    odd_func = 0
    for f, c in stacks:
        m = ROOT_RE.match(f[0])
        if not m:
            continue
        roots[m.group("name")] += c
        if m.group("main") and m.group("name") == "MainThread" and any(fname(x) == "main_work" for x in f):
            main_ok = True
        if any(fname(x) in ("worker", "fünf_ñame") for x in f):
            if m.group("name") in WORKERS or m.group("name") in (ODD, "before-rename", "after-rename"):
                named += c
            else:
                unnamed += c
        if m.group("name") == ODD and any(fname(x) == "fünf_ñame" for x in f):
            odd_func += c
    missing = [w for w in WORKERS if w not in roots]
    record(tag + ": ten named threads named in the folded stacks (Worker-0..9)", not missing,
           "missing %s; roots %s" % (missing, dict(roots.most_common(20))))
    record(tag + ": the main thread is MainThread", main_ok, "roots %s" % dict(roots.most_common(20)))
    record(tag + ": a non-ASCII thread name, and a non-ASCII function under it", odd_func >= 3,
           "%d samples of fünf_ñame under [thread %s]; roots %s" % (odd_func, ODD, dict(roots.most_common(20))))
    record(tag + ": threads' samples carry their Python names (>= 90%)", named and named >= 0.9 * (named + unnamed),
           "%d named, %d under the kernel's name" % (named, unnamed))
    record(tag + ": a thread renamed after its start shows its new name", roots.get("after-rename", 0) > 0,
           "roots %s" % dict(roots.most_common(20)))
    try:
        with open(speed, encoding="utf-8") as f:
            names = [p["name"] for p in json.load(f)["profiles"]]
        want = WORKERS + ["MainThread", ODD]
        miss = [w for w in want if not any(n.startswith(w + " tid=") for n in names)]
        record(tag + ": speedscope has a profile per thread, by its name", not miss,
               "missing %s; profiles %s" % (miss, names[:20]))
    except (OSError, ValueError, KeyError) as e:
        record(tag + ": speedscope has a profile per thread, by its name", False, repr(e))
    try:
        with open(js, encoding="utf-8") as f:
            th = json.load(f)["threads"]
        reg = {t["name"] for t in th["python_threads"]}
        seen = {t["name"] for t in th["named"] if t["source"] == "threading"}
        want = set(WORKERS) | {"MainThread", ODD, "after-rename"}
        record(tag + ": the JSON names every thread (threading's registry and the stacks)",
               want <= reg and set(WORKERS) <= seen,
               "registry lacks %s, stacks lack %s" % (sorted(want - reg), sorted(set(WORKERS) - seen)))
    except (OSError, ValueError, KeyError) as e:
        record(tag + ": the JSON names every thread", False, repr(e))


def check_held(it, tmp, child=False):
    """The tool stopped (SIGSTOP, by the shell it starts) before the command's interpreter is
    exec'd by that shell (or, child: started by it as a child it waits for): without the hold,
    the interpreter would run its early phase unseen."""
    folded = os.path.join(tmp, it.label + ("-held-child" if child else "-held") + ".folded")
    script = 'kill -STOP $PPID; "$@"; exit $?' if child else 'kill -STOP $PPID; exec "$@"'
    argv = ([TOOL, "--no-sql", "--no-http", "--collapsed", folded, "--", "sh", "-c", script, "sh"] +
            it.argv(it.workload("launched.py")))
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                         env=dict(os.environ, PT_SECONDS="0.3"))
    # the tool stops itself once everything is attached; the command must wait for it
    stopped = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        with open("/proc/%d/stat" % p.pid) as f:
            if f.read().rpartition(")")[2].split()[0] == "T":
                stopped = True
                break
        time.sleep(0.05)
    time.sleep(1.0)
    p.send_signal(signal.SIGCONT)
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    harness.check_sanitizer("pytrace-bpf -- (held)", p.returncode, err)
    stacks = read_folded(folded)
    early = sum(c for f, c in stacks if any(fname(x) == "early_phase" for x in f))
    record(it.label + ": held at its first module load while the tool cannot look at it yet (early_phase sampled)%s" %
           (", started as the shell's child" if child else ""),
           stopped and p.returncode == 3 and early >= 8,
           "tool stopped %s, exit %s, %d early_phase samples of %d; %s" %
           (stopped, p.returncode, early, sum(c for _, c in stacks), err[-800:]))


def check_sigint(it, tmp):
    """SIGINT to the tool reaches the command, which handles it; its status is the tool's."""
    folded = os.path.join(tmp, it.label + "-int.folded")
    p = subprocess.Popen([TOOL, "--no-sql", "--no-http", "--collapsed", folded, "--"] + it.argv(it.workload("launched.py")),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                         env=dict(os.environ, PT_MODE="sigint"))
    try:
        ready = p.stdout.readline()
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    harness.check_sanitizer("pytrace-bpf -- (SIGINT)", p.returncode, err)
    record(it.label + ": SIGINT is passed on (KeyboardInterrupt, status 5)",
           ready.startswith("ready") and "KeyboardInterrupt" in out and p.returncode == 5,
           "ready %r, exit %s, stdout %r, stderr %s" % (ready, p.returncode, out[-300:], err[-800:]))


def check_once(tmp):
    script = os.path.join(WORKLOADS, "launched.py")
    folded = os.path.join(tmp, "once.folded")
    # SUDO_UID: the command runs as that user, with that group and no root groups
    out = run([TOOL, "--no-sql", "--no-http", "--collapsed", folded, "--", "/usr/bin/python3", script],
              env={"SUDO_UID": "65534", "SUDO_GID": "65534", "PT_MODE": "id"})
    m = re.search(r"^id (\d+) (\d+) ?(.*)$", out.stdout, re.M)
    record("run by root with SUDO_UID/SUDO_GID: the command runs as that user",
           out.returncode == 0 and m and m.group(1) == "65534" and m.group(2) == "65534" and
           "0" not in m.group(3).split() and "as SUDO_UID" in out.stderr,
           "exit %d, stdout %r, stderr %s" % (out.returncode, out.stdout, out.stderr[-500:]))
    out = run([TOOL, "--no-sql", "--no-http", "--collapsed", folded, "--", "/usr/bin/python3", script],
              env={"PT_MODE": "id"})
    record("without SUDO_UID the command keeps root", out.returncode == 0 and out.stdout.startswith("id 0 0"),
           "exit %d, stdout %r" % (out.returncode, out.stdout))
    # --duration: tracing stops, the outputs are written, the command is ended (py-spy's way)
    t0 = time.monotonic()
    out = run([TOOL, "--no-sql", "--no-http", "-d", "1", "--collapsed", folded, "--", "/usr/bin/python3", script],
              env={"PT_MODE": "sigint"})
    took = time.monotonic() - t0
    record("--duration with a command: outputs written, the command ended (SIGTERM: 143)",
           out.returncode == 128 + signal.SIGTERM and took < 10 and os.path.getsize(folded) > 0 and
           "ending /usr/bin/python3" in out.stderr,
           "exit %d after %.1f s: %s" % (out.returncode, took, out.stderr[-500:]))
    # a command that cannot be run: the shell's 127, with the reason
    out = run([TOOL, "--no-sql", "--no-http", "--collapsed", folded, "--", "/nonexistent/pytrace-no-such-command"])
    record("a command that does not exist: 127 and why", out.returncode == 127 and
           "cannot run /nonexistent/pytrace-no-such-command" in out.stderr and "No such file" in out.stderr,
           "exit %d: %s" % (out.returncode, out.stderr[-500:]))
    # bad combinations, refused before anything starts
    for argv, want in ((["--pid", "1", "--", "true"], "excludes --pid"),
                       (["--all", "--", "true"], "excludes --all"),
                       (["--prometheus", "0", "--", "true"], "excludes --prometheus"),
                       (["--"], "nothing after --"),
                       (["python3", "x.py"], "a command to start goes after --")):
        out = run([TOOL] + argv, timeout=20)
        record("refused: pytrace-bpf %s" % " ".join(argv), out.returncode != 0 and want in out.stderr,
               "exit %d: %s" % (out.returncode, out.stderr[-300:]))


FIRST_SQL = """
import psycopg2
conn = psycopg2.connect("")
cur = conn.cursor()
cur.execute("SELECT 40 + 2 AS first_statement")
print("got", cur.fetchone()[0], flush=True)
"""


def check_first_sql(tmp):
    """The statement a program sends first, before anything else, is in the report: the tool was
    attached before the program ran (with --pid it could not be)."""
    if not harness.Cluster.installed():
        record("the first statement of a command: PostgreSQL 15 is installed", False)
        return
    js = os.path.join(tmp, "sql.json")
    cluster = harness.Cluster(prefix="pytrace-launch-", ports=(54600, 54630))
    try:
        cluster.start()
        out = run([TOOL, "--json", js, "--", "/usr/bin/python3", "-c", FIRST_SQL], env=cluster.client_env())
        try:
            with open(js) as f:
                rep = json.load(f)
        except (OSError, ValueError) as e:
            rep = {"error": repr(e)}
        first = [q for q in rep.get("queries", []) if "first_statement" in q.get("pattern", "")]
        pgss = sum(c for q, c in cluster.pgss(toplevel_only=True) if "first_statement" in q)
        record("the first statement a command sends is in the report (the wire, from its start)",
               out.returncode == 0 and "got 42" in out.stdout and len(first) == 1 and
               first[0].get("count", first[0].get("calls")) == 1 == pgss,
               "exit %d, stdout %r, queries %s, pg_stat_statements %d; %s" %
               (out.returncode, out.stdout, json.dumps(rep.get("queries", []))[:600], pgss, out.stderr[-600:]))
    finally:
        cluster.stop()


SHORT = """
import sys
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
def main():
    fib(int(sys.argv[1]))
main()
"""


LATE = """
import time
def spin(t):
    end = time.perf_counter() + t
    while time.perf_counter() < end:
        pass
def deep(n):
    if n:
        return deep(n - 1)
    spin(0.03)
spin(0.3)
deep(30)
"""


REUSED = """
import time


def run(i):
    src = "def f_%03d():\\n    end = time.perf_counter() + 0.12\\n    while time.perf_counter() < end:\\n        pass\\n" % i
    ns = {}
    exec(compile(src, "<generated>", "exec"), {"time": time}, ns)
    ns["f_%03d" % i]()


for i in range(12):
    run(i)
"""


def check_reused(tmp):
    """Twelve functions compiled by exec one after another, each run 120 ms and then freed: each
    new code object takes its predecessor's address, and on 3.11 its name's, line table's and
    tuples' addresses too (the same sizes, freed together), so only the name's length and hash
    tell them apart. The build before named them all after the first (1 or 2 names of 12, one
    with 95-143 samples); a function may take its predecessor's last samples (those of a batch the
    tool reads after it is gone)."""
    script = os.path.join(tmp, "reused.py")
    with open(script, "w") as f:
        f.write(REUSED)
    folded = os.path.join(tmp, "reused.folded")
    out = run([TOOL, "--collapsed", folded, "--no-sql", "--no-http", "--", "/usr/bin/python3", script])
    per = collections.Counter()
    for fr, c in read_folded(folded):
        names = [fname(x) for x in fr if re.match(r"f_\d{3}$", fname(x))]
        if names:
            per[names[-1]] += c
    record("code compiled at a freed code object's address is named by its own name (%d of 12 functions "
           "named, at most %d samples each)" % (len(per), max(per.values(), default=0)),
           out.returncode == 0 and len(per) >= 10 and max(per.values(), default=99) <= 30,
           "exit %d; samples per name %s" % (out.returncode, sorted(per.items())))


def check_short(tmp):
    """A command that lives a few hundredths of a second: its frames are named although it is gone
    before the tool's next poll (its first samples wake the tool at once, which reads their code
    objects while it lives). Three runs; the build before named none of their frames."""
    script = os.path.join(tmp, "short.py")
    with open(script, "w") as f:
        f.write(SHORT)
    total = unknown = fib = 0
    runs = []
    for i in range(3):
        folded = os.path.join(tmp, "short-%d.folded" % i)
        out = run([TOOL, "--collapsed", folded, "--", "/usr/bin/python3", script, "28"])
        stacks = read_folded(folded)
        # the script's own samples (under its <module>): the interpreter's start-up before it
        # runs code of modules imported and freed at once, which may stay [unknown] (README,
        # Limits), and a run has two or three samples at 99 Hz: one of those would weigh a third
        mine = [(fr, c) for fr, c in stacks if fr and fr[0].startswith("<module> (") and fr[0].find(script) > 0]
        n = sum(c for _, c in mine)
        u = sum(c for fr, c in mine if "[unknown]" in fr)
        k = sum(c for fr, c in mine if any(fname(x) == "fib" for x in fr))
        runs.append((out.returncode, sum(c for _, c in stacks), n, u, k,
                     re.findall(r"exited .* after [0-9.]+ s", out.stderr)))
        total, unknown, fib = total + n, unknown + u, fib + k
    # one sample taken as the process exits may find its code freed (README, Limits)
    record("a command of a few hundredths of a second: its frames named (%d of its %d samples in its own code "
           "with an unknown frame, %d in fib)" % (unknown, total, fib),
           all(r[0] == 0 for r in runs) and total >= 4 and unknown <= 1 and fib * 2 >= total,
           "runs (exit, samples, in its code, with unknown frames, in fib, lifetime): %s" % runs)
    # its last 30 ms run code it never ran before (deep), after its first 16 samples: a sample
    # whose code is new wakes the tool at once (without, they are named only if the tool's poll, every
    # 100 ms, falls in those 30 ms)
    script = os.path.join(tmp, "late.py")
    with open(script, "w") as f:
        f.write(LATE)
    # the tail's samples: those under the module's call of deep() (its interpreter's start-up may
    # leave an [unknown] of its own: site's module code, freed before the tool reads it)
    call = "late.py:%d)" % (LATE.splitlines().index("deep(30)") + 1)
    unknown = deep = tail = 0
    runs = []
    for i in range(5):
        folded = os.path.join(tmp, "late-%d.folded" % i)
        out = run([TOOL, "--collapsed", folded, "--", "/usr/bin/python3", script])
        stacks = [(fr, c) for fr, c in read_folded(folded) if fr and fr[0].endswith(call)]
        u = sum(c for fr, c in stacks if "[unknown]" in fr)
        k = sum(c for fr, c in stacks if any(fname(x) == "deep" for x in fr))
        runs.append((out.returncode, sum(c for _, c in stacks), u, k))
        unknown, deep, tail = unknown + u, deep + k, tail + sum(c for _, c in stacks)
    record("a command's last 30 ms, in code it ran only then, named in 5 runs (%d of its %d samples in deep, "
           "%d with an unknown frame)" % (deep, tail, unknown),
           all(r[0] == 0 for r in runs) and deep >= 5 and unknown <= 1,
           "runs (exit, samples of the tail, with unknown frames, in deep): %s" % runs)


def main():
    args, status = harness.start("run only interpreters whose label contains this (comma-separated)")
    if status is not None:
        return status
    interps = [i for i in find_interpreters() if any(k in i.label for k in args.k.split(","))]
    log("Interpreters: " + ", ".join("%s (%d.%d)" % (i.label, *i.version) for i in interps))
    tmp = tempfile.mkdtemp(prefix="pytrace-launch-")
    os.chmod(tmp, 0o755)
    try:
        for it in interps:
            try:
                check_launch(it, tmp)
                if it.label.startswith("debian") or it.version == min(i.version for i in interps) or \
                        it.version == max(i.version for i in interps):
                    check_held(it, tmp)
                if it.label.startswith("debian"):
                    check_held(it, tmp, child=True)
                check_sigint(it, tmp)
            except Exception as e:  # noqa: BLE001 - one interpreter's failure must not hide the rest
                record(it.label + ": ran", False, repr(e))
        if not args.k or "once" in args.k.split(","):  # -k once: these alone
            check_once(tmp)
            check_short(tmp)
            check_reused(tmp)
            check_first_sql(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return harness.summary()


if __name__ == "__main__":
    sys.exit(main())
