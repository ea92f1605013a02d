"""Citation markers in generated text: only `[n]` that name a real source survive, however the text is split
into stream deltas; the valid ones are remembered for the `cited` flags."""

from __future__ import annotations

import pytest

from shuken.knowledge.grounding import CitationFilter, citations
from shuken.knowledge.retrieval import Hit

ANSWER = "Flights need approval [1]. Receipts go to finance [3][7]. See note [a] and [2]."


def _split_every(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 5, len(ANSWER)])
def test_invalid_markers_are_dropped_whatever_the_delta_boundaries(size):
    markers = CitationFilter(sources=3)
    streamed = "".join(markers.feed(piece) for piece in _split_every(ANSWER, size)) + markers.flush()
    assert streamed == "Flights need approval [1]. Receipts go to finance [3]. See note [a] and [2]."
    assert markers.cited == {1, 2, 3}


def test_a_possible_marker_is_held_back_until_it_is_complete():
    markers = CitationFilter(sources=2)
    assert markers.feed("as shown [") == "as shown "
    assert markers.feed("1") == ""
    assert markers.feed("] above") == "[1] above"
    assert markers.feed(" and [9") == " and "
    assert markers.flush() == "[9"  # never closed: not a marker, so the text is kept as written
    assert markers.cited == {1}


def test_citations_number_every_source_and_flag_the_cited_ones():
    hits = [Hit(11, 0.9, document_name="a.pdf", collection="c", text="alpha", page=2),
            Hit(12, 0.8, document_name="b.docx", collection="c", text="beta")]
    listed = citations(hits, cited={2})
    assert [(c["index"], c["document_name"], c["cited"], c["quote"]) for c in listed] == \
           [(1, "a.pdf", False, "alpha"), (2, "b.docx", True, "beta")]
    assert listed[0]["location"]["page"] == 2
