# -*- coding: utf-8 -*-
# Started by the tracer (pytrace-bpf ... -- python3 launched.py): its first half second, a forked
# child, ten named threads that work and sleep by turns, one with a non-ASCII name running a
# function with a non-ASCII name, one renamed after its start; exits with status 3.
# PT_MODE=sigint: says "ready", then works until SIGINT (KeyboardInterrupt) and exits with 5.
# PT_MODE=id: prints its uid, gid and groups.
import os
import sys
import threading
import time


def early_phase():
    end = time.time() + 0.5
    while time.time() < end:  # @early_body
        pass


def child_work():
    end = time.time() + 0.6
    while time.time() < end:  # @child_body
        pass
    os._exit(0)


def worker(stop):
    while not stop.is_set():
        end = time.time() + 0.02
        while time.time() < end:
            pass
        time.sleep(0.02)


def fünf_ñame(stop):
    while not stop.is_set():
        sum(range(1000))


def main_work(seconds):
    end = time.time() + seconds
    while time.time() < end:
        pass


def main():
    mode = os.environ.get("PT_MODE", "")
    if mode == "id":
        print("id", os.getuid(), os.getgid(), " ".join(map(str, sorted(os.getgroups()))), flush=True)
        return 0
    if mode == "sigint":
        print("ready", os.getpid(), flush=True)
        try:
            while True:
                sum(range(1000))
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
            return 5
    early_phase()
    kid = os.fork()
    if kid == 0:
        child_work()
    stop = threading.Event()
    threads = [threading.Thread(target=worker, args=(stop,), name="Worker-%d" % i) for i in range(10)]
    threads.append(threading.Thread(target=fünf_ñame, args=(stop,), name="Wörker-ü-€-𝄞"))
    renamed = threading.Thread(target=worker, args=(stop,), name="before-rename")
    threads.append(renamed)
    for t in threads:
        t.start()
    time.sleep(0.2)
    renamed.name = "after-rename"
    main_work(float(os.environ.get("PT_SECONDS", "2.2")))
    stop.set()
    for t in threads:
        t.join()
    os.waitpid(kid, 0)
    return 3


if __name__ == "__main__":
    sys.exit(main())
