"""spaCy pipelines used for names and places, loaded lazily once per process (loading takes seconds) and
called under a lock: a spaCy pipeline and GiNZA's Sudachi tokenizer are not safe to call from two threads."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence

# Only the components that named-entity recognition needs; the parser and lemmatizer cost time for nothing.
_EXCLUDE = {
    "ja_ginza": ["parser", "compound_splitter", "bunsetu_recognizer"],
    "default": ["parser", "tagger", "attribute_ruler", "lemmatizer", "senter"],
}

_lock = threading.Lock()
_pipelines: dict[str, Pipeline | None] = {}


class Pipeline:
    """One loaded spaCy pipeline; `__call__` serialises calls."""

    def __init__(self, nlp) -> None:
        self._nlp = nlp
        self._call_lock = threading.Lock()

    def __call__(self, text: str):
        with self._call_lock:
            return self._nlp(text)


def pipeline(names: Sequence[str]) -> Pipeline | None:
    """The first of `names` that is installed, loaded once; None if none is installed. Packages are only
    loaded from the local environment: nothing is ever downloaded."""
    key = "|".join(names)
    if key in _pipelines:
        return _pipelines[key]
    with _lock:
        if key not in _pipelines:
            _pipelines[key] = _load_first(names)
    return _pipelines[key]


def _load_first(names: Sequence[str]) -> Pipeline | None:
    for name in names:
        if importlib.util.find_spec(name) is None:
            continue
        import spacy

        exclude = _EXCLUDE.get(name, _EXCLUDE["default"])
        return Pipeline(spacy.load(name, exclude=exclude))
    return None
