#!/usr/bin/env bash
# Build llama-cpp-python once per CPU feature set and cache the wheel outside the repo.
#
# The CPU flags come from ggml-cpu-flags.sh (AMX off: see there).
# pip's own wheel cache ignores CMAKE_ARGS, so we keep our own, keyed by the flags.
set -euo pipefail
version="${1:?usage: build-llama-wheel.sh VERSION PYTHON}"
python="${2:?usage: build-llama-wheel.sh VERSION PYTHON}"

flags="$("$(dirname "$0")/ggml-cpu-flags.sh")"

key=$(printf '%s %s' "$version" "$flags" | sha256sum | cut -c1-16)
cache="${SHUKEN_WHEEL_CACHE:-$HOME/.cache/shuken/wheels}/llama-$key"
if ! ls "$cache"/llama_cpp_python-"$version"-*.whl >/dev/null 2>&1; then
  echo "Building llama-cpp-python $version for this CPU (one time, about 5 minutes)..." >&2
  echo "CMAKE_ARGS=$flags" >&2
  mkdir -p "$cache"
  CMAKE_ARGS="$flags" "$python" -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
    -w "$cache" "llama-cpp-python==$version" >&2
fi
ls "$cache"/llama_cpp_python-"$version"-*.whl
