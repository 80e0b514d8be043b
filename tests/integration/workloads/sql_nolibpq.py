# Plain Python with no libpq: sleeps, then exits. The SQL tracer must say so and exit 0.
import os
import time

if __name__ == "__main__":
    print("ready", os.getpid(), flush=True)
    time.sleep(float(os.environ.get("PT_SECONDS", "1.5")))
