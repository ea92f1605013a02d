"""Where the benchmark scripts write their result files: bench/results (git-ignored), or the directory named
by $SHUKEN_BENCH_RESULTS, so that tests/test_bench_quick.py can keep its runs out of the working tree."""

from __future__ import annotations

import os
from pathlib import Path

ENVIRONMENT_VARIABLE = "SHUKEN_BENCH_RESULTS"


def results_dir() -> Path:
    """The results directory, created if missing."""
    directory = Path(os.environ.get(ENVIRONMENT_VARIABLE) or Path(__file__).resolve().parent / "results")
    directory.mkdir(parents=True, exist_ok=True)
    return directory
