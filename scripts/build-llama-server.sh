#!/usr/bin/env bash
# Build llama.cpp's own C++ `llama-server` once per version and CPU feature set, cached outside the repo.
#
# Why: it is the throughput baseline for bench/gateway.py (continuous batching over --parallel slots in C++),
# and no wheel ships it. The llama-cpp-python sdist vendors the exact llama.cpp that Shuken runs in-process,
# so building from it compares like with like. Same GGML CPU flags as build-llama-wheel.sh (AMX off: its
# kernels crash in VMs that do not grant AMX state). Prints the binary's path on stdout; progress on stderr.
# With --cached-only it never builds: exit status 3 if there is no cached binary yet.
set -euo pipefail
usage="usage: build-llama-server.sh VERSION PYTHON [--cached-only]"
version="${1:?$usage}"
python="${2:?$usage}"
cached_only="${3:-}"

flags="$("$(dirname "$0")/ggml-cpu-flags.sh")"
server_flags="-DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF $flags"

key=$(printf '%s %s' "$version" "$server_flags" | sha256sum | cut -c1-16)
cache="${SHUKEN_SERVER_CACHE:-$HOME/.cache/shuken/llama-server}/$version-$key"
binary="$cache/llama-server"
if [ ! -x "$binary" ] && [ "$cached_only" = "--cached-only" ]; then
  exit 3
fi
if [ ! -x "$binary" ]; then
  echo "Building llama-server from llama-cpp-python $version's sdist (one time, about 10 minutes)..." >&2
  echo "cmake flags: $server_flags" >&2
  generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$work" "llama-cpp-python==$version" >&2
  tar -xzf "$work"/llama_cpp_python-"$version".tar.gz -C "$work"
  source_dir="$work/llama_cpp_python-$version/vendor/llama.cpp"
  # shellcheck disable=SC2086  # the flag list is meant to split into words
  cmake -S "$source_dir" -B "$work/build" "${generator[@]}" $server_flags >&2
  cmake --build "$work/build" --target llama-server -j "${SHUKEN_BUILD_JOBS:-2}" >&2
  # Static ggml/llama (BUILD_SHARED_LIBS=OFF): one self-contained file to cache, no RPATH into the build tree.
  mkdir -p "$cache"
  cp "$work/build/bin/llama-server" "$binary.tmp" && mv "$binary.tmp" "$binary"
fi
echo "$binary"
