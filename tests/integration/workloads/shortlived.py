# Burns CPU for a short while, then exits: the tracer must still write what it collected.
import os
import time


def burn(seconds):
    end = time.time() + seconds
    x = 0
    while time.time() < end:
        x += 1  # @burn_body


if __name__ == "__main__":
    print("ready", os.getpid(), flush=True)
    burn(float(os.environ.get("PT_SECONDS", "1.5")))
