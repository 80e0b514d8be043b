#!/usr/bin/env bash
# What a socket syscall costs under each way of hooking its return, with empty programs (the
# kernel's part, which no program's work can lower): a write and a read on a unix socketpair
# (bench/sockpair_loop.c, best of 5 runs of N pairs), pinned to CPU 1, in rounds:
#   untraced          nothing attached
#   perf, 1 prog      bpftrace: sys_exit_read and sys_exit_write, perf-event syscall tracepoints
#                     (the tool's way), and sys_enter_close
#   perf, 2 progs     a second bpftrace with the same two exits (the tool has two: HTTP and wire)
#   tp_btf, 1 prog    build/sockfloor --mode empty: tp_btf sock_send_length/sock_recv_length
#                     (fired inside sock_sendmsg/sock_recvmsg, socket syscalls only), with
#                     bpftrace's sys_enter_close kept on (the tool would keep connect and close)
#   tp_btf, 2 progs   a second sockfloor beside it
#   close only        bpftrace's sys_enter_close alone: the syscall slow path every syscall pays
#                     once any syscall tracepoint is on
# Usage: sudo bench/sock_tp_cost.sh [ROUNDS (4)] [N (300000)]   (needs `make bench-tools`, bpftrace)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-4} N=${2:-300000}
SF=${OUTPUT:-build}/sockfloor
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
command -v bpftrace >/dev/null || { echo "bpftrace is missing: scripts/install-deps.sh" >&2; exit 1; }
[ -x "$SF" ] || { echo "$SF is missing: make bench-tools" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/loop" bench/sockpair_loop.c
sysctl -qw kernel.bpf_stats_enabled=0	# its accounting would be counted too
loop() { taskset -c 1 "$tmp/loop" "$N" 5; }
bt() {	# bt NAME PROGRAM: start bpftrace, wait until it is attached
	bpftrace -e "$2" >"$tmp/$1.out" 2>&1 &
	pids+=("$!"); echo "$!" >"$tmp/$1.pid"
	for _ in $(seq 100); do grep -q Attaching "$tmp/$1.out" && break; sleep 0.1; done
	grep -q Attaching "$tmp/$1.out" || { echo "bpftrace did not start: $(cat "$tmp/$1.out")" >&2; exit 1; }
	sleep 0.3
}
stop() { kill -INT "$(cat "$tmp/$1.pid")" 2>/dev/null || true; wait "$(cat "$tmp/$1.pid")" 2>/dev/null || true; }
sf() {	# sf NAME: start sockfloor --mode empty, wait until it is attached
	"$SF" --mode empty >"$tmp/$1.out" 2>&1 &
	pids+=("$!"); echo "$!" >"$tmp/$1.pid"
	for _ in $(seq 100); do grep -q ready "$tmp/$1.out" && break; sleep 0.1; done
	grep -q ready "$tmp/$1.out" || { echo "sockfloor did not start: $(cat "$tmp/$1.out")" >&2; exit 1; }
}
d_() { awk -v x="$1" -v y="$2" 'BEGIN { printf "%+.1f", x - y }'; }
RW="tracepoint:syscalls:sys_exit_read {} tracepoint:syscalls:sys_exit_write {}"
CL="tracepoint:syscalls:sys_enter_close {}"
echo "| round | untraced | perf, 1 prog | perf, 2 progs | tp_btf, 1 prog | tp_btf, 2 progs | close only |"
echo "|---|---|---|---|---|---|---|"
for ((r = 1; r <= ROUNDS; r++)); do
	a=$(loop)
	bt b1 "$RW $CL"; b=$(loop)
	bt b2 "$RW"; c=$(loop); stop b2; stop b1
	bt c1 "$CL"
	sf s1; d=$(loop)
	sf s2; e=$(loop); stop s1; stop s2
	f=$(loop); stop c1
	echo "| $r | $a | $b ($(d_ "$b" "$a")) | $c ($(d_ "$c" "$a")) | $d ($(d_ "$d" "$a")) | $e ($(d_ "$e" "$a")) | $f ($(d_ "$f" "$a")) |"
done
echo "ns per syscall (a write or a read), best of 5 runs of $N pairs each; pinned to CPU 1"
