"""English and French: case-folded words, French elisions removed, Snowball stems, modest stop lists.

The stop lists are deliberately short (function words, forms of be/have/être/avoir, question words).
Long lists drop content words: stopwords-iso's 1,298 English words include "computer", "information",
"research", "system", "million", "page", "name"; its French list "premier", "nouveau", "personne". BM25
already discounts frequent words, so a stop list only needs to remove what never helps. On XQuAD English
(BM25, question → paragraph) R@1/R@5 is 0.935/0.987 with this list, 0.919/0.987 with stopwords-iso's and
0.931/0.986 with none.
"""

from __future__ import annotations

import re
from typing import ClassVar

from shuken.knowledge.languages._common import (
    APOSTROPHES,
    ENGLISH_STOP_WORDS,
    MARKS,
    english_terms,
    finalize,
    normalize,
    stemmer,
)

# Words may contain inner apostrophes ("don't", "l'école", "aujourd'hui"); hyphens and other
# punctuation separate words.
_WORD = re.compile(rf"[^\W_](?:[^\W_]|[{MARKS}])*(?:'[^\W_](?:[^\W_]|[{MARKS}])*)*")

FRENCH_ELISIONS = ("l", "d", "j", "qu", "n", "s", "c", "m", "t", "jusqu", "lorsqu", "puisqu", "quoiqu")
_ELISION = re.compile(rf"^(?:{'|'.join(sorted(FRENCH_ELISIONS, key=len, reverse=True))})'")

FRENCH_STOP_WORDS = frozenset(
    """
    a à afin ai aie aient aies ait as au aucun aucune auquel aura aurai auraient aurais aurait auras aurez
    auriez aurions aurons auront aussi autre autres aux auxquelles auxquels avaient avais avait avant avec
    avez aviez avions avoir avons ayant ayez ayons c ça car ce ceci cela celle celles celui cependant ces cet
    cette ceux chaque chez combien comme comment d dans de depuis des desquelles desquels dès donc dont du
    duquel elle elles en entre es est et étaient étais était étant été êtes étiez étions être eu eue eues eûmes
    eurent eus eusse eussent eusses eussiez eussions eut eût eûtes eux fûmes furent fus fusse fussent fusses
    fussiez fussions fut fût fûtes ici il ils j je jusqu l la laquelle le lequel les lesquelles lesquels leur
    leurs lors lorsqu lui m ma mais me même mêmes mes moi mon n ne ni nos notre nous on ont or ou où par parce
    pas pendant peu peut plus pour pourquoi puis qu quand que quel quelle quelles quels qui quoi s sa sans se
    sera serai seraient serais serait seras serez seriez serions serons seront ses si sinon soi soient sois
    soit sommes son sont soyez soyons suis sur t ta te tes toi ton tous tout toute toutes très tu un une vos
    votre vous y
    """.split()
)


def _words(text: str) -> list[str]:
    return _WORD.findall(normalize(text).translate(APOSTROPHES))


class EnglishTokenizer:
    languages: ClassVar[tuple[str, ...]] = ("en",)

    def terms(self, text: str) -> list[str]:
        words: list[str] = []
        for word in _words(text):
            if "'" in word and word not in ENGLISH_STOP_WORDS:
                # the stemmer removes a possessive 's; other contractions split into their parts
                if word.endswith("'s") and word.count("'") == 1:
                    words.append(word)
                else:
                    words.extend(word.split("'"))
            else:
                words.append(word)
        return finalize(english_terms(words))


class FrenchTokenizer:
    languages: ClassVar[tuple[str, ...]] = ("fr",)

    def terms(self, text: str) -> list[str]:
        words: list[str] = []
        for word in _words(text):
            if "'" in word:
                while (stripped := _ELISION.sub("", word, count=1)) != word:  # l', d'… (also "qu'à l'")
                    word = stripped
                if "'" in word and word != "aujourd'hui":  # other apostrophes separate words
                    words.extend(part for part in word.split("'") if part not in FRENCH_STOP_WORDS)
                    continue
            if word not in FRENCH_STOP_WORDS:
                words.append(word)
        return finalize(stemmer("french")(words)) if words else []
