# Plain Python with no libpq: sleeps, then exits. The SQL tracer must say so and exit 0.
# PT_KIDS: fork that many children first (no libpq either), each sleeping as long, once the
# tracer is tracing: the probes attached ahead must stay within their bounds.
import os
import time

from tracer_go import wait_for_tracer

if __name__ == "__main__":
    print("ready", os.getpid(), flush=True)
    wait_for_tracer()
    seconds = float(os.environ.get("PT_SECONDS", "1.5"))
    kids = []
    for _ in range(int(os.environ.get("PT_KIDS", "0"))):
        pid = os.fork()
        if pid == 0:
            time.sleep(seconds)
            os._exit(0)
        kids.append(pid)
    time.sleep(seconds)
    for k in kids:
        os.waitpid(k, 0)
