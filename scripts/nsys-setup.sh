#!/usr/bin/env bash
# Puts Debian's Nsight Systems CLI (nsys 2022.4.2, from the non-free
# `nsight-systems` and `nsight-systems-target` packages of bookworm, with
# the `libssh-4` its importer needs) under target/nsys, nothing global: no
# root, no apt sources changed (its own lists live under target/nsys/apt).
# For tests/profile.rs's real-nsys test on a machine without a GPU: nsys
# runs and writes reports there, only with no CUDA kernels in them.
# Idempotent; progress on stderr. Then:
#   NEON_PERF_NSYS=target/nsys/nsys cargo test --test profile
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=target/nsys
if [ -x "$ROOT/nsys" ] && "$ROOT/nsys" --version >/dev/null 2>&1; then
  exit 0
fi
APT="$PWD/$ROOT/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs" "$ROOT/x"
echo "deb http://deb.debian.org/debian bookworm main non-free" > "$APT/sources.list"
opts=(-o "Dir::Etc::sourcelist=$APT/sources.list" -o Dir::Etc::sourceparts=/dev/null
      -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o Debug::NoLocking=1)
echo "nsys-setup: reading Debian's package lists into $APT" >&2
apt-get "${opts[@]}" -qq update
(cd "$APT/debs" && apt-get "${opts[@]}" -qq download nsight-systems nsight-systems-target libssh-4 2>/dev/null)
for d in "$APT"/debs/*.deb; do
  echo "nsys-setup: unpacking $(basename "$d")" >&2
  dpkg-deb -x "$d" "$ROOT/x"
done
# nsys finds its importer beside its own folder: target-linux-x64 and
# host-linux-x64 side by side (Debian splits them between two paths).
rm -rf "$ROOT/target-linux-x64" "$ROOT/host-linux-x64" "$ROOT/lib"
mv "$ROOT/x/usr/lib/x86_64-linux-gnu/nsight-systems/target-linux-x64" "$ROOT/"
mv "$ROOT/x/usr/lib/nsight-systems/host-linux-x64" "$ROOT/"
mkdir -p "$ROOT/lib"
cp -a "$ROOT"/x/usr/lib/x86_64-linux-gnu/libssh.so.4* "$ROOT/lib/"
ln -sf libssh.so.4 "$ROOT/lib/libssh.so"
rm -rf "$ROOT/x" "$APT/debs"
cat > "$ROOT/nsys" <<'WRAP'
#!/bin/sh
# Debian's nsys with the libssh its importer links as libssh.so.
here=$(dirname "$(readlink -f "$0")")
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/target-linux-x64/nsys" "$@"
WRAP
chmod +x "$ROOT/nsys"
"$ROOT/nsys" --version >&2
