#!/usr/bin/env bash
# What the HTTP layer's syscall tracepoints cost a process the tool does NOT trace: every process
# on the host runs the exit tracepoints of accept*, read/recv*, write/send* and the entry of close
# once the layer is attached. dd with 1-byte blocks makes 2 x COUNT syscalls (read, write); each
# configuration takes the fastest of RUNS runs (noise only ever slows a run down), in rounds:
#   untraced     nothing attached
#   floor        bpftrace with empty programs on the same 12 tracepoints: the kernel's part
#   pytrace-bpf  the tool tracing an idle Python process with the HTTP layer only (--no-sql, -F 1)
# The per-syscall difference to untraced is printed for the floor and the tool.
#
# Usage: sudo bench/syscall_cost.sh [ROUNDS (3)] [COUNT (500000)] [RUNS (5)]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3} COUNT=${2:-500000} RUNS=${3:-5}
TOOL=${PYTRACE_BPF:-build/pytrace-bpf}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
command -v bpftrace >/dev/null || { echo "bpftrace is missing: scripts/install-deps.sh" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT

best_of() {	# fastest wall time of RUNS dd runs, in ns
	local best=0 t0 t1 i
	for ((i = 0; i < RUNS; i++)); do
		t0=$(date +%s%N)
		dd if=/dev/zero of=/dev/null bs=1 count="$COUNT" 2>/dev/null
		t1=$(date +%s%N)
		if ((best == 0 || t1 - t0 < best)); then best=$((t1 - t0)); fi
	done
	echo "$best"
}

wait_for() {	# wait_for FILE MARKER PID
	local i
	for ((i = 0; i < 300; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || { echo "tracer exited: $(cat "$1")" >&2; exit 1; }
		sleep 0.1
	done
	echo "tracer did not start: $(cat "$1")" >&2
	exit 1
}

prog="tracepoint:syscalls:sys_enter_close {}"
for n in accept accept4 read recvfrom readv recvmsg write sendto writev sendmsg sendfile64; do
	prog="$prog tracepoint:syscalls:sys_exit_$n {}"
done
sysctl -qw kernel.bpf_stats_enabled=0	# its accounting would be counted too
calls=$((2 * COUNT))
fl_all=() tool_all=()
for ((r = 1; r <= ROUNDS; r++)); do
	u=$(best_of)

	bpftrace -e "$prog" >"$tmp/bt.out" 2>&1 &
	bt=$!; pids+=("$bt")
	wait_for "$tmp/bt.out" Attaching "$bt"
	sleep 0.5
	f=$(best_of)
	kill -INT "$bt"; wait "$bt" 2>/dev/null || true

	python3 -c 'import os, time; print(os.getpid(), flush=True); time.sleep(600)' >"$tmp/idle.pid" &
	idle=$!; pids+=("$idle")
	sleep 0.3
	"$TOOL" --pid "$idle" --no-sql -F 1 --json /dev/null 2>"$tmp/tool.err" &
	t=$!; pids+=("$t")
	wait_for "$tmp/tool.err" "Tracing pid" "$t"
	sleep 0.5
	p=$(best_of)
	kill -INT "$t"; wait "$t" 2>/dev/null || true
	kill "$idle" 2>/dev/null || true

	fl=$(( (f - u) / (calls / 100) )) tl=$(( (p - u) / (calls / 100) ))	# hundredths of a ns
	fl_all+=("$fl") tool_all+=("$tl")
	printf "round %d: untraced %d us, floor %d us, pytrace-bpf %d us: per syscall floor +%d.%02d ns, pytrace-bpf +%d.%02d ns\n" \
		"$r" $((u / 1000)) $((f / 1000)) $((p / 1000)) $((fl / 100)) $((fl % 100)) $((tl / 100)) $((tl % 100))
done
med() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { m = a[int((NR + 1) / 2)]; printf "%d.%02d", m / 100, m % 100 }'; }
echo "added per syscall of an untraced process, median of $ROUNDS rounds: floor (empty programs) +$(med "${fl_all[@]}") ns, pytrace-bpf +$(med "${tool_all[@]}") ns"
