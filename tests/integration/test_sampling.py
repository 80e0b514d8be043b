#!/usr/bin/python3
"""Integration tests of CPU sampling: real BPF programs in the real kernel, against real
interpreters (Debian's /usr/bin/python3, every pyenv version present, and Debian unstable's
python3.13/3.14/3.15 in a debootstrapped root traced from the host). The stacks' shape with
their lines (folded, SVG, speedscope), deep recursion, threads, forked children, agreement with
austin, the text report, a target that exits mid-trace, and bad input.

Run as root from the repository: tests/integration/test_sampling.py [-k SUBSTRING] [-v]
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
import xml.dom.minidom

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import TOOL, WORKLOADS, Interp, find_interpreters, log, marker_lines, record  # noqa: E402,F401

class Workload:
    def __init__(self, interp, script, env=None):
        e = dict(os.environ)
        e.update(env or {})
        e["PYTHONDONTWRITEBYTECODE"] = "1"
        self.proc = subprocess.Popen(interp.argv(interp.workload(script)), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=e)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            self.proc.kill()
            raise RuntimeError("workload %s did not start: %s" % (script, self.proc.stderr.read()[-500:]))
        self.pid = int(line[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def run_tool(argv, timeout=120, user=None):
    cmd = [TOOL] + argv
    if user:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups", "--inh-caps=-all"] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    harness.check_sanitizer("pytrace-bpf " + " ".join(argv)[:120], out.returncode, out.stderr)
    return out


def read_folded(path):
    stacks = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            frames, _, count = line.rpartition(" ")
            stacks.append((frames.split(";"), int(count)))
    return stacks


FRAME_RE = re.compile(r"^(?P<name>.*) \((?P<file>.*):(?P<line>-?\d+)\)$")


def parse_frame(frame):
    m = FRAME_RE.match(frame)
    if not m:
        return frame, None, None
    return m.group("name"), m.group("file"), int(m.group("line"))


def fname(frame):
    return parse_frame(frame)[0]


def check_shape(it, tmp):
    """The known-shape workload: right chain, right thread, real leaf lines, full recursion depth."""
    tag = it.label
    depth = 100
    marks = marker_lines(os.path.join(WORKLOADS, "shape.py"))
    folded, svg, speed, report = (os.path.join(tmp, tag + ext) for ext in (".folded", ".svg", ".json", "-r.json"))
    w = Workload(it, "shape.py", {"PT_DEPTH": str(depth)})
    try:
        time.sleep(0.3)
        out = run_tool(["--pid", str(w.pid), "--duration", "3", "--threads", "--collapsed", folded,
                        "--flame", svg, "--speedscope", speed, "--json", report, "-v"])
    finally:
        w.stop()
    if not record(tag + ": tool exits 0", out.returncode == 0, out.stderr[-2000:]):
        return
    stacks = read_folded(folded)
    total = sum(c for _, c in stacks)
    record(tag + ": samples collected", total >= 50, "%d samples" % total)

    # Main thread: outer -> middle -> leaf_hot, at the lines of the source.
    main_leaf = [(f, c) for f, c in stacks if f[0].endswith(" main]") and any(fname(x) == "leaf_hot" for x in f)]
    n_main = sum(c for _, c in main_leaf)
    record(tag + ": main thread samples in leaf_hot", n_main >= 10, "%d of %d" % (n_main, total))
    good = 0
    leaf_lines = collections.Counter()
    for f, c in main_leaf:
        names = [fname(x) for x in f]
        i = names.index("leaf_hot")
        chain_ok = i >= 3 and names[i - 2:i + 1] == ["outer", "middle", "leaf_hot"] and names[1] == "<module>"
        _, file_, lleaf = parse_frame(f[i])
        _, _, lmid = parse_frame(f[i - 1])
        _, _, lout = parse_frame(f[i - 2])
        leaf_lines[lleaf] += c
        if chain_ok and file_.endswith("shape.py") and lmid == marks["middle_call"] and \
                lout == marks["outer_call"] and lleaf in (marks["leaf_for"], marks["leaf_body"]):
            good += c
    record(tag + ": main chain <module>;outer;middle;leaf_hot with call lines and leaf lines",
           n_main and good >= 0.95 * n_main,
           "%d of %d samples match; leaf lines seen %s (expected %d/%d)" %
           (good, n_main, dict(leaf_lines), marks["leaf_for"], marks["leaf_body"]))

    # Thread "deep": full recursion, on another thread, ending in spin().
    deep = [(f, c) for f, c in stacks if any(fname(x) == "spin" for x in f)]
    n_deep = sum(c for _, c in deep)
    record(tag + ": deep thread samples", n_deep >= 10, "%d of %d" % (n_deep, total))
    full = 0
    depths = collections.Counter()
    wrong_thread = 0
    for f, c in deep:
        if f[0].endswith(" main]") or not f[0].startswith("[thread "):
            wrong_thread += c
        recs = [parse_frame(x) for x in f if fname(x) == "recurse"]
        depths[len(recs)] += c
        lines_ok = all(l == marks["recurse_call"] for _, _, l in recs[:-1]) and recs and \
            recs[-1][2] == marks["recurse_leaf"]
        leaf_ok = parse_frame(f[-1])[0] == "spin" and parse_frame(f[-1])[2] == marks["spin_body"] or \
            parse_frame(f[-1])[2] == marks["spin_body"] - 1
        if len(recs) == depth + 1 and lines_ok and leaf_ok and "[truncated]" not in f:
            full += c
    record(tag + ": deep thread is not the main thread", wrong_thread == 0, "%d samples on the main thread" % wrong_thread)
    record(tag + ": recursion depth %d shown whole with its lines" % (depth + 1), n_deep and full >= 0.95 * n_deep,
           "%d of %d samples; recurse depths seen %s" % (full, n_deep, dict(depths)))

    # Thread names come from threading's dicts, looked up by the process's own str hash (learnt
    # from the hashes sys.modules' keys cache: pythreads__learn_hash), not key by key.
    try:
        with open(report) as f:
            procs = json.load(f)["processes"]
        record(tag + ": dicts looked up by hash (its SipHash learnt)", procs.get("dicts_by_hash") == 1, json.dumps(procs)[:600])
    except Exception as e:  # noqa: BLE001
        record(tag + ": dicts looked up by hash", False, str(e))

    # The other outputs.
    try:
        doc = xml.dom.minidom.parse(svg)
        titles = [t.firstChild.data for t in doc.getElementsByTagName("title") if t.firstChild]
        record(tag + ": SVG is XML and names leaf_hot", any("leaf_hot" in t for t in titles))
    except Exception as e:  # noqa: BLE001 - report whatever the parser says
        record(tag + ": SVG is XML and names leaf_hot", False, str(e))
    try:
        with open(speed) as f:
            js = json.load(f)
        names = {fr.get("name") for fr in js["shared"]["frames"]}
        # --threads: one profile per thread, named by it
        nsamp = sum(sum(p["weights"]) for p in js["profiles"])
        pnames = [p["name"] for p in js["profiles"]]
        record(tag + ": speedscope JSON has the frames and samples, a profile per thread",
               "leaf_hot" in names and nsamp == total and len(pnames) >= 2 and
               all(" tid=" in n for n in pnames) and any(n.startswith("MainThread tid=") for n in pnames),
               "%d weights vs %d folded; profiles %s" % (nsamp, total, pnames[:10]))
    except Exception as e:  # noqa: BLE001
        record(tag + ": speedscope JSON has the frames and samples", False, str(e))
    return stacks


def austin_top(it, seconds=3):
    """Top leaf functions by austin (reference sampler) on the same workload."""
    w = Workload(it, "shape.py", {"PT_DEPTH": "100"})
    out = tempfile.NamedTemporaryFile(delete=False, suffix=".austin")
    out.close()
    try:
        time.sleep(0.3)
        a = subprocess.Popen(["austin", "-s", "-i", "10000", "-p", str(w.pid), "-o", out.name],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(seconds)
        a.send_signal(signal.SIGINT)
        a.wait(timeout=10)
    finally:
        w.stop()
    leaves = collections.Counter()
    with open(out.name) as f:
        for line in f:
            parts = line.rstrip().rsplit(" ", 1)
            if len(parts) != 2 or not parts[1].isdigit():
                continue
            frames = [p for p in parts[0].split(";") if not p.startswith("L") and not p.startswith("Thread")
                      and not p.startswith("P")]
            if frames:
                leaves[frames[-1].split(" (")[0]] += 1
    os.unlink(out.name)
    return leaves


def check_austin(it, stacks):
    ours = collections.Counter()
    for f, c in stacks:
        ours[fname(f[-1])] += c
    theirs = austin_top(it)
    if not theirs:
        record(it.label + ": austin side by side", False, "austin produced no samples")
        return
    top_ours = {n for n, _ in ours.most_common(2)}
    top_theirs = {n for n, _ in theirs.most_common(2)}
    record(it.label + ": top functions agree with austin", top_ours == top_theirs,
           "ours %s, austin %s" % (ours.most_common(3), theirs.most_common(3)))


def check_fork(it, tmp):
    folded = os.path.join(tmp, it.label + "-fork.folded")
    report = os.path.join(tmp, it.label + "-fork.json")
    # the children come PT_FORK_DELAY s after the start: the tool must be tracing by then (a
    # sanitizer build starts slower: tests/run-sanitize.sh gives it 4 s)
    w = Workload(it, "forker.py", {"PT_FORK_DELAY": os.environ.get("PYTRACE_TEST_FORK_DELAY", "2"),
                                   "PT_CHILD_SECONDS": "2", "PT_EARLY_CHILD": "1"})
    try:
        out = run_tool(["--pid", str(w.pid), "--duration", "8", "--collapsed", folded, "--json", report])
    finally:
        w.stop()
    ok = record(it.label + ": children forked during the trace are sampled (exit 0)", out.returncode == 0,
                out.stderr[-1500:])
    if not ok:
        return
    n = sum(c for f, c in read_folded(folded) if any(fname(x) == "child_work" for x in f))
    record(it.label + ": child_work samples from forked children", n >= 20, "%d samples" % n)
    # The children's code objects are their parent's, at the same addresses: named from the
    # parent's entries after one read of each header (symbolizer__resolve_in), not read again.
    # The child forked before the tool started is known as a fork too (same interpreter address
    # and main stack as its parent: procs.c's forked_family), and shares the family's entries.
    try:
        with open(report) as f:
            doc = json.load(f)
        co = doc["code_objects"]
        record(it.label + ": forked children's code objects taken from their parent's", co["from_family"] >= 2,
               json.dumps(co))
        record(it.label + ": a child forked before tracing began is known as a fork",
               doc["processes"].get("forks_found_running") == 1, json.dumps(doc["processes"])[:500])
    except Exception as e:  # noqa: BLE001
        record(it.label + ": forked children's code objects taken from their parent's", False, str(e))
    record(it.label + ": tool ends when the traced processes exit", "Target exited" in out.stderr, out.stderr[-300:])


def check_bad_input(tmp, unsupported):
    # No such pid.
    pid = 4000000
    while os.path.exists("/proc/%d" % pid):
        pid += 1
    out = run_tool(["--pid", str(pid), "--duration", "1"])
    record("bad input: no such pid", out.returncode != 0 and "no process with pid %d" % pid in out.stderr,
           out.stderr)
    # Not Python.
    p = subprocess.Popen(["sleep", "30"])
    try:
        out = run_tool(["--pid", str(p.pid), "--duration", "1"])
    finally:
        p.kill()
        p.wait()
    record("bad input: not a Python process", out.returncode != 0 and "is not a Python process" in out.stderr,
           out.stderr)
    # Unsupported versions: named in the message.
    # the refusal of CPython < 3.8 is checked on a real one (pyenv's 2.7, 3.6, 3.7): none is a failure
    record("bad input: a CPython < 3.8 under pyenv to refuse", bool(unsupported),
           "none found under %s" % harness.pyenv_root())
    for it in unsupported:
        p = subprocess.Popen([it.exe, "-c", "import time; time.sleep(30)"])
        try:
            time.sleep(0.3)
            out = run_tool(["--pid", str(p.pid), "--duration", "1"])
        finally:
            p.kill()
            p.wait()
        want = "CPython %d.%d" % it.version
        record("bad input: unsupported %s named" % it.label,
               out.returncode != 0 and want in out.stderr and "does not support" in out.stderr, out.stderr)
    # No privileges.
    p = subprocess.Popen(["/usr/bin/python3", "-c", "import time; time.sleep(30)"])
    try:
        out = run_tool(["--pid", str(p.pid), "--duration", "1"], user=65534)
    finally:
        p.kill()
        p.wait()
    record("bad input: no privileges", out.returncode != 0 and "insufficient privileges" in out.stderr, out.stderr)
    # No BTF (a kernel without it is simulated by pointing at a missing BTF file).
    p = subprocess.Popen(["/usr/bin/python3", "-c", "import time; time.sleep(30)"])
    try:
        env = dict(os.environ, PYTRACE_BTF="/nonexistent/vmlinux")
        out = subprocess.run([TOOL, "--pid", str(p.pid), "--duration", "1"], capture_output=True, text=True,
                             env=env, timeout=30)
    finally:
        p.kill()
        p.wait()
    record("bad input: no kernel BTF", out.returncode != 0 and "BTF" in out.stderr, out.stderr)
    # Bad arguments.
    out = subprocess.run([TOOL, "--pid", "abc"], capture_output=True, text=True)
    record("bad input: malformed --pid", out.returncode != 0 and "invalid pid" in out.stderr, out.stderr)
    out = subprocess.run([TOOL], capture_output=True, text=True)
    record("bad input: missing --pid", out.returncode != 0 and "--pid is required" in out.stderr, out.stderr)


def check_text_report(it):
    """No output option: the hottest functions and stacks on stdout, deep stacks included."""
    w = Workload(it, "shape.py", {"PT_DEPTH": "120"})
    try:
        time.sleep(0.3)
        out = run_tool(["--pid", str(w.pid), "--duration", "2", "--no-sql"])
    finally:
        w.stop()
    ok = out.returncode == 0 and "Top functions by self time" in out.stdout and "leaf_hot" in out.stdout \
        and "Hottest stacks" in out.stdout and out.stdout.count("recurse (") >= 100
    record("text report of hot functions and stacks (deep recursion)", ok,
           "exit %d; stdout %s; stderr %s" % (out.returncode, out.stdout[:800], out.stderr[-500:]))


def check_exit_midtrace(it, tmp):
    folded = os.path.join(tmp, "exit.folded")
    svg = os.path.join(tmp, "exit.svg")
    w = Workload(it, "shortlived.py", {"PT_SECONDS": "3"})
    t0 = time.time()
    try:
        out = run_tool(["--pid", str(w.pid), "--duration", "20", "--collapsed", folded, "--flame", svg])
    finally:
        w.stop()
    took = time.time() - t0
    n = 0
    if os.path.exists(folded):
        n = sum(c for f, c in read_folded(folded) if any(fname(x) == "burn" for x in f))
    record("target exits mid-trace: outputs written, tool stops", out.returncode == 0 and took < 10 and n >= 10
           and os.path.exists(svg) and "Target exited" in out.stderr,
           "exit %d after %.1fs, %d burn samples; %s" % (out.returncode, took, n, out.stderr[-500:]))


def main():
    args, status = harness.start("run only interpreters whose label contains this (or one of these, comma-separated)")
    if status is not None:
        return status
    interps, unsupported = find_interpreters(with_unsupported=True)
    interps = [i for i in interps if any(k in i.label for k in args.k.split(","))]  # -k a,b: either
    log("Interpreters: " + ", ".join("%s (%d.%d)" % (i.label, *i.version) for i in interps))
    if unsupported:
        log("Unsupported interpreters present (checked for a clear refusal): " +
            ", ".join(i.label for i in unsupported))
    tmp = tempfile.mkdtemp(prefix="pytrace-it-")
    ran = []
    for it in interps:
        try:
            stacks = check_shape(it, tmp)
            ran.append(it.label)
            if stacks and it.version <= (3, 10) and shutil.which("austin"):
                check_austin(it, stacks)
            if it.label.startswith("debian") or it.label.startswith("sid-python3.15"):
                check_fork(it, tmp)
        except Exception as e:  # noqa: BLE001 - one interpreter's failure must not hide the rest
            record(it.label + ": ran", False, repr(e))
    if not args.k:
        check_text_report(interps[0])
        check_exit_midtrace(interps[0], tmp)
        check_bad_input(tmp, unsupported)
    shutil.rmtree(tmp, ignore_errors=True)
    log("Interpreters that ran: " + ", ".join(ran))
    return harness.summary()


if __name__ == "__main__":
    sys.exit(main())
