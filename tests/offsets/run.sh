#!/usr/bin/env bash
# Check src/pylayout.c against every CPython whose headers are on this machine:
#   - check_offsets.c: py_layout__builtin(3, N) == offsetof() in python3.N's own headers, and
#     for 3.13+ py_layout__from_debug_offsets() on the real .PyRuntime section of each binary
#     (3.14+: and py_layout__asyncio_running_task() on the _asyncio module's .AsyncioDebug);
#   - live_walk.py: the layout walks a running interpreter's own threads and frames;
#   - tsd_offset.c: where glibc keeps pthread keys (host glibc and the sid root's).
# Interpreters: pyenv (~/.pyenv/versions/*), /usr/include/python3.*, and Debian sid's 3.13-3.15
# in the root scripts/sid-root.sh prints (and creates when missing; PYTRACE_NO_SID=1 skips it).
# Usage: tests/offsets/run.sh        Exits non-zero on any mismatch.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CC=${CC:-cc}
CFLAGS="-std=gnu11 -g -O2 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Werror -D_GNU_SOURCE"
work=$(mktemp -d /tmp/pytrace-offsets.XXXXXX)
sid_tmp=
cleanup() { rm -rf "$work"; [ -n "$sid_tmp" ] && rm -rf "$sid_tmp"; }
trap cleanup EXIT

fail=0
ran=()

$CC $CFLAGS -I"$top/include" -I"$top/src" -c "$top/src/pylayout.c" -o "$work/pylayout.o" || exit 1
$CC $CFLAGS -pthread "$here/tsd_offset.c" -o "$work/tsd_offset" || exit 1

tsd_host=$("$work/tsd_offset" -q) || { echo "tsd_offset failed on the host"; fail=1; }
echo "glibc $(ldd --version | head -n1 | awk '{print $NF}') (host): specific_1stblock at ${tsd_host:-?}"

sid=
if [ "${PYTRACE_NO_SID:-0}" != 1 ]; then
    sid=$("$top/scripts/sid-root.sh") || { echo "sid root unavailable: skipping 3.13-3.15 from sid"; sid=; }
fi
tsd_sid=
if [ -n "$sid" ]; then
    sid_tmp=$(mktemp -d "$sid/tmp/pytrace-offsets.XXXXXX")
    cp "$work/tsd_offset" "$here/live_walk.py" "$sid_tmp/"
    tsd_sid=$(chroot "$sid" "/tmp/$(basename "$sid_tmp")/tsd_offset" -q) ||
        { echo "tsd_offset failed in the sid root"; fail=1; }
    echo "glibc $(chroot "$sid" ldd --version | head -n1 | awk '{print $NF}') (sid root): specific_1stblock at ${tsd_sid:-?}"
    if [ -n "$tsd_host" ] && [ -n "$tsd_sid" ] && [ "$tsd_host" != "$tsd_sid" ]; then
        echo "NOTE: the two glibcs keep pthread keys at different offsets"
    fi
fi

# has_pyruntime FILE: FILE is an ELF with a .PyRuntime section.
has_pyruntime() { [ -f "$1" ] && readelf -SW "$1" 2>/dev/null | grep -q ' \.PyRuntime '; }

# check LABEL MINOR INCDIR EXTRA_CFLAGS RUNNER TSD ELF...
#   RUNNER: command prefix that runs python3.MINOR (empty: no live walk)
check() {
    local label=$1 minor=$2 inc=$3 extra=$4 runner=$5 tsd=$6
    shift 6
    local bin="$work/check_$label"
    echo "== 3.$minor: $label"
    # shellcheck disable=SC2086
    if ! $CC $CFLAGS $extra -DPY_MINOR="$minor" -I"$inc" -I"$work/shim-$label" \
            -I"$top/include" -I"$top/src" "$here/check_offsets.c" "$work/pylayout.o" -o "$bin"; then
        echo "3.$minor $label: check_offsets does not build"; fail=1; return
    fi
    "$bin" "$@" || fail=1
    if [ -n "$runner" ]; then
        local layout
        layout=$("$bin" --print | tr '\n' ' ')
        # shellcheck disable=SC2086
        $runner tsd_off="$tsd" $layout || fail=1
    fi
    ran+=("3.$minor ($label)")
}

# Flags the interpreter itself was built with that change struct layouts (Debian's JIT:
# -D_Py_TIER2=3 -D_Py_JIT grows _PyThreadStateImpl, hence PyInterpreterState's size).
core_flags() {
    "$@" -c "import sysconfig; print(sysconfig.get_config_var('PY_CORE_CFLAGS') or '')" 2>/dev/null |
        tr ' ' '\n' | grep -E '^-D_Py_(TIER2|JIT)' | tr '\n' ' '
}

# pyenv builds
for d in $(ls -d "$HOME"/.pyenv/versions/3.* 2>/dev/null | sort -V); do
    [ -d "$d" ] || continue
    v=$(basename "$d"); m=$(echo "$v" | cut -d. -f2)
    [[ "$v" =~ ^3\.[0-9]+\.[0-9]+$ ]] && [ "$m" -ge 8 ] || continue
    inc="$d/include/python3.$m"
    [ -f "$inc/Python.h" ] || continue
    elfs=()
    for f in "$d/bin/python3.$m" "$d/lib/libpython3.$m.so"; do has_pyruntime "$f" && elfs+=("$f"); done
    py="$d/bin/python3.$m"
    runner=; [ -x "$py" ] && runner="$py $here/live_walk.py"
    check "pyenv-$v" "$m" "$inc" "$(core_flags "$py")" "$runner" "$tsd_host" "${elfs[@]}"
done

# the host's own
for inc in /usr/include/python3.*; do
    [ -f "$inc/Python.h" ] || continue
    m=$(basename "$inc" | cut -d. -f2)
    [[ "$m" =~ ^[0-9]+$ ]] && [ "$m" -ge 8 ] || continue
    elfs=()
    for f in /usr/bin/python3."$m" /usr/lib/x86_64-linux-gnu/libpython3."$m".so.1.0; do
        has_pyruntime "$f" && elfs+=("$f")
    done
    py=/usr/bin/python3.$m
    runner=; [ -x "$py" ] && runner="$py $here/live_walk.py"
    check "host" "$m" "$inc" "$(core_flags "$py")" "$runner" "$tsd_host" "${elfs[@]}"
done

# Debian sid's, in the root. Its python3.N/pyconfig.h includes <x86_64-linux-gnu/python3.N/...>,
# so that one directory is exposed through a shim (not all of the root's /usr/include, whose
# libc headers do not mix with the host's).
if [ -n "$sid" ]; then
    for inc in "$sid"/usr/include/python3.*; do
        [ -f "$inc/Python.h" ] || continue
        m=$(basename "$inc" | cut -d. -f2)
        [[ "$m" =~ ^[0-9]+$ ]] && [ "$m" -ge 8 ] || continue
        mkdir -p "$work/shim-sid/x86_64-linux-gnu"
        ln -sfn "$sid/usr/include/x86_64-linux-gnu/python3.$m" "$work/shim-sid/x86_64-linux-gnu/python3.$m"
        ln -sfn "$work/shim-sid" "$work/shim-sid-3.$m"
        elfs=()
        for f in "$sid/usr/bin/python3.$m" "$sid/usr/lib/x86_64-linux-gnu/libpython3.$m.so.1.0"; do
            has_pyruntime "$f" && elfs+=("$f")
        done
        # 3.14+: an _asyncio built as a module has the .AsyncioDebug section (check_offsets.c)
        for f in "$sid/usr/lib/python3.$m"/lib-dynload/_asyncio.*.so; do
            [ "$m" -ge 14 ] && [ -f "$f" ] && elfs+=("asyncio=$f")
        done
        runner=
        if [ -x "$sid/usr/bin/python3.$m" ]; then
            runner="chroot $sid python3.$m /tmp/$(basename "$sid_tmp")/live_walk.py"
        fi
        check "sid-3.$m" "$m" "$inc" "$(core_flags chroot "$sid" python3."$m")" "$runner" \
            "$tsd_sid" "${elfs[@]}"
    done
fi

echo "== versions checked: ${ran[*]:-none}"
echo "== glibc specific_1stblock: host ${tsd_host:-?}${sid:+, sid root ${tsd_sid:-?}}"
if [ "$fail" != 0 ]; then
    echo "FAILED"
    exit 1
fi
echo "all passed"
