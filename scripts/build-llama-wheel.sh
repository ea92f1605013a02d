#!/usr/bin/env bash
# Build llama-cpp-python once per CPU feature set and cache the wheel outside the repo.
#
# Why: a -march=native build enables ggml's AMX kernels on CPUs that advertise AMX, and those crash
# (SIGSEGV in ggml_backend_amx_mul_mat) inside VMs that do not grant AMX state. We therefore build
# with GGML_NATIVE=OFF and switch on exactly the x86 extensions /proc/cpuinfo reports, AMX excluded.
# pip's own wheel cache ignores CMAKE_ARGS, so we keep our own, keyed by the flags.
set -euo pipefail
version="${1:?usage: build-llama-wheel.sh VERSION PYTHON}"
python="${2:?usage: build-llama-wheel.sh VERSION PYTHON}"

flags="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_TESTS=OFF"
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { [[ "$cpu_flags" == *" $1 "* ]]; }
has avx && flags+=" -DGGML_AVX=ON"
has avx2 && flags+=" -DGGML_AVX2=ON"
has fma && flags+=" -DGGML_FMA=ON"
has f16c && flags+=" -DGGML_F16C=ON"
has bmi2 && flags+=" -DGGML_BMI2=ON"
has avx_vnni && flags+=" -DGGML_AVX_VNNI=ON"
if has avx512f && has avx512bw && has avx512vl; then
  flags+=" -DGGML_AVX512=ON"
  has avx512_vnni && flags+=" -DGGML_AVX512_VNNI=ON"
  has avx512_bf16 && flags+=" -DGGML_AVX512_BF16=ON"
fi

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
