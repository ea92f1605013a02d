"""How the native libraries in one Shuken process share the CPU.

NumPy's OpenBLAS keeps its helper threads spinning for ~0.1 s after every multi-threaded call. On a
2-core machine that spinning takes a core from the embedding engine's OpenMP threads, whose barriers
then stall: measured here, a query embedding right after a 100k-vector search took 88 ms instead of
15. Vector search is memory-bound and runs beside keyword search anyway, so BLAS gets one thread.
"""

from __future__ import annotations

import threading

_done = False
_lock = threading.Lock()


def limit_blas_threads() -> None:
    """Once per process; threadpoolctl changes the limit of the BLAS already loaded, whatever the import order."""
    global _done
    with _lock:
        if _done:
            return
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        _done = True
