"""Dev sets for the knowledge benchmarks: SQuAD-format question answering data read as retrieval tasks.

Each set is a list of distinct paragraphs (the documents) and questions, each labelled with the index of
the paragraph it was written about. JSQuAD repeats a paragraph for each question batch, so paragraphs are
de-duplicated by text. The XQuAD files are parallel translations of the same 240 paragraphs and 1,190
questions in the same order, so paragraph i of one language is paragraph i of every other.

Data (CC BY-SA 4.0, see the LICENSE files next to it): ../shared/data/jsquad (JSQuAD v1.3 validation) and
../shared/data/xquad.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = {
    "ja": ("JSQuAD v1.3 valid", DATA / "jsquad" / "valid-v1.3.json"),
    "en": ("XQuAD en", DATA / "xquad" / "xquad.en.json"),
    "ar": ("XQuAD ar", DATA / "xquad" / "xquad.ar.json"),
    "hi": ("XQuAD hi", DATA / "xquad" / "xquad.hi.json"),
    "zh": ("XQuAD zh", DATA / "xquad" / "xquad.zh.json"),
}
LANGUAGES = tuple(SOURCES)

# Questions no paragraph of either dataset answers (everyday tasks, not encyclopaedia topics), in the
# five languages, for the "nothing relevant found" calibration.
OFF_TOPIC = [
    ("en", "What is the recipe for tiramisu?"),
    ("en", "How do I reset my Wi-Fi router password?"),
    ("en", "Can you recommend running shoes for flat feet?"),
    ("en", "How long should I boil an egg for a soft yolk?"),
    ("en", "What is the best way to remove a red wine stain from a carpet?"),
    ("en", "How do I fix a flat tire on my bicycle?"),
    ("en", "Which houseplants are safe for cats?"),
    ("en", "How do I write a cover letter for a marketing internship?"),
    ("en", "What is today's exchange rate between the euro and the yen?"),
    ("en", "How can I stop my dog from barking at night?"),
    ("ja", "ティラミスの作り方を教えてください。"),
    ("ja", "猫が吐いたときはどうすればいいですか。"),
    ("ja", "新しいスマートフォンの初期設定の方法は？"),
    ("zh", "怎样做红烧肉？"),
    ("zh", "我的笔记本电脑开不了机怎么办？"),
    ("zh", "附近哪家咖啡店周末营业？"),
    ("ar", "ما هي طريقة تحضير الكنافة؟"),
    ("ar", "كيف أغير كلمة المرور لبريدي الإلكتروني؟"),
    ("hi", "गाजर का हलवा कैसे बनाते हैं?"),
    ("hi", "मेरे फ़ोन की बैटरी जल्दी क्यों खत्म हो जाती है?"),
]


@dataclass
class DevSet:
    language: str
    name: str
    paragraphs: list[str]  # distinct; the index is the document
    questions: list[str]
    gold: list[int]  # paragraph index of each question

    def sample(self, limit: int | None) -> list[int]:
        """Indices of at most `limit` questions, evenly spread over the set (so over many articles), in
        order. Deterministic: equal-sized parallel sets (XQuAD) get the same indices."""
        total = len(self.questions)
        if not limit or limit >= total:
            return list(range(total))
        return sorted({round(i * total / limit) for i in range(limit)})

    def head(self, paragraphs: int) -> "DevSet":
        """The first `paragraphs` paragraphs and the questions about them (the benchmarks' --quick data).
        XQuAD files are parallel, so the heads of two languages are still the same paragraphs."""
        kept = [i for i, gold in enumerate(self.gold) if gold < paragraphs]
        return DevSet(self.language, f"{self.name} (first {paragraphs} paragraphs)", self.paragraphs[:paragraphs],
                      [self.questions[i] for i in kept], [self.gold[i] for i in kept])


def document_text(context: str) -> str:
    """JSQuAD writes "title [SEP] text"; a document has its title on a line of its own instead."""
    title, separator, body = context.partition(" [SEP] ")
    return f"{title}\n{body}" if separator else context


def load(language: str) -> DevSet:
    name, path = SOURCES[language]
    index_of: dict[str, int] = {}
    questions, gold = [], []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            text = document_text(paragraph["context"])
            index = index_of.setdefault(text, len(index_of))
            for qa in paragraph["qas"]:
                questions.append(qa["question"])
                gold.append(index)
    return DevSet(language, name, list(index_of), questions, gold)
