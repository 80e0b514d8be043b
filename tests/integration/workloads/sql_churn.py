# Process churn: forks PT_CHILDREN children, one every PT_GAP_MS, that exit at once (a
# subprocess-heavy service, worker restarts), waits for the tracer to free their slots, then forks
# one more that loads libpq and prints "late child PID". With a process table smaller than the
# churn (PYTRACE_MAX_PROCS), the late child is followed only if the slots of the exited ones
# were freed.
import ctypes
import os
import time

from tracer_go import wait_for_tracer


def main():
    print("ready", os.getpid(), flush=True)
    wait_for_tracer()
    gap = float(os.environ.get("PT_GAP_MS", "10")) / 1000
    for _ in range(int(os.environ.get("PT_CHILDREN", "600"))):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(gap)
    time.sleep(float(os.environ.get("PT_SETTLE", "2")))  # slots are freed 1 s after the exit
    pid = os.fork()
    if pid == 0:
        ctypes.CDLL(os.environ.get("PT_LIBPQ") or "libpq.so.5")
        print("late child", os.getpid(), flush=True)
        time.sleep(1.5)
        os._exit(0)
    os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
