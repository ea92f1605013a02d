"""TextStream: whole UTF-8 characters only, stop strings never leak (pure)."""

from __future__ import annotations

import pytest

from shuken.engines.text_stream import TextStream


def feed_all(stream: TextStream, pieces: list[bytes]) -> str:
    return "".join(stream.feed(p) for p in pieces) + stream.flush()


def test_multibyte_characters_split_across_tokens():
    data = "日本語とعربيとहिन्दी".encode()
    assert feed_all(TextStream(), [data[i:i + 1] for i in range(len(data))]) == "日本語とعربيとहिन्दी"


@pytest.mark.parametrize("pieces, stop, expected", [
    ([b"Hello", b" wor", b"ld\nUs", b"er: more"], ["\nUser:"], "Hello world"),
    ([b"abc", b"STO", b"P", b"def"], ["STOP"], "abc"),
    ([b"abc", b"ST", b"ART"], ["STOP"], "abcSTART"),  # a false start is released
    ([b"x=1", b";y=2"], [";", "="], "x"),  # the earliest stop wins
])
def test_stop_strings(pieces, stop, expected):
    stream = TextStream(stop)
    assert feed_all(stream, pieces) == expected


def test_held_back_prefix_is_not_shown_early():
    stream = TextStream(["</answer>"])
    assert stream.feed(b"42</ans") == "42"
    assert stream.feed(b"wer>tail") == ""
    assert stream.stopped and stream.text == "42"


def test_a_character_cut_off_at_the_end_is_dropped_not_replaced():
    stream = TextStream()
    text = "日本".encode()
    assert stream.feed(text[:4]) == "日"  # 日 complete, the first byte of 本 pending
    assert stream.flush() == ""
