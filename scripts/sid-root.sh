#!/usr/bin/env bash
# Build (once) a Debian unstable root holding Debian's own python3.13, 3.14 and 3.15 (and libpq5,
# which workloads load through ctypes), so the integration tests can run workloads on them with
# chroot and trace them from the host.
# Usage: scripts/sid-root.sh [DIR]    (default: $PYTRACE_SID_ROOT or /var/cache/pytrace-bpf/sid-root)
# Prints the root's path as its last line on success. Idempotent: an existing root whose stamp
# records the current package list is reused; a root built with an older list is topped up with
# apt-get inside the root (or rebuilt from scratch if that fails).
set -euo pipefail

dir=${1:-${PYTRACE_SID_ROOT:-/var/cache/pytrace-bpf/sid-root}}
dir=${dir%/}
stamp="$dir/.pytrace-complete"
pkgs=python3.13,python3.14,python3.15,libpython3.13-dev,libpython3.14-dev,libpython3.15-dev,libpq5

# The stamp holds the package list the root was built (or topped up) with.
stamp_ok() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pkgs" ]; }

if stamp_ok; then
    echo "$dir"
    exit 0
fi

# One builder at a time (two test runners may start together); re-check under the lock.
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
if stamp_ok; then
    echo "$dir"
    exit 0
fi

# A root from an older package list: install what is missing inside it.
if [ -f "$stamp" ]; then
    missing=()
    for p in ${pkgs//,/ }; do
        chroot "$dir" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        printf '%s\n' "$pkgs" >"$stamp"
        echo "$dir"
        exit 0
    fi
    echo "sid-root: adding ${missing[*]} to $dir" >&2
    if { chroot "$dir" apt-get -o Acquire::Check-Valid-Until=false update &&
         chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; } \
         >"$dir.log" 2>&1; then
        printf '%s\n' "$pkgs" >"$stamp"
        echo "$dir"
        exit 0
    fi
    echo "sid-root: apt-get in the root failed (last lines of $dir.log below); rebuilding it" >&2
    tail -n 5 "$dir.log" >&2
fi

# The mirror apt already uses on this machine (deb822 or one-line sources).
mirror=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null |
         awk '{print $2}' | grep -v security | head -n1 || true)
if [ -z "$mirror" ]; then
    mirror=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

command -v debootstrap >/dev/null || { echo "sid-root: debootstrap is not installed (scripts/install-deps.sh)" >&2; exit 1; }

rm -rf "$dir.tmp"
echo "sid-root: debootstrap sid from $mirror into $dir (one time, about a minute)" >&2
if ! debootstrap --variant=minbase --include="$pkgs" sid "$dir.tmp" "$mirror" >"$dir.log" 2>&1; then
    echo "sid-root: debootstrap failed, last lines of $dir.log:" >&2
    tail -n 20 "$dir.log" >&2
    exit 1
fi
for v in 3.13 3.14 3.15; do
    [ -x "$dir.tmp/usr/bin/python$v" ] || { echo "sid-root: python$v missing from the root" >&2; exit 1; }
done
ls "$dir.tmp"/usr/lib/*/libpq.so.5 >/dev/null 2>&1 || { echo "sid-root: libpq.so.5 missing from the root" >&2; exit 1; }
printf '%s\n' "$pkgs" >"$dir.tmp/.pytrace-complete"
rm -rf --one-file-system "$dir"
mv "$dir.tmp" "$dir"
echo "$dir"
