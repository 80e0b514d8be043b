#!/usr/bin/env bash
# The deployment files read by the tools that will read them: `make install` into a temporary
# DESTDIR (unit with @PREFIX@ substituted, scrape config), `systemd-analyze verify` on the
# installed unit, `promtool check config` on the scrape config, kubectl's client-side dry run of
# the DaemonSet (against tests/integration/fake_kube_api.py: there is no cluster) and checks of
# its content with Python's yaml. Needs a built tool (make). Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
OUTPUT=${OUTPUT:-build}
pass=0 fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

tmp=$(mktemp -d /tmp/deploy-test.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# 1. make install honours DESTDIR and PREFIX; the unit names the binary at PREFIX, not DESTDIR.
# PREFIX is made to point into $tmp as well, so that the unit's ExecStart exists for verify.
prefix="$tmp/prefix"
dest="$tmp/dest"
if out=$(make --no-print-directory OUTPUT="$OUTPUT" install DESTDIR="$dest" PREFIX="$prefix" 2>&1); then
	unit="$dest$prefix/lib/systemd/system/pytrace-bpf.service"
	if [ -x "$dest$prefix/bin/pytrace-bpf" ] && [ -f "$unit" ] &&
		[ -f "$dest$prefix/share/pytrace-bpf/prometheus.yml" ] &&
		[ -f "$dest$prefix/share/pytrace-bpf/k8s/pytrace-bpf-daemonset.yaml" ]; then
		ok "make install DESTDIR PREFIX: binary, unit, scrape config and DaemonSet in place"
	else
		bad "make install: missing files under $dest: $(cd "$dest" && find . -type f | tr '\n' ' ')"
	fi
	if grep -q '@PREFIX@' "$unit"; then
		bad "installed unit still has @PREFIX@"
	elif grep -qx "ExecStart=$prefix/bin/pytrace-bpf --prometheus 127.0.0.1:9464 \$PYTRACE_BPF_OPTS" "$unit"; then
		ok "installed unit: ExecStart=$prefix/bin/pytrace-bpf (PREFIX substituted, DESTDIR not in it)"
	else
		bad "installed unit ExecStart: $(grep '^ExecStart' "$unit")"
	fi
	[ "$(stat -c %a "$unit")" = 644 ] && ok "unit installed mode 0644" || bad "unit mode $(stat -c %a "$unit")"
else
	bad "make install: $out"
	unit=
fi

# 2. systemd-analyze verify on the installed unit: no output at all. The binary it names must
# exist: PREFIX for that run is DESTDIR+PREFIX (the same file, placed where ExecStart looks).
if [ -n "$unit" ]; then
	mkdir -p "$tmp/verify"
	sed "s|^ExecStart=$prefix/|ExecStart=$dest$prefix/|" "$unit" > "$tmp/verify/pytrace-bpf.service"
	if out=$(systemd-analyze verify "$tmp/verify/pytrace-bpf.service" 2>&1) && [ -z "$out" ]; then
		ok "systemd-analyze verify: clean"
	else
		bad "systemd-analyze verify: $out"
	fi
	# the hardening that must stay (a later edit dropping one is caught here)
	missing=
	for d in ProtectSystem=strict ProtectHome=read-only NoNewPrivileges=yes PrivateTmp=yes \
		ProtectKernelTunables=yes ProtectKernelModules=yes Restart=on-failure LimitMEMLOCK=infinity \
		"CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_SYS_PTRACE CAP_SYS_RESOURCE CAP_DAC_READ_SEARCH"; do
		grep -qx "$d" "$unit" || missing="$missing [$d]"
	done
	grep -q '^MemoryMax=' "$unit" || missing="$missing [MemoryMax]"
	grep -qE '^(ProtectProc|ProcSubset|PrivateUsers|PrivateNetwork)=' "$unit" && missing="$missing [a directive that breaks BPF or /proc]"
	[ -z "$missing" ] && ok "unit hardening directives present, none that hides /proc" || bad "unit hardening:$missing"
	# exposure score (offline): recorded, and bounded so that it cannot silently degrade
	score=$(systemd-analyze security --offline=yes "$tmp/verify/pytrace-bpf.service" 2>/dev/null |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 3.5) }'; then
		ok "systemd-analyze security --offline: exposure $score (<= 3.5)"
	else
		bad "systemd-analyze security --offline: exposure '${score:-?}' (want <= 3.5)"
	fi
fi

# 3. promtool check config on the scrape config (the source and the installed copy are one file)
if out=$(promtool check config scripts/prometheus.yml 2>&1); then
	ok "promtool check config scripts/prometheus.yml: $(printf '%s\n' "$out" | grep -o 'SUCCESS.*' | head -1)"
else
	bad "promtool check config: $out"
fi
if /usr/bin/python3 - scripts/prometheus.yml <<'EOF'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
jobs = {j["job_name"]: j for j in c["scrape_configs"]}
j = jobs["pytrace-bpf"]
assert j.get("scrape_interval", c["global"]["scrape_interval"]) == "15s", j
assert j.get("metrics_path", "/metrics") == "/metrics", j
assert any("9464" in t for sc in j["static_configs"] for t in sc["targets"]), j
EOF
then ok "scrape config: job pytrace-bpf, 15s, /metrics, port 9464"; else bad "scrape config content"; fi

# 4. the DaemonSet: kubectl's client dry run (discovery from the stand-in), then its content
ds=scripts/k8s/pytrace-bpf-daemonset.yaml
/usr/bin/python3 tests/integration/fake_kube_api.py "$tmp/kport" &
pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/kport" ] && break; sleep 0.1; done
kport=$(cat "$tmp/kport" 2>/dev/null)
export HOME="$tmp/home" KUBECONFIG="$tmp/kubeconfig"
mkdir -p "$HOME"
kc() { timeout 60 kubectl --server="http://127.0.0.1:$kport" -n pytrace-bpf "$@"; }
if [ -z "$kport" ]; then
	bad "fake_kube_api.py did not start"
elif out=$(kc apply --dry-run=client --validate=false -f "$ds" 2>&1) &&
	printf '%s\n' "$out" | grep -q '^daemonset.apps/pytrace-bpf created (dry run)$'; then
	ok "kubectl apply --dry-run=client: $(printf '%s\n' "$out" | tr '\n' ';')"
else
	bad "kubectl apply --dry-run=client: $out"
fi
if [ -n "$kport" ] && kc create --dry-run=client --validate=false -o yaml -f "$ds" > "$tmp/ds.out" 2>&1 &&
	grep -q 'hostPID: true' "$tmp/ds.out"; then
	ok "kubectl create --dry-run=client -o yaml: decoded, hostPID kept"
else
	bad "kubectl create --dry-run=client: $(head -c 600 "$tmp/ds.out" 2>/dev/null)"
fi
if out=$(/usr/bin/python3 - "$ds" 2>&1 <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
ds = [d for d in docs if d["kind"] == "DaemonSet"]
assert len(ds) == 1, "one DaemonSet"
ds = ds[0]
assert ds["apiVersion"] == "apps/v1"
sel = ds["spec"]["selector"]["matchLabels"]
tpl = ds["spec"]["template"]
assert all(tpl["metadata"]["labels"].get(k) == v for k, v in sel.items()), "selector matches the pod labels"
pod = tpl["spec"]
assert pod.get("hostPID") is True, "hostPID"
(c,) = pod["containers"]
sc = c["securityContext"]
assert not sc.get("privileged"), "not privileged"
assert sc["capabilities"]["drop"] == ["ALL"], "drops ALL"
caps = set(sc["capabilities"]["add"])
assert caps == {"BPF", "PERFMON", "SYS_PTRACE", "SYS_RESOURCE", "DAC_READ_SEARCH"}, "capabilities: %s" % caps
assert "SYS_ADMIN" not in caps
assert sc.get("readOnlyRootFilesystem") is True
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
assert ports.get("metrics") == 9464, ports
ann = tpl["metadata"].get("annotations", {})
assert ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9464", ann
assert c["resources"]["requests"] and c["resources"]["limits"].get("memory"), "requests and a memory limit"
args = c["args"]
assert args[args.index("--prometheus") + 1].endswith(":9464"), args
# beyond loopback, so auth and TLS, and the files they name come from a mounted volume
for flag in ("--prometheus-auth", "--prometheus-tls-cert", "--prometheus-tls-key"):
    path = args[args.index(flag) + 1]
    assert any(path.startswith(m["mountPath"] + "/") for m in c["volumeMounts"]), (flag, path)
vols = {v["name"]: v for v in pod["volumes"]}
mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
for m in c["volumeMounts"]:
    assert m["name"] in vols, "mount %s has no volume" % m["name"]
for path in ("/sys/kernel/tracing", "/sys/kernel/btf", "/sys/fs/cgroup"):
    m = mounts[path]
    assert m.get("readOnly") is True, path + " read-only"
    assert vols[m["name"]]["hostPath"]["path"] == path, path
assert "/sys/fs/bpf" not in mounts, "nothing is pinned: no /sys/fs/bpf"
print("%d documents, capabilities %s" % (len(docs), ",".join(sorted(caps))))
EOF
); then
	ok "DaemonSet content: $out; hostPID, not privileged, read-only host mounts, port metrics 9464"
else
	bad "DaemonSet content: $out"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
