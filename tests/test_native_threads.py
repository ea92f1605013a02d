"""Process-wide CPU sharing of the native libraries: short OpenMP spin-waits unless the operator chose
otherwise, and one BLAS thread, whatever was imported first."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json, os, numpy
from threadpoolctl import threadpool_info
from shuken import native_threads
before = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
native_threads.configure()
native_threads.configure()
after = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
print(json.dumps({"spin": os.environ.get("GOMP_SPINCOUNT"), "before": before, "after": after}))
"""


def _probe(**env) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS")}
    environment.update(env)
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=environment,
                            timeout=60, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_short_openmp_spin_and_one_blas_thread_even_after_numpy_was_loaded():
    found = _probe()
    assert found["spin"] == "1000"
    assert found["before"] and (max(found["before"]) > 1 or len(os.sched_getaffinity(0)) == 1)
    assert found["after"] == [1] * len(found["before"])


def test_an_operators_spin_count_is_kept():
    assert _probe(GOMP_SPINCOUNT="50000")["spin"] == "50000"
