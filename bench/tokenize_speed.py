"""Keyword tokeniser throughput (terms/s) and language detection speed, per language, on real paragraphs.

Paragraphs: XQuAD (en, ar, hi, zh; 240 each) and JSQuAD validation (ja; 1,145); French has no dataset
here, so the French tokeniser runs over the English paragraphs (a speed proxy only). Each tokeniser is
warmed up (dictionaries loaded) before timing; the best of three passes is reported. Runs in ~10 s.

--retrieval adds a BM25 check (k1=1.2, b=0.75, in Python): each question against all paragraphs of its
language, Recall@1/@5, for the language's tokeniser, the generic one, the Japanese normal forms, jieba's
search mode and `analyze_query`; about 25 s more of CPU.

--quick runs both parts over the first few paragraphs of each language (and their questions), to show the
benchmark still works; its figures mean nothing.

Run: .venv/bin/python bench/tokenize_speed.py [--retrieval] [--quick]   (data: ../shared/data, CC BY-SA 4.0)
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = {
    "en": DATA / "xquad" / "xquad.en.json",
    "ar": DATA / "xquad" / "xquad.ar.json",
    "hi": DATA / "xquad" / "xquad.hi.json",
    "zh": DATA / "xquad" / "xquad.zh.json",
    "ja": DATA / "jsquad" / "valid-v1.3.json",
}
QUICK_PARAGRAPHS = 12


def load(language: str, limit: int | None = None) -> tuple[list[str], list[str], list[int]]:
    """(distinct paragraphs, questions, index of each question's paragraph): the first `limit` paragraphs and
    the questions about them, or all."""
    data = json.loads(FILES[language].read_text())["data"]
    index: dict[str, int] = {}
    questions, gold = [], []
    for article in data:
        for paragraph in article["paragraphs"]:
            if limit is not None and len(index) == limit and paragraph["context"] not in index:
                return list(index), questions, gold
            position = index.setdefault(paragraph["context"], len(index))
            for qa in paragraph["qas"]:
                questions.append(qa["question"])
                gold.append(position)
    return list(index), questions, gold


def best_time(function: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def speed(limit: int | None = None) -> None:
    from shuken.knowledge.languages import tokenizer_for
    from shuken.knowledge.languages.detect import detect_language

    print(f"{'tokeniser':<26}{'paragraphs':>11}{'chars':>10}{'terms':>9}{'terms/s':>11}{'chars/s':>11}{'detect µs':>11}")
    for language, source in [("ja", "ja"), ("zh", "zh"), ("ar", "ar"), ("hi", "hi"), ("en", "en"), ("fr", "en"), ("und", "en"), ("und", "ja")]:
        paragraphs = load(source, limit)[0]
        tokenizer = tokenizer_for(language)
        tokenizer.terms(paragraphs[0])
        terms = sum(len(tokenizer.terms(p)) for p in paragraphs)
        seconds = best_time(lambda: [tokenizer.terms(p) for p in paragraphs])
        detect_language(paragraphs[0])
        detect = best_time(lambda: [detect_language(p) for p in paragraphs]) / len(paragraphs) * 1e6
        chars = sum(map(len, paragraphs))
        label = language if language == source else f"{language} (on {source} text)"
        print(f"{label:<26}{len(paragraphs):>11}{chars:>10}{terms:>9}{terms / seconds:>11,.0f}{chars / seconds:>11,.0f}{detect:>11.0f}")


def bm25_recall(documents: list[list[str]], queries: list[list[str]], gold: list[int]) -> tuple[float, float]:
    k1, b = 1.2, 0.75
    average = sum(map(len, documents)) / len(documents)
    frequency: collections.Counter[str] = collections.Counter()
    postings: dict[str, list[tuple[int, float]]] = collections.defaultdict(list)
    for index, terms in enumerate(documents):
        counts = collections.Counter(terms)
        frequency.update(counts.keys())
        norm = k1 * (1 - b + b * len(terms) / average)
        for term, count in counts.items():
            postings[term].append((index, count * (k1 + 1) / (count + norm)))
    n = len(documents)
    idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in frequency.items()}
    at1 = at5 = 0
    for query, answer in zip(queries, gold):
        scores: dict[int, float] = collections.defaultdict(float)
        for term in set(query):
            for index, weight in postings.get(term, ()):
                scores[index] += idf[term] * weight
        top = sorted(scores, key=scores.__getitem__, reverse=True)[:5]
        at1 += bool(top) and top[0] == answer
        at5 += answer in top
    return at1 / len(gold), at5 / len(gold)


def retrieval(limit: int | None = None) -> None:
    from shuken.knowledge.languages import analyze_query, tokenizer_for
    from shuken.knowledge.languages.chinese import ChineseTokenizer
    from shuken.knowledge.languages.japanese import JapaneseTokenizer

    def row(language: str, label: str, document: Callable, query: Callable) -> None:
        paragraphs, questions, gold = load(language, limit)
        r1, r5 = bm25_recall([document(p) for p in paragraphs], [query(q) for q in questions], gold)
        print(f"{language:<4}{label:<52}{r1:>8.3f}{r5:>8.3f}")

    print(f"\n{'':<4}{'BM25, question → paragraph (documents / queries)':<52}{'R@1':>8}{'R@5':>8}")
    whitespace = str.split
    for language in ("en", "ar", "hi", "zh", "ja"):
        own = tokenizer_for(language).terms
        row(language, "own tokeniser", own, own)
        row(language, "analyze_query for questions", own, analyze_query)
        row(language, "generic (words, CJK bigrams)", tokenizer_for("und").terms, tokenizer_for("und").terms)
        row(language, "whitespace split (no tokeniser)", whitespace, whitespace)
    search = ChineseTokenizer(search_mode=True).terms
    row("zh", "jieba cut_for_search, both sides", search, search)
    for form in ("hybrid", "lemma", "orthBase", "surface"):
        tokenizer = JapaneseTokenizer(form=form).terms
        row("ja", f"normal form {form}", tokenizer, tokenizer)
    row("ja", "hybrid, no stop lemmas", *(2 * [JapaneseTokenizer(stop_words=False).terms]))
    ja, zh = tokenizer_for("ja").terms, tokenizer_for("zh").terms
    row("ja", "documents as ja, queries ja∪zh (all)", ja, lambda q: list(dict.fromkeys(ja(q) + zh(q))))
    row("ja", "documents as zh (misdetected), analyze_query", zh, analyze_query)
    row("ja", "documents as zh (misdetected), queries ja∪zh", zh, lambda q: list(dict.fromkeys(ja(q) + zh(q))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retrieval", action="store_true", help="also run the BM25 recall check")
    parser.add_argument("--quick", action="store_true",
                        help=f"the first {QUICK_PARAGRAPHS} paragraphs of each language, with --retrieval: "
                             "checks that the benchmark runs")
    args = parser.parse_args()
    missing = [str(path) for path in FILES.values() if not path.exists()]
    if missing:
        print(f"Data not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    limit = QUICK_PARAGRAPHS if args.quick else None
    speed(limit)
    if args.retrieval or args.quick:
        retrieval(limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
