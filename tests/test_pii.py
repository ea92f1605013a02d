"""PII detection and redaction (shuken.governance.pii) with the real libraries: phonenumbers, GiNZA, spaCy.

Valid identifiers are built with the published check-digit algorithms as bench/_pii_ja.py writes them,
independently of shuken's own (shuken.governance.pii.checksums), and each is also checked with its check
digit broken: a number failing its checksum must not be reported as that type. Detection speed is measured
by bench/pii.py, not here (a busy machine would make a timing assertion flaky)."""

from __future__ import annotations

import random
import socket
import sys
from pathlib import Path

import pytest

from shuken.governance.pii import ENTITY_TYPES, PiiDetector, PiiEntity, PiiStreamRedactor, redact
from shuken.governance.pii.entities import resolve_overlaps
from shuken.governance.pii.redaction import WINDOW

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from _pii_ja import generate, luhn_ok, my_number_check_digit, verhoeff_ok  # noqa: E402

FAST = PiiDetector(names=False)
RNG = random.Random(2024)


def digits(count: int, first: str = "") -> str:
    return first + "".join(str(RNG.randrange(10)) for _ in range(count - len(first)))


def with_check_digit(body: str, ok) -> str:
    return next(body + str(d) for d in range(10) if ok(body + str(d)))


def broken(number: str) -> str:
    """The same number with its last (check) digit changed."""
    return number[:-1] + str((int(number[-1]) + RNG.randrange(1, 10)) % 10)


def types_of(text: str, detector: PiiDetector = FAST, language: str | None = None) -> list[tuple[str, str]]:
    return [(e.type, e.text) for e in detector.detect(text, language)]


def iban(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in rearranged)) % 97
    return f"{country}{check:02d}{bban}"


# ---------------------------------------------------------------- payment cards (Luhn)


@pytest.mark.parametrize("length", range(13, 20))
def test_card_numbers_pass_luhn_fail_when_broken(length):
    for prefix in ("4", "51", "37", "6011"):
        number = with_check_digit(digits(length - 1, prefix), luhn_ok)
        for shown in (number, " ".join(number[i : i + 4] for i in range(0, length, 4)), "-".join(number[i : i + 4] for i in range(0, length, 4))):
            assert types_of(f"card: {shown}, thanks") == [("CREDIT_CARD", shown)]
        bad = broken(number)
        assert not luhn_ok(bad)
        assert "CREDIT_CARD" not in [t for t, _ in types_of(f"card: {bad}, thanks")]


def test_card_inside_a_longer_digit_run_is_not_a_card():
    number = with_check_digit(digits(15, "4"), luhn_ok)
    assert types_of(f"ref {number}7 end") == []
    assert types_of(f"ref X{number} end") == []


# ---------------------------------------------------------------- IBAN (ISO 13616 mod-97)


@pytest.mark.parametrize("country,length", [("DE", 22), ("GB", 22), ("FR", 27), ("NL", 18), ("IT", 27), ("NO", 15)])
def test_iban_valid_and_broken(country, length):
    bban = digits(length - 4) if country not in ("GB", "NL") else "ABCD" + digits(length - 8)
    if country == "IT":
        bban = "X" + digits(length - 5)
    value = iban(country, bban)
    grouped = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    for shown in (value, grouped):
        assert types_of(f"IBAN {shown} please") == [("IBAN_CODE", shown)]
    assert types_of(f"my iban is {value.lower()}") == [("IBAN_CODE", value.lower())]
    assert "IBAN_CODE" not in [t for t, _ in types_of(f"IBAN {broken(value)} please")]
    # the right checksum but the wrong length for the country
    assert "IBAN_CODE" not in [t for t, _ in types_of(f"IBAN {iban(country, bban + '1')} please")]


def test_grouped_iban_stops_at_the_country_length():
    value = iban("GB", "WEST" + digits(14))
    grouped = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    text = f"to {grouped} AND more"
    assert types_of(text) == [("IBAN_CODE", grouped)]


# ---------------------------------------------------------------- Japan's My Number


def test_my_number_check_digit_with_and_without_separators():
    for _ in range(30):
        body = digits(11)
        number = body + str(my_number_check_digit(body))
        for sep in ("", " ", "-"):
            shown = sep.join((number[:4], number[4:8], number[8:]))
            assert types_of(f"マイナンバー：{shown}です。") == [("JP_MY_NUMBER", shown)]
        bad = broken(number)
        found = [t for t, _ in types_of(f"マイナンバー：{bad}です。")]
        assert "JP_MY_NUMBER" not in found


def test_my_number_not_matched_inside_longer_digit_runs():
    body = digits(11)
    number = body + str(my_number_check_digit(body))
    assert types_of(f"番号{number}5です", language="ja") == []
    assert types_of(f"番号9{number}です", language="ja") == []
    assert types_of(f"番号 1234-{number[:4]}-{number[4:8]}-{number[8:]} です", language="ja") == []


# ---------------------------------------------------------------- India's Aadhaar (Verhoeff)


def test_aadhaar_verhoeff_valid_and_broken():
    for _ in range(30):
        number = with_check_digit(digits(11, str(RNG.randrange(2, 10))), verhoeff_ok)
        shown = " ".join((number[:4], number[4:8], number[8:]))
        assert types_of(f"Aadhaar number {shown}.", language="en") == [("IN_AADHAAR", shown)]
        bad = broken(number)
        assert not verhoeff_ok(bad)
        assert "IN_AADHAAR" not in [t for t, _ in types_of(f"Aadhaar number {bad}.")]
    # first digit 0 or 1 is never an Aadhaar
    number = with_check_digit(digits(11, "1"), verhoeff_ok)
    assert "IN_AADHAAR" not in [t for t, _ in types_of(f"Aadhaar number {number}.")]


def test_number_valid_for_both_ids_goes_by_cue_then_language():
    while True:
        body = digits(11, str(RNG.randrange(2, 10)))
        number = body + str(my_number_check_digit(body))
        if verhoeff_ok(number):
            break
    assert types_of(f"Aadhaar: {number}") == [("IN_AADHAAR", number)]
    assert types_of(f"my number {number}", language="en") == [("JP_MY_NUMBER", number)]
    assert types_of(f"番号は{number}です") == [("JP_MY_NUMBER", number)]


# ---------------------------------------------------------------- e-mail, IP, phone


def test_emails():
    text = "Write to a.b+tag@mail.example.co.jp or 山田taro@example.jp, not to x@y or foo@bar..com."
    assert types_of(text) == [("EMAIL_ADDRESS", "a.b+tag@mail.example.co.jp"), ("EMAIL_ADDRESS", "taro@example.jp")]


def test_ip_addresses_validated_by_ipaddress():
    text = "from 192.168.10.7 and 2001:db8::8a2e:370:7334 and ::ffff:10.0.0.1, not 256.1.1.1, 1.2.3 or 10:30:00"
    assert types_of(text) == [
        ("IP_ADDRESS", "192.168.10.7"),
        ("IP_ADDRESS", "2001:db8::8a2e:370:7334"),
        ("IP_ADDRESS", "::ffff:10.0.0.1"),
    ]
    assert types_of("IPは10.0.0.1です") == [("IP_ADDRESS", "10.0.0.1")]


@pytest.mark.parametrize(
    "number",
    ["03-1234-5678", "090-1234-5678", "0120-123-456", "+81 3-1234-5678", "+81-90-1234-5678", "(03)1234-5678", "０９０－１２３４－５６７８"],
)
def test_japanese_phone_formats(number):
    assert types_of(f"電話番号は{number}です。") == [("PHONE_NUMBER", number)]


def test_international_phones_and_non_phones():
    assert types_of("Call +44 20 7946 0958 or +1 212-555-0147 now") == [
        ("PHONE_NUMBER", "+44 20 7946 0958"),
        ("PHONE_NUMBER", "+1 212-555-0147"),
    ]
    # a social security number's shape, a year and a short count are not phone numbers
    assert types_of("SSN 123-45-6789, in 2024 we sold 123456 units") == []


# ---------------------------------------------------------------- dates of birth


@pytest.mark.parametrize(
    "text,date",
    [
        ("生年月日：昭和60年1月2日", "昭和60年1月2日"),
        ("平成元年12月31日生まれ", "平成元年12月31日"),
        ("1985年1月2日生まれの方", "1985年1月2日"),
        ("誕生日は１９８５年１月２日です", "１９８５年１月２日"),
        ("DOB: 1985-01-02", "1985-01-02"),
        ("She was born on 10/23/1951.", "10/23/1951"),
        ("Date of birth: 2 January 1985", "2 January 1985"),
        ("born March 3rd, 1990 in Leeds", "March 3rd, 1990"),
        ("Geburtsdatum: 02.01.1985", "02.01.1985"),
    ],
)
def test_birth_dates_next_to_a_cue(text, date):
    assert types_of(text) == [("DATE_OF_BIRTH", date)]


def test_dates_without_cue_or_impossible_are_not_birth_dates():
    assert types_of("The meeting is on 2024-04-01 and 2024年4月1日.") == []
    assert types_of("born on 31/02/1990") == []  # no 31 February
    assert types_of("生年月日：昭和65年1月7日") == []  # Shōwa ended in its 64th year
    # a cue claims only the first date after it, not an address block number
    assert types_of("生年月日：2015-10-05、住所は万代1-7-14", language="ja") == [("DATE_OF_BIRTH", "2015-10-05")]


# ---------------------------------------------------------------- overlaps, redact()


def test_overlapping_detections_resolved():
    a = PiiEntity("PHONE_NUMBER", 0, 10, "x" * 10, 0.9, True)
    b = PiiEntity("PERSON", 5, 15, "x" * 10, 0.95, False)  # the best score, but not validated: loses to a and c
    c = PiiEntity("CREDIT_CARD", 10, 20, "x" * 10, 0.5, True)  # touches a: both stay
    d = PiiEntity("LOCATION", 20, 25, "x" * 5, 0.7, False)  # touches c
    e = PiiEntity("PERSON", 22, 30, "x" * 8, 0.6, False)  # longer than d, but d's score is higher
    # validated beats unvalidated, then the higher score; losers are dropped whole (never trimmed)
    assert resolve_overlaps([e, b, a, d, c]) == [a, c, d]
    # through the detector: a card number is not also reported as a phone, an e-mail not as a person
    card = with_check_digit(digits(15, "4"), luhn_ok)
    found = PiiDetector().detect(f"Hi, I'm Lisa. Phone me on my card {card} or lisa.smith@example.com", "en")
    assert [(e.type, e.text) for e in found if e.type != "PERSON"] == [("CREDIT_CARD", card), ("EMAIL_ADDRESS", "lisa.smith@example.com")]
    spans = [(e.start, e.end) for e in found]
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))


def test_redact_replaces_spans():
    text = "Mail bob@example.com or call 090-1234-5678."
    entities = FAST.detect(text)
    assert redact(text, entities) == "Mail [EMAIL_ADDRESS] or call [PHONE_NUMBER]."
    assert redact(text, []) == text
    with pytest.raises(ValueError):
        redact(text, [PiiEntity("PERSON", 0, 6, "", 1, False), PiiEntity("PERSON", 4, 8, "", 1, False)])


def test_entity_types_filter_and_unknown_type():
    text = "bob@example.com 090-1234-5678"
    assert types_of(text, PiiDetector(["PHONE_NUMBER"], names=False)) == [("PHONE_NUMBER", "090-1234-5678")]
    with pytest.raises(ValueError):
        PiiDetector(["SSN"])
    assert set(ENTITY_TYPES) >= {t for s in generate(50) for t, _, _ in s.spans}


# ---------------------------------------------------------------- streaming


def stream(detector: PiiDetector, pieces: list[str], language: str | None = None) -> str:
    redactor = PiiStreamRedactor(detector, language)
    return "".join(redactor.feed(piece) for piece in pieces) + redactor.flush()


def test_stream_redactor_catches_entities_split_anywhere():
    card = with_check_digit(digits(15, "4"), luhn_ok)
    grouped = " ".join(card[i : i + 4] for i in range(0, 16, 4))
    text = f"Send to lisa.w@example.com now. Card {grouped} expires; born on 10/23/1951. 電話は090-1234-5678です。"
    whole = redact(text, FAST.detect(text))
    assert whole.count("[") == 4
    for i in range(1, len(text)):
        for j in range(i, len(text) + 1, 5):
            assert stream(FAST, [text[:i], text[i:j], text[j:]]) == whole, (i, j)
    # one character at a time, and output actually flows before the end
    redactor = PiiStreamRedactor(FAST)
    outputs = [redactor.feed(char) for char in text]
    assert "".join(outputs) + redactor.flush() == whole
    assert sum(1 for out in outputs if out) >= 8


def test_stream_redactor_holds_only_a_bounded_tail():
    redactor = PiiStreamRedactor(FAST)
    text = "word " * 40 + "x" * 200  # the last boundary is 200 characters back
    emitted = redactor.feed(text)
    assert len(emitted) >= len(text) - WINDOW - 1  # at most WINDOW + 1 characters are held back
    assert redactor.flush().startswith("x")


# ---------------------------------------------------------------- names and places


def test_english_names_and_places_with_few_false_positives():
    detector = PiiDetector(["PERSON", "LOCATION"])
    found = types_of("My name is Lisa Wirtz and I moved from Berlin to Paris last year.", detector, "en")
    assert ("PERSON", "Lisa Wirtz") in found and ("LOCATION", "Berlin") in found
    assert types_of("Will you send the report? May I help? Grant access to the Orchestra.", detector, "en") == []
    assert ("PERSON", "brian jones") in types_of("hi, my name is brian jones", detector, "en")


@pytest.mark.slow
def test_japanese_names_places_with_ginza_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("PII detection tried the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    detector = PiiDetector()
    text = "山田太郎さん（生年月日：昭和60年1月2日）は東京都渋谷区神南1-2-3に住み、佐藤花子様と大阪で会った。"
    found = types_of(text, detector)
    assert ("PERSON", "山田太郎") in found and ("PERSON", "佐藤花子") in found
    assert ("LOCATION", "東京都渋谷区神南1-2-3") in found and ("DATE_OF_BIRTH", "昭和60年1月2日") in found
    assert ("LOCATION", "大阪") in found
    assert types_of("日本の首都は東京です。", detector) == [("LOCATION", "日本"), ("LOCATION", "東京")]
    # the generated set: every gold span found with the right type, no false positive
    tp = fp = fn = 0
    for sample in generate(120, seed=7):
        predicted = [(e.type, e.start, e.end) for e in detector.detect(sample.text)]
        for kind, start, end in sample.spans:
            hit = any(p[0] == kind and p[1] < end and start < p[2] for p in predicted)
            tp, fn = tp + hit, fn + (not hit)
        fp += sum(1 for p in predicted if not any(g[0] == p[0] and g[1] < p[2] and p[1] < g[2] for g in sample.spans))
    assert fn <= 2 and fp <= 2, (tp, fp, fn)
    # streaming Japanese with names on: names and number redacted, the rest intact
    out = stream(detector, list(text))
    assert "山田太郎" not in out and "佐藤花子" not in out and "[PERSON]さん" in out and "住み、" in out


def test_structured_types_on_the_generated_japanese_set():
    for sample in generate(200, seed=3):
        predicted = {(e.type, e.start, e.end) for e in FAST.detect(sample.text)}
        gold = {(t, s, e) for t, s, e in sample.spans if t not in ("PERSON",)}
        assert predicted == gold, sample.text

