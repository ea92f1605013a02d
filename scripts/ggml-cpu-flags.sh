#!/usr/bin/env bash
# Prints the GGML CMake flags for this CPU, for build-llama-wheel.sh and build-llama-server.sh alike.
#
# Why: a -march=native build enables ggml's AMX kernels on CPUs that advertise AMX, and those crash
# (SIGSEGV in ggml_backend_amx_mul_mat) inside VMs that do not grant AMX state. So GGML_NATIVE=OFF, and exactly
# the x86 extensions /proc/cpuinfo reports are switched on, AMX excluded. Both builds key their caches by this.
set -euo pipefail
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
printf '%s\n' "$flags"
