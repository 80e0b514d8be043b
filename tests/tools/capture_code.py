# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Capture the memory the symbolizer reads, from a live interpreter (tests/data/sym_3.X.Y.txt).

    python3.X tests/tools/capture_code.py > tests/data/sym_$(python3.X -c 'import platform;print(platform.python_version())').txt

For a few code objects (ASCII, latin-1, UCS-2 and UCS-4 names and file names, a method for
co_qualname) it dumps, with ctypes.string_at, the code object's struct, its co_name /
co_qualname / co_filename str objects and its line table bytes object, plus the address of
PyCode_Type. Expectations come from the interpreter: the names, co_firstlineno, and lines of
live frames. Each function calls probe(), which reads its caller's frame the way the BPF
program does (f_lasti of the PyFrameObject <= 3.10, the instruction pointer of the
_PyInterpreterFrame 3.11+) and records that raw value with frame.f_lineno. A few offsets
from co_lines() are added as raw values too.

Lines:
    version MAJOR MINOR
    pycode_type ADDR
    region ADDR HEX
    code ADDR NAME_UTF8_HEX FILE_UTF8_HEX FIRSTLINENO
    instr CODE_ADDR RAW LINE          (LINE -1: no line)
    # comments: offsets found in live frames, for comparing with src/pylayout.h
"""
import ctypes
import dis
import platform
import struct
import sys
import types

VER = sys.version_info[:2]
PTR = 8
captured = []        # (code, raw instr, f_lineno)
notes = []
frame_offsets = {}


def u64(addr):
    return struct.unpack('<Q', ctypes.string_at(addr, 8))[0]


def i32(addr):
    return struct.unpack('<i', ctypes.string_at(addr, 4))[0]


def read_raw_instr(f):
    """The value the BPF program ships for frame f, located and checked in f's memory."""
    code = f.f_code
    if VER <= (3, 10):
        # PyFrameObject.f_lasti: bytes <= 3.9, code units in 3.10 (f.f_lasti is bytes).
        want = f.f_lasti if VER <= (3, 9) else f.f_lasti // 2
        offs = [o for o in range(16, 160, 4) if i32(id(f) + o) == want]
        code_offs = [o for o in range(16, 160, 8) if u64(id(f) + o) == id(code)]
        frame_offsets.setdefault('PyFrameObject.f_code', set()).update(code_offs)
        frame_offsets.setdefault('PyFrameObject.f_lasti candidates', set()).update(offs)
        return want
    # 3.11+: PyFrameObject.f_frame (after PyObject_HEAD and f_back) -> _PyInterpreterFrame.
    iframe = u64(id(f) + 24)
    words = [u64(iframe + o) for o in range(0, 128, PTR)]
    code_off = [i * PTR for i, w in enumerate(words) if w & ~7 == id(code)]
    size = code.__sizeof__()
    instr_off = [i * PTR for i, w in enumerate(words) if id(code) < w < id(code) + size]
    assert code_off and len(instr_off) == 1, (code_off, instr_off)
    frame_offsets.setdefault('_PyInterpreterFrame code', set()).update(code_off)
    frame_offsets.setdefault('_PyInterpreterFrame instr', set()).update(instr_off)
    raw = words[instr_off[0] // PTR]
    # f.f_lasti is _PyInterpreterFrame_LASTI * 2: where the code units start.
    adaptive = raw - f.f_lasti - id(code)
    frame_offsets.setdefault('co_code_adaptive', set()).add(adaptive)
    return raw


def probe(x=None):
    me = sys._getframe(0)       # probe's own frame is in a call of a builtin right now
    captured.append((me.f_code, read_raw_instr(me), me.f_lineno))
    caller = sys._getframe(1)   # the caller is in a call of a Python function
    captured.append((caller.f_code, read_raw_instr(caller), caller.f_lineno))
    return 1


MODULES = [
    ('/srv/app/plain.py', '''
def plain(n):
    total = 0
    for i in range(n):
        total += probe(
            i)
    return total

class Klass:
    def method(self):
        a = 1
        return probe(a)
'''),
    ('/srv/app/dätei_ü.py', '''
def grüße(x):
    return probe(x)
'''),
    ('/srv/app/蛇/モジュール.py', '''


def 関数():
    y = 1
    return probe(y)
'''),
    ('/srv/app/🐍.py', '''
def 𠀀():
    return \\
        probe(0)
'''),
]


def main():
    ns = {'probe': probe}
    for path, src in MODULES:
        exec(compile(src, path, 'exec'), ns)
    ns['plain'](3)
    ns['Klass']().method()
    ns['grüße'](1)
    ns['関数']()
    ns['𠀀']()

    adaptive = sorted(frame_offsets.get('co_code_adaptive', {0}))
    assert len(adaptive) == 1, adaptive
    adaptive = adaptive[0]

    regions = {}

    def grab(obj, size):
        regions[id(obj)] = ctypes.string_at(id(obj), size)

    codes = []
    for code, _, _ in captured:
        if code not in codes:
            codes.append(code)
    print('# captured by tests/tools/capture_code.py on Python %s (%s)'
          % (platform.python_version(), sys.executable))
    for k, v in sorted(frame_offsets.items()):
        print('# %s: %s' % (k, ' '.join(str(x) for x in sorted(v))))
    print('# type(code).__basicsize__: %d' % type(codes[0]).__basicsize__)
    print('version %d %d' % VER)
    print('pycode_type 0x%x' % id(types.CodeType))
    lines = []
    for code in codes:
        grab(code, type(code).__basicsize__)
        grab(code.co_name, code.co_name.__sizeof__())
        grab(code.co_filename, code.co_filename.__sizeof__())
        name = code.co_name
        if VER >= (3, 11):
            grab(code.co_qualname, code.co_qualname.__sizeof__())
            name = code.co_qualname
        table = code.co_lnotab if VER <= (3, 9) else code.co_linetable
        grab(table, table.__sizeof__())
        lines.append('code 0x%x %s %s %d' % (id(code), name.encode().hex(),
                                              code.co_filename.encode('utf-8', 'surrogateescape').hex(),
                                              code.co_firstlineno))
        seen = set()
        for c, raw, line in captured:
            if c is code and raw not in seen:
                seen.add(raw)
                lines.append('instr 0x%x 0x%x %d' % (id(code), raw, line))
        if VER <= (3, 9):
            starts = list(dis.findlinestarts(code))
            picks = [(off, line) for off, line in starts[:3]]
        else:
            picks = [(s, -1 if l is None else l) for s, e, l in list(code.co_lines())[:4]]
        for off, line in picks:
            raw = off if VER <= (3, 9) else off // 2 if VER == (3, 10) else id(code) + adaptive + off
            if raw not in seen:
                seen.add(raw)
                lines.append('instr 0x%x 0x%x %d' % (id(code), raw, line))
    for addr in sorted(regions):
        print('region 0x%x %s' % (addr, regions[addr].hex()))
    print('\n'.join(lines))


main()
