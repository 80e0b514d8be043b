"""What every integration test of pytrace-bpf shares: where things are, PASS/FAIL bookkeeping
(log, record, summary), the tool run in the background (Tracer), a private PostgreSQL
cluster (Cluster), free ports, the interpreters to test against, and the workloads' '# @marker'
lines. The suites: test_sampling.py (CPU sampling), test_sql.py, test_functions.py and
test_requests.py; tests/run-all.sh runs them all.

Interpreters: Debian's /usr/bin/python3, each pyenv version under $(pyenv root)/versions, and
Debian unstable's python3.13/3.14/3.15 in a debootstrapped root (scripts/sid-root.sh) run with
chroot and traced from the host. PYTRACE_NO_SID=1 leaves the latter out.
"""
import atexit
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# PYTRACE_BPF: another build of the tool (tests/run-sanitize.sh: build-asan/pytrace-bpf)
TOOL = os.environ.get("PYTRACE_BPF") or os.path.join(REPO, "build", "pytrace-bpf")
WORKLOADS = os.path.join(HERE, "workloads")
SUPPORTED = [(3, m) for m in range(8, 16)]
PG_CLUSTER = os.path.join(REPO, "scripts", "pg-cluster.sh")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")

results = []
verbose = False


def log(msg):
    print(msg, flush=True)


def record(name, ok, detail=""):
    results.append((name, "PASS" if ok else "FAIL", detail))
    log("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail and (not ok or verbose) else ""))
    return ok


SANITIZER_REPORT = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|^SUMMARY: (Address|Undefined)"
                              r"BehaviorSanitizer", re.M)


def check_sanitizer(what, rc, err):
    """A run of a tool built with SAN=1 (ASan, UBSan; halt_on_error) that printed a report fails,
    whatever exit status the test expected; a clean run records nothing."""
    m = SANITIZER_REPORT.search(err or "")
    if m:
        i = max(0, m.start() - 200)
        record("%s: no sanitizer report" % what, False, "exit %s: %s" % (rc, err[i:i + 3000]))
    return not m


def summary():
    """Print the closing line; returns the exit status."""
    passed = sum(1 for r in results if r[1] == "PASS")
    failed = sum(1 for r in results if r[1] == "FAIL")
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


class Tracer:
    """The tool, started in the background with its output read as it comes: a test waits for
    "Tracing pid" (every probe in place, however long a loaded machine took to attach them)
    before it lets its workload go, instead of sleeping a fixed time and hoping."""

    def __init__(self, args, env=None):
        self.proc = subprocess.Popen([TOOL] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, errors="replace", env=env)
        self.pid = self.proc.pid
        self.err, self.out = [], []
        self.tracing = threading.Event()
        self.readers = [threading.Thread(target=self._read_err, daemon=True),
                        threading.Thread(target=lambda: self.out.append(self.proc.stdout.read()), daemon=True)]
        for t in self.readers:
            t.start()

    def _read_err(self):
        for line in self.proc.stderr:
            self.err.append(line)
            if line.startswith("Tracing pid"):
                self.tracing.set()
        self.tracing.set()  # exited before it traced: the caller finds out from finish()

    def wait_tracing(self, timeout=30):
        return self.tracing.wait(timeout)

    def stderr(self):
        return "".join(self.err)

    def finish(self, timeout=60):
        """Wait for the tool (killed after timeout s); returns (exit status, stdout, stderr)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for t in self.readers:
            t.join(10)
        check_sanitizer("pytrace-bpf " + " ".join(self.proc.args[1:])[:120], self.proc.returncode, self.stderr())
        return self.proc.returncode, "".join(self.out), self.stderr()

    def stop(self, timeout=60):
        """Interrupt the tool (SIGINT, as Ctrl-C would: it writes its outputs and exits), then
        finish(timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.finish(timeout)


def wait_http(port, path, seconds=30):
    """Until GET path on 127.0.0.1:port answers 200 (True), or seconds pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return True
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    return False


def free_port(lo, hi):
    """A port in [lo, hi) that nobody listens on at 127.0.0.1 and that names no PostgreSQL socket
    in /tmp. Each suite takes its own range, so that suites can run side by side."""
    for port in range(lo, hi):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if not os.path.exists("/tmp/.s.PGSQL.%d" % port):
            return port
    raise RuntimeError("no free port in %d-%d" % (lo, hi))


class Cluster:
    """A private PostgreSQL 15 cluster (scripts/pg-cluster.sh) in a fresh temporary directory, with
    database "pytrace" and pg_stat_statements. It listens on a Unix socket in that directory and,
    with tcp, on 127.0.0.1 as well (workloads in a chroot cannot reach the socket). Its port is
    the first free one in ports (free_port). stop() removes everything; it also runs at exit, so a
    suite that is interrupted (SIGTERM turned into sys.exit) leaves no cluster behind."""

    def __init__(self, prefix="pytrace-pg-", ports=(54340, 54400), tcp=False):
        self.parent = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.parent, 0o755)  # initdb and pg_ctl run as user postgres
        self.dir = os.path.join(self.parent, "pg")
        self.port = free_port(*ports)
        self.env = dict(os.environ, PYTRACE_PG_PORT=str(self.port))
        if tcp:
            self.env["PYTRACE_PG_TCP"] = "1"
        self.started = False
        atexit.register(self.stop)

    @staticmethod
    def installed():
        return os.access(os.path.join(PGBIN, "initdb"), os.X_OK)

    def start(self):
        self.started = True
        out = subprocess.run([PG_CLUSTER, "start", self.dir], capture_output=True, text=True,
                             env=self.env, timeout=120)
        if out.returncode:
            raise RuntimeError("pg-cluster.sh start failed: " + out.stderr[-1500:])

    def stop(self):
        if self.started:
            self.started = False
            subprocess.run([PG_CLUSTER, "stop", self.dir], capture_output=True, text=True, env=self.env,
                           timeout=120)
        shutil.rmtree(self.parent, ignore_errors=True)

    def client_env(self, tcp=False):
        """libpq's environment for a client: over the Unix socket, or with tcp over 127.0.0.1 (the
        cluster must have been made with tcp)."""
        return {"PGHOST": "127.0.0.1" if tcp else self.dir, "PGPORT": str(self.port), "PGDATABASE": "pytrace",
                "PGUSER": "postgres", "PGCONNECT_TIMEOUT": "10"}

    def psql(self, sql):
        env = dict(os.environ, **self.client_env())
        env["PGOPTIONS"] = "-c client_min_messages=warning"
        out = subprocess.run([os.path.join(PGBIN, "psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1",
                              "-c", sql], capture_output=True, text=True, env=env, timeout=60, cwd="/")
        if out.returncode:
            raise RuntimeError("psql %r: %s" % (sql, out.stderr))
        return out.stdout

    def pgss_reset(self):
        self.psql("SELECT pg_stat_statements_reset()")

    def pgss(self, toplevel_only=False):
        """[(query, calls)] of the database pytrace, from pg_stat_statements; toplevel_only: without
        the statements run inside others (COPY (SELECT ...) is recorded twice with track = all)."""
        js = self.psql("SELECT coalesce(json_agg(json_build_object('q', s.query, 'calls', s.calls)), '[]') "
                       "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                       "WHERE d.datname = 'pytrace'" + (" AND s.toplevel" if toplevel_only else ""))
        return [(r["q"], r["calls"]) for r in json.loads(js)]


def preflight():
    """Root and a built tool, or a failing closing line. Returns an exit status or None."""
    if os.geteuid() != 0:
        log("integration tests load BPF programs: run them as root")
    elif not os.access(TOOL, os.X_OK):
        log("build the tool first: make")
    else:
        return None
    print("0 passed, 1 failed")
    return 1


def start(k_help="run only cases whose label contains this"):
    """Command line (-k, -v) and the preflight: (args, None), or (None, exit status)."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", default="", help=k_help)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    global verbose
    verbose = args.verbose
    return args, preflight()


def marker_lines(path):
    """{'leaf_body': 17, ...} from '# @name' comments."""
    lines = {}
    with open(path) as f:
        for no, text in enumerate(f, 1):
            m = re.search(r"# @(\w+)", text)
            if m:
                lines[m.group(1)] = no
    return lines


class Interp:
    def __init__(self, label, exe, version, root=None):
        self.label, self.exe, self.version, self.root = label, exe, version, root

    def argv(self, script):
        return (["chroot", self.root] if self.root else []) + [self.exe, script]

    def workload(self, name):
        """The path of a workload as the interpreter sees it (and as its frames name it)."""
        if not self.root:
            return os.path.join(WORKLOADS, name)
        dest = os.path.join(self.root, "tmp", "pytrace-workloads")
        os.makedirs(dest, exist_ok=True)
        for f in (name, "tracer_go.py"):  # the workloads' own helper goes with them
            shutil.copy(os.path.join(WORKLOADS, f), dest)
        return "/tmp/pytrace-workloads/" + name

    def host_path(self, path):
        return os.path.join(self.root, path.lstrip("/")) if self.root else path


def exe_version(argv):
    out = subprocess.run(argv + ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode:
        return None
    return tuple(int(x) for x in out.stdout.strip().split("."))


def pyenv_root():
    if os.environ.get("PYENV_ROOT"):
        return os.environ["PYENV_ROOT"]
    try:
        return subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip() or None
    except OSError:
        return os.path.expanduser("~/.pyenv")


def sid_root():
    """The Debian unstable root (built once, cached), or None."""
    if os.environ.get("PYTRACE_NO_SID") == "1":
        return os.environ.get("PYTRACE_SID_ROOT")
    out = subprocess.run([os.path.join(REPO, "scripts", "sid-root.sh")], capture_output=True, text=True)
    if out.returncode == 0:
        return out.stdout.strip().splitlines()[-1]
    record("sid-root", False, "building the Debian unstable root failed: " + out.stderr[-500:])
    return None


def _version_key(name):
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name)]


def find_interpreters(with_unsupported=False):
    """[Interp] supported, Debian's first; with_unsupported: (supported, unsupported pyenv ones)."""
    found, unsupported = [], []
    v = exe_version(["/usr/bin/python3"])
    found.append(Interp("debian-python%d.%d" % v, os.path.realpath("/usr/bin/python3"), v))
    root = pyenv_root()
    vdir = os.path.join(root, "versions") if root else None
    if vdir and os.path.isdir(vdir):
        for name in sorted(os.listdir(vdir), key=_version_key):
            m = re.match(r"(\d+)\.(\d+)", name)
            if not m:
                continue
            major, minor = int(m.group(1)), int(m.group(2))
            exe = os.path.join(vdir, name, "bin", "python%d.%d" % (major, minor))
            if not os.path.exists(exe):
                continue
            it = Interp("pyenv-" + name, exe, (major, minor))
            (found if (major, minor) in SUPPORTED else unsupported).append(it)
    sid = sid_root()
    if sid:
        for minor in (13, 14, 15):
            exe = "/usr/bin/python3.%d" % minor
            if os.path.exists(os.path.join(sid, exe.lstrip("/"))):
                found.append(Interp("sid-python3.%d" % minor, exe, (3, minor), root=sid))
    return (found, unsupported) if with_unsupported else found
