"""PII detection benchmark: precision, recall and F1 per entity type for shuken.governance.pii against a
baseline of Presidio's own pattern recognisers (blank spaCy pipeline, so no NER model), on

* Presidio's synthetic English set, ../shared/data/presidio-synth-pii/synth_dataset_v2.json (MIT; names
  from Fake Name Generator, CC BY-SA 3.0 US: read in place, never copied into this repo), and
* a Japanese set generated deterministically by bench/_pii_ja.py.

A prediction is correct when it has the same type as a gold span and the two spans overlap (character
offsets). Label mapping for the English set: PERSON → PERSON, GPE → LOCATION, EMAIL_ADDRESS, PHONE_NUMBER,
CREDIT_CARD, IBAN_CODE, IP_ADDRESS as they are, DATE_TIME → DATE_OF_BIRTH only when a birth cue ("born",
"birth", "DOB") stands in the 40 characters before it. Out of scope (not scored): ORGANIZATION, TITLE, AGE,
NRP, ZIP_CODE, DOMAIN_NAME, US_SSN, US_DRIVER_LICENSE, STREET_ADDRESS, other DATE_TIME; a LOCATION
prediction inside a STREET_ADDRESS span is neither right nor wrong (a city inside an address is a place, the
gold span is the whole address). Any other prediction that matches no gold span is a false positive.

`--quick` scores the first English texts and a few Japanese sentences and times detect() fewer times, to
show the benchmark still works (its figures mean nothing).

    .venv/bin/python bench/pii.py [--ja-count 300] [--json results/pii.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import types
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pii_ja import generate  # noqa: E402

from shuken.governance.pii import ENTITY_TYPES, PiiDetector  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "presidio-synth-pii" / "synth_dataset_v2.json"
DIRECT = {"PERSON": "PERSON", "GPE": "LOCATION", "EMAIL_ADDRESS": "EMAIL_ADDRESS", "PHONE_NUMBER": "PHONE_NUMBER",
          "CREDIT_CARD": "CREDIT_CARD", "IBAN_CODE": "IBAN_CODE", "IP_ADDRESS": "IP_ADDRESS"}  # fmt: skip
BIRTH_CUE = re.compile(r"born|birth|\bdob\b", re.IGNORECASE)
TOLERATED = {"LOCATION": {"STREET_ADDRESS"}}
QUICK = {"english_texts": 40, "ja_count": 30, "repeat": 3}
PRESIDIO_MAP = {"EMAIL_ADDRESS": "EMAIL_ADDRESS", "PHONE_NUMBER": "PHONE_NUMBER", "CREDIT_CARD": "CREDIT_CARD",
                "IBAN_CODE": "IBAN_CODE", "IP_ADDRESS": "IP_ADDRESS", "IN_AADHAAR": "IN_AADHAAR",
                "DATE_TIME": "DATE_OF_BIRTH", "PERSON": "PERSON", "LOCATION": "LOCATION"}  # fmt: skip


def english_set(limit: int | None = None) -> list[dict]:
    """[{text, gold: [(type, start, end)], ignore: [(label, start, end)]}] of the first `limit` texts (all)."""
    out = []
    for record in json.loads(DATA.read_text())[:limit]:
        text, gold, ignore = record["full_text"], [], []
        for span in record["spans"]:
            label, start, end = span["entity_type"], span["start_position"], span["end_position"]
            if label in DIRECT:
                gold.append((DIRECT[label], start, end))
            elif label == "DATE_TIME" and BIRTH_CUE.search(text[max(0, start - 40) : start]):
                gold.append(("DATE_OF_BIRTH", start, end))
            else:
                ignore.append((label, start, end))
        out.append({"text": text, "gold": gold, "ignore": ignore})
    return out


def japanese_set(count: int) -> list[dict]:
    return [{"text": s.text, "gold": list(s.spans), "ignore": []} for s in generate(count)]


def score(samples: list[dict], predict) -> dict[str, Counter]:
    counts: dict[str, Counter] = {kind: Counter() for kind in ENTITY_TYPES}
    for sample in samples:
        predictions = predict(sample["text"])
        for kind, start, end in sample["gold"]:
            hit = any(p[0] == kind and p[1] < end and start < p[2] for p in predictions)
            counts[kind]["tp" if hit else "fn"] += 1
        for kind, start, end in predictions:
            if any(g[0] == kind and g[1] < end and start < g[2] for g in sample["gold"]):
                continue
            if any(label in TOLERATED.get(kind, ()) and s < end and start < e for label, s, e in sample["ignore"]):
                continue
            counts[kind]["fp"] += 1
    return counts


def prf(c: Counter) -> tuple[float, float, float]:
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else float("nan")
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else float("nan")
    f = 2 * p * r / (p + r) if p + r and p == p and r == r else float("nan")
    return p, r, f


def fmt(value: float) -> str:
    return "—" if value != value else f"{value:.2f}"


def table(title: str, systems: dict[str, dict[str, Counter]]) -> str:
    names = list(systems)
    lines = [f"**{title}**", "", "| type | gold | " + " | ".join(f"{n} P / R / F1" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]  # fmt: skip
    for kind in ENTITY_TYPES:
        first = systems[names[0]][kind]
        gold = first["tp"] + first["fn"]
        if not gold and not any(systems[n][kind]["fp"] for n in names):
            continue
        cells = []
        for name in names:
            p, r, f = prf(systems[name][kind])
            cells.append(f"{fmt(p)} / {fmt(r)} / {fmt(f)} (fp {systems[name][kind]['fp']})")
        lines.append(f"| {kind} | {gold} | " + " | ".join(cells) + " |")
    cells = []
    for name in names:
        total = sum(systems[name].values(), Counter())
        p, r, f = prf(total)
        cells.append(f"**{fmt(p)} / {fmt(r)} / {fmt(f)}**")
    gold = sum((systems[names[0]][k]["tp"] + systems[names[0]][k]["fn"] for k in ENTITY_TYPES))
    lines.append(f"| micro-average | {gold} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def presidio_analyzer():
    """Presidio's default recognisers with a blank English spaCy pipeline: no model download is attempted,
    and tldextract (used by the e-mail recogniser) is told not to fetch the public suffix list."""
    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer

    email_recognizer.tldextract = types.SimpleNamespace(extract=tldextract.TLDExtract(suffix_list_urls=()))

    class BlankSpacy(SpacyNlpEngine):
        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    engine = BlankSpacy(models=[{"lang_code": "en", "model_name": "blank"}])
    engine.load()
    return AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


def median_ms(fn, repeat: int = 30) -> float:
    """Median wall time of `fn()` in milliseconds, after one warm-up call (which loads models)."""
    fn()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ja-count", type=int, default=None, help=f"default 300; --quick: {QUICK['ja_count']}")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true", help="tiny data: checks that the benchmark runs")
    args = parser.parse_args()
    if args.ja_count is None:
        args.ja_count = QUICK["ja_count"] if args.quick else 300
    # Timing repeats: the full run's, or a few (warm-up included, a quick run still calls each path).
    repeat, slow_repeat = (QUICK["repeat"], QUICK["repeat"]) if args.quick else (30, 10)

    english = english_set(QUICK["english_texts"] if args.quick else None)
    japanese = japanese_set(args.ja_count)
    ours, fast = PiiDetector(), PiiDetector(names=False)
    presidio = presidio_analyzer()

    def run_ours(detector, language):
        return lambda text: [(e.type, e.start, e.end) for e in detector.detect(text, language)]

    def run_presidio(text):
        results = presidio.analyze(text, language="en")
        return [(PRESIDIO_MAP[r.entity_type], r.start, r.end) for r in results if r.entity_type in PRESIDIO_MAP]

    report: dict = {"date": date.today().isoformat(), "sets": {}}
    outputs = []
    for title, samples, language in (
        (f"Presidio synth_dataset_v2 (English, {len(english)} texts)", english, None),
        (f"Generated Japanese set ({len(japanese)} sentences, bench/_pii_ja.py seed 13)", japanese, "ja"),
    ):
        started = time.perf_counter()
        systems = {
            "shuken": score(samples, run_ours(ours, language)),
            "shuken names=False": score(samples, run_ours(fast, language)),
            "Presidio patterns": score(samples, run_presidio),
        }
        outputs.append(table(title, systems))
        report["sets"][title] = {name: {k: dict(v) for k, v in c.items()} for name, c in systems.items()}
        print(f"{title}: scored in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    en_text = " ".join(sample["text"].replace("\n", " ") for sample in english[:40])[:1000]
    ja_text = "".join(sample["text"] for sample in japanese[:60])[:1000]
    speed = {
        "en names=False": median_ms(lambda: fast.detect(en_text, "en"), repeat),
        "en names=True": median_ms(lambda: ours.detect(en_text, "en"), repeat),
        "ja names=False": median_ms(lambda: fast.detect(ja_text, "ja"), repeat),
        "ja names=True": median_ms(lambda: ours.detect(ja_text, "ja"), slow_repeat),
        "presidio patterns en": median_ms(lambda: presidio.analyze(en_text, language="en"), slow_repeat),
    }
    report["ms_per_1000_chars"] = speed
    outputs.append(
        "**detect() on 1,000 characters, median ms**\n\n| text | names=False | names=True | Presidio patterns |\n"
        "|---|---|---|---|\n"
        f"| English | {speed['en names=False']:.2f} | {speed['en names=True']:.1f} | {speed['presidio patterns en']:.1f} |\n"
        f"| Japanese | {speed['ja names=False']:.2f} | {speed['ja names=True']:.1f} | — |"
    )
    print("\n\n".join(outputs))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
