# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Walk this interpreter's own state with a py_layout, the way the tracer does from BPF.

Usage: python3.N live_walk.py tsd_off=784 key=value...   (the keys: check_offsets --print)

Reads raw memory of the running process through ctypes and checks each hop against what
Python itself says: _PyRuntime.autoTSSkey -> glibc TSD slot -> PyThreadState, the interpreter's
thread list and thread ids, the frame chain (code objects, instruction pointers, shim frames
and their owner byte), code object fields, str and bytes. Prints one line per mismatch,
the owner bytes of the frames it had to skip, and a final `N passed, N failed`. The GIL too:
locked, with this thread's tstate as its last holder.
"""
import ctypes
import sys
import threading

NONE = 0xFFFFFFFF
L = {}
for a in sys.argv[1:]:
    k, v = a.split("=", 1)
    L[k] = int(v, 0)
ver = "%d.%d" % sys.version_info[:2]
passed = failed = 0


def check(what, got, want):
    global passed, failed
    if got == want:
        passed += 1
    else:
        failed += 1
        print("%s live: %s = %r, expected %r" % (ver, what, got, want))


def u64(a):
    return ctypes.c_uint64.from_address(a).value


def u32(a):
    return ctypes.c_uint32.from_address(a).value


def i32(a):
    return ctypes.c_int32.from_address(a).value


def u8(a):
    return ctypes.c_uint8.from_address(a).value


def read_str(p):
    """A compact str object at p, as the symbolizer reads it."""
    state = u32(p + L["str_state"])
    length = u64(p + 16)
    kind, compact, ascii_ = (state >> 2) & 7, (state >> 5) & 1, (state >> 6) & 1
    assert compact, "not a compact str"
    if ascii_:
        return ctypes.string_at(p + L["str_ascii_data"], length).decode("ascii")
    raw = ctypes.string_at(p + L["str_compact_data"], length * kind)
    return raw.decode({1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}[kind])


def read_bytes(p):
    return ctypes.string_at(p + L["bytes_data"], u64(p + L["bytes_size"]))


libc = ctypes.CDLL(None)
libc.pthread_self.restype = ctypes.c_void_p
libc.pthread_getspecific.restype = ctypes.c_void_p
libc.pthread_getspecific.argtypes = [ctypes.c_uint]
api = ctypes.pythonapi
api.PyThreadState_Get.restype = ctypes.c_void_p
rt = ctypes.addressof(ctypes.c_char.in_dll(api, "_PyRuntime"))
code_type = id(type(check.__code__))
skipped = []


def walk_tstate(ts):
    """The (code, instr, owner) of each frame of ts, innermost first, shims included."""
    if L["ts_cframe"] != NONE:
        fr = u64(u64(ts + L["ts_cframe"]) + L["ts_frame"])
    else:
        fr = u64(ts + L["ts_frame"])
    out = []
    while fr and len(out) < 256:
        code = u64(fr + L["fr_code"]) & L["code_mask"]
        if L["instr_is_ptr"]:
            instr = u64(fr + L["fr_instr"])
        else:
            instr = i32(fr + L["fr_instr"])
        owner = u8(fr + L["fr_owner"]) if L["fr_owner"] != NONE else None
        out.append((code, instr, owner))
        fr = u64(fr + L["fr_back"])
    return out


def check_stack(ts, frames, own):
    """Compare the walk of ts with the Python frames of its thread (innermost first).

    own: ts is this thread; frames are then taken here, and the walk's two innermost frames
    (u64() reading the top frame pointer, and walk_tstate) are dropped; the innermost
    f_lasti is still moving and not compared.
    """
    if own:
        frames = frames_here(1)
    walked = walk_tstate(ts)
    py = []
    for code, instr, owner in walked:
        is_code = code != 0 and u64(code + 8) == code_type
        if L["fr_owner"] != NONE and owner == L["owner_cstack"]:
            skipped.append((owner, read_str(u64(code + L["co_name"])) if is_code else "-"))
            continue
        if not is_code:
            check("frame (owner %s) code %#x is a code object" % (owner, code), False, True)
            continue
        py.append((code, instr))
    if own:
        py = py[2:]
    check("python frame count", len(py), len(frames))
    for i, ((code, instr), f) in enumerate(zip(py, frames)):
        c = f.f_code
        check("code of %s" % c.co_name, code, id(c))
        check("co_name", read_str(u64(code + L["co_name"])), c.co_name)
        check("co_filename", read_str(u64(code + L["co_filename"])), c.co_filename)
        check("co_firstlineno", i32(code + L["co_firstlineno"]), c.co_firstlineno)
        if L["co_qualname"] != NONE:
            check("co_qualname", read_str(u64(code + L["co_qualname"])), c.co_qualname)
        lt = c.co_lnotab if L["linetable"] == 0 else c.co_linetable
        check("linetable object", u64(code + L["co_linetable"]), id(lt))
        check("linetable bytes", read_bytes(u64(code + L["co_linetable"])), lt)
        if L["instr_is_ptr"]:
            start = code + L["co_code_adaptive"]
            check("instr in %s's code" % c.co_name, start <= instr < start + len(c.co_code),
                  True)
        elif not (own and i == 0):
            scale = 2 if L["linetable"] == 1 else 1  # 3.10 counts code units
            check("f_lasti of %s" % c.co_name, instr * scale, f.f_lasti)


def frames_here(depth):
    f = sys._getframe(depth)
    out = []
    while f is not None:
        out.append(f)
        f = f.f_back
    return out


def inspect_threads(other):
    ts = api.PyThreadState_Get()
    # Thread -> tstate through the pthread key, as BPF does.
    if L["rt_tss"] != NONE:
        check("autoTSSkey _is_initialized", i32(rt + L["rt_tss"]), 1)
        key = u32(rt + L["rt_tss"] + 4)
        check("pthread_getspecific(autoTSSkey)", libc.pthread_getspecific(key), ts)
        if key < 32:
            slot = libc.pthread_self() + L["tsd_off"] + key * 16 + 8
            check("glibc TSD slot of key %d" % key, u64(slot), ts)
        else:
            print("%s live: autoTSSkey %d >= 32, TSD slot not checked" % (ver, key))
    # Interpreter -> thread list.
    interp = u64(rt + L["rt_interp_head"])
    seen = {}
    t = u64(interp + L["is_threads_head"])
    while t and len(seen) < 64:
        seen[u64(t + L["ts_thread_id"])] = t
        t = u64(t + L["ts_next"])
    check("own tstate in the thread list", seen.get(threading.get_ident()), ts)
    # The GIL, as --gil reads it: this thread runs Python, so it holds it (locked, last holder).
    gil = rt + L["rt_gil"] if L["rt_gil"] != NONE else u64(interp + L["is_ceval_gil"])
    check("GIL locked while this thread runs Python", i32(gil + L["gil_locked"]), 1)
    check("GIL last_holder is this thread's tstate", u64(gil + L["gil_holder"]), ts)
    check("other thread in the thread list", other.ident in seen, True)
    if L["ts_native_thread_id"] != NONE:
        check("native_thread_id", u64(ts + L["ts_native_thread_id"]), threading.get_native_id())
    check_stack(ts, None, True)
    # The other thread is parked in Event.wait() -> ... -> lock.acquire().
    check_stack(seen[other.ident], frames_here_of(other), False)


def frames_here_of(thread):
    f = sys._current_frames()[thread.ident]
    out = []
    while f is not None:
        out.append(f)
        f = f.f_back
    return out


def table_items(keys, values):
    """(key, value) of a dict keys table, values from the entries or a split table's array, as
    src/pythreads.c reads them."""
    n = u64(keys + L["dk_nentries"])
    if L["dk_log2"]:
        log2_size, log2_ix, kind = (u8(keys + L["dk_size"] + i) for i in range(3))
        entries = keys + L["dk_indices"] + (1 << log2_ix)
        esize, koff = (24, 8) if kind == 0 else (16, 0)
    else:
        size = u64(keys + L["dk_size"])
        entries = keys + L["dk_indices"] + size * (1 if size <= 0xff else 2 if size <= 0xffff else 4)
        esize, koff = 24, 8
    for i in range(n):
        k = u64(entries + i * esize + koff)
        v = u64(values + L["dv_values"] + i * 8) if values else u64(entries + i * esize + koff + 8)
        if k and v:
            yield k, v


def dict_items(d):
    return table_items(u64(d + L["dict_keys"]), u64(d + L["dict_values"]))


def str_key(k):
    try:
        return read_str(k)
    except (AssertionError, KeyError, UnicodeDecodeError):
        return None


def dict_get(d, name):
    return next((v for k, v in dict_items(d) if str_key(k) == name), None)


def attr_items(obj):
    """An instance's attributes, found as pythreads.c finds them for each layout."""
    tp = u64(obj + 8)
    flags = u64(tp + L["tp_flags"])
    kind = L["objdict"]
    if kind == 0 or not flags & (1 << 4):
        return dict_items(u64(obj + ctypes.c_int64.from_address(tp + L["tp_dictoffset"]).value))
    cached = u64(tp + L["ht_cached_keys"])
    if kind == 1:  # 3.11
        values = u64(obj - 32)
        return table_items(cached, values) if values else dict_items(u64(obj - 24))
    if kind == 2:  # 3.12: dict, or values - 1
        p = u64(obj - 24)
        return table_items(cached, p + 1) if p & 1 else dict_items(p)
    p = u64(obj - 24)  # 3.13+: dict, else inline values
    if p:
        return dict_items(p)
    values = obj + u64(tp + L["tp_basicsize"])
    check("inline values valid", u8(values + 3), 1)
    return table_items(cached, values)


def read_long(p):
    size = ctypes.c_int64.from_address(p + L["long_size"]).value
    if L["long_tag"]:
        n, neg = size >> 3, (size & 3) == 2
    else:
        n, neg = abs(size), size < 0
    v = 0
    for i in reversed(range(n)):
        v = v << 30 | u32(p + L["long_digits"] + 4 * i)
    return -v if neg else v


def check_thread_names():
    """threading._active through sys.modules, each Thread's _name and _native_id, as the tracer."""
    interp = u64(rt + L["rt_interp_head"])
    modules = u64(interp + L["is_modules"])
    check("interp modules is sys.modules", modules, id(sys.modules))
    mod = dict_get(modules, "threading")
    check("sys.modules['threading']", mod, id(threading))
    md = u64(mod + L["mod_dict"])
    check("threading's md_dict", md, id(threading.__dict__))
    active = dict_get(md, "_active")
    check("threading._active", active, id(threading._active))
    got = {}
    for ident, th in dict_items(active):
        check("_active key", read_long(ident), [k for k, v in threading._active.items() if id(v) == th][0])
        a = {str_key(k): v for k, v in attr_items(th)}
        got[read_long(a["_native_id"])] = read_str(a["_name"])
    want = {t.native_id: t.name for t in threading.enumerate()}
    check("thread names (%d threads)" % len(want), got, want)


def fünf_ñame(x):
    # A non-ASCII name exercises str_compact_data; map() adds a C call between frames.
    return inspect_threads(x)


class Outer:
    def method(self, other):
        return list(map(fünf_ñame, [other]))


def check_task_proxy():
    """What the walker reads for a thread pool's task (asgiref's thread_handler, struct pt_proc):
    a task's coroutine, the coroutine's frame, a frame's arguments, a code object's names."""
    import asyncio

    marker = object()

    async def top(arg):
        await asyncio.sleep(0.01)

    async def run():
        task = asyncio.ensure_future(top(marker))
        await asyncio.sleep(0)
        coro = task.get_coro()
        check("task type", type(task).__module__, "_asyncio")
        check("task -> task_coro", u64(id(task) + L["task_coro"]), id(coro))
        mask = L["code_mask"]
        if sys.version_info < (3, 11):
            frame = u64(id(coro) + L["gen_frame"])
            check("coroutine -> gi_frame", frame, id(coro.cr_frame))
        else:
            frame = id(coro) + L["gen_frame"]
            check("coroutine's gi_iframe -> code", u64(frame + L["fr_code"]) & mask, id(coro.cr_code))
        check("frame -> localsplus[0]", u64(frame + L["fr_localsplus"]) & mask, id(marker))
        await task
        # a future a task awaits: its first callback wakes that task
        fut = asyncio.get_running_loop().create_future()

        async def waiter():
            await fut
        w = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)
        cb = u64(id(fut) + L["fut_callback0"])
        check("future -> callback0 -> its task", cb and u64(cb + L["wakeup_task"]), id(w))
        fut.set_result(None)
        await w

    asyncio.run(run())

    def handler(self, loop, source_task, exc_info, func, *args, **kwargs):
        return sys._getframe()

    class Pool:
        def thread_handler(self):
            pass
    # a class's own dict, and a function's code: how the tool finds thread_handler's code
    check("type -> tp_dict", u64(id(Pool) + L["tp_dict"]),
          id(next(r for r in __import__("gc").get_referents(Pool.__dict__) if isinstance(r, dict))))
    check("function -> func_code", u64(id(Pool.__dict__["thread_handler"]) + L["func_code"]),
          id(Pool.thread_handler.__code__))
    names = u64(id(handler.__code__) + L["co_varnames"])
    check("code -> varnames[2]", read_str(u64(names + L["tuple_items"] + 2 * 8)), "source_task")


def main():
    check_task_proxy()
    ev = threading.Event()
    other = threading.Thread(target=ev.wait, daemon=True)
    other.start()
    while other.ident not in sys._current_frames():
        pass
    Outer().method(other)
    # named threads: non-ASCII, renamed after its start, a dozen (the dict grows)
    named = [threading.Thread(target=ev.wait, name="Worker-%d" % i, daemon=True) for i in range(12)]
    named.append(threading.Thread(target=ev.wait, name="Wörker-ü-€-𝄞", daemon=True))
    for t in named:
        t.start()
    named[0].name = "renamed-after-start"
    check_thread_names()
    ev.set()
    other.join()
    print("%s live: skipped %d shim frames (owner, code name): %s" %
          (ver, len(skipped), sorted(set(skipped))))
    print("%s live (%s): %d passed, %d failed" % (ver, sys.version.split()[0], passed, failed))
    sys.exit(1 if failed else 0)


main()
