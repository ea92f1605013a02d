"""A deterministic Japanese PII test set for bench/pii.py and tests/test_pii.py: sentences with names,
places and addresses, phone numbers, e-mails, birth dates and My Numbers with valid check digits, plus
negative sentences with look-alike numbers that fail their checksums and dates that are not birth dates.

Names are common surnames and given names; places are prefectures and their cities, written in the script.
The check digits are computed here from the published formulas, independently of shuken's own code."""

from __future__ import annotations

import random
from dataclasses import dataclass

SURNAMES = [
    ("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi"), ("田中", "tanaka"), ("伊藤", "ito"),
    ("渡辺", "watanabe"), ("山本", "yamamoto"), ("中村", "nakamura"), ("小林", "kobayashi"), ("加藤", "kato"),
    ("吉田", "yoshida"), ("山田", "yamada"), ("佐々木", "sasaki"), ("山口", "yamaguchi"), ("松本", "matsumoto"),
    ("井上", "inoue"), ("木村", "kimura"), ("林", "hayashi"), ("斎藤", "saito"), ("清水", "shimizu"),
    ("山崎", "yamazaki"), ("森", "mori"), ("池田", "ikeda"), ("橋本", "hashimoto"), ("阿部", "abe"),
    ("石川", "ishikawa"), ("山下", "yamashita"), ("中島", "nakajima"), ("石井", "ishii"), ("小川", "ogawa"),
]  # fmt: skip
GIVEN_NAMES = [
    ("太郎", "taro"), ("花子", "hanako"), ("一郎", "ichiro"), ("健太", "kenta"), ("翔太", "shota"),
    ("大輔", "daisuke"), ("拓也", "takuya"), ("直樹", "naoki"), ("美咲", "misaki"), ("陽菜", "hina"),
    ("結衣", "yui"), ("さくら", "sakura"), ("優子", "yuko"), ("恵子", "keiko"), ("誠", "makoto"),
    ("浩", "hiroshi"), ("陽子", "yoko"), ("裕子", "yuko"), ("明美", "akemi"), ("蓮", "ren"),
    ("大翔", "hiroto"), ("悠真", "yuma"), ("葵", "aoi"), ("凛", "rin"), ("美月", "mizuki"), ("健一", "kenichi"),
]  # fmt: skip
CITIES = [
    ("東京都", "新宿区", "西新宿"), ("東京都", "渋谷区", "神南"), ("東京都", "千代田区", "丸の内"),
    ("大阪府", "大阪市北区", "梅田"), ("神奈川県", "横浜市中区", "山下町"), ("愛知県", "名古屋市中村区", "名駅"),
    ("北海道", "札幌市中央区", "北一条西"), ("福岡県", "福岡市博多区", "博多駅前"), ("京都府", "京都市下京区", "烏丸通"),
    ("兵庫県", "神戸市中央区", "三宮町"), ("宮城県", "仙台市青葉区", "一番町"), ("広島県", "広島市中区", "紙屋町"),
    ("埼玉県", "さいたま市大宮区", "桜木町"), ("千葉県", "千葉市中央区", "富士見"), ("静岡県", "浜松市中区", "板屋町"),
    ("新潟県", "新潟市中央区", "万代"), ("熊本県", "熊本市中央区", "手取本町"), ("沖縄県", "那覇市", "久茂地"),
]  # fmt: skip
DOMAINS = ["example.co.jp", "example.jp", "mail.example.com", "example.ne.jp"]
ERAS = [("昭和", 1926, 64), ("平成", 1989, 31)]


@dataclass(frozen=True)
class Sample:
    text: str
    spans: tuple[tuple[str, int, int], ...]  # (type, start, end)


def my_number_check_digit(first11: str) -> int:
    total = sum(int(d) * (n + 1 if n <= 6 else n - 5) for n, d in enumerate(reversed(first11), start=1))
    return 0 if total % 11 <= 1 else 11 - total % 11


def verhoeff_ok(digits: str) -> bool:
    """Verhoeff via the dihedral group D5 written out (not the lookup tables shuken uses)."""

    def mul(a: int, b: int) -> int:
        # D5 elements: rotations 0-4, reflections 5-9
        if a < 5 and b < 5:
            return (a + b) % 5
        if a < 5:
            return 5 + (a + b - 5) % 5
        if b < 5:
            return 5 + (a - 5 - b) % 5
        return (a - b) % 5

    perm = [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]
    check = 0
    for i, d in enumerate(reversed(digits)):
        value = int(d)
        for _ in range(i % 8):
            value = perm[value]
        check = mul(check, value)
    return check == 0


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        v = int(d) * (2 if i % 2 else 1)
        total += v - 9 if v > 9 else v
    return total % 10 == 0


class _Builder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[tuple[str, int, int]] = []
        self.length = 0

    def add(self, text: str, kind: str | None = None) -> "_Builder":
        if kind:
            self.spans.append((kind, self.length, self.length + len(text)))
        self.parts.append(text)
        self.length += len(text)
        return self

    def build(self) -> Sample:
        return Sample("".join(self.parts), tuple(self.spans))


def generate(count: int = 300, seed: int = 13) -> list[Sample]:
    rng = random.Random(seed)

    def name() -> tuple[str, str]:
        (s, sr), (g, gr) = rng.choice(SURNAMES), rng.choice(GIVEN_NAMES)
        return s + g, f"{gr}.{sr}"

    def phone() -> str:
        kind = rng.randrange(5)
        n = lambda k: "".join(str(rng.randrange(10)) for _ in range(k))  # noqa: E731
        if kind == 0:
            return f"03-{rng.randrange(3, 7)}{n(3)}-{n(4)}"
        if kind == 1:
            return f"0{rng.choice('987')}0-{rng.randrange(1, 10)}{n(3)}-{n(4)}"
        if kind == 2:
            return f"0120-{rng.randrange(1, 10)}{n(2)}-{n(3)}"
        if kind == 3:
            return f"+81 90-{rng.randrange(1, 10)}{n(3)}-{n(4)}"
        return f"06-{rng.randrange(6, 7)}{n(3)}-{n(4)}"

    def my_number(valid: bool = True) -> str:
        while True:
            body = "".join(str(rng.randrange(10)) for _ in range(11))
            check = my_number_check_digit(body)
            digit = check if valid else (check + rng.randrange(1, 10)) % 10
            number = body + str(digit)
            if valid or not verhoeff_ok(number):
                break
        sep = rng.choice(["", " ", "-"])
        return sep.join((number[:4], number[4:8], number[8:]))

    def bad_card() -> str:
        while True:
            number = "4" + "".join(str(rng.randrange(10)) for _ in range(15))
            if not luhn_ok(number):
                return " ".join(number[i : i + 4] for i in range(0, 16, 4))

    def dob() -> str:
        era, start, last = rng.choice(ERAS)
        year = rng.randrange(1, min(last, 35) + 1)
        month, day = rng.randrange(1, 13), rng.randrange(1, 29)
        return rng.choice([f"{era}{year}年{month}月{day}日", f"{start + year - 1}年{month}月{day}日", f"{start + year - 1}-{month:02d}-{day:02d}"])

    def address() -> tuple[str, str]:
        pref, city, town = rng.choice(CITIES)
        block = rng.choice([f"{rng.randrange(1, 9)}-{rng.randrange(1, 30)}-{rng.randrange(1, 20)}", f"{rng.randrange(1, 9)}丁目{rng.randrange(1, 30)}番{rng.randrange(1, 20)}号"])
        return pref + city + town + block, city

    samples: list[Sample] = []
    for _ in range(count):
        template = rng.randrange(12)
        b = _Builder()
        person, romaji = name()
        if template == 0:
            b.add(person, "PERSON").add("さんの電話番号は").add(phone(), "PHONE_NUMBER").add("です。")
        elif template == 1:
            b.add(person, "PERSON").add("様、ご登録のメールアドレス").add(f"{romaji}@{rng.choice(DOMAINS)}", "EMAIL_ADDRESS").add("を確認しました。")
        elif template == 2:
            addr, _ = address()
            b.add(person, "PERSON").add("（生年月日：").add(dob(), "DATE_OF_BIRTH").add("）は").add(addr, "LOCATION").add("に住んでいます。")
        elif template == 3:
            b.add("申請者：").add(person, "PERSON").add("、個人番号：").add(my_number(), "JP_MY_NUMBER")
        elif template == 4:
            pref, city, _ = rng.choice(CITIES)
            b.add(pref + (city[: city.index("市") + 1] if "市" in city else city), "LOCATION")
            b.add("出身の").add(person, "PERSON").add("さんは").add(dob(), "DATE_OF_BIRTH").add("生まれです。")
        elif template == 5:
            b.add("お問い合わせは").add(phone(), "PHONE_NUMBER").add("または").add(f"info@{rng.choice(DOMAINS)}", "EMAIL_ADDRESS").add("までご連絡ください。")
        elif template == 6:
            addr, _ = address()
            b.add("送付先：").add(addr, "LOCATION").add("　").add(person, "PERSON").add("様")
        elif template == 7:
            b.add("マイナンバー").add(my_number(), "JP_MY_NUMBER").add("の写しを添付してください。担当は").add(person, "PERSON").add("です。")
        # negatives: look-alikes that fail a checksum, dates that are not birth dates, plain sentences
        elif template == 8:
            b.add("注文番号は").add(my_number(valid=False)).add("です。")
        elif template == 9:
            b.add("カード番号").add(bad_card()).add("は無効です。")
        elif template == 10:
            b.add(f"会議は{rng.randrange(2020, 2026)}年{rng.randrange(1, 13)}月{rng.randrange(1, 29)}日に開催します。")
        else:
            b.add(rng.choice(["本日は晴れのち曇りです。", "在庫は残り12個です。", "資料を共有フォルダに保存しました。", "来週の会議室を予約してください。"]))
        samples.append(b.build())
    return samples
