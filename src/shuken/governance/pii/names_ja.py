"""Japanese names and places: GiNZA's named entities (ENE labels) checked against Sudachi's part-of-speech
tags (人名 / 地名), and a pattern for postal addresses (〒, prefecture, municipality, block number) that
needs no model."""

from __future__ import annotations

import re
from collections.abc import Iterator

from shuken.governance.pii.entities import PiiEntity
from shuken.governance.pii.models import pipeline

GINZA = ("ja_ginza",)
PERSON_LABELS = frozenset({"Person"})
LOCATION_LABELS = frozenset(
    {"Province", "City", "County", "Country", "GPE_Other", "Location_Other", "Domestic_Region", "Postal_Address"}
)
HONORIFICS = frozenset({"さん", "様", "さま", "氏", "君", "くん", "ちゃん", "先生", "殿", "様方"})
PREFECTURES = (
    "北海道 青森県 岩手県 宮城県 秋田県 山形県 福島県 茨城県 栃木県 群馬県 埼玉県 千葉県 東京都 神奈川県 新潟県 富山県 "
    "石川県 福井県 山梨県 長野県 岐阜県 静岡県 愛知県 三重県 滋賀県 京都府 大阪府 兵庫県 奈良県 和歌山県 鳥取県 島根県 "
    "岡山県 広島県 山口県 徳島県 香川県 愛媛県 高知県 福岡県 佐賀県 長崎県 熊本県 大分県 宮崎県 鹿児島県 沖縄県"
).split()
_WORD = r"[\u4e00-\u9fff\u3005\u3041-\u3096\u30a1-\u30fa\u30fcヶケ]"
# Block numbers after a place name: 1-2-3, 1丁目2番3号, 12番地, optionally preceded by a short town name.
_BLOCK = re.compile(rf"{_WORD}{{0,6}}?\d+(?:(?:丁目|番地|番|号|-)\d*)+号?|{_WORD}{{0,6}}?\d+(?=号|番)")
_ADDRESS = re.compile(
    rf"(?:〒\s?\d{{3}}-?\d{{4}}\s?)?(?:{'|'.join(PREFECTURES)})"
    rf"(?:{_WORD}{{1,6}}?[市区町村郡])+(?:{_WORD}{{0,8}}?\d+(?:(?:丁目|番地|番|号|-)\d*)+号?)?"
)


def find_addresses(folded: str) -> Iterator[PiiEntity]:
    """Addresses that start with a prefecture (and 〒 postal code): pattern only, no model."""
    for match in _ADDRESS.finditer(folded):
        yield PiiEntity("LOCATION", match.start(), match.end(), match.group(), 0.8, False)


def _extend_block(folded: str, end: int) -> int:
    match = _BLOCK.match(folded, end)
    return match.end() if match else end


def find_names(text: str, folded: str) -> Iterator[PiiEntity]:
    """PERSON and LOCATION from GiNZA: an entity whose tokens Sudachi tags 地名 is a location even when the
    model labels it Person, and vice versa; runs of 人名 tokens the model missed count when they form
    surname + given name or carry an honorific (さん, 様, …); a place is extended over its block number."""
    nlp = pipeline(GINZA)
    if nlp is None:
        return
    doc = nlp(text)
    covered: set[int] = set()
    kind: str | None  # "PERSON" or "LOCATION"; None for a token that is neither
    for ent in doc.ents:
        if ent.label_ not in PERSON_LABELS and ent.label_ not in LOCATION_LABELS:
            continue
        tags = [token.tag_ for token in ent]
        if any("地名" in tag for tag in tags):
            kind = "LOCATION"
        elif any("人名" in tag for tag in tags):
            kind = "PERSON"
        elif ent.label_ in PERSON_LABELS:
            kind = "PERSON"
        elif any("固有名詞" in tag for tag in tags):
            kind = "LOCATION"
        else:
            continue  # a common noun the model called a place (首都, 地元)
        covered.update(range(ent.start, ent.end))
        yield _entity(text, folded, kind, ent.start_char, ent.end_char, 0.85)
    tokens = list(doc)
    i = 0
    while i < len(tokens):
        tag = tokens[i].tag_
        kind = "PERSON" if "人名" in tag else "LOCATION" if "地名" in tag else None
        if kind is None or i in covered:
            i += 1
            continue
        j = i
        marker = "人名" if kind == "PERSON" else "地名"
        while j + 1 < len(tokens) and marker in tokens[j + 1].tag_ and j + 1 not in covered:
            j += 1
        run_tags = [t.tag_ for t in tokens[i : j + 1]]
        honorific = j + 1 < len(tokens) and tokens[j + 1].text in HONORIFICS
        full_name = any(t.endswith("姓") for t in run_tags) and any(t.endswith("名") for t in run_tags)
        if kind == "LOCATION" or full_name or honorific:
            score = 0.7 if kind == "PERSON" else 0.65
            yield _entity(text, folded, kind, tokens[i].idx, tokens[j].idx + len(tokens[j].text), score)
        i = j + 1


def _entity(text: str, folded: str, kind: str, start: int, end: int, score: float) -> PiiEntity:
    if kind == "LOCATION":
        end = _extend_block(folded, end)
    return PiiEntity(kind, start, end, text[start:end], score, False)
