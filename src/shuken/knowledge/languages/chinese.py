"""Chinese: jieba word segmentation (precise mode with HMM for unknown words), punctuation and a short
stop-word list dropped, Latin words case-folded and English-stemmed.

jieba's dictionary (about 350k words) is loaded once, on first use, under a lock; its logging is silenced.
After initialisation a jieba Tokenizer only reads its dictionary, so one instance serves all threads.
`search_mode=True` would add the shorter words inside long ones (中华人民共和国 → 中华 华人 人民 共和 共和国 …)
as cut_for_search does; bench/tokenize_speed.py --retrieval measures it on XQuAD (it did not help, see there).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import ClassVar

from shuken.knowledge.languages._common import MARKS, WORD, english_terms, finalize, normalize

CHINESE_STOP_WORDS = frozenset(
    """
    的 了 在 是 和 与 及 或 也 都 而 就 之 其 这 那 这个 那个 这些 那些 着 过 把 被 让 给 从 对 向 于 以 为 因为 所以
    但 但是 如果 虽然 然而 并 并且 而且 或者 还 又 很 最 更 已 已经 我 你 他 她 它 我们 你们 他们 她们 它们 自己
    有 没有 不 没 个 些 什么 哪 哪个 哪些 哪里 谁 何 何时 怎么 怎样 如何 为什么 多少 几 吗 呢 吧 啊 即 等 等等
    之一 此 该 各 每 由 将 会 能 可以 可 要 所 地 得 上 中 下 里 内 时 后 前
    """.split()
)

_HAS_WORD_CHAR = re.compile(r"[^\W_]")
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_PLAIN_WORD = re.compile(rf"[^\W_](?:[^\W_]|[{MARKS}])*")

_lock = threading.Lock()
_segmenter = None


def segmenter():
    """The process-wide jieba Tokenizer, initialised once."""
    global _segmenter
    if _segmenter is None:
        with _lock:
            if _segmenter is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                logging.getLogger("jieba").setLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _segmenter = tokenizer
    return _segmenter


class ChineseTokenizer:
    languages: ClassVar[tuple[str, ...]] = ("zh",)

    def __init__(self, search_mode: bool = False) -> None:
        self.search_mode = search_mode

    def terms(self, text: str) -> list[str]:
        text = normalize(text)
        jieba = segmenter()
        words = jieba.cut_for_search(text) if self.search_mode else jieba.cut(text)
        terms: list[str] = []
        for word in words:
            if word in CHINESE_STOP_WORDS or not _HAS_WORD_CHAR.search(word):
                continue
            if word.isascii():
                terms.extend(english_terms(_ASCII_WORD.findall(word)))
            elif _PLAIN_WORD.fullmatch(word):
                terms.append(word)
            else:  # a block with punctuation inside ("北京-上海", "50%的"): its words
                terms.extend(w for w in WORD.findall(word) if w not in CHINESE_STOP_WORDS)
        return finalize(terms)
