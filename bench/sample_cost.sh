#!/bin/bash
# BPF time per run of the sampler's program (sample_stack), build against build: each build
# traces a CPU-bound python3 with 31-frame stacks at 99 Hz for 8 s with kernel.bpf_stats_enabled
# on (bpftool prog show: run_time_ns / run_cnt), in rotation, ROUNDS times; the median and all.
#
# Usage: sudo bench/sample_cost.sh [-r ROUNDS] BUILD [BUILD...]
#   (copy builds elsewhere first: a rebuild during the run would change what is measured)
set -euo pipefail
rounds=5
if [ "${1:-}" = "-r" ]; then rounds=$2; shift 2; fi
[ $# -ge 1 ] || { sed -n '2,7p' "$0"; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root: the tool loads BPF programs" >&2; exit 1; }
old=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -q kernel.bpf_stats_enabled="$old"' EXIT
declare -A got
one() {	# one BUILD: prints ns per run
	/usr/bin/python3 -c '
def f(n):
    return f(n - 1) if n else sum(range(1000))
while True:
    f(30)' &
	local p=$! t
	sleep 0.5
	sysctl -q kernel.bpf_stats_enabled=1
	"$1" -p "$p" -d 8 --json /dev/null >/dev/null 2>&1 &
	t=$!
	sleep 6
	bpftool prog show 2>/dev/null | grep -A1 "name sample_stack" |
		grep -oE "run_time_ns [0-9]+ run_cnt [0-9]+" | awk '{ printf "%.0f\n", $2 / $4 }' | head -1
	wait "$t" || true
	sysctl -q kernel.bpf_stats_enabled=0
	kill "$p"; wait "$p" 2>/dev/null || true
}
for ((r = 1; r <= rounds; r++)); do
	for b in "$@"; do
		ns=$(one "$b")
		echo "round $r $b: ${ns:-?} ns a sample"
		got[$b]="${got[$b]:-} $ns"
	done
done
echo
for b in "$@"; do
	echo "$b: median $(echo ${got[$b]} | tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }') ns (all:${got[$b]})"
done
