"""Hindi: Devanagari normalisation, Snowball (light suffix) stemming, stop words.

NFKC decomposes the nukta letters (क़ ख़ ग़ ज़ ड़ ढ़ फ़ य़ are composition exclusions), so deleting the
nukta U+093C maps them to their base letters: ज़रूरी and जरूरी, डिफ़ेंस and डिफेंस are one term.
Chandrabindu ँ → anusvara ं (spelling varies freely: हाँ/हां), Devanagari digits → ASCII, danda । and
double danda ॥ are punctuation. Zero-width (non-)joiners are removed by the shared normalisation.
"""

from __future__ import annotations

import re
from typing import ClassVar

from shuken.knowledge.languages._common import MARKS, normalize, script_terms, stemmer

_NORMALISE: dict[int, str | None] = {0x093C: None, 0x0901: "\u0902"}
_NORMALISE.update({0x0966 + d: str(d) for d in range(10)})  # ०-९

_WORD = re.compile(rf"[^\W_](?:[^\W_]|[{MARKS}])*")
_DEVANAGARI = re.compile(r"[\u0900-\u097f\ua8e0-\ua8ff]")


def normalise_hindi(text: str) -> str:
    return normalize(text).translate(_NORMALISE)


HINDI_STOP_WORDS = frozenset(
    normalise_hindi(w)
    for w in """
    के का की है हैं में और से को पर यह वह ये वे था थी थे हो होता होती होते होना होने हुआ हुई हुए गया गई गए
    कर करना करने करते करता करती किया किए की लिए लिये एक भी तो ही नहीं न ना जो कि इस उस इन उन इसके उसके
    इसका उसका इसकी उसकी इनके उनके इनका उनका इनकी उनकी अपने अपना अपनी जब तक या किसी कोई कुछ सकता सकते
    सकती रहा रहे रही द्वारा साथ बाद क्या कौन कब कहाँ कहां कैसे कितने कितना कितनी क्यों किस किसे किसने
    मैं हम आप तुम वाले वाली वाला यहाँ वहाँ जैसे तथा एवं व अथवा लेकिन परंतु परन्तु जिस जिसे जिसके जिसका
    जिसकी जिन जिनके तब अब ने
    """.split()
)


class HindiTokenizer:
    languages: ClassVar[tuple[str, ...]] = ("hi",)

    def terms(self, text: str) -> list[str]:
        return script_terms(_WORD.findall(normalise_hindi(text)), stemmer("hindi"),
                            lambda word: bool(_DEVANAGARI.match(word)),
                            lambda word: None if word in HINDI_STOP_WORDS else word)
