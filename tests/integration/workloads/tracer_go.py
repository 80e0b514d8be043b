"""What the workloads share: waiting for the tracer before the counted work starts."""
import os
import sys
import time


def wait_for_tracer():
    """PT_GO=stdin: the test writes a line once the tracer says it is tracing; else sleep
    PT_START_DELAY s (default 1), for a workload run by hand."""
    if os.environ.get("PT_GO") == "stdin":
        sys.stdin.readline()
    else:
        time.sleep(float(os.environ.get("PT_START_DELAY", "1")))
