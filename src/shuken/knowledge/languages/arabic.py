"""Arabic: orthographic normalisation, clitic stripping, Snowball stemming, stop words.

Normalisation (after NFKC, which also folds presentation forms): tashkeel and Quranic marks and tatweel
removed; أ إ آ ٱ → ا; ى → ي; ة → ه; Persian-keyboard ی ک → ي ك; Arabic-Indic digits → ASCII.

Clitics: the Snowball Arabic stemmer removes the article ال and single proclitics (و ف ب ك) but not the
combinations و/ف + (ب ك ل)? + ال, nor لل, and it treats a word differently depending on whether it
removed a prefix: it stems مدرسه → مدرس but المدرسه → مدرسه. So those combinations (وال، فال، بال، كال،
لل، وبال، ولل …) and ال are stripped here first, only when at least three letters remain, and
Snowball sees the bare word either way: والمدرسة, المدرسة and مدرسة all index as مدرس. Single-letter
proclitics are left to Snowball's own (length-guarded) rules; stripping ب/ك/ل by length alone would turn
كتاب into تاب. Broken plurals (كتب ↔ كتاب) are a different stem, as in every light stemmer.
"""

from __future__ import annotations

import re
from typing import ClassVar

from shuken.knowledge.languages._common import MARKS, normalize, script_terms, stemmer

# str.translate's table: a code point to its replacement, or to None to remove it
_NORMALISE: dict[int, str | None] = {code: None for code in range(0x064B, 0x0660)}  # tashkeel (fathatan … sukun)
_NORMALISE.update({code: None for code in range(0x0610, 0x061B)})  # honorific / Quranic signs
_NORMALISE.update({code: None for code in range(0x06D6, 0x06EE)})  # Quranic annotation marks
_NORMALISE.update({0x0670: None, 0x0640: None})  # superscript alef, tatweel
_NORMALISE.update({ord(c): "ا" for c in "أإآٱ"})
_NORMALISE.update({ord("ى"): "ي", ord("ة"): "ه", ord("ی"): "ي", ord("ک"): "ك", ord("ۀ"): "ه"})
_NORMALISE.update({0x0660 + d: str(d) for d in range(10)})  # ٠-٩
_NORMALISE.update({0x06F0 + d: str(d) for d in range(10)})  # ۰-۹ (extended, Persian/Urdu)
_NORMALISE[0x066B] = "."  # Arabic decimal separator
_NORMALISE[0x066C] = ","  # Arabic thousands separator

_WORD = re.compile(rf"[^\W_](?:[^\W_]|[{MARKS}])*")
_ARTICLE = re.compile(r"^(?:[وف]?[بكل]?ال|[وف]?لل)")
_ARABIC_LETTER = re.compile(r"[\u0621-\u064a\u0671-\u06d3]")


def normalise_arabic(text: str) -> str:
    return normalize(text).translate(_NORMALISE)


def _stop_words(words: str) -> frozenset[str]:
    return frozenset(normalise_arabic(w) for w in words.split())


ARABIC_STOP_WORDS = _stop_words(
    """
    في من على إلى عن أن إن أنه أنها إنه إنها ما لا لم لن قد هذا هذه هذان هاتان هؤلاء ذلك تلك أولئك هو هي هم
    هن هما أنا نحن أنت أنتم التي الذي الذين اللذان اللتان اللواتي اللاتي أو أم ثم بل لكن لكنه كان كانت كانوا
    يكون تكون كل بعض غير عند منذ حتى إذا إذ لو مع بين حيث كما أيضا كيف متى أين ماذا لماذا كم أي أية هل ذا به
    بها بهم له لها لهم فيه فيها فيهم منه منها منهم عليه عليها عليهم إلا ليس ليست هناك هنا قبل بعد خلال تم عام
    وفي ومن وعلى وإلى وعن وأن وما ولا ولم وقد وهو وهي وهذا وهذه وكان وكانت ومع وبين وكل ثم يا إما أما لدى
    لقد فقد وقد نحو حول ضد دون عبر لدي إلي علي
    """
)


def strip_clitics(word: str) -> str:
    """Remove (conjunction)(preposition)(article) prefixes when at least three letters remain."""
    match = _ARTICLE.match(word)
    if match and len(word) - match.end() >= 3:
        return word[match.end() :]
    return word


class ArabicTokenizer:
    languages: ClassVar[tuple[str, ...]] = ("ar",)

    def terms(self, text: str) -> list[str]:
        def prepare(word: str) -> str | None:
            if word in ARABIC_STOP_WORDS:
                return None
            word = strip_clitics(word)
            return None if word in ARABIC_STOP_WORDS else word

        return script_terms(_WORD.findall(normalise_arabic(text)), stemmer("arabic"),
                            lambda word: bool(_ARABIC_LETTER.match(word)), prepare)
